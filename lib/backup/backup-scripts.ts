import { BACKUP_FILES, BACKUP_PATHS } from './backup-layout';
import { BackupModel } from './backup-model';
import { CREDENTIAL_FUNCTIONS, logFunction, TEMPORARY_SERVER_FUNCTIONS } from '../core/shell-functions';

/**
 * backup.sh, the command of every backup CronJob: `backup.sh <repository> <full|diff|incr>`.
 * It creates the stanza first, so the first run works on an empty repository.
 */
export function renderBackupScript(model: BackupModel): string {
  const indexes = model.repositories.map((repository) => repository.index).join(' | ');
  return `#!/usr/bin/env bash
# backup.sh of cluster "${model.stanza}", rendered by cdk8s-postgres: the backup CronJobs' command.
# backup.sh <repository> <full|diff|incr>, with the repository's own config:
#  - stanza-create makes the stanza in an empty repository and checks it otherwise (it is
#    idempotent), so the first scheduled run needs no separate step;
#  - the backup then runs with the repository local and the instances remote, over TLS;
#    pgBackRest finds the primary among them, and expires what the retention no longer keeps.
set -euo pipefail

usage="usage: backup.sh <repository> <full|diff|incr>"
repository=\${1:?$usage}
type=\${2:?$usage}
case $repository in
  ${indexes}) ;;
  *)
    printf 'backup.sh: no repository %s; %s\\n' "$repository" "$usage" >&2
    exit 2
    ;;
esac
case $type in
  full | diff | incr) ;;
  *)
    printf 'backup.sh: no backup type %s; %s\\n' "$type" "$usage" >&2
    exit 2
    ;;
esac
config="${BACKUP_PATHS.configDir}/backup-repo$repository.conf"

pgbackrest --config="$config" --stanza=${model.stanza} stanza-create
exec pgbackrest --config="$config" --stanza=${model.stanza} --repo="$repository" backup --type="$type"
`;
}

/**
 * restore.sh: creates the data directory from a backup instead of initdb. The plain mode runs
 * it from its bootstrap on the primary, Patroni as its custom bootstrap method (it takes the
 * `--datadir=` argument Patroni passes). It reads RESTORE_ENVIRONMENT. A clone renders it for its
 * source's stanza and repository, and runs it with the source's config.
 */
export function renderRestoreScript(model: Pick<BackupModel, 'stanza' | 'restore'>): string {
  const restore = model.restore;
  if (!restore) throw new Error(`cluster "${model.stanza}" has no backup.restore: there is no restore script to render`);
  const target = restore.targetTime === undefined
    ? 'the latest point its WAL reaches'
    : `${restore.targetTime} along timeline ${restore.targetTimeline}`;
  const targetOptions = restore.targetTime === undefined ? '' : ` \\
  --type=time '--target=${restore.targetTime}' --target-action=promote --target-timeline=${restore.targetTimeline}`;
  return `#!/usr/bin/env bash
# restore.sh of cluster "${model.stanza}", rendered by cdk8s-postgres.
# Creates the cluster from repository ${restore.repository} of stanza "${model.stanza}", recovered to
# ${target}, idempotently:
#  - a data directory that holds a cluster is left as it is, so the option can stay set;
#  - otherwise the backup is restored into an empty 0700 sibling directory, recovered by a
#    temporary server with no TCP listener until it is promoted, stopped, cleaned of the
#    recovery settings (replicas cloned from it must not stop at the target), and only then
#    renamed to the data directory: a pod killed half-way starts over.
set -euo pipefail

: "\${PGDATA:?}" "\${CONFIG_FILE:?}" "\${PGBACKREST_CONFIG:?}"
PG_WALDIR="\${PG_WALDIR:-}"
# Patroni's custom bootstrap passes --scope and --datadir.
for argument in "$@"; do
  case $argument in
    --datadir=*) PGDATA=\${argument#--datadir=} ;;
    *) ;;
  esac
done

${logFunction('restore')}

staging="$PGDATA.restore"
${TEMPORARY_SERVER_FUNCTIONS}

if [[ -s "$PGDATA/PG_VERSION" ]]; then
  log "data directory holds a cluster: nothing to restore"
  exit 0
fi

log "restoring repository ${restore.repository} of stanza ${model.stanza} to ${target}"
rm -rf -- "$staging"
mkdir -p -- "$(dirname -- "$staging")"
mkdir -m 0700 -- "$staging"
# pgBackRest takes options from the environment too: until the rename, the data directory of
# the restore, and of archive-get and archive-push under the recovering server, is the staging one.
export PGBACKREST_PG1_PATH="$staging"
pgbackrest --config="$PGBACKREST_CONFIG" --stanza=${model.stanza} --repo=${restore.repository} \\
  --recovery-option="restore_command=pgbackrest --config=$PGBACKREST_CONFIG --stanza=${model.stanza} archive-get %f \\"%p\\""${targetOptions} \\
  restore >&2

if [[ -n $PG_WALDIR ]]; then
  rm -rf -- "$PG_WALDIR"
  mv -- "$staging/pg_wal" "$PG_WALDIR"
  ln -s -- "$PG_WALDIR" "$staging/pg_wal"
fi

log "recovering"
workdir=$(mktemp -d)
start_temporary_server "$staging" -c hot_standby=on
until [[ $(LC_ALL=C pg_controldata "$staging" | sed -n 's/^Database cluster state: *//p') == "in production" ]]; do
  if ! pg_ctl --pgdata="$staging" status > /dev/null; then
    temporary_server=""
    log "recovery stopped before the cluster was promoted: see the server's log above"
    exit 1
  fi
  sleep 1
done
pg_ctl --pgdata="$staging" --wait --timeout=600 --mode=fast --silent stop >&2
temporary_server=""
unset PGBACKREST_PG1_PATH

auto_conf="$staging/postgresql.auto.conf"
grep -v -E '^(restore_command|recovery_target[a-z_]*) = |^# Recovery settings generated by pgBackRest' -- "$auto_conf" > "$auto_conf.tmp" || true
mv -f -- "$auto_conf.tmp" "$auto_conf"

if [[ -e $PGDATA ]]; then
  rmdir -- "$PGDATA"
fi
mv -- "$staging" "$PGDATA"
log "cluster restored and promoted"
`;
}

/** The restore script's path in the instance pods. */
export const RESTORE_SCRIPT_PATH = `${BACKUP_PATHS.configDir}/${BACKUP_FILES.restoreScript}`;

/**
 * server.sh, the instances' server sidecar: the remote it forks for a backup logs in to
 * PostgreSQL over the socket as the superuser, with libpq's password from a passfile written
 * here from the mounted Secret (PGPASSWORD would show in the environment). pgBackRest has no
 * file option for the S3 keys or the cipher pass: those stay in its environment.
 */
export function renderServerScript(model: BackupModel): string {
  return `#!/usr/bin/env bash
# server.sh of cluster "${model.stanza}", rendered by cdk8s-postgres.
set -euo pipefail

: "\${CREDENTIALS_DIR:?}" "\${PGPASSFILE:?}"
log() {
  printf 'server: %s\\n' "$*" >&2
}

${CREDENTIAL_FUNCTIONS}

write_passfile "$PGPASSFILE" superuser
exec pgbackrest --config=${BACKUP_PATHS.configDir}/${BACKUP_FILES.instanceConf} server
`;
}

/**
 * stanza-upgrade.sh, the command of the stanza-upgrade Jobs rendered while a major upgrade is under
 * way: `stanza-upgrade.sh <repository> <major>`. pgBackRest runs stanza-upgrade only where the
 * repository is local, so it runs as a backup job does (the repository local, the instances
 * remote), in either mode: not in the instances' upgrade step, which reaches a volume repository
 * only through the repository host's server.
 */
export function renderStanzaUpgradeScript(model: BackupModel): string {
  const indexes = model.repositories.map((repository) => repository.index).join(' | ');
  const pgbackrest = `pgbackrest --config="$config" --stanza=${model.stanza}`;
  return `#!/usr/bin/env bash
# stanza-upgrade.sh of cluster "${model.stanza}", rendered by cdk8s-postgres while majorUpgrade is set.
# stanza-upgrade.sh <repository> <major>, with the repository's backup config:
#  - until the primary pgBackRest finds among the instances runs <major> (upgraded by pg_upgrade
#    and swapped in), stanza-upgrade is a no-op or fails, and is tried again; meanwhile the new
#    system's archive-push fails and PostgreSQL keeps its WAL until it succeeds;
#  - stanza-upgrade then adds the new system to the stanza (stanza-create, for a stanza never made);
#  - check: a WAL switch archived by the new system;
#  - a full backup: PITR does not cross the upgrade, and a backup of the old major restores
#    only with the old major's binaries.
set -euo pipefail

usage="usage: stanza-upgrade.sh <repository> <major>"
repository=\${1:?$usage}
major=\${2:?$usage}
case $repository in
  ${indexes}) ;;
  *)
    printf 'stanza-upgrade.sh: no repository %s; %s\\n' "$repository" "$usage" >&2
    exit 2
    ;;
esac
if [[ ! $major =~ ^[1-9][0-9]$ ]]; then
  printf 'stanza-upgrade.sh: %s is not a PostgreSQL major; %s\\n' "$major" "$usage" >&2
  exit 2
fi
config="${BACKUP_PATHS.configDir}/backup-repo$repository.conf"

${logFunction('stanza-upgrade')}

# The major of the stanza's newest system, from the "db" list of pgBackRest's info (empty: no stanza).
stanza_major() {
  ${pgbackrest} --output=json info 2> /dev/null |
    sed -n 's/.*"db":\\[\\([^]]*\\)\\].*/\\1/p' | grep -o '"version":"[0-9]*"' | tail -n 1 | tr -dc '0-9' || true
}

started=$SECONDS
until [[ $(stanza_major) == "$major" ]]; do
  ${pgbackrest} stanza-upgrade || ${pgbackrest} stanza-create || true
  current=$(stanza_major)
  if [[ $current == "$major" ]]; then
    break
  fi
  log "the stanza of repository $repository is on PostgreSQL \${current:-nothing yet}: waiting for the primary to run PostgreSQL $major"
  sleep 10
done
log "the stanza of repository $repository is on PostgreSQL $major ($((SECONDS - started)) s); checking the new system's archiving"
${pgbackrest} check
log "taking a full backup of PostgreSQL $major into repository $repository"
exec ${pgbackrest} --repo="$repository" backup --type=full
`;
}
