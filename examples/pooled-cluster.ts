import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { ExampleProps } from './example-props';
import { PgBouncerPooler, PostgresStatefulCluster } from '../lib';

/**
 * The field's first pain, solved: a scheduler and its workers open hundreds of connections; a
 * PgBouncer pool in transaction mode gives them a few server connections of a 3-instance
 * cluster. Clients log in with their own roles' passwords, which PgBouncer looks up in the
 * cluster as `pgbouncer-auth` (the cluster creates that role and the lookup function).
 * Secrets to create: `airflow-db-superuser`, `airflow-db-replication`, `airflow-app`,
 * `airflow-pgbouncer-auth` (keys `username` and `password`).
 */
export class PooledClusterChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;
  public readonly pooler: PgBouncerPooler;

  constructor(scope: Construct, id: string, { postgresVersion, ...props }: ExampleProps = {}) {
    super(scope, id, { namespace: 'airflow', ...props });
    this.cluster = new PostgresStatefulCluster(this, 'AirflowDb', {
      postgresVersion,
      instances: 3,
      superuserSecret: { secretName: 'airflow-db-superuser' },
      replicationSecret: { secretName: 'airflow-db-replication' },
      databases: [{ name: 'airflow', owner: { secretName: 'airflow-app' } }],
    });
    this.pooler = new PgBouncerPooler(this, 'AirflowPgbouncer', {
      backend: this.cluster,
      authUser: { secretName: 'airflow-pgbouncer-auth' },
      defaultPoolSize: 20,
      maxDbConnections: 40,
    });
  }
}
