import { Chart, ChartProps, Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { ExporterSidecar, IssuerKind, PgBouncerPooler, PostgresStatefulCluster, ScrapeObject } from '../lib';

/**
 * Automatic failover without an operator: Patroni in each of three pods elects the primary
 * through ConfigMaps, and `ledger-db-rw` follows whichever pod leads. Synchronous mode means a
 * failover loses no acknowledged commit. PgBouncer pools in front of the read-write Service,
 * so clients reconnect to the new primary through it; an exporter watches every member.
 * The API server's addresses are given so the NetworkPolicy lets Patroni reach only them.
 * Secrets to create: `ledger-db-superuser`, `ledger-db-replication`, `ledger-app`,
 * `ledger-pgbouncer-auth`, `ledger-db-exporter` (keys `username` and `password`); cert-manager
 * issues `ledger-db-tls` and `ledger-pgbouncer-tls` from the ClusterIssuer `internal-ca`.
 */
export class HaClusterChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;
  public readonly pooler: PgBouncerPooler;

  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, { namespace: 'ledger', ...props });
    const tls = { issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } };
    this.cluster = new PostgresStatefulCluster(this, 'LedgerDb', {
      instances: 3,
      superuserSecret: { secretName: 'ledger-db-superuser' },
      replicationSecret: { secretName: 'ledger-db-replication' },
      databases: [{ name: 'ledger', owner: { secretName: 'ledger-app' } }],
      highAvailability: {
        ttl: Duration.seconds(30),
        loopWait: Duration.seconds(10),
        synchronousMode: true,
        apiServer: { cidrs: ['10.0.0.10/32', '10.0.0.11/32', '10.0.0.12/32'], ports: [6443] },
      },
      resources: { cpuRequest: '500m', cpuLimit: '2', memoryLimit: '2Gi' },
      storage: { size: '50Gi' },
      tls,
    });
    this.pooler = new PgBouncerPooler(this, 'LedgerPgbouncer', {
      backend: this.cluster,
      authUser: { secretName: 'ledger-pgbouncer-auth' },
      defaultPoolSize: 20,
      tls,
    });
    new ExporterSidecar(this, 'LedgerDbMetrics', {
      target: this.cluster,
      credentials: { secretName: 'ledger-db-exporter' },
      scrapeObject: ScrapeObject.SERVICE_MONITOR,
      alerts: true,
      monitoringLabels: { release: 'monitoring' },
    });
  }
}
