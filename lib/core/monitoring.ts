import { IConstruct } from 'constructs';
import { PostgresCredentials } from './credentials';
import { Sidecar } from './sidecars';

/** The daemon a component runs, and so the exporter that reads it. */
export enum ExporterKind {
  /** PostgreSQL, read by postgres_exporter. */
  POSTGRES = 'postgres',
  /** PgBouncer, read by pgbouncer_exporter through its admin console. */
  PGBOUNCER = 'pgbouncer',
  /** Pgpool-II, read by pgpool2_exporter through its SHOW commands. */
  PGPOOL = 'pgpool',
}

/** A CronJob whose runs are alerted on when none succeeded for longer than its schedule allows. */
export interface ScheduledJobProfile {
  /** The CronJob's name, kube-state-metrics' `cronjob` label. */
  readonly cronJobName: string;
  /** The longest time between two runs of its schedule, in seconds. */
  readonly maxIntervalSeconds: number;
}

/** What an exporter and its alerts need to know of the component they watch. */
export interface MonitoringProfile {
  /** Which exporter reads the component. */
  readonly kind: ExporterKind;
  /** The component's resource name. */
  readonly name: string;
  /** The component's `app.kubernetes.io/part-of` label. */
  readonly partOf: string;
  /**
   * The component's namespace.
   * @default - none: the chart has no namespace
   */
  readonly namespace?: string;
  /** The port the daemon listens on inside the pod, which the exporter reads over loopback. */
  readonly daemonPort: number;
  /** Whether the daemon refuses clients without TLS, so the exporter must use it too. */
  readonly tlsRequired: boolean;
  /** Labels that select every pod of the component. */
  readonly podSelector: { [key: string]: string };
  /** Labels that select the one Service that carries the metrics port. */
  readonly serviceSelector: { [key: string]: string };
  /** A regular expression matching the names of the component's pods, to scope alert queries. */
  readonly podNamePattern: string;
  /**
   * The limit the connection alert compares with: PostgreSQL's max_connections, PgBouncer's
   * max_client_conn or Pgpool-II's num_init_children (per pod).
   */
  readonly connectionLimit: number;
  /**
   * How long PgBouncer lets a client wait for a server before dropping it (query_wait_timeout),
   * in seconds; 0 when it waits forever.
   * @default - not a PgBouncer
   */
  readonly clientWaitLimitSeconds?: number;
  /**
   * Replication slots of the replicas, whose lag and activity are alerted on.
   * @default - none
   */
  readonly replicationSlots?: string[];
  /**
   * max_slot_wal_keep_size in bytes: a replica further behind loses its slot and must be cloned again.
   * @default - not a PostgreSQL cluster
   */
  readonly maxSlotWalKeepBytes?: number;
  /**
   * Whether PostgreSQL archives WAL (a cluster with `backup`), so failed archiving is alerted on.
   * @default false
   */
  readonly walArchiving?: boolean;
  /**
   * The backup CronJobs, whose time since their last success (kube-state-metrics'
   * `kube_cronjob_status_last_successful_time`) is alerted on.
   * @default - none
   */
  readonly backupJobs?: ScheduledJobProfile[];
  /**
   * The target's own labels (its `labels` prop), which the exporter's objects carry but the
   * monitoring ones (those carry `monitoringLabels`), such as postgres_exporter's queries ConfigMap.
   * @default - none
   */
  readonly labels?: { [key: string]: string };
  /**
   * The target's own annotations (its `annotations` prop), on the same objects as `labels`.
   * @default - none
   */
  readonly annotations?: { [key: string]: string };
}

/**
 * A component an ExporterSidecar can watch: a PostgresStatefulCluster, a PgBouncerPooler or a
 * PgpoolBalancer.
 */
export interface IMonitorable extends IConstruct {
  /** The exporter that fits and the limits its alerts use. */
  readonly monitoringProfile: MonitoringProfile;
  /**
   * Runs a container beside the daemon in every pod of the component.
   * @param sidecar the container, its Service port and pod annotations
   */
  addSidecar(sidecar: Sidecar): void;
  /**
   * Lets the role of these credentials read the daemon's statistics and nothing more
   * (PostgreSQL: pg_monitor; PgBouncer: stats_users; Pgpool-II: a pool_passwd entry).
   * @param credentials the exporter's own Secret, used for nothing else
   */
  grantMetricsAccess(credentials: PostgresCredentials): void;
}
