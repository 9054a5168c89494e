import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { ClusterModel, Parameter, ParameterValue } from './cluster-model';
import { logAnalysisParameters } from './log-analysis';
import { sourceParameters } from './source-pod';
import { backupParameters } from '../backup/backup-objects';
import { TLS_FILES } from '../core/tls';

/** Parameters Patroni sets itself from its own settings (`listen`, `pg_hba`, `pg_ident`). */
export const PATRONI_MANAGED_PARAMETERS = new Set(['listen_addresses', 'port', 'hba_file', 'ident_file']);

/** Parameters Patroni takes in `postgresql.recovery_conf` and writes only when the member is a replica. */
export const RECOVERY_PARAMETERS = new Set(['restore_command']);

interface ParameterSection {
  readonly comment: string;
  readonly parameters: Parameter[];
}

/** Every parameter of an instance, in commented sections: the construct's own, then the props'. */
export function parameterSections(model: ClusterModel): ParameterSection[] {
  const parameters = (entries: { [name: string]: ParameterValue }) => Object.entries(entries).map(([name, value]) => ({ name, value }));
  return [
    {
      comment: 'Connections and paths (set by the construct)',
      parameters: parameters({
        listen_addresses: '*',
        port: model.port,
        unix_socket_directories: CLUSTER_PATHS.socketDir,
        hba_file: `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.pgHbaConf}`,
        // Only with maps: initdb's empty file serves until then, and ident_file is read at start.
        ...(model.hba.identMaps.length > 0 ? { ident_file: `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.pgIdentConf}` } : {}),
        password_encryption: 'scram-sha-256',
      }),
    },
    ...(model.tls ? [{
      comment: 'TLS, with the certificate of the tls Secret',
      parameters: parameters({
        ssl: true,
        ssl_cert_file: `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.certificate}`,
        ssl_key_file: `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.key}`,
        ssl_min_protocol_version: model.tls.minimumProtocolVersion,
        // Client certificates of hbaRules' cert lines are verified against the Secret's CA.
        ...(model.hba.clientCertificates ? { ssl_ca_file: `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.authority}` } : {}),
      }),
    }] : []),
    model.logAnalysis ? {
      comment: 'Logs go to files on the data volume, in the stderr format with the prefix pgBadger reads (logAnalysis).',
      parameters: parameters(logAnalysisParameters(model.logAnalysis)),
    } : {
      comment: 'Logs go to stderr, where the container runtime collects them.',
      parameters: parameters({ logging_collector: false, log_destination: 'stderr', log_line_prefix: '%m [%p] %q%u@%d ' }),
    },
    ...(model.backup ? [{
      comment: 'WAL archiving to every pgBackRest repository; replicas fetch from them what the primary no longer has',
      // A standby's restore_command is its source's until promotion.
      parameters: backupParameters(model.backup).filter((parameter) => !(model.standby && parameter.name === 'restore_command')),
    }] : []),
    ...(model.standby?.source.repository ? [{ comment: 'A standby cluster: its instances fetch the source\'s WAL from its repository', parameters: sourceParameters(model) }] : []),
    { comment: 'Sizes, replication and the settings from props', parameters: model.parameters },
  ];
}

/** postgresql.conf for every instance; replica-only settings are ignored by the primary. */
export function renderPostgresqlConf(model: ClusterModel): string {
  const lines = [
    `# postgresql.conf of cluster "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.`,
    ...parameterSections(model).flatMap((section) => ['', `# ${section.comment}`, ...section.parameters.map(setting)]),
    '',
  ];
  return lines.join('\n');
}

function setting({ name, value }: Parameter): string {
  if (typeof value === 'boolean') return `${name} = ${value ? 'on' : 'off'}`;
  if (typeof value === 'number') return `${name} = ${value}`;
  return `${name} = '${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
