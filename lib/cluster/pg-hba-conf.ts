import { CLUSTER_PATHS, REPLICATION_GROUP } from './cluster-layout';
import { ClusterModel } from './cluster-model';

const LOOPBACK = ['127.0.0.1/32', '::1/128'];

/**
 * pg_hba.conf: scram-sha-256 for every login, over the socket too; the superuser over the socket
 * only, unless superuserNetworkAccess (its name is read from the file its Secret mounts, so a
 * renamed superuser stays rejected); replication connections only for members of the
 * replication group; with a metrics exporter beside PostgreSQL, members of pg_monitor over
 * loopback to the postgres database; nothing else is admitted. With TLS required, network lines
 * are `hostssl`: loopback stays inside the pod, like the socket.
 */
export function renderPgHbaConf(model: ClusterModel, monitored: boolean): string {
  const rule = (type: string, database: string, user: string, address: string, method = 'scram-sha-256') =>
    [type.padEnd(7), database.padEnd(12), user.padEnd(22), address.padEnd(20), method].join(' ').trimEnd();
  const network = model.tls?.required ? 'hostssl' : 'host';
  return [
    `# pg_hba.conf of cluster "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.`,
    '# TYPE  DATABASE     USER                   ADDRESS              METHOD',
    rule('local', 'all', 'all', ''),
    ...(model.superuserNetworkAccess ? [] : [rule('host', 'all', `@${CLUSTER_PATHS.superuserNameFile}`, 'all', 'reject')]),
    ...(monitored ? LOOPBACK.map((cidr) => rule('host', 'postgres', '+pg_monitor', cidr)) : []),
    ...model.allowedCidrs.map((cidr) => rule(network, 'replication', `+${REPLICATION_GROUP}`, cidr)),
    ...model.allowedCidrs.map((cidr) => rule(network, 'all', 'all', cidr)),
    '',
  ].join('\n');
}
