import { Chart, ChartProps } from 'cdk8s';
import { Construct } from 'constructs';
import { ExporterSidecar, ExternalPostgres, IMonitorable, PgBouncerPooler, PgpoolBalancer, ScrapeObject } from '../lib';

/**
 * Pooling and read spreading for a cluster an operator runs: a CloudNativePG cluster `payments`
 * with two replicas, known here only by its Services (`payments-rw`, `payments-ro`) and the
 * Secrets the operator writes (`payments-superuser`, `payments-app`). Pgpool-II spreads reads
 * over both Services; PgBouncer in front keeps the application's many connections to a few.
 * Failover stays the operator's job: both proxies follow the Services.
 * To create besides the operator's Secrets (keys `username` and `password`), with their roles
 * in the database: `payments-pgpool-srcheck` (a LOGIN role in pg_monitor), `payments-pgpool-exporter`
 * (a LOGIN role) and `payments-pgbouncer-exporter` (PgBouncer's own user, not a database role).
 */
export class OperatorManagedChart extends Chart {
  public readonly database: ExternalPostgres;
  public readonly balancer: PgpoolBalancer;
  public readonly pooler: PgBouncerPooler;

  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, { namespace: 'payments', ...props });
    const app = { secretName: 'payments-app' };
    this.database = new ExternalPostgres(this, 'PaymentsDb', {
      readWriteService: 'payments-rw',
      readOnlyService: 'payments-ro',
      replicas: 2,
      superuserSecret: { secretName: 'payments-superuser' },
    });
    this.balancer = new PgpoolBalancer(this, 'PaymentsPgpool', {
      backend: this.database,
      users: [{ credentials: app, envPrefix: 'PAYMENTS' }],
      srCheckUser: { secretName: 'payments-pgpool-srcheck' },
      numInitChildren: 32,
      maxPool: 1,
    });
    this.pooler = new PgBouncerPooler(this, 'PaymentsPgbouncer', {
      backend: this.balancer,
      users: [app],
      defaultPoolSize: 16,
    });
    const monitor = (exporterId: string, target: IMonitorable, secretName: string) => new ExporterSidecar(this, exporterId, {
      target,
      credentials: { secretName },
      scrapeObject: ScrapeObject.SERVICE_MONITOR,
      alerts: true,
      monitoringLabels: { release: 'monitoring' },
    });
    monitor('PaymentsPgpoolMetrics', this.balancer, 'payments-pgpool-exporter');
    monitor('PaymentsPgbouncerMetrics', this.pooler, 'payments-pgbouncer-exporter');
  }
}
