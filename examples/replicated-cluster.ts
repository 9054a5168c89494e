import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { ExampleProps } from './example-props';
import { ChartNamespace, PostgresStatefulCluster, SynchronousReplication } from '../lib';

/**
 * A three-instance PostgreSQL: one primary, two streaming replicas, one of which confirms every
 * commit. The Secrets `orders-db-superuser`, `orders-db-replication` and `orders-app` (keys
 * `username` and `password`) must exist in the namespace, created by you or by a secrets tool.
 * The chart also renders its Namespace, enforcing the Pod Security Standards' restricted profile.
 */
export class ReplicatedClusterChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;

  constructor(scope: Construct, id: string, { postgresVersion, ...props }: ExampleProps = {}) {
    super(scope, id, { namespace: 'orders', ...props });
    this.cluster = new PostgresStatefulCluster(this, 'OrdersDb', {
      postgresVersion,
      instances: 3,
      superuserSecret: { secretName: 'orders-db-superuser' },
      replicationSecret: { secretName: 'orders-db-replication' },
      databases: [{ name: 'orders', owner: { secretName: 'orders-app' } }],
      synchronousReplication: SynchronousReplication.any(1),
      resources: { cpuRequest: '500m', cpuLimit: '2', memoryLimit: '2Gi' },
      storage: { size: '50Gi', walSize: '10Gi' },
      settings: { maxConnections: 200 },
      extraParameters: { log_min_duration_statement: '500ms' },
    });
    new ChartNamespace(this, 'Namespace');
  }
}
