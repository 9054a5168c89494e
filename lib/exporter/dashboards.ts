import { ExporterKind, MonitoringProfile } from '../core/monitoring';
import { componentSelector } from './promql';

interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly targets: ReadonlyArray<{ readonly expr: string; readonly legend: string }>;
}

/** The panels of each component's dashboard: what an operator looks at first. */
function panels(profile: MonitoringProfile): Panel[] {
  const s = componentSelector(profile);
  switch (profile.kind) {
    case ExporterKind.POSTGRES:
      return [
        { title: 'Connections and max_connections', unit: 'short', targets: [
          { expr: `sum by (pod) (pg_stat_activity_count${s})`, legend: '{{pod}}' },
          { expr: `max(pg_settings_max_connections${s})`, legend: 'max_connections' },
        ] },
        { title: 'Transactions per second', unit: 'ops', targets: [
          { expr: `sum by (pod) (rate(pg_stat_database_xact_commit${s}[5m]))`, legend: '{{pod}} commits' },
          { expr: `sum by (pod) (rate(pg_stat_database_xact_rollback${s}[5m]))`, legend: '{{pod}} rollbacks' },
        ] },
        { title: 'Replication lag: WAL held per replica slot', unit: 'bytes', targets: [
          { expr: `max by (slot_name) (pg_replication_slots_pg_wal_lsn_diff${s})`, legend: '{{slot_name}}' },
        ] },
        { title: 'Replicas streaming (1) or not (0)', unit: 'short', targets: [
          { expr: `max by (slot_name) (pg_replication_slots_active${s})`, legend: '{{slot_name}}' },
        ] },
        { title: 'PostgreSQL up', unit: 'short', targets: [{ expr: `pg_up${s}`, legend: '{{pod}}' }] },
      ];
    case ExporterKind.PGBOUNCER:
      return [
        { title: 'Client connections: active and waiting', unit: 'short', targets: [
          { expr: `sum by (pod) (pgbouncer_pools_client_active_connections${s})`, legend: '{{pod}} active' },
          { expr: `sum by (pod) (pgbouncer_pools_client_waiting_connections${s})`, legend: '{{pod}} waiting' },
        ] },
        { title: 'Server connections: active and idle (pool usage)', unit: 'short', targets: [
          { expr: `sum by (pod) (pgbouncer_pools_server_active_connections${s})`, legend: '{{pod}} active' },
          { expr: `sum by (pod) (pgbouncer_pools_server_idle_connections${s})`, legend: '{{pod}} idle' },
        ] },
        { title: 'Longest client wait', unit: 's', targets: [
          { expr: `max by (pod, database) (pgbouncer_pools_client_maxwait_seconds${s})`, legend: '{{pod}} {{database}}' },
        ] },
        { title: 'Transactions per second', unit: 'ops', targets: [
          { expr: `sum by (pod) (rate(pgbouncer_stats_sql_transactions_pooled_total${s}[5m]))`, legend: '{{pod}}' },
        ] },
        { title: 'Client connections and max_client_conn', unit: 'short', targets: [
          { expr: `max by (pod) (pgbouncer_used_clients${s})`, legend: '{{pod}}' },
          { expr: `max(pgbouncer_config_max_client_connections${s})`, legend: 'max_client_conn' },
        ] },
      ];
    case ExporterKind.PGPOOL:
      return [
        { title: 'Frontends in use and num_init_children', unit: 'short', targets: [
          { expr: `sum by (pod) (pgpool2_frontend_used${s})`, legend: '{{pod}} used' },
          { expr: `max by (pod) (pgpool2_frontend_total${s})`, legend: '{{pod}} total' },
        ] },
        { title: 'SELECTs per second by backend', unit: 'ops', targets: [
          { expr: `sum by (hostname) (rate(pgpool2_pool_nodes_select_cnt${s}[5m]))`, legend: '{{hostname}}' },
        ] },
        { title: 'Backend status (1 up, 0 down)', unit: 'short', targets: [
          { expr: `min by (hostname) (pgpool2_pool_nodes_status${s})`, legend: '{{hostname}}' },
        ] },
        { title: 'Replication delay seen by Pgpool-II', unit: 'bytes', targets: [
          { expr: `max by (hostname) (pgpool2_pool_nodes_replication_delay${s})`, legend: '{{hostname}}' },
        ] },
      ];
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
