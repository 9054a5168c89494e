/**
 * Where files live inside a PgBouncer pod. The rendered config and scripts refer to these
 * paths, and the end-to-end tests rewrite exactly these roots.
 */
export const POOLER_PATHS = {
  /** ConfigMap with pgbouncer.ini and the scripts. */
  configDir: '/etc/pgbouncer',
  /** In-memory emptyDir with userlist.txt, written by the init container. */
  authDir: '/var/run/pgbouncer-auth',
  userlist: '/var/run/pgbouncer-auth/userlist.txt',
  /** emptyDir for the pidfile, the Unix socket and the drain marker. */
  runDir: '/var/run/pgbouncer',
  pidfile: '/var/run/pgbouncer/pgbouncer.pid',
  drainMarker: '/var/run/pgbouncer/draining',
  /** Secrets of the userlist's roles, one subdirectory each with `username` and `password` (init container only). */
  secretsDir: '/etc/pgbouncer-secrets',
  /** The certificate PgBouncer shows its clients: tls.crt and tls.key. */
  clientTlsDir: '/etc/pgbouncer-tls/client',
  /** The CA of the backend's certificate: ca.crt. */
  serverTlsDir: '/etc/pgbouncer-tls/server',
} as const;

/** File names inside the ConfigMap. */
export const POOLER_FILES = {
  pgbouncerIni: 'pgbouncer.ini',
  userlistScript: 'userlist.sh',
  drainScript: 'drain.sh',
  startScript: 'start.sh',
} as const;

/** File in the auth directory with the `auth_user = <name>` line, included by pgbouncer.ini. */
export const AUTH_USER_INCLUDE = 'auth_user.ini';

/** File in the auth directory with the `stats_users = ...` line, when a stats user's name lives in a Secret. */
export const STATS_USERS_INCLUDE = 'stats_users.ini';

/** Secret subdirectories: the auth user's, the userlist roles' (`user-0`, ...), the stats users' (`stats-0`, ...). */
export const AUTH_USER_SECRET_DIR = 'auth-user';
export function userSecretDir(index: number): string {
  return `user-${index}`;
}
export function statsUserSecretDir(index: number): string {
  return `stats-${index}`;
}
