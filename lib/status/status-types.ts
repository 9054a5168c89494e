import { SslMode } from '../core/tls';

/** How healthy one check found its target, best first; the worst decides the exit code. */
export enum HealthStatus {
  /** As expected. Exit code 0. */
  OK = 'ok',
  /** No endpoint was given for the target: not checked, and no effect on the exit code. */
  SKIPPED = 'skipped',
  /** Works, but needs attention soon: lag over a threshold, an inactive slot, a pending restart, waiting clients. Exit code 2. */
  WARNING = 'warning',
  /** Broken now: no or two primaries, a replica not streaming, archiving failing, a balancer node down. Exit code 3. */
  CRITICAL = 'critical',
  /** The target did not answer or refused the login: its state is unknown. Exit code 4. */
  UNREACHABLE = 'unreachable',
}

/** A login the status check uses; the exporters' read-only roles (pg_monitor, stats_users, pool_passwd) are enough. */
export interface StatusCredentials {
  /** The role. */
  readonly username: string;
  /** Its password; never printed. */
  readonly password: string;
  /**
   * The database to log in to.
   * @default - `pgbouncer` (the admin console) for a pooler, `postgres` otherwise
   */
  readonly database?: string;
}

/** What the status check reads and where it connects. */
export interface StatusCheckOptions {
  /**
   * Where each target listens, as `host:port`: `pod/<instance pod>`, `service/<cluster>-rw`,
   * `service/<cluster>-ro`, `service/<pooler>`, `service/<balancer>`, and an exporter's metrics as
   * `pod/<instance pod>:metrics` or `service/<proxy>:metrics`. Targets without an endpoint are
   * reported as skipped.
   */
  readonly endpoints: { [target: string]: string };
  /**
   * A kubeconfig context: every target without an endpoint is reached through `kubectl
   * port-forward` in that context (the namespace and ports from the manifests), stopped when the
   * check ends.
   * @default - no forwarding: only the endpoints given are checked
   */
  readonly kubeContext?: string;
  /**
   * The kubectl program for kubeContext.
   * @default "kubectl" from the PATH
   */
  readonly kubectl?: string;
  /**
   * Logins per component, keyed by the cluster's, pooler's or balancer's name.
   * @default - defaultCredentials for every component
   */
  readonly credentials?: { [component: string]: StatusCredentials };
  /**
   * The login of components without their own entry in credentials.
   * @default - none: a component without a login is unreachable
   */
  readonly defaultCredentials?: StatusCredentials;
  /**
   * TLS towards every endpoint, as libpq's sslmode: `prefer` tries TLS and falls back to plain text.
   * @default SslMode.PREFER
   */
  readonly sslMode?: SslMode;
  /**
   * The CA certificates (PEM file) for SslMode.VERIFY_CA and VERIFY_FULL.
   * @default - none: verify-ca and verify-full need it
   */
  readonly caFile?: string;
  /**
   * Replay lag in bytes above which a replica is a warning.
   * @default 16777216 (16 MiB, one WAL segment)
   */
  readonly maxLagBytes?: number;
  /**
   * Replay lag in seconds above which a replica is a warning.
   * @default 30
   */
  readonly maxLagSeconds?: number;
  /**
   * WAL segments waiting for archive_command above which archiving is a warning.
   * @default 16
   */
  readonly maxArchiveReady?: number;
  /**
   * The longest wait of a pooler's client, in seconds, at which the pool is critical (any waiting client is a warning).
   * @default 5
   */
  readonly maxPoolWaitSeconds?: number;
  /**
   * How long a connection attempt or query may take, in seconds.
   * @default 5
   */
  readonly timeoutSeconds?: number;
}

/** One check of one target. */
export interface StatusFinding {
  /** The cluster, pooler or balancer, by name. */
  readonly component: string;
  /** What was checked, as an endpoint key: `pod/<name>`, `service/<name>`, `service/<name>:metrics`. */
  readonly target: string;
  /** The check: reachable, role, replication, lag, slots, pending-restart, archiving, service-role, pools, nodes, metrics. */
  readonly check: string;
  /** The outcome. */
  readonly status: HealthStatus;
  /** What was found, with figures. */
  readonly message: string;
}

/** The status check's result. */
export interface StatusReport {
  /** The worst status among the findings: OK when every check passed or was skipped. */
  readonly status: HealthStatus;
  /** 0 healthy, 2 warning, 3 critical, 4 unreachable; the worst finding decides. */
  readonly exitCode: number;
  /** Every check, component by component. */
  readonly findings: StatusFinding[];
  /** The findings as a table for a terminal. */
  readonly table: string;
  /** The report as JSON, for pipelines. */
  readonly json: string;
}
