/** libpq's sslmode, which PgBouncer and Pgpool-II use for their own TLS too. */
export enum SslMode {
  /** No TLS. */
  DISABLE = 'disable',
  /** TLS only if the other side insists. */
  ALLOW = 'allow',
  /** TLS when the other side offers it. */
  PREFER = 'prefer',
  /** TLS always, without checking the certificate. */
  REQUIRE = 'require',
  /** TLS always, with a certificate signed by the given CA. */
  VERIFY_CA = 'verify-ca',
  /** TLS always, with a certificate signed by the given CA for the host name connected to. */
  VERIFY_FULL = 'verify-full',
}
