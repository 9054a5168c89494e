import { PRIMARY_CONNINFO } from './bootstrap-script';
import { MAJOR_VERSION_FUNCTIONS } from './major-version-functions';
import { CREDENTIAL_FUNCTIONS, logFunction, TEMPORARY_SERVER_FUNCTIONS } from '../core/shell-functions';

/**
 * The environment major-upgrade.sh reads. OLD_BINDIR and REPLICATION_SLOTS serve the primary;
 * PRIMARY_HOST, PGPORT and the TLS settings a replica, which asks the primary for its version.
 */
export const MAJOR_UPGRADE_ENVIRONMENT = [
  'PGDATA', 'POSTGRES_ROLE', 'POD_NAME', 'FROM_MAJOR', 'TO_MAJOR', 'TRANSFER', 'OLD_BINDIR', 'CREDENTIALS_DIR', 'CONFIG_FILE',
  'REPLICATION_SLOTS', 'PRIMARY_HOST', 'PGPORT', 'TLS_CA_FILE', 'TLS_ENABLED', 'PRIMARY_WAIT_SECONDS',
] as const;

/**
 * The old bin directory the upgrade step is given: a link the copy step points at the layout it
 * found, so one path serves the Debian images and the Red Hat ones (Percona's).
 */
export function oldBinDir(volume: string): string {
  return `${volume}/bin`;
}

/**
 * POSIX sh for the init container in the OLD image: its PostgreSQL, in the Debian layout (the
 * official images: /usr/lib/postgresql/<major>, /usr/share/postgresql/<major>) or the PGDG/Red
 * Hat one (Percona's: /usr/pgsql-<major>), copied into the volume at OLD_BINARIES_DIR under the
 * same absolute paths, so PostgreSQL still finds lib and share relative to its real bin directory.
 */
export const COPY_OLD_BINARIES_SCRIPT = `set -eu
if [ -x "/usr/lib/postgresql/$FROM_MAJOR/bin/postgres" ]; then
  bindir="/usr/lib/postgresql/$FROM_MAJOR/bin"
  dirs="/usr/lib/postgresql/$FROM_MAJOR /usr/share/postgresql/$FROM_MAJOR"
elif [ -x "/usr/pgsql-$FROM_MAJOR/bin/postgres" ]; then
  bindir="/usr/pgsql-$FROM_MAJOR/bin"
  dirs="/usr/pgsql-$FROM_MAJOR"
else
  echo "this image has no PostgreSQL $FROM_MAJOR in /usr/lib/postgresql/$FROM_MAJOR (Debian) or /usr/pgsql-$FROM_MAJOR (Red Hat): set majorUpgrade.fromImage to the image the cluster ran before" >&2
  exit 1
fi
for dir in $dirs; do
  rm -rf -- "$OLD_BINARIES_DIR$dir"
  mkdir -p -- "$OLD_BINARIES_DIR\${dir%/*}"
  cp -a -- "$dir" "$OLD_BINARIES_DIR$dir"
done
ln -sfn -- "\${bindir#/}" "$OLD_BINARIES_DIR/bin"
echo "copied PostgreSQL $FROM_MAJOR from $("$bindir/postgres" --version) into $OLD_BINARIES_DIR" >&2
`;

/**
 * major-upgrade.sh: the init container, in the NEW image, that upgrades the data directory in place
 * before bootstrap.sh, while `majorUpgrade` is set. The HA mode runs the same script.
 */
export function renderMajorUpgradeScript(clusterName: string): string {
  return [HEADER(clusterName), ENVIRONMENT, CREDENTIAL_FUNCTIONS, TEMPORARY_SERVER_FUNCTIONS, MAJOR_VERSION_FUNCTIONS, PRIMARY_CONNINFO,
    PG_UPGRADE, VERIFY, SWAP, PRIMARY, REPLICA, MAIN].join('\n\n');
}

const HEADER = (name: string) => `#!/usr/bin/env bash
# major-upgrade.sh of cluster "${name}", rendered by cdk8s-postgres while majorUpgrade is set.
# Upgrades this pod's data directory from PostgreSQL FROM_MAJOR to TO_MAJOR, idempotently:
#  - primary: pg_upgrade --check, then pg_upgrade into $PGDATA.upgrade on the same volume with
#    the old binaries an init container copied from the old image; the new cluster is started
#    privately (socket only) with the rendered postgresql.conf, its extensions updated, the
#    replicas' slots made and statistics gathered; then it is swapped in and the old cluster
#    kept as $PGDATA.<FROM_MAJOR> until majorUpgrade is removed. $PGDATA.upgrade-state records
#    how far it got, so a pod killed at any point starts again from there.
#  - replica: data of the old major is moved aside; once the primary runs TO_MAJOR, bootstrap.sh
#    clones it again (pg_upgrade carries no physical replication state).
set -euo pipefail`;

const ENVIRONMENT = `: "\${PGDATA:?}" "\${POSTGRES_ROLE:?}" "\${POD_NAME:?}" "\${FROM_MAJOR:?}" "\${TO_MAJOR:?}" "\${CREDENTIALS_DIR:?}" "\${CONFIG_FILE:?}"
TRANSFER="\${TRANSFER:-copy}"
OLD_BINDIR="\${OLD_BINDIR:-}"
REPLICATION_SLOTS="\${REPLICATION_SLOTS:-}"
PRIMARY_HOST="\${PRIMARY_HOST:-}"
TLS_CA_FILE="\${TLS_CA_FILE:-}"
TLS_ENABLED="\${TLS_ENABLED:-}"
PRIMARY_WAIT_SECONDS="\${PRIMARY_WAIT_SECONDS:-300}"
staging="$PGDATA.upgrade"
state_file="$PGDATA.upgrade-state"
old_copy="$PGDATA.$FROM_MAJOR"

${logFunction('major-upgrade', '$POD_NAME')}

write_state() {
  printf '%s\\n' "$1" > "$state_file.tmp"
  mv -f -- "$state_file.tmp" "$state_file"
}`;

/** pg_upgrade --check, then the upgrade itself into the staging directory. */
const PG_UPGRADE = `# This step runs before any server of the pod, and the StatefulSet runs one pod per volume: a
# postmaster.pid here is a killed container's, whose PID may now name another process (a new
# PID namespace, or a zombie), which would make the server refuse to start.
forget_killed_server() {
  rm -f -- "$1/postmaster.pid"
}

# COPY needs room for a second copy of the data; checked before anything changes.
require_room() {
  local used free needed
  used=$(du -sk -- "$PGDATA" | cut -f1)
  free=$(df -Pk -- "\${PGDATA%/*}" | awk 'NR == 2 { print $4 }')
  needed=$((used + used / 10 + 65536))
  if ((free < needed)); then
    log "the data volume has $((free / 1024)) MiB free and pg_upgrade --copy needs about $((needed / 1024)) MiB: grow storage.size, or set majorUpgrade.transfer to MajorUpgradeTransfer.LINK or CLONE"
    exit 1
  fi
}

# pg_upgrade keeps its reports in the new cluster's pg_upgrade_output.d when it fails.
upgrade_failed() {
  local file
  for file in "$staging"/pg_upgrade_output.d/*/*.txt "$staging"/pg_upgrade_output.d/*/log/*.log; do
    if [[ -f $file ]]; then
      log "\${file#"$staging"/}:"
      tail -n 40 -- "$file" >&2
    fi
  done
  log "pg_upgrade failed: the PostgreSQL $FROM_MAJOR cluster in $PGDATA is unchanged; fix the cause above, or roll back: remove majorUpgrade and set postgresVersion back to $FROM_MAJOR"
  exit 1
}

run_pg_upgrade() {
  local superuser checksums=() args started=$SECONDS
  : "\${OLD_BINDIR:?}"
  if ! "$OLD_BINDIR/postgres" --version > /dev/null; then
    log "the PostgreSQL $FROM_MAJOR binaries copied from majorUpgrade.fromImage do not run with this image's libraries: give a fromImage built on the same OS release"
    exit 1
  fi
  # A --link run stopped before the new cluster was started: the old one is whole again.
  if [[ ! -e $PGDATA/global/pg_control && -e $PGDATA/global/pg_control.old ]]; then
    mv -- "$PGDATA/global/pg_control.old" "$PGDATA/global/pg_control"
    log "restored the old cluster's pg_control, renamed by an interrupted pg_upgrade --link"
  fi
  rm -rf -- "$staging"
  if [[ $TRANSFER == copy ]]; then
    require_room
  fi
  workdir=$(mktemp -d)
  # pg_upgrade takes only a cleanly shut down cluster: one killed with its pod (or during an
  # earlier pg_upgrade) recovers first, on a private socket.
  if ! "$OLD_BINDIR/pg_controldata" "$PGDATA" | grep -Eq '^Database cluster state: +shut down$'; then
    log "the PostgreSQL $FROM_MAJOR cluster was not shut down cleanly: recovering it first"
    temporary_server=$PGDATA
    forget_killed_server "$PGDATA"
    "$OLD_BINDIR/pg_ctl" --pgdata="$PGDATA" --wait --silent --options="-c listen_addresses='' -c unix_socket_directories=$workdir" start >&2
    "$OLD_BINDIR/pg_ctl" --pgdata="$PGDATA" --wait --silent --mode=fast stop >&2
    temporary_server=""
  fi
  superuser=$(secret superuser username)
  if "$OLD_BINDIR/pg_controldata" "$PGDATA" | grep -Eq '^Data page checksum version: +[1-9]'; then
    checksums=(--data-checksums)
  elif initdb --help | grep -q -- --no-data-checksums; then
    checksums=(--no-data-checksums)
  fi
  log "initializing the PostgreSQL $TO_MAJOR cluster in $staging"
  initdb --pgdata="$staging" --username="$superuser" --pwfile="$CREDENTIALS_DIR/superuser/password" --auth=scram-sha-256 \\
    --encoding=UTF8 --locale=C.UTF-8 "\${checksums[@]}" > /dev/null
  write_passfile "$workdir/pgpass" superuser
  args=(--old-bindir="$OLD_BINDIR" --old-datadir="$PGDATA" --new-datadir="$staging" --username="$superuser"
    --socketdir="$workdir" --"$TRANSFER")
  log "checking the PostgreSQL $FROM_MAJOR cluster with pg_upgrade --check"
  (cd "$workdir" && PGPASSFILE="$workdir/pgpass" pg_upgrade --check "\${args[@]}" >&2) || upgrade_failed
  log "upgrading with pg_upgrade --$TRANSFER"
  (cd "$workdir" && PGPASSFILE="$workdir/pgpass" pg_upgrade "\${args[@]}" >&2) || upgrade_failed
  write_state "upgraded $TRANSFER"
  rm -rf -- "$workdir"
  workdir=""
  log "pg_upgrade done in $((SECONDS - started)) s"
}`;

/** The new cluster started privately with the rendered config: every database, its extensions, the slots, statistics. */
const VERIFY = `# pg_upgrade's update_extensions.sql, computed again on the new cluster so a restart can redo it.
EXTENSION_UPDATES="SELECT format('ALTER EXTENSION %I UPDATE', name) FROM pg_available_extensions
  WHERE installed_version IS NOT NULL AND installed_version <> default_version"

verify_upgraded() {
  local superuser database slot started=$SECONDS analyzed
  superuser=$(secret superuser username)
  workdir=$(mktemp -d)
  write_passfile "$workdir/pgpass" superuser
  log "starting the PostgreSQL $TO_MAJOR cluster privately to verify it"
  forget_killed_server "$staging"
  start_temporary_server "$staging"
  export PGHOST=$workdir PGPASSFILE=$workdir/pgpass PGUSER=$superuser
  while read -r database; do
    printf '%s\\n\\\\gexec\\n' "$EXTENSION_UPDATES" |
      psql --dbname="dbname=$(conninfo_value "$database")" --no-psqlrc --quiet --set=ON_ERROR_STOP=1 > /dev/null
  done < <(psql --dbname=postgres --no-psqlrc --no-align --tuples-only --command="SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
  # pg_upgrade carries no physical slots: the replicas' are made again before any WAL is written.
  for slot in $REPLICATION_SLOTS; do
    psql --dbname=postgres --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --set=slot="$slot" > /dev/null <<'SQL'
SELECT pg_create_physical_replication_slot(:'slot') WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = :'slot');
SQL
  done
  log "every database accepts logins and its extensions are updated; gathering statistics (vacuumdb --analyze-in-stages)"
  analyzed=$SECONDS
  vacuumdb --all --analyze-in-stages > /dev/null
  analyzed=$((SECONDS - analyzed))
  pg_ctl --pgdata="$staging" --wait --silent --mode=fast stop >&2
  temporary_server=""
  unset PGHOST PGPASSFILE PGUSER
  rm -rf -- "$workdir"
  workdir=""
  write_state "verified $TRANSFER"
  log "the PostgreSQL $TO_MAJOR cluster is verified in $((SECONDS - started)) s, $analyzed s of which gathering statistics"
}`;

const SWAP = `# Two renames on the same volume; settle_major_upgrade finishes them if the pod dies in between.
swap_upgraded() {
  if [[ -n $(data_major "$PGDATA") ]]; then
    rm -rf -- "$old_copy"
    mv -- "$PGDATA" "$old_copy"
  fi
  mv -- "$staging" "$PGDATA"
  rm -f -- "$state_file"
  log "PostgreSQL $TO_MAJOR runs from $PGDATA; the PostgreSQL $FROM_MAJOR cluster is kept in $old_copy until majorUpgrade is removed"
}`;

const PRIMARY = `upgrade_primary() {
  local state="" data
  if [[ -e $state_file ]]; then
    state=$(< "$state_file")
  fi
  data=$(data_major "$PGDATA")
  if [[ -z $data && $state == verified* && -s $staging/PG_VERSION ]]; then
    swap_upgraded
    return
  fi
  if [[ -z $data ]]; then
    log "no cluster in $PGDATA: nothing to upgrade"
    return
  fi
  if [[ $data == "$TO_MAJOR" ]]; then
    log "$PGDATA already holds PostgreSQL $TO_MAJOR$([[ -d $old_copy ]] && printf '; the PostgreSQL %s cluster is kept in %s until majorUpgrade is removed' "$FROM_MAJOR" "$old_copy")"
    return
  fi
  check_data_version "$FROM_MAJOR"
  case $state in
    verified*) ;;
    upgraded*) verify_upgraded ;;
    *)
      run_pg_upgrade
      verify_upgraded
      ;;
  esac
  swap_upgraded
}`;

const REPLICA = `# The replica is cloned again once the primary runs the new major; asked as the replication role.
wait_for_primary() {
  local deadline=$((SECONDS + PRIMARY_WAIT_SECONDS)) version="" conninfo
  workdir=$(mktemp -d)
  write_passfile "$workdir/pgpass" replication
  conninfo="$(primary_conninfo) dbname=postgres connect_timeout=5"
  until version=$(PGPASSFILE="$workdir/pgpass" psql "$conninfo" --no-psqlrc --no-align --tuples-only --command="SHOW server_version_num" 2> /dev/null) &&
    ((version / 10000 == TO_MAJOR)); do
    if ((SECONDS >= deadline)); then
      log "the primary at $PRIMARY_HOST:$PGPORT did not run PostgreSQL $TO_MAJOR within \${PRIMARY_WAIT_SECONDS}s (server_version_num \${version:-unknown}): exiting so that the pod starts over; see the primary pod's major-upgrade container"
      exit 1
    fi
    log "waiting for the primary at $PRIMARY_HOST:$PGPORT to run PostgreSQL $TO_MAJOR (server_version_num \${version:-unknown})"
    sleep 5
  done
  log "the primary runs PostgreSQL $TO_MAJOR ($version): bootstrap.sh clones it"
}

upgrade_replica() {
  local data
  data=$(data_major "$PGDATA")
  if [[ $data == "$TO_MAJOR" ]]; then
    log "$PGDATA already holds a PostgreSQL $TO_MAJOR replica"
    return
  fi
  if [[ -n $data ]]; then
    check_data_version "$FROM_MAJOR"
    rm -rf -- "$old_copy"
    mv -- "$PGDATA" "$old_copy"
    log "moved the PostgreSQL $FROM_MAJOR replica data aside to $old_copy"
  fi
  wait_for_primary
}`;

const MAIN = `binaries=$(binaries_major)
if [[ $binaries != "$TO_MAJOR" ]]; then
  log "this image runs PostgreSQL $binaries, but postgresVersion is $TO_MAJOR: give an image of PostgreSQL $TO_MAJOR"
  exit 1
fi
case $POSTGRES_ROLE in
  primary) upgrade_primary ;;
  replica) upgrade_replica ;;
  *)
    log "POSTGRES_ROLE must be primary or replica, not $POSTGRES_ROLE"
    exit 1
    ;;
esac
`;
