import { componentSelector } from './promql';
import { ExporterKind, MonitoringProfile } from '../core/monitoring';

interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly targets: ReadonlyArray<{ readonly expr: string; readonly legend: string }>;
}

const timeSeries = (title: string, unit: string, targets: Panel['targets']): Panel => ({ title, unit, targets });
const query = (expr: string, legend: string) => ({ expr, legend });

/** PostgreSQL: connections against max_connections, transactions, replication. */
function postgresPanels(s: string): Panel[] {
  return [
    timeSeries('Connections and max_connections', 'short', [
      query(`sum by (pod) (pg_stat_activity_count${s})`, '{{pod}}'),
      query(`max(pg_settings_max_connections${s})`, 'max_connections'),
    ]),
    timeSeries('Transactions per second', 'ops', [
      query(`sum by (pod) (rate(pg_stat_database_xact_commit${s}[5m]))`, '{{pod}} commits'),
      query(`sum by (pod) (rate(pg_stat_database_xact_rollback${s}[5m]))`, '{{pod}} rollbacks'),
    ]),
    timeSeries('Replication lag: WAL held per replica slot', 'bytes', [query(`max by (slot_name) (pg_replication_slots_pg_wal_lsn_diff${s})`, '{{slot_name}}')]),
    timeSeries('Replicas streaming (1) or not (0)', 'short', [query(`max by (slot_name) (pg_replication_slots_active${s})`, '{{slot_name}}')]),
    timeSeries('PostgreSQL up', 'short', [query(`pg_up${s}`, '{{pod}}')]),
  ];
}

/** PgBouncer: clients active and waiting, pool usage, waits, transactions, max_client_conn. */
function pgbouncerPanels(s: string): Panel[] {
  return [
    timeSeries('Client connections: active and waiting', 'short', [
      query(`sum by (pod) (pgbouncer_pools_client_active_connections${s})`, '{{pod}} active'),
      query(`sum by (pod) (pgbouncer_pools_client_waiting_connections${s})`, '{{pod}} waiting'),
    ]),
    timeSeries('Server connections: active and idle (pool usage)', 'short', [
      query(`sum by (pod) (pgbouncer_pools_server_active_connections${s})`, '{{pod}} active'),
      query(`sum by (pod) (pgbouncer_pools_server_idle_connections${s})`, '{{pod}} idle'),
    ]),
    timeSeries('Longest client wait', 's', [query(`max by (pod, database) (pgbouncer_pools_client_maxwait_seconds${s})`, '{{pod}} {{database}}')]),
    timeSeries('Transactions per second', 'ops', [query(`sum by (pod) (rate(pgbouncer_stats_sql_transactions_pooled_total${s}[5m]))`, '{{pod}}')]),
    timeSeries('Client connections and max_client_conn', 'short', [
      query(`max by (pod) (pgbouncer_used_clients${s})`, '{{pod}}'),
      query(`max(pgbouncer_config_max_client_connections${s})`, 'max_client_conn'),
    ]),
  ];
}

/** Pgpool-II: frontends against num_init_children, reads by backend, backend status and delay. */
function pgpoolPanels(s: string): Panel[] {
  return [
    timeSeries('Frontends in use and num_init_children', 'short', [
      query(`sum by (pod) (pgpool2_frontend_used${s})`, '{{pod}} used'),
      query(`max by (pod) (pgpool2_frontend_total${s})`, '{{pod}} total'),
    ]),
    timeSeries('SELECTs per second by backend', 'ops', [query(`sum by (hostname) (rate(pgpool2_pool_nodes_select_cnt${s}[5m]))`, '{{hostname}}')]),
    timeSeries('Backend status (1 up, 0 down)', 'short', [query(`min by (hostname) (pgpool2_pool_nodes_status${s})`, '{{hostname}}')]),
    timeSeries('Replication delay seen by Pgpool-II', 'bytes', [query(`max by (hostname) (pgpool2_pool_nodes_replication_delay${s})`, '{{hostname}}')]),
  ];
}

/** The panels of each component's dashboard: what an operator looks at first. */
function panels(profile: MonitoringProfile): Panel[] {
  const s = componentSelector(profile);
  switch (profile.kind) {
    case ExporterKind.POSTGRES: return postgresPanels(s);
    case ExporterKind.PGBOUNCER: return pgbouncerPanels(s);
    case ExporterKind.PGPOOL: return pgpoolPanels(s);
  }
}

/** Every PromQL expression of a component's dashboard, for tests. */
export function dashboardExpressions(profile: MonitoringProfile): string[] {
  return panels(profile).flatMap((panel) => panel.targets.map((target) => target.expr));
}

/**
 * A Grafana dashboard (JSON model, schema 39) of time series panels, two per row, reading the
 * Prometheus data source chosen in its `datasource` variable. The uid is derived from the
 * component, so re-synthesizing updates the same dashboard.
 */
export function renderDashboard(profile: MonitoringProfile, uid: string): string {
  const datasource = { type: 'prometheus', uid: '${datasource}' };
  const dashboard = {
    uid,
    title: `${profile.kind} ${profile.namespace ? `${profile.namespace}/` : ''}${profile.name}`,
    tags: ['cdk8s-postgres', profile.kind],
    schemaVersion: 39,
    editable: true,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Data source' }] },
    panels: panels(profile).map((panel, index) => ({
      id: index + 1,
      type: 'timeseries',
      title: panel.title,
      datasource,
      gridPos: { h: 8, w: 12, x: (index % 2) * 12, y: Math.floor(index / 2) * 8 },
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      targets: panel.targets.map((target, targetIndex) => ({
        refId: String.fromCharCode(65 + targetIndex),
        datasource,
        expr: target.expr,
        legendFormat: target.legend,
      })),
    })),
  };
  return `${JSON.stringify(dashboard, undefined, 2)}\n`;
}
