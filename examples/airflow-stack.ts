import { Chart, ChartProps } from 'cdk8s';
import { Construct } from 'constructs';
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

  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, { namespace: 'airflow-ha', ...props });
    const app = { secretName: 'airflow-app' };
    this.cluster = new PostgresStatefulCluster(this, 'AirflowDb', {
      instances: 3,
      superuserSecret: { secretName: 'airflow-db-superuser' },
      replicationSecret: { secretName: 'airflow-db-replication' },
      databases: [{ name: 'airflow', owner: app }],
    });
    this.balancer = new PgpoolBalancer(this, 'AirflowPgpool', {
      backend: this.cluster,
      users: [{ credentials: app, envPrefix: 'AIRFLOW' }],
      srCheckUser: { secretName: 'airflow-pgpool-srcheck' },
      numInitChildren: 32,
      maxPool: 1,
    });
    this.pooler = new PgBouncerPooler(this, 'AirflowPgbouncer', {
      backend: this.balancer,
      users: [app],
      defaultPoolSize: 16,
    });
    const monitor = (id: string, target: IMonitorable, secretName: string) => new ExporterSidecar(this, id, {
      target,
      credentials: { secretName },
      scrapeObject: ScrapeObject.SERVICE_MONITOR,
      alerts: true,
      dashboard: true,
      monitoringLabels: { release: 'monitoring' },
    });
    monitor('AirflowDbMetrics', this.cluster, 'airflow-db-exporter');
    monitor('AirflowPgpoolMetrics', this.balancer, 'airflow-pgpool-exporter');
    monitor('AirflowPgbouncerMetrics', this.pooler, 'airflow-pgbouncer-exporter');
  }
}
