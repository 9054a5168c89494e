/* eslint-disable import/order -- the repository types are imported at the end of the file, after the class they extend */
import { k8s } from '../core/kube';
import { IConstruct } from 'constructs';
import { Connection } from '../core/network-policy';
import type { BackupSchedule } from './backup-props';

/** Where a repository keeps its files. */
export enum RepositoryType {
  /** A PersistentVolumeClaim of a repository host pod. */
  VOLUME = 'volume',
  /** An S3-compatible object store. */
  S3 = 's3',
  /** A Google Cloud Storage bucket. */
  GCS = 'gcs',
  /** An Azure Blob Storage container. */
  AZURE = 'azure',
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
   * (the repository then only receives WAL). Without a full schedule, the repository's full backup
   * CronJob is rendered suspended, for on-demand backups.
   * @default - full backups on Sundays at 01:00 (`0 1 * * 0`), incremental ones Monday to Saturday at 01:00 (`0 1 * * 1-6`)
   */
  readonly schedule?: BackupSchedule;
}

/**
 * What the backup module tells a repository it binds.
 * @internal
 */
export interface RepositoryBindContext {
  /** The prop the repository's errors name: `backup.repositories[<N - 1>]`. */
  readonly prop: string;
  /** pgBackRest's 1-based `repoN`. */
  readonly index: number;
  /** The cluster's name: the stanza. */
  readonly clusterName: string;
  /** The repository host's pod, `<name>-repo-host-0`, whose claims a repository on the host lives on. */
  readonly repoHostPod: string;
}

/**
 * A pgbackrest.conf option: name and value.
 * @internal
 */
export type RepositoryOption = [string, string | number];

/**
 * What a pod adds to reach a repository locally (pgBackRest's `repoN-*` options read there).
 * @internal
 */
export interface RepositoryAccess {
  readonly volumes: k8s.Volume[];
  readonly mounts: k8s.VolumeMount[];
  /** Secrets as pgBackRest reads them from the environment (secretKeyRefs only, never values). */
  readonly env: k8s.EnvVar[];
}

/**
 * What a bound repository contributes; the backup module renders it without knowing the type.
 * Where a repository is local: the instance pods (unless it lives on the repository host), the
 * repository host (if it does), and its own backup jobs.
 * @internal
 */
export interface RepositoryBinding {
  /** Its `repoN-*` options where it is local, without the retention (the module adds it to the backup jobs' config). */
  readonly options: RepositoryOption[];
  /** What a pod where it is local adds. */
  readonly access: RepositoryAccess;
  /** The connections a pod where it is local opens (an object store's endpoints). */
  readonly egress: Connection[];
  /**
   * Set when the repository lives on the repository host's claims: the host then runs with
   * these volumeClaimTemplates (each mounted by `access.mounts`), the instances reach the
   * repository through the host's TLS server, and its backup jobs run on the host's node.
   * @default - not on the repository host
   */
  readonly repoHost?: {
    readonly claims: Array<{ readonly name: string; readonly spec: k8s.PersistentVolumeClaimSpec }>;
  };
}

/**
 * A pgBackRest repository: where WAL is archived and backups are stored. Make one with
 * `BackupRepository.volume()`, `.s3()`, `.gcs()` or `.azure()`.
 */
export abstract class BackupRepository {
  /**
   * A repository on a PersistentVolumeClaim of the repository host `<name>-repo-host`, a
   * one-pod StatefulSet running pgBackRest's TLS server. The claim is kept when the cluster
   * is deleted.
   * @param props size, StorageClass, retention and schedule
   */
  public static volume(props: VolumeRepositoryProps = {}): BackupRepository {
    return new VolumeRepository(props);
  }

  /**
   * A repository in an S3-compatible bucket, reached directly by the instances (WAL) and the
   * backup CronJobs.
   * @param props bucket, endpoint, region, credentials, retention and schedule
   */
  public static s3(props: S3RepositoryProps): BackupRepository {
    return new S3Repository(props);
  }

  /**
   * A repository in a Google Cloud Storage bucket, reached directly by the instances (WAL) and
   * the backup CronJobs, with a service account key or token from a Secret, or workload identity.
   * @param props bucket, credentials, retention and schedule
   */
  public static gcs(props: GcsRepositoryProps): BackupRepository {
    return new GcsRepository(props);
  }

  /**
   * A repository in an Azure Blob Storage container, reached directly by the instances (WAL)
   * and the backup CronJobs, with a shared key or SAS token from a Secret.
   * @param props account, container, credentials, retention and schedule
   */
  public static azure(props: AzureRepositoryProps): BackupRepository {
    return new AzureRepository(props);
  }

  /** Where the repository keeps its files. */
  public abstract readonly type: RepositoryType;

  /**
   * The retention and schedule, which the backup module resolves for every type alike.
   * @internal
   */
  public readonly _options: BackupRepositoryOptions;

  /**
   * For the library's repository types: a repository binds itself through an internal
   * method, so a subclass of another jsii language cannot be bound; make repositories with
   * the static factories.
   * @param options the retention and schedule
   */
  protected constructor(options: BackupRepositoryOptions) {
    this._options = options;
  }

  /**
   * Checks the repository's props (throwing errors that name `context.prop`) and returns what
   * it contributes to the backups of a cluster.
   * @internal
   */
  public abstract _bind(scope: IConstruct, context: RepositoryBindContext): RepositoryBinding;
}

// The repository types extend BackupRepository, so they are imported once it is defined, as
// AWS CDK's stack.ts does against circular imports.
import { AzureRepository, AzureRepositoryProps } from './azure-repository';
import { GcsRepository, GcsRepositoryProps } from './gcs-repository';
import { S3Repository, S3RepositoryProps } from './s3-repository';
import { VolumeRepository, VolumeRepositoryProps } from './volume-repository';
