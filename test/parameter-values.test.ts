import {
  BackupRepository, ExternalPostgres, IssuerKind, MemoryCheck, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster,
} from '../lib';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { synthObjects, testChart } from './support/synth';
import { postgresVersion } from '../lib/core/postgres-versions';
import { gucSyntax, rint, strtod, strtol } from '../lib/core/setting-values';
import { pgbouncerSettingType, pgbouncerSyntax } from '../lib/pooler/pgbouncer-parameters';

/**
 * Values of typed enum props and of the escape hatches (extraParameters, extraSettings) are
 * checked as the daemon reads them, against version data: PostgreSQL 15's pg_settings, PgBouncer
 * 1.18's CF_ table, Pgpool-II 4.3's pool_config_variables.c.
 */

const CLUSTER = {
  superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, memoryCheck: MemoryCheck.OFF,
};

function build(component: 'cluster' | 'pooler' | 'balancer', props: any): () => any[] {
  return () => {
    const chart = testChart('ns');
    const backend = () => new ExternalPostgres(chart, 'Backend', { readWriteService: 'db-rw', readOnlyService: 'db-ro', port: 5432, replicas: 1 });
    if (component === 'cluster') new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, ...props });
    if (component === 'pooler') new PgBouncerPooler(chart, 'Db', { backend: backend(), users: [{ secretName: 'app' }], ...props });
    if (component === 'balancer') new PgpoolBalancer(chart, 'Db', { backend: backend(), users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'srcheck' }, ...props });
    return synthObjects(chart);
  };
}

function expectRefused(component: 'cluster' | 'pooler' | 'balancer', props: any, expected: ExpectedPropError): void {
  expectPropErrorMessage(thrownMessage(build(component, props), JSON.stringify(props)), 'test/Db', expected);
}

describe('enum props take only their enum\'s values (TypeScript and JavaScript callers can pass any string)', () => {
  test.each([
    ['cluster', { settings: { walLevel: 'minimal' } }, 'settings.walLevel', '"minimal"', /WalLevel.REPLICA \("replica"\), WalLevel.LOGICAL \("logical"\)/],
    ['cluster', { settings: { synchronousCommit: 'yes please' } }, 'settings.synchronousCommit', '"yes please"', /"remote_apply"/],
    ['cluster', { volumeRetention: 'keep' }, 'volumeRetention', '"keep"', /VolumeRetention.RETAIN/],
    ['cluster', { tls: { issuer: { name: 'ca', kind: 'Vault' } } }, 'tls.issuer.kind', '"Vault"', /"ClusterIssuer"/],
    ['pooler', { poolMode: 'TRANSACTION ' }, 'poolMode', '"TRANSACTION "', /"transaction"/],
    ['pooler', { authType: 'trust' }, 'authType', '"trust"', /"scram-sha-256"/],
    ['pooler', { databases: [{ name: 'app', poolMode: 'x' }] }, 'databases[0].poolMode', '"x"', /"session"/],
    ['balancer', { disableLoadBalanceOnWrite: 'sometimes' }, 'disableLoadBalanceOnWrite', '"sometimes"', /"dml_adaptive"/],
  ] as const)('%s %j', (component, props, prop, value, fix) => expectRefused(component, props, { prop, value, fix }));

  test('the enum\'s own values pass', () => {
    expect(build('cluster', { tls: { issuer: { name: 'ca', kind: IssuerKind.CLUSTER_ISSUER } } })).not.toThrow();
  });
});

describe('cluster settings bounded by the server', () => {
  test.each([
    [{ settings: { maxWalSenders: 262144 } }, 'settings.maxWalSenders', '262144', /from 0 to 262143/],
    [{ settings: { maxReplicationSlots: 2 ** 31 } }, 'settings.maxReplicationSlots', '2147483648', /from 0 to 262143/],
    [{ settings: { sharedPreloadLibraries: ['pg_stat_statements', "it's"] } }, 'settings.sharedPreloadLibraries[1]', '"it\'s"', /pg_stat_statements/],
    [{ resources: { memoryLimit: '1Ei' } }, 'resources.memoryLimit', '"1Ei"', /at most "64Ti"/],
  ])('%j', (props, prop, value, fix) => expectRefused('cluster', props, { prop, value, fix }));

  test('library names and the largest memory limit pass', () => {
    expect(build('cluster', { settings: { sharedPreloadLibraries: ['pg_stat_statements', 'auto_explain', 'timescaledb'] } })).not.toThrow();
    expect(build('cluster', { resources: { memoryLimit: '64Ti' } })).not.toThrow();
  });
});

describe('extraParameters values are checked against PostgreSQL 15\'s parameter types', () => {
  test.each([
    ['log_min_duration_statement', '2147483648', /from -1 to 2147483647 \(in ms\)/],
    ['log_min_duration_statement', 'semi;colon', /write a number, optionally with a unit \(ms, s, min, h\)/],
    ['log_min_duration_statement', 'NaN', /from -1/],
    ['statement_timeout', '1kB', /in ms/],
    ['jit', 'maybe', /on or off/],
    ['log_statement', 'everything', /none, ddl, mod, all/],
    ['search_path', 'tab\there', /printable/],
    ['checkpoint_completion_target', '1.5', /from 0 to 1/],
  ])('refuses %s = %j', (parameter, value, fix) => {
    expectRefused('cluster', { extraParameters: { [parameter]: value } }, { prop: `extraParameters.${parameter}`, value: JSON.stringify(value), fix });
  });

  test('takes what PostgreSQL takes: units, booleans as it spells them, enums in any case', () => {
    expect(build('cluster', {
      extraParameters: { log_min_duration_statement: '1.5s', statement_timeout: '1min', jit: 'of', log_statement: 'DDL', temp_buffers: '16MB', search_path: 'public' },
    })).not.toThrow();
  });

  test('every parameter the cluster knows has a type', () => {
    const version = postgresVersion(15);
    expect([...version.parameters].filter((name) => version.parameterTypes[name] === undefined)).toEqual([]);
  });
});

describe('extraSettings values are checked against PgBouncer\'s setting types', () => {
  test.each([
    ['server_connect_timeout', '-1', /seconds/],
    ['server_connect_timeout', '-Infinity', /seconds/],
    ['server_connect_timeout', '1e308', /to 2147483647/],
    ['log_connections', '2', /0 or 1/],
    ['max_packet_size', 'big', /whole number/],
  ])('refuses %s = %j', (setting, value, fix) => {
    expectRefused('pooler', { extraSettings: { [setting]: value } }, { prop: `extraSettings.${setting}`, value: JSON.stringify(value), fix });
  });

  test('takes fractional seconds, flags and C integers', () => {
    expect(build('pooler', { extraSettings: { server_connect_timeout: '0.5', log_connections: '0', max_packet_size: '0x10000' } })).not.toThrow();
    const syntax = pgbouncerSyntax('1.18.0');
    const timeout = pgbouncerSettingType('server_connect_timeout');
    expect(timeout.kind === 'real' && [syntax.number('15', timeout), syntax.number('15 ', timeout), syntax.number('1e3', timeout)]).toEqual([15, undefined, 1000]);
  });
});

describe('extraParameters values are checked against Pgpool-II 4.3\'s parameter types', () => {
  test.each([
    ['search_primary_node_timeout', '-1', /from 0 to 2147483647 \(in s\)/],
    ['search_primary_node_timeout', '&anchor', /optionally with a unit/],
    ['log_per_node_statement', 'maybe', /on or off/],
    ['log_min_messages', 'loud', /warning/],
  ])('refuses %s = %j', (parameter, value, fix) => {
    expectRefused('balancer', { extraParameters: { [parameter]: value } }, { prop: `extraParameters.${parameter}`, value: JSON.stringify(value), fix });
  });

  test('takes units and enums in any case', () => {
    expect(build('balancer', { extraParameters: { search_primary_node_timeout: '1min', log_min_messages: 'WARNING' } })).not.toThrow();
  });
});

describe('Secret keys and names', () => {
  const backup = (credentials: any) => ({
    image: 'percona/percona-distribution-postgresql:15.15-1', runAsUser: 26, tls: { issuer: { name: 'ca' } },
    backup: { repositories: [BackupRepository.s3({ bucket: 'db-backups', endpoint: 's3.example.com', region: 'eu', credentials })] },
  });

  test.each([
    [{ secretName: 's3', accessKeyIdKey: '..hidden' }, 'backup.repositories[0].credentials.accessKeyIdKey', /letters, digits/],
    [{ secretName: 's3', secretAccessKeyKey: 'x'.repeat(254) }, 'backup.repositories[0].credentials.secretAccessKeyKey', /at most 253/],
    // A JavaScript caller can leave out a required name: refused, not a TypeError.
    [{ accessKeyIdKey: 'id' }, 'backup.repositories[0].credentials.secretName', /existing Secret/],
  ])('%j', (credentials, prop, fix) => {
    expectRefused('cluster', backup(credentials), { prop, value: '', fix });
  });
});

describe('the C number readers', () => {
  test('strtol reads decimal, hex and octal, and stops where C stops', () => {
    expect([strtol('010'), strtol('0x1f'), strtol(' +5 '), strtol('08'), strtol('x')].map(({ value, end }) => [value, end]))
      .toEqual([[8, 3], [31, 4], [5, 3], [0, 1], [0, 0]]);
    expect(strtol('9223372036854775808').overflow).toBe(true);
  });

  test('strtod reads decimal and hex floats, inf and nan; range errors past a double', () => {
    expect([strtod('1.5e3x'), strtod('0x1p3'), strtod('-Infinity'), strtod('.5')].map(({ value, end }) => [value, end]))
      .toEqual([[1500, 5], [8, 5], [-Infinity, 9], [0.5, 2]]);
    expect([strtod('1e309').range, strtod('1e-400').range, strtod('0e-400').range]).toEqual([true, true, false]);
  });

  test('rint rounds halves to even', () => {
    expect([rint(0.5), rint(1.5), rint(2.5), rint(-0.5), rint(2.4)]).toEqual([0, 2, 2, -0, 2]);
  });

  test('PostgreSQL rounds a fraction of a unit to the next smaller unit', () => {
    const type = { kind: 'integer' as const, min: 0, max: 2 ** 31 - 1, unit: 'kB' };
    expect([gucSyntax('PostgreSQL 15').number('1.5MB', type), gucSyntax('PostgreSQL 15').number('0.5kB', type)]).toEqual([1536, 0]);
  });
});
