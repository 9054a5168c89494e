import { App, Chart, Duration, Testing } from 'cdk8s';
import { AirflowStackChart } from '../examples/airflow-stack';
import { buildExamples, connectionBudgetReport } from '../examples/main';
import { PooledClusterChart } from '../examples/pooled-cluster';
import { BackupRepository, EndpointRole, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster } from '../lib';
import { synthObjects, testChart } from './support/synth';

const SECRETS = { superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' } };
const AUTH = { secretName: 'auth' };

describe('connection budget', () => {
  test('the examples fit, and their demands are readable from code', () => {
    const pooled = new PooledClusterChart(Testing.app(), 'pooled');
    // 2 pods x (20 for the clients' role + 20 for the auth user's pool), under maxDbConnections 40 per pod.
    expect(pooled.cluster._connectionDemands).toEqual([
      { consumer: 'pooled/AirflowDb settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: 1 },
      { consumer: 'pooled/AirflowPgbouncer', purpose: 'pooled users', primary: 40, replica: 0 },
      { consumer: 'pooled/AirflowPgbouncer', purpose: 'auth_query pool', primary: 40, replica: 0 },
    ]);
    expect(() => synthObjects(pooled)).not.toThrow();
    const stack = new AirflowStackChart(Testing.app(), 'stack');
    // The pooler fronts the balancer, so only the balancer's children reach the cluster, besides
    // the cluster's own exporter (the balancer's exporter logs in through a balancer child).
    expect(stack.cluster._connectionDemands).toEqual([
      { consumer: 'stack/AirflowDb settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: 1 },
      { consumer: 'stack/AirflowPgpool', purpose: 'child pools', primary: 64, replica: 64 },
      { consumer: 'stack/AirflowPgpool', purpose: 'sr_check', primary: 2, replica: 2 },
      { consumer: 'stack/AirflowPgpool', purpose: 'health check', primary: 2, replica: 2 },
      { consumer: 'stack/AirflowDb metrics exporter', purpose: 'postgres_exporter', primary: 2, replica: 2 },
    ]);
    expect(() => synthObjects(stack)).not.toThrow();
  });

  test('overbooking the primary fails synthesis with a table of who asks for how many and for what, and the fix', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, defaultPoolSize: 15, reservePoolSize: 2 });
    new PgpoolBalancer(chart, 'Balancer', { backend: cluster, users: [{ credentials: AUTH }], srCheckUser: AUTH, numInitChildren: 20 });
    const message = (() => {
      try {
        synthObjects(chart);
      } catch (error) {
        return (error as Error).message;
      }
      return 'no error';
    })();
    expect(message).toBe([
      'test/Db: settings.maxConnections 100 leaves 97 connections for ordinary roles (superuser_reserved_connections 3), fewer than its consumers may open:',
      '  consumer                for                   primary  each replica',
      '  test/Db settings agent  reload, slot cleanup        1             1',
      '  test/Pooler             pooled users               30             0',
      '  test/Pooler             reserve pool                8             0',
      '  test/Pooler             auth_query pool            30             0',
      '  test/Balancer           child pools                40            40',
      '  test/Balancer           sr_check                    2             2',
      '  test/Balancer           health check                2             2',
      '  total                                             113            45',
      '; raise settings.maxConnections to 116 or more, or lower the consumers\' pool sizes (defaultPoolSize, maxDbConnections, replicas, numInitChildren x maxPool)',
    ].join('\n'));
  });

  test('a pooler on the read-only Service counts on each replica', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, target: EndpointRole.READ_ONLY, defaultPoolSize: 25 });
    expect(cluster._connectionDemands).toEqual([
      { consumer: 'test/Db settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: 1 },
      { consumer: 'test/Pooler', purpose: 'pooled users', primary: 0, replica: 50 },
      { consumer: 'test/Pooler', purpose: 'auth_query pool', primary: 0, replica: 50 },
    ]);
    expect(() => synthObjects(chart)).toThrow(/each replica\n  test\/Db settings agent +reload, slot cleanup +1 +1\n  test\/Pooler +pooled users +0 +50\n  test\/Pooler +auth_query pool +0 +50\n  total +1 +101\n/);
  });

  test('without replicas, the read-only Service is the primary, and so is the demand on it', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, instances: 1 });
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, target: EndpointRole.READ_ONLY, defaultPoolSize: 10 });
    expect(cluster._connectionDemands.map((demand) => [demand.primary, demand.replica])).toEqual([[1, 0], [20, 0], [20, 0]]);
  });

  test('a pooler\'s lines: a pool per userlist user and per auth_query role, the auth user\'s pool, a reserve for each', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', {
      backend: cluster, authUser: AUTH, users: [{ secretName: 'batch' }], authQueryRoles: 2, defaultPoolSize: 5, reservePoolSize: 1, minPoolSize: 5,
    });
    expect(cluster._connectionDemands.map((demand) => [demand.purpose, demand.primary])).toEqual([
      ['reload, slot cleanup', 1], ['pooled users', 2 * 3 * 5], ['reserve pool', 2 * 4 * 1], ['auth_query pool', 2 * 5],
    ]);
  });

  test('a maxDbConnections below what the pools add up to is one line: the cap, which counts the auth user\'s pool too', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, maxDbConnections: 8 });
    expect(cluster._connectionDemands).toEqual([
      { consumer: 'test/Db settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: 1 },
      { consumer: 'test/Pooler', purpose: 'max_db_connections (all pools)', primary: 16, replica: 0 },
    ]);
  });

  test('a balancer without sr_check or health checks has only its children\'s pools', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgpoolBalancer(chart, 'Balancer', {
      backend: cluster, users: [{ credentials: AUTH }], srCheckUser: AUTH, numInitChildren: 4, maxPool: 2,
      srCheckPeriod: Duration.seconds(0), healthCheckPeriod: Duration.seconds(0),
    });
    expect(cluster._connectionDemands).toEqual([
      { consumer: 'test/Db settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: 1 },
      { consumer: 'test/Balancer', purpose: 'child pools', primary: 16, replica: 16 },
    ]);
  });

  test('a demand recorded without a purpose reads as "connections" in the report', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    cluster.addConnectionDemand({ consumer: 'batch', primary: 20, replica: 0 });
    expect(cluster.connectionBudgetReport()).toMatch(/\n  batch +connections +20 +0\n/);
  });

  test('the cluster counts its own: Patroni\'s connection and CHECKPOINT as the superuser, pg_rewind, a connection per repository\'s backup on each instance', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', {
      ...SECRETS,
      highAvailability: {},
      tls: { secretName: 'db-tls' },
      // Two schedules of one repository never overlap; two repositories' backups may.
      backup: {
        repositories: [
          BackupRepository.volume({ schedule: { full: '0 1 * * 0', differential: '0 1 * * 1-6' } }),
          BackupRepository.volume({ schedule: { full: '0 3 * * 0' } }),
        ],
      },
    });
    expect(cluster._connectionDemands).toEqual([
      { consumer: 'test/Db Patroni', purpose: 'HA loop, REST API, CHECKPOINT', primary: 2, replica: 1, superuser: true },
      { consumer: 'test/Db Patroni', purpose: 'pg_rewind', primary: 1, replica: 0 },
      { consumer: 'test/Db pgBackRest', purpose: 'backups', primary: 2, replica: 2, superuser: true },
    ]);
    expect(cluster.connectionBudgetReport()).toContain('  test/Db Patroni     HA loop, REST API, CHECKPOINT (superuser)        2             1\n');
  });

  test('superusers\' connections may take the reserved slots, but not more than max_connections', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, settings: { maxConnections: 10, superuserReservedConnections: 3 } });
    // 6 and the settings agent's 1 take what the reserve leaves.
    cluster.addConnectionDemand({ consumer: 'app', primary: 6, replica: 0 });
    cluster.addConnectionDemand({ consumer: 'ops', primary: 3, replica: 0, superuser: true });
    expect(() => synthObjects(chart)).not.toThrow();
    cluster.addConnectionDemand({ consumer: 'more ops', primary: 1, replica: 0, superuser: true });
    expect(() => synthObjects(chart)).toThrow(/  more ops +connections \(superuser\) +1 +0\n  total +11 +1\n; raise settings\.maxConnections to 11 or more/);
  });

  test('raising maxConnections as the message says makes it fit', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, settings: { maxConnections: 104 } });
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, defaultPoolSize: 25 });
    expect(() => synthObjects(chart)).not.toThrow();
  });

  test('cdk8s synth runs the check', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-budget-test' });
    const chart = new Chart(app, 'test');
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, replicas: 3 });
    expect(() => app.synthYaml()).toThrow(/settings\.maxConnections 100 leaves 97/);
  });
});

test('the report written beside the examples\' manifests lists every cluster\'s budget', () => {
  const app = Testing.app();
  buildExamples(app);
  const report = connectionBudgetReport(app);
  expect(report).toContain([
    'pooled-cluster/AirflowDb (airflow-db): max_connections 100 - superuser_reserved_connections 3 = 97 per instance',
    '  consumer                                 for                   primary  each replica',
    '  pooled-cluster/AirflowDb settings agent  reload, slot cleanup        1             1',
    '  pooled-cluster/AirflowPgbouncer          pooled users               40             0',
    '  pooled-cluster/AirflowPgbouncer          auth_query pool            40             0',
    '  total                                                               81             1',
  ].join('\n'));
  expect(report).toContain([
    'secure-stack/ShopDb (shop-db): max_connections 100 - superuser_reserved_connections 3 = 97 per instance',
    '  consumer                            for                   primary  each replica',
    '  secure-stack/ShopDb settings agent  reload, slot cleanup        1             1',
    '  secure-stack/ShopPgpool             child pools                32            32',
    '  secure-stack/ShopPgpool             sr_check                    2             2',
    '  secure-stack/ShopPgpool             health check                2             2',
  ].join('\n'));
  expect(report.match(/per instance/g)).toHaveLength(13);
});
