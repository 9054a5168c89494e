import { Duration } from 'cdk8s';
import { BackupTuning } from '../backup/backup-props';
import { BackupRepository } from '../backup/backup-repository';
import { PostgresStorage } from '../cluster/cluster-props';
import { HighAvailability } from '../cluster/high-availability';
import { PostgresqlSettings } from '../cluster/postgresql-settings';
import { ContainerResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { WorkloadProps } from '../core/user-metadata';

// Every overlay field has the name and meaning of the construct prop it changes, so one merge
// serves them all: objects (labels, storage, resources, settings, nodeSelector) merge key by key,
// anything else (numbers, lists such as tolerations and backup repositories, Durations) replaces
// the base value. jsii has no way to set a field to "unset", so the two features an environment
// may drop have a switch of their own (withoutHighAvailability, withoutBackup).

/** What an environment or team changes in a {@link PostgresStatefulCluster}. */
export interface ClusterOverlay extends WorkloadProps {
  /**
   * Number of instances: one primary and `instances - 1` replicas.
   * @default - the base stack's value
   */
  readonly instances?: number;
  /**
   * CPU and memory of each instance, merged field by field.
   * @default - the base stack's value
   */
  readonly resources?: ContainerResources;
  /**
   * Volume sizes and StorageClasses, merged field by field. A live StatefulSet cannot change
   * them: set them when an environment is first created.
   * @default - the base stack's value
   */
  readonly storage?: PostgresStorage;
  /**
   * Typed postgresql.conf parameters, merged field by field.
   * @default - the base stack's value
   */
  readonly settings?: PostgresqlSettings;
  /**
   * Other postgresql.conf parameters, merged name by name.
   * @default - the base stack's value
   */
  readonly extraParameters?: { [name: string]: string };
  /**
   * Spreading of instances over nodes.
   * @default - the base stack's value
   */
  readonly spread?: PodSpread;
  /**
   * Automatic failover (Patroni), merged field by field; where the base has none, this turns
   * it on. Turning it on or off is not an in-place change: the members move from the
   * `<name>-primary` and `<name>-replica` StatefulSets to `<name>` (or back), whose pods start
   * on new, empty volumes. Decide it when an environment is first created.
   * @default - the base stack's value
   */
  readonly highAvailability?: HighAvailability;
  /**
   * Run without the base's automatic failover: the plain primary and replica StatefulSets. Not
   * with `highAvailability` in the same overlay; a later overlay's `highAvailability` turns it
   * on again.
   * @default false
   */
  readonly withoutHighAvailability?: boolean;
  /**
   * pgBackRest backups, merged field by field, but `repositories` replaces the base's list as a
   * whole. Where the base has no backups (or an earlier overlay turned them off), this turns
   * them on and must list `repositories`.
   * @default - the base stack's value
   */
  readonly backup?: BackupOverlay;
  /**
   * Run without the base's backups: no WAL archiving, no repository host, no backup CronJobs.
   * Not with `backup` in the same overlay; a later overlay's `backup` with `repositories` turns
   * them on again.
   * @default false
   */
  readonly withoutBackup?: boolean;
}

/** What an environment or team changes in a cluster's backups: any field of `BackupOptions`, merged field by field. */
export interface BackupOverlay extends BackupTuning {
  /**
   * The repositories, replacing the base's list as a whole: a repository is an object, not
   * merged, so an environment with another schedule, retention or bucket lists its own.
   * @default - the base stack's repositories
   */
  readonly repositories?: BackupRepository[];
}

/** What an environment or team changes in a {@link PgBouncerPooler}. */
export interface PoolerOverlay extends WorkloadProps {
  /**
   * Number of PgBouncer pods.
   * @default - the base stack's value
   */
  readonly replicas?: number;
  /**
   * CPU and memory of each pod, merged field by field.
   * @default - the base stack's value
   */
  readonly resources?: ContainerResources;
  /**
   * `default_pool_size` per pod.
   * @default - the base stack's value
   */
  readonly defaultPoolSize?: number;
  /**
   * `min_pool_size` per pod.
   * @default - the base stack's value
   */
  readonly minPoolSize?: number;
  /**
   * `reserve_pool_size` per pod.
   * @default - the base stack's value
   */
  readonly reservePoolSize?: number;
  /**
   * `max_client_conn` per pod.
   * @default - the base stack's value
   */
  readonly maxClientConn?: number;
  /**
   * `max_db_connections` per pod.
   * @default - the base stack's value
   */
  readonly maxDbConnections?: number;
  /**
   * `max_user_connections` per pod.
   * @default - the base stack's value
   */
  readonly maxUserConnections?: number;
  /**
   * Spreading of the pods over nodes.
   * @default - the base stack's value
   */
  readonly spread?: PodSpread;
}

/** What an environment or team changes in a {@link PgpoolBalancer}. */
export interface BalancerOverlay extends WorkloadProps {
  /**
   * Number of Pgpool-II pods.
   * @default - the base stack's value
   */
  readonly replicas?: number;
  /**
   * CPU and memory of each pod, merged field by field.
   * @default - the base stack's value
   */
  readonly resources?: ContainerResources;
  /**
   * `num_init_children` per pod.
   * @default - the base stack's value
   */
  readonly numInitChildren?: number;
  /**
   * `max_pool` per child.
   * @default - the base stack's value
   */
  readonly maxPool?: number;
  /**
   * Spreading of the pods over nodes.
   * @default - the base stack's value
   */
  readonly spread?: PodSpread;
}

/** What an environment or team changes in an {@link ExporterSidecar}. */
export interface ExporterOverlay {
  /**
   * CPU and memory of the exporter container, merged field by field.
   * @default - the base stack's value
   */
  readonly resources?: ContainerResources;
  /**
   * How often Prometheus scrapes.
   * @default - the base stack's value
   */
  readonly scrapeInterval?: Duration;
  /**
   * Labels of the monitor, rule and dashboard objects, merged key by key.
   * @default - the base stack's value
   */
  readonly monitoringLabels?: { [key: string]: string };
}

/**
 * One environment's or team's changes to a base stack. The workload fields at the top (labels,
 * annotations, placement, networkPolicy) apply to every workload of the stack; each component's
 * own section comes after.
 */
export interface StackOverlay extends WorkloadProps {
  /**
   * Changes to the clusters.
   * @default - none
   */
  readonly cluster?: ClusterOverlay;
  /**
   * Changes to the poolers.
   * @default - none
   */
  readonly pooler?: PoolerOverlay;
  /**
   * Changes to the balancers.
   * @default - none
   */
  readonly balancer?: BalancerOverlay;
  /**
   * Changes to the exporters.
   * @default - none
   */
  readonly exporter?: ExporterOverlay;
}
