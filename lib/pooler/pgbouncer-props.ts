import { Duration } from 'cdk8s';
import { PgBouncerAuthType, PoolMode } from './pgbouncer-settings';
import { PostgresCredentials } from '../core/credentials';
import { EndpointRole, IPostgresEndpoint } from '../core/endpoint';
import { ContainerResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { SslMode } from '../core/tls';
import { WorkloadProps } from '../core/user-metadata';

/** A `[databases]` entry: a database name clients use, routed to a backend database. */
export interface PgBouncerDatabase {
  /** Name clients connect to. */
  readonly name: string;
  /**
   * Database on the backend.
   * @default - the same as `name`
   */
  readonly dbname?: string;
  /**
   * Which of the backend's Services it routes to.
   * @default - the pooler's `target`
   */
  readonly target?: EndpointRole;
  /**
   * `pool_size` of this database's pools.
   * @default - the pooler's `defaultPoolSize`
   */
  readonly poolSize?: number;
  /**
   * `pool_mode` of this database.
   * @default - the pooler's `poolMode`
   */
  readonly poolMode?: PoolMode;
  /**
   * `max_db_connections` of this database.
   * @default - the pooler's `maxDbConnections`
   */
  readonly maxDbConnections?: number;
}

/** Props of {@link PgBouncerPooler}. Pool settings are PgBouncer's own names in camelCase. */
export interface PgBouncerPoolerProps extends WorkloadProps {
  /** The cluster to pool connections to: a PostgresStatefulCluster, an ExternalPostgres or a balancer. */
  readonly backend: IPostgresEndpoint;
  /**
   * Name of the Deployment, Service and the rest.
   * @default - the construct id in kebab-case
   */
  readonly name?: string;
  /**
   * Which of the backend's Services the pools connect to.
   * @default EndpointRole.READ_WRITE
   */
  readonly target?: EndpointRole;
  /**
   * Number of PgBouncer pods; each holds its own pools.
   * @default 2
   */
  readonly replicas?: number;
  /**
   * Container image with PgBouncer, `/bin/sh` and `sed`, run as `runAsUser`.
   * @default 'edoburu/pgbouncer:v1.25.1-p0'
   */
  readonly image?: string;
  /**
   * PgBouncer version of the image: settings newer than it are refused at synth.
   * @default '1.25.1'
   */
  readonly pgbouncerVersion?: string;
  /**
   * UID and GID PgBouncer runs as (the default image's `postgres` user).
   * @default 70
   */
  readonly runAsUser?: number;
  /**
   * Port of the Service; PgBouncer itself listens on 6432.
   * @default 5432
   */
  readonly port?: number;
  /**
   * Secret of the role PgBouncer logs in as to look up client passwords with `authQuery`.
   * With a PostgresStatefulCluster backend, the cluster creates the role and the lookup function.
   * @default - no auth_query: only the `users` can log in
   */
  readonly authUser?: PostgresCredentials;
  /**
   * Query that returns (usename, passwd) for `$1`.
   * @default 'SELECT usename, passwd FROM pgbouncer.get_auth($1)' (the function PostgresStatefulCluster installs)
   */
  readonly authQuery?: string;
  /**
   * How many roles log in through `authQuery`, for the connection budget: each has a pool of its
   * own in every database, as each of `users` does. Only maxDbConnections bounds what more roles
   * would open.
   * @default - 1 with authUser
   */
  readonly authQueryRoles?: number;
  /**
   * Roles whose names and passwords go into the userlist, built at pod start from their Secrets.
   * @default - none
   */
  readonly users?: PostgresCredentials[];
  /**
   * `auth_type` for clients.
   * @default PgBouncerAuthType.SCRAM_SHA_256
   */
  readonly authType?: PgBouncerAuthType;
  /**
   * `admin_users`: roles that may run admin commands on the `pgbouncer` console database.
   * @default - none
   */
  readonly adminUsers?: string[];
  /**
   * `stats_users`: roles that may run SHOW commands, such as an exporter's.
   * @default - none
   */
  readonly statsUsers?: string[];
  /**
   * `[databases]` entries.
   * @default - a wildcard entry: every database of the backend, by the client's name for it
   */
  readonly databases?: PgBouncerDatabase[];
  /**
   * `pool_mode`.
   * @default PoolMode.TRANSACTION
   */
  readonly poolMode?: PoolMode;
  /**
   * `max_client_conn` per pod.
   * @default 2000
   */
  readonly maxClientConn?: number;
  /**
   * `default_pool_size`: server connections per user and database pair, per pod.
   * @default 20
   */
  readonly defaultPoolSize?: number;
  /**
   * `min_pool_size`.
   * @default 0
   */
  readonly minPoolSize?: number;
  /**
   * `reserve_pool_size`: extra server connections for pools whose clients wait too long.
   * @default 0
   */
  readonly reservePoolSize?: number;
  /**
   * `reserve_pool_timeout`.
   * @default Duration.seconds(5)
   */
  readonly reservePoolTimeout?: Duration;
  /**
   * `max_db_connections` per pod: caps each database's server connections over all users.
   * @default - no cap
   */
  readonly maxDbConnections?: number;
  /**
   * `max_user_connections` per pod.
   * @default - no cap
   */
  readonly maxUserConnections?: number;
  /**
   * `server_idle_timeout`.
   * @default Duration.minutes(10)
   */
  readonly serverIdleTimeout?: Duration;
  /**
   * `server_lifetime`: a server connection older than this is closed when its client releases it.
   * It is what ends a connection to a primary that Patroni demoted while the read-write Service
   * still sent new connections to its pod (every write on it fails as read-only); a reconnect
   * every 5 minutes costs the backend next to nothing.
   * @default Duration.minutes(5)
   */
  readonly serverLifetime?: Duration;
  /**
   * `query_wait_timeout`: how long a client may wait for a server connection. It is what ends a
   * held session's wait while the server is down or frozen (see the README's bound).
   * @default Duration.seconds(20)
   */
  readonly queryWaitTimeout?: Duration;
  /**
   * `idle_transaction_timeout`.
   * @default - none
   */
  readonly idleTransactionTimeout?: Duration;
  /**
   * `ignore_startup_parameters`: startup parameters clients may send that PgBouncer ignores.
   * @default ['extra_float_digits'] (JDBC and many drivers send it)
   */
  readonly ignoreStartupParameters?: string[];
  /**
   * `max_prepared_statements` (PgBouncer 1.21 or later): protocol-level prepared statements in transaction mode.
   * @default - not written, so PgBouncer's own: 200 from PgBouncer 1.24 on (the default image runs
   * 1.25.1), 0 (off) in 1.21 to 1.23
   */
  readonly maxPreparedStatements?: number;
  /**
   * Any other `[pgbouncer]` setting by its PgBouncer name; checked against the version's settings.
   * @default - none
   */
  readonly extraSettings?: { [name: string]: string };
  /**
   * `server_tls_sslmode` towards the backend.
   * @default - SslMode.VERIFY_FULL when the backend has a certificateAuthority (a tls Secret);
   * SslMode.REQUIRE when it takes TLS without one (a self-signed certificate); else SslMode.PREFER
   */
  readonly serverTlsMode?: SslMode;
  /**
   * CPU and memory of each PgBouncer container.
   * @default - 100m/1 CPU, 128Mi memory
   */
  readonly resources?: ContainerResources;
  /**
   * Spreading of the pods over nodes.
   * @default PodSpread.PREFERRED
   */
  readonly spread?: PodSpread;
  /**
   * How long a stopping pod stays up while Services forget it, before it stops taking new transactions.
   * @default Duration.seconds(5)
   */
  readonly drainDelay?: Duration;
  /**
   * Time a pod gets to stop: the drain delay, then open transactions finish.
   * @default Duration.seconds(60)
   */
  readonly terminationGracePeriod?: Duration;
}
