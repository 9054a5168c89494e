import { IConstruct } from 'constructs';
import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { ClusterModel } from './cluster-model';
import { CloneMethod } from './source-cluster';
import { SOURCE_FILES, SOURCE_PATHS, SOURCE_REPLICATION_SECRET_DIR, SourceModel, StandbyModel } from './source-cluster-model';
import { sourceParameters } from './source-pod';
import { propError } from '../core/errors';
import { CREDENTIAL_FUNCTIONS, logFunction } from '../core/shell-functions';
import { ResolvedTls, TLS_FILES } from '../core/tls';

/**
 * The HA mode's clone and standby: what Patroni does with a source cluster.
 * - A clone is Patroni's custom bootstrap (`bootstrap.method: clone`): patroni-source.sh restores
 *   the source's backup (the source's restore.sh) or copies the running source (pg_basebackup), and
 *   makes the cluster's superuser role when the source has none of its name; Patroni, which opens
 *   `local` trust for its superuser during a custom bootstrap, then sets the role's password, runs
 *   post_bootstrap (provision.sh) and writes the cluster's pg_hba.conf.
 * - A standby is Patroni's `standby_cluster` in the dynamic configuration: Patroni creates every
 *   member by its `create_replica_methods` (the source's latest backup restored as a standby by
 *   patroni-source.sh, or pg_basebackup); the standby leader then replays the source's WAL from
 *   its repository (restore_command) and/or streams from its primary, and the other members
 *   stream from the standby leader. Dropping `standby` drops the section, which the settings
 *   agent removes from the store: Patroni then promotes the standby leader.
 */

/** The custom bootstrap's and the replica method's name in patroni.yml. */
const CLONE_METHOD = 'clone';
const SOURCE_BACKUP_METHOD = 'source_backup';

/** The file patroni-start.sh writes the CAs of a standby's replication connections to: the cluster's and the source's. */
export const REPLICATION_AUTHORITY_FILE = `${CLUSTER_PATHS.patroniDir}/replication-ca.crt`;

/** patroni-source.sh's name in the Scripts ConfigMap. */
export const PATRONI_SOURCE_SCRIPT = 'patroni-source.sh';
const sourceScriptPath = () => `${CLUSTER_PATHS.scriptsDir}/${PATRONI_SOURCE_SCRIPT}`;
const sourceConf = `${SOURCE_PATHS.configDir}/${SOURCE_FILES.conf}`;
const sourceAuthority = `${SOURCE_PATHS.authorityDir}/${TLS_FILES.authority}`;

/**
 * The HA mode's checks of a standby: Patroni has one `authentication.replication` for the members
 * and the source, so a standby streaming from its source verifies both against CAs, and needs the
 * cluster's own.
 */
export function validatePatroniSource(scope: IConstruct, standby: StandbyModel | undefined, tls: ResolvedTls | undefined): void {
  if (standby?.source.streaming && !tls?.authority) {
    throw propError(scope, 'tls', tls ? 'a self-signed certificate' : 'disabled',
      'has no CA, and the members of an HA standby verify each other with the CAs they verify the source with (Patroni has one replication authentication for both)',
      'set tls to a Secret with ca.crt (or an issuer), or follow the source from its repository only');
  }
}

/**
 * Whether restore.sh recovers the data with a temporary server before Patroni starts it (a restore
 * of the cluster's own backup, or a clone from the source's), which reads the rendered postgresql.conf.
 */
export function recoversBeforePatroni(model: ClusterModel): boolean {
  return model.backup?.restore !== undefined || model.clone?.method === CloneMethod.FROM_BACKUP;
}

/** patroni.yml's bootstrap additions of a clone: the custom method. */
export function patroniCloneBootstrap(model: ClusterModel): object {
  if (!model.clone) return {};
  return { method: CLONE_METHOD, [CLONE_METHOD]: { command: sourceScriptPath() } };
}

/** The dynamic configuration's standby_cluster of a standby; undefined otherwise. */
export function patroniStandbyCluster(model: ClusterModel): object | undefined {
  const source = model.standby?.source;
  if (!source) return undefined;
  // From the repository first: it costs the source nothing. Streaming alone copies the source.
  const methods = [...(source.repository ? [SOURCE_BACKUP_METHOD] : []), ...(source.streaming ? ['basebackup'] : [])];
  return {
    ...(source.streaming ? { host: source.streaming.host, port: source.streaming.port } : {}),
    // The source's WAL from its repository, as the plain mode's standby fetches it.
    ...(source.repository ? { restore_command: sourceParameters(model).find((parameter) => parameter.name === 'restore_command')!.value } : {}),
    create_replica_methods: methods,
  };
}

/** patroni.yml's postgresql additions: the standby leader's replica method from the source's backup. */
export function patroniSourceMethods(model: ClusterModel): object {
  if (!model.standby?.source.repository) return {};
  // no_leader: Patroni runs it with no connection to anyone.
  return { [SOURCE_BACKUP_METHOD]: { command: sourceScriptPath(), no_leader: true } };
}

/**
 * The replication connections' TLS while the cluster is a standby streaming from its source:
 * Patroni has one `authentication.replication` for its members and the source, so both CAs.
 */
export function standbyReplicationTls(model: ClusterModel): object | undefined {
  return model.standby?.source.streaming ? { sslmode: 'verify-full', sslrootcert: REPLICATION_AUTHORITY_FILE } : undefined;
}

/** What patroni-start.sh does for a source: the Secret of the replication role, and the CAs to concatenate. */
export interface PatroniStartSource {
  /** The replication role's directory under CREDENTIALS_DIR. */
  readonly replicationSecretDir: string;
  /** CA files concatenated into REPLICATION_AUTHORITY_FILE. */
  readonly authorities: string[];
}

/** A standby streaming from its source replicates as the source's replication role, verifying both CAs. */
export function patroniStartSource(model: ClusterModel): PatroniStartSource | undefined {
  if (!model.standby?.source.streaming) return undefined;
  return { replicationSecretDir: SOURCE_REPLICATION_SECRET_DIR, authorities: [`${CLUSTER_PATHS.tlsDir}/${TLS_FILES.authority}`, sourceAuthority] };
}

/**
 * patroni-source.sh: Patroni's custom bootstrap of a clone (arguments `--scope`, `--datadir`), or
 * a standby leader's replica method from the source's backup (`--role=replica`, `--datadir`, ...).
 * Undefined for neither, and for a standby from streaming alone (Patroni's pg_basebackup).
 */
export function renderPatroniSourceScript(model: ClusterModel): string | undefined {
  const clone = model.clone;
  const source = clone?.source ?? model.standby?.source;
  if (!source || (!clone && !source.repository)) return undefined;
  const what = !clone ? 'the standby leader\'s replica method: the source\'s latest backup restored as a\n#   standby, which Patroni starts in recovery, following the source'
    : `Patroni's custom bootstrap of a clone: ${clone.method === CloneMethod.FROM_RUNNING_CLUSTER
      ? 'pg_basebackup copies the running source over TLS' : 'the source\'s restore.sh recovers its backup and promotes it'};
#   then the cluster's superuser role is made, by name only, if the source has none of that name:
#   Patroni sets its password (it opens local trust for its superuser during a custom bootstrap),
#   then provisions and writes the cluster's pg_hba.conf`;
  return `#!/usr/bin/env bash
# patroni-source.sh of cluster "${model.name}", rendered by cdk8s-postgres: creates the data
# directory from cluster "${source.name}", as
#   ${what}.
set -euo pipefail

: "\${CREDENTIALS_DIR:?}"
datadir=""
for argument in "$@"; do
  case $argument in
    --datadir=*) datadir=\${argument#--datadir=} ;;
    *) ;;
  esac
done
: "\${datadir:?usage: patroni-source.sh --datadir=<data directory>}"
wal_dir="${model.storage.walSize ? CLUSTER_PATHS.walDir : ''}"

${logFunction('patroni-source')}

# An empty 0700 data directory, and no WAL directory beside it.
rm -rf -- "$datadir"
mkdir -m 0700 -- "$datadir"
if [[ -n $wal_dir ]]; then
  rm -rf -- "$wal_dir"
fi
${clone ? cloneSteps(clone) : restoreStandby(source)}`;
}

/** The source's latest backup as a standby: Patroni writes the recovery settings and starts it. */
function restoreStandby(source: SourceModel): string {
  return `log "restoring the latest backup of cluster ${source.name} (repository ${source.repository!.key}) as a standby"
pgbackrest --config=${sourceConf} --stanza=${source.name} --repo=${source.repository!.key} --pg1-path="$datadir" --type=standby restore >&2
if [[ -n $wal_dir ]]; then
  mv -- "$datadir/pg_wal" "$wal_dir"
  ln -s -- "$wal_dir" "$datadir/pg_wal"
fi
`;
}

/** A clone's copy of the source, then the cluster's superuser role by name, in single-user mode (its session is the bootstrap superuser's). */
function cloneSteps(clone: NonNullable<ClusterModel['clone']>): string {
  const source = clone.source;
  const streaming = source.streaming;
  const copy = clone.method === CloneMethod.FROM_RUNNING_CLUSTER ? `# The running source, copied over TLS (verified for its host name) as its replication role.
workdir=$(mktemp -d)
trap 'rm -rf -- "$workdir"' EXIT
write_passfile "$workdir/pgpass" ${SOURCE_REPLICATION_SECRET_DIR}
user=$(secret ${SOURCE_REPLICATION_SECRET_DIR} username)
log "copying the running cluster ${source.name} from ${streaming!.host}:${streaming!.port} (pg_basebackup)"
PGPASSFILE="$workdir/pgpass" pg_basebackup --pgdata="$datadir" --wal-method=stream --checkpoint=fast --no-password \\
  \${wal_dir:+"--waldir=$wal_dir"} \\
  --dbname="host=${streaming!.host} port=${streaming!.port} user=$(conninfo_value "$user") sslmode=verify-full sslrootcert=${sourceAuthority}" >&2`
    : `PGDATA="$datadir" PG_WALDIR="$wal_dir" CONFIG_FILE=${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.postgresqlConf} PGBACKREST_CONFIG=${sourceConf} \\
  ${SOURCE_PATHS.configDir}/${SOURCE_FILES.restoreScript}`;
  return `
${CREDENTIAL_FUNCTIONS}

${copy}

name=$(secret superuser username)
# shellcheck disable=SC2016 # $do$ quotes SQL
printf 'DO $do$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %s) THEN CREATE ROLE %s SUPERUSER LOGIN; END IF; END $do$;\\n' \\
  "'\${name//\\'/\\'\\'}'" "\\"\${name//\\"/\\"\\"}\\"" | postgres --single -D "$datadir" postgres > /dev/null
log "cloned from cluster ${source.name}"
`;
}
