import { Chart, ChartProps, Duration } from 'cdk8s';
import { Construct } from 'constructs';
import {
  ExporterSidecar, Overlays, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster, ScrapeObject, StackOverlay, TaintEffect,
} from '../lib';

/** Props of {@link OrdersStackChart}: the chart's namespace, and the overlays of its environment. */
export interface OrdersStackProps extends ChartProps {
  readonly overlays?: StackOverlay[];
}

/**
 * The orders service's database stack, written once by the platform team: a cluster, Pgpool-II
 * for read spreading, PgBouncer in front and an exporter on each. Every environment is this
 * chart with its overlays, so names and selectors are the same everywhere and a review diff
 * shows only what the environment changes. Secrets to create in each namespace (keys `username`
 * and `password`): `orders-db-superuser`, `orders-db-replication`, `orders-app`,
 * `orders-pgpool-srcheck`, `orders-db-exporter`, `orders-pgpool-exporter`, `orders-pgbouncer-exporter`.
 */
export class OrdersStackChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;
  public readonly balancer: PgpoolBalancer;
  public readonly pooler: PgBouncerPooler;

  constructor(scope: Construct, id: string, props: OrdersStackProps = {}) {
    super(scope, id, props);
    const overlays = props.overlays ?? [];
    const app = { secretName: 'orders-app' };
    this.cluster = new PostgresStatefulCluster(this, 'OrdersDb', Overlays.cluster({
      instances: 2,
      superuserSecret: { secretName: 'orders-db-superuser' },
      replicationSecret: { secretName: 'orders-db-replication' },
      databases: [{ name: 'orders', owner: app }],
      resources: { cpuRequest: '500m', cpuLimit: '2', memoryLimit: '2Gi' },
      storage: { size: '20Gi' },
      labels: { 'example.com/service': 'orders' },
    }, overlays));
    this.balancer = new PgpoolBalancer(this, 'OrdersPgpool', Overlays.balancer({
      backend: this.cluster,
      users: [{ credentials: app, envPrefix: 'ORDERS' }],
      srCheckUser: { secretName: 'orders-pgpool-srcheck' },
      numInitChildren: 16,
      maxPool: 1,
      labels: { 'example.com/service': 'orders' },
    }, overlays));
    this.pooler = new PgBouncerPooler(this, 'OrdersPgbouncer', Overlays.pooler({
      backend: this.balancer,
      users: [app],
      defaultPoolSize: 12,
      labels: { 'example.com/service': 'orders' },
    }, overlays));
    const exporters = [
      ['OrdersDbMetrics', this.cluster, 'orders-db-exporter'],
      ['OrdersPgpoolMetrics', this.balancer, 'orders-pgpool-exporter'],
      ['OrdersPgbouncerMetrics', this.pooler, 'orders-pgbouncer-exporter'],
    ] as const;
    for (const [exporterId, target, secretName] of exporters) {
      new ExporterSidecar(this, exporterId, Overlays.exporter({
        target,
        credentials: { secretName },
        scrapeObject: ScrapeObject.SERVICE_MONITOR,
        alerts: true,
        monitoringLabels: { release: 'monitoring' },
      }, overlays));
    }
  }
}

/** Development: one instance, one pod of each proxy, small pools, no placement rules. */
export const DEV: StackOverlay = {
  labels: { 'example.com/environment': 'dev' },
  cluster: { instances: 1, resources: { cpuRequest: '100m', cpuLimit: '1', memoryLimit: '1Gi' }, storage: { size: '5Gi' } },
  balancer: { replicas: 1, numInitChildren: 8 },
  pooler: { replicas: 1, defaultPoolSize: 4 },
  exporter: { scrapeInterval: Duration.minutes(1) },
};

/**
 * Production: three instances on the dedicated database node pool, with a priority that batch
 * work cannot preempt, fast disks with WAL on its own volume, bigger pools and an on-call owner.
 */
export const PROD: StackOverlay = {
  labels: { 'example.com/environment': 'prod' },
  annotations: { 'example.com/on-call': 'orders-oncall' },
  placement: {
    nodeSelector: { 'example.com/node-pool': 'database' },
    tolerations: [{ key: 'example.com/dedicated', value: 'database', effect: TaintEffect.NO_SCHEDULE }],
    priorityClassName: 'database-critical',
  },
  cluster: {
    instances: 3,
    resources: { cpuRequest: '2', cpuLimit: '4', memoryLimit: '8Gi' },
    storage: { size: '200Gi', storageClassName: 'fast-ssd', walSize: '50Gi' },
  },
  balancer: { replicas: 2, numInitChildren: 32 },
  pooler: { replicas: 3, defaultPoolSize: 10, maxClientConn: 5000 },
};

/**
 * The analytics team's copy of production in its own namespace: its node pool, its cost
 * center, a larger data volume and larger sorts, smaller pools (few, long queries).
 */
export const ANALYTICS_TEAM: StackOverlay = {
  labels: { 'example.com/team': 'analytics' },
  annotations: { 'example.com/cost-center': 'analytics-4711' },
  placement: { nodeSelector: { 'example.com/node-pool': 'analytics' } },
  cluster: { storage: { size: '1Ti' }, settings: { workMem: '48MB' } },
  pooler: { defaultPoolSize: 4 },
};

/** The stack in each environment: dev, prod, and prod with the analytics team's overlay on top. */
export function buildOrdersEnvironments(scope: Construct): OrdersStackChart[] {
  return [
    new OrdersStackChart(scope, 'orders-dev', { namespace: 'orders-dev', overlays: [DEV] }),
    new OrdersStackChart(scope, 'orders-prod', { namespace: 'orders-prod', overlays: [PROD] }),
    new OrdersStackChart(scope, 'orders-analytics', { namespace: 'analytics', overlays: [PROD, ANALYTICS_TEAM] }),
  ];
}
