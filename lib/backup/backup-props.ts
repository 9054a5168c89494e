import { Duration } from 'cdk8s';
import { ContainerResources } from '../core/resources';
import { CertificateAuthority } from '../core/tls';

/** The kinds of pgBackRest backup. */
export enum BackupType {
  /** Every file of the cluster. */
  FULL = 'full',
  /** The files changed since the last full backup. */
  DIFFERENTIAL = 'diff',
  /** The files changed since the last backup of any type. */
  INCREMENTAL = 'incr',
}

/** Where a repository keeps its files. */
export enum RepositoryType {
  /** A PersistentVolumeClaim of a repository host pod. */
  VOLUME = 'volume',
  /** An S3-compatible object store. */
  S3 = 's3',
}

/** How S3 requests name the bucket. */
export enum S3UriStyle {
  /** `https://<bucket>.<endpoint>/<path>`: AWS and most stores. */
  HOST = 'host',
  /** `https://<endpoint>/<bucket>/<path>`: MinIO and stores without wildcard DNS. */
  PATH = 'path',
}

/**
 * When backups of a repository run: Kubernetes CronJob schedules (five fields, in the time zone
 * of the kube-controller-manager, usually UTC). Each type with a schedule gets its own CronJob.
 * pgBackRest's backup lock is per pod, so the schedules of one repository must not overlap.
 */
export interface BackupSchedule {
  /**
   * Full backups.
   * @default - none of this type
   */
  readonly full?: string;
  /**
   * Differential backups.
   * @default - none of this type
   */
  readonly differential?: string;
  /**
   * Incremental backups.
   * @default - none of this type
   */
  readonly incremental?: string;
}

/** What every repository takes. */
export interface BackupRepositoryOptions {
  /**
   * Full backups to keep (`repoN-retention-full`). Each backup ends by expiring older full
   * backups, the differential and incremental ones that depend on them, and their WAL.
   * @default 2
   */
  readonly retentionFull?: number;
  /**
   * When backups run. A schedule given schedules only the types it names; `{}` schedules none
   * (the repository then only receives WAL).
   * @default - full backups on Sundays at 01:00 (`0 1 * * 0`), incremental ones Monday to Saturday at 01:00 (`0 1 * * 1-6`)
   */
  readonly schedule?: BackupSchedule;
}

/** A repository on a PersistentVolumeClaim of the repository host. */
export interface VolumeRepositoryProps extends BackupRepositoryOptions {
  /**
   * Size of the volume.
   * @default '20Gi'
   */
  readonly size?: string;
  /**
   * StorageClass of the volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
}

/** A Secret holding an S3 access key. */
export interface S3Credentials {
  /** The Secret's name. */
  readonly secretName: string;
  /**
   * The key holding the access key id.
   * @default 'access-key-id'
   */
  readonly accessKeyIdKey?: string;
  /**
   * The key holding the secret access key.
   * @default 'secret-access-key'
   */
  readonly secretAccessKeyKey?: string;
}

/** A Secret holding the passphrase a repository is encrypted with. */
export interface RepositoryCipher {
  /** The Secret's name. */
  readonly secretName: string;
  /**
   * The key holding the passphrase.
   * @default 'cipher-pass'
   */
  readonly key?: string;
}

/** A repository in an S3-compatible bucket, reached over HTTPS. */
export interface S3RepositoryProps extends BackupRepositoryOptions {
  /** The bucket. */
  readonly bucket: string;
  /** The endpoint's host name, without scheme, port or path (`s3.eu-west-1.amazonaws.com`, `minio.storage.svc`). */
  readonly endpoint: string;
  /** The region (`eu-west-1`; MinIO takes any, such as `us-east-1`). */
  readonly region: string;
  /** The Secret with the access key. */
  readonly credentials: S3Credentials;
  /**
   * The endpoint's HTTPS port.
   * @default 443
   */
  readonly port?: number;
  /**
   * How requests name the bucket.
   * @default S3UriStyle.HOST
   */
  readonly uriStyle?: S3UriStyle;
  /**
   * The repository's path in the bucket.
   * @default - `/<cluster name>`
   */
  readonly path?: string;
  /**
   * The CA that signs the endpoint's certificate, for a store with a private CA.
   * @default - the image's system CAs
   */
  readonly certificateAuthority?: CertificateAuthority;
  /**
   * Encrypt the repository (aes-256-cbc) with the passphrase of this Secret. Set it when the
   * repository is created: an existing repository cannot be encrypted afterwards.
   * @default - not encrypted
   */
  readonly cipher?: RepositoryCipher;
  /**
   * Networks the endpoint is in, for the NetworkPolicies' egress rules.
   * @default - any address: ['0.0.0.0/0', '::/0']
   */
  readonly egressCidrs?: string[];
}

/**
 * A pgBackRest repository: where WAL is archived and backups are stored. Make one with
 * `BackupRepository.volume()` or `BackupRepository.s3()`.
 */
export class BackupRepository {
  /**
   * A repository on a PersistentVolumeClaim of the repository host `<name>-repo-host`, a
   * one-pod StatefulSet running pgBackRest's TLS server. The claim is kept when the cluster
   * is deleted.
   * @param props size, StorageClass, retention and schedule
   */
  public static volume(props: VolumeRepositoryProps = {}): BackupRepository {
    return new BackupRepository(RepositoryType.VOLUME, props, undefined);
  }

  /**
   * A repository in an S3-compatible bucket, reached directly by the instances (WAL) and the
   * backup CronJobs.
   * @param props bucket, endpoint, region, credentials, retention and schedule
   */
  public static s3(props: S3RepositoryProps): BackupRepository {
    return new BackupRepository(RepositoryType.S3, undefined, props);
  }

  private constructor(
    /** Where the repository keeps its files. */
    public readonly type: RepositoryType,
    /** The props of a volume repository. */
    public readonly volumeProps: VolumeRepositoryProps | undefined,
    /** The props of an S3 repository. */
    public readonly s3Props: S3RepositoryProps | undefined,
  ) {}
}

/**
 * Create the cluster from a backup instead of initdb. Only an empty data directory is
 * restored: once the cluster exists, the option does nothing, so it can stay set.
 */
export interface RestoreOptions {
  /**
   * The repository to restore from, 1-based, in the order of `repositories`.
   * @default 1
   */
  readonly repository?: number;
  /**
   * Recover to this time (point-in-time recovery), ISO 8601 with a time zone:
   * `<date>T12:00:00Z` or `<date> 13:00:00.5+01:00`, the date as year-month-day. pgBackRest picks the last backup
   * before it, and the cluster is promoted once the time is reached.
   * @default - the latest point the repository's WAL reaches
   */
  readonly targetTime?: string;
  /**
   * The timeline to recover along, with `targetTime`: `current` (the backup's), `latest`, or
   * a timeline number. pgBackRest 2.45 writes none for a time target, and PostgreSQL's own
   * default (`latest`) silently follows a later fork.
   * @default 'current'
   */
  readonly targetTimeline?: string;
}

/** pgBackRest backups of a cluster: repositories, WAL archiving, schedules and restore. */
export interface BackupOptions {
  /** One to four repositories; WAL goes to each, and each has its own backups and retention. */
  readonly repositories: BackupRepository[];
  /**
   * Create the cluster from a backup of these repositories.
   * @default - a new cluster starts empty (initdb)
   */
  readonly restore?: RestoreOptions;
  /**
   * Port of pgBackRest's TLS server, beside PostgreSQL in each instance and on the repository host.
   * @default 8432
   */
  readonly serverPort?: number;
  /**
   * `archive_timeout`: a WAL segment is archived at least this often, so a quiet cluster
   * loses at most this much on restore.
   * @default Duration.seconds(60)
   */
  readonly archiveTimeout?: Duration;
  /**
   * pgBackRest's `io-timeout`: how long a network read or write may stall. The default of
   * pgBackRest (60 s) made one check against an unreachable S3 endpoint take 481 s.
   * @default Duration.seconds(10)
   */
  readonly ioTimeout?: Duration;
  /**
   * The image of the pgBackRest containers (server sidecar, repository host, backup jobs); it
   * must carry pgBackRest 2.45 or later. The PostgreSQL image needs pgBackRest too, since
   * `archive_command` runs there.
   * @default - the cluster's image
   */
  readonly image?: string;
  /**
   * Resources of each pgBackRest container.
   * @default - 100m CPU requested, 1 CPU and 256Mi at most
   */
  readonly resources?: ContainerResources;
}
