import { ClusterModel } from './cluster-model';
import { CHECK_REPLICA_DATA, EMPTY_PRIMARY, IDENTITY_FUNCTIONS, rebuildPrimary } from './data-identity-script';
import { MAJOR_VERSION_FUNCTIONS } from './major-version-functions';
import { PROVISIONING_PGOPTIONS, ProvisioningModel, renderProvisioningSql } from './provisioning';
import { COPIED_DATA_FUNCTIONS, renderSourceFunctions } from './source-bootstrap-script';
import { tablespaceShellFunctions } from './tablespaces';
import { CREDENTIAL_FUNCTIONS, logFunction, TEMPORARY_SERVER_FUNCTIONS } from '../core/shell-functions';

/**
 * The environment the bootstrap script reads. The StatefulSets set it from the pod layout;
 * the end-to-end tests set it to paths and ports on a workstation.
 */
export const BOOTSTRAP_ENVIRONMENT = [
  'PGDATA', 'PG_WALDIR', 'POSTGRES_ROLE', 'POD_NAME', 'PRIMARY_HOST', 'PGPORT', 'PGPASSFILE', 'CREDENTIALS_DIR', 'CONFIG_FILE',
  'TLS_CA_FILE', 'TLS_ENABLED', 'RESTORE_SCRIPT', 'MAJOR_UPGRADE_FROM', 'HEADLESS_SERVICE', 'PRIMARY_RECOVERY',
] as const;

/**
 * bootstrap.sh, the init container of every instance. It makes the data directory ready and
 * leaves one that already holds a cluster alone, so running it again is always safe.
 */
export function renderBootstrapScript(model: ClusterModel, provisioning: ProvisioningModel): string {
  return [
    header(model.name),
    ENVIRONMENT,
    CREDENTIAL_FUNCTIONS,
    TEMPORARY_SERVER_FUNCTIONS,
    MAJOR_VERSION_FUNCTIONS,
    ...(model.tablespaces.length > 0 ? [tablespaceShellFunctions(model.tablespaces)] : []),
    ...(model.clone || model.standby ? [renderSourceFunctions(model)] : []),
    INITIALIZE_PRIMARY,
    provisionPrimary(renderProvisioningSql(provisioning)),
    PRIMARY_CONNINFO,
    STANDBY_SETTINGS,
    COPIED_DATA_FUNCTIONS,
    cloneReplica(model.tablespaces.length > 0),
    replicaSlot(model.backup !== undefined),
    IDENTITY_FUNCTIONS,
    CHECK_REPLICA_DATA,
    EMPTY_PRIMARY,
    rebuildPrimary(model.tablespaces.length > 0),
    main(model.tablespaces.length > 0),
  ].join('\n\n');
}

/** What the script does and why it is safe to run again. */
function header(name: string): string {
  return `#!/usr/bin/env bash
# bootstrap.sh of cluster "${name}", rendered by cdk8s-postgres.
# Prepares this pod's data directory before PostgreSQL starts, idempotently:
#  - a data directory that holds a cluster is left as it is: a restart starts as it was; a
#    replica's is refused when it is not a copy of the primary's history (promoted by hand,
#    another cluster, a timeline ahead or forked);
#  - an empty one on the primary is created by initdb, or from a backup by restore.sh; initdb is
#    refused while other pods of the cluster answer (the replicas hold the cluster this primary
#    lost), unless primaryRecovery rebuilds it from the most advanced replica;
#  - an empty one on a replica is cloned from the primary by pg_basebackup through a
#    replication slot named after the pod, so a replica whose volume was lost re-clones;
#  - a replica's primary_conninfo is rewritten at every start, so a new primary address or
#    TLS setting reaches replicas cloned before it.
# Then, on the primary, roles and databases are brought in step with the Secrets and props.
# Work happens in a sibling directory renamed at the end: a pod killed half-way starts over
# instead of keeping a half-made cluster. Passwords are read from files, never put in argv.
set -euo pipefail`;
}

/** The environment it reads, and its log lines on stderr. */
const ENVIRONMENT = `: "\${PGDATA:?}" "\${POSTGRES_ROLE:?}" "\${POD_NAME:?}" "\${PRIMARY_HOST:?}" "\${PGPORT:?}"
: "\${PGPASSFILE:?}" "\${CREDENTIALS_DIR:?}" "\${CONFIG_FILE:?}" "\${HEADLESS_SERVICE:?}"
PG_WALDIR="\${PG_WALDIR:-}"
TLS_CA_FILE="\${TLS_CA_FILE:-}"
TLS_ENABLED="\${TLS_ENABLED:-}"
RESTORE_SCRIPT="\${RESTORE_SCRIPT:-}"
MAJOR_UPGRADE_FROM="\${MAJOR_UPGRADE_FROM:-}"
PRIMARY_RECOVERY="\${PRIMARY_RECOVERY:-}"
SLOT_NAME="\${POD_NAME//-/_}"

${logFunction('bootstrap', '$POD_NAME')}`;

/** A new primary: initdb into a staging directory, or restore.sh from a backup. */
const INITIALIZE_PRIMARY = `wal_dir_args=()
reset_staging() {
  rm -rf -- "$1"
  if [[ -n $PG_WALDIR ]]; then
    rm -rf -- "$PG_WALDIR"
    wal_dir_args=(--waldir="$PG_WALDIR")
  fi
}

initialize_primary() {
  local staging="$PGDATA.initdb" superuser replica address pod position
  if [[ -n \${SOURCE_MODE:-} ]]; then
    initialize_from_source
    return
  fi
  if [[ -n $RESTORE_SCRIPT ]]; then
    log "creating the cluster from a backup"
    "$RESTORE_SCRIPT"
    return
  fi
  replica=$(empty_primary_source)
  if [[ -n $replica ]]; then
    read -r address pod position <<< "$replica"
    rebuild_primary "$address" "$pod" "$position"
    return
  fi
  superuser=$(secret superuser username)
  reset_staging "$staging"
  log "initializing a new cluster"
  initdb --pgdata="$staging" "\${wal_dir_args[@]}" --username="$superuser" \\
    --pwfile="$CREDENTIALS_DIR/superuser/password" --auth=scram-sha-256 \\
    --encoding=UTF8 --locale=C.UTF-8 --data-checksums >&2
  mv -- "$staging" "$PGDATA"
  log "cluster initialized"
}`;

/** Roles and databases in step with the Secrets and props, on a server no client can reach yet. */
function provisionPrimary(provisioningSql: string): string {
  return `# Roles, passwords and databases, on a server with a private socket and no TCP listener:
# no client can connect before they are in place. Synchronous replication is off meanwhile,
# as replicas are not streaming yet to confirm commits. PGOPTIONS keeps the statements, which
# carry passwords, out of every log.
provision_primary() {
  local superuser provisioning_server_options
  workdir=$(mktemp -d)
  provisioning_login
  start_temporary_server "$PGDATA" "\${provisioning_server_options[@]}"
  PGPASSFILE="$workdir/pgpass" PGOPTIONS='${PROVISIONING_PGOPTIONS}' psql --host="$workdir" --username="$superuser" \\
    --dbname=postgres --no-psqlrc --quiet --set=ON_ERROR_STOP=1 > /dev/null <<'SQL'
${provisioningSql}
SQL
  pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop >&2
  temporary_server=""
  provisioning_done
  log "roles and databases provisioned"
}`;
}

/** The replication connection to the primary; major-upgrade.sh asks the primary's version through it. */
export const PRIMARY_CONNINFO = `# The replication connection: with a CA, the primary's certificate is verified against it for
# the primary pod's host name; a self-signed one is taken unverified, but always over TLS.
primary_conninfo() {
  local user conninfo
  user=$(secret replication username)
  conninfo="host=$(conninfo_value "$PRIMARY_HOST") port=$PGPORT user=$(conninfo_value "$user")"
  if [[ -n $TLS_CA_FILE ]]; then
    conninfo+=" sslmode=verify-full sslrootcert=$(conninfo_value "$TLS_CA_FILE")"
  elif [[ -n $TLS_ENABLED ]]; then
    conninfo+=" sslmode=require"
  fi
  printf '%s' "$conninfo"
}`;

/** A replica's primary_conninfo and slot, rewritten at every start. */
const STANDBY_SETTINGS = `# replace_standby_settings <data directory> [<line>...]: postgresql.auto.conf without its
# primary_conninfo and primary_slot_name, and with these lines.
replace_standby_settings() {
  local auto_conf="$1/postgresql.auto.conf"
  shift
  touch -- "$auto_conf"
  {
    grep -v -E '^(primary_conninfo|primary_slot_name) ' -- "$auto_conf" || true
    if (($# > 0)); then
      printf '%s\\n' "$@"
    fi
  } > "$auto_conf.tmp"
  mv -f -- "$auto_conf.tmp" "$auto_conf"
}

# write_standby_settings <data directory>: primary_conninfo and the slot, replacing earlier ones.
# Written here rather than with --write-recovery-conf, which would copy the password from the
# passfile into the file.
write_standby_settings() {
  replace_standby_settings "$1" \\
    "primary_conninfo = $(conninfo_value "$(primary_conninfo) passfile=$(conninfo_value "$PGPASSFILE") application_name=$SLOT_NAME")" \\
    "primary_slot_name = '$SLOT_NAME'"
}`;

/** A new replica: pg_basebackup from the primary through its slot, into emptied tablespace directories. */
function cloneReplica(tablespaces: boolean): string {
  return `clone_replica() {
  local staging="$PGDATA.basebackup" conninfo
  reset_staging "$staging"
  conninfo=$(primary_conninfo)
  until pg_isready --host="$PRIMARY_HOST" --port="$PGPORT" --timeout=5 --quiet; do
    log "waiting for the primary at $PRIMARY_HOST:$PGPORT"
    sleep 2
  done
  # The slot keeps the primary's WAL until this replica has streamed it, also across restarts.
  pg_receivewal --create-slot --if-not-exists --slot="$SLOT_NAME" --dbname="$conninfo" --no-password >&2${tablespaces ? '\n  empty_tablespace_dirs' : ''}
  log "cloning from $PRIMARY_HOST through slot $SLOT_NAME"
  pg_basebackup --pgdata="$staging" "\${wal_dir_args[@]}" --wal-method=stream --slot="$SLOT_NAME" \\
    --checkpoint=fast --no-password --dbname="$conninfo" >&2
  touch -- "$staging/standby.signal"
  mv -- "$staging" "$PGDATA"
  log "replica cloned"
}`;
}

/**
 * A replica starting from its data gets its slot on the primary back when the slot was dropped
 * or invalidated; with a backup repository it then catches up from the archive, without one a
 * replica that cannot catch up says so and does not start.
 */
function replicaSlot(archived: boolean): string {
  const fix = 'delete its PersistentVolumeClaims (data-$POD_NAME, and wal-$POD_NAME with a WAL volume) and the pod to clone it again';
  const removed = "its log then repeats 'requested WAL segment ... has already been removed'";
  const lost = archived
    ? `      log "slot $SLOT_NAME on the primary was invalidated past max_slot_wal_keep_size: making it again; this replica fetches the WAL the primary removed from the backup repository (restore_command), then streams; if no repository has it either (expired), ${removed}: ${fix}"`
    : `      log "slot $SLOT_NAME on the primary was invalidated past max_slot_wal_keep_size: the primary removed WAL this replica has not received, and there is no backup repository to fetch it from, so it cannot catch up: ${fix}"
      exit 1`;
  const missing = archived ? `if neither the primary nor a backup repository has the WAL it needs, ${removed}: ${fix}`
    : `if the primary removed WAL it needs, ${removed}: ${fix}`;
  return `# ensure_replica_slot: a slot dropped (by hand, or when the replica was scaled away) or
# invalidated past max_slot_wal_keep_size (wal_status lost) refuses streaming forever, so it is
# made again, holding WAL from now on. The primary removes no WAL before archive_command has
# archived it, so with a backup repository restore_command finds what the primary removed, and
# the replica streams once it has caught up: nothing is cloned. Asked as the replication role,
# over a plain connection (pg_replication_slots is readable by any role, and the role may
# create and drop slots).
ensure_replica_slot() {
  local conninfo wal_status
  conninfo="$(primary_conninfo) dbname=postgres"
  if ! pg_isready --host="$PRIMARY_HOST" --port="$PGPORT" --timeout=5 --quiet; then
    log "the primary at $PRIMARY_HOST:$PGPORT does not answer: slot $SLOT_NAME not checked"
    return 0
  fi
  if ! wal_status=$(psql --dbname="$conninfo" --no-password --no-psqlrc --no-align --tuples-only --set=ON_ERROR_STOP=1 \\
    --set=slot="$SLOT_NAME" <<'SQL'
SELECT coalesce(wal_status, 'unused') FROM pg_replication_slots WHERE slot_name = :'slot';
SQL
  ); then
    log "could not read slot $SLOT_NAME on the primary: not checked"
    return 0
  fi
  case $wal_status in
    lost)
${lost}
      ;;
    "")
      log "slot $SLOT_NAME is missing on the primary: making it again; ${missing}"
      ;;
    *)
      return 0
      ;;
  esac
  psql --dbname="$conninfo" --no-password --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --set=slot="$SLOT_NAME" > /dev/null <<'SQL'
SELECT pg_drop_replication_slot(:'slot') FROM pg_replication_slots WHERE slot_name = :'slot';
SELECT pg_create_physical_replication_slot(:'slot', true);
SQL
}`;
}

/** What runs: the passfile and the tablespaces' directories, then a new data directory made or an old one kept, then provisioning or standby settings. */
function main(tablespaces: boolean): string {
  return `# The replication passfile serves pg_basebackup now and the WAL receiver later.
write_passfile "$PGPASSFILE" replication${tablespaces ? '\nmake_tablespace_dirs' : ''}

case $POSTGRES_ROLE in
  primary | replica) ;;
  *)
    log "POSTGRES_ROLE must be primary or replica, not $POSTGRES_ROLE"
    exit 1
    ;;
esac
# Data of another major is refused; with no major upgrade set, what an earlier one left is settled.
if [[ -z $MAJOR_UPGRADE_FROM ]]; then
  settle_major_upgrade
fi
check_data_version "$MAJOR_UPGRADE_FROM"
if [[ -z $MAJOR_UPGRADE_FROM ]]; then
  remove_old_majors
fi
if [[ -s "$PGDATA/PG_VERSION" ]]; then
  # Data of the major upgraded from is the upgrade's business.
  if [[ $POSTGRES_ROLE == replica && $(data_major "$PGDATA") == "$(binaries_major)" ]]; then
    check_replica_data
  fi
  log "data directory holds a cluster: starting it as it is"
  if [[ $POSTGRES_ROLE == replica ]]; then
    ensure_replica_slot
  fi
elif [[ $POSTGRES_ROLE == primary ]]; then
  initialize_primary
else
  clone_replica
fi
if [[ $POSTGRES_ROLE == primary && \${SOURCE_MODE:-} == standby ]]; then
  follow_source
elif [[ $POSTGRES_ROLE == primary ]]; then
  promote_former_standby
  provision_primary
else
  write_standby_settings "$PGDATA"
fi
`;
}
