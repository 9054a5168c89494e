import { ExporterKind } from '../core/monitoring';

/**
 * Where an exporter's metric comes from. The end-to-end tests scrape the real postgres_exporter
 * (Debian 12's 0.11.1 and 13's 0.17.1) and pgbouncer_exporter (Debian 13's 0.10.2) and find each
 * name. Pgpool-II's exporter is not packaged: for it, and for PgBouncer's too, each metric names
 * the SHOW command and the column (or row) the exporter's source maps to it, and the end-to-end
 * tests run those commands as the exporter's user against the real daemons.
 */
export interface ExporterMetric {
  readonly name: string;
  /** The admin console's SHOW command, for PgBouncer and Pgpool-II. */
  readonly show?: string;
  /** The column of that command's result, or the row's key for SHOW LISTS and SHOW CONFIG. */
  readonly column?: string;
}

/** Every metric the alerts and dashboards use, per exporter. */
export const EXPORTER_METRICS: { readonly [kind in ExporterKind]: readonly ExporterMetric[] } = {
  [ExporterKind.POSTGRES]: [
    { name: 'up' },
    { name: 'pg_up' },
    { name: 'pg_stat_activity_count' },
    { name: 'pg_settings_max_connections' },
    { name: 'pg_stat_database_xact_commit' },
    { name: 'pg_stat_database_xact_rollback' },
    { name: 'pg_replication_slots_active' },
    { name: 'pg_replication_slots_pg_wal_lsn_diff' },
    // 0.11-0.19 serve it among their default metrics, 0.20 from its default stat_archiver collector.
    { name: 'pg_stat_archiver_failed_count' },
    { name: 'pg_stat_archiver_archived_count' },
    // From the queries file the sidecar mounts (POSTGRES_EXPORTER_QUERIES).
    { name: 'pg_settings_pending_restart_count' },
    { name: 'pg_archive_ready_segments' },
  ],
  [ExporterKind.PGBOUNCER]: [
    { name: 'up' },
    // Set to 1 when SHOW STATS answers.
    { name: 'pgbouncer_up', show: 'STATS', column: 'database' },
    { name: 'pgbouncer_pools_client_active_connections', show: 'POOLS', column: 'cl_active' },
    { name: 'pgbouncer_pools_client_waiting_connections', show: 'POOLS', column: 'cl_waiting' },
    { name: 'pgbouncer_pools_server_active_connections', show: 'POOLS', column: 'sv_active' },
    { name: 'pgbouncer_pools_server_idle_connections', show: 'POOLS', column: 'sv_idle' },
    { name: 'pgbouncer_pools_client_maxwait_seconds', show: 'POOLS', column: 'maxwait' },
    { name: 'pgbouncer_stats_sql_transactions_pooled_total', show: 'STATS_TOTALS', column: 'xact_count' },
    { name: 'pgbouncer_used_clients', show: 'LISTS', column: 'used_clients' },
    { name: 'pgbouncer_config_max_client_connections', show: 'CONFIG', column: 'max_client_conn' },
  ],
  [ExporterKind.PGPOOL]: [
    { name: 'up' },
    // Set to 1 when SHOW POOL_VERSION answers.
    { name: 'pgpool2_up', show: 'POOL_VERSION', column: 'pool_version' },
    { name: 'pgpool2_frontend_used', show: 'POOL_PROCESSES', column: 'username' },
    { name: 'pgpool2_frontend_total', show: 'POOL_PROCESSES', column: 'pool_pid' },
    { name: 'pgpool2_pool_nodes_status', show: 'POOL_NODES', column: 'status' },
    { name: 'pgpool2_pool_nodes_select_cnt', show: 'POOL_NODES', column: 'select_cnt' },
    { name: 'pgpool2_pool_nodes_replication_delay', show: 'POOL_NODES', column: 'replication_delay' },
  ],
};

/**
 * What the backup alerts read from kube-state-metrics (its CronJob metrics, on by default), which
 * the Kubernetes cluster must run: no exporter of this library serves them.
 */
export const KUBE_STATE_METRICS: readonly ExporterMetric[] = [{ name: 'kube_cronjob_status_last_successful_time' }];
