import { Duration } from 'cdk8s';
import { PostgresExtension } from './extensions';
import { HbaRule, IdentMapping } from './hba-rules';
import { HighAvailability } from './high-availability';
import { LogAnalysis } from './log-analysis';
import { MajorUpgrade } from './major-upgrade';
import { PostgresNamedRole } from './named-roles';
import { PostgresqlSettings } from './postgresql-settings';
import { PrimaryRecovery } from './primary-recovery';
import { CloneOptions, StandbyOptions } from './source-cluster';
import { SynchronousReplication } from './synchronous-replication';
import { PostgresTablespace } from './tablespaces';
import { BackupOptions } from '../backup/backup-props';
import { PostgresCredentials } from '../core/credentials';
import { PostgresRole } from '../core/endpoint-binding';
import { Ensure } from '../core/ensure';
import { ContainerResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { WorkloadProps } from '../core/user-metadata';

/** What synthesis does when shared_buffers + max_connections x work_mem exceeds the memory limit. */
export enum MemoryCheck {
  /** Print a warning on stderr; the YAML is still written. */
  WARN = 'warn',
  /** Fail synthesis with the figures and the fix. */
  ERROR = 'error',
  /** Say nothing: you know your workload's sessions never all sort at once. */
  OFF = 'off',
}

/**
 * A database reconciled at every start of the primary: created if missing, its owner and
 * connection limit set to the declared state, its extensions created, updated or dropped.
 */
export interface PostgresDatabase {
  /**
   * Database name: lower-case letters, digits and `_`, starting with a letter or `_`. `postgres`
   * may be declared for its extensions only.
   */
  readonly name: string;
  /**
   * Whether the database should exist. ABSENT closes it to new connections and drops it unless
   * sessions are still connected, which is logged.
   * @default Ensure.PRESENT
   */
  readonly ensure?: Ensure;
  /**
   * Secret of the owning role, a login role kept in step with it like those of `roles`.
   * @default - the superuser
   */
  readonly owner?: PostgresCredentials;
  /**
   * Character set, at creation only (a database keeps its own; a different one is logged).
   * @default - template1's, UTF8 as initdb made it
   */
  readonly encoding?: string;
  /**
   * LC_COLLATE and LC_CTYPE, at creation only (a database keeps its own; a different one is logged).
   * @default - template1's, C.UTF-8 as initdb made it
   */
  readonly locale?: string;
  /**
   * Database copied at creation.
   * @default - template1, or template0 when `encoding` or `locale` is set
   */
  readonly template?: string;
  /**
   * Concurrent sessions in the database; -1 for no limit.
   * @default - no limit (-1)
   */
  readonly connectionLimit?: number;
  /**
   * Extensions of the database; those that must be preloaded (pg_stat_statements, pg_cron,
   * pgaudit, pg_wait_sampling, timescaledb) add their library to shared_preload_libraries.
   * @default - none
   */
  readonly extensions?: PostgresExtension[];
}

/** Persistent volumes of each instance. */
export interface PostgresStorage {
  /**
   * Size of the data volume.
   * @default '10Gi'
   */
  readonly size?: string;
  /**
   * StorageClass of the data volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * Size of a separate WAL volume; WAL stays on the data volume when unset.
   * @default - no separate WAL volume
   */
  readonly walSize?: string;
  /**
   * StorageClass of the WAL volume.
   * @default - the data volume's StorageClass
   */
  readonly walStorageClassName?: string;
}

/** What happens to the instances' PersistentVolumeClaims when the cluster is deleted or scaled down. */
export enum VolumeRetention {
  /** Keep them: data outlives a mistaken delete. */
  RETAIN = 'Retain',
  /** Delete them with the StatefulSet or the scaled-down pod. */
  DELETE = 'Delete',
}

/** Props of {@link PostgresStatefulCluster}. */
export interface PostgresStatefulClusterProps extends WorkloadProps {
  /**
   * Base name of every object; pods are `<name>-primary-0` and `<name>-replica-<n>` (`<name>-<n>` with highAvailability).
   * @default - the construct id in kebab-case
   */
  readonly name?: string;
  /**
   * Number of PostgreSQL instances: one primary and `instances - 1` streaming replicas.
   * @default 3
   */
  readonly instances?: number;
  /**
   * PostgreSQL major version the cluster runs, 14 to 18: it chooses the parameters `extraParameters`
   * may name, the settings rendered and the default images.
   * @default 17
   */
  readonly postgresVersion?: number;
  /**
   * Upgrades the data of an existing cluster from an older major to `postgresVersion`, in place
   * with pg_upgrade: set it together with the new `postgresVersion`, and remove it once every pod
   * runs the new major, which also deletes the old major's data kept until then (see the README's
   * "Major upgrades" for the rollback path).
   * @default - no upgrade: data of another major than `postgresVersion` is refused at start
   */
  readonly majorUpgrade?: MajorUpgrade;
  /**
   * The plain mode's way out when the primary's volume is lost while replicas hold the cluster:
   * by default the primary refuses to start on its empty volume (no initdb) and names the
   * replicas; FROM_MOST_ADVANCED_REPLICA rebuilds it from the replica with the most WAL, on a new
   * timeline. Remove it once the primary runs again (see the README's "Plain mode: when the
   * primary is lost").
   * @default PrimaryRecovery.REFUSE
   */
  readonly primaryRecovery?: PrimaryRecovery;
  /**
   * Container image holding PostgreSQL `postgresVersion` and bash (and Patroni 3.1+ in the HA mode), run as `runAsUser`.
   * @default - the official image of `postgresVersion`, such as 'postgres:17.10-bookworm'; in the HA mode Percona's of the same release
   */
  readonly image?: string;
  /**
   * UID and GID the image's PostgreSQL runs as (the default image's `postgres` user).
   * @default - 999; 26 with the HA mode's default image
   */
  readonly runAsUser?: number;
  /**
   * TCP port of PostgreSQL and of its Services.
   * @default 5432
   */
  readonly port?: number;
  /** Secret with the superuser's name and password; initdb creates that superuser. */
  readonly superuserSecret: PostgresCredentials;
  /** Secret with the replication role's name and password; replicas stream as that role. */
  readonly replicationSecret: PostgresCredentials;
  /**
   * Databases created, with their owners, when the primary is first initialized.
   * @default - only the `postgres` database
   */
  readonly databases?: PostgresDatabase[];
  /**
   * Login roles kept in step with their Secrets; `addRole` adds more.
   * @default - none besides the superuser, the replication role and the database owners
   */
  readonly roles?: PostgresRole[];
  /**
   * Roles declared by name, without a Secret: group roles, login roles that need no password,
   * and roles to drop (`ensure: Ensure.ABSENT`).
   * @default - none
   */
  readonly namedRoles?: PostgresNamedRole[];
  /**
   * Typed postgresql.conf parameters.
   * @default - defaults derived from the memory limit and the instance count
   */
  readonly settings?: PostgresqlSettings;
  /**
   * Any other postgresql.conf parameter, by its PostgreSQL name (`log_min_duration_statement`).
   * Names are checked against PostgreSQL 15's; a name with a dot is an extension's and passes.
   * @default - none
   */
  readonly extraParameters?: { [name: string]: string };
  /**
   * Synchronous replication: commits wait for `ANY n` or `FIRST n` replicas.
   * @default - asynchronous replication
   */
  readonly synchronousReplication?: SynchronousReplication;
  /**
   * Automatic failover: Patroni in every pod elects the primary through the Kubernetes API, in
   * one StatefulSet `<name>` whose pods are `<name>-0` to `<name>-<instances - 1>`.
   * @default - no automatic failover: a primary StatefulSet and a replica StatefulSet
   */
  readonly highAvailability?: HighAvailability;
  /**
   * pgBackRest backups: WAL archiving to every repository (a volume of a repository host, S3),
   * scheduled backups as CronJobs, and optionally creating the cluster from a backup. Needs `tls`:
   * pgBackRest's servers and clients authenticate each other with the cluster's certificate.
   * @default - no backups
   */
  readonly backup?: BackupOptions;
  /**
   * Create the cluster as a copy of another cluster, under its own name: from the source's
   * backup repository (latest or point in time) or from the running source with pg_basebackup.
   * The cluster's own roles, databases and backups follow as for a new cluster.
   * @default - a new cluster starts empty (initdb), or from its own backup with backup.restore
   */
  readonly clone?: CloneOptions;
  /**
   * Run as a standby cluster following another cluster, from its repository and/or by
   * streaming; remove it to promote the cluster.
   * @default - not a standby: the primary accepts writes
   */
  readonly standby?: StandbyOptions;
  /**
   * Client networks allowed to log in (scram-sha-256) and replicas allowed to stream.
   * @default ['0.0.0.0/0', '::/0']
   */
  readonly allowedCidrs?: string[];
  /**
   * Let the superuser log in over the network (from `allowedCidrs`, with TLS). Without it the
   * superuser logs in only through the pod's Unix socket (`kubectl exec`), and pg_hba rejects
   * the superuser's name on every TCP line, the pod's loopback included.
   * @default false
   */
  readonly superuserNetworkAccess?: boolean;
  /**
   * pg_hba.conf lines of your own, checked at synth: socket rules come before the library's
   * socket line, TCP rules after the superuser's rejection and the replicas' lines and before
   * the allowedCidrs lines (pg_hba takes the first line that matches). Plain TCP without TLS,
   * trust, password and md5 are refused.
   * @default - only the library's lines
   */
  readonly hbaRules?: HbaRule[];
  /**
   * pg_ident.conf lines: the maps hbaRules' `identMap` names, such as a client certificate's CN
   * logging in as a role. The first map rolls the pods once (ident_file is read at start);
   * later changes are reloaded.
   * @default - no maps
   */
  readonly identMaps?: IdentMapping[];
  /**
   * pgBadger reports: PostgreSQL logs to files on the data volume in a format pgBadger parses
   * (no longer to stderr: `kubectl logs` then shows only the server's first lines), and a sidecar
   * in every instance pod writes that instance's HTML report beside them, optionally served.
   * @default - logs go to stderr only, with no report
   */
  readonly logAnalysis?: LogAnalysis;
  /**
   * CPU and memory of each instance.
   * @default - 250m/1 CPU, 1Gi memory
   */
  readonly resources?: ContainerResources;
  /**
   * The memory estimate shared_buffers + max_connections x work_mem against the memory limit:
   * every session sorting or hashing at once would take the pod past it, and the kernel kills
   * PostgreSQL.
   * @default MemoryCheck.WARN
   */
  readonly memoryCheck?: MemoryCheck;
  /**
   * Persistent volumes of each instance.
   * @default - a 10Gi data volume of the default StorageClass
   */
  readonly storage?: PostgresStorage;
  /**
   * Tablespaces, each on a volume of its own in every instance, mounted at
   * `/var/lib/postgresql/tablespaces/<name>`; the primary creates them at start. A tablespace
   * added to a running cluster is a new volume claim template: recreate the StatefulSets with
   * `kubectl delete sts --cascade=orphan` (the change impact report says so).
   * @default - none: everything lives in the data volume
   */
  readonly tablespaces?: PostgresTablespace[];
  /**
   * PVC retention when the cluster is deleted or scaled down.
   * @default VolumeRetention.RETAIN
   */
  readonly volumeRetention?: VolumeRetention;
  /**
   * Spreading of instances over nodes.
   * @default PodSpread.PREFERRED
   */
  readonly spread?: PodSpread;
  /**
   * Time a pod gets to stop; PostgreSQL is shut down in fast mode within it.
   * @default Duration.seconds(60)
   */
  readonly terminationGracePeriod?: Duration;
  /**
   * Value of app.kubernetes.io/part-of.
   * @default - the name
   */
  readonly partOf?: string;
}
