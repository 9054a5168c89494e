import { App, Chart, Testing } from 'cdk8s';
import { AirflowStackChart } from '../examples/airflow-stack';
import { buildExamples, connectionBudgetReport } from '../examples/main';
import { PooledClusterChart } from '../examples/pooled-cluster';
import { EndpointRole, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster } from '../lib';
import { synthObjects, testChart } from './support/synth';

const SECRETS = { superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' } };
const AUTH = { secretName: 'auth' };

describe('connection budget', () => {
  test('the examples fit, and their demands are readable from code', () => {
    const pooled = new PooledClusterChart(Testing.app(), 'pooled');
    expect(pooled.cluster._connectionDemands).toEqual([{ consumer: 'pooled/AirflowPgbouncer', primary: 80, replica: 0 }]);
    expect(() => synthObjects(pooled)).not.toThrow();
    const stack = new AirflowStackChart(Testing.app(), 'stack');
    // The pooler fronts the balancer, so only the balancer's children reach the cluster, besides
    // the cluster's own exporter (the balancer's exporter logs in through a balancer child).
    expect(stack.cluster._connectionDemands).toEqual([
      { consumer: 'stack/AirflowPgpool', primary: 64, replica: 64 },
      { consumer: 'stack/AirflowDb metrics exporter', primary: 1, replica: 1 },
    ]);
    expect(() => synthObjects(stack)).not.toThrow();
  });

  test('overbooking the primary fails synthesis with a table of who asks for how many, and the fix', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, defaultPoolSize: 30 });
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
      '  consumer       primary  each replica',
      '  test/Pooler         60             0',
      '  test/Balancer       40            40',
      '  total              100            40',
      '; raise settings.maxConnections to 103 or more, or lower the consumers\' pool sizes (defaultPoolSize, maxDbConnections, replicas, numInitChildren x maxPool)',
    ].join('\n'));
  });

  test('a pooler on the read-only Service counts on each replica', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, target: EndpointRole.READ_ONLY, defaultPoolSize: 49 });
    expect(cluster._connectionDemands).toEqual([{ consumer: 'test/Pooler', primary: 0, replica: 98 }]);
    expect(() => synthObjects(chart)).toThrow(/each replica\n  test\/Pooler +0 +98\n/);
  });

  test('without replicas, the read-only Service is the primary, and so is the demand on it', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, instances: 1 });
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, target: EndpointRole.READ_ONLY });
    expect(cluster._connectionDemands).toEqual([{ consumer: 'test/Pooler', primary: 40, replica: 0 }]);
  });

  test('raising maxConnections as the message says makes it fit', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, settings: { maxConnections: 103 } });
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, defaultPoolSize: 50 });
    expect(() => synthObjects(chart)).not.toThrow();
  });

  test('cdk8s synth runs the check', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-budget-test' });
    const chart = new Chart(app, 'test');
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH, replicas: 5 });
    expect(() => app.synthYaml()).toThrow(/settings\.maxConnections 100 leaves 97/);
  });
});

test('the report written beside the examples\' manifests lists every cluster\'s budget', () => {
  const app = Testing.app();
  buildExamples(app);
  const report = connectionBudgetReport(app);
  expect(report).toContain([
    'pooled-cluster/AirflowDb (airflow-db): max_connections 100 - superuser_reserved_connections 3 = 97 per instance',
    '  consumer                         primary  each replica',
    '  pooled-cluster/AirflowPgbouncer       80             0',
    '  total                                 80             0',
  ].join('\n'));
  expect(report).toContain([
    'secure-stack/ShopDb (shop-db): max_connections 100 - superuser_reserved_connections 3 = 97 per instance',
    '  consumer                 primary  each replica',
    '  secure-stack/ShopPgpool       32            32',
  ].join('\n'));
  expect(report.match(/per instance/g)).toHaveLength(9);
});
