import { NumericType, SettingSyntax, SettingType, strtod, strtol } from '../core/setting-values';

/**
 * pgbouncer.ini `[pgbouncer]` settings and the PgBouncer version that introduced each. The 1.18
 * names are SHOW CONFIG of Debian's PgBouncer 1.18.0, which the end-to-end tests run; later ones
 * are from PgBouncer's changelog, and a setting missing here is refused until it is added.
 */
export const PGBOUNCER_PARAMETERS: ReadonlyMap<string, string> = new Map([
  ...[
    'admin_users', 'application_name_add_host', 'auth_file', 'auth_hba_file', 'auth_query', 'auth_type', 'auth_user',
    'autodb_idle_timeout', 'client_idle_timeout', 'client_login_timeout', 'client_tls_ca_file', 'client_tls_cert_file',
    'client_tls_ciphers', 'client_tls_dheparams', 'client_tls_ecdhcurve', 'client_tls_key_file', 'client_tls_protocols',
    'client_tls_sslmode', 'default_pool_size', 'disable_pqexec', 'dns_max_ttl', 'dns_nxdomain_ttl',
    'dns_zone_check_period', 'idle_transaction_timeout', 'ignore_startup_parameters', 'job_name', 'listen_addr',
    'listen_backlog', 'listen_port', 'log_connections', 'log_disconnections', 'log_pooler_errors', 'log_stats', 'logfile',
    'max_client_conn', 'max_db_connections', 'max_packet_size', 'max_user_connections', 'min_pool_size', 'pidfile',
    'pkt_buf', 'pool_mode', 'query_timeout', 'query_wait_timeout', 'reserve_pool_size', 'reserve_pool_timeout',
    'resolv_conf', 'sbuf_loopcnt', 'server_check_delay', 'server_check_query', 'server_connect_timeout',
    'server_fast_close', 'server_idle_timeout', 'server_lifetime', 'server_login_retry', 'server_reset_query',
    'server_reset_query_always', 'server_round_robin', 'server_tls_ca_file', 'server_tls_cert_file',
    'server_tls_ciphers', 'server_tls_key_file', 'server_tls_protocols', 'server_tls_sslmode', 'so_reuseport',
    'stats_period', 'stats_users', 'suspend_timeout', 'syslog', 'syslog_facility', 'syslog_ident', 'tcp_defer_accept',
    'tcp_keepalive', 'tcp_keepcnt', 'tcp_keepidle', 'tcp_keepintvl', 'tcp_socket_buffer', 'tcp_user_timeout',
    'unix_socket_dir', 'unix_socket_group', 'unix_socket_mode', 'user', 'verbose',
  ].map((name): [string, string] => [name, '1.18.0']),
  ['peer_id', '1.19.0'],
  ['auth_dbname', '1.20.0'],
  ['track_extra_parameters', '1.20.0'],
  ['max_prepared_statements', '1.21.0'],
  ['auth_ident_file', '1.21.0'],
  ['max_db_client_connections', '1.24.0'],
  ['max_user_client_connections', '1.24.0'],
  ['transaction_timeout', '1.25.0'],
]);

const COUNT: NumericType = { kind: 'integer', min: 0, max: 2 ** 31 - 1 };
// Timeouts are seconds as a decimal fraction; PgBouncer counts them in microseconds.
const SECONDS: SettingType = { kind: 'real', min: 0, max: 2 ** 31 - 1, unit: 's' };
const FLAG: SettingType = { kind: 'bool' };
const each = (type: SettingType, ...names: string[]) => names.map((name): [string, SettingType] => [name, type]);
const SSL_MODES: SettingType = { kind: 'enum', values: ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] };

/**
 * What each `[pgbouncer]` setting takes: PgBouncer's CF_ table (src/main.c of 1.18.0 and the
 * changelog after it). Its flags are C ints read as 0 or 1, its counts C ints, its timeouts
 * seconds (CF_TIME_USEC) and its lookups case-insensitive names; the other settings are text.
 */
const PGBOUNCER_SETTING_TYPES: ReadonlyMap<string, SettingType> = new Map([
  ...each(FLAG, 'application_name_add_host', 'disable_pqexec', 'log_connections', 'log_disconnections', 'log_pooler_errors', 'log_stats',
    'server_fast_close', 'server_reset_query_always', 'server_round_robin', 'so_reuseport', 'syslog', 'tcp_keepalive'),
  ...each(COUNT, 'default_pool_size', 'listen_backlog', 'listen_port', 'max_client_conn', 'max_db_connections', 'max_user_connections',
    'min_pool_size', 'pkt_buf', 'reserve_pool_size', 'sbuf_loopcnt', 'stats_period', 'tcp_defer_accept', 'tcp_keepcnt', 'tcp_keepidle',
    'tcp_keepintvl', 'tcp_socket_buffer', 'tcp_user_timeout', 'unix_socket_mode', 'verbose', 'peer_id', 'max_prepared_statements',
    'max_db_client_connections', 'max_user_client_connections'),
  ...each({ kind: 'integer', min: 0, max: 2 ** 32 - 1 }, 'max_packet_size'),
  ...each(SECONDS, 'autodb_idle_timeout', 'client_idle_timeout', 'client_login_timeout', 'dns_max_ttl', 'dns_nxdomain_ttl',
    'dns_zone_check_period', 'idle_transaction_timeout', 'query_timeout', 'query_wait_timeout', 'reserve_pool_timeout', 'server_check_delay',
    'server_connect_timeout', 'server_idle_timeout', 'server_lifetime', 'server_login_retry', 'suspend_timeout', 'transaction_timeout'),
  ...each({ kind: 'enum', values: ['any', 'trust', 'plain', 'md5', 'cert', 'hba', 'pam', 'scram-sha-256'] }, 'auth_type'),
  ...each({ kind: 'enum', values: ['session', 'transaction', 'statement'] }, 'pool_mode'),
  ...each(SSL_MODES, 'client_tls_sslmode', 'server_tls_sslmode'),
]);

/** What a setting of PGBOUNCER_PARAMETERS takes. */
export function pgbouncerSettingType(setting: string): SettingType {
  return PGBOUNCER_SETTING_TYPES.get(setting) ?? { kind: 'string' };
}

/** libusual's cf_set_int, cf_set_uint and parse_time: the whole value one C number, a timeout not negative. */
function pgbouncerNumber(text: string, type: NumericType): number | undefined {
  if (type.kind === 'integer') {
    const { value, end } = strtol(text);
    return end > 0 && end === text.length ? value : undefined;
  }
  const { value, end, range } = strtod(text);
  return end > 0 && end === text.length && !range && !(value < 0) ? value : undefined;
}

/** How PgBouncer reads a setting's value. */
export function pgbouncerSyntax(version: string): SettingSyntax {
  return {
    daemon: `PgBouncer ${version}`,
    bool: (text) => {
      const flag = pgbouncerNumber(text, COUNT);
      return flag === 0 || flag === 1 ? flag === 1 : undefined;
    },
    boolWords: '0 or 1',
    number: pgbouncerNumber,
    numberSyntax: (type) => (type.kind === 'integer' ? 'a whole number' : 'a number of seconds, such as 15 or 0.5'),
  };
}
