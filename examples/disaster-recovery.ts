import { App, Chart } from 'cdk8s';
import { BackupRepository, IssuerKind, PostgresStatefulCluster, SourceCluster } from '../lib';

// An image with pgBackRest, which restores and archive-get run in the instance pods.
const IMAGE = 'percona/percona-distribution-postgresql:17.10-1';
const ISSUER = { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER };
const NAMESPACES = { source: 'invoices', standby: 'invoices-dr', staging: 'invoices-staging' };

/**
 * A disaster recovery setup of three namespaces: the cluster `invoices-db` backs up to a volume
 * repository; `invoices-db-dr` follows it as a standby cluster (its repository, then streaming from
 * its primary) and is promoted by removing `standby`; `invoices-db-staging` is a clone of its latest
 * backup for a restore drill. Secrets to create: in `invoices`, `invoices-db-superuser` and
 * `invoices-db-replication`; in `invoices-dr`, `invoices-db-dr-superuser` and copies of
 * `invoices-db-replication` and `invoices-db-tls` (the source's client certificate and CA); in
 * `invoices-staging`, `invoices-db-staging-superuser`, `invoices-db-staging-replication` and a copy of
 * `invoices-db-tls`. cert-manager issues each cluster's own tls Secret.
 */
export function buildDisasterRecovery(app: App): void {
  const sourceChart = new Chart(app, 'dr-source', { namespace: NAMESPACES.source });
  const repository = BackupRepository.volume({ size: '200Gi', schedule: { full: '0 1 * * *' } });
  new PostgresStatefulCluster(sourceChart, 'InvoicesDb', {
    instances: 2,
    image: IMAGE,
    superuserSecret: { secretName: 'invoices-db-superuser' },
    replicationSecret: { secretName: 'invoices-db-replication' },
    tls: { issuer: ISSUER },
    backup: {
      repositories: [repository],
      // The copies read the repository through its host, which admits them by namespace.
      repositoryClients: [{ namespace: NAMESPACES.standby }, { namespace: NAMESPACES.staging }],
    },
  }).allowClients({ namespace: NAMESPACES.standby });

  // The source as its copies reach it: its backups, and (for the standby) its primary.
  const invoicesBackups: SourceCluster = {
    name: 'invoices-db',
    namespace: NAMESPACES.source,
    repository: { repository, tlsSecretName: 'invoices-db-tls' },
  };
  const invoices: SourceCluster = {
    ...invoicesBackups,
    streaming: { replicationSecret: { secretName: 'invoices-db-replication' }, certificateAuthority: { secretName: 'invoices-db-tls' } },
  };

  const standbyChart = new Chart(app, 'dr-standby', { namespace: NAMESPACES.standby });
  new PostgresStatefulCluster(standbyChart, 'InvoicesDbDr', {
    instances: 2,
    image: IMAGE,
    superuserSecret: { secretName: 'invoices-db-dr-superuser' },
    // While a standby, its catalog is the source's: its replicas stream as the source's role.
    replicationSecret: { secretName: 'invoices-db-replication' },
    tls: { issuer: ISSUER },
    standby: { source: invoices },
  });

  const stagingChart = new Chart(app, 'dr-staging', { namespace: NAMESPACES.staging });
  new PostgresStatefulCluster(stagingChart, 'InvoicesDbStaging', {
    instances: 1,
    image: IMAGE,
    superuserSecret: { secretName: 'invoices-db-staging-superuser' },
    replicationSecret: { secretName: 'invoices-db-staging-replication' },
    tls: { issuer: ISSUER },
    clone: { source: invoicesBackups },
  });
}
