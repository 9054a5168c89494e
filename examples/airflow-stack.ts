import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { ExampleProps } from './example-props';
import { ExporterSidecar, IMonitorable, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster, ScrapeObject } from '../lib';

/**
 * The field's Airflow stack: a 3-instance cluster, Pgpool-II spreading reads over the primary
 * and the replicas, and PgBouncer in front so hundreds of scheduler and worker connections share
 * Pgpool-II's few. An exporter runs beside every daemon, with a ServiceMonitor, alerts and a
 * dashboard each, for a kube-prometheus-stack release that selects `release: monitoring`.
 * Secrets to create (keys `username` and `password`): `airflow-db-superuser`,
 * `airflow-db-replication`, `airflow-app`, `airflow-pgpool-srcheck`, and one per exporter:
 * `airflow-db-exporter`, `airflow-pgpool-exporter`, `airflow-pgbouncer-exporter`.
 */
export class AirflowStackChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;
  public readonly balancer: PgpoolBalancer;
  public readonly pooler: PgBouncerPooler;

  constructor(scope: Construct, id: string, { postgresVersion, ...props }: ExampleProps = {}) {
    super(scope, id, { namespace: 'airflow-ha', ...props });
    const stack = addAirflowStack(this, 'airflow', postgresVersion);
    this.cluster = stack.cluster;
    this.balancer = stack.balancer;
    this.pooler = stack.pooler;
  }
}

/**
 * The stack's constructs in a scope, their objects and Secrets named `<prefix>-...`: many stacks
 * can share one chart (and namespace) under different prefixes.
 */
export function addAirflowStack(scope: Construct, prefix: string, postgresVersion?: number) {
  const app = { secretName: `${prefix}-app` };
  const cluster = new PostgresStatefulCluster(scope, 'AirflowDb', {
    postgresVersion,
    name: `${prefix}-db`,
    instances: 3,
    superuserSecret: { secretName: `${prefix}-db-superuser` },
    replicationSecret: { secretName: `${prefix}-db-replication` },
    databases: [{ name: 'airflow', owner: app }],
  });
  const balancer = new PgpoolBalancer(scope, 'AirflowPgpool', {
    name: `${prefix}-pgpool`,
    backend: cluster,
    users: [{ credentials: app, envPrefix: 'AIRFLOW' }],
    srCheckUser: { secretName: `${prefix}-pgpool-srcheck` },
    numInitChildren: 32,
    maxPool: 1,
  });
  const pooler = new PgBouncerPooler(scope, 'AirflowPgbouncer', {
    name: `${prefix}-pgbouncer`,
    backend: balancer,
    users: [app],
    defaultPoolSize: 16,
  });
  const monitor = (id: string, target: IMonitorable, secretName: string) => new ExporterSidecar(scope, id, {
    target,
    credentials: { secretName },
    scrapeObject: ScrapeObject.SERVICE_MONITOR,
    alerts: true,
    dashboard: true,
    monitoringLabels: { release: 'monitoring' },
  });
  monitor('AirflowDbMetrics', cluster, `${prefix}-db-exporter`);
  monitor('AirflowPgpoolMetrics', balancer, `${prefix}-pgpool-exporter`);
  monitor('AirflowPgbouncerMetrics', pooler, `${prefix}-pgbouncer-exporter`);
  return { cluster, balancer, pooler };
}
