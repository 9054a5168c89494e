import { CLUSTER_PATHS, REPLICATION_GROUP } from './cluster-layout';
import { ClusterModel } from './cluster-model';
import { HbaConnection, HbaRuleModel } from './hba-rules';

const LOOPBACK = ['127.0.0.1/32', '::1/128'];

/**
 * pg_hba.conf: scram-sha-256 for every login, over the socket too; the superuser over the socket
 * only, unless superuserNetworkAccess (its name is read from the file its Secret mounts, so a
 * renamed superuser stays rejected); replication connections only for members of the
 * replication group; with a metrics exporter beside PostgreSQL, members of pg_monitor over
 * loopback to the postgres database; nothing else is admitted. With TLS required, network lines
 * are `hostssl`: loopback stays inside the pod, like the socket.
 *
 * The props' hbaRules come in their order where the first match can still choose them: socket
 * rules before the library's socket line, TCP rules after the superuser's rejection (so no rule
 * opens the superuser's TCP logins), the exporter's and the replicas' lines, and before the
 * allowedCidrs lines that admit everyone else with a password.
 */
export function renderPgHbaConf(model: ClusterModel, monitored: boolean): string {
  const rule = (type: string, database: string, user: string, address: string, method = 'scram-sha-256') =>
    [type.padEnd(7), database.padEnd(12), user.padEnd(22), address.padEnd(20), method].join(' ').trimEnd();
  const network = model.tls?.required ? 'hostssl' : 'host';
  const user = (local: boolean) => model.hba.rules.filter((r) => (r.connection === HbaConnection.LOCAL) === local).map((r) => userRule(r, rule));
  return [
    `# pg_hba.conf of cluster "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.`,
    '# TYPE  DATABASE     USER                   ADDRESS              METHOD',
    ...user(true),
    rule('local', 'all', 'all', ''),
    ...(model.superuserNetworkAccess ? [] : [rule('host', 'all', `@${CLUSTER_PATHS.superuserNameFile}`, 'all', 'reject')]),
    ...(monitored ? LOOPBACK.map((cidr) => rule('host', 'postgres', '+pg_monitor', cidr)) : []),
    ...model.allowedCidrs.map((cidr) => rule(network, 'replication', `+${REPLICATION_GROUP}`, cidr)),
    ...user(false),
    ...model.allowedCidrs.map((cidr) => rule(network, 'all', 'all', cidr)),
    '',
  ].join('\n');
}

function userRule(hba: HbaRuleModel, rule: (type: string, database: string, user: string, address: string, method: string) => string): string {
  const line = rule(hba.connection, hba.databases.join(','), hba.users.join(','), hba.address, hba.method);
  return hba.options ? `${line} ${hba.options}` : line;
}

/** pg_ident.conf: the maps of identMaps, which hbaRules' cert and peer lines name; empty without them. */
export function renderPgIdentConf(model: ClusterModel): string {
  return [
    `# pg_ident.conf of cluster "${model.name}", rendered by cdk8s-postgres: change the construct's identMaps, not this file.`,
    '# MAPNAME            SYSTEM-USERNAME                          PG-USERNAME',
    ...identLines(model),
    '',
  ].join('\n');
}

/** The maps' lines, as pg_ident.conf and Patroni's postgresql.pg_ident take them. */
export function identLines(model: ClusterModel): string[] {
  return model.hba.identMaps.map((m) => [m.mapName.padEnd(18), m.systemUsername.padEnd(40), m.databaseUsername].join(' '));
}
