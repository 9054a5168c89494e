import { Testing } from 'cdk8s';
import { AirflowStackChart } from '../examples/airflow-stack';
import { OperatorManagedChart } from '../examples/operator-managed';
import {
  ExporterSidecar, ExternalPostgres, MemoryCheck, NetworkPeer, NetworkPolicyOptions, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster,
} from '../lib';
import { validateManifests } from './support/kube-schema';
import { mayConnect, mayReachOutside, Pod } from './support/network-policy-eval';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { synthObjects, testChart } from './support/synth';

const pod = (namespace: string, labels: { [key: string]: string }): Pod => ({ namespace, labels });
const component = (namespace: string, name: string, instance: string, role: string) =>
  pod(namespace, { 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': instance, 'app.kubernetes.io/component': role, 'team': 'x' });

describe('the Airflow stack\'s policies, evaluated', () => {
  const objects = synthObjects(new AirflowStackChart(Testing.app(), 'airflow'));
  const NS = 'airflow-ha';
  const primary = component(NS, 'postgresql', 'airflow-db', 'primary');
  const replica = component(NS, 'postgresql', 'airflow-db', 'replica');
  const pgpool = component(NS, 'pgpool', 'airflow-pgpool', 'balancer');
  const pgbouncer = component(NS, 'pgbouncer', 'airflow-pgbouncer', 'pooler');
  const scheduler = pod(NS, { app: 'airflow-scheduler' });
  const elsewhere = pod('web', { app: 'airflow-scheduler' });
  const prometheus = pod('monitoring', { 'app.kubernetes.io/name': 'prometheus' });

  test('every component has exactly one policy, and they validate strictly', () => {
    expect(objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name).sort())
      .toEqual(['airflow-db', 'airflow-pgbouncer', 'airflow-pgpool']);
    expect(validateManifests(objects.filter((o) => o.kind === 'NetworkPolicy'), 'v1.27.0')).toEqual([]);
  });

  test.each([
    ['an app pod of the namespace reaches PgBouncer', scheduler, pgbouncer, 6432, true],
    ['an app pod of another namespace does not', elsewhere, pgbouncer, 6432, false],
    ['PgBouncer reaches Pgpool-II', pgbouncer, pgpool, 9999, true],
    ['Pgpool-II reaches the primary', pgpool, primary, 5432, true],
    ['Pgpool-II reaches a replica', pgpool, replica, 5432, true],
    ['a replica streams from the primary', replica, primary, 5432, true],
    ['PgBouncer does not go around Pgpool-II to the database', pgbouncer, primary, 5432, false],
    ['Pgpool-II does not reach PgBouncer', pgpool, pgbouncer, 6432, false],
    ['Pgpool-II\'s PCP port, not exposed, is closed', scheduler, pgpool, 9898, false],
    ['Prometheus scrapes the database exporter', prometheus, primary, 9187, true],
    ['Prometheus scrapes the Pgpool-II exporter', prometheus, pgpool, 9719, true],
    ['Prometheus scrapes the PgBouncer exporter', prometheus, pgbouncer, 9127, true],
    ['Prometheus does not log in to PostgreSQL', prometheus, primary, 5432, false],
    ['an app pod does not scrape the metrics port', scheduler, primary, 9187, false],
  ] as const)('%s', (_what, from, to, port, allowed) => {
    expect(mayConnect(objects, from, to, port)).toBe(allowed);
  });

  const clusterDns = pod('kube-system', { 'k8s-app': 'kube-dns' });
  test.each([primary, replica, pgpool, pgbouncer])('pods resolve names at the cluster DNS only, and reach nothing else outside', (from) => {
    expect(mayConnect(objects, from, clusterDns, 53, 'UDP')).toBe(true);
    expect(mayConnect(objects, from, clusterDns, 53, 'TCP')).toBe(true);
    // Port 53 of any other pod or address is closed: DNS egress is no tunnel out.
    expect(mayConnect(objects, from, pod('kube-system', { app: 'other' }), 53, 'UDP')).toBe(false);
    expect(mayConnect(objects, from, pod(NS, { 'k8s-app': 'kube-dns' }), 53, 'UDP')).toBe(false);
    expect(mayReachOutside(objects, from, 53, 'UDP')).toBe(false);
    expect(mayReachOutside(objects, from, 443)).toBe(false);
    expect(mayReachOutside(objects, from, 5432)).toBe(false);
  });
});

describe('an operator-managed cluster', () => {
  const objects = synthObjects(new OperatorManagedChart(Testing.app(), 'payments'));
  const pgpool = component('payments', 'pgpool', 'payments-pgpool', 'balancer');

  test('Pgpool-II reaches any pod of the operator\'s namespace on its port, since the operator\'s labels are its own', () => {
    expect(mayConnect(objects, pgpool, pod('payments', { 'cnpg.io/cluster': 'payments' }), 5432)).toBe(true);
    expect(mayConnect(objects, pgpool, pod('other', { 'cnpg.io/cluster': 'payments' }), 5432)).toBe(false);
    expect(mayConnect(objects, pgpool, pod('payments', { 'cnpg.io/cluster': 'payments' }), 8000)).toBe(false);
  });

  test('only the proxies render policies: the operator\'s pods are not ours to restrict', () => {
    expect(objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name).sort()).toEqual(['payments-pgbouncer', 'payments-pgpool']);
  });
});

describe('choosing clients', () => {
  const NS = 'shop';
  const SECRETS = { superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, memoryCheck: MemoryCheck.OFF };
  const db = (labels: { [key: string]: string }) => component(NS, 'postgresql', 'db', labels.role ?? 'primary');
  const stack = (networkPolicy: NetworkPolicyOptions, withPooler = true) => {
    const chart = testChart(NS);
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, networkPolicy });
    if (withPooler) new PgBouncerPooler(chart, 'Pooler', { backend: cluster, users: [{ secretName: 'app' }] });
    return { chart, cluster, objects: () => synthObjects(chart) };
  };
  const api = pod('web', { app: 'api' });

  test('explicit clients replace the namespace default; wired components and replication stay admitted', () => {
    const { objects } = stack({ clients: [{ namespace: 'web', podSelector: { app: 'api' } }] });
    const all = objects();
    expect(mayConnect(all, api, db({}), 5432)).toBe(true);
    expect(mayConnect(all, pod('web', { app: 'batch' }), db({}), 5432)).toBe(false);
    expect(mayConnect(all, pod(NS, { app: 'api' }), db({}), 5432)).toBe(false);
    expect(mayConnect(all, component(NS, 'pgbouncer', 'pooler', 'pooler'), db({}), 5432)).toBe(true);
    expect(mayConnect(all, db({ role: 'replica' }), db({}), 5432)).toBe(true);
    expect(validateManifests(all, 'v1.27.0')).toEqual([]);
  });

  test('a CIDR admits clients outside the cluster, rendered as an ipBlock', () => {
    const { objects } = stack({ clients: [{ cidr: '10.20.0.0/16' }] }, false);
    const policy = objects().find((o) => o.kind === 'NetworkPolicy');
    expect(policy.spec.ingress[0].from).toContainEqual({ ipBlock: { cidr: '10.20.0.0/16' } });
  });

  test('allowClients adds clients after construction, rendered at synth', () => {
    const { cluster, objects } = stack({ clients: [] }, false);
    expect(mayConnect(objects(), api, db({}), 5432)).toBe(false);
    cluster.allowClients({ namespace: 'web', podSelector: { app: 'api' } });
    expect(mayConnect(objects(), api, db({}), 5432)).toBe(true);
  });

  test('metrics clients replace the monitoring default', () => {
    const chart = testChart(NS);
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, networkPolicy: { metricsClients: [{ namespace: 'observability' }] } });
    new ExporterSidecar(chart, 'Metrics', { target: cluster, credentials: { secretName: 'exporter' } });
    const all = synthObjects(chart);
    expect(mayConnect(all, pod('observability', {}), db({}), 9187)).toBe(true);
    expect(mayConnect(all, pod('monitoring', {}), db({}), 9187)).toBe(false);
  });

  test('without an exporter there is no metrics rule', () => {
    const policy = stack({}, false).objects().find((o) => o.kind === 'NetworkPolicy');
    expect(policy.spec.ingress).toHaveLength(1);
  });

  test('enabled: false renders no policy, and the backend still admits the proxy', () => {
    const chart = testChart(NS);
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, networkPolicy: { clients: [] } });
    new PgpoolBalancer(chart, 'Balancer', {
      backend: cluster, users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'check' }, networkPolicy: { enabled: false },
    });
    const all = synthObjects(chart);
    expect(all.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name)).toEqual(['db']);
    expect(mayConnect(all, component(NS, 'pgpool', 'balancer', 'balancer'), db({}), 5432)).toBe(true);
  });

  test('a balancer exposing PCP admits its clients on 9898 too', () => {
    const chart = testChart(NS);
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    new PgpoolBalancer(chart, 'Balancer', { backend: cluster, users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'check' }, exposePcp: true });
    expect(mayConnect(synthObjects(chart), pod(NS, { app: 'admin' }), component(NS, 'pgpool', 'balancer', 'balancer'), 9898)).toBe(true);
  });

  test('a pooler in front of an ExternalPostgres without namespace reaches any pod of its own namespace', () => {
    const chart = testChart();
    const external = new ExternalPostgres(chart, 'Ext', { readWriteService: 'ext-rw', superuserSecret: { secretName: 'su' }, port: 6543 });
    new PgBouncerPooler(chart, 'Pooler', { backend: external, users: [{ secretName: 'app' }] });
    const policy = synthObjects(chart).find((o) => o.kind === 'NetworkPolicy');
    expect(policy.spec.egress[0]).toEqual({ to: [{ podSelector: { matchLabels: {} } }], ports: [{ protocol: 'TCP', port: 6543 }] });
  });
});

describe('DNS resolvers', () => {
  const SECRETS = { superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, memoryCheck: MemoryCheck.OFF };
  const dnsRules = (objects: any[]) => objects.filter((o) => o.kind === 'NetworkPolicy')
    .map((policy) => policy.spec.egress.filter((rule: any) => rule.ports.some((port: any) => port.port === 53)));

  test('dnsResolvers replaces the cluster DNS in every policy: NodeLocal DNSCache by its address', () => {
    const chart = testChart('shop');
    const networkPolicy = { dnsResolvers: [{ cidr: '169.254.20.10/32' }] };
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, networkPolicy });
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, users: [{ secretName: 'app' }], networkPolicy });
    const objects = synthObjects(chart);
    expect(dnsRules(objects)).toEqual([1, 2].map(() => [{
      to: [{ ipBlock: { cidr: '169.254.20.10/32' } }],
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    }]));
    expect(mayConnect(objects, component('shop', 'postgresql', 'db', 'primary'), pod('kube-system', { 'k8s-app': 'kube-dns' }), 53, 'UDP')).toBe(false);
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });

  test('by default the one DNS rule selects kube-dns pods of kube-system', () => {
    const chart = testChart('shop');
    new PostgresStatefulCluster(chart, 'Db', SECRETS);
    expect(dnsRules(synthObjects(chart))).toEqual([[{
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    }]]);
  });

  test.each([
    ['no resolver', [], 'networkPolicy.dnsResolvers', '[]', /list the resolvers, or leave it unset for the cluster DNS/],
    ['a peer that selects nothing', [{}], 'networkPolicy.dnsResolvers[0]', '{}', /set namespace, namespaceSelector, podSelector or cidr/],
  ] as const)('refuses %s', (_what, dnsResolvers, prop, value, fix) => {
    const message = thrownMessage(() => new PostgresStatefulCluster(testChart('x'), 'Db', { ...SECRETS, networkPolicy: { dnsResolvers: [...dnsResolvers] } }), 'dnsResolvers');
    expectPropErrorMessage(message, 'test/Db', { prop, value, fix });
  });
});

describe('validation of peers', () => {
  const SECRETS = { superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' } };
  const expectPeerError = (peer: NetworkPeer, prop: string, value: string, fix: RegExp) => {
    const message = thrownMessage(() => new PostgresStatefulCluster(testChart('x'), 'Db', { ...SECRETS, networkPolicy: { clients: [peer] } }), 'the peer');
    expectPropErrorMessage(message, 'test/Db', { prop, value, fix });
  };

  test.each([
    ['a peer that selects nothing', {}, 'networkPolicy.clients[0]', '{}', /set namespace, namespaceSelector, podSelector or cidr/],
    ['a CIDR with selectors', { cidr: '10.0.0.0/8', namespace: 'web' }, 'networkPolicy.clients[0].cidr', '"10.0.0.0/8"', /two peers/],
    ['a malformed CIDR', { cidr: '10.0.0.0/33' }, 'networkPolicy.clients[0].cidr', '"10.0.0.0/33"', /"10\.0\.0\.0\/8"/],
    ['namespace with namespaceSelector', { namespace: 'web', namespaceSelector: { team: 'a' } }, 'networkPolicy.clients[0].namespaceSelector',
      '{"team":"a"}', /use one of them/],
    ['a namespace that is no DNS label', { namespace: 'Web' }, 'networkPolicy.clients[0].namespace', '"Web"', /lower-case/],
    ['a pod selector value that is no label value', { podSelector: { app: 'a b' } }, 'networkPolicy.clients[0].podSelector.app', '"a b"', /letters, digits/],
  ] as const)('refuses %s', (_what, peer, prop, value, fix) => {
    expectPeerError(peer as NetworkPeer, prop, value, fix);
  });

  test('allowClients names itself in the error', () => {
    const cluster = new PostgresStatefulCluster(testChart('x'), 'Db', SECRETS);
    expectPropErrorMessage(thrownMessage(() => cluster.allowClients({ cidr: 'nope' }), 'allowClients'), 'test/Db', {
      prop: 'allowClients(peers)[0].cidr', value: '"nope"', fix: /CIDR|10\.0\.0\.0/,
    });
  });
});
