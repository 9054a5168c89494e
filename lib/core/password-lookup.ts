/**
 * Who installs the function through which a pooler's `authUser` looks client passwords up
 * (`pgbouncer.get_auth(text)` in every database, which PgBouncer's default `auth_query` calls):
 * what a backend answers when a client binds to it.
 */
export enum PasswordLookup {
  /** The backend installs the function for the auth user it is given (a PostgresStatefulCluster). */
  INSTALLED_BY_BACKEND = 'installed-by-backend',
  /**
   * Whoever runs the backend installs the function, outside this app: an operator-managed
   * cluster's administrator (an ExternalPostgres). Clients use the default `auth_query`.
   */
  INSTALLED_BY_OPERATOR = 'installed-by-operator',
  /**
   * Nobody can: the backend forwards logins to servers of its own (a PgpoolBalancer), so a client
   * needs an `auth_query` of its own or a list of users.
   */
  UNAVAILABLE = 'unavailable',
}

/**
 * Schema and function through which a pooler looks up passwords (PgBouncer's auth_query): the
 * contract between a backend that installs the lookup and the poolers that call it.
 */
export const PASSWORD_LOOKUP_FUNCTION = 'pgbouncer.get_auth';

/** The auth_query that calls the lookup function. */
export const PASSWORD_LOOKUP_QUERY = `SELECT usename, passwd FROM ${PASSWORD_LOOKUP_FUNCTION}($1)`;
