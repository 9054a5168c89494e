import { componentSelector, cronJobSelector, slotMatcher } from './promql';
import { ExporterKind, MonitoringProfile, ScheduledJobProfile } from '../core/monitoring';

/** A Prometheus alerting rule, as PrometheusRule and promtool read it. */
export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: { readonly severity: 'warning' | 'critical' };
  readonly annotations: { readonly summary: string; readonly description: string };
}

const rule = (alert: string, expr: string, duration: string, severity: 'warning' | 'critical', summary: string, description: string): AlertRule =>
  ({ alert, expr, for: duration, labels: { severity }, annotations: { summary, description } });

/** A share of a limit, rounded down, as the alert threshold. */
const share = (limit: number, percent: number) => Math.floor((limit * percent) / 100);

/**
 * How long a backup CronJob may go without a success: its schedule's longest interval plus a
 * quarter of it, at least an hour, for a run that starts late (within the CronJob's hour of
 * startingDeadlineSeconds) and then takes its time.
 */
const backupAgeLimitSeconds = (job: ScheduledJobProfile) => job.maxIntervalSeconds + Math.max(3600, Math.floor(job.maxIntervalSeconds / 4));

/** A cluster's alerts on WAL archiving and on its backup CronJobs, when it has backups. */
function backupAlerts(profile: MonitoringProfile, where: string): AlertRule[] {
  const selector = componentSelector(profile);
  // kube-state-metrics' series, by namespace and CronJob name; the age grows with time, so no `for` is needed.
  const ages = (profile.backupJobs ?? []).map((job) => `max by (namespace, cronjob) (time() - kube_cronjob_status_last_successful_time${cronJobSelector(profile, job.cronJobName)})`
    + ` > ${backupAgeLimitSeconds(job)}`);
  return [
    ...(!profile.walArchiving ? [] : [
      // PostgreSQL's archiver retries a failing archive_command at least once a minute, so a failure
      // that lasts shows in every 5-minute window; a single one (a network blip) does not fire.
      rule('PostgresArchivingFailing', `max by (namespace, pod) (increase(pg_stat_archiver_failed_count${selector}[5m])) > 0`,
        '10m', 'critical', `WAL archiving of ${where} fails`,
        '{{ $labels.pod }} has failed to archive WAL for 10 minutes: pgbackrest archive-push fails, so WAL piles up in pg_wal '
        + 'and point-in-time recovery cannot reach past the last archived segment. pg_stat_archiver\'s last_failed_wal names the '
        + 'segment; the postgres container\'s log has pgBackRest\'s error.'),
      // Segments wait and none is archived: archive_command hangs, or fails (both alerts then).
      // A primary with archive_timeout archives a segment a minute while it writes; a replica has none waiting.
      rule('PostgresArchivingStalled', `max by (namespace, pod) (pg_archive_ready_segments${selector}) > 0 `
        + `and max by (namespace, pod) (increase(pg_stat_archiver_archived_count${selector}[15m])) == 0`, '5m', 'critical',
      `WAL archiving of ${where} has stalled`,
      '{{ $labels.pod }} has archived no WAL segment for 20 minutes while segments wait in pg_wal: archive_command '
        + '(pgbackrest archive-push) hangs or fails, WAL piles up in pg_wal and point-in-time recovery stops at the last archived segment.'),
    ]),
    ...(ages.length === 0 ? [] : [
      rule('PostgresBackupTooOld', ages.join(' or '), '0m', 'warning', `A scheduled backup of ${where} is overdue`,
        'No Job of CronJob {{ $labels.cronjob }} has succeeded for longer than its schedule\'s longest interval plus a quarter of it '
        + '(at least an hour): the backups fail or do not start. kubectl get jobs shows the recent runs.'),
    ]),
  ];
}

/**
 * The alerts of one component. Thresholds are numbers computed from the limits the component
 * was synthesized with, so a rule changes in review when a limit does.
 */
export function renderAlertRules(profile: MonitoringProfile, connectionPercent: number): AlertRule[] {
  const selector = componentSelector(profile);
  const where = `${profile.kind} "${profile.name}"${profile.namespace ? ` in ${profile.namespace}` : ''}`;
  const exporterDown = (prefix: string, exporter: string) => rule(`${prefix}ExporterDown`, `up${selector} == 0`, '5m', 'warning',
    `${exporter} of ${where} cannot be scraped`, 'Prometheus has failed to scrape {{ $labels.pod }} for 5 minutes: no metrics and no other alerts for it.');
  switch (profile.kind) {
    case ExporterKind.POSTGRES: {
      const connections = share(profile.connectionLimit, connectionPercent);
      const slots = profile.replicationSlots ?? [];
      const slotSelector = componentSelector(profile, [slotMatcher(slots)]);
      const lagBytes = Math.floor((profile.maxSlotWalKeepBytes ?? 0) / 2);
      return [
        exporterDown('Postgres', 'postgres_exporter'),
        rule('PostgresDown', `pg_up${selector} == 0`, '1m', 'critical',
          `PostgreSQL of ${where} does not answer`, 'postgres_exporter on {{ $labels.pod }} cannot log in to PostgreSQL.'),
        rule('PostgresConnectionsHigh', `sum by (namespace, pod) (pg_stat_activity_count${selector}) > ${connections}`, '5m', 'warning',
          `PostgreSQL of ${where} is near max_connections`,
          `{{ $labels.pod }} has {{ $value }} client connections, over ${connectionPercent}% of max_connections ${profile.connectionLimit}.`),
        rule('PostgresPendingRestart', `max by (namespace, pod) (pg_settings_pending_restart_count${selector}) > 0`, '15m', 'warning',
          `PostgreSQL of ${where} runs with settings changes a restart would apply`,
          '{{ $labels.pod }} has had {{ $value }} setting(s) in pending_restart for 15 minutes: the configuration files changed a '
          + 'parameter the server takes only when it starts, and the pod was not restarted (a rollout that did not finish, or an ALTER SYSTEM). '
          + 'SELECT name FROM pg_settings WHERE pending_restart names them.'),
        ...backupAlerts(profile, where),
        ...(slots.length === 0 ? [] : [
          rule('PostgresReplicationLagHigh', `max by (namespace, pod, slot_name) (pg_replication_slots_pg_wal_lsn_diff${slotSelector}) > ${lagBytes}`,
            '5m', 'warning', `A replica of ${where} lags far behind`,
            'Slot {{ $labels.slot_name }} holds {{ $value | humanize1024 }}B of WAL, half of max_slot_wal_keep_size; '
            + 'beyond it PostgreSQL drops the slot and the replica must be cloned again.'),
          rule('PostgresReplicaNotStreaming', `max by (namespace, pod, slot_name) (pg_replication_slots_active${slotSelector}) == 0`,
            '2m', 'critical', `A replica of ${where} is not streaming`,
            'No replica has streamed through slot {{ $labels.slot_name }} for 2 minutes; the primary keeps its WAL meanwhile.'),
        ]),
      ];
    }
    case ExporterKind.PGBOUNCER: {
      const waitLimit = profile.clientWaitLimitSeconds ?? 0;
      const waitSeconds = waitLimit > 0 ? Math.max(1, Math.floor(waitLimit / 2)) : 60;
      const clients = share(profile.connectionLimit, connectionPercent);
      return [
        exporterDown('PgBouncer', 'pgbouncer_exporter'),
        rule('PgBouncerDown', `pgbouncer_up${selector} == 0`, '1m', 'critical',
          `PgBouncer of ${where} does not answer`, 'pgbouncer_exporter on {{ $labels.pod }} cannot read the admin console.'),
        rule('PgBouncerClientsWaiting', `max by (namespace, pod, database, user) (pgbouncer_pools_client_maxwait_seconds${selector}) > ${waitSeconds}`,
          '2m', 'warning', `Clients wait for a server connection in ${where}`,
          'A client of pool {{ $labels.database }}/{{ $labels.user }} on {{ $labels.pod }} has waited {{ $value }} s for a server connection'
          + (waitLimit > 0 ? `; at query_wait_timeout ${waitLimit} s PgBouncer drops it.` : '.') + ' The pool is too small for the load.'),
        rule('PgBouncerClientConnectionsHigh', `max by (namespace, pod) (pgbouncer_used_clients${selector}) > ${clients}`, '5m', 'warning',
          `PgBouncer of ${where} is near max_client_conn`,
          `{{ $labels.pod }} holds {{ $value }} client connections, over ${connectionPercent}% of max_client_conn ${profile.connectionLimit}.`),
      ];
    }
    case ExporterKind.PGPOOL: {
      const frontends = share(profile.connectionLimit, connectionPercent);
      return [
        exporterDown('Pgpool', 'pgpool2_exporter'),
        rule('PgpoolDown', `pgpool2_up${selector} == 0`, '1m', 'critical',
          `Pgpool-II of ${where} does not answer`, 'pgpool2_exporter on {{ $labels.pod }} cannot log in to Pgpool-II.'),
        rule('PgpoolFrontendsHigh', `sum by (namespace, pod) (pgpool2_frontend_used${selector}) > ${frontends}`, '5m', 'warning',
          `Pgpool-II of ${where} is near num_init_children`,
          `{{ $labels.pod }} serves {{ $value }} clients, over ${connectionPercent}% of num_init_children ${profile.connectionLimit}; `
          + 'further clients queue until a child is free.'),
        rule('PgpoolBackendDown', `min by (namespace, pod, hostname) (pgpool2_pool_nodes_status${selector}) == 0`, '2m', 'critical',
          `Pgpool-II of ${where} sees a backend down`, 'Pgpool-II on {{ $labels.pod }} has marked backend {{ $labels.hostname }} down.'),
      ];
    }
  }
}
