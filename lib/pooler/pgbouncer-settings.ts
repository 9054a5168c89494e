/** When PgBouncer gives a server connection back to the pool. */
export enum PoolMode {
  /** When the client disconnects: every session feature works, the least sharing. */
  SESSION = 'session',
  /** After each transaction: the most sharing; session state (SET, advisory locks, LISTEN) must not outlive a transaction. */
  TRANSACTION = 'transaction',
  /** After each statement: multi-statement transactions are refused. */
  STATEMENT = 'statement',
}

/** How PgBouncer authenticates clients. */
export enum PgBouncerAuthType {
  /** SCRAM-SHA-256, the only method PostgreSQL 14+ defaults to. */
  SCRAM_SHA_256 = 'scram-sha-256',
  /** MD5; needs MD5 or plain-text passwords, so it does not work with auth_query against SCRAM-only roles. */
  MD5 = 'md5',
}
