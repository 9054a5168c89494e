import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { LOG_ANALYSIS_PATHS, LOG_FILE_PATTERN, LogAnalysisModel, PGBADGER_LOG_LINE_PREFIX } from './log-analysis';
import { k8s } from '../core/kube';
import { restrictedContainer } from '../core/pod-baseline';
import { resourceRequirements } from '../core/resources';

/** The variables pgbadger-report.sh reads. */
export const PGBADGER_REPORT_ENVIRONMENT = ['LOG_DIR', 'REPORT_DIR', 'LOG_LINE_PREFIX', 'LOG_RETENTION_MINUTES', 'REPORT_RETENTION_WEEKS',
  'REPORT_INTERVAL_SECONDS'] as const;

/**
 * pgbadger-report.sh: every interval, deletes log files past their retention and runs pgBadger in
 * incremental mode over the rest, which reads only lines newer than its last run (LAST_PARSED in
 * the report directory) and writes a report per day and week. With `once`, one run and its exit
 * status (`kubectl exec` it to refresh the report now). The loop never exits: a failing sidecar
 * would make the pod unready and take PostgreSQL out of its Services.
 */
export function renderPgBadgerReportScript(): string {
  return `#!/bin/sh
# pgBadger reports of this instance, rendered by cdk8s-postgres: change the construct's props, not this file.
set -u

report() {
  find "$LOG_DIR" -maxdepth 1 -type f -name '${LOG_FILE_PATTERN}' -mmin +"$LOG_RETENTION_MINUTES" -exec rm -f {} +
  set -- "$LOG_DIR"/${LOG_FILE_PATTERN}
  if [ ! -e "$1" ]; then
    echo "pgbadger-report: no log file in $LOG_DIR yet" >&2
    return 0
  fi
  mkdir -p "$REPORT_DIR"
  # pgBadger's pid file in /tmp keeps a run started by hand from overlapping the loop's.
  pgbadger --incremental --outdir "$REPORT_DIR" --format stderr --prefix "$LOG_LINE_PREFIX" \\
    --retention "$REPORT_RETENTION_WEEKS" --jobs 1 --quiet "$@"
}

if [ "\${1:-}" = once ]; then
  report
  exit
fi
while :; do
  report || echo "pgbadger-report: pgBadger failed (status $?); next run in $REPORT_INTERVAL_SECONDS s" >&2
  sleep "$REPORT_INTERVAL_SECONDS"
done
`;
}

/** The variables of pgbadger-report.sh for the model. */
export function pgBadgerReportEnvironment(model: LogAnalysisModel): { [name in typeof PGBADGER_REPORT_ENVIRONMENT[number]]: string } {
  return {
    LOG_DIR: LOG_ANALYSIS_PATHS.logDir,
    REPORT_DIR: LOG_ANALYSIS_PATHS.reportDir,
    LOG_LINE_PREFIX: PGBADGER_LOG_LINE_PREFIX,
    LOG_RETENTION_MINUTES: String(model.logRetentionMinutes),
    REPORT_RETENTION_WEEKS: String(model.reportRetentionWeeks),
    REPORT_INTERVAL_SECONDS: String(model.intervalSeconds),
  };
}

/** The mounts the instance pod offers the sidecars, by the pod's own volume objects. */
export interface LogAnalysisMounts {
  /** The data volume, read-write: pgBadger prunes logs and writes reports there. */
  readonly data: k8s.VolumeMount;
  readonly scripts: k8s.VolumeMount;
  readonly tmp: k8s.VolumeMount;
}

/** The pgBadger sidecar, and with `server` the HTTP server of its reports. */
export function logAnalysisContainers(model: LogAnalysisModel, mounts: LogAnalysisMounts): k8s.Container[] {
  const server = model.server;
  return [
    restrictedContainer({
      name: 'pgbadger',
      image: model.image,
      command: [`${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.pgBadgerReportScript}`],
      env: Object.entries(pgBadgerReportEnvironment(model)).map(([name, value]) => ({ name, value })),
      resources: resourceRequirements(model.resources),
      volumeMounts: [mounts.data, mounts.scripts, mounts.tmp],
    }),
    ...(server ? [restrictedContainer({
      name: 'pgbadger-http',
      image: server.image,
      // BusyBox's httpd refuses paths with "..": it serves the report directory only.
      command: ['httpd', '-f', '-p', String(server.port), '-h', LOG_ANALYSIS_PATHS.reportDir],
      ports: [{ name: 'pgbadger-http', containerPort: server.port, protocol: 'TCP' }],
      // No readiness probe: an unready sidecar would take PostgreSQL out of its Services.
      livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromNumber(server.port) }, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 },
      resources: resourceRequirements(server.resources),
      volumeMounts: [{ ...mounts.data, readOnly: true }],
    })] : []),
  ];
}
