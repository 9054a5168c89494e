import { ApiObject, App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster } from '../lib';
import { synthObjects, testChart } from './support/synth';

const SECRETS = { superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' } };

describe('object names across constructs', () => {
  test('a pooler whose objects would replace the cluster\'s fails synthesis, naming both', () => {
    const chart = testChart('apps');
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, name: 'db', authUser: { secretName: 'auth' } });
    expect(() => synthObjects(chart)).toThrow(/^test\/Pooler: ServiceAccount "db" is also rendered by test\/Db\/ServiceAccount; set the name prop/m);
  });

  test('cdk8s synth runs the same check', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-composition-test' });
    const chart = new Chart(app, 'test');
    new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PostgresStatefulCluster(chart, 'Copy', { ...SECRETS, name: 'db' });
    expect(() => app.synthYaml()).toThrow(/StatefulSet "db-primary" is also rendered by test\/Db\/Primary/);
  });

  test('charts of one app that deploy to the same namespace clash too', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-composition-test' });
    for (const id of ['a', 'b']) new PostgresStatefulCluster(new Chart(app, id, { namespace: 'shared' }), 'Db', SECRETS);
    expect(() => app.synthYaml()).toThrow(/^\s*\[b\/Db\] b\/Db: StatefulSet "db-primary" is also rendered by a\/Db\/Primary/m);
  });

  test('objects added after a first synthesis are checked in the next one', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-composition-test' });
    const chart = new Chart(app, 'test');
    new PostgresStatefulCluster(chart, 'Db', SECRETS);
    expect(() => app.synthYaml()).not.toThrow();
    new ApiObject(chart, 'Hand', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db-rw' } });
    expect(() => app.synthYaml()).toThrow(/test\/Db: Service "db-rw" is also rendered by test\/Hand/);
  });

  test('objects added after a first synthesis deep in a user construct, or into a library construct, are checked in the next one', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-composition-test' });
    const chart = new Chart(app, 'test');
    const db = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    const team = new Construct(new Construct(chart, 'Team'), 'Services');
    expect(() => app.synthYaml()).not.toThrow();
    new ApiObject(team, 'Hand', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db-ro' } });
    expect(() => app.synthYaml()).toThrow(/test\/Db: Service "db-ro" is also rendered by test\/Team\/Services\/Hand/);
    team.node.tryRemoveChild('Hand');
    expect(() => app.synthYaml()).not.toThrow();
    // An escape hatch: an object added to a cluster itself, after its objects were indexed.
    new PostgresStatefulCluster(chart, 'Other', { ...SECRETS, name: 'other' });
    expect(() => app.synthYaml()).not.toThrow();
    new ApiObject(db, 'Extra', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'other-rw' } });
    expect(() => app.synthYaml()).toThrow(/test\/Db: Service "other-rw" is also rendered by test\/Other\/ReadWrite/);
  });

  test('a construct added after a first synthesis is checked in the next one', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-composition-test' });
    const chart = new Chart(app, 'test');
    new PostgresStatefulCluster(chart, 'Db', SECRETS);
    expect(() => app.synthYaml()).not.toThrow();
    new PostgresStatefulCluster(chart, 'Copy', { ...SECRETS, name: 'db' });
    expect(() => app.synthYaml()).toThrow(/test\/Copy: StatefulSet "db-primary" is also rendered by test\/Db\/Primary/);
  });

  test('the same names in different namespaces are fine', () => {
    const app = new App({ outdir: '/tmp/cdk8s-postgres-composition-test' });
    for (const namespace of ['team-a', 'team-b']) {
      new PostgresStatefulCluster(new Chart(app, namespace, { namespace }), 'Db', SECRETS);
    }
    expect(() => app.synthYaml()).not.toThrow();
  });
});

describe('a pooler in front of a balancer', () => {
  const stack = (poolerProps: { authUser?: { secretName: string }; users?: { secretName: string }[]; authQuery?: string }) => {
    const chart = testChart('apps');
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    const balancer = new PgpoolBalancer(chart, 'Balancer', {
      backend: cluster, users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'check' },
    });
    new PgBouncerPooler(chart, 'Pooler', { backend: balancer, ...poolerProps });
    return synthObjects(chart);
  };

  test('refuses the default auth_query, whose function nothing would install', () => {
    expect(() => stack({ authUser: { secretName: 'auth' } }))
      .toThrow(/^test\/Pooler: authUser "auth" looks passwords up with a function that its backend test\/Balancer cannot install; list the clients' Secrets in users instead, or set authQuery with an auth user the balancer lists in its users$/);
  });

  test('takes users, or an authUser with an explicit authQuery', () => {
    expect(() => stack({ users: [{ secretName: 'app' }] })).not.toThrow();
    expect(() => stack({ authUser: { secretName: 'app' }, authQuery: 'SELECT usename, passwd FROM my_lookup($1)' })).not.toThrow();
  });
});
