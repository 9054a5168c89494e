/**
 * Where pgBackRest's files live in the pods of the backup module. The rendered configs and
 * scripts refer to these paths, and the end-to-end tests rewrite exactly these roots.
 */
export const BACKUP_PATHS = {
  /** The ConfigMap `<name>-pgbackrest`: one config file per role, and the scripts. */
  configDir: '/etc/pgbackrest',
  /** pgBackRest's lock-path: an emptyDir, as the root filesystem is read-only. */
  lockDir: '/run/pgbackrest',
  /** Volume repositories, one subdirectory per repository: `/var/lib/pgbackrest/repo1` (volume-repository.ts). */
  repositoryRoot: '/var/lib/pgbackrest',
  /** The cluster's TLS Secret in the repository host and backup job pods (the instances use the cluster's own mount). */
  tlsDir: '/etc/pgbackrest-tls',
  /** The superuser's Secret in the server sidecar: `superuser/username` and `superuser/password`. */
  secretsDir: '/etc/pgbackrest-secrets',
  /** The server sidecar's passfile, in an in-memory emptyDir. */
  passfile: '/run/pgbackrest-auth/pgpass',
  /** CAs of object-store endpoints, one subdirectory per repository: `/etc/pgbackrest-ca/repo2/ca.crt` (object-store.ts). */
  storageCaRoot: '/etc/pgbackrest-ca',
  /** Key files of object stores, one subdirectory per repository: `/etc/pgbackrest-keys/repo2/key.json` (gcs-repository.ts). */
  storageKeyRoot: '/etc/pgbackrest-keys',
} as const;

/** File names in the ConfigMap `<name>-pgbackrest`. */
export const BACKUP_FILES = {
  /** The instances' config: archive-push, restore, archive-get and the server sidecar. */
  instanceConf: 'instance.conf',
  /** The repository host's config: its server and the volume repositories. */
  repoHostConf: 'repo-host.conf',
  /** The backup job's config of repository N: the repository local, the instances remote. */
  backupConf: (repository: number) => `backup-repo${repository}.conf`,
  /** The backup job's script: stanza-create, then the backup. */
  backupScript: 'backup.sh',
  /** The server sidecar's command: the superuser's passfile, then pgBackRest's server. */
  serverScript: 'server.sh',
  /** The restore script, run instead of initdb by a cluster created from a backup. */
  restoreScript: 'restore.sh',
  /** The stanza-upgrade Jobs' script, while a major upgrade is under way: stanza-upgrade, check, a full backup. */
  stanzaUpgradeScript: 'stanza-upgrade.sh',
} as const;

/**
 * The environment restore.sh reads. The cluster sets it on the container that bootstraps the
 * primary (with the S3 secrets of `instancePodAdditions(model).postgresEnv`); the end-to-end
 * tests set it to paths on a workstation.
 *  - PGDATA: the data directory to create (Patroni's `--datadir=` argument overrides it);
 *  - PG_WALDIR: optional; a separate WAL directory, which pg_wal then links to;
 *  - CONFIG_FILE: the cluster's postgresql.conf, for the recovery run;
 *  - PGBACKREST_CONFIG: the instances' pgbackrest.conf (pgBackRest reads this variable too).
 */
export const RESTORE_ENVIRONMENT = ['PGDATA', 'PG_WALDIR', 'CONFIG_FILE', 'PGBACKREST_CONFIG'] as const;
