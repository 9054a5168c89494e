import { CREDENTIAL_DIRS } from './balancer-layout';
import { BalancerModel, PgpoolParameter, PgpoolUserModel } from './pgpool-model';
import { COLON_FIELD_FUNCTION, entriesFile, posixSecretLine } from '../core/shell-functions';

/** pgpool.conf: every parameter quoted the way Pgpool-II reads it. */
export function renderPgpoolConf(model: BalancerModel): string {
  return [
    `# pgpool.conf of balancer "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.`,
    '# sr_check_user is appended at pod start from its Secret.',
    ...model.parameters.map((parameter) => `${parameter.name} = ${confValue(parameter.value)}`),
    '',
  ].join('\n');
}

function confValue(value: PgpoolParameter['value']): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return String(value);
  // The model refuses quotes: Pgpool-II has no way to escape one.
  return `'${value}'`;
}

/** The image's PGPOOL_PARAMS_<NAME> variables, which its entrypoint turns into `name = 'value'`. */
export function pgpoolParamsEnvironment(model: BalancerModel): { name: string; value: string }[] {
  return model.parameters.map((parameter) => ({
    name: `PGPOOL_PARAMS_${parameter.name.toUpperCase()}`,
    value: typeof parameter.value === 'boolean' ? (parameter.value ? 'on' : 'off') : String(parameter.value),
  }));
}

/** The pod's loopback, where a metrics exporter beside Pgpool-II connects from. */
const LOOPBACK = ['127.0.0.1/32', '::1/128'];

/**
 * pool_hba.conf: the pool_passwd method for every client, over TLS only when required; the
 * local socket too, so nobody inside the pod logs in without a password.
 * @param exporterUsers the exporters' users, granted after the balancer was built: they log in over loopback
 */
export function renderPoolHbaConf(model: BalancerModel, exporterUsers: readonly PgpoolUserModel[] = []): string {
  const method = model.passwordEncryption;
  const type = model.tls?.required ? 'hostssl' : 'host';
  return [
    `# pool_hba.conf of balancer "${model.name}", rendered by cdk8s-postgres.`,
    `local    all  all  ${method}`,
    // A metrics exporter beside Pgpool-II logs in over the pod's loopback.
    ...(exporterUsers.length > 0 ? LOOPBACK.filter((cidr) => !model.allowedCidrs.includes(cidr)) : [])
      .map((cidr) => `${type.padEnd(8)} all  all  ${cidr.padEnd(20)} ${method}`),
    ...model.allowedCidrs.map((cidr) => `${type.padEnd(8)} all  all  ${cidr.padEnd(20)} ${method}`),
    '',
  ].join('\n');
}

/**
 * config.sh, the init step of ConfigMap mode: pgpool.conf needs sr_check_user by name, which
 * lives in a Secret, so the file the image reads is the ConfigMap's plus that line.
 */
export function renderConfigScript(model: BalancerModel): string {
  const users = model.healthChecks ? 'sr_check_user health_check_user' : 'sr_check_user';
  return `#!/bin/sh
# config.sh of balancer "${model.name}", rendered by cdk8s-postgres: completes pgpool.conf
# with the sr_check user's name from its Secret and puts the files where the image reads them.
set -eu

: "\${TEMPLATE_DIR:?}" "\${CONFIG_DIR:?}" "\${CREDENTIALS_DIR:?}"
name=$(cat -- "$CREDENTIALS_DIR/${CREDENTIAL_DIRS.srCheck}/username")
case $name in
  '' | *[!A-Za-z0-9_.-]*)
    echo "config: the sr_check user's name must be letters, digits, '_', '.' or '-'" >&2
    exit 1
    ;;
esac
cp -- "$TEMPLATE_DIR/pgpool.conf" "$CONFIG_DIR/pgpool.conf.tmp"
set -- ${users}
for setting in "$@"; do
  printf "%s = '%s'\\n" "$setting" "$name" >> "$CONFIG_DIR/pgpool.conf.tmp"
done
mv -f -- "$CONFIG_DIR/pgpool.conf.tmp" "$CONFIG_DIR/pgpool.conf"
cp -- "$TEMPLATE_DIR/pool_hba.conf" "$CONFIG_DIR/pool_hba.conf"
echo "config: pgpool.conf and pool_hba.conf written" >&2
`;
}

/**
 * logins.sh, an init step of every config mode: pool_passwd and (with a PCP user) pcp.conf,
 * written from the mounted Secrets into the image's config directory, an in-memory volume.
 *
 * The image's entrypoint would run `pg_enc ... <password>` and `pg_md5 <password>` from
 * `<PREFIX>_PASSWORD` variables: passwords in the environment and on command lines. Given no
 * such variables, it registers nothing and keeps these files. Entries are `TEXT<password>`,
 * which Pgpool-II takes for md5 and SCRAM clients alike and for SCRAM to the backends; an
 * AES entry would protect nothing, as its key would sit in the same directory.
 * @param exporterUsers the exporters' users, granted after the balancer was built
 */
export function renderPasswordsScript(model: BalancerModel, exporterUsers: readonly PgpoolUserModel[] = []): string {
  const logins = [model.srCheckUser, ...model.users, ...exporterUsers].map((user) => user === model.srCheckUser
    ? CREDENTIAL_DIRS.srCheck : CREDENTIAL_DIRS.login(user.envPrefix));
  const pcp = model.pcpUser ? `
# pcp.conf: the PCP user's name and the md5 of its password, which md5sum reads from stdin.
user=$(secret_line ${CREDENTIAL_DIRS.pcp} username)
case $user in
  *[!A-Za-z0-9_.-]*)
    echo "logins: the PCP user's name must be letters, digits, '_', '.' or '-'" >&2
    exit 1
    ;;
esac
password=$(secret_line ${CREDENTIAL_DIRS.pcp} password)
hash=$(printf '%s' "$password" | md5sum)
printf '%s:%s\\n' "$user" "\${hash%% *}" > "$ETC_DIR/pcp.conf.tmp"
mv -f -- "$ETC_DIR/pcp.conf.tmp" "$ETC_DIR/pcp.conf"
echo "logins: pcp.conf written" >&2
` : '';
  return `#!/bin/sh
# logins.sh of balancer "${model.name}", rendered by cdk8s-postgres.
# Writes pool_passwd${model.pcpUser ? ' and pcp.conf' : ''} from the Secrets mounted in $CREDENTIALS_DIR (one
# directory per role, files username and password) to $ETC_DIR. printf is a shell builtin:
# no password reaches a command line, the environment or the log.
set -eu

: "\${CREDENTIALS_DIR:?}" "\${ETC_DIR:?}"
umask 077
# Lengths in bytes, as Pgpool-II counts them.
export LC_ALL=C

${posixSecretLine('logins')}

# colon_field <value>: a pool_passwd field.
${COLON_FIELD_FUNCTION}

# entry <dir>: a pool_passwd line. Pgpool-II reads 128 bytes of the password field, TEXT included.
entry() {
  user=$(secret_line "$1" username)
  password=$(secret_line "$1" password)
  if [ "\${#password}" -gt 124 ]; then
    echo "logins: the password in $1 is longer than the 124 bytes Pgpool-II reads" >&2
    return 1
  fi
  user=$(colon_field "$user")
  password=$(colon_field "$password")
  printf '%s:TEXT%s\\n' "$user" "$password"
}

${entriesFile('$ETC_DIR/pool_passwd', logins)}
echo "logins: pool_passwd written for $# role(s)" >&2
${pcp}`;
}
