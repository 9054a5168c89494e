import { PGBOUNCER_LISTEN_PORT, PoolerModel } from './pgbouncer-model';
import { AUTH_USER_INCLUDE, POOLER_PATHS, STATS_USERS_INCLUDE } from './pooler-layout';
import { ResolvedCredentials } from '../core/credentials';
import { TLS_FILES, TlsProtocolVersion } from '../core/tls';

/**
 * pgbouncer.ini: the backend routes, then the paths the pod gives it, then the settings from props.
 * @param statsUserSecrets stats users whose names live in Secrets, granted after the props (exporters')
 */
export function renderPgBouncerIni(model: PoolerModel, statsUserSecrets: readonly ResolvedCredentials[] = []): string {
  const databases = model.databases.map((database) => {
    const options = [
      `host=${database.host}`,
      `port=${database.port}`,
      database.dbname !== undefined ? `dbname=${database.dbname}` : undefined,
      database.poolSize !== undefined ? `pool_size=${database.poolSize}` : undefined,
      database.poolMode !== undefined ? `pool_mode=${database.poolMode}` : undefined,
      database.maxDbConnections !== undefined ? `max_db_connections=${database.maxDbConnections}` : undefined,
    ].filter((option) => option !== undefined);
    return `${database.name} = ${options.join(' ')}`;
  });
  const tls = [
    ...(model.tls ? [
      `client_tls_cert_file = ${POOLER_PATHS.clientTlsDir}/${TLS_FILES.certificate}`,
      `client_tls_key_file = ${POOLER_PATHS.clientTlsDir}/${TLS_FILES.key}`,
      `client_tls_protocols = ${model.tls.minimumProtocolVersion === TlsProtocolVersion.TLS_1_3 ? 'tlsv1.3' : 'tlsv1.2,tlsv1.3'}`,
    ] : []),
    ...(model.serverAuthority ? [`server_tls_ca_file = ${POOLER_PATHS.serverTlsDir}/${TLS_FILES.authority}`] : []),
  ];
  return [
    `; pgbouncer.ini of pooler "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.`,
    '[databases]',
    ...databases,
    '',
    '[pgbouncer]',
    '; Set by the construct: where the pod gives PgBouncer its sockets and files. Logs go to stderr.',
    'listen_addr = *',
    `listen_port = ${PGBOUNCER_LISTEN_PORT}`,
    `unix_socket_dir = ${POOLER_PATHS.runDir}`,
    `pidfile = ${POOLER_PATHS.pidfile}`,
    `auth_file = ${POOLER_PATHS.userlist}`,
    // The auth user's name lives in its Secret: the init container writes it to an included file.
    ...(model.authUser ? [`%include ${POOLER_PATHS.authDir}/${AUTH_USER_INCLUDE}`] : []),
    // So are the stats users' when one of them is in a Secret: that file lists the props' ones too.
    ...(statsUserSecrets.length > 0 ? [`%include ${POOLER_PATHS.authDir}/${STATS_USERS_INCLUDE}`] : []),
    ...tls,
    '',
    '; From props',
    ...(statsUserSecrets.length === 0 && model.statsUsers.length > 0 ? [`stats_users = ${model.statsUsers.join(',')}`] : []),
    ...model.settings.map((setting) => `${setting.name} = ${setting.value}`),
    '',
  ].join('\n');
}
