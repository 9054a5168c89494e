import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { MAJOR_VERSION_FUNCTIONS } from './major-version-functions';
import { PatroniStartSource, REPLICATION_AUTHORITY_FILE } from './patroni-source';
import { REPLICATION_SECRET_DIR } from './provisioning';
import { TablespaceModel, tablespaceShellFunctions } from './tablespaces';
import { CREDENTIAL_FUNCTIONS, logFunction } from '../core/shell-functions';

/**
 * The environment patroni-start.sh reads: the mounted Secrets, and the in-memory directory it
 * writes Patroni's configuration to, which patronictl in the pod finds through the same variable.
 */
export const PATRONI_START_ENVIRONMENT = ['CREDENTIALS_DIR', 'PATRONICTL_CONFIG_FILE', 'PGDATA', 'MAJOR_UPGRADE_FROM'] as const;

/** The environment variable with the pod's template revision (its StatefulSet revision label), which patroni-start.sh and the preStop hook read. */
export const TEMPLATE_REVISION_ENV = 'POD_TEMPLATE_REVISION';
/** Patroni's member tag holding it, listed by `GET /cluster`. */
export const TEMPLATE_TAG = 'pod_template';

/** The REST API's Secret, under CREDENTIALS_DIR beside the roles' (whose directories are `superuser`, `replication` and `role-*`). */
export const PATRONI_API_SECRET_DIR = 'patroni-api';

/**
 * The data's major against the image's, as bootstrap.sh checks it in the plain mode: data of a
 * newer major, or of an older one without majorUpgrade (MAJOR_UPGRADE_FROM empty), is refused
 * before Patroni could start it; with the prop removed, what an upgrade left is settled and the
 * old major's data kept since (`$PGDATA.<old major>`) deleted.
 */
const MAJOR_VERSION_CHECK = `${MAJOR_VERSION_FUNCTIONS}

: "\${PGDATA:?}"
MAJOR_UPGRADE_FROM="\${MAJOR_UPGRADE_FROM:-}"
if [[ -z $MAJOR_UPGRADE_FROM ]]; then
  settle_major_upgrade
fi
check_data_version "$MAJOR_UPGRADE_FROM"
if [[ -z $MAJOR_UPGRADE_FROM ]]; then
  remove_old_majors
  # An upgrade rolled back before its new system was published: the next one holds a new election.
  if [[ -e $PGDATA.upgrade-sysid && $(data_major "$PGDATA") != "$(binaries_major)" ]]; then
    rm -f -- "$PGDATA.upgrade-sysid"
  fi
fi`;

/**
 * patroni-start.sh, the HA mode's container command (argument: the rendered patroni.yml).
 * Patroni reads no password from a file, and its PATRONI_*_PASSWORD variables would stay readable
 * in Patroni's `/proc/<pid>/environ` (Patroni unsets them, which does not wipe the copy the kernel
 * shows) for the pod's lifetime; so the script writes the REST API's and the
 * roles' credentials from the mounted Secrets into secrets.yml, mode 0600, in an in-memory
 * directory beside a link to patroni.yml, and runs Patroni on the directory: Patroni merges a
 * directory's YAML files in name order (Patroni's Config._load_config_path, 2.1 and later). tags.yml
 * there carries the pod's template revision (lib/cluster/rollout-order.ts). The settings agent
 * (lib/cluster/patroni-settings-agent.ts) starts in the background first.
 */
export function renderPatroniStartScript(clusterName: string, tablespaces: readonly TablespaceModel[] = [], source?: PatroniStartSource): string {
  // A standby streaming from its source replicates as the source's replication role (patroni-source.ts).
  const replicationDir = source?.replicationSecretDir ?? REPLICATION_SECRET_DIR;
  return `#!/usr/bin/env bash
# patroni-start.sh of cluster "${clusterName}", rendered by cdk8s-postgres.
# Writes the credentials Patroni needs from the mounted Secrets into a file only this user may
# read, then runs Patroni on the directory holding it and patroni.yml. Passwords never reach
# the environment, argv or a log.
set -euo pipefail

: "\${CREDENTIALS_DIR:?}" "\${PATRONICTL_CONFIG_FILE:?}" "\${1:?usage: patroni-start.sh <patroni.yml>}"

${logFunction('patroni-start')}

${CREDENTIAL_FUNCTIONS}

${MAJOR_VERSION_CHECK}
${tablespaces.length > 0 ? `
# Patroni's pg_basebackup fills them; before cloning again Patroni removes them with the data directory.
${tablespaceShellFunctions(tablespaces)}
make_tablespace_dirs
` : ''}
# A YAML single-quoted scalar, where only the quote needs escaping (doubled); secret() refuses line breaks.
yaml_value() {
  local value=\${1//\\'/\\'\\'}
  printf "'%s'" "$value"
}

# yaml_credentials <indent> <secret dir>: the Secret's username and password as YAML keys.
yaml_credentials() {
  local user password
  user=$(secret "$2" username)
  password=$(secret "$2" password)
  printf '%susername: %s\\n%spassword: %s\\n' "$1" "$(yaml_value "$user")" "$1" "$(yaml_value "$password")"
}

config_dir=$PATRONICTL_CONFIG_FILE
# A failed read leaves no partial file behind.
trap 'rm -f -- "$config_dir/secrets.yml.tmp"' EXIT
(
  umask 077
  {
    printf 'restapi:\\n  authentication:\\n'
    yaml_credentials '    ' ${PATRONI_API_SECRET_DIR}
    printf 'postgresql:\\n  authentication:\\n    superuser:\\n'
    yaml_credentials '      ' superuser
    printf '    replication:\\n'
    yaml_credentials '      ' ${replicationDir}
    # pg_rewind runs as the replication role, granted the functions it reads the new leader
    # with: pg_hba.conf rejects the superuser over the network.
    printf '    rewind:\\n'
    yaml_credentials '      ' ${replicationDir}
  } > "$config_dir/secrets.yml.tmp"
)
mv -f -- "$config_dir/secrets.yml.tmp" "$config_dir/secrets.yml"
${source ? `# The standby's replication connections verify its members and its source: both CAs in one file.
cat -- ${source.authorities.join(' ')} > ${REPLICATION_AUTHORITY_FILE}.tmp
mv -f -- ${REPLICATION_AUTHORITY_FILE}.tmp ${REPLICATION_AUTHORITY_FILE}
` : ''}# The pod's template revision as a member tag: a leader's preStop hook hands over to a member on a newer one.
if [[ -n \${${TEMPLATE_REVISION_ENV}:-} ]]; then
  printf 'tags:\\n  ${TEMPLATE_TAG}: %s\\n' "$(yaml_value "$${TEMPLATE_REVISION_ENV}")" > "$config_dir/tags.yml"
fi
# A link, not a copy: Patroni rereads the mounted ConfigMap's current patroni.yml on a reload.
ln -sfn -- "$1" "$config_dir/patroni.yml"
${patroniSettingsAgentLauncher()}
log "credentials written; starting Patroni"
exec patroni "$config_dir"
`;
}

/**
 * patroni-start.sh's lines that start the agent in the background (bash, after CREDENTIALS_DIR
 * and the log function; `$1` is the mounted patroni.yml). `$$` is the PID Patroni will have, as
 * exec keeps it.
 */
function patroniSettingsAgentLauncher(): string {
  const agent = `${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.patroniSettingsAgent}`;
  const desired = `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.patroniDynamicConfig}`;
  return `# The settings agent (lib/cluster/patroni-settings-agent.ts), started again should it fail; it ends with Patroni.
patroni_pid=$$
(
  while kill -0 "$patroni_pid" 2> /dev/null; do
    python3 ${agent} "$1" ${desired} "$patroni_pid" || log "settings agent exited ($?), starting it again"
    sleep 10
  done
) < /dev/null &`;
}
