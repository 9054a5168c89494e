import { ClusterModel } from './cluster-model';
import { PROVISIONING_PGOPTIONS, ProvisioningModel, renderProvisioningSql } from './provisioning';
import { CREDENTIAL_FUNCTIONS, logFunction } from '../core/shell-functions';

/** The environment provision.sh reads; the pods set it, and Patroni passes its own to the script. */
export const PROVISION_ENVIRONMENT = ['CREDENTIALS_DIR', 'PGHOST', 'PGPORT'] as const;

/**
 * provision.sh, run by Patroni in the HA mode: as `post_bootstrap` (one argument, a connection
 * URL) once the first leader is initialized, and as the `on_start` and `on_role_change` callback
 * (arguments: action, role, scope). On the leader it brings roles and databases in step with
 * the Secrets and props, as the plain mode's bootstrap does at every start of the primary.
 */
export function renderProvisionScript(model: ClusterModel, provisioning: ProvisioningModel): string {
  return `#!/usr/bin/env bash
# provision.sh of cluster "${model.name}", rendered by cdk8s-postgres.
# Patroni calls it after the first initdb and whenever PostgreSQL starts or changes role. On
# the leader it creates missing roles and databases and sets every role's password from its
# Secret, so rotating a Secret and restarting the leader's pod rotates the password; on a
# replica it does nothing. Passwords are read from files, never put in argv.
set -euo pipefail

: "\${CREDENTIALS_DIR:?}" "\${PGHOST:?}" "\${PGPORT:?}"

${logFunction('provision')}

${CREDENTIAL_FUNCTIONS}

# Callbacks name the new role: only the leader provisions.
if [[ $# -eq 3 && $2 != primary && $2 != master ]]; then
  exit 0
fi

workdir=$(mktemp -d)
trap 'rm -rf -- "$workdir"' EXIT
write_passfile "$workdir/pgpass" superuser
superuser=$(secret superuser username)
export PGPASSFILE="$workdir/pgpass"

# Right after a promotion the server may still be finishing recovery: wait until it is writable.
for attempt in $(seq 60); do
  if [[ $(psql --username="$superuser" --dbname=postgres --no-psqlrc --tuples-only --no-align \\
    --command='SELECT pg_is_in_recovery()' 2> /dev/null) == f ]]; then
    break
  fi
  if [[ $attempt -eq 60 ]]; then
    log "the server did not become writable within 60 s"
    exit 1
  fi
  sleep 1
done

# Commits are local: with synchronous_mode_strict and no standby yet they would wait forever.
# The other options keep the statements, which carry passwords, out of every log.
PGOPTIONS='-c synchronous_commit=local ${PROVISIONING_PGOPTIONS}' psql --username="$superuser" --dbname=postgres \\
  --no-psqlrc --quiet --set=ON_ERROR_STOP=1 > /dev/null <<'SQL'
${renderProvisioningSql(provisioning)}
SQL
log "roles and databases provisioned"
`;
}
