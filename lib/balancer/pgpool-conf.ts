import { BalancerModel, PgpoolParameter, PgpoolUserModel } from './pgpool-model';

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
name=$(cat -- "$CREDENTIALS_DIR/srcheck/username")
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
