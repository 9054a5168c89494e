import { POSTGRES_15_PARAMETERS } from './postgres-parameters';

/** An image a cluster runs when its props name none, and the uid its postgres user has. */
export interface DefaultPostgresImage {
  readonly image: string;
  readonly uid: number;
}

/**
 * The lower limits Patroni puts on the settings all members share, for this server version
 * (Patroni's ConfigHandler.CMDLINE_OPTIONS, each gated by a server version range): below them
 * Patroni silently runs its own default, which the library's checks would not see.
 */
export interface PatroniLimits {
  /** Whole-number parameters and their minimums. */
  readonly minimums: { readonly [parameter: string]: number };
  /** Memory parameters and their minimums in MB. */
  readonly memoryMinimumsMB: { readonly [parameter: string]: number };
  /** Parameters Patroni always sets itself. */
  readonly forced: ReadonlySet<string>;
  /** Patroni's own wal_keep_size, which the HA mode keeps as its default. */
  readonly walKeepSize: string;
}

/** What the library knows of one PostgreSQL major version. */
export interface PostgresVersion {
  readonly major: number;
  /** Every parameter postgresql.conf accepts, lower-cased (`postgres --describe-config`). */
  readonly parameters: ReadonlySet<string>;
  /** The plain mode's default image: the Docker official image, with PostgreSQL and bash. */
  readonly image: DefaultPostgresImage;
  /** The HA mode's default image, with Patroni and pgBackRest too. */
  readonly highAvailabilityImage: DefaultPostgresImage;
  readonly patroni: PatroniLimits;
  /** The server configuration chapter of this version's manual. */
  readonly configurationDocs: string;
}

/**
 * What varies by PostgreSQL major version, one entry per major, in the manner of CloudNativePG's
 * pkg/postgres/configuration.go: code reads the entry of the major in use and never tests the
 * version itself.
 */
const POSTGRES_VERSIONS: { readonly [major: number]: PostgresVersion } = {
  15: {
    major: 15,
    parameters: POSTGRES_15_PARAMETERS,
    image: { image: 'postgres:15.14-bookworm', uid: 999 },
    // PostgreSQL 15 with Patroni 4.1 and pgBackRest 2.57, maintained by Percona.
    highAvailabilityImage: { image: 'percona/percona-distribution-postgresql:15.15-1', uid: 26 },
    patroni: {
      minimums: { max_connections: 25, max_wal_senders: 3, max_replication_slots: 4, max_locks_per_transaction: 32, max_worker_processes: 2 },
      memoryMinimumsMB: { wal_keep_size: 16 },
      forced: new Set(['cluster_name', 'wal_log_hints']),
      walKeepSize: '128MB',
    },
    configurationDocs: 'https://www.postgresql.org/docs/15/runtime-config.html',
  },
};

/** The major a cluster runs when nothing asks for another. */
export const DEFAULT_POSTGRES_MAJOR = 15;

/** The majors the library knows, oldest first. */
export function postgresMajors(): number[] {
  return Object.keys(POSTGRES_VERSIONS).map(Number).sort((a, b) => a - b);
}

/**
 * The table's entry for a major. A prop that names a major is checked against postgresMajors()
 * first, so an unknown one here is the library's own error.
 */
export function postgresVersion(major: number = DEFAULT_POSTGRES_MAJOR): PostgresVersion {
  if (!Object.prototype.hasOwnProperty.call(POSTGRES_VERSIONS, major)) {
    throw new Error(`internal error: PostgreSQL ${major} is not in the version table (${postgresMajors().join(', ')})`);
  }
  return POSTGRES_VERSIONS[major];
}
