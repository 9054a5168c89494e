/**
 * Where files live inside a PostgreSQL pod. The rendered config and script refer to these
 * paths, and the end-to-end tests rewrite exactly these roots to run them on a workstation.
 */
export const CLUSTER_PATHS = {
  /** ConfigMap with postgresql.conf and pg_hba.conf, or in the HA mode patroni.yml. */
  configDir: '/etc/postgresql',
  /** ConfigMap with the bootstrap script. */
  scriptsDir: '/opt/cdk8s-postgres',
  /** The data volume; the cluster lives in a subdirectory so lost+found does not bother initdb. */
  dataVolume: '/var/lib/postgresql/data',
  pgdata: '/var/lib/postgresql/data/pgdata',
  /** The optional WAL volume. */
  walVolume: '/var/lib/postgresql/wal',
  walDir: '/var/lib/postgresql/wal/pg_wal',
  /** The tablespaces' volumes, one subdirectory each: `<tablespacesDir>/<name>`. */
  tablespacesDir: '/var/lib/postgresql/tablespaces',
  /** Unix socket directory (an emptyDir: the root filesystem is read-only). */
  socketDir: '/var/run/postgresql',
  /** In-memory emptyDir holding the replication passfile. */
  authDir: '/run/postgresql-auth',
  passfile: '/run/postgresql-auth/pgpass',
  /** The TLS Secret: tls.crt, tls.key and ca.crt, root-owned and group-readable as PostgreSQL requires. */
  tlsDir: '/etc/postgresql-tls',
  /** The superuser's name alone, which pg_hba.conf reads to reject the superuser over TCP. */
  superuserNameFile: '/etc/postgresql-superuser/username',
  /** Secrets, one subdirectory each, files `username` and `password`. */
  secretsDir: '/etc/postgresql-secrets',
  /** HA mode: in-memory emptyDir where patroni-start.sh puts Patroni's credentials beside patroni.yml. */
  patroniDir: '/run/patroni',
  /** While majorUpgrade is set: emptyDir with the old major's binaries, copied from its image for pg_upgrade. */
  oldBinariesDir: '/opt/postgresql-old',
} as const;

/** File names inside the ConfigMaps. */
export const CLUSTER_FILES = {
  postgresqlConf: 'postgresql.conf',
  pgHbaConf: 'pg_hba.conf',
  /** The pg_ident maps of hbaRules' identMap option. */
  pgIdentConf: 'pg_ident.conf',
  bootstrapScript: 'bootstrap.sh',
  patroniConfig: 'patroni.yml',
  /** HA mode: Patroni's dynamic configuration as the props want it, which the settings agent keeps the store at. */
  patroniDynamicConfig: 'patroni-dynamic.json',
  provisionScript: 'provision.sh',
  patroniStartScript: 'patroni-start.sh',
  patroniSettingsAgent: 'patroni-settings-agent.py',
  majorUpgradeScript: 'major-upgrade.sh',
  patroniUpgradeScript: 'patroni-upgrade.sh',
  patroniUpgradeCoordinator: 'patroni-upgrade.py',
  /** The plain mode's settings agent sidecar. */
  settingsAgentScript: 'settings-agent.sh',
  /** With logAnalysis: the pgBadger sidecar's loop. */
  pgBadgerReportScript: 'pgbadger-report.sh',
  /** The plain mode: the replicas' slot names for the current instances, which the primary's settings agent keeps. */
  replicaSlots: 'replica-slots',
} as const;

/** Patroni's label of a pod's scope: the cluster's pods carry it, and the ConfigMaps Patroni makes. */
export const PATRONI_SCOPE_LABEL = 'cluster-name';
/** Patroni's role label, which the read-write and read-only Services select on. */
export const PATRONI_ROLE_LABEL = 'role';

/**
 * The group role whose members may open replication connections over TCP. pg_hba.conf names
 * the group, not the user, because the replication user's name lives in a Secret; superusers
 * are not members, so they cannot replicate over the network.
 */
export const REPLICATION_GROUP = 'replication_clients';

/** The replication slot and application name of a replica pod: PostgreSQL names allow no `-`. */
export function replicaSlotName(podName: string): string {
  return podName.replace(/-/g, '_');
}
