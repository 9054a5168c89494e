import { Chart, ChartProps, Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { BackupRepository, IssuerKind, PostgresStatefulCluster, S3UriStyle } from '../lib';

/**
 * A Patroni cluster whose WAL and backups go to two pgBackRest repositories: a volume of the
 * repository host `billing-db-repo-host` (fast restores, same cluster) and an S3 bucket (off
 * site, encrypted). Full backups weekly and differential ones daily to the volume; full backups
 * monthly and incremental ones daily to S3. Every WAL segment goes to both within
 * `archiveTimeout`, so a restore reaches any point in time both keep.
 * Secrets to create: `billing-db-superuser`, `billing-db-replication`, `billing-app` (keys
 * `username`, `password`), `billing-backup-s3` (`access-key-id`, `secret-access-key`) and
 * `billing-backup-cipher` (`cipher-pass`); cert-manager issues `billing-db-tls`.
 */
export class BackedUpClusterChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;

  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, { namespace: 'billing', ...props });
    this.cluster = new PostgresStatefulCluster(this, 'BillingDb', {
      instances: 3,
      superuserSecret: { secretName: 'billing-db-superuser' },
      replicationSecret: { secretName: 'billing-db-replication' },
      databases: [{ name: 'billing', owner: { secretName: 'billing-app' } }],
      highAvailability: { synchronousMode: true },
      tls: { issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } },
      storage: { size: '100Gi' },
      backup: {
        archiveTimeout: Duration.minutes(5),
        repositories: [
          BackupRepository.volume({
            size: '300Gi',
            retentionFull: 2,
            schedule: { full: '0 1 * * 0', differential: '0 1 * * 1-6' },
          }),
          BackupRepository.s3({
            bucket: 'acme-billing-backups',
            endpoint: 's3.eu-central-1.amazonaws.com',
            region: 'eu-central-1',
            uriStyle: S3UriStyle.HOST,
            credentials: { secretName: 'billing-backup-s3' },
            cipher: { secretName: 'billing-backup-cipher' },
            retentionFull: 3,
            schedule: { full: '0 3 1 * *', incremental: '0 3 2-31 * *' },
          }),
        ],
      },
    });
  }
}
