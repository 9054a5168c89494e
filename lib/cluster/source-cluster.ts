import type { BackupRepository } from '../backup/backup-repository';
import { PostgresCredentials } from '../core/credentials';
import { CertificateAuthority } from '../core/tls';

/**
 * Another cluster's pgBackRest repository, which a clone restores from or a standby follows.
 * Every Secret it names is read in THIS cluster's namespace: copy the source's Secrets there
 * when the source runs in another namespace.
 */
export interface SourceRepository {
  /**
   * The repository as the source cluster declares it in its `backup.repositories`
   * (`BackupRepository.volume()` or `BackupRepository.s3()` with the same props: an S3
   * repository's bucket, endpoint, path, credentials and cipher Secrets; a volume repository's
   * size and StorageClass are not used). Its retention and schedule are not used either: only
   * the source's backup jobs expire or back up.
   */
  readonly repository: BackupRepository;
  /**
   * The repository's 1-based position in the source's `backup.repositories`: pgBackRest's
   * `repoN`, which the source's repository host serves a volume repository under.
   * @default 1
   */
  readonly index?: number;
  /**
   * A volume repository: the DNS name of the source's repository host pod, which its
   * certificate names.
   * @default - `<source>-repo-host-0.<source>-repo-host`, with `.<namespace>.svc` when the source's namespace is given
   */
  readonly repoHost?: string;
  /**
   * A volume repository: the port of the source's pgBackRest TLS server (its `backup.serverPort`).
   * @default 8432
   */
  readonly serverPort?: number;
  /**
   * A volume repository: a kubernetes.io/tls Secret (`tls.crt`, `tls.key`, `ca.crt`) whose
   * certificate the source's repository host accepts, which is a certificate of CN `<source>-rw`
   * signed by the source's CA (pgBackRest's `tls-server-auth`): the source's own tls Secret,
   * copied into this namespace, does. Its `ca.crt` verifies the repository host.
   * @default - none; a volume repository refuses to resolve without it
   */
  readonly tlsSecretName?: string;
}

/**
 * A running source cluster's primary, reached over the network as the source's replication
 * role: a clone copies it with pg_basebackup, a standby streams from it. Always TLS, verified
 * against the source's CA for `host` (sslmode verify-full).
 */
export interface SourceStreaming {
  /**
   * The source's replication role: a Secret of THIS namespace with its name and password (a copy
   * of the source's `replicationSecret` when the source runs in another namespace).
   */
  readonly replicationSecret: PostgresCredentials;
  /** The CA that signs the source's server certificate: a Secret of THIS namespace (the source's `ca.crt`). */
  readonly certificateAuthority: CertificateAuthority;
  /**
   * The source primary's host name, which its certificate must name.
   * @default - the source's read-write Service `<source>-rw`, with `.<namespace>.svc` when the source's namespace is given
   */
  readonly host?: string;
  /**
   * The source's PostgreSQL port.
   * @default 5432
   */
  readonly port?: number;
}

/**
 * A cluster that another one is cloned from or follows: its name (the pgBackRest stanza and the
 * prefix of its host names), and how it is reached. Give `repository`, `streaming`, or both.
 */
export interface SourceCluster {
  /** The source cluster's name: its pgBackRest stanza and the prefix of its objects' names. */
  readonly name: string;
  /**
   * The source's namespace, for the default host names.
   * @default - this chart's namespace (host names without a namespace suffix)
   */
  readonly namespace?: string;
  /**
   * The source's backup repository.
   * @default - not read from a repository
   */
  readonly repository?: SourceRepository;
  /**
   * The source's primary over the network.
   * @default - not reached over the network
   */
  readonly streaming?: SourceStreaming;
}

/** Where a clone's data comes from. */
export enum CloneMethod {
  /** pgBackRest restores the source's backup from `source.repository` (latest or `targetTime`). */
  FROM_BACKUP = 'from-backup',
  /** pg_basebackup copies the running source over `source.streaming`. */
  FROM_RUNNING_CLUSTER = 'from-running-cluster',
}

/**
 * Create the cluster, under its own name, as a copy of another cluster instead of initdb. Only
 * an empty data directory is created from the source: once the cluster exists the option does
 * nothing, so it can stay set. The clone then provisions its own roles, databases and Secrets
 * (the source's other roles stay, with the source's passwords), gets a new timeline when
 * recovered from a backup, and archives only into its own `backup` repositories, under its own
 * stanza.
 */
export interface CloneOptions {
  /** The cluster copied. */
  readonly source: SourceCluster;
  /**
   * How the data is copied.
   * @default - CloneMethod.FROM_BACKUP when the source has a repository, else CloneMethod.FROM_RUNNING_CLUSTER
   */
  readonly method?: CloneMethod;
  /**
   * FROM_BACKUP: recover to this time (point-in-time recovery), ISO 8601 with a time zone, as
   * `backup.restore.targetTime` takes it.
   * @default - the latest point the source's WAL in the repository reaches
   */
  readonly targetTime?: string;
  /**
   * FROM_BACKUP with `targetTime`: the timeline to recover along: `current`, `latest` or a number.
   * @default 'current'
   */
  readonly targetTimeline?: string;
}

/**
 * Follow another cluster: the primary pod (the standby leader) runs in recovery, fetching the
 * source's WAL from its repository (restore_command), streaming it from the source's primary, or
 * both; this cluster's replicas stream from the standby leader. Roles, databases and the backups
 * of this cluster wait for promotion: remove the `standby` prop to promote (see the README's
 * "Clones and standby clusters").
 */
export interface StandbyOptions {
  /** The cluster followed; it needs a `repository`, `streaming`, or both. */
  readonly source: SourceCluster;
}
