import { CLUSTER_FILES } from './cluster-layout';

/**
 * bootstrap.sh's checks of whose data an instance starts on, in the plain mode, where roles are
 * fixed by the StatefulSets and nothing else stops two primaries or an empty one:
 *
 * - a replica that holds data refuses to start when it was promoted by hand (no standby.signal),
 *   when the primary runs another cluster (system identifier), or when its timeline is ahead of
 *   the primary's or forked from it; a primary that does not answer is no reason to refuse, so
 *   replicas restart while it is down;
 * - a primary with an empty volume asks every other pod of the headless Service (ready or not,
 *   so the list needs no replica count, which would restart the primary at every scaling)
 *   whether PostgreSQL answers there; when one does, it refuses initdb, or with primaryRecovery
 *   rebuilds itself from the most advanced replica.
 *
 * They need `log`, `secret`, `conninfo_value`, `primary_conninfo`, `replace_standby_settings`,
 * `reset_staging` and the variables of bootstrap.sh's environment.
 */

/** Reading identities: the replication protocol's IDENTIFY_SYSTEM and TIMELINE_HISTORY, and pg_controldata. */
export const IDENTITY_FUNCTIONS = `# lsn_number <X/Y>: a WAL position as one number, for comparisons.
lsn_number() {
  printf '%d' "$(((16#\${1%/*} << 32) | 16#\${1#*/}))"
}

# replication_query <conninfo> <command>...: replication commands (IDENTIFY_SYSTEM, SHOW,
# TIMELINE_HISTORY) as the replication role, fields separated by spaces; 3 s to connect.
replication_query() {
  local conninfo=$1
  shift
  PGCONNECT_TIMEOUT=3 psql --dbname="$conninfo replication=true" --no-psqlrc --no-password --quiet \\
    --tuples-only --no-align --field-separator=' ' "\${@/#/--command=}"
}

# control_field <pg_controldata output> <label>: the value of one of its lines.
control_field() {
  sed -n "s/^$2: *//p" <<< "$1"
}

# history_switch <timeline history, hex-encoded or plain> <timeline>: where that timeline ended, if in the history.
history_switch() {
  local history=$1 hex escaped="" i
  if [[ $history == '\\x'* ]]; then
    hex=\${history#'\\x'}
    for ((i = 0; i < \${#hex}; i += 2)); do
      escaped+="\\\\x\${hex:i:2}"
    done
    history=$(printf '%b' "$escaped")
  fi
  awk -v timeline="$2" '$1 == timeline { print $2 }' <<< "$history"
}

# How to get rid of data that must not serve: the pod re-clones on a new volume.
pvc_advice() {
  local claims="data-$1"
  if [[ -n $PG_WALDIR ]]; then
    claims+=" wal-$1"
  fi
  printf 'kubectl delete pvc --wait=false %s && kubectl delete pod %s' "$claims" "$1"
}`;

/** A replica's data checked against its primary before it starts. */
export const CHECK_REPLICA_DATA = `# check_replica_data: refuses to start a replica on data that is not a copy of its primary's
# history: promoted by hand, another cluster, or a timeline ahead of the primary's or forked off it.
check_replica_data() {
  local control own_id own_timeline min_timeline own_position position identity primary_id primary_timeline primary_position
  local history switch primary_pod=\${PRIMARY_HOST%%.*} rebuild reclone
  rebuild="if this replica holds the data you need, rebuild the primary from the replicas (README, \\"Plain mode: when the primary is lost\\"): set primaryRecovery to PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA, apply, then $(pvc_advice "$primary_pod"); this replica starts as it is while the primary is down, and the primary is rebuilt from the most advanced one"
  reclone="if the primary holds the data you want, let this replica re-clone from it: $(pvc_advice "$POD_NAME")"
  if [[ ! -e $PGDATA/standby.signal ]]; then
    log "REFUSED to start: $PGDATA has no standby.signal, so this replica was promoted by hand (pg_promote or pg_ctl promote) and would run as a second primary behind the read-only Service, taking writes the primary never sees. Never promote a replica of the plain mode by hand. To follow the primary again, dropping what was written here (copy it out first with pg_dump from another pod if you need it): $(pvc_advice "$POD_NAME")"
    return 1
  fi
  control=$(LC_ALL=C pg_controldata --pgdata="$PGDATA")
  own_id=$(control_field "$control" 'Database system identifier')
  own_timeline=$(control_field "$control" "Latest checkpoint's TimeLineID")
  min_timeline=$(control_field "$control" "Min recovery ending loc's timeline")
  if ((min_timeline > own_timeline)); then
    own_timeline=$min_timeline
  fi
  # What pg_control proves was replayed here; WAL past it is checked by PostgreSQL when it streams.
  own_position=$(control_field "$control" 'Latest checkpoint location')
  position=$(control_field "$control" 'Minimum recovery ending location')
  if (($(lsn_number "$position") > $(lsn_number "$own_position"))); then
    own_position=$position
  fi
  if ! identity=$(replication_query "$(primary_conninfo)" IDENTIFY_SYSTEM 2>&1); then
    log "the primary at $PRIMARY_HOST does not answer ($(head -n 1 <<< "$identity")): starting on this data as it is; it is checked against the primary at the next start"
    return 0
  fi
  read -r primary_id primary_timeline primary_position _ <<< "$identity"
  if [[ ! $primary_id =~ ^[0-9]+$ || ! $primary_timeline =~ ^[0-9]+$ ]]; then
    log "the primary at $PRIMARY_HOST answered IDENTIFY_SYSTEM with \\"$identity\\", which is no identity"
    return 1
  fi
  if [[ $primary_id != "$own_id" ]]; then
    log "REFUSED to start: this replica holds the cluster with system identifier $own_id, while the primary at $PRIMARY_HOST runs the cluster $primary_id: the primary was re-initialized or restored from elsewhere, and this replica would serve reads of another database. Ways out: $reclone; $rebuild"
    return 1
  fi
  if ((own_timeline > primary_timeline)); then
    log "REFUSED to start: this replica's data is on timeline $own_timeline, ahead of the primary's timeline $primary_timeline: it was promoted at some point, or the primary went back to an older copy. Ways out: $reclone; $rebuild"
    return 1
  fi
  if ((own_timeline < primary_timeline)); then
    # "<file name> <content>": 15 and 17 send the content as text, which the protocol documents as bytea.
    history=$(replication_query "$(primary_conninfo)" "TIMELINE_HISTORY $primary_timeline")
    switch=$(history_switch "\${history#* }" "$own_timeline")
    if [[ -z $switch ]] || (($(lsn_number "$own_position") > $(lsn_number "$switch"))); then
      log "REFUSED to start: this replica's data went past $own_position on timeline $own_timeline, while the primary's timeline $primary_timeline forked from it at \${switch:-a point not in its history}: the two histories differ. Ways out: $reclone; $rebuild"
      return 1
    fi
  elif (($(lsn_number "$own_position") > $(lsn_number "$primary_position"))); then
    log "REFUSED to start: this replica's data went past $own_position, ahead of the primary's WAL position $primary_position on the same timeline $primary_timeline: the primary went back to an older copy. Ways out: $reclone; $rebuild"
    return 1
  fi
  log "data of cluster $own_id, timeline $own_timeline, at $own_position: a copy of the primary's history (timeline $primary_timeline, $primary_position)"
}`;

/** An empty primary asks the other pods whether they hold the cluster, and refuses initdb or rebuilds from the most advanced. */
export const EMPTY_PRIMARY = `# answering_instances: "address pod system-identifier timeline position in-hot-standby" of each
# other pod of the headless Service (ready or not) where PostgreSQL answers; "-" for what it does
# not tell (a server still starting). A new cluster's replicas wait for the primary in their init
# container, so none answers and nothing waits: a refused connection or 3 s without an answer.
answering_instances() {
  local address conninfo status identity pod asked=0 answered=0 start=\${EPOCHREALTIME/./}
  for address in $(getent ahosts "$HEADLESS_SERVICE" | awk '{ print $1 }' | sort -u); do
    conninfo="$(primary_conninfo) hostaddr=$address"
    asked=$((asked + 1))
    status=0
    pg_isready --dbname="$conninfo" --timeout=3 --quiet || status=$?
    if ((status == 2)); then
      continue
    elif ((status == 3)); then
      log "pg_isready could not try $address"
      return 1
    fi
    pod=$(getent hosts "$address" | awk '{ print $2; exit }')
    pod=\${pod%%.*}
    identity=$(replication_query "$conninfo" IDENTIFY_SYSTEM 'SHOW in_hot_standby' 2> /dev/null | tr '\\n' ' ') || identity=""
    # shellcheck disable=SC2086 # the fields, or five dashes
    printf '%s %s %s %s %s %s\\n' "$address" "\${pod:-$address}" \${identity:-- - - -}
    answered=$((answered + 1))
  done
  log "asked the $asked pod addresses of $HEADLESS_SERVICE in $(((\${EPOCHREALTIME/./} - start) / 1000)) ms: $answered answer"
}

# empty_primary_source: nothing when no other pod answers (initdb follows); otherwise refuses,
# or with primaryRecovery prints "address pod position" of the most advanced replica to rebuild from.
empty_primary_source() {
  local found address pod id timeline position standby best="" best_key=-1 key ids="" listing=""
  found=$(answering_instances)
  if [[ -z $found ]]; then
    if [[ -n $PRIMARY_RECOVERY ]]; then
      log "REFUSED to initialize: primaryRecovery is set and no replica answers at $HEADLESS_SERVICE yet; this pod retries (restarting its init container) until one does. To create a new empty cluster instead, remove primaryRecovery"
      return 1
    fi
    return 0
  fi
  while read -r address pod id timeline position standby; do
    listing+=$'\\n'"  $pod ($address): system identifier $id, timeline $timeline, WAL position $position, in hot standby: $standby"
    if [[ $id == - || $standby != on ]]; then
      best=unusable
    fi
    if [[ " $ids " != *" $id "* ]]; then
      ids+=" $id"
    fi
    key=$(lsn_number "\${position/#-/0/0}")
    if [[ $best != unusable ]] && ((key > best_key)); then
      best_key=$key
      best="$address $pod $position"
    fi
  done <<< "$found"
  if [[ -z $PRIMARY_RECOVERY ]]; then
    log "REFUSED to initialize: this primary's volume is empty, but PostgreSQL answers on other pods of the cluster:$listing"
    log "a new empty database here would be served by the read-write Service while the replicas hold the data. To rebuild this primary from the most advanced replica (README, \\"Plain mode: when the primary is lost\\"): set primaryRecovery to PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA, apply, and remove it once the primary runs. To start an empty cluster on purpose, delete the replicas' PVCs and pods first"
    return 1
  fi
  if [[ $best == unusable || $ids == *' '*' '* ]]; then
    log "REFUSED to rebuild: every answering pod must be a streaming replica (in hot standby) of one cluster, and here they are not:$listing"
    log "a replica promoted by hand runs as a primary: stop it (see its pod's log) before the primary is rebuilt; a server still starting is asked again at the next try"
    return 1
  fi
  log "PostgreSQL answers on other pods of the cluster:$listing"
  printf '%s\\n' "$best"
}`;

/**
 * primaryRecovery's rebuild from the most advanced replica, into tablespace directories emptied
 * first: what a primary that lost its data volume kept on its tablespaces' volumes belongs to no catalog.
 */
export function rebuildPrimary(tablespaces: boolean): string {
  return `# rebuild_primary <address> <pod> <position>: the primary's data from that replica: a base backup,
# then the copy streams from the replica as a standby until it has the replica's WAL up to
# <position>, takes the replicas' slots (the Config ConfigMap's list of the current replicas), is
# promoted onto a new timeline and stopped.
rebuild_primary() {
  local address=$1 pod=$2 target=$3 staging="$PGDATA.rebuild" conninfo superuser slot slots="" deadline timeline
  if [[ -e \${CONFIG_FILE%/*}/${CLUSTER_FILES.replicaSlots} ]]; then
    slots=$(< "\${CONFIG_FILE%/*}/${CLUSTER_FILES.replicaSlots}")
  fi
  conninfo="$(primary_conninfo) hostaddr=$address"
  reset_staging "$staging"
  log "rebuilding the primary from $pod ($address), the most advanced replica, at WAL position $target"${tablespaces ? '\n  empty_tablespace_dirs' : ''}
  pg_basebackup --pgdata="$staging" "\${wal_dir_args[@]}" --wal-method=stream --checkpoint=fast --no-password --dbname="$conninfo" >&2
  # The copy follows that replica, with no slot, until it has what the replica received.
  replace_standby_settings "$staging" "primary_conninfo = $(conninfo_value "$conninfo passfile=$(conninfo_value "$PGPASSFILE")")"
  touch -- "$staging/standby.signal"
  superuser=$(secret superuser username)
  workdir=$(mktemp -d)
  write_passfile "$workdir/pgpass" superuser
  start_temporary_server "$staging" -c hot_standby=on
  rebuild_sql() {
    PGPASSFILE="$workdir/pgpass" psql --host="$workdir" --username="$superuser" --dbname=postgres --no-psqlrc --quiet \\
      --tuples-only --no-align --set=ON_ERROR_STOP=1 --command="$1"
  }
  deadline=$((SECONDS + 300))
  until [[ $(rebuild_sql "SELECT greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) >= '$target'") == t ]]; do
    if ((SECONDS >= deadline)); then
      log "the copy did not reach $target of $pod in 300 s: giving up this try"
      return 1
    fi
    sleep 1
  done
  # Made on the standby, the slots keep the WAL from the copy's restart point, for replicas behind the one copied.
  for slot in $slots; do
    rebuild_sql "SELECT pg_create_physical_replication_slot('$slot', true)" > /dev/null
  done
  # Promotion replays all WAL received before it ends recovery.
  pg_ctl --pgdata="$staging" --wait --silent promote >&2
  rebuild_sql 'CHECKPOINT' > /dev/null
  timeline=$(rebuild_sql 'SELECT timeline_id FROM pg_control_checkpoint()')
  pg_ctl --pgdata="$staging" --wait --silent --mode=fast stop >&2
  temporary_server=""
  rm -rf -- "$workdir"
  workdir=""
  replace_standby_settings "$staging"
  mv -- "$staging" "$PGDATA"
  log "primary rebuilt from $pod: promoted onto timeline $timeline with slots for \${slots//$'\\n'/ }; the replicas follow it. Remove primaryRecovery from the props now and apply"
}`;
}
