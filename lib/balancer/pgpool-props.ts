import { Duration } from 'cdk8s';
import { DisableLoadBalanceOnWrite, PgpoolConfigMode, PgpoolPasswordEncryption } from './pgpool-settings';
import { PostgresCredentials } from '../core/credentials';
import { IPostgresEndpoint } from '../core/endpoint';
import { ContainerResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { WorkloadProps } from '../core/user-metadata';

/** A role Pgpool-II authenticates clients as, from its Secret. */
export interface PgpoolUser {
  /** The role's Secret. */
  readonly credentials: PostgresCredentials;
  /**
   * Names the role in the pod: its Secret is mounted as `login-<prefix>` for the init step that
   * writes pool_passwd. Upper-case letters and digits (once the image's `<PREFIX>_USERNAME`
   * variables, which put passwords on command lines and are no longer used).
   * @default - USER0, USER1, ... by position
   */
  readonly envPrefix?: string;
}

/** Props of {@link PgpoolBalancer}. Settings are Pgpool-II's own names in camelCase. */
export interface PgpoolBalancerProps extends WorkloadProps {
  /** The cluster whose primary and replica Services Pgpool-II balances over. */
  readonly backend: IPostgresEndpoint;
  /** Roles clients log in as; pool_passwd is built from their Secrets at pod start. */
  readonly users: PgpoolUser[];
  /** Role of the streaming-replication check (`sr_check_user`), which also needs a pool_passwd entry. */
  readonly srCheckUser: PostgresCredentials;
  /**
   * Name of the Deployment, Service and the rest.
   * @default - the construct id in kebab-case
   */
  readonly name?: string;
  /**
   * Number of Pgpool-II pods; each opens up to numInitChildren x maxPool connections per backend.
   * @default 2
   */
  readonly replicas?: number;
  /**
   * The Pgpool-II project's image (its entrypoint assembles pgpool.conf), run as `runAsUser`.
   * @default 'pgpool/pgpool:4.4.3'
   */
  readonly image?: string;
  /**
   * Pgpool-II version of the image: extraParameters may set that release's parameters, with its
   * types (4.4 and 4.5 are checked against 4.3's parameters, 4.6 and later against 4.6's).
   * @default '4.4.3'
   */
  readonly pgpoolVersion?: string;
  /**
   * UID and GID of the image's `postgres` user.
   * @default 70
   */
  readonly runAsUser?: number;
  /**
   * ConfigMap files or environment variables.
   * @default PgpoolConfigMode.CONFIG_MAP
   */
  readonly configMode?: PgpoolConfigMode;
  /**
   * How clients prove their password to Pgpool-II (pool_hba.conf's method).
   * @default PgpoolPasswordEncryption.SCRAM_SHA_256
   */
  readonly passwordEncryption?: PgpoolPasswordEncryption;
  /**
   * Secret of the PCP administration user (pcp.conf).
   * @default - no PCP user: PCP commands are refused
   */
  readonly pcpUser?: PostgresCredentials;
  /**
   * Whether the Service also exposes the PCP port 9898.
   * @default false
   */
  readonly exposePcp?: boolean;
  /**
   * `load_balance_mode`: reads go to replicas too.
   * @default true
   */
  readonly loadBalanceMode?: boolean;
  /**
   * `connection_cache`: each child keeps its backend connections between client sessions.
   * @default true
   */
  readonly connectionCache?: boolean;
  /**
   * `statement_level_load_balance`: choose the read node per statement instead of per session.
   * @default false
   */
  readonly statementLevelLoadBalance?: boolean;
  /**
   * `disable_load_balance_on_write`.
   * @default DisableLoadBalanceOnWrite.TRANSACTION
   */
  readonly disableLoadBalanceOnWrite?: DisableLoadBalanceOnWrite;
  /**
   * `num_init_children`: concurrent client sessions per pod.
   * @default 32
   */
  readonly numInitChildren?: number;
  /**
   * `max_pool`: cached connections per child (one per user and database pair it serves).
   * @default 1
   */
  readonly maxPool?: number;
  /**
   * `child_life_time`: an idle child is recycled after it.
   * @default Duration.minutes(5)
   */
  readonly childLifeTime?: Duration;
  /**
   * `child_max_connections`: a child is recycled after this many sessions (0: never).
   * @default 0
   */
  readonly childMaxConnections?: number;
  /**
   * `connection_life_time`: cached backend connections are closed after it (0: never).
   * @default - never
   */
  readonly connectionLifeTime?: Duration;
  /**
   * `client_idle_limit`: idle clients are disconnected after it (0: never).
   * @default - never
   */
  readonly clientIdleLimit?: Duration;
  /**
   * `sr_check_period`.
   * @default Duration.seconds(10)
   */
  readonly srCheckPeriod?: Duration;
  /**
   * `health_check_period` (failover is Kubernetes' job; 0 turns health checks off).
   * @default - off
   */
  readonly healthCheckPeriod?: Duration;
  /**
   * Client networks allowed in pool_hba.conf.
   * @default ['0.0.0.0/0', '::/0']
   */
  readonly allowedCidrs?: string[];
  /**
   * Any other pgpool.conf parameter by its Pgpool-II name; checked against Pgpool-II 4.3's.
   * @default - none
   */
  readonly extraParameters?: { [name: string]: string };
  /**
   * CPU and memory of each Pgpool-II container.
   * @default - 100m/1 CPU, 256Mi memory
   */
  readonly resources?: ContainerResources;
  /**
   * Spreading of the pods over nodes.
   * @default PodSpread.PREFERRED
   */
  readonly spread?: PodSpread;
}
