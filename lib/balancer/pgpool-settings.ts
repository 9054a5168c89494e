/** `disable_load_balance_on_write`: where reads stop going to replicas after a write. */
export enum DisableLoadBalanceOnWrite {
  /** For the rest of the transaction. */
  TRANSACTION = 'transaction',
  /** For the rest of the transaction and of later transactions in an explicit transaction block. */
  TRANS_TRANSACTION = 'trans_transaction',
  /** For the rest of the session. */
  ALWAYS = 'always',
  /** Only for the objects written, tracked across the session. */
  DML_ADAPTIVE = 'dml_adaptive',
}

/** How the Pgpool-II image is configured. */
export enum PgpoolConfigMode {
  /** pgpool.conf and pool_hba.conf from a ConfigMap mounted at /config. */
  CONFIG_MAP = 'config-map',
  /** PGPOOL_PARAMS_<NAME> environment variables, which the image's entrypoint writes into pgpool.conf. */
  ENVIRONMENT = 'environment',
}

/**
 * How clients log in to Pgpool-II. pool_passwd holds the passwords (TEXT entries, in an
 * in-memory volume) either way, so Pgpool-II logs in to SCRAM backends with both.
 */
export enum PgpoolPasswordEncryption {
  /** Clients log in with SCRAM-SHA-256. */
  SCRAM_SHA_256 = 'scram-sha-256',
  /** Clients log in with MD5, weaker than SCRAM: only for clients that lack SCRAM. */
  MD5 = 'md5',
}
