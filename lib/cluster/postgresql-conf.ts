import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { ClusterModel, ParameterValue } from './cluster-model';
import { TLS_FILES } from '../core/tls';

/** postgresql.conf for every instance; replica-only settings are ignored by the primary. */
export function renderPostgresqlConf(model: ClusterModel): string {
  const lines = [
    `# postgresql.conf of cluster "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.`,
    '',
    '# Connections and paths (set by the construct)',
    setting('listen_addresses', '*'),
    setting('port', model.port),
    setting('unix_socket_directories', CLUSTER_PATHS.socketDir),
    setting('hba_file', `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.pgHbaConf}`),
    setting('password_encryption', 'scram-sha-256'),
    ...(model.tls ? [
      '',
      '# TLS, with the certificate of the tls Secret',
      setting('ssl', true),
      setting('ssl_cert_file', `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.certificate}`),
      setting('ssl_key_file', `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.key}`),
      setting('ssl_min_protocol_version', 'TLSv1.2'),
    ] : []),
    '',
    '# Logs go to stderr, where the container runtime collects them.',
    setting('logging_collector', false),
    setting('log_destination', 'stderr'),
    setting('log_line_prefix', '%m [%p] %q%u@%d '),
    '',
    '# Sizes, replication and the settings from props',
    ...model.parameters.map((parameter) => setting(parameter.name, parameter.value)),
    '',
  ];
  return lines.join('\n');
}

function setting(name: string, value: ParameterValue): string {
  if (typeof value === 'boolean') return `${name} = ${value ? 'on' : 'off'}`;
  if (typeof value === 'number') return `${name} = ${value}`;
  return `${name} = '${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
