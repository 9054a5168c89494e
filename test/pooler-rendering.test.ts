import { Duration } from 'cdk8s';
import { stringify } from 'yaml';
import {
  EndpointRole, ExternalPostgres, IPostgresEndpoint, PgBouncerAuthType, PgBouncerPooler, PgBouncerPoolerProps, PodSpread, PoolMode,
  IssuerKind, PostgresStatefulCluster, SslMode, MemoryCheck,
} from '../lib';
import { describeProxyScaffolding } from './support/common-props';
import { KubeVersion, validateManifests } from './support/kube-schema';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { PGBOUNCER_PARAMETERS } from '../lib/pooler/pgbouncer-parameters';

type Props = Partial<PgBouncerPoolerProps>;

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};
/** A cluster with room for any pool size: this file tests the proxy, test/connection-budget.test.ts the budget. */
// A backend no consumer can overbook, for tests of the consumers themselves.
const CLUSTER = { ...SECRETS, settings: { maxConnections: 100_000 }, memoryCheck: MemoryCheck.OFF };
const AUTH_USER = { secretName: 'pooler-auth' };

interface Options {
  /** Namespace of the chart; `null` for none. */
  readonly namespace?: string | null;
  /** The pooler's backend: the cluster `Db` itself, or an ExternalPostgres handle to its Services. */
  readonly backend?: 'cluster' | 'external';
  /**
   * Whether the backend has a CA to verify it with: the cluster `Db` with the tls Secret `db-tls`,
   * the ExternalPostgres with the certificateAuthority `db-ca`. Without it, the backend is still
   * encrypted: the cluster makes self-signed certificates, the ExternalPostgres has no CA.
   */
  readonly backendTls?: boolean;
  /** The backend takes no TLS: the cluster with `tls.disabled`, the ExternalPostgres with `tlsDisabled`. */
  readonly backendPlaintext?: boolean;
}

interface Synthesized {
  readonly cluster: PostgresStatefulCluster;
  readonly pooler: PgBouncerPooler;
  readonly objects: any[];
}

/**
 * A cluster `Db` (name `db`) and a pooler `Pooler` (name `pooler`) in front of it, with the auth
 * user `pooler-auth` unless the props say otherwise, in namespace `apps` by default.
 */
function synth(props: Props = {}, options: Options = {}): Synthesized {
  const chart = testChart(options.namespace === null ? undefined : options.namespace ?? 'apps');
  const external = options.backend === 'external';
  const clusterTls = options.backendPlaintext ? { disabled: true } : options.backendTls ? { secretName: 'db-tls' } : undefined;
  const cluster = new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, ...(clusterTls && !external ? { tls: clusterTls } : {}) });
  const backend: IPostgresEndpoint = external
    ? new ExternalPostgres(chart, 'Ext', {
      readWriteService: 'db-rw', readOnlyService: 'db-ro', superuserSecret: SECRETS.superuserSecret,
      ...(options.backendTls ? { certificateAuthority: { secretName: 'db-ca' } } : {}),
      ...(options.backendPlaintext ? { tlsDisabled: true } : {}),
    })
    : cluster;
  const pooler = new PgBouncerPooler(chart, 'Pooler', { backend, authUser: AUTH_USER, ...props });
  return { cluster, pooler, objects: synthObjects(chart) };
}

const objectsOf = (props: Props = {}, options: Options = {}) => synth(props, options).objects;
const deployment = (objects: any[]) => findObject(objects, 'Deployment', 'pooler');
const podSpec = (objects: any[]) => deployment(objects).spec.template.spec;
const pgbouncerContainer = (objects: any[]) => podSpec(objects).containers.find((c: any) => c.name === 'pgbouncer');
const userlistContainer = (objects: any[]) => podSpec(objects).initContainers.find((c: any) => c.name === 'userlist');
const allContainers = (objects: any[]) => [...podSpec(objects).initContainers, ...podSpec(objects).containers];
const volume = (objects: any[], name: string) => podSpec(objects).volumes.find((v: any) => v.name === name);
const envOf = (container: any, name: string): string | undefined => container.env?.find((e: any) => e.name === name)?.value;
const poolerObjects = (objects: any[]) => objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === 'pgbouncer');

const configFile = (objects: any[], file: string): string => findObject(objects, 'ConfigMap', 'pooler-config').data[file];
const pgbouncerIni = (objects: any[]) => configFile(objects, 'pgbouncer.ini');
const userlistScript = (objects: any[]) => configFile(objects, 'userlist.sh');
const drainScript = (objects: any[]) => configFile(objects, 'drain.sh');
const bootstrapScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['bootstrap.sh'];
const clusterSecretNames = (objects: any[]): string[] => findObject(objects, 'StatefulSet', 'db-primary').spec.template.spec.volumes
  .find((v: any) => v.name === 'secrets').projected.sources.map((s: any) => s.secret.name);

/** The non-comment, non-empty lines of one section of pgbouncer.ini. */
function iniSection(ini: string, section: 'databases' | 'pgbouncer'): string[] {
  const lines = ini.split('\n');
  const start = lines.indexOf(`[${section}]`);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, index) => index > start && line.startsWith('['));
  return lines.slice(start + 1, end < 0 ? undefined : end).filter((line) => line.trim() !== '' && !line.startsWith(';'));
}

/** The value of a `[pgbouncer]` setting as written; undefined when absent. */
function iniValue(ini: string, key: string): string | undefined {
  const line = iniSection(ini, 'pgbouncer').find((l) => l.startsWith(`${key} = `));
  return line?.slice(key.length + 3);
}

const checksum = (objects: any[]): string => deployment(objects).spec.template.metadata.annotations['checksum/config'];

const SELECTOR = { 'app.kubernetes.io/name': 'pgbouncer', 'app.kubernetes.io/instance': 'pooler', 'app.kubernetes.io/component': 'pooler' };

describe('objects and names', () => {
  test('a pooler has a ServiceAccount, a ConfigMap, a Service, a Deployment, a PodDisruptionBudget and a NetworkPolicy', () => {
    const kinds = poolerObjects(objectsOf()).map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual([
      'ConfigMap/pooler-config', 'Deployment/pooler', 'NetworkPolicy/pooler', 'PodDisruptionBudget/pooler', 'Service/pooler', 'ServiceAccount/pooler',
    ]);
  });

  test('the name defaults to the construct id in kebab-case', () => {
    const chart = testChart('apps');
    const cluster = new PostgresStatefulCluster(chart, 'Db', CLUSTER);
    const pooler = new PgBouncerPooler(chart, 'OrdersPooler', { backend: cluster, authUser: AUTH_USER });
    expect(pooler.name).toBe('orders-pooler');
    expect(findObject(synthObjects(chart), 'Deployment', 'orders-pooler').spec.replicas).toBe(2);
  });

  test('every pooler object gets the chart namespace', () => {
    const objects = poolerObjects(objectsOf());
    expect(objects.map((o) => o.metadata.namespace)).toEqual(objects.map(() => 'apps'));
  });

  test('host is <name>.<namespace>.svc and port the Service port', () => {
    const { pooler } = synth();
    expect([pooler.host, pooler.port, pooler.name]).toEqual(['pooler.apps.svc', 5432, 'pooler']);
  });

  test('host is the short name without a namespace', () => {
    expect(synth({}, { namespace: null }).pooler.host).toBe('pooler');
  });

  test('the backend is exposed as given', () => {
    const { cluster, pooler } = synth();
    expect(pooler.backend).toBe(cluster);
  });
});

describe('Deployment', () => {
  test('runs the image on both containers of its own; the certificate init container runs the self-signed image', () => {
    const objects = objectsOf({ image: 'registry.example/pgbouncer:1.25.1' });
    expect(allContainers(objects).map((c) => [c.name, c.image])).toEqual([
      ['certificate', 'postgres:17.10-bookworm'], ['userlist', 'registry.example/pgbouncer:1.25.1'], ['pgbouncer', 'registry.example/pgbouncer:1.25.1'],
    ]);
    const plaintext = objectsOf({ image: 'registry.example/pgbouncer:1.25.1', tls: { disabled: true } });
    expect(allContainers(plaintext).map((c) => c.image)).toEqual(['registry.example/pgbouncer:1.25.1', 'registry.example/pgbouncer:1.25.1']);
    expect(pgbouncerContainer(objectsOf()).image).toBe('edoburu/pgbouncer:v1.25.1-p0');
  });

  test('starts pgbouncer with the rendered pgbouncer.ini', () => {
    const container = pgbouncerContainer(objectsOf());
    expect([...container.command, ...(container.args ?? [])].join(' ')).toMatch(/pgbouncer.* \/etc\/pgbouncer\/pgbouncer\.ini$/);
    expect(container.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/pgbouncer', readOnly: true });
  });

  test('spreads pods over nodes, preferred by default and required when asked', () => {
    expect(podSpec(objectsOf()).topologySpreadConstraints).toEqual([{
      maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: SELECTOR },
    }]);
    expect(podSpec(objectsOf({ spread: PodSpread.REQUIRED })).topologySpreadConstraints[0].whenUnsatisfiable).toBe('DoNotSchedule');
  });
});

describe('Service', () => {
  test('port 5432 is named postgres and targets the pgbouncer port, 6432', () => {
    const objects = objectsOf();
    const service = findObject(objects, 'Service', 'pooler');
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports).toEqual([{ name: 'postgres', port: 5432, targetPort: 'pgbouncer', protocol: 'TCP' }]);
    expect(pgbouncerContainer(objects).ports).toEqual([{ name: 'pgbouncer', containerPort: 6432, protocol: 'TCP' }]);
  });

  test('selects the Deployment\'s pods', () => {
    const objects = objectsOf();
    expect(findObject(objects, 'Service', 'pooler').spec.selector).toEqual(deployment(objects).spec.selector.matchLabels);
  });

  test('a custom port changes the Service only; PgBouncer keeps listening on 6432', () => {
    const objects = objectsOf({ port: 6543 });
    expect(findObject(objects, 'Service', 'pooler').spec.ports[0]).toMatchObject({ port: 6543, targetPort: 'pgbouncer' });
    expect(pgbouncerContainer(objects).ports[0].containerPort).toBe(6432);
    expect(iniValue(pgbouncerIni(objects), 'listen_port')).toBe('6432');
  });
});

describeProxyScaffolding('pooler', SELECTOR, (props) => objectsOf(props));

describe('pgbouncer.ini [databases]', () => {
  test('defaults to a wildcard entry to the cluster\'s read-write Service', () => {
    expect(iniSection(pgbouncerIni(objectsOf()), 'databases')).toEqual(['* = host=db-rw.apps.svc port=5432']);
  });

  test('target READ_ONLY routes the wildcard to the read-only Service', () => {
    expect(iniSection(pgbouncerIni(objectsOf({ target: EndpointRole.READ_ONLY })), 'databases'))
      .toEqual(['* = host=db-ro.apps.svc port=5432']);
  });

  test('an ExternalPostgres backend routes to its Services', () => {
    const ini = pgbouncerIni(objectsOf({ target: EndpointRole.READ_ONLY }, { backend: 'external' }));
    expect(iniSection(ini, 'databases')).toEqual(['* = host=db-ro.apps.svc port=5432']);
  });

  test('per-database entries carry dbname, pool_size, pool_mode and max_db_connections', () => {
    const ini = pgbouncerIni(objectsOf({
      databases: [
        { name: 'orders', dbname: 'orders_prod', poolSize: 10, poolMode: PoolMode.SESSION, maxDbConnections: 15 },
        { name: 'reports', target: EndpointRole.READ_ONLY },
        { name: 'stats', poolMode: PoolMode.STATEMENT },
      ],
    }));
    expect(iniSection(ini, 'databases')).toEqual([
      'orders = host=db-rw.apps.svc port=5432 dbname=orders_prod pool_size=10 pool_mode=session max_db_connections=15',
      'reports = host=db-ro.apps.svc port=5432',
      'stats = host=db-rw.apps.svc port=5432 pool_mode=statement',
    ]);
  });

  test('a per-database target overrides the pooler\'s target', () => {
    const ini = pgbouncerIni(objectsOf({ target: EndpointRole.READ_ONLY, databases: [{ name: 'orders', target: EndpointRole.READ_WRITE }] }));
    expect(iniSection(ini, 'databases')).toEqual(['orders = host=db-rw.apps.svc port=5432']);
  });

  test('entries name no user and no password', () => {
    const ini = pgbouncerIni(objectsOf({ databases: [{ name: 'orders', dbname: 'orders' }] }));
    expect(iniSection(ini, 'databases').join('\n')).not.toMatch(/\b(user|password|auth_user)=/);
    expect(ini).not.toMatch(/^\[users\]/m);
  });
});

describe('pgbouncer.ini [pgbouncer]', () => {
  test('the construct sets listening, the socket directory, the pidfile and the userlist', () => {
    const ini = pgbouncerIni(objectsOf());
    expect(['listen_addr', 'listen_port', 'unix_socket_dir', 'pidfile', 'auth_file'].map((key) => iniValue(ini, key))).toEqual([
      '*', '6432', '/var/run/pgbouncer', '/var/run/pgbouncer/pgbouncer.pid', '/var/run/pgbouncer-auth/userlist.txt',
    ]);
  });

  test('auth_type is scram-sha-256 by default and md5 when asked', () => {
    expect(iniValue(pgbouncerIni(objectsOf()), 'auth_type')).toBe('scram-sha-256');
    expect(iniValue(pgbouncerIni(objectsOf({ authType: PgBouncerAuthType.MD5 })), 'auth_type')).toBe('md5');
  });

  test('the default auth_query is the one the cluster\'s addPasswordLookup returns', () => {
    const other = new PostgresStatefulCluster(testChart(), 'Other', CLUSTER);
    const query = other._addPasswordLookup({ secretName: 'other-auth' });
    expect(iniValue(pgbouncerIni(objectsOf()), 'auth_query')).toBe(query);
    expect(query).toContain('$1');
  });

  test('a custom authQuery is written as given', () => {
    const authQuery = 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1';
    expect(iniValue(pgbouncerIni(objectsOf({ authQuery })), 'auth_query')).toBe(authQuery);
  });

  test('the auth user comes from a file the init container writes, which the ini includes', () => {
    const ini = pgbouncerIni(objectsOf());
    expect(ini.split('\n')).toContain('%include /var/run/pgbouncer-auth/auth_user.ini');
    expect(iniValue(ini, 'auth_user')).toBeUndefined();
    expect(userlistScript(objectsOf())).toContain('include_line auth_user.ini "auth_user = $auth_user"');
  });

  test('without authUser there is no auth_query and no include', () => {
    const ini = pgbouncerIni(objectsOf({ authUser: undefined, users: [{ secretName: 'app-user' }] }));
    expect(iniValue(ini, 'auth_query')).toBeUndefined();
    expect(ini).not.toContain('%include');
  });

  test('pool settings default to transaction pooling for 2000 clients and pools of 20', () => {
    const ini = pgbouncerIni(objectsOf());
    const keys = ['pool_mode', 'max_client_conn', 'default_pool_size', 'min_pool_size', 'reserve_pool_size', 'ignore_startup_parameters'];
    expect(keys.map((key) => iniValue(ini, key))).toEqual(['transaction', '2000', '20', '0', '0', 'extra_float_digits']);
  });

  test('settings without a default are left out', () => {
    const ini = pgbouncerIni(objectsOf());
    const unset = ['max_db_connections', 'max_user_connections', 'idle_transaction_timeout', 'max_prepared_statements', 'admin_users', 'stats_users'];
    expect(unset.map((key) => iniValue(ini, key))).toEqual(unset.map(() => undefined));
  });

  test('durations default to seconds: 5, 600, 300 and 20', () => {
    const ini = pgbouncerIni(objectsOf());
    expect(['reserve_pool_timeout', 'server_idle_timeout', 'server_lifetime', 'query_wait_timeout'].map((key) => iniValue(ini, key)))
      .toEqual(['5', '600', '300', '20']);
  });

  test('waits on a dead, frozen or unreachable server are bounded: keepalives, a TCP user timeout, a 5 s connect timeout', () => {
    const keys = ['tcp_keepalive', 'tcp_keepidle', 'tcp_keepintvl', 'tcp_keepcnt', 'tcp_user_timeout', 'server_connect_timeout', 'server_login_retry'];
    expect(keys.map((key) => iniValue(pgbouncerIni(objectsOf()), key))).toEqual(['1', '30', '10', '3', '15000', '5', '1']);
    // An extra setting replaces the default, once.
    const ini = pgbouncerIni(objectsOf({ extraSettings: { tcp_user_timeout: '30000' } }));
    expect(ini.split('\n').filter((line) => line.startsWith('tcp_user_timeout'))).toEqual(['tcp_user_timeout = 30000']);
  });

  test('durations are written in seconds', () => {
    const ini = pgbouncerIni(objectsOf({
      reservePoolTimeout: Duration.seconds(3),
      serverIdleTimeout: Duration.minutes(5),
      serverLifetime: Duration.hours(2),
      queryWaitTimeout: Duration.seconds(30),
      idleTransactionTimeout: Duration.minutes(1),
    }));
    expect(['reserve_pool_timeout', 'server_idle_timeout', 'server_lifetime', 'query_wait_timeout', 'idle_transaction_timeout']
      .map((key) => iniValue(ini, key))).toEqual(['3', '300', '7200', '30', '60']);
  });

  test('typed props replace the defaults', () => {
    const ini = pgbouncerIni(objectsOf({
      poolMode: PoolMode.SESSION, maxClientConn: 500, defaultPoolSize: 10, minPoolSize: 2, reservePoolSize: 3,
      maxDbConnections: 40, maxUserConnections: 30, maxPreparedStatements: 200,
      adminUsers: ['pgbouncer_admin'], statsUsers: ['exporter', 'monitoring'], ignoreStartupParameters: ['extra_float_digits', 'search_path'],
    }));
    const keys = ['pool_mode', 'max_client_conn', 'default_pool_size', 'min_pool_size', 'reserve_pool_size', 'max_db_connections',
      'max_user_connections', 'max_prepared_statements', 'admin_users', 'stats_users', 'ignore_startup_parameters'];
    expect(keys.map((key) => iniValue(ini, key))).toEqual([
      'session', '500', '10', '2', '3', '40', '30', '200', 'pgbouncer_admin', 'exporter,monitoring', 'extra_float_digits,search_path',
    ]);
  });

  test('an empty ignoreStartupParameters writes no setting', () => {
    expect(iniValue(pgbouncerIni(objectsOf({ ignoreStartupParameters: [] })), 'ignore_startup_parameters')).toBeUndefined();
  });

  test('extra settings are written after the typed ones', () => {
    const ini = pgbouncerIni(objectsOf({ extraSettings: { server_check_delay: '10', log_connections: '0' } }));
    expect([iniValue(ini, 'server_check_delay'), iniValue(ini, 'log_connections')]).toEqual(['10', '0']);
  });

  test('every setting appears once and is one PgBouncer knows', () => {
    const ini = pgbouncerIni(objectsOf({
      tls: { secretName: 'pooler-tls' }, maxDbConnections: 40, adminUsers: ['admin'],
      extraSettings: { server_check_delay: '10' },
    }, { backendTls: true }));
    expect(iniValue(ini, 'server_tls_ca_file')).toBeDefined();
    const keys = iniSection(ini, 'pgbouncer').filter((line) => !line.startsWith('%include')).map((line) => line.split(' = ')[0]);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.filter((key) => !PGBOUNCER_PARAMETERS.has(key))).toEqual([]);
  });
});

describe('the cluster\'s password lookup', () => {
  test('the bootstrap script gains the lookup, granted to the auth user\'s Secret', () => {
    const objects = objectsOf();
    const script = bootstrapScript(objects);
    expect(clusterSecretNames(objects)).toContain('pooler-auth');
    const sources = findObject(objects, 'StatefulSet', 'db-primary').spec.template.spec.volumes
      .find((v: any) => v.name === 'secrets').projected.sources;
    const dir = sources.find((s: any) => s.secret.name === 'pooler-auth').secret.items[0].path.split('/')[0];
    expect(script).toContain('SECURITY DEFINER');
    expect(script).toContain(
      `\\set role_name \`cat "$CREDENTIALS_DIR/${dir}/username"\`\n`
      + `\\set role_password \`cat "$CREDENTIALS_DIR/${dir}/password"\`\n`
      + 'GRANT USAGE ON SCHEMA pgbouncer TO :"role_name";\n'
      + 'GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO :"role_name";',
    );
  });

  test('the cluster\'s checksum changes when a pooler adds the lookup', () => {
    const chart = testChart('apps');
    new PostgresStatefulCluster(chart, 'Db', CLUSTER);
    const plain = findObject(synthObjects(chart), 'StatefulSet', 'db-primary').spec.template.metadata.annotations['checksum/config'];
    const withPooler = findObject(objectsOf(), 'StatefulSet', 'db-primary').spec.template.metadata.annotations['checksum/config'];
    expect(withPooler).not.toBe(plain);
  });

  test('a custom authQuery adds no lookup', () => {
    const objects = objectsOf({ authQuery: 'SELECT usename, passwd FROM my_lookup($1)' });
    expect(bootstrapScript(objects)).not.toContain('get_auth');
    expect(clusterSecretNames(objects)).not.toContain('pooler-auth');
  });

  test('an ExternalPostgres backend adds no lookup to a cluster in the chart', () => {
    const objects = objectsOf({}, { backend: 'external' });
    expect(bootstrapScript(objects)).not.toContain('get_auth');
    expect(clusterSecretNames(objects)).not.toContain('pooler-auth');
  });

  test('users without authUser add no lookup', () => {
    expect(bootstrapScript(objectsOf({ authUser: undefined, users: [{ secretName: 'app-user' }] }))).not.toContain('get_auth');
  });
});

describe('userlist and Secrets', () => {
  const users = [{ secretName: 'app-user' }, { secretName: 'reporting', usernameKey: 'user', passwordKey: 'pass' }];
  const dirsOf = (objects: any[]) => /^set -- (.*)$/m.exec(userlistScript(objects))?.[1];

  test('userlist.sh reads the auth user\'s directory, then user-0, user-1, ...', () => {
    expect(dirsOf(objectsOf({ users }))).toBe('auth-user user-0 user-1');
  });

  test('userlist.sh reads only user directories without authUser', () => {
    expect(dirsOf(objectsOf({ authUser: undefined, users }))).toBe('user-0 user-1');
  });

  test('userlist.sh reads only the auth user\'s directory without users', () => {
    expect(dirsOf(objectsOf())).toBe('auth-user');
  });

  test('the projected volume maps each Secret\'s keys to those directories', () => {
    const objects = objectsOf({ authUser: { secretName: 'pooler-auth', usernameKey: 'login', passwordKey: 'secret' }, users });
    expect(volume(objects, 'secrets').projected.sources.map((s: any) => s.secret)).toEqual([
      { name: 'pooler-auth', items: [{ key: 'login', path: 'auth-user/username' }, { key: 'secret', path: 'auth-user/password' }] },
      { name: 'app-user', items: [{ key: 'username', path: 'user-0/username' }, { key: 'password', path: 'user-0/password' }] },
      { name: 'reporting', items: [{ key: 'user', path: 'user-1/username' }, { key: 'pass', path: 'user-1/password' }] },
    ]);
    expect(volume(objects, 'secrets').projected.defaultMode).toBe(0o440);
  });

  test('only the userlist init container mounts the Secrets', () => {
    const objects = objectsOf({ users });
    const mountsSecrets = (c: any) => c.volumeMounts.some((m: any) => m.name === 'secrets');
    expect(allContainers(objects).filter(mountsSecrets).map((c) => c.name)).toEqual(['userlist']);
    expect(userlistContainer(objects).volumeMounts).toContainEqual({ name: 'secrets', mountPath: '/etc/pgbouncer-secrets', readOnly: true });
    expect(envOf(userlistContainer(objects), 'CREDENTIALS_DIR')).toBe('/etc/pgbouncer-secrets');
  });

  test('the init container writes the userlist to an in-memory volume that PgBouncer reads only', () => {
    const objects = objectsOf();
    expect(volume(objects, 'auth').emptyDir).toMatchObject({ medium: 'Memory' });
    expect(userlistContainer(objects).volumeMounts).toContainEqual({ name: 'auth', mountPath: '/var/run/pgbouncer-auth' });
    expect(pgbouncerContainer(objects).volumeMounts).toContainEqual({ name: 'auth', mountPath: '/var/run/pgbouncer-auth', readOnly: true });
    expect(envOf(userlistContainer(objects), 'AUTH_DIR')).toBe('/var/run/pgbouncer-auth');
    expect(userlistContainer(objects).command).toEqual(['/bin/sh', '/etc/pgbouncer/userlist.sh']);
  });
});

describe('no password in the YAML', () => {
  const props: Props = { users: [{ secretName: 'app-user', passwordKey: 'pw' }], tls: { secretName: 'pooler-tls' } };
  const options: Options = { backendTls: true };

  test('no Secret object is rendered', () => {
    expect(objectsOf(props, options).filter((o) => o.kind === 'Secret')).toEqual([]);
  });

  test('no container takes a Secret through its environment', () => {
    const containers = allContainers(objectsOf(props, options));
    const env = containers.flatMap((c) => c.env ?? []);
    expect(env.filter((e: any) => e.valueFrom)).toEqual([]);
    expect(env.map((e: any) => e.name).filter((name: string) => /PASS/i.test(name))).toEqual([]);
    expect(containers.filter((c) => c.envFrom)).toEqual([]);
  });

  test('no password is set anywhere in the YAML', () => {
    const yaml = stringify(objectsOf(props, options));
    expect(yaml).not.toMatch(/PGPASSWORD|POSTGRES_PASSWORD|password\s*=\s*(?!\$)\S|PASSWORD\s+'/i);
  });
});

describe('TLS', () => {
  const tlsProps: Props = { tls: { secretName: 'pooler-tls' } };
  const tlsBackend: Options = { backendTls: true };
  const sslmodes = (ini: string) => [iniValue(ini, 'client_tls_sslmode'), iniValue(ini, 'server_tls_sslmode')];
  const CLIENT_MOUNT = { name: 'tls', mountPath: '/etc/pgbouncer-tls/client', readOnly: true };
  const SERVER_MOUNT = { name: 'server-ca', mountPath: '/etc/pgbouncer-tls/server', readOnly: true };
  const initContainerNames = (objects: any[]) => podSpec(objects).initContainers.map((c: any) => c.name);

  test('by default TLS is required of clients, with a self-signed certificate, and towards the self-signed cluster: require both ways', () => {
    expect(sslmodes(pgbouncerIni(objectsOf()))).toEqual(['require', 'require']);
  });

  test('sslmodes are require with a tls Secret and verify-full in front of a backend with a CA', () => {
    expect(sslmodes(pgbouncerIni(objectsOf(tlsProps, tlsBackend)))).toEqual(['require', 'verify-full']);
    expect(sslmodes(pgbouncerIni(objectsOf(tlsProps, { backend: 'external', backendTls: true })))).toEqual(['require', 'verify-full']);
  });

  test.each([
    ['the cluster with a tls Secret', { backendTls: true }, 'verify-full', '/etc/pgbouncer-tls/server/ca.crt'],
    ['the cluster with its self-signed certificates', {}, 'require', undefined],
    ['the cluster with tls.disabled', { backendPlaintext: true }, 'prefer', undefined],
    ['an ExternalPostgres with a certificateAuthority', { backend: 'external', backendTls: true }, 'verify-full', '/etc/pgbouncer-tls/server/ca.crt'],
    ['an ExternalPostgres without one', { backend: 'external' }, 'require', undefined],
    ['an ExternalPostgres with tlsDisabled', { backend: 'external', backendPlaintext: true }, 'prefer', undefined],
  ] as const)('server_tls_sslmode in front of %s: %s', (_what, options, sslmode, caFile) => {
    const objects = objectsOf({}, options);
    expect([iniValue(pgbouncerIni(objects), 'server_tls_sslmode'), iniValue(pgbouncerIni(objects), 'server_tls_ca_file')]).toEqual([sslmode, caFile]);
    expect(volume(objects, 'server-ca') !== undefined).toBe(caFile !== undefined);
  });

  test('tls with required: false makes client_tls_sslmode prefer', () => {
    expect(sslmodes(pgbouncerIni(objectsOf({ tls: { required: false } })))).toEqual(['prefer', 'require']);
  });

  test('tls.disabled makes client_tls_sslmode disable, with no certificate', () => {
    const ini = pgbouncerIni(objectsOf({ tls: { disabled: true } }));
    expect([...sslmodes(ini), iniValue(ini, 'client_tls_cert_file'), iniValue(ini, 'client_tls_key_file')]).toEqual(['disable', 'require', undefined, undefined]);
  });

  test('an explicit serverTlsMode wins', () => {
    expect(sslmodes(pgbouncerIni(objectsOf({ ...tlsProps, serverTlsMode: SslMode.VERIFY_CA }, tlsBackend)))).toEqual(['require', 'verify-ca']);
    expect(iniValue(pgbouncerIni(objectsOf({ serverTlsMode: SslMode.PREFER })), 'server_tls_sslmode')).toBe('prefer');
    expect(iniValue(pgbouncerIni(objectsOf({ serverTlsMode: SslMode.REQUIRE }, { backendPlaintext: true })), 'server_tls_sslmode')).toBe('require');
    expect(iniValue(pgbouncerIni(objectsOf({ serverTlsMode: SslMode.DISABLE }, tlsBackend)), 'server_tls_sslmode')).toBe('disable');
  });

  test('the client certificate and key and the backend\'s CA are mounted and referenced in pgbouncer.ini', () => {
    const objects = objectsOf(tlsProps, tlsBackend);
    const ini = pgbouncerIni(objects);
    const mounts = pgbouncerContainer(objects).volumeMounts.filter((m: any) => ['tls', 'server-ca'].includes(m.name));
    expect(mounts).toEqual([CLIENT_MOUNT, SERVER_MOUNT]);
    expect(volume(objects, 'tls')).toEqual({
      name: 'tls', secret: { secretName: 'pooler-tls', defaultMode: 0o440, items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] },
    });
    expect(volume(objects, 'server-ca')).toEqual({
      name: 'server-ca', projected: { defaultMode: 0o440, sources: [{ secret: { name: 'db-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] },
    });
    const mounted = [
      ...volume(objects, 'tls').secret.items.map((item: any) => `${CLIENT_MOUNT.mountPath}/${item.path}`),
      ...volume(objects, 'server-ca').projected.sources[0].secret.items.map((item: any) => `${SERVER_MOUNT.mountPath}/${item.path}`),
    ];
    expect([iniValue(ini, 'client_tls_cert_file'), iniValue(ini, 'client_tls_key_file'), iniValue(ini, 'server_tls_ca_file')])
      .toEqual(mounted);
    expect(initContainerNames(objects)).toEqual(['userlist']);
  });

  test.each([
    ['by default', {}],
    ['with tls: {}', { tls: {} }],
  ])('%s the client certificate is self-signed: an in-memory tls volume that the certificate init container fills before userlist runs', (_what, props) => {
    const objects = objectsOf(props);
    expect(volume(objects, 'tls')).toEqual({ name: 'tls', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
    expect(initContainerNames(objects)).toEqual(['certificate', 'userlist']);
    const maker = podSpec(objects).initContainers[0];
    expect(maker.volumeMounts).toEqual([{ name: 'tls', mountPath: '/certificate' }]);
    expect(maker.env).toEqual([
      { name: 'CERTIFICATE_DIR', value: '/certificate' },
      { name: 'CERTIFICATE_COMMON_NAME', value: 'pooler' },
      { name: 'CERTIFICATE_DNS_NAMES', value: 'pooler pooler.apps pooler.apps.svc pooler.apps.svc.cluster.local' },
    ]);
    expect(pgbouncerContainer(objects).volumeMounts.filter((m: any) => m.name === 'tls')).toEqual([CLIENT_MOUNT]);
    const ini = pgbouncerIni(objects);
    expect([iniValue(ini, 'client_tls_cert_file'), iniValue(ini, 'client_tls_key_file')])
      .toEqual(['/etc/pgbouncer-tls/client/tls.crt', '/etc/pgbouncer-tls/client/tls.key']);
    expect(objects.filter((o) => o.kind === 'Certificate')).toEqual([]);
  });

  test('with tls { issuer } the tls Secret defaults to <name>-tls', () => {
    expect(volume(objectsOf({ tls: { issuer: { name: 'internal-ca' } } }), 'tls').secret.secretName).toBe('pooler-tls');
  });

  test('only the backend\'s CA is mounted when the pooler has tls.disabled', () => {
    const objects = objectsOf({ tls: { disabled: true } }, { backend: 'external', backendTls: true });
    expect(volume(objects, 'tls')).toBeUndefined();
    expect(volume(objects, 'server-ca').projected.sources).toEqual([{ secret: { name: 'db-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }]);
    expect(pgbouncerContainer(objects).volumeMounts.filter((m: any) => ['tls', 'server-ca'].includes(m.name))).toEqual([SERVER_MOUNT]);
    expect(iniValue(pgbouncerIni(objects), 'client_tls_cert_file')).toBeUndefined();
    expect(iniValue(pgbouncerIni(objects), 'server_tls_ca_file')).toBe('/etc/pgbouncer-tls/server/ca.crt');
    expect(initContainerNames(objects)).toEqual(['userlist']);
  });

  test('without TLS on either side there is no tls volume, no certificate init container and no file setting', () => {
    const objects = objectsOf({ tls: { disabled: true } }, { backendPlaintext: true });
    expect([volume(objects, 'tls'), volume(objects, 'server-ca')]).toEqual([undefined, undefined]);
    expect(pgbouncerContainer(objects).volumeMounts.map((m: any) => m.name)).not.toContain('tls');
    expect(pgbouncerIni(objects)).not.toMatch(/_file = \/etc\/pgbouncer-tls/);
    expect(initContainerNames(objects)).toEqual(['userlist']);
  });

  test('the userlist init container does not mount the TLS key', () => {
    expect(userlistContainer(objectsOf(tlsProps, tlsBackend)).volumeMounts.map((m: any) => m.name)).not.toContain('tls');
    expect(userlistContainer(objectsOf()).volumeMounts.map((m: any) => m.name)).not.toContain('tls');
  });

  test('without an issuer no Certificate is rendered; with one, a Certificate for the Service names', () => {
    expect(objectsOf(tlsProps).filter((o) => o.kind === 'Certificate')).toEqual([]);
    const { pooler, objects } = synth({ tls: { issuer: { name: 'internal-ca' } } });
    const certificates = objects.filter((o) => o.kind === 'Certificate');
    expect(certificates.map((o) => o.metadata.name)).toEqual(['pooler']);
    const certificate = certificates[0];
    expect(certificate.spec.secretName).toBe('pooler-tls');
    expect(certificate.spec.dnsNames).toEqual(pooler.certificateDnsNames);
    expect(pooler.certificateDnsNames).toEqual(['pooler', 'pooler.apps', 'pooler.apps.svc', 'pooler.apps.svc.cluster.local']);
  });

  test('certificateAuthority is the tls Secret\'s ca.crt with a Secret, and unset for a self-signed certificate or tls.disabled; encrypted unless disabled', () => {
    expect([synth(tlsProps).pooler.encrypted, synth(tlsProps).pooler.certificateAuthority]).toEqual([true, { secretName: 'pooler-tls', key: 'ca.crt' }]);
    expect([synth().pooler.encrypted, synth().pooler.certificateAuthority]).toEqual([true, undefined]);
    const plaintext = synth({ tls: { disabled: true } }).pooler;
    expect([plaintext.encrypted, plaintext.certificateAuthority]).toEqual([false, undefined]);
  });
});

describe('security and resources', () => {
  test('the pod runs as non-root uid 70 with a matching gid and fsGroup and RuntimeDefault seccomp', () => {
    expect(podSpec(objectsOf()).securityContext).toMatchObject({
      runAsNonRoot: true, runAsUser: 70, runAsGroup: 70, fsGroup: 70, seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('runAsUser sets the uid, gid and fsGroup', () => {
    expect(podSpec(objectsOf({ runAsUser: 1000 })).securityContext).toMatchObject({ runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 });
  });

  test('every container, the certificate init container included, drops all capabilities, cannot escalate and has a read-only root filesystem', () => {
    const contexts = allContainers(objectsOf()).map((c) => c.securityContext);
    expect(allContainers(objectsOf()).map((c) => c.name)).toEqual(['certificate', 'userlist', 'pgbouncer']);
    expect(contexts).toHaveLength(3);
    for (const context of contexts) {
      expect(context).toMatchObject({
        allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
        capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
      });
    }
  });

  test('resources default to 100m/1 CPU and 128Mi memory on both containers', () => {
    for (const container of allContainers(objectsOf())) {
      expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '128Mi' } });
    }
  });

  test('resources can be set', () => {
    const resources = pgbouncerContainer(objectsOf({ resources: { cpuRequest: '250m', cpuLimit: '2', memoryLimit: '256Mi' } })).resources;
    expect(resources).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '2', memory: '256Mi' } });
  });

  test('the scratch volumes are small and in memory', () => {
    const objects = objectsOf();
    expect(volume(objects, 'auth').emptyDir).toEqual({ medium: 'Memory', sizeLimit: '1Mi' });
    expect(volume(objects, 'run').emptyDir).toEqual({ medium: 'Memory', sizeLimit: '1Mi' });
  });
});

describe('probes and shutdown', () => {
  test('startup and liveness probes are TCP checks of the pgbouncer port', () => {
    const container = pgbouncerContainer(objectsOf());
    for (const probe of [container.startupProbe, container.livenessProbe]) {
      expect(probe.tcpSocket).toEqual({ port: 'pgbouncer' });
      expect(probe.exec).toBeUndefined();
      expect(probe.httpGet).toBeUndefined();
    }
  });

  test('readiness only asks whether the pod is draining', () => {
    expect(pgbouncerContainer(objectsOf()).readinessProbe.exec.command).toEqual(['test', '!', '-e', '/var/run/pgbouncer/draining']);
  });

  test('no probe logs in', () => {
    const container = pgbouncerContainer(objectsOf());
    const probes = [container.startupProbe, container.livenessProbe, container.readinessProbe];
    for (const probe of probes) {
      expect((probe.exec?.command ?? []).join(' ')).not.toMatch(/psql|pg_isready|password|PGPASS|SHOW/i);
    }
  });

  test('drain.sh marks the pod as draining at the path the readiness probe checks', () => {
    const objects = objectsOf();
    const container = pgbouncerContainer(objects);
    const runDir = envOf(container, 'PGBOUNCER_RUN_DIR');
    expect(drainScript(objects)).toContain('touch "$PGBOUNCER_RUN_DIR/draining"');
    expect(`${runDir}/draining`).toBe(container.readinessProbe.exec.command[3]);
    expect(container.volumeMounts).toContainEqual({ name: 'run', mountPath: runDir });
  });

  test('drain.sh signals the pid PgBouncer writes to its pidfile', () => {
    const objects = objectsOf();
    expect(drainScript(objects)).toContain('pid=$(cat "$PGBOUNCER_RUN_DIR/pgbouncer.pid")');
    expect(drainScript(objects)).toContain('kill -INT "$pid"');
    expect(iniValue(pgbouncerIni(objects), 'pidfile')).toBe(`${envOf(pgbouncerContainer(objects), 'PGBOUNCER_RUN_DIR')}/pgbouncer.pid`);
  });

  test('preStop runs drain.sh', () => {
    expect(pgbouncerContainer(objectsOf()).lifecycle.preStop.exec.command).toEqual(['/bin/sh', '/etc/pgbouncer/drain.sh']);
  });

  test('the drain delay is 5 seconds by default and follows drainDelay', () => {
    expect(envOf(pgbouncerContainer(objectsOf()), 'DRAIN_DELAY_SECONDS')).toBe('5');
    expect(envOf(pgbouncerContainer(objectsOf({ drainDelay: Duration.seconds(15) })), 'DRAIN_DELAY_SECONDS')).toBe('15');
  });

  test('terminationGracePeriodSeconds is 60 by default and follows terminationGracePeriod', () => {
    expect(podSpec(objectsOf()).terminationGracePeriodSeconds).toBe(60);
    expect(podSpec(objectsOf({ terminationGracePeriod: Duration.minutes(5) })).terminationGracePeriodSeconds).toBe(300);
  });

  // The `run` emptyDir outlives the container: a drain marker left by a liveness restart would
  // keep the pod unready, and a stale pidfile holding PID 1 makes PgBouncer (PID 1 again) refuse
  // to start. The container's start script clears both before it execs PgBouncer.
  test('the container starts through start.sh, which clears the drain marker and the pidfile first', () => {
    const objects = objectsOf();
    const container = pgbouncerContainer(objects);
    expect(container.command).toEqual(['/bin/sh', '/etc/pgbouncer/start.sh', '/etc/pgbouncer/pgbouncer.ini']);
    const start = configFile(objects, 'start.sh');
    const runDir = envOf(container, 'PGBOUNCER_RUN_DIR');
    expect(`${runDir}/draining`).toBe(container.readinessProbe.exec.command[3]);
    expect(`${runDir}/pgbouncer.pid`).toBe(iniValue(pgbouncerIni(objects), 'pidfile'));
    expect(start).toContain('rm -f -- "$PGBOUNCER_RUN_DIR/draining" "$PGBOUNCER_RUN_DIR/pgbouncer.pid"');
    expect(start.indexOf('rm -f')).toBeLessThan(start.indexOf('exec pgbouncer "$1"'));
  });
});

describe('config checksum', () => {
  test('is a sha256 hex digest', () => {
    expect(checksum(objectsOf())).toMatch(/^[0-9a-f]{64}$/);
  });

  test('is identical for identical props', () => {
    expect(checksum(objectsOf({ defaultPoolSize: 30 }))).toBe(checksum(objectsOf({ defaultPoolSize: 30 })));
  });

  test('changes when a setting changes', () => {
    expect(checksum(objectsOf({ defaultPoolSize: 30 }))).not.toBe(checksum(objectsOf({ defaultPoolSize: 31 })));
  });

  test('changes when the userlist changes', () => {
    expect(checksum(objectsOf({ users: [{ secretName: 'a' }] }))).not.toBe(checksum(objectsOf({ users: [{ secretName: 'a' }, { secretName: 'b' }] })));
  });

  test('changes when TLS changes, on the pooler or on its backend', () => {
    expect(checksum(objectsOf())).not.toBe(checksum(objectsOf({ tls: { disabled: true } })));
    expect(checksum(objectsOf())).not.toBe(checksum(objectsOf({}, { backendTls: true })));
    expect(checksum(objectsOf())).not.toBe(checksum(objectsOf({}, { backendPlaintext: true })));
  });
});

describe('serverConnectionDemand', () => {
  const demand = (props: Props) => synth(props).pooler.serverConnectionDemand;

  test('is 2 x (20 for the auth_query role + 20 for the auth user\'s own pool) for the default wildcard', () => {
    expect(demand({})).toBe(80);
  });

  test('is replicas x (pool size for each pooled role and the auth user + reserve for each of them)', () => {
    expect(demand({ replicas: 3, defaultPoolSize: 10, reservePoolSize: 5 })).toBe(3 * (10 + 10 + 2 * 5));
  });

  test('counts a pool for each of the users and each of the authQueryRoles', () => {
    expect(demand({ users: [{ secretName: 'a' }, { secretName: 'b' }], authQueryRoles: 3, defaultPoolSize: 4 })).toBe(2 * (5 * 4 + 4));
    expect(demand({ authUser: undefined, users: [{ secretName: 'a' }, { secretName: 'b' }], defaultPoolSize: 4 })).toBe(2 * 2 * 4);
  });

  test('maxDbConnections caps all pools of a database when it is lower than they add up to', () => {
    expect(demand({ maxDbConnections: 8 })).toBe(16);
    expect(demand({ maxDbConnections: 100, defaultPoolSize: 10 })).toBe(2 * 20);
  });

  test('maxUserConnections caps each user\'s pool and reserve', () => {
    expect(demand({ maxUserConnections: 12, reservePoolSize: 5 })).toBe(2 * (12 + 12));
    expect(demand({ maxUserConnections: 22, reservePoolSize: 5 })).toBe(2 * (20 + 20 + 2 * 2));
  });

  test('minPoolSize adds nothing: it fills within the pool size', () => {
    expect(demand({ minPoolSize: 20 })).toBe(demand({}));
  });

  test('sums per-database demands, overrides and caps included', () => {
    expect(demand({
      reservePoolSize: 2,
      databases: [{ name: 'a', poolSize: 10 }, { name: 'b', maxDbConnections: 5 }, { name: 'c' }],
    })).toBe(2 * ((10 + 10 + 2 * 2) + 5 + (20 + 20 + 2 * 2)));
  });

  test('a per-database maxDbConnections wins over the pooler\'s', () => {
    expect(demand({ maxDbConnections: 30, databases: [{ name: 'a', poolSize: 50 }, { name: 'b', maxDbConnections: 5 }] })).toBe(2 * (30 + 5));
  });

  test('scales with replicas', () => {
    expect(demand({ replicas: 1 })).toBe(40);
    expect(demand({ replicas: 5, defaultPoolSize: 10 })).toBe(100);
  });
});

describe('scripts', () => {
  const variants: Array<[string, Props]> = [
    ['an auth user', {}],
    ['users only', { authUser: undefined, users: [{ secretName: 'app-user' }, { secretName: 'reporting' }] }],
    ['an auth user and users', { users: [{ secretName: 'app-user' }] }],
  ];

  test.each(variants)('userlist.sh with %s is POSIX sh and shellcheck-clean', (_what, props) => {
    const script = userlistScript(objectsOf(props));
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
  });

  test('drain.sh is POSIX sh and shellcheck-clean', () => {
    const script = drainScript(objectsOf());
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
  });

  test('the auth user\'s name is checked before it goes into the included ini file', () => {
    const script = userlistScript(objectsOf());
    expect(script.indexOf('*[!A-Za-z0-9_.-]*')).toBeGreaterThan(0);
    // Read into a variable first: under set -e, a failing $(...) inside an argument would not stop the script.
    expect(script).toContain('auth_user=$(role_name auth-user)');
    expect(script.indexOf('*[!A-Za-z0-9_.-]*')).toBeLessThan(script.indexOf('auth_user=$(role_name auth-user)'));
  });
});

describe('schema validation', () => {
  const variations: Array<[string, Props, Options]> = [
    ['a default pooler', {}, {}],
    ['a single replica with users only and no namespace', { replicas: 1, authUser: undefined, users: [{ secretName: 'app-user' }] }, { namespace: null }],
    ['an ExternalPostgres backend', { target: EndpointRole.READ_ONLY }, { backend: 'external' }],
    ['TLS not required in front of an ExternalPostgres with a CA', { tls: { required: false } }, { backend: 'external', backendTls: true }],
    ['a fully configured pooler', {
      name: 'orders-pooler',
      replicas: 3,
      port: 6543,
      image: 'registry.example/pgbouncer:1.25.1',
      runAsUser: 1000,
      users: [{ secretName: 'app-user', usernameKey: 'user', passwordKey: 'pass' }],
      authType: PgBouncerAuthType.SCRAM_SHA_256,
      adminUsers: ['pgbouncer_admin'],
      statsUsers: ['exporter'],
      databases: [
        { name: 'orders', dbname: 'orders_prod', poolSize: 10, poolMode: PoolMode.SESSION, maxDbConnections: 15 },
        { name: 'reports', target: EndpointRole.READ_ONLY },
      ],
      poolMode: PoolMode.TRANSACTION,
      maxClientConn: 5000,
      defaultPoolSize: 25,
      minPoolSize: 5,
      reservePoolSize: 5,
      reservePoolTimeout: Duration.seconds(3),
      maxDbConnections: 50,
      maxUserConnections: 40,
      serverIdleTimeout: Duration.minutes(5),
      serverLifetime: Duration.hours(2),
      queryWaitTimeout: Duration.seconds(30),
      idleTransactionTimeout: Duration.minutes(1),
      maxPreparedStatements: 100,
      extraSettings: { server_check_delay: '10', auth_dbname: 'postgres' },
      tls: { secretName: 'pooler-tls', issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } },
      resources: { cpuRequest: '250m', cpuLimit: '2', memoryRequest: '128Mi', memoryLimit: '256Mi' },
      spread: PodSpread.REQUIRED,
      drainDelay: Duration.seconds(10),
      terminationGracePeriod: Duration.minutes(2),
      labels: { 'team': 'payments', 'example.com/tier': 'db' },
    }, { namespace: 'prod', backendTls: true }],
  ];
  const versions: KubeVersion[] = ['v1.27.0', 'v1.36.0'];
  const cases = variations.flatMap(([what, props, options]) => versions.map((version) => [what, version, props, options] as const));

  test.each(cases)('%s validates strictly against Kubernetes %s', (_what, version, props, options) => {
    const objects = objectsOf(props, options);
    expect(objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === 'pgbouncer').length).toBeGreaterThanOrEqual(4);
    expect(validateManifests(objects, version)).toEqual([]);
  });
});
