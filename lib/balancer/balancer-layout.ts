/** Where files live inside a Pgpool-II pod of the project's image. */
export const BALANCER_PATHS = {
  /** Where the image's entrypoint looks for pgpool.conf and pool_hba.conf. */
  configDir: '/config',
  /**
   * The balancer's certificate: tls.crt and tls.key. Not the entrypoint's /config/tls, which
   * makes it copy the files and append settings of its own.
   */
  certificateDir: '/etc/pgpool-tls',
  /** The CA of the backend's certificate: ca.crt. */
  backendAuthorityDir: '/etc/pgpool-backend-ca',
  /** The ConfigMap, which the init step completes into configDir. */
  templateDir: '/etc/pgpool-template',
  /** The image's own config directory, where its entrypoint writes pool_passwd and pcp.conf. */
  imageEtcDir: '/opt/pgpool-II/etc',
  /** pidfile and pgpool_status. */
  runDir: '/var/run/pgpool',
  /** The logins' Secrets, one directory per role (init steps only). */
  secretsDir: '/etc/pgpool-secrets',
  /** The init steps' scripts that every config mode runs. */
  scriptsDir: '/etc/pgpool-scripts',
} as const;

/** File names. */
export const BALANCER_FILES = {
  pgpoolConf: 'pgpool.conf',
  poolHbaConf: 'pool_hba.conf',
  configScript: 'config.sh',
  /** The init step that writes pool_passwd and pcp.conf from the mounted Secrets. */
  loginsScript: 'logins.sh',
} as const;

/** The directories of the logins' Secrets in secretsDir: each holds `username` and `password`. */
export const CREDENTIAL_DIRS = {
  srCheck: 'srcheck',
  pcp: 'pcp',
  /** A client's or an exporter's role, by its prefix. */
  login: (prefix: string) => `login-${prefix.toLowerCase()}`,
} as const;

/** The Service and container port of Pgpool-II, and of PCP. */
export const PGPOOL_PORT = 9999;
export const PCP_PORT = 9898;
