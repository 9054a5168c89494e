import { Duration } from 'cdk8s';
import * as fc from 'fast-check';
import { ExternalPostgres, IPostgresEndpoint, PgBouncerPooler, PgBouncerPoolerProps, PoolMode, PostgresStatefulCluster, SslMode, MemoryCheck } from '../lib';
import { describeDeploymentNameAndReplicas, describeWorkloadProps } from './support/common-props';
import { validateManifests } from './support/kube-schema';
import { ExpectedPropError, escapeRegExp, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { findObject, synthObjects, testChart } from './support/synth';
import { PGBOUNCER_PARAMETERS } from '../lib/pooler/pgbouncer-parameters';

type Props = Partial<PgBouncerPoolerProps>;
type BackendKind = 'cluster' | 'external';

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};
/** A cluster with room for any pool size: this file tests the proxy, test/connection-budget.test.ts the budget. */
// A backend no consumer can overbook, for tests of the consumers themselves.
const CLUSTER = { ...SECRETS, settings: { maxConnections: 100_000 }, memoryCheck: MemoryCheck.OFF };
const AUTH_USER = { secretName: 'pooler-auth' };

/**
 * Synthesizes a pooler `Pooler` (path `test/Pooler`) in front of a cluster `Db`, with an auth
 * user unless the props say otherwise, and returns the chart's objects. With `backendTls`, the
 * cluster has the tls Secret `db-tls` (its CA), the ExternalPostgres the certificateAuthority `db-ca`.
 */
describe('the backend\'s superuser Secret', () => {
  test.each([
    ['authUser', { authUser: SECRETS.superuserSecret }, 'authUser.secretName'],
    ['a user', { authUser: undefined, users: [{ secretName: 'app' }, SECRETS.superuserSecret] }, 'users[1].secretName'],
  ] as const)('is refused as %s, in front of a cluster or an ExternalPostgres', (_what, props, prop) => {
    for (const backendKind of ['cluster', 'external'] as const) {
      expectPropError(props as Props, { prop, value: '"pg-superuser"', fix: /Secret of an ordinary role/ }, backendKind);
    }
  });
});

function synth(props: Props = {}, backendKind: BackendKind = 'cluster', backendTls = false): any[] {
  const chart = testChart();
  const backend: IPostgresEndpoint = backendKind === 'cluster'
    ? new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, ...(backendTls ? { tls: { secretName: 'db-tls' } } : {}) })
    : new ExternalPostgres(chart, 'Db', {
      readWriteService: 'db-rw', readOnlyService: 'db-ro', superuserSecret: SECRETS.superuserSecret,
      ...(backendTls ? { certificateAuthority: { secretName: 'db-ca' } } : {}),
    });
  new PgBouncerPooler(chart, 'Pooler', { backend, authUser: AUTH_USER, ...props });
  return synthObjects(chart);
}

/** The message of the error synthesizing these props throws; fails the test when none is thrown. */
function errorMessage(props: Props, backendKind: BackendKind = 'cluster', backendTls = false): string {
  return thrownMessage(() => synth(props, backendKind, backendTls), JSON.stringify(props));
}

/** Asserts the error names the construct path, the prop, the bad value and a fix; returns the message. */
function expectPropError(props: Props, expected: ExpectedPropError, backendKind: BackendKind = 'cluster', backendTls = false): string {
  const message = errorMessage(props, backendKind, backendTls);
  expectPropErrorMessage(message, 'test/Pooler', expected);
  return message;
}

/** Asserts the props synthesize into objects the v1.27 API server schema accepts. */
function expectValid(props: Props, backendKind: BackendKind = 'cluster', backendTls = false): any[] {
  const objects = synth(props, backendKind, backendTls);
  expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  return objects;
}

const pgbouncerIni = (objects: any[]): string => findObject(objects, 'ConfigMap', 'pooler-config').data['pgbouncer.ini'];
const iniValue = (ini: string, key: string) => new RegExp(`^${escapeRegExp(key)} = (.*)$`, 'm').exec(ini)?.[1];

describeDeploymentNameAndReplicas(expectPropError, expectValid);

describe('name from the construct id', () => {
  test('rejects a construct id whose kebab-case is not a DNS-1035 label', () => {
    const chart = testChart();
    const backend = new PostgresStatefulCluster(chart, 'Db', CLUSTER);
    expect(() => new PgBouncerPooler(chart, '2ndPooler', { backend, authUser: AUTH_USER }))
      .toThrow(/^test\/2ndPooler: name "2nd-pooler" is not a DNS-1035 label; use lower-case letters/);
  });
});

describe('pgbouncerVersion, image, runAsUser and port', () => {
  test.each(['v1.25.1', '1', '1.25.x', '1.25.1-p0', ''])('rejects pgbouncerVersion %p', (pgbouncerVersion) => {
    expectPropError({ pgbouncerVersion }, { prop: 'pgbouncerVersion', value: JSON.stringify(pgbouncerVersion), fix: /"1\.25\.1"/ });
  });

  test.each(['1.18', '1.18.0', '1.25.1'])('accepts pgbouncerVersion %p', (pgbouncerVersion) => {
    expectValid({ pgbouncerVersion });
  });

  test.each(['edoburu/pgbouncer: v1', ''])('rejects image %p', (image) => {
    expectPropError({ image }, { prop: 'image', value: JSON.stringify(image), fix: /edoburu\/pgbouncer/ });
  });

  test('rejects runAsUser 0 (root)', () => {
    expectPropError({ runAsUser: 0 }, { prop: 'runAsUser', value: '0', fix: /whole number from 1/ });
  });

  test.each([0, 65536, 5432.5, -1])('rejects port %p', (port) => {
    expectPropError({ port }, { prop: 'port', value: String(port), fix: /whole number from 1 to 65535/ });
  });

  test.each([1, 6543, 65535])('accepts port %p', (port) => {
    expectValid({ port });
  });
});

describe('authUser, users and authQuery', () => {
  test('rejects neither authUser nor users', () => {
    expectPropError({ authUser: undefined }, { prop: 'authUser', value: '(unset)', fix: /set authUser .*or list users/ });
  });

  test('rejects an empty users list without authUser', () => {
    expectPropError({ authUser: undefined, users: [] }, { prop: 'authUser', value: '(unset)', fix: /or list users/ });
  });

  test('accepts users without authUser', () => {
    expectValid({ authUser: undefined, users: [{ secretName: 'app-user' }] });
  });

  test.each(['external', 'cluster'] as const)('rejects a bad authUser Secret name at the pooler, with a %s backend', (backendKind) => {
    // The pooler validates authUser before it binds to its backend, so a bad Secret name is
    // reported at the pooler and its prop, not by a PostgresStatefulCluster backend as
    // "test/Db: addPasswordLookup(authUser).credentials.secretName ...".
    expectPropError({ authUser: { secretName: 'Pooler_Auth' } }, {
      prop: 'authUser.secretName', value: '"Pooler_Auth"', fix: /name of an existing Secret/,
    }, backendKind);
  });

  test('rejects a bad authUser key at the pooler', () => {
    // Same ordering as above: authUser is validated before the backend sees it.
    expectPropError({ authUser: { secretName: 'pooler-auth', passwordKey: 'pass/word' } }, {
      prop: 'authUser.passwordKey', value: '"pass/word"', fix: /letters, digits/,
    });
  });

  test('rejects a bad Secret name among users, naming its index', () => {
    expectPropError({ users: [{ secretName: 'app-user' }, { secretName: 'App_User' }] }, {
      prop: 'users[1].secretName', value: '"App_User"', fix: /name of an existing Secret/,
    });
  });

  test('rejects a bad users key', () => {
    expectPropError({ users: [{ secretName: 'app-user', usernameKey: 'user name' }] }, {
      prop: 'users[0].usernameKey', value: '"user name"', fix: /letters, digits/,
    });
  });

  test('rejects an authQuery without $1', () => {
    const authQuery = 'SELECT usename, passwd FROM pg_shadow';
    expectPropError({ authQuery }, { prop: 'authQuery', value: JSON.stringify(authQuery), fix: /for \$1/ });
  });

  test('rejects an authQuery without authUser', () => {
    const authQuery = 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1';
    expectPropError({ authUser: undefined, users: [{ secretName: 'app-user' }], authQuery }, {
      prop: 'authQuery', value: JSON.stringify(authQuery), fix: /set authUser/,
    });
  });

  test('rejects authQueryRoles without authUser, and a count below 1', () => {
    expectPropError({ authUser: undefined, users: [{ secretName: 'app-user' }], authQueryRoles: 2 }, {
      prop: 'authQueryRoles', value: '2', fix: /set authUser, or drop authQueryRoles/,
    });
    expectPropError({ authQueryRoles: 0 }, { prop: 'authQueryRoles', value: '0', fix: /whole number from 1 to 10000/ });
  });

  test('accepts a custom authQuery with $1 and authUser', () => {
    expectValid({ authQuery: 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1' });
  });

  // An authQuery written over two lines (natural in a template literal) would be rendered as
  // is into pgbouncer.ini, and PgBouncer stops at its second line ("syntax error in
  // configuration"): a line break is refused, besides the check for $1.
  test('rejects an authQuery with a line break', () => {
    const authQuery = 'SELECT usename, passwd\nFROM pgbouncer.get_auth($1)';
    expectPropError({ authQuery }, { prop: 'authQuery', value: JSON.stringify(authQuery), fix: /line/ });
  });
});

describe('adminUsers, statsUsers and ignoreStartupParameters', () => {
  const badNames = ['bad name', 'exporter;', '', '1abc', 'x'.repeat(64)];
  const cases = (['adminUsers', 'statsUsers'] as const).flatMap((prop) => badNames.map((name) => [prop, name] as const));

  test.each(cases)('rejects %s %p', (prop, name) => {
    expectPropError({ [prop]: ['pgbouncer_admin', name] }, { prop, value: JSON.stringify(name), fix: /letters, digits and "_"/ });
  });

  test('accepts plain role names', () => {
    expectValid({ adminUsers: ['pgbouncer_admin'], statsUsers: ['exporter', 'Monitoring_2'] });
  });

  test('rejects an ignoreStartupParameters entry that is not a name', () => {
    expectPropError({ ignoreStartupParameters: ['extra_float_digits', 'search path'] }, {
      prop: 'ignoreStartupParameters', value: '"search path"', fix: /letters, digits and "_"/,
    });
  });
});

describe('pool sizes and connection caps', () => {
  test.each([
    ['defaultPoolSize', 0, /from 1 to 2147483647/],
    ['defaultPoolSize', 2.5, /from 1 to 2147483647/],
    ['maxClientConn', 0, /from 1 to 2147483647/],
    ['maxDbConnections', 0, /from 1 to 2147483647/],
    ['maxUserConnections', 0, /from 1 to 2147483647/],
    ['reservePoolSize', -1, /from 0 to 2147483647/],
    ['minPoolSize', -1, /from 0 to 2147483647/],
    ['maxPreparedStatements', -1, /from 0 to 2147483647/],
  ] as const)('rejects %s %p', (prop, value, fix) => {
    expectPropError({ [prop]: value }, { prop, value: String(value), fix });
  });

  test('rejects minPoolSize above the default defaultPoolSize of 20', () => {
    expectPropError({ minPoolSize: 21 }, { prop: 'minPoolSize', value: '21', fix: /lower minPoolSize or raise defaultPoolSize/ });
  });

  test('rejects minPoolSize above a given defaultPoolSize', () => {
    const message = expectPropError({ defaultPoolSize: 5, minPoolSize: 6 }, {
      prop: 'minPoolSize', value: '6', fix: /lower minPoolSize or raise defaultPoolSize/,
    });
    expect(message).toContain('defaultPoolSize 5');
  });

  test('accepts minPoolSize equal to defaultPoolSize', () => {
    expectValid({ defaultPoolSize: 5, minPoolSize: 5 });
  });

  test('accepts reservePoolSize 0', () => {
    expectValid({ reservePoolSize: 0 });
  });

  // PgBouncer keeps these settings in a C int (libusual's cf_set_int, strtol): 2^31 overflows,
  // so larger whole numbers would wrap or fail. The pooler refuses anything above 2^31 - 1,
  // where a plain integer check would let numbers up to Number.MAX_SAFE_INTEGER through.
  test.each([
    ['maxClientConn', 2 ** 31, '2147483648'],
    ['defaultPoolSize', 2 ** 40, '1099511627776'],
  ] as const)('rejects %s %p, beyond PgBouncer\'s int settings', (prop, value, shown) => {
    expectPropError({ [prop]: value }, { prop, value: shown, fix: /./ });
  });
});

describe('maxPreparedStatements', () => {
  test('is refused with pgbouncerVersion 1.18.0, naming 1.21', () => {
    const message = expectPropError({ maxPreparedStatements: 100, pgbouncerVersion: '1.18.0' }, {
      prop: 'maxPreparedStatements', value: '100', fix: /pgbouncerVersion|drop maxPreparedStatements/,
    });
    expect(message).toMatch(/1\.21/);
    expect(message).toContain('1.18.0');
  });

  test('is accepted with the default version and rendered', () => {
    const objects = expectValid({ maxPreparedStatements: 100 });
    expect(iniValue(pgbouncerIni(objects), 'max_prepared_statements')).toBe('100');
  });

  test('is accepted with pgbouncerVersion 1.21.0', () => {
    expectValid({ maxPreparedStatements: 100, pgbouncerVersion: '1.21.0' });
  });
});

describe('durations', () => {
  const durationProps = [
    'reservePoolTimeout', 'serverIdleTimeout', 'serverLifetime', 'queryWaitTimeout', 'idleTransactionTimeout',
    'drainDelay', 'terminationGracePeriod',
  ] as const;

  test.each(durationProps)('rejects %s of 15.5 seconds', (prop) => {
    expectPropError({ [prop]: Duration.millis(15500) }, { prop, value: '"15500ms"', fix: /Duration\.seconds/ });
  });

  test.each(['reservePoolTimeout', 'serverIdleTimeout', 'serverLifetime', 'queryWaitTimeout', 'idleTransactionTimeout'] as const)(
    'rejects %s past 2^31 - 1 seconds, which PgBouncer would read as 0', (prop) => {
      expectPropError({ [prop]: Duration.seconds(1e15) }, { prop, value: '1000000000000000', fix: /whole number from 0 to 2147483647/ });
      expectValid({ [prop]: Duration.seconds(2 ** 31 - 1) });
    });

  test.each(durationProps)('accepts %s of whole seconds in other units', (prop) => {
    expectValid({ [prop]: prop === 'drainDelay' ? Duration.seconds(10) : Duration.minutes(1) });
  });

  test('rejects a drainDelay that leaves less than 5 seconds of the default 60-second grace period', () => {
    expectPropError({ drainDelay: Duration.seconds(56) }, { prop: 'drainDelay', value: '56', fix: /at most 55 s, or raise terminationGracePeriod/ });
  });

  test('rejects a drainDelay longer than the grace period', () => {
    expectPropError({ drainDelay: Duration.seconds(60), terminationGracePeriod: Duration.seconds(30) }, {
      prop: 'drainDelay', value: '60', fix: /at most 25 s, or raise terminationGracePeriod/,
    });
  });

  test('accepts the longest drainDelay the grace period allows', () => {
    expectValid({ drainDelay: Duration.seconds(25), terminationGracePeriod: Duration.seconds(30) });
  });

  test('accepts a drainDelay of 0', () => {
    expectValid({ drainDelay: Duration.seconds(0) });
  });

  test.each([
    ['9 seconds', Duration.seconds(9), '9'],
    ['3601 seconds', Duration.seconds(3601), '3601'],
    ['2 hours', Duration.hours(2), '7200'],
  ])('rejects terminationGracePeriod of %s', (_what, terminationGracePeriod, shown) => {
    expectPropError({ terminationGracePeriod }, { prop: 'terminationGracePeriod', value: shown, fix: /whole number from 10 to 3600/ });
  });

  test.each([
    ['10 seconds', Duration.seconds(10)],
    ['1 hour', Duration.hours(1)],
  ])('accepts terminationGracePeriod of %s', (_what, terminationGracePeriod) => {
    expectValid({ terminationGracePeriod, drainDelay: Duration.seconds(5) });
  });
});

describe('extraSettings', () => {
  test('rejects an unknown name', () => {
    expectPropError({ extraSettings: { max_client_connections: '100' } }, {
      prop: 'extraSettings', value: '"max_client_connections"', fix: /check the spelling/,
    });
  });

  test.each(['constructor', '__defineGetter__', 'toString'])('reports %s as unknown', (name) => {
    expectPropError({ extraSettings: { [name]: '1' } }, { prop: 'extraSettings', value: JSON.stringify(name), fix: /check the spelling/ });
  });

  test.each([
    ['listen_port', /use port/],
    ['listen_addr', /use nothing/],
    ['auth_file', /use users/],
    ['auth_user', /use authUser/],
    ['pidfile', /drain script/],
    ['unix_socket_dir', /probes|drain script/],
    ['logfile', /stderr/],
    ['client_tls_key_file', /use tls$/],
    ['client_tls_cert_file', /use tls$/],
    ['server_tls_ca_file', /use the backend's tls \(or an ExternalPostgres' certificateAuthority\)$/],
  ])('rejects the managed setting %s', (name, fix) => {
    expectPropError({ extraSettings: { [name]: 'x' } }, { prop: `extraSettings.${name}`, value: '"x"', fix });
  });

  test.each([
    ['client_tls_protocols', 'tlsv1.0', /set by the construct/, /use tls\.minimumProtocolVersion$/],
    ['client_tls_ciphers', 'ALL:eNULL', /carries the TLS the construct secures/, /use tls \(tls\.minimumProtocolVersion TLS_1_3/],
    ['client_tls_ca_file', '/tmp/ca', /carries the TLS/, /use tls/],
    ['client_tls_dheparams', 'legacy', /carries the TLS/, /use tls/],
    ['server_tls_protocols', 'tlsv1.0', /older TLS to the backend/, /use nothing: TLS 1\.2 and 1\.3/],
    ['server_tls_ciphers', 'ALL:eNULL', /carries the TLS/, /use serverTlsMode and the backend's tls$/],
    ['server_tls_cert_file', '/tmp/c', /carries the TLS/, /use serverTlsMode/],
    ['auth_hba_file', '/tmp/hba', /who logs in/, /use authType/],
    ['auth_ident_file', '/tmp/ident', /map system users/, /use authType$/],
    ['unix_socket_mode', '0777', /set by the construct/, /socket/],
    ['user', 'root', /switch users/, /use runAsUser$/],
  ])('refuses %s = %s, naming the prop to use', (name, value, problem, fix) => {
    const message = expectPropError({ extraSettings: { [name]: value } }, { prop: `extraSettings.${name}`, value: JSON.stringify(value), fix });
    expect(message.slice(0, message.indexOf(';'))).toMatch(problem);
  });

  test.each([
    ['auth_type', 'trust', /use authType$/],
    ['admin_users', 'app', /use adminUsers$/],
    ['stats_users', 'app', /use statsUsers$/],
  ])('points the authentication setting %s to its typed prop', (name, value, fix) => {
    expectPropError({ extraSettings: { [name]: value } }, { prop: `extraSettings.${name}`, value: JSON.stringify(value), fix });
  });

  // PgBouncer reads a value to the end of its line and trims it; `;` and `#` in it are not
  // comments (checked with PgBouncer 1.18: `server_reset_query = DISCARD ALL ; # x` keeps both).
  test.each([' DISCARD ALL', 'DISCARD ALL ', '\tDISCARD ALL'])('refuses a value with white space at an end, which PgBouncer trims: %j', (value) => {
    expectPropError({ extraSettings: { server_reset_query: value } }, {
      prop: 'extraSettings.server_reset_query', value: JSON.stringify(value), fix: /remove it/,
    });
  });

  test('keeps ; and # inside a value, which PgBouncer reads as the value\'s own', () => {
    const ini = pgbouncerIni(expectValid({ extraSettings: { server_reset_query: 'DISCARD ALL; SELECT 1 # done' } }));
    expect(ini).toContain('server_reset_query = DISCARD ALL; SELECT 1 # done\n');
  });

  test.each([
    ['pool_mode', 'session', /use poolMode/],
    ['default_pool_size', '50', /use defaultPoolSize/],
    ['auth_query', 'SELECT 1', /use authQuery/],
    ['server_tls_sslmode', 'require', /use serverTlsMode/],
    ['client_tls_sslmode', 'require', /use tls\.required$/],
    ['ignore_startup_parameters', 'search_path', /use ignoreStartupParameters/],
  ])('points %s to its typed prop', (name, value, fix) => {
    expectPropError({ extraSettings: { [name]: value } }, { prop: `extraSettings.${name}`, value: JSON.stringify(value), fix });
  });

  test('refuses max_prepared_statements with 1.18.0 as a typed prop', () => {
    expectPropError({ pgbouncerVersion: '1.18.0', extraSettings: { max_prepared_statements: '100' } }, {
      prop: 'extraSettings.max_prepared_statements', value: '"100"', fix: /use maxPreparedStatements/,
    });
  });

  test('refuses auth_dbname with pgbouncerVersion 1.18.0, naming 1.20', () => {
    const message = expectPropError({ pgbouncerVersion: '1.18.0', extraSettings: { auth_dbname: 'postgres' } }, {
      prop: 'extraSettings.auth_dbname', value: '"postgres"', fix: /pgbouncerVersion/,
    });
    expect(message).toMatch(/1\.20/);
  });

  test('accepts auth_dbname with the default version and renders it', () => {
    const objects = expectValid({ extraSettings: { auth_dbname: 'postgres' } });
    expect(iniValue(pgbouncerIni(objects), 'auth_dbname')).toBe('postgres');
  });

  test('accepts a 1.18 setting with 1.18.0', () => {
    const objects = expectValid({ pgbouncerVersion: '1.18.0', extraSettings: { server_check_delay: '10', log_connections: '0' } });
    expect(iniValue(pgbouncerIni(objects), 'server_check_delay')).toBe('10');
  });

  // The known PgBouncer settings follow the default version, 1.25.1:
  // max_db_client_connections and max_user_client_connections (1.24.0) and
  // transaction_timeout (1.25.0) are accepted, not refused as "not a PgBouncer setting".
  test.each(['max_db_client_connections', 'max_user_client_connections', 'transaction_timeout'])(
    'accepts %s, a setting of the default PgBouncer 1.25.1', (name) => {
      const objects = expectValid({ extraSettings: { [name]: '100' } });
      expect(iniValue(pgbouncerIni(objects), name)).toBe('100');
    });

  test('refuses max_db_client_connections before 1.24, naming 1.24', () => {
    const message = expectPropError({ pgbouncerVersion: '1.23.1', extraSettings: { max_db_client_connections: '100' } }, {
      prop: 'extraSettings.max_db_client_connections', value: '"100"', fix: /pgbouncerVersion/,
    });
    expect(message).toMatch(/1\.24/);
  });

  test.each([
    ['a line break', '1\nlisten_port = 5432'],
    ['a carriage return', '1\rlisten_port = 5432'],
    ['a NUL', '1\0'],
  ])('rejects a value with %s', (_what, value) => {
    expectPropError({ extraSettings: { server_check_delay: value } }, {
      prop: 'extraSettings.server_check_delay', value: JSON.stringify(value), fix: /single-line value/,
    });
  });
});

describe('databases', () => {
  test('rejects an empty list', () => {
    expectPropError({ databases: [] }, { prop: 'databases', value: '[]', fix: /leave databases unset for a wildcard entry/ });
  });

  test('rejects the admin console name pgbouncer', () => {
    const message = expectPropError({ databases: [{ name: 'pgbouncer' }] }, {
      prop: 'databases[0].name', value: '"pgbouncer"', fix: /choose another name/,
    });
    expect(message).toMatch(/admin console/);
  });

  test('rejects a duplicate, naming the second one', () => {
    const message = expectPropError({ databases: [{ name: 'orders' }, { name: 'orders', poolSize: 5 }] }, {
      prop: 'databases[1].name', value: '"orders"', fix: /choose another name/,
    });
    expect(message).toMatch(/listed twice/);
  });

  test.each(['my-db', 'my db', '1db', '', '*', 'orders;x', 'd'.repeat(64)])('rejects the name %p', (name) => {
    expectPropError({ databases: [{ name: 'ok' }, { name }] }, {
      prop: 'databases[1].name', value: JSON.stringify(name), fix: /letters, digits and "_"/,
    });
  });

  test('rejects a bad dbname', () => {
    expectPropError({ databases: [{ name: 'orders', dbname: 'orders prod' }] }, {
      prop: 'databases[0].dbname', value: '"orders prod"', fix: /letters, digits and "_"/,
    });
  });

  test.each([
    ['poolSize', 0],
    ['poolSize', 1.5],
    ['maxDbConnections', 0],
  ] as const)('rejects a per-database %s of %p', (field, value) => {
    expectPropError({ databases: [{ name: 'orders', [field]: value }] }, {
      prop: `databases[0].${field}`, value: String(value), fix: /from 1 to 2147483647/,
    });
  });

  test('accepts plain names, upper case included', () => {
    expectValid({ databases: [{ name: 'orders' }, { name: 'Reports_2', dbname: 'reports' }] });
  });
});

describe('TLS', () => {
  test.each(['cluster', 'external'] as const)('rejects serverTlsMode VERIFY_FULL and VERIFY_CA without a CA on the backend (%s)', (backendKind) => {
    for (const serverTlsMode of [SslMode.VERIFY_FULL, SslMode.VERIFY_CA]) {
      expectPropError({ serverTlsMode }, {
        prop: 'serverTlsMode', value: JSON.stringify(serverTlsMode), fix: /set the backend's tls \(an ExternalPostgres: its certificateAuthority\), or use SslMode\.REQUIRE/,
      }, backendKind);
    }
  });

  test.each(['cluster', 'external'] as const)('accepts serverTlsMode VERIFY_FULL and VERIFY_CA with a CA on the backend (%s)', (backendKind) => {
    for (const serverTlsMode of [SslMode.VERIFY_FULL, SslMode.VERIFY_CA]) {
      expect(iniValue(pgbouncerIni(expectValid({ serverTlsMode }, backendKind, true)), 'server_tls_sslmode')).toBe(serverTlsMode);
    }
  });

  test.each(['Pooler_TLS', '-tls', 'pooler tls'])('rejects tls.secretName %p', (secretName) => {
    expectPropError({ tls: { secretName } }, { prop: 'tls.secretName', value: JSON.stringify(secretName), fix: /name of an existing Secret/ });
  });

  test.each(['Internal_CA', 'ca issuer'])('rejects tls.issuer.name %p', (name) => {
    expectPropError({ tls: { issuer: { name } } }, {
      prop: 'tls.issuer.name', value: JSON.stringify(name), fix: /name of an existing cert-manager issuer/,
    });
  });

  test('accepts tls with the strictest modes, in front of either backend with TLS', () => {
    for (const backendKind of ['cluster', 'external'] as const) {
      const ini = pgbouncerIni(expectValid({ tls: { secretName: 'pooler-tls', required: true }, serverTlsMode: SslMode.VERIFY_FULL }, backendKind, true));
      expect([iniValue(ini, 'client_tls_sslmode'), iniValue(ini, 'server_tls_sslmode')]).toEqual(['require', 'verify-full']);
    }
  });
});

describeWorkloadProps(expectPropError, expectValid);

describe('any props (property test)', () => {
  const NUM_RUNS = 300;

  /** Mostly valid values, so that both outcomes are common: weight 4 to 1. */
  const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>) =>
    fc.option(fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: other, weight: 1 }), { nil: undefined, freq: 3 });
  const count = (min: number, max: number) => mostly(
    fc.integer({ min, max }),
    fc.oneof(fc.integer({ min: -5, max: 0 }), fc.double({ min: -5, max: max + 1, noNaN: true }),
      fc.constantFrom(0.5, Number.NaN, Number.POSITIVE_INFINITY)),
  );
  const HARMLESS_SETTINGS = ['server_check_delay', 'log_connections', 'tcp_keepalive', 'client_idle_timeout', 'stats_period',
    'server_reset_query', 'application_name_add_host', 'server_connect_timeout'];
  const settingName = fc.oneof(
    { arbitrary: fc.constantFrom(...HARMLESS_SETTINGS), weight: 6 },
    { arbitrary: fc.constantFrom(...PGBOUNCER_PARAMETERS.keys()), weight: 2 },
    { arbitrary: fc.constantFrom('constructor', '__proto__', 'max_client_connections'), weight: 1 },
    { arbitrary: fc.stringMatching(/^[a-z_]{1,30}$/), weight: 1 },
    { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
  );
  const settingValue = fc.oneof(
    { arbitrary: fc.constantFrom('1', '0', '30', 'DISCARD ALL'), weight: 6 },
    { arbitrary: fc.constantFrom('x\ny', 'a\rb', 'nul\0'), weight: 1 },
    { arbitrary: fc.string({ maxLength: 20 }), weight: 2 },
  );
  const poolMode = fc.option(fc.constantFrom(...Object.values(PoolMode)), { nil: undefined });
  const props = fc.record({
    replicas: count(1, 100),
    defaultPoolSize: count(1, 500),
    reservePoolSize: count(0, 50),
    maxDbConnections: count(1, 1000),
    poolMode,
    name: mostly(fc.stringMatching(/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/),
      fc.oneof(fc.string({ maxLength: 70 }), fc.stringMatching(/^[a-z0-9-]{60,70}$/))),
    pgbouncerVersion: fc.option(fc.constantFrom('1.18.0', '1.21.0', '1.25.1'), { nil: undefined }),
    extraSettings: fc.option(fc.dictionary(settingName, settingValue, { maxKeys: 2 }), { nil: undefined, freq: 2 }),
    databases: fc.option(fc.array(fc.record({
      name: mostly(fc.constantFrom('orders', 'reports', 'Stats_2'), fc.oneof(fc.constantFrom('pgbouncer', 'my-db'), fc.string({ maxLength: 10 }))),
      poolSize: count(1, 100),
      maxDbConnections: count(1, 100),
      poolMode,
    }), { maxLength: 3 }), { nil: undefined, freq: 2 }),
  });

  test(`synthesizes strictly valid objects or throws a prop error, over ${NUM_RUNS} cases`, () => {
    const outcomes = { cases: 0, synthesized: 0, rejected: 0 };
    fc.assert(fc.property(props, (p) => {
      outcomes.cases++;
      let objects: any[];
      const databases = p.databases?.map((database) => ({ ...database, name: database.name ?? 'orders' }));
      try {
        objects = synth({ ...p, databases });
      } catch (error) {
        // Only a plain Error naming the pooler: a TypeError or RangeError is a crash.
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).constructor).toBe(Error);
        // ...or the cluster's connection budget, which names this construct in its table.
        expect((error as Error).message).toMatch(/^test\/Pooler: |^test\/Db: settings\.maxConnections \d+ leaves .*\n[^]*test\/Pooler /);
        outcomes.rejected++;
        return;
      }
      expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
      // Every line of pgbouncer.ini is one PgBouncer's ini parser reads: a comment, a section,
      // %include, or `key = value` on a single line.
      const name = p.name ?? 'pooler';
      const ini: string = findObject(objects, 'ConfigMap', `${name}-config`).data['pgbouncer.ini'];
      for (const line of ini.split('\n')) {
        expect(line).toMatch(/^(|;.*|\[(databases|pgbouncer)\]|%include \S+|[A-Za-z0-9_.*-]+ = [^\r\0]*)$/);
      }
      outcomes.synthesized++;
    }), { numRuns: NUM_RUNS });

    expect(outcomes.cases).toBe(NUM_RUNS);
    expect(outcomes.synthesized).toBeGreaterThan(0);
    expect(outcomes.rejected).toBeGreaterThan(0);
    console.log(`pooler property test: ${outcomes.cases} cases, ${outcomes.synthesized} synthesized, ${outcomes.rejected} rejected`);
  });
});
