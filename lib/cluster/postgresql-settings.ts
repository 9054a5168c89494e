/** Values of `wal_level` that can feed streaming replicas. */
export enum WalLevel {
  /** Enough WAL for physical replicas and archiving. */
  REPLICA = 'replica',
  /** Also enough for logical decoding (logical replication, CDC tools). */
  LOGICAL = 'logical',
}

/** Values of `synchronous_commit`. */
export enum SynchronousCommit {
  /** Wait for the local flush and, with synchronous replication, for the standbys' flush. */
  ON = 'on',
  /** Do not wait for the local flush: a crash may lose the last commits, never consistency. */
  OFF = 'off',
  /** Wait for the local flush only, even with synchronous standbys. */
  LOCAL = 'local',
  /** Wait until synchronous standbys have written (not flushed) the WAL. */
  REMOTE_WRITE = 'remote_write',
  /** Wait until synchronous standbys have applied the commit: reads there see it. */
  REMOTE_APPLY = 'remote_apply',
}

/**
 * Typed postgresql.conf parameters, named after PostgreSQL's own (`max_connections` is
 * `maxConnections`). Memory sizes use PostgreSQL's units: `'256MB'`, `'4GB'`, `'512kB'`.
 * Anything not here goes in `extraParameters`.
 */
export interface PostgresqlSettings {
  /**
   * `max_connections`. Poolers and balancers in front of the cluster must fit in it.
   * @default 100
   */
  readonly maxConnections?: number;
  /**
   * `superuser_reserved_connections`: slots only superusers may take.
   * @default 3
   */
  readonly superuserReservedConnections?: number;
  /**
   * `shared_buffers`.
   * @default - 25% of the memory limit
   */
  readonly sharedBuffers?: string;
  /**
   * `effective_cache_size`: the planner's guess of the OS cache available.
   * @default - 75% of the memory limit
   */
  readonly effectiveCacheSize?: string;
  /**
   * `work_mem`, per sort or hash node of each query.
   * @default '4MB'
   */
  readonly workMem?: string;
  /**
   * `maintenance_work_mem`, for VACUUM, CREATE INDEX and the like.
   * @default - 1/16 of the memory limit
   */
  readonly maintenanceWorkMem?: string;
  /**
   * `wal_level`.
   * @default WalLevel.REPLICA
   */
  readonly walLevel?: WalLevel;
  /**
   * `max_wal_senders`: one per streaming replica plus two for a replica being cloned.
   * @default - the larger of 10 and instances + 2
   */
  readonly maxWalSenders?: number;
  /**
   * `max_replication_slots`: one per replica.
   * @default - the larger of 10 and instances + 2
   */
  readonly maxReplicationSlots?: number;
  /**
   * `max_slot_wal_keep_size`: how much WAL a lagging or lost replica's slot may hold back.
   * Past it the slot is invalidated and that replica must be re-cloned (delete its PVC),
   * instead of the primary's volume filling up.
   * @default - half of the volume that holds the WAL
   */
  readonly maxSlotWalKeepSize?: string;
  /**
   * `wal_keep_size`: WAL kept for replicas regardless of slots.
   * @default - '0MB' (replication slots keep what replicas need); '128MB' in the HA mode
   * (`highAvailability`), Patroni's default, which refuses less than 16MB
   */
  readonly walKeepSize?: string;
  /**
   * `hot_standby`: replicas answer read-only queries.
   * @default true
   */
  readonly hotStandby?: boolean;
  /**
   * `hot_standby_feedback`: replicas tell the primary which rows their queries still need,
   * trading bloat on the primary for fewer cancelled queries on replicas.
   * @default false
   */
  readonly hotStandbyFeedback?: boolean;
  /**
   * `synchronous_commit`.
   * @default SynchronousCommit.ON
   */
  readonly synchronousCommit?: SynchronousCommit;
  /**
   * `shared_preload_libraries`, such as `['pg_stat_statements']`.
   * @default - none
   */
  readonly sharedPreloadLibraries?: string[];
}
