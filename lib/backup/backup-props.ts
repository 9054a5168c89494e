import { Duration } from 'cdk8s';
import type { BackupRepository } from './backup-repository';
import { NetworkPeer } from '../core/network-policy';
import { ContainerResources } from '../core/resources';

/** The kinds of pgBackRest backup. */
export enum BackupType {
  /** Every file of the cluster. */
  FULL = 'full',
  /** The files changed since the last full backup. */
  DIFFERENTIAL = 'diff',
  /** The files changed since the last backup of any type. */
  INCREMENTAL = 'incr',
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

/** What {@link BackupOptions} sets besides its repositories, which an overlay changes alike. */
export interface BackupTuning {
  /**
   * Create the cluster from a backup of these repositories.
   * @default - a new cluster starts empty (initdb)
   */
  readonly restore?: RestoreOptions;
  /**
   * Take every repository's backups from a replica (pgBackRest's `backup-standby=y`): the primary
   * only starts and stops each backup, and the files are copied from a streaming replica, so the
   * copy neither reads the primary's disk nor loads its network. It is cluster-wide, not per
   * repository, since what it spares is the primary, whichever repository the copy goes to. With
   * pgBackRest 2.45 a backup then fails while no replica is up and replaying (the fallback to the
   * primary, `prefer`, came in 2.52); it needs `instances` of 2 or more.
   * @default false
   */
  readonly fromStandby?: boolean;
  /**
   * Other clusters' pods the repository host's NetworkPolicy admits to its TLS server besides this
   * cluster's instances: clones and standby clusters that read this cluster's volume repositories
   * (`clone.source.repository`, `standby.source.repository`), such as
   * `{ namespace: 'dr', podSelector: { 'app.kubernetes.io/instance': 'orders-dr' } }`. They still
   * need a certificate of this cluster's CN to be served.
   * @default - only this cluster's instances
   */
  readonly repositoryClients?: NetworkPeer[];
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

/** pgBackRest backups of a cluster: repositories, WAL archiving, schedules and restore. */
export interface BackupOptions extends BackupTuning {
  /** One to four repositories; WAL goes to each, and each has its own backups and retention. */
  readonly repositories: BackupRepository[];
}
