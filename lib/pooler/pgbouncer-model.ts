import { Duration } from 'cdk8s';
import { IConstruct } from 'constructs';
import { poolerDemand, PoolerDemandLine } from './pgbouncer-demand';
import { PGBOUNCER_PARAMETERS, pgbouncerSettingType, pgbouncerSyntax } from './pgbouncer-parameters';
import { PgBouncerPoolerProps } from './pgbouncer-props';
import { PgBouncerAuthType, PoolMode } from './pgbouncer-settings';
import { ResolvedCredentials, resolveCredentials } from '../core/credentials';
import { compareVersions } from '../core/dotted-versions';
import { EndpointRole } from '../core/endpoint';
import { propError } from '../core/errors';
import { requireSingleLine, ReservedSettings, setByConstruct } from '../core/escape-hatch';
import { ComponentLabels } from '../core/labels';
import { defaultResourceName, validateServiceName } from '../core/names';
import { PASSWORD_LOOKUP_QUERY } from '../core/password-lookup';
import { ResolvedResources, resolveResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { checkSettingValue } from '../core/setting-values';
import { backendAuthority, CertificateAuthority, ResolvedTls, resolveTls, serviceDnsNames, SslMode } from '../core/tls';
import { resolveUserMetadata, UserMetadata } from '../core/user-metadata';
import { requireEnum, requireInteger, validateImage, validatePort, wholeSeconds } from '../core/validation';

/** PgBouncer's own port inside the pod. */
export const PGBOUNCER_LISTEN_PORT = 6432;

/** A `[databases]` line, with the backend resolved. */
export interface DatabaseEntryModel {
  /** `*` for the wildcard entry. */
  readonly name: string;
  readonly role: EndpointRole;
  readonly host: string;
  readonly port: number;
  readonly dbname?: string;
  readonly poolSize?: number;
  readonly poolMode?: PoolMode;
  readonly maxDbConnections?: number;
}

/** A `[pgbouncer]` setting. */
export interface SettingModel {
  readonly name: string;
  readonly value: string;
}

/** Everything the renderers and the construct need, resolved and validated once. */
export interface PoolerModel {
  readonly name: string;
  readonly replicas: number;
  readonly image: string;
  readonly uid: number;
  readonly servicePort: number;
  readonly databases: DatabaseEntryModel[];
  readonly settings: SettingModel[];
  readonly authUser?: ResolvedCredentials;
  readonly users: ResolvedCredentials[];
  /** stats_users named in the props; the ini renderer writes them, with those in Secrets. */
  readonly statsUsers: string[];
  /** ignore_startup_parameters. */
  readonly ignoreStartupParameters: string[];
  /** query_wait_timeout in seconds; 0 waits forever. */
  readonly queryWaitTimeoutSeconds: number;
  /** max_client_conn. */
  readonly maxClientConn: number;
  readonly tls?: ResolvedTls;
  /** The CA that signs the backend's certificate. */
  readonly serverAuthority?: Required<CertificateAuthority>;
  readonly certificateDnsNames: string[];
  readonly resources: ResolvedResources;
  readonly spread: PodSpread;
  readonly drainDelaySeconds: number;
  readonly terminationGracePeriodSeconds: number;
  readonly user: UserMetadata;
  readonly componentLabels: ComponentLabels;
  /** Server connections all pods may open to the backend, over all databases. */
  readonly serverConnectionDemand: number;
  /** The same, by purpose (pooled users, reserve pool, auth_query pool) and by the Service they go to. */
  readonly demandLines: PoolerDemandLine[];
}

const DEFAULT_IMAGE = 'edoburu/pgbouncer:v1.25.1-p0';
const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const C_INT_MAX = 2 ** 31 - 1;
const VERSION = /^[0-9]+\.[0-9]+(\.[0-9]+)?$/;

/** Settings extraSettings refuses: the construct's own, and what carries security. */
const RESERVED_SETTINGS = new ReservedSettings(new Map(Object.entries({
  listen_addr: setByConstruct('nothing: PgBouncer listens on every pod address'),
  listen_port: setByConstruct('port (the Service port)'),
  pidfile: setByConstruct('nothing: the drain script relies on it'),
  logfile: setByConstruct('nothing: logs go to stderr'),
  user: { problem: 'would have PgBouncer switch users, which the non-root pod cannot', use: 'runAsUser' },
  auth_file: setByConstruct('users'),
  auth_user: setByConstruct('authUser'),
  auth_hba_file: { problem: 'would decide who logs in, and how, past the construct\'s auth_type', use: 'authType and the NetworkPolicy (networkPolicy.clients)' },
  auth_ident_file: { problem: 'would map system users to roles past the construct\'s auth_type', use: 'authType' },
  client_tls_key_file: setByConstruct('tls'),
  client_tls_cert_file: setByConstruct('tls'),
  client_tls_protocols: setByConstruct('tls.minimumProtocolVersion'),
  server_tls_ca_file: setByConstruct('the backend\'s tls (or an ExternalPostgres\' certificateAuthority)'),
  // PgBouncer's default, "secure", is TLS 1.2 and 1.3.
  server_tls_protocols: { problem: 'would let PgBouncer speak an older TLS to the backend than its default, TLS 1.2', use: 'nothing: TLS 1.2 and 1.3 are used' },
})), [
  [/^unix_socket_/, setByConstruct('nothing: the probes and the drain script rely on the socket')],
  // Ciphers, curves, DH parameters: PgBouncer's defaults ("fast", "auto") admit only strong suites.
  [/^client_tls_/, { problem: 'carries the TLS the construct secures', use: 'tls (tls.minimumProtocolVersion TLS_1_3 leaves only TLS 1.3\'s AEAD ciphers)' }],
  [/^server_tls_/, { problem: 'carries the TLS the construct secures', use: 'serverTlsMode and the backend\'s tls' }],
]);

/** Typed props by the setting they render, so an extra setting can name its prop. */
const TYPED_SETTINGS = new Map(Object.entries({
  auth_type: 'authType', auth_query: 'authQuery', admin_users: 'adminUsers', stats_users: 'statsUsers',
  pool_mode: 'poolMode', max_client_conn: 'maxClientConn', default_pool_size: 'defaultPoolSize',
  min_pool_size: 'minPoolSize', reserve_pool_size: 'reservePoolSize', reserve_pool_timeout: 'reservePoolTimeout',
  max_db_connections: 'maxDbConnections', max_user_connections: 'maxUserConnections',
  server_idle_timeout: 'serverIdleTimeout', server_lifetime: 'serverLifetime', query_wait_timeout: 'queryWaitTimeout',
  idle_transaction_timeout: 'idleTransactionTimeout', ignore_startup_parameters: 'ignoreStartupParameters',
  max_prepared_statements: 'maxPreparedStatements', client_tls_sslmode: 'tls.required', server_tls_sslmode: 'serverTlsMode',
}));

/** Validates the props of a pooler and resolves every default, one step at a time. */
export function resolvePoolerModel(scope: IConstruct, id: string, props: PgBouncerPoolerProps): PoolerModel {
  const workload = resolveWorkload(scope, id, props);
  const name = workload.name;
  const logins = resolveLogins(scope, props);
  const pools = resolvePools(scope, props, workload.version);
  const tls = resolveTls(scope, props.tls, name);
  const serverAuthority = backendAuthority(scope, props.backend);
  const serverTlsMode = resolveServerTlsMode(scope, props, serverAuthority);
  const target = requireEnum(scope, 'target', props.target ?? EndpointRole.READ_WRITE, { EndpointRole });
  const roleOf = (databaseTarget: EndpointRole | undefined) => databaseTarget ?? target;
  const databases = resolveDatabases(scope, props, roleOf);
  const settings = resolveSettings(scope, props, { version: workload.version, logins, pools, tls, serverTlsMode });
  const drain = resolveDrain(scope, props);
  const user = resolveUserMetadata(scope, props);
  return {
    name,
    replicas: workload.replicas,
    image: workload.image,
    uid: workload.uid,
    servicePort: workload.servicePort,
    databases,
    settings: settings.settings,
    authUser: logins.authUser,
    users: logins.users,
    statsUsers: props.statsUsers ?? [],
    ignoreStartupParameters: settings.ignoreStartupParameters,
    queryWaitTimeoutSeconds: settings.queryWaitTimeoutSeconds,
    maxClientConn: settings.maxClientConn,
    ...(tls ? { tls } : {}),
    ...(serverAuthority ? { serverAuthority } : {}),
    certificateDnsNames: serviceDnsNames(scope, [name]),
    resources: resolveResources(scope, props.resources, { cpuRequest: '100m', cpuLimit: '1', memoryLimit: '128Mi' }),
    spread: requireEnum(scope, 'spread', props.spread ?? PodSpread.PREFERRED, { PodSpread }),
    drainDelaySeconds: drain.drainDelaySeconds,
    terminationGracePeriodSeconds: drain.terminationGracePeriodSeconds,
    user,
    componentLabels: { name: 'pgbouncer', instance: name, component: 'pooler', partOf: name },
    ...serverDemand(workload.replicas, databases, logins, pools),
  };
}

/** The Deployment's name, PgBouncer's version, replicas, uid, Service port and image. */
function resolveWorkload(scope: IConstruct, id: string, props: PgBouncerPoolerProps) {
  const name = props.name ?? defaultResourceName(id);
  validateServiceName(scope, 'name', name);
  const version = props.pgbouncerVersion ?? '1.25.1';
  if (!VERSION.test(version)) {
    throw propError(scope, 'pgbouncerVersion', version, 'is not a version number', 'write the image\'s PgBouncer version, such as "1.25.1"');
  }
  return {
    name,
    version,
    replicas: requireInteger(scope, 'replicas', props.replicas ?? 2, 1, 100),
    uid: requireInteger(scope, 'runAsUser', props.runAsUser ?? 70, 1, 2 ** 31 - 1),
    servicePort: validatePort(scope, 'port', props.port ?? 5432),
    image: validateImage(scope, props.image ?? DEFAULT_IMAGE, DEFAULT_IMAGE),
  };
}

/** Who logs in: the auth user and its query, the userlist's users, and the admin and stats users' names. */
function resolveLogins(scope: IConstruct, props: PgBouncerPoolerProps) {
  const authUser = props.authUser ? resolveCredentials(scope, 'authUser', props.authUser) : undefined;
  const users = (props.users ?? []).map((user, index) => resolveCredentials(scope, `users[${index}]`, user));
  if (!authUser && users.length === 0) {
    throw propError(scope, 'authUser', undefined, 'and users are both unset, so no client could log in',
      'set authUser to look passwords up in the backend, or list users');
  }
  const authQuery = props.authQuery ?? PASSWORD_LOOKUP_QUERY;
  if (/[\n\r\0]/.test(authQuery)) {
    throw propError(scope, 'authQuery', authQuery, 'spans lines, which pgbouncer.ini cannot hold', 'write the query on one line');
  }
  if (props.authQuery !== undefined && (!authUser || !authQuery.includes('$1'))) {
    throw propError(scope, 'authQuery', authQuery, authUser ? 'does not use $1, the user name' : 'needs authUser to run as',
      authUser ? 'write a query returning (usename, passwd) for $1' : 'set authUser');
  }
  for (const prop of ['adminUsers', 'statsUsers'] as const) {
    for (const user of props[prop] ?? []) {
      if (!PLAIN_NAME.test(user)) throw propError(scope, prop, user, 'is not a plain role name', 'use letters, digits and "_"');
    }
  }
  const authQueryRoles = props.authQueryRoles === undefined ? undefined : requireInteger(scope, 'authQueryRoles', props.authQueryRoles, 1, 10000);
  if (authQueryRoles !== undefined && !authUser) {
    throw propError(scope, 'authQueryRoles', authQueryRoles, 'counts roles looked up by auth_query, and authUser is unset', 'set authUser, or drop authQueryRoles');
  }
  return { authUser, users, authQuery, authQueryRoles: authUser ? authQueryRoles ?? 1 : 0 };
}

/** PgBouncer keeps these in a C int. */
function count(scope: IConstruct, prop: string, value: number | undefined, min = 0): number | undefined {
  return value === undefined ? undefined : requireInteger(scope, prop, value, min, C_INT_MAX);
}

/** Pool sizes and the caps on server connections. */
function resolvePools(scope: IConstruct, props: PgBouncerPoolerProps, version: string) {
  const defaultPoolSize = count(scope, 'defaultPoolSize', props.defaultPoolSize ?? 20, 1)!;
  const reservePoolSize = count(scope, 'reservePoolSize', props.reservePoolSize ?? 0)!;
  const maxDbConnections = count(scope, 'maxDbConnections', props.maxDbConnections, 1);
  const minPoolSize = count(scope, 'minPoolSize', props.minPoolSize ?? 0)!;
  if (minPoolSize > defaultPoolSize) {
    throw propError(scope, 'minPoolSize', minPoolSize, `is more than defaultPoolSize ${defaultPoolSize}`, 'lower minPoolSize or raise defaultPoolSize');
  }
  const maxUserConnections = count(scope, 'maxUserConnections', props.maxUserConnections, 1);
  const maxPreparedStatements = count(scope, 'maxPreparedStatements', props.maxPreparedStatements);
  if (maxPreparedStatements !== undefined) requireVersion(scope, 'maxPreparedStatements', maxPreparedStatements, version, '1.21.0');
  return { defaultPoolSize, reservePoolSize, maxDbConnections, maxUserConnections, minPoolSize, maxPreparedStatements };
}

/**
 * What bounds a wait on a dead, frozen or unreachable server; extraSettings may replace each.
 * Keepalives find a silent peer of an idle connection in about a minute, tcp_user_timeout one
 * that leaves sent data unacknowledged for 15 s (a partitioned node); a server that takes TCP
 * but never answers the login (a frozen postmaster) is given up after 5 s and retried 1 s later.
 */
const WAIT_BOUNDS: SettingModel[] = [
  { name: 'tcp_keepalive', value: '1' },
  { name: 'tcp_keepidle', value: '30' },
  { name: 'tcp_keepintvl', value: '10' },
  { name: 'tcp_keepcnt', value: '3' },
  { name: 'tcp_user_timeout', value: '15000' },
  { name: 'server_connect_timeout', value: '5' },
  { name: 'server_login_retry', value: '1' },
];

/** What the `[pgbouncer]` settings are made of besides the props. */
interface SettingInputs {
  readonly version: string;
  readonly logins: ReturnType<typeof resolveLogins>;
  readonly pools: ReturnType<typeof resolvePools>;
  readonly tls?: ResolvedTls;
  readonly serverTlsMode: SslMode;
}

/** The `[pgbouncer]` settings from props, in the order pgbouncer.ini lists them, then the extra ones. */
function resolveSettings(scope: IConstruct, props: PgBouncerPoolerProps, inputs: SettingInputs) {
  const { logins, pools, tls } = inputs;
  // Bounded as counts are: past C's INT_MAX seconds PgBouncer's microseconds overflow (1e15 s reads as 0).
  const seconds = (prop: string, duration: Duration | undefined, fallback?: number) =>
    count(scope, prop, wholeSeconds(scope, prop, duration) ?? fallback);
  const settings: SettingModel[] = [];
  const set = (setting: string, value: string | number | undefined) => {
    if (value !== undefined) settings.push({ name: setting, value: String(value) });
  };
  set('auth_type', requireEnum(scope, 'authType', props.authType ?? PgBouncerAuthType.SCRAM_SHA_256, { PgBouncerAuthType }));
  if (logins.authUser) set('auth_query', logins.authQuery);
  set('admin_users', props.adminUsers?.join(','));
  set('pool_mode', requireEnum(scope, 'poolMode', props.poolMode ?? PoolMode.TRANSACTION, { PoolMode }));
  const maxClientConn = count(scope, 'maxClientConn', props.maxClientConn ?? 2000, 1)!;
  set('max_client_conn', maxClientConn);
  set('default_pool_size', pools.defaultPoolSize);
  set('min_pool_size', pools.minPoolSize);
  set('reserve_pool_size', pools.reservePoolSize);
  set('reserve_pool_timeout', seconds('reservePoolTimeout', props.reservePoolTimeout, 5));
  set('max_db_connections', pools.maxDbConnections);
  set('max_user_connections', pools.maxUserConnections);
  set('server_idle_timeout', seconds('serverIdleTimeout', props.serverIdleTimeout, 600));
  // Bounds how long a server connection the read-write Service sent to a demoted primary stays (README).
  set('server_lifetime', seconds('serverLifetime', props.serverLifetime, 300));
  const queryWaitTimeoutSeconds = seconds('queryWaitTimeout', props.queryWaitTimeout, 20)!;
  set('query_wait_timeout', queryWaitTimeoutSeconds);
  set('idle_transaction_timeout', seconds('idleTransactionTimeout', props.idleTransactionTimeout));
  const ignored = props.ignoreStartupParameters ?? ['extra_float_digits'];
  for (const parameter of ignored) {
    if (!PLAIN_NAME.test(parameter)) throw propError(scope, 'ignoreStartupParameters', parameter, 'is not a parameter name', 'use letters, digits and "_"');
  }
  set('ignore_startup_parameters', ignored.length > 0 ? ignored.join(',') : undefined);
  set('max_prepared_statements', pools.maxPreparedStatements);
  set('client_tls_sslmode', tls ? (tls.required ? SslMode.REQUIRE : SslMode.PREFER) : SslMode.DISABLE);
  set('server_tls_sslmode', inputs.serverTlsMode);
  const extra = resolveExtraSettings(scope, props.extraSettings ?? {}, inputs.version);
  settings.push(...WAIT_BOUNDS.filter((bound) => !extra.some((setting) => setting.name === bound.name)), ...extra);
  return { settings, maxClientConn, queryWaitTimeoutSeconds, ignoreStartupParameters: ignored };
}

/** How long a stopping pod drains, within its termination grace period. */
function resolveDrain(scope: IConstruct, props: PgBouncerPoolerProps) {
  const seconds = (prop: string, duration: Duration | undefined, fallback: number) => wholeSeconds(scope, prop, duration) ?? fallback;
  const graceSeconds = requireInteger(scope, 'terminationGracePeriod', seconds('terminationGracePeriod', props.terminationGracePeriod, 60), 10, 3600);
  const drainDelaySeconds = seconds('drainDelay', props.drainDelay, 5);
  if (drainDelaySeconds < 0 || drainDelaySeconds > graceSeconds - 5) {
    throw propError(scope, 'drainDelay', `${drainDelaySeconds}s`, `leaves open transactions less than 5 s of the ${graceSeconds} s terminationGracePeriod`,
      `use at most ${graceSeconds - 5} s, or raise terminationGracePeriod`);
  }
  return { drainDelaySeconds, terminationGracePeriodSeconds: graceSeconds };
}

/** Server connections all pods may open, in total and by purpose and Service. */
function serverDemand(replicas: number, databases: DatabaseEntryModel[], logins: ReturnType<typeof resolveLogins>,
  pools: ReturnType<typeof resolvePools>) {
  const demandLines = poolerDemand(replicas, databases, {
    pooledRoles: logins.users.length + logins.authQueryRoles,
    authQuery: logins.authUser !== undefined,
    ...pools,
  });
  const serverConnectionDemand = demandLines.reduce((sum, { byRole }) => sum + byRole[EndpointRole.READ_WRITE] + byRole[EndpointRole.READ_ONLY], 0);
  return { serverConnectionDemand, demandLines };
}

function requireVersion(scope: IConstruct, prop: string, value: unknown, version: string, needed: string): void {
  if (compareVersions(version, needed) < 0) {
    throw propError(scope, prop, value, `needs PgBouncer ${needed} or later, and pgbouncerVersion is ${version}`,
      `use an image with PgBouncer ${needed}+ and set pgbouncerVersion to its version, or drop ${prop}`);
  }
}

/** Verified with the backend's CA; else encrypted, unverified, when the backend takes TLS. */
function resolveServerTlsMode(scope: IConstruct, props: PgBouncerPoolerProps, authority: CertificateAuthority | undefined): SslMode {
  const unverified = props.backend.encrypted ? SslMode.REQUIRE : SslMode.PREFER;
  const mode = requireEnum(scope, 'serverTlsMode', props.serverTlsMode ?? (authority ? SslMode.VERIFY_FULL : unverified), { SslMode });
  if ((mode === SslMode.VERIFY_CA || mode === SslMode.VERIFY_FULL) && !authority) {
    throw propError(scope, 'serverTlsMode', mode, 'needs the CA that signs the backend\'s certificate, and the backend has none',
      'set the backend\'s tls (an ExternalPostgres: its certificateAuthority), or use SslMode.REQUIRE');
  }
  return mode;
}

function resolveDatabases(scope: IConstruct, props: PgBouncerPoolerProps, roleOf: (target?: EndpointRole) => EndpointRole): DatabaseEntryModel[] {
  const port = props.backend.port;
  const hostOf = (role: EndpointRole) => (role === EndpointRole.READ_WRITE ? props.backend.readWriteHost : props.backend.readOnlyHost);
  if (props.databases === undefined) return [{ name: '*', role: roleOf(undefined), host: hostOf(roleOf(undefined)), port }];
  if (props.databases.length === 0) {
    throw propError(scope, 'databases', [], 'routes no database', 'list databases, or leave databases unset for a wildcard entry');
  }
  const seen = new Set<string>();
  return props.databases.map((database, index) => {
    const prop = `databases[${index}]`;
    for (const [field, value] of [['name', database.name], ['dbname', database.dbname]] as const) {
      if (value !== undefined && !PLAIN_NAME.test(value)) {
        throw propError(scope, `${prop}.${field}`, value, 'is not a plain database name', 'use letters, digits and "_", starting with a letter or "_"');
      }
    }
    if (database.name === 'pgbouncer' || seen.has(database.name)) {
      throw propError(scope, `${prop}.name`, database.name, database.name === 'pgbouncer' ? 'is PgBouncer\'s admin console' : 'is listed twice',
        'choose another name');
    }
    seen.add(database.name);
    return {
      name: database.name,
      role: roleOf(requireEnum(scope, `${prop}.target`, database.target, { EndpointRole })),
      host: hostOf(roleOf(database.target)),
      port,
      dbname: database.dbname,
      poolSize: database.poolSize === undefined ? undefined : requireInteger(scope, `${prop}.poolSize`, database.poolSize, 1, C_INT_MAX),
      poolMode: requireEnum(scope, `${prop}.poolMode`, database.poolMode, { PoolMode }),
      maxDbConnections: database.maxDbConnections === undefined ? undefined
        : requireInteger(scope, `${prop}.maxDbConnections`, database.maxDbConnections, 1, C_INT_MAX),
    };
  });
}

function resolveExtraSettings(scope: IConstruct, extra: { [name: string]: string }, version: string): SettingModel[] {
  return Object.keys(extra).sort().map((setting) => {
    const prop = `extraSettings.${setting}`;
    const typed = TYPED_SETTINGS.get(setting);
    if (typed) throw propError(scope, prop, extra[setting], 'has a typed prop', `use ${typed}`);
    RESERVED_SETTINGS.check(scope, prop, setting, extra[setting]);
    const since = PGBOUNCER_PARAMETERS.get(setting);
    if (!since) {
      throw propError(scope, 'extraSettings', setting, 'is not a PgBouncer setting',
        'check the spelling against https://www.pgbouncer.org/config.html');
    }
    requireVersion(scope, prop, extra[setting], version, since);
    requireSingleLine(scope, prop, extra[setting]);
    // PgBouncer reads the rest of the line, trimmed: `;` and `#` later in it are the value's own.
    if (extra[setting] !== extra[setting].trim()) {
      throw propError(scope, prop, extra[setting], 'starts or ends with white space, which PgBouncer trims away', 'remove it');
    }
    checkSettingValue(scope, prop, extra[setting], pgbouncerSettingType(setting), pgbouncerSyntax(version));
    return { name: setting, value: extra[setting] };
  });
}
