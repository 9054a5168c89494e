import { ClusterModel } from './cluster-model';
import { CloneMethod } from './source-cluster';
import { SOURCE_REPLICATION_SECRET_DIR } from './source-cluster-model';

/**
 * The environment bootstrap.sh reads for a clone or a standby; empty for other clusters.
 *  - SOURCE_MODE: clone-from-backup, clone-from-running-cluster or standby;
 *  - SOURCE_HOST, SOURCE_PORT, SOURCE_CA_FILE: the source's primary, with streaming;
 *  - SOURCE_CONFIG, SOURCE_STANZA, SOURCE_REPO: source.conf, the source's stanza and repository key, with a repository;
 *  - SOURCE_RESTORE_SCRIPT: restore.sh rendered for the source, for a clone from a backup.
 */
export const SOURCE_ENVIRONMENT = [
  'SOURCE_MODE', 'SOURCE_HOST', 'SOURCE_PORT', 'SOURCE_CA_FILE', 'SOURCE_CONFIG', 'SOURCE_STANZA', 'SOURCE_REPO', 'SOURCE_RESTORE_SCRIPT',
] as const;

/** SOURCE_MODE of a cluster: what its primary makes of an empty volume, and whether it stays in recovery. */
export function sourceMode(model: ClusterModel): string {
  if (model.standby) return 'standby';
  if (model.clone) return model.clone.method === CloneMethod.FROM_BACKUP ? 'clone-from-backup' : 'clone-from-running-cluster';
  return '';
}

/**
 * The file in a data directory copied from another cluster until this cluster's roles are
 * provisioned in it: written into the copy before it is renamed into place, removed after the
 * first provisioning, so a pod killed in between provisions again.
 */
export const COPIED_DATA_MARKER = 'cdk8s-postgres-copied';

/**
 * In every plain bootstrap.sh, since a former standby's primary must promote once its
 * `standby` prop is gone: a provisioning login that works on data copied from another cluster,
 * and the promotion (which a clone of a running cluster uses too).
 */
export const COPIED_DATA_FUNCTIONS = `# Data copied from another cluster holds the source's roles: this cluster's superuser may not
# exist yet, or have another password. Until it is provisioned, the temporary server admits
# the socket in its private directory without a password (only this uid reaches it, and it owns
# the data), and provisioning logs in as the bootstrap superuser, whose name the source chose:
# single-user mode runs as it whatever the name.
copied_data=""
provisioning_login() {
  if [[ -e "$PGDATA/${COPIED_DATA_MARKER}" ]]; then
    copied_data=yes
    superuser=$(printf 'SELECT rolname FROM pg_authid WHERE oid = 10;\\n' |
      postgres --single -D "$PGDATA" -c config_file="$CONFIG_FILE" -c log_min_messages=fatal postgres 2> /dev/null |
      sed -n 's/^[[:space:]]*1: rolname = "\\(.*\\)"[[:space:]]*(typeid.*/\\1/p')
    if [[ -z $superuser ]]; then
      log "could not read the bootstrap superuser of the copied data"
      return 1
    fi
    printf 'local all all trust\\n' > "$workdir/pg_hba.conf"
    provisioning_server_options=(-c "hba_file=$workdir/pg_hba.conf")
  else
    superuser=$(secret superuser username)
    write_passfile "$workdir/pgpass" superuser
    provisioning_server_options=()
  fi
}

# The first provisioning of copied data is done: this cluster's superuser logs in from now on.
provisioning_done() {
  if [[ -n $copied_data ]]; then
    rm -f -- "$PGDATA/${COPIED_DATA_MARKER}"
  fi
}

# promote_data <data directory in standby mode>: a temporary server replays what it holds and
# promotes it onto a new timeline, then stops.
promote_data() {
  local pgdata=$1
  workdir=$(mktemp -d)
  start_temporary_server "$pgdata" -c hot_standby=on
  pg_ctl --pgdata="$pgdata" --wait --timeout=600 --silent promote >&2
  pg_ctl --pgdata="$pgdata" --wait --silent --mode=fast stop >&2
  temporary_server=""
  rm -rf -- "$workdir"
  workdir=""
}

# A primary whose data is in standby mode while the cluster is no longer a standby (its standby
# prop was removed): promoted onto a new timeline, with what it received, before it serves.
promote_former_standby() {
  if [[ ! -e "$PGDATA/standby.signal" ]]; then
    return 0
  fi
  log "the cluster is no longer a standby: promoting its data onto a new timeline"
  replace_standby_settings "$PGDATA"
  promote_data "$PGDATA"
  log "promoted: timeline $(LC_ALL=C pg_controldata "$PGDATA" | sed -n 's/^Latest checkpoint.s TimeLineID: *//p')"
}`;

/** The functions of a clone or a standby: copying the source, and following it. */
export function renderSourceFunctions(model: ClusterModel): string {
  return [SOURCE_COPY_FUNCTIONS, INITIALIZE_FROM_SOURCE, followSource(model.name)].join('\n\n');
}

/** The SOURCE_* environment, and copies of the running source or of its backup. */
const SOURCE_COPY_FUNCTIONS = `SOURCE_MODE="\${SOURCE_MODE:-}"
SOURCE_HOST="\${SOURCE_HOST:-}"
SOURCE_PORT="\${SOURCE_PORT:-}"
SOURCE_CA_FILE="\${SOURCE_CA_FILE:-}"
SOURCE_CONFIG="\${SOURCE_CONFIG:-}"
SOURCE_STANZA="\${SOURCE_STANZA:-}"
SOURCE_REPO="\${SOURCE_REPO:-}"
SOURCE_RESTORE_SCRIPT="\${SOURCE_RESTORE_SCRIPT:-}"
SOURCE_PASSFILE="\${PGPASSFILE%/*}/source-pgpass"

# The source's primary as its replication role, always over TLS verified for its host name.
source_conninfo() {
  local user
  user=$(secret ${SOURCE_REPLICATION_SECRET_DIR} username)
  printf 'host=%s port=%s user=%s sslmode=verify-full sslrootcert=%s' "$(conninfo_value "$SOURCE_HOST")" "$SOURCE_PORT" \\
    "$(conninfo_value "$user")" "$(conninfo_value "$SOURCE_CA_FILE")"
}

# copy_running_source <staging>: pg_basebackup of the source's primary.
copy_running_source() {
  write_passfile "$SOURCE_PASSFILE" ${SOURCE_REPLICATION_SECRET_DIR}
  until pg_isready --host="$SOURCE_HOST" --port="$SOURCE_PORT" --timeout=5 --quiet; do
    log "waiting for the source at $SOURCE_HOST:$SOURCE_PORT"
    sleep 2
  done
  log "copying the running source at $SOURCE_HOST:$SOURCE_PORT"
  PGPASSFILE="$SOURCE_PASSFILE" pg_basebackup --pgdata="$1" "\${wal_dir_args[@]}" --wal-method=stream --checkpoint=fast \\
    --no-password --dbname="$(source_conninfo)" >&2
  replace_standby_settings "$1"
}

# copy_source_backup <staging>: the source's latest backup from its repository, left in standby mode.
copy_source_backup() {
  log "restoring the latest backup of stanza $SOURCE_STANZA from the source's repository"
  PGBACKREST_PG1_PATH="$1" pgbackrest --config="$SOURCE_CONFIG" --stanza="$SOURCE_STANZA" --repo="$SOURCE_REPO" --type=standby restore >&2
  # restore_command is postgresql.conf's, which the standby prop sets and its removal changes.
  grep -v -E '^restore_command = |^# Recovery settings generated by pgBackRest' -- "$1/postgresql.auto.conf" > "$1/postgresql.auto.conf.tmp" || true
  mv -f -- "$1/postgresql.auto.conf.tmp" "$1/postgresql.auto.conf"
  if [[ -n $PG_WALDIR ]]; then
    mv -- "$1/pg_wal" "$PG_WALDIR"
    ln -s -- "$PG_WALDIR" "$1/pg_wal"
  fi
}`;

/** An empty primary's data from the source. */
const INITIALIZE_FROM_SOURCE = `# initialize_from_source: an empty primary's data copied from the source, under this
# cluster's name: a clone is promoted onto a new timeline (restore.sh does it for a backup), a
# standby stays in recovery. The copy is marked for the first provisioning before its rename.
initialize_from_source() {
  local staging="$PGDATA.source"
  reset_staging "$staging"
  case $SOURCE_MODE in
    clone-from-backup)
      PGDATA="$staging" PGBACKREST_CONFIG="$SOURCE_CONFIG" "$SOURCE_RESTORE_SCRIPT"
      ;;
    clone-from-running-cluster)
      copy_running_source "$staging"
      touch -- "$staging/standby.signal"
      promote_data "$staging"
      ;;
    standby)
      if [[ -n $SOURCE_CONFIG ]]; then
        copy_source_backup "$staging"
      else
        copy_running_source "$staging"
      fi
      touch -- "$staging/standby.signal"
      ;;
    *)
      log "SOURCE_MODE must be clone-from-backup, clone-from-running-cluster or standby, not $SOURCE_MODE"
      exit 1
      ;;
  esac
  touch -- "$staging/${COPIED_DATA_MARKER}"
  mv -- "$staging" "$PGDATA"
  log "cluster copied from its source ($SOURCE_MODE)"
}`;

/** The standby leader's recovery settings. */
function followSource(clusterName: string): string {
  return `# follow_source: the standby leader's recovery settings, rewritten at every start: standby mode,
# and with streaming the source's primary (the repository is restore_command, in postgresql.conf).
follow_source() {
  touch -- "$PGDATA/standby.signal"
  if [[ -n $SOURCE_HOST ]]; then
    write_passfile "$SOURCE_PASSFILE" ${SOURCE_REPLICATION_SECRET_DIR}
    replace_standby_settings "$PGDATA" \\
      "primary_conninfo = $(conninfo_value "$(source_conninfo) passfile=$(conninfo_value "$SOURCE_PASSFILE") application_name=${clusterName.replace(/-/g, '_')}_standby")"
  else
    replace_standby_settings "$PGDATA"
  fi
  log "following the source as a standby cluster"
}`;
}
