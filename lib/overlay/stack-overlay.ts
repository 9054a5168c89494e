import { Duration } from 'cdk8s';
import { PostgresStorage } from '../cluster/cluster-props';
import { PostgresqlSettings } from '../cluster/postgresql-settings';
import { ContainerResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { WorkloadProps } from '../core/user-metadata';

// Every overlay field has the name and meaning of the construct prop it changes, so one merge
// serves them all: objects (labels, storage, resources, settings, nodeSelector) merge key by key,
// anything else (numbers, lists such as tolerations, Durations) replaces the base value.

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
