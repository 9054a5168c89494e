import { Duration } from 'cdk8s';
import { IConstruct } from 'constructs';
import { CLUSTER_PATHS } from './cluster-layout';
import { ParameterValue } from './cluster-model';
import { propError } from '../core/errors';
import { NetworkPeer } from '../core/network-policy';
import { ContainerResources, ResolvedResources, resolveResources } from '../core/resources';
import { requireInteger, validateImage, validatePort, wholeSeconds } from '../core/validation';

/** A small static HTTP server beside pgBadger that serves the instance's reports. */
export interface LogReportServer {
  /**
   * Who may fetch the reports, which hold query texts and their literal values: the
   * NetworkPolicy admits only them to `port`.
   */
  readonly clients: NetworkPeer[];
  /**
   * Port of the server, in the pod and on the headless Service (`<pod>.<name>-headless:<port>`).
   * @default 8080
   */
  readonly port?: number;
  /**
   * Image with BusyBox's `httpd` applet, run as the cluster's uid on a read-only root filesystem.
   * @default 'busybox:1.37.0'
   */
  readonly image?: string;
}

/**
 * pgBadger reports of every instance: PostgreSQL logs to files on the data volume in a format
 * pgBadger parses, and a sidecar runs pgBadger on them periodically, in incremental mode.
 */
export interface LogAnalysis {
  /**
   * Image with pgBadger 12 or later, Perl and a POSIX shell with `find`, run as the cluster's
   * uid: no maintained image is published, so build one from the `Dockerfile` in pgBadger's
   * repository (Alpine, pgBadger in /usr/local/bin).
   */
  readonly image: string;
  /**
   * `log_min_duration_statement`: statements running at least this long are logged with their
   * duration, which pgBadger's query sections count; `Duration.millis(0)` logs every statement.
   * @default Duration.millis(250)
   */
  readonly minDurationStatement?: Duration;
  /**
   * How often the sidecar runs pgBadger over the new log lines.
   * @default Duration.hours(1)
   */
  readonly reportInterval?: Duration;
  /**
   * How long log files stay on the data volume; the sidecar deletes older ones.
   * @default Duration.days(7)
   */
  readonly logRetention?: Duration;
  /**
   * Weeks of daily and weekly reports pgBadger keeps (its `--retention`).
   * @default 4
   */
  readonly reportRetentionWeeks?: number;
  /**
   * CPU and memory of the pgBadger sidecar.
   * @default - 10m/500m CPU, 256Mi memory
   */
  readonly resources?: ContainerResources;
  /**
   * Serve the reports over HTTP from a second sidecar.
   * @default - not served: copy them with `kubectl cp`
   */
  readonly server?: LogReportServer;
}

/** The log analysis, resolved. */
export interface LogAnalysisModel {
  readonly image: string;
  readonly minDurationMillis: number;
  readonly intervalSeconds: number;
  readonly logRetentionMinutes: number;
  readonly reportRetentionWeeks: number;
  readonly resources: ResolvedResources;
  readonly server?: { readonly port: number; readonly image: string; readonly clients: NetworkPeer[]; readonly resources: ResolvedResources };
}

/**
 * Where logs and reports live: on the data volume beside PGDATA, not inside it (pg_basebackup and
 * pgBackRest copy PGDATA). The data volume rather than a volume of their own: a StatefulSet cannot
 * take a new volumeClaimTemplate, so a live cluster could never turn log analysis on.
 */
export const LOG_ANALYSIS_PATHS = {
  logDir: `${CLUSTER_PATHS.dataVolume}/log`,
  reportDir: `${CLUSTER_PATHS.dataVolume}/pgbadger`,
} as const;

/**
 * The stderr format with a prefix pgBadger names in its documentation, the same for PostgreSQL 14
 * to 18: jsonlog exists from 15 only, and pgBadger's csvlog and jsonlog parsers need Perl modules
 * (Text::CSV_XS, JSON::XS) that its own Dockerfile's image lacks. `%l` numbers each session's
 * lines, which pgBadger uses to join a statement with its continuation lines.
 */
export const PGBADGER_LOG_LINE_PREFIX = '%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ';
/** pgBadger's log file names: the sidecar parses and prunes only these. */
export const LOG_FILE_PATTERN = 'postgresql-*.log';

/** The parameters logAnalysis sets; extraParameters may not set them too. */
const PARAMETER_NAMES = ['logging_collector', 'log_destination', 'log_directory', 'log_filename', 'log_rotation_age', 'log_rotation_size',
  'log_truncate_on_rotation', 'log_line_prefix', 'log_min_duration_statement', 'log_checkpoints', 'log_connections', 'log_disconnections',
  'log_lock_waits', 'log_temp_files', 'log_autovacuum_min_duration', 'lc_messages'] as const;

/** postgresql.conf's logging section for pgBadger. */
export function logAnalysisParameters(model: LogAnalysisModel): { [name in typeof PARAMETER_NAMES[number]]: ParameterValue } {
  return {
    // The collector writes every line, the server's own stderr included, to files.
    logging_collector: true,
    log_destination: 'stderr',
    log_directory: LOG_ANALYSIS_PATHS.logDir,
    // A new name at every rotation, so a rotation by size never appends to an older file.
    log_filename: LOG_FILE_PATTERN.replace('*', '%Y-%m-%d_%H%M%S'),
    log_rotation_age: '1h',
    log_rotation_size: '100MB',
    log_truncate_on_rotation: false,
    log_line_prefix: PGBADGER_LOG_LINE_PREFIX,
    log_min_duration_statement: `${model.minDurationMillis}ms`,
    log_checkpoints: true,
    log_connections: true,
    log_disconnections: true,
    log_lock_waits: true,
    log_temp_files: 0,
    log_autovacuum_min_duration: 0,
    // pgBadger matches PostgreSQL's English messages.
    lc_messages: 'C',
  };
}

export function resolveLogAnalysis(scope: IConstruct, given: LogAnalysis | undefined,
  extraParameters: { [name: string]: string }): LogAnalysisModel | undefined {
  if (!given) return undefined;
  for (const key of Object.keys(extraParameters)) {
    const name = key.toLowerCase();
    if ((PARAMETER_NAMES as readonly string[]).includes(name)) {
      throw propError(scope, `extraParameters.${key}`, extraParameters[key], 'is set by logAnalysis for pgBadger',
        name === 'log_min_duration_statement' ? 'use logAnalysis.minDurationStatement' : 'drop it, or drop logAnalysis');
    }
  }
  validateImage(scope, given.image, 'registry.example.com/pgbadger:13.1', 'logAnalysis.image');
  const minDurationMillis = given.minDurationStatement?.toMilliseconds() ?? 250;
  requireInteger(scope, 'logAnalysis.minDurationStatement', minDurationMillis, 0, 2 ** 31 - 1);
  const intervalSeconds = requireInteger(scope, 'logAnalysis.reportInterval',
    wholeSeconds(scope, 'logAnalysis.reportInterval', given.reportInterval) ?? 3600, 60, 7 * 86400);
  const retentionSeconds = wholeSeconds(scope, 'logAnalysis.logRetention', given.logRetention) ?? 7 * 86400;
  if (retentionSeconds < 2 * intervalSeconds) {
    throw propError(scope, 'logAnalysis.logRetention', `${retentionSeconds}s`,
      `is shorter than two report intervals (${2 * intervalSeconds}s): log lines would be deleted before pgBadger reads them`,
      'keep logs for at least two logAnalysis.reportInterval');
  }
  const server = given.server;
  if (server && server.clients.length === 0) {
    throw propError(scope, 'logAnalysis.server.clients', server.clients, 'admits nobody to the reports',
      'list who may fetch them, such as { namespace: \'dba-tools\' }, or drop logAnalysis.server');
  }
  return {
    image: given.image,
    minDurationMillis,
    intervalSeconds,
    logRetentionMinutes: Math.ceil(retentionSeconds / 60),
    reportRetentionWeeks: requireInteger(scope, 'logAnalysis.reportRetentionWeeks', given.reportRetentionWeeks ?? 4, 1, 520),
    resources: resolveResources(scope, given.resources, { cpuRequest: '10m', cpuLimit: '500m', memoryLimit: '256Mi' }),
    ...(server ? {
      server: {
        port: validatePort(scope, 'logAnalysis.server.port', server.port ?? 8080),
        image: validateImage(scope, server.image ?? 'busybox:1.37.0', 'busybox:1.37.0', 'logAnalysis.server.image'),
        clients: [...server.clients],
        resources: resolveResources(scope, undefined, { cpuRequest: '10m', cpuLimit: '100m', memoryLimit: '32Mi' }),
      },
    } : {}),
  };
}
