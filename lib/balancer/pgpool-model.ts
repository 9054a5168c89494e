import { Duration } from 'cdk8s';
import { IConstruct } from 'constructs';
import { BALANCER_PATHS, PCP_PORT, PGPOOL_PORT } from './balancer-layout';
import { PgpoolBalancerProps } from './pgpool-props';
import { DisableLoadBalanceOnWrite, PgpoolConfigMode, PgpoolPasswordEncryption } from './pgpool-settings';
import { NEWEST_PGPOOL_RELEASE, pgpoolRelease, PgpoolRelease } from './pgpool-versions';
import { ResolvedCredentials, resolveCredentials } from '../core/credentials';
import { propError } from '../core/errors';
import { requireSingleLine, ReservedSettings, setByConstruct } from '../core/escape-hatch';
import { ComponentLabels } from '../core/labels';
import { defaultResourceName, validateCidr, validateServiceName } from '../core/names';
import { ResolvedResources, resolveResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { checkSettingValue } from '../core/setting-values';
import { backendAuthority, CertificateAuthority, ResolvedTls, resolveTls, serviceDnsNames, TLS_FILES, TlsProtocolVersion } from '../core/tls';
import { resolveUserMetadata, UserMetadata } from '../core/user-metadata';
import { requireEnum, requireInteger, validateImage, wholeSeconds } from '../core/validation';

/** A pgpool.conf parameter, and the prop it comes from (for error messages). */
export interface PgpoolParameter {
  readonly name: string;
  readonly value: string | number | boolean;
  readonly prop?: string;
}

/**
 * A user with a pool_passwd entry: its Secret is mounted as `login-<prefix>` (lower case) for the
 * logins init step, which writes the entry; the image's `<PREFIX>_USERNAME` variables are not used.
 */
export interface PgpoolUserModel {
  readonly envPrefix: string;
  readonly credentials: ResolvedCredentials;
}

/** Everything the renderers and the construct need, resolved and validated once. */
export interface BalancerModel {
  readonly name: string;
  readonly replicas: number;
  readonly image: string;
  readonly uid: number;
  readonly configMode: PgpoolConfigMode;
  readonly passwordEncryption: PgpoolPasswordEncryption;
  /** pgpool.conf parameters, without sr_check_user/health_check_user (they come from the Secret). */
  readonly parameters: PgpoolParameter[];
  readonly users: PgpoolUserModel[];
  readonly srCheckUser: PgpoolUserModel;
  /** num_init_children: how many clients each pod serves at once. */
  readonly numInitChildren: number;
  readonly healthChecks: boolean;
  readonly pcpUser?: ResolvedCredentials;
  readonly exposePcp: boolean;
  readonly tls?: ResolvedTls;
  /** The CA that signs the backend's certificate, which the image's entrypoint makes ssl_ca_cert. */
  readonly serverAuthority?: Required<CertificateAuthority>;
  readonly certificateDnsNames: string[];
  readonly allowedCidrs: string[];
  readonly resources: ResolvedResources;
  readonly spread: PodSpread;
  readonly user: UserMetadata;
  readonly componentLabels: ComponentLabels;
  /** Connections all pods may open to each backend Service. */
  readonly connectionsPerBackend: number;
}

const DEFAULT_IMAGE = 'pgpool/pgpool:4.4.3';
const DEFAULT_VERSION = '4.4.3';
const VERSION = /^[0-9]+\.[0-9]+(\.[0-9]+)?$/;
const ENV_PREFIX = /^[A-Z][A-Z0-9]*$/;
/** Prefixes the image or the construct use for their own variables. */
const RESERVED_PREFIXES = new Set(['PGPOOL', 'SRCHECK', 'POSTGRES']);
/** The prefix of exporters' users, reserved with any digits after it. */
export const EXPORTER_PREFIX = 'EXPORTER';

const STDERR_LOGS = { problem: 'would move logs away from stderr, where the construct sends them', use: 'nothing: kubectl logs reads stderr' };

/** Parameters extraParameters refuses: the construct's own, and what carries security. */
const RESERVED_PARAMETERS = new ReservedSettings(new Map(Object.entries({
  backend_clustering_mode: setByConstruct('nothing: Pgpool-II fronts a streaming-replication cluster'),
  listen_addresses: setByConstruct('nothing: Pgpool-II listens on every pod address'),
  port: setByConstruct('nothing: the Service port is 9999'),
  socket_dir: setByConstruct('nothing: Pgpool-II keeps its sockets in the pod'),
  pid_file_name: setByConstruct('nothing'), logdir: setByConstruct('nothing'),
  log_destination: STDERR_LOGS, logging_collector: STDERR_LOGS, log_directory: STDERR_LOGS, log_filename: STDERR_LOGS, log_file_mode: STDERR_LOGS,
  enable_pool_hba: setByConstruct('allowedCidrs'), pool_passwd: setByConstruct('users'),
  failover_on_backend_error: setByConstruct('nothing: failover is left to Kubernetes'),
  sr_check_user: setByConstruct('srCheckUser'), sr_check_password: setByConstruct('srCheckUser'), health_check_user: setByConstruct('srCheckUser'),
  health_check_password: setByConstruct('srCheckUser'), ssl_key: setByConstruct('tls'), ssl_cert: setByConstruct('tls'),
  ssl_ca_cert: setByConstruct('the backend\'s tls (or an ExternalPostgres\' certificateAuthority)'),
  allow_clear_text_frontend_auth: setByConstruct('nothing: passwords never cross the wire in clear text'),
})), [
  [/^backend_|^health_check_.*[0-9]$/, setByConstruct('backend')],
  [/^pcp_/, setByConstruct('exposePcp')],
  // Ciphers, curves, passphrase commands: Pgpool-II's defaults admit only strong suites.
  [/^ssl_/, { problem: 'carries the TLS the construct secures', use: 'tls' }],
]);

/** health_check_period unless healthCheckPeriod says otherwise, in seconds. */
const HEALTH_CHECK_PERIOD = 5;

/**
 * What bounds a wait on a dead or frozen backend. A frozen backend fails its health check at
 * the timeout, not at a TCP timeout hours later; connect_timeout (ms) bounds each connect().
 */
const WAIT_BOUNDS: PgpoolParameter[] = [
  { name: 'health_check_timeout', value: 5 },
  { name: 'health_check_max_retries', value: 0 },
  { name: 'health_check_retry_delay', value: 1 },
  { name: 'connect_timeout', value: 5000 },
];

/**
 * The replica Service's flag. With health checks and a replica whose streaming Pgpool-II can
 * watch, a failed health check detaches the Service (no failover_command: nothing is promoted),
 * which ends the sessions waiting on it; new sessions read from the primary, and auto_failback
 * takes the Service back once that replica streams. Otherwise it is never detached, and a
 * frozen replica holds its sessions until it thaws.
 */
function replicaFailback(applicationName: string | undefined, healthChecks: boolean): PgpoolParameter[] {
  if (!applicationName || !healthChecks) return [{ name: 'backend_flag1', value: 'DISALLOW_TO_FAILOVER' }];
  return [
    { name: 'backend_flag1', value: 'ALLOW_TO_FAILOVER' },
    { name: 'backend_application_name1', value: applicationName },
    { name: 'auto_failback', value: true },
    { name: 'auto_failback_interval', value: 10 },
  ];
}

const TYPED_PARAMETERS = new Map(Object.entries({
  load_balance_mode: 'loadBalanceMode', connection_cache: 'connectionCache', statement_level_load_balance: 'statementLevelLoadBalance',
  disable_load_balance_on_write: 'disableLoadBalanceOnWrite', num_init_children: 'numInitChildren', max_pool: 'maxPool',
  child_life_time: 'childLifeTime', child_max_connections: 'childMaxConnections', connection_life_time: 'connectionLifeTime',
  client_idle_limit: 'clientIdleLimit', sr_check_period: 'srCheckPeriod', health_check_period: 'healthCheckPeriod', ssl: 'tls',
}));

/** Validates the props of a balancer and resolves every default, one step at a time. */
export function resolveBalancerModel(scope: IConstruct, id: string, props: PgpoolBalancerProps): BalancerModel {
  const workload = resolveWorkload(scope, id, props);
  const name = workload.name;
  const logins = resolveLogins(scope, props);
  const numInitChildren = requireInteger(scope, 'numInitChildren', props.numInitChildren ?? 32, 1, 10000);
  const maxPool = requireInteger(scope, 'maxPool', props.maxPool ?? 1, 1, 1000);
  const { tls, serverAuthority } = resolveBalancerTls(scope, props, name);
  const { parameters, healthCheckPeriod } = resolveParameters(scope, props, { numInitChildren, maxPool, tls, serverAuthority });
  checkParameterValues(scope, parameters, workload.configMode);
  const allowedCidrs = props.allowedCidrs ?? ['0.0.0.0/0', '::/0'];
  if (allowedCidrs.length === 0) throw propError(scope, 'allowedCidrs', allowedCidrs, 'admits no client', 'list the client networks');
  allowedCidrs.forEach((cidr) => validateCidr(scope, 'allowedCidrs', cidr));
  const user = resolveUserMetadata(scope, props);
  return {
    ...workload,
    passwordEncryption: requireEnum(scope, 'passwordEncryption', props.passwordEncryption ?? PgpoolPasswordEncryption.SCRAM_SHA_256, { PgpoolPasswordEncryption }),
    parameters,
    ...logins,
    healthChecks: healthCheckPeriod > 0,
    exposePcp: props.exposePcp ?? false,
    ...(tls ? { tls } : {}),
    ...(serverAuthority ? { serverAuthority } : {}),
    certificateDnsNames: serviceDnsNames(scope, [name]),
    allowedCidrs,
    resources: resolveResources(scope, props.resources, { cpuRequest: '100m', cpuLimit: '1', memoryLimit: '256Mi' }),
    spread: requireEnum(scope, 'spread', props.spread ?? PodSpread.PREFERRED, { PodSpread }),
    user,
    componentLabels: { name: 'pgpool', instance: name, component: 'balancer', partOf: name },
    connectionsPerBackend: workload.replicas * numInitChildren * maxPool,
    numInitChildren,
  };
}

/** The Deployment's name, replicas, uid and image, and how Pgpool-II gets its config. */
function resolveWorkload(scope: IConstruct, id: string, props: PgpoolBalancerProps) {
  const name = props.name ?? defaultResourceName(id);
  validateServiceName(scope, 'name', name);
  return {
    name,
    replicas: requireInteger(scope, 'replicas', props.replicas ?? 2, 1, 100),
    uid: requireInteger(scope, 'runAsUser', props.runAsUser ?? 70, 1, 2 ** 31 - 1),
    image: validateImage(scope, props.image ?? DEFAULT_IMAGE, DEFAULT_IMAGE),
    configMode: requireEnum(scope, 'configMode', props.configMode ?? PgpoolConfigMode.CONFIG_MAP, { PgpoolConfigMode }),
  };
}

/** Who logs in: the clients' users (pool_passwd), the sr_check user and the PCP user. */
function resolveLogins(scope: IConstruct, props: PgpoolBalancerProps) {
  const users = resolveUsers(scope, props);
  const srCheckUser = { envPrefix: 'SRCHECK', credentials: resolveCredentials(scope, 'srCheckUser', props.srCheckUser) };
  const pcpUser = props.pcpUser ? resolveCredentials(scope, 'pcpUser', props.pcpUser) : undefined;
  return { users, srCheckUser, pcpUser };
}

/** The clients' TLS, and the backend's CA, which needs it: Pgpool-II's one `ssl` switch serves clients and backends alike. */
function resolveBalancerTls(scope: IConstruct, props: PgpoolBalancerProps, name: string) {
  const tls = resolveTls(scope, props.tls, name);
  if (tls && tls.minimumProtocolVersion !== TlsProtocolVersion.TLS_1_2) {
    throw propError(scope, 'tls.minimumProtocolVersion', tls.minimumProtocolVersion, 'cannot be enforced: Pgpool-II 4.3 has no setting for it',
      'leave it unset: the image\'s OpenSSL sets the floor (OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level)');
  }
  const serverAuthority = backendAuthority(scope, props.backend);
  if (props.backend.encrypted && !tls) {
    throw propError(scope, 'tls.disabled', true, 'leaves the backend unreachable: it takes TLS only, and Pgpool-II speaks TLS to backends only with its own ssl on',
      'drop tls.disabled');
  }
  return { tls, serverAuthority };
}

/**
 * Pgpool-II's TLS: its certificate, and the backend's CA, against which it verifies the backend
 * (without one, it takes the backend's certificate unverified). `ssl` is written 'true', not
 * 'on': the image's entrypoint would otherwise replace the certificate with one of its own.
 */
function tlsParameters(tls: ResolvedTls | undefined, serverAuthority: CertificateAuthority | undefined): PgpoolParameter[] {
  if (!tls) return [{ name: 'ssl', value: false }];
  return [
    { name: 'ssl', value: 'true' },
    { name: 'ssl_cert', value: `${BALANCER_PATHS.certificateDir}/${TLS_FILES.certificate}` },
    { name: 'ssl_key', value: `${BALANCER_PATHS.certificateDir}/${TLS_FILES.key}` },
    ...(serverAuthority ? [{ name: 'ssl_ca_cert', value: `${BALANCER_PATHS.backendAuthorityDir}/${TLS_FILES.authority}` }] : []),
  ];
}

/** pgpool.conf's parameters: the construct's own, the backends, the typed props, then the extra ones. */
function resolveParameters(scope: IConstruct, props: PgpoolBalancerProps,
  sizes: { numInitChildren: number; maxPool: number; tls?: ResolvedTls; serverAuthority?: CertificateAuthority }) {
  const seconds = (prop: string, duration: Duration | undefined, fallback: number) =>
    requireInteger(scope, prop, wholeSeconds(scope, prop, duration) ?? fallback, 0, 2 ** 31 - 1);
  const { numInitChildren, maxPool, tls, serverAuthority } = sizes;
  const healthCheckPeriod = seconds('healthCheckPeriod', props.healthCheckPeriod, HEALTH_CHECK_PERIOD);
  const backend = props.backend;
  const parameters: PgpoolParameter[] = [
    { name: 'backend_clustering_mode', value: 'streaming_replication' },
    { name: 'listen_addresses', value: '*' },
    { name: 'port', value: PGPOOL_PORT },
    // Unexposed, PCP answers only inside the pod (kubectl exec), not to the pod network.
    { name: 'pcp_listen_addresses', value: props.exposePcp ? '*' : 'localhost' },
    { name: 'pcp_port', value: PCP_PORT },
    { name: 'pid_file_name', value: `${BALANCER_PATHS.runDir}/pgpool.pid` },
    { name: 'logdir', value: BALANCER_PATHS.runDir },
    { name: 'log_destination', value: 'stderr' },
    // Failover is Kubernetes' job: Pgpool-II never detaches the primary's Service.
    { name: 'backend_hostname0', value: backend.readWriteHost },
    { name: 'backend_port0', value: backend.port },
    { name: 'backend_weight0', value: 1 },
    { name: 'backend_flag0', value: 'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER' },
    ...(backend.replicas > 0 ? [
      { name: 'backend_hostname1', value: backend.readOnlyHost },
      { name: 'backend_port1', value: backend.port },
      // Reads spread in proportion to instances: the primary is one of 1 + replicas.
      { name: 'backend_weight1', value: backend.replicas },
      ...replicaFailback(backend.readOnlyApplicationName, healthCheckPeriod > 0),
    ] : []),
    { name: 'failover_on_backend_error', value: false },
    { name: 'enable_pool_hba', value: true },
    { name: 'allow_clear_text_frontend_auth', value: false },
    { name: 'load_balance_mode', value: props.loadBalanceMode ?? true },
    { name: 'connection_cache', value: props.connectionCache ?? true },
    { name: 'statement_level_load_balance', value: props.statementLevelLoadBalance ?? false },
    {
      name: 'disable_load_balance_on_write',
      value: requireEnum(scope, 'disableLoadBalanceOnWrite', props.disableLoadBalanceOnWrite ?? DisableLoadBalanceOnWrite.TRANSACTION, { DisableLoadBalanceOnWrite }),
    },
    { name: 'num_init_children', value: numInitChildren },
    { name: 'max_pool', value: maxPool },
    { name: 'child_life_time', value: seconds('childLifeTime', props.childLifeTime, 300) },
    { name: 'child_max_connections', value: requireInteger(scope, 'childMaxConnections', props.childMaxConnections ?? 0, 0, 2 ** 31 - 1) },
    { name: 'connection_life_time', value: seconds('connectionLifeTime', props.connectionLifeTime, 0) },
    { name: 'client_idle_limit', value: seconds('clientIdleLimit', props.clientIdleLimit, 0) },
    { name: 'sr_check_period', value: seconds('srCheckPeriod', props.srCheckPeriod, 10) },
    { name: 'health_check_period', value: healthCheckPeriod },
    ...tlsParameters(tls, serverAuthority),
  ];
  const bounds = healthCheckPeriod > 0 ? WAIT_BOUNDS : WAIT_BOUNDS.filter((bound) => !bound.name.startsWith('health_check_'));
  // An extra parameter replaces a default of the same name (the others it may not name).
  const extra = resolveExtraParameters(scope, props.extraParameters ?? {}, resolveRelease(scope, props.pgpoolVersion ?? DEFAULT_VERSION));
  const defaults = [...parameters, ...bounds].filter((parameter) => !extra.some((replacing) => replacing.name === parameter.name));
  return { parameters: [...defaults, ...extra], healthCheckPeriod };
}

/** Values pgpool.conf, and in environment mode the image's variables, can carry. */
function checkParameterValues(scope: IConstruct, parameters: PgpoolParameter[], configMode: PgpoolConfigMode): void {
  for (const parameter of parameters) {
    const value = String(parameter.value);
    const prop = parameter.prop ?? TYPED_PARAMETERS.get(parameter.name) ?? 'backend';
    // Pgpool-II 4.3 cannot read a quote inside a quoted value, however it is escaped.
    if (value.includes("'")) {
      throw propError(scope, prop, value, 'contains a single quote, which Pgpool-II cannot read in pgpool.conf', 'remove the quote');
    }
    // The image writes `name = 'value'` with sed, which splits at the last `=`.
    if (configMode === PgpoolConfigMode.ENVIRONMENT && value.includes('=')) {
      throw propError(scope, prop, value, 'cannot pass through the image\'s PGPOOL_PARAMS_ variables, as it contains "="',
        'use configMode PgpoolConfigMode.CONFIG_MAP');
    }
  }
}

function resolveUsers(scope: IConstruct, props: PgpoolBalancerProps): PgpoolUserModel[] {
  if (props.users.length === 0) throw propError(scope, 'users', [], 'lets no client log in', 'list the roles clients use');
  const seen = new Set<string>();
  return props.users.map((user, index) => {
    const envPrefix = user.envPrefix ?? `USER${index}`;
    const prop = `users[${index}].envPrefix`;
    if (!ENV_PREFIX.test(envPrefix)) {
      throw propError(scope, prop, envPrefix, 'is not upper-case letters and digits starting with a letter (it names the role\'s Secret directory, login-<prefix> in lower case)',
        'use a prefix such as "APP" or "AIRFLOW"');
    }
    if (RESERVED_PREFIXES.has(envPrefix) || new RegExp(`^${EXPORTER_PREFIX}[0-9]*$`).test(envPrefix) || seen.has(envPrefix)) {
      throw propError(scope, prop, envPrefix, 'is taken', 'choose another prefix');
    }
    seen.add(envPrefix);
    return { envPrefix, credentials: resolveCredentials(scope, `users[${index}].credentials`, user.credentials) };
  });
}

function resolveRelease(scope: IConstruct, version: string): PgpoolRelease {
  if (!VERSION.test(version)) {
    throw propError(scope, 'pgpoolVersion', version, 'is not a version number', `write the image's Pgpool-II version, such as "${DEFAULT_VERSION}"`);
  }
  return pgpoolRelease(version);
}

function resolveExtraParameters(scope: IConstruct, extra: { [name: string]: string }, release: PgpoolRelease): PgpoolParameter[] {
  return Object.keys(extra).sort().map((parameter) => {
    const prop = `extraParameters.${parameter}`;
    RESERVED_PARAMETERS.check(scope, prop, parameter, extra[parameter]);
    const typed = TYPED_PARAMETERS.get(parameter);
    if (typed) throw propError(scope, prop, extra[parameter], 'has a typed prop', `use ${typed}`);
    if (!release.parameters.has(parameter)) {
      const newer = release.release === NEWEST_PGPOOL_RELEASE ? '' : `; one of Pgpool-II ${NEWEST_PGPOOL_RELEASE} needs pgpoolVersion ${NEWEST_PGPOOL_RELEASE} or later`;
      throw propError(scope, 'extraParameters', parameter, `is not a Pgpool-II ${release.release} parameter`,
        `check the spelling against https://www.pgpool.net/docs/latest/en/html/runtime-config.html${newer}`);
    }
    requireSingleLine(scope, prop, extra[parameter]);
    const type = release.types[parameter];
    if (type) checkSettingValue(scope, prop, extra[parameter], type, release.syntax);
    return { name: parameter, value: extra[parameter], prop };
  });
}
