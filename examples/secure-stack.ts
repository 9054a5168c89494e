import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { ExampleProps } from './example-props';
import { IssuerKind, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster, TlsOptions } from '../lib';

/**
 * TLS on every hop: clients -> PgBouncer -> Pgpool-II -> PostgreSQL, and replicas -> primary.
 * One `tls` value on each construct: cert-manager's ClusterIssuer `internal-ca` (a CA issuer, so
 * each Secret carries ca.crt) issues a certificate per component for its Service names, plaintext
 * is refused everywhere, and each component verifies the next one's certificate with its CA.
 * Secrets to create (keys `username` and `password`): `shop-db-superuser`, `shop-db-replication`,
 * `shop-app`, `shop-pgpool-srcheck`. Clients connect to `shop-pgbouncer.shop.svc` with
 * sslmode=verify-full and the CA from the Secret `shop-pgbouncer-tls` (key `ca.crt`).
 */
export class SecureStackChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;
  public readonly balancer: PgpoolBalancer;
  public readonly pooler: PgBouncerPooler;

  constructor(scope: Construct, id: string, { postgresVersion, ...props }: ExampleProps = {}) {
    super(scope, id, { namespace: 'shop', ...props });
    const tls: TlsOptions = { issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } };
    const app = { secretName: 'shop-app' };
    this.cluster = new PostgresStatefulCluster(this, 'ShopDb', {
      postgresVersion,
      instances: 3,
      superuserSecret: { secretName: 'shop-db-superuser' },
      replicationSecret: { secretName: 'shop-db-replication' },
      databases: [{ name: 'shop', owner: app }],
      tls,
    });
    this.balancer = new PgpoolBalancer(this, 'ShopPgpool', {
      backend: this.cluster,
      users: [{ credentials: app, envPrefix: 'SHOP' }],
      srCheckUser: { secretName: 'shop-pgpool-srcheck' },
      numInitChildren: 16,
      tls,
    });
    this.pooler = new PgBouncerPooler(this, 'ShopPgbouncer', {
      backend: this.balancer,
      users: [app],
      defaultPoolSize: 8,
      tls,
    });
  }
}
