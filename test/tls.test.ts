import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App, Chart, Testing } from 'cdk8s';
import {
  ExporterSidecar, ExternalPostgres, IPostgresEndpoint, IssuerKind, MemoryCheck, Overlays, PgBouncerPooler, PgBouncerPoolerProps, PgpoolBalancer,
  PgpoolBalancerProps, PostgresStatefulCluster, PostgresStatefulClusterProps, StackOverlay, TlsOptions, TlsProtocolVersion,
} from '../lib';
import { KubeVersion, validateManifests } from './support/kube-schema';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};
/** Room for every consumer: this file tests TLS, test/connection-budget.test.ts the budget. */
const CLUSTER = { ...SECRETS, instances: 3, settings: { maxConnections: 1000 }, memoryCheck: MemoryCheck.OFF };
const APP_USER = { secretName: 'app-user' };
const BALANCER = { users: [{ credentials: APP_USER, envPrefix: 'APP' }], srCheckUser: { secretName: 'pgpool-srcheck' } };
const POOLER = { users: [APP_USER] };
const ISSUER = { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER };
const VERSIONS: KubeVersion[] = ['v1.27.0', 'v1.36.0'];

interface ChainOptions {
  /** Namespace of the chart; `null` for none. Default `shop`. */
  readonly namespace?: string | null;
  readonly cluster?: Partial<PostgresStatefulClusterProps>;
  readonly balancer?: Partial<PgpoolBalancerProps>;
  readonly pooler?: Partial<PgBouncerPoolerProps>;
}

interface Chain {
  readonly chart: Chart;
  readonly cluster: PostgresStatefulCluster;
  readonly balancer: PgpoolBalancer;
  readonly pooler: PgBouncerPooler;
  readonly objects: any[];
}

/**
 * A cluster `Db` (name `db`, 3 instances), a balancer `Balancer` (name `balancer`) in front of
 * it and a pooler `Pooler` (name `pooler`) in front of the balancer, in namespace `shop` by
 * default; each with the TLS its options give, none by default.
 */
function chain(options: ChainOptions = {}): Chain {
  const chart = testChart(options.namespace === null ? undefined : options.namespace ?? 'shop');
  const cluster = new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, ...options.cluster });
  const balancer = new PgpoolBalancer(chart, 'Balancer', { backend: cluster, ...BALANCER, ...options.balancer });
  const pooler = new PgBouncerPooler(chart, 'Pooler', { backend: balancer, ...POOLER, ...options.pooler });
  return { chart, cluster, balancer, pooler, objects: synthObjects(chart) };
}

/** The same TLS options on the three constructs of the chain. */
const everywhere = (tls: TlsOptions, namespace?: string | null): ChainOptions => ({
  namespace, cluster: { tls }, balancer: { tls }, pooler: { tls },
});

const certificates = (objects: any[]) => objects.filter((o) => o.kind === 'Certificate');
/** The one Certificate that keeps this Secret issued; fails when there is none or more than one. */
function certificateOf(objects: any[], secretName: string): any {
  const found = certificates(objects).filter((o) => o.spec.secretName === secretName);
  expect(found.length).toBe(1);
  return found[0];
}

const statefulSet = (objects: any[], role: 'primary' | 'replica') => findObject(objects, 'StatefulSet', `db-${role}`);
const clusterPodSpec = (objects: any[], role: 'primary' | 'replica' = 'primary') => statefulSet(objects, role).spec.template.spec;
const proxyPodSpec = (objects: any[], name: string) => findObject(objects, 'Deployment', name).spec.template.spec;
const volumeOf = (podSpec: any, name: string) => podSpec.volumes.find((v: any) => v.name === name);
const containerOf = (podSpec: any, name: string) => [...(podSpec.initContainers ?? []), ...podSpec.containers].find((c: any) => c.name === name);
const envValue = (container: any, name: string) => container.env?.find((e: any) => e.name === name)?.value;

const clusterFile = (objects: any[], file: string): string => findObject(objects, 'ConfigMap', 'db-config').data[file];
const bootstrapScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['bootstrap.sh'];
/** pg_hba.conf's rules, fields separated by one space. */
const pgHbaRules = (objects: any[]): string[] => clusterFile(objects, 'pg_hba.conf').split('\n')
  .filter((line) => line.trim() !== '' && !line.startsWith('#'))
  .map((line) => line.trim().split(/\s+/).join(' '));
/** postgresql.conf's lines that set a parameter named ssl or ssl_*. */
const sslLines = (objects: any[]): string[] => clusterFile(objects, 'postgresql.conf').split('\n').filter((line) => /^ssl(_\w+)? = /.test(line));

const pgbouncerIni = (objects: any[], name = 'pooler'): string => findObject(objects, 'ConfigMap', `${name}-config`).data['pgbouncer.ini'];
const iniValue = (ini: string, key: string) => ini.split('\n').find((line) => line.startsWith(`${key} = `))?.slice(key.length + 3);
const pgpoolConf = (objects: any[], name = 'balancer'): string => findObject(objects, 'ConfigMap', `${name}-config`).data['pgpool.conf'];
const poolHbaTypes = (objects: any[], name = 'balancer'): string[] => findObject(objects, 'ConfigMap', `${name}-config`).data['pool_hba.conf']
  .split('\n').filter((line: string) => line.trim() !== '' && !line.startsWith('#')).map((line: string) => line.split(/\s+/)[0]);
const pgpoolSetting = (objects: any[], name: string, balancer = 'balancer') =>
  /^(\S+) = '?([^']*)'?$/.exec(pgpoolConf(objects, balancer).split('\n').find((line) => line.startsWith(`${name} = `)) ?? '')?.[2];

/** Whether a certificate name covers a host as TLS clients check it: exactly, or `*.` for one leading label. */
function covers(certificateName: string, host: string): boolean {
  if (certificateName === host) return true;
  if (!certificateName.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === certificateName.slice(2);
}

/** The namespace forms of a Service name, as a client may write it. */
const forms = (name: string, namespace: string) => [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];

describe('a chain cluster -> PgpoolBalancer -> PgBouncerPooler, each with tls { issuer }', () => {
  const built = chain(everywhere({ issuer: ISSUER }));
  const { cluster, balancer, pooler, objects } = built;
  const components = [
    ['cluster', cluster, 'db', 'database'],
    ['balancer', balancer, 'balancer', 'balancer'],
    ['pooler', pooler, 'pooler', 'pooler'],
  ] as const;

  test('renders exactly three Certificates, one per component', () => {
    expect(certificates(objects).map((o) => o.spec.secretName).sort()).toEqual(['balancer-tls', 'db-tls', 'pooler-tls']);
    for (const certificate of certificates(objects)) expect(certificate.apiVersion).toBe('cert-manager.io/v1');
  });

  test.each(components)('the %s\'s Certificate: named after it, its `<name>-tls` Secret, its certificateDnsNames, the issuer', (_what, construct, name, component) => {
    const certificate = certificateOf(objects, `${name}-tls`);
    expect(certificate.metadata.name).toBe(name);
    expect(certificate.metadata.namespace).toBe('shop');
    expect(certificate.metadata.labels).toMatchObject({ 'app.kubernetes.io/instance': name, 'app.kubernetes.io/component': component });
    expect(certificate.spec.secretName).toBe(`${name}-tls`);
    expect(certificate.spec.dnsNames).toEqual(construct.certificateDnsNames);
    expect(certificate.spec.issuerRef).toEqual({ name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    expect(construct.certificateAuthority).toEqual({ secretName: `${name}-tls`, key: 'ca.crt' });
  });

  test('the cluster\'s names: the rw and ro Services and every pod through the headless Service, in all namespace forms', () => {
    expect(cluster.certificateDnsNames).toEqual([...forms('db-rw', 'shop'), ...forms('db-ro', 'shop'), ...forms('db-headless', 'shop').map((n) => `*.${n}`)]);
  });

  test('the proxies\' names: their Service in all namespace forms', () => {
    expect(balancer.certificateDnsNames).toEqual(forms('balancer', 'shop'));
    expect(pooler.certificateDnsNames).toEqual(forms('pooler', 'shop'));
  });

  test('every host a hop connects to is a name of the next hop\'s certificate', () => {
    const backendHosts = ['backend_hostname0', 'backend_hostname1'].map((name) => pgpoolSetting(objects, name));
    expect(backendHosts).toEqual([cluster.readWriteHost, cluster.readOnlyHost]);
    const primaryHost = envValue(containerOf(clusterPodSpec(objects, 'replica'), 'bootstrap'), 'PRIMARY_HOST');
    expect(primaryHost).toBe('db-primary-0.db-headless');
    // The matcher itself: one leading label only, as libpq, PgBouncer and Pgpool-II match.
    expect([covers('*.db-headless', 'a.b.db-headless'), covers('*.db-headless', 'db-headless'), covers('db-rw', 'db-ro')]).toEqual([false, false, false]);
    for (const host of [...backendHosts, primaryHost]) {
      expect({ host, covered: cluster.certificateDnsNames.some((name) => covers(name, host!)) }).toEqual({ host, covered: true });
    }
    expect(pgbouncerIni(objects).split('\n')).toContain(`* = host=${balancer.readWriteHost} port=9999`);
    expect(balancer.certificateDnsNames).toContain(balancer.readWriteHost);
  });

  test('each hop verifies the next one with its CA: pooler verify-full with the balancer\'s, balancer root.crt with the cluster\'s', () => {
    const ini = pgbouncerIni(objects);
    expect([iniValue(ini, 'client_tls_sslmode'), iniValue(ini, 'server_tls_sslmode'), iniValue(ini, 'server_tls_ca_file')])
      .toEqual(['require', 'verify-full', '/etc/pgbouncer-tls/server/ca.crt']);
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'tls').projected.sources.map((s: any) => s.secret)).toEqual([
      { name: 'pooler-tls', items: [{ key: 'tls.crt', path: 'client/tls.crt' }, { key: 'tls.key', path: 'client/tls.key' }] },
      { name: 'balancer-tls', items: [{ key: 'ca.crt', path: 'server/ca.crt' }] },
    ]);
    expect(volumeOf(proxyPodSpec(objects, 'balancer'), 'tls').projected.sources.map((s: any) => s.secret)).toEqual([
      { name: 'balancer-tls', items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] },
      { name: 'db-tls', items: [{ key: 'ca.crt', path: 'root.crt' }] },
    ]);
    expect([pgpoolSetting(objects, 'ssl'), ...new Set(poolHbaTypes(objects).slice(1))]).toEqual(['on', 'hostssl']);
  });

  test('the Certificates\' Secrets carry the component labels', () => {
    for (const certificate of certificates(objects)) expect(certificate.spec.secretTemplate.labels).toEqual(certificate.metadata.labels);
  });

  test.each(VERSIONS)('the whole chart validates strictly against Kubernetes %s and the Certificate schema', (version) => {
    expect(validateManifests(objects, version)).toEqual([]);
  });

  test('the schema check can fail: a Certificate without issuerRef or with an unknown field is refused', () => {
    const certificate = certificateOf(objects, 'db-tls');
    const { issuerRef: _issuerRef, ...noIssuer } = certificate.spec;
    expect(validateManifests([{ ...certificate, spec: noIssuer }], 'v1.27.0')).not.toEqual([]);
    expect(validateManifests([{ ...certificate, spec: { ...certificate.spec, dnsName: ['x'] } }], 'v1.27.0')).not.toEqual([]);
  });

  test('without a namespace the names are the bare Service names', () => {
    const bare = chain(everywhere({ issuer: ISSUER }, null));
    expect(bare.cluster.certificateDnsNames).toEqual(['db-rw', 'db-ro', '*.db-headless']);
    expect(bare.balancer.certificateDnsNames).toEqual(['balancer']);
    expect(certificateOf(bare.objects, 'pooler-tls').spec.dnsNames).toEqual(['pooler']);
    expect(certificateOf(bare.objects, 'pooler-tls').metadata.namespace).toBeUndefined();
    expect(validateManifests(bare.objects, 'v1.27.0')).toEqual([]);
  });

  test('a single-instance cluster has no ro Service, so its certificate does not name one', () => {
    const single = chain({ cluster: { instances: 1, tls: { issuer: ISSUER } }, balancer: { tls: {} } });
    expect(single.cluster.certificateDnsNames).toEqual([...forms('db-rw', 'shop'), ...forms('db-headless', 'shop').map((n) => `*.${n}`)]);
    expect(certificateOf(single.objects, 'db-tls').spec.dnsNames).toEqual(single.cluster.certificateDnsNames);
  });

  test('the issuer kind defaults to Issuer', () => {
    const { objects: issued } = chain({ cluster: { tls: { issuer: { name: 'ns-ca' } } }, balancer: { tls: {} } });
    expect(certificateOf(issued, 'db-tls').spec.issuerRef).toEqual({ name: 'ns-ca', kind: 'Issuer', group: 'cert-manager.io' });
  });

  test('the proxies\' certificateDnsNames are there without TLS too, and no CA is exposed', () => {
    const plain = chain();
    expect(plain.pooler.certificateDnsNames).toEqual(forms('pooler', 'shop'));
    expect([plain.cluster.certificateAuthority, plain.balancer.certificateAuthority, plain.pooler.certificateAuthority])
      .toEqual([undefined, undefined, undefined]);
    expect(certificates(plain.objects)).toEqual([]);
  });
});

describe('tls without an issuer, and tls.secretName', () => {
  test('no Certificate is rendered, yet every component mounts its Secret', () => {
    const { objects } = chain(everywhere({}));
    expect(certificates(objects)).toEqual([]);
    expect(volumeOf(clusterPodSpec(objects), 'tls').secret.secretName).toBe('db-tls');
    expect(volumeOf(clusterPodSpec(objects, 'replica'), 'tls').secret.secretName).toBe('db-tls');
    expect(volumeOf(proxyPodSpec(objects, 'balancer'), 'tls').projected.sources.map((s: any) => s.secret.name)).toEqual(['balancer-tls', 'db-tls']);
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'tls').projected.sources.map((s: any) => s.secret.name)).toEqual(['pooler-tls', 'balancer-tls']);
  });

  test('a tls.secretName is used everywhere: volumes, the CA the next hop mounts, the Certificate and certificateAuthority', () => {
    const { cluster, balancer, pooler, objects } = chain({
      cluster: { tls: { secretName: 'pg-server-cert', issuer: ISSUER } },
      balancer: { tls: { secretName: 'pgpool-cert', issuer: ISSUER } },
      pooler: { tls: { secretName: 'bouncer-cert', issuer: ISSUER } },
    });
    expect(certificates(objects).map((o) => o.spec.secretName).sort()).toEqual(['bouncer-cert', 'pg-server-cert', 'pgpool-cert']);
    expect(certificateOf(objects, 'pg-server-cert').metadata.name).toBe('db');
    expect(volumeOf(clusterPodSpec(objects), 'tls').secret.secretName).toBe('pg-server-cert');
    expect(volumeOf(proxyPodSpec(objects, 'balancer'), 'tls').projected.sources.map((s: any) => s.secret.name)).toEqual(['pgpool-cert', 'pg-server-cert']);
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'tls').projected.sources.map((s: any) => s.secret.name)).toEqual(['bouncer-cert', 'pgpool-cert']);
    expect([cluster.certificateAuthority, balancer.certificateAuthority, pooler.certificateAuthority]).toEqual([
      { secretName: 'pg-server-cert', key: 'ca.crt' }, { secretName: 'pgpool-cert', key: 'ca.crt' }, { secretName: 'bouncer-cert', key: 'ca.crt' },
    ]);
    const yaml = JSON.stringify(objects);
    expect(yaml).not.toMatch(/"(db|balancer|pooler)-tls"/);
  });
});

describe('poolers and balancers in front of backends with and without TLS', () => {
  /** A pooler `Pooler` and a balancer `Balancer`, both in front of `backend`, and their objects. */
  function fronted(
    backendOf: (chart: Chart) => IPostgresEndpoint, proxies: { balancer?: Partial<PgpoolBalancerProps>; pooler?: Partial<PgBouncerPoolerProps> } = {},
  ) {
    const chart = testChart('apps');
    const backend = backendOf(chart);
    new PgBouncerPooler(chart, 'Pooler', { backend, ...POOLER, ...proxies.pooler });
    new PgpoolBalancer(chart, 'Balancer', { backend, ...BALANCER, ...proxies.balancer });
    return synthObjects(chart);
  }
  const clusterBackend = (tls?: TlsOptions) => (chart: Chart) => new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, ...(tls ? { tls } : {}) });

  test.each([
    ['without tls', undefined, 'prefer', undefined],
    ['with tls', {}, 'verify-full', '/etc/pgbouncer-tls/server/ca.crt'],
    ['with tls not required', { required: false }, 'verify-full', '/etc/pgbouncer-tls/server/ca.crt'],
  ] as const)('pooler in front of a cluster %s: server_tls_sslmode and server_tls_ca_file', (_what, tls, sslmode, caFile) => {
    const ini = pgbouncerIni(fronted(clusterBackend(tls), { balancer: { tls: {} } }));
    expect([iniValue(ini, 'server_tls_sslmode'), iniValue(ini, 'server_tls_ca_file')]).toEqual([sslmode, caFile]);
  });

  test('the pooler without tls of its own still verifies a TLS backend, and mounts only the CA', () => {
    const objects = fronted(clusterBackend({}), { balancer: { tls: {} } });
    const ini = pgbouncerIni(objects);
    expect([iniValue(ini, 'client_tls_sslmode'), iniValue(ini, 'client_tls_cert_file'), iniValue(ini, 'server_tls_sslmode')])
      .toEqual(['disable', undefined, 'verify-full']);
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'tls').projected.sources.map((s: any) => s.secret))
      .toEqual([{ name: 'db-tls', items: [{ key: 'ca.crt', path: 'server/ca.crt' }] }]);
  });

  test('the balancer mounts root.crt from the backend cluster\'s CA, or from its own Secret when the cluster has no TLS', () => {
    const withCa = fronted(clusterBackend({ secretName: 'db-cert' }), { balancer: { tls: {} } });
    expect(volumeOf(proxyPodSpec(withCa, 'balancer'), 'tls').projected.sources.map((s: any) => s.secret)).toEqual([
      { name: 'balancer-tls', items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] },
      { name: 'db-cert', items: [{ key: 'ca.crt', path: 'root.crt' }] },
    ]);
    const withoutCa = fronted(clusterBackend(), { balancer: { tls: {} } });
    expect(volumeOf(proxyPodSpec(withoutCa, 'balancer'), 'tls').projected.sources.map((s: any) => s.secret)).toEqual([
      { name: 'balancer-tls', items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }, { key: 'ca.crt', path: 'root.crt' }] },
    ]);
  });

  test.each([
    ['CloudNativePG\'s `<cluster>-ca` Secret, key ca.crt', { secretName: 'pg-main-ca' }, 'ca.crt'],
    ['a custom key', { secretName: 'corp-ca-bundle', key: 'root-ca.pem' }, 'root-ca.pem'],
  ])('an ExternalPostgres certificateAuthority (%s) reaches both proxies', (_what, certificateAuthority, key) => {
    let external: ExternalPostgres | undefined;
    const objects = fronted((chart) => {
      external = new ExternalPostgres(chart, 'Ext', {
        readWriteService: 'pg-main-rw', readOnlyService: 'pg-main-ro', superuserSecret: SECRETS.superuserSecret, certificateAuthority,
      });
      return external;
    }, { balancer: { tls: {} } });
    expect(external!.certificateAuthority).toEqual({ secretName: certificateAuthority.secretName, key });
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'tls').projected.sources.map((s: any) => s.secret))
      .toEqual([{ name: certificateAuthority.secretName, items: [{ key, path: 'server/ca.crt' }] }]);
    expect(iniValue(pgbouncerIni(objects), 'server_tls_sslmode')).toBe('verify-full');
    expect(volumeOf(proxyPodSpec(objects, 'balancer'), 'tls').projected.sources[1].secret)
      .toEqual({ name: certificateAuthority.secretName, items: [{ key, path: 'root.crt' }] });
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });

  test('an ExternalPostgres without certificateAuthority: the pooler prefers TLS without verifying, the balancer needs no tls', () => {
    const objects = fronted((chart) => new ExternalPostgres(chart, 'Ext', { readWriteService: 'pg-main-rw', superuserSecret: SECRETS.superuserSecret }));
    expect(iniValue(pgbouncerIni(objects), 'server_tls_sslmode')).toBe('prefer');
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'tls')).toBeUndefined();
    expect(volumeOf(proxyPodSpec(objects, 'balancer'), 'tls')).toBeUndefined();
    expect(pgpoolSetting(objects, 'ssl')).toBe('off');
  });

  test('a balancer with tls not required keeps host lines in pool_hba.conf but turns ssl on', () => {
    const objects = fronted(clusterBackend(), { balancer: { tls: { required: false } } });
    expect([pgpoolSetting(objects, 'ssl'), ...poolHbaTypes(objects)]).toEqual(['on', 'local', 'host', 'host']);
  });
});

describe('the cluster\'s TLS', () => {
  const clusterObjects = (props: Partial<PostgresStatefulClusterProps> = {}, exporter = false) => {
    const chart = testChart('shop');
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, ...props });
    if (exporter) new ExporterSidecar(chart, 'Metrics', { target: cluster, credentials: { secretName: 'metrics-exporter' } });
    return synthObjects(chart);
  };
  const ROLES = ['primary', 'replica'] as const;
  const TLS_MOUNT = { name: 'tls', mountPath: '/etc/postgresql-tls', readOnly: true };

  test('postgresql.conf turns ssl on with the mounted certificate and key, and TLS 1.2 at least', () => {
    expect(sslLines(clusterObjects({ tls: {} }))).toEqual([
      'ssl = on', "ssl_cert_file = '/etc/postgresql-tls/tls.crt'", "ssl_key_file = '/etc/postgresql-tls/tls.key'", "ssl_min_protocol_version = 'TLSv1.2'",
    ]);
    expect(sslLines(clusterObjects({ tls: { required: false } }))[0]).toBe('ssl = on');
  });

  test('without tls postgresql.conf sets no ssl parameter', () => {
    expect(sslLines(clusterObjects())).toEqual([]);
  });

  test('the files postgresql.conf names are the items of the mounted tls volume', () => {
    const objects = clusterObjects({ tls: {} });
    const mount = containerOf(clusterPodSpec(objects), 'postgres').volumeMounts.find((m: any) => m.name === 'tls');
    const files = volumeOf(clusterPodSpec(objects), 'tls').secret.items.map((item: any) => `${mount.mountPath}/${item.path}`);
    const named = sslLines(objects).filter((line) => line.includes('_file = ')).map((line) => /'(.*)'$/.exec(line)![1]);
    expect(named.length).toBe(2);
    for (const file of named) expect(files).toContain(file);
  });

  test('pg_hba.conf: network lines are hostssl when TLS is required (the default), replication included', () => {
    const rules = pgHbaRules(clusterObjects({ tls: {}, allowedCidrs: ['10.0.0.0/8'] }));
    expect(rules).toEqual([
      'local all all scram-sha-256',
      'hostssl replication +replication_clients 10.0.0.0/8 scram-sha-256',
      'hostssl all all 10.0.0.0/8 scram-sha-256',
    ]);
  });

  test.each([
    ['without tls', {}],
    ['with tls not required', { tls: { required: false } }],
  ])('pg_hba.conf keeps host lines %s', (_what, props) => {
    const types = pgHbaRules(clusterObjects(props)).map((rule) => rule.split(' ')[0]);
    expect(types[0]).toBe('local');
    expect(types.slice(1).length).toBeGreaterThan(0);
    expect(new Set(types.slice(1))).toEqual(new Set(['host']));
  });

  test('with an ExporterSidecar, the exporter\'s loopback lines stay host while the network lines are hostssl', () => {
    const rules = pgHbaRules(clusterObjects({ tls: {} }, true));
    expect(rules.filter((rule) => rule.includes('pg_monitor'))).toEqual([
      'host postgres +pg_monitor 127.0.0.1/32 scram-sha-256', 'host postgres +pg_monitor ::1/128 scram-sha-256',
    ]);
    expect(rules.filter((rule) => !rule.includes('pg_monitor') && !rule.startsWith('local')).map((rule) => rule.split(' ')[0]))
      .toEqual(['hostssl', 'hostssl', 'hostssl', 'hostssl']);
  });

  test.each(ROLES)('the %s\'s bootstrap container gets TLS_CA_FILE, the tls Secret\'s ca.crt, only with tls', (role) => {
    const bootstrap = (objects: any[]) => containerOf(clusterPodSpec(objects, role), 'bootstrap');
    expect(envValue(bootstrap(clusterObjects({ tls: {} })), 'TLS_CA_FILE')).toBe('/etc/postgresql-tls/ca.crt');
    expect(envValue(bootstrap(clusterObjects()), 'TLS_CA_FILE')).toBe('');
    expect(envValue(containerOf(clusterPodSpec(clusterObjects({ tls: {} }), role), 'postgres'), 'TLS_CA_FILE')).toBeUndefined();
  });

  test.each(ROLES)('the %s mounts the tls Secret read-only in the bootstrap and postgres containers, mode 0640 with three items', (role) => {
    const podSpec = clusterPodSpec(clusterObjects({ tls: { secretName: 'db-cert' } }), role);
    expect(volumeOf(podSpec, 'tls')).toEqual({
      name: 'tls',
      secret: {
        secretName: 'db-cert',
        defaultMode: 416,
        items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }, { key: 'ca.crt', path: 'ca.crt' }],
      },
    });
    for (const name of ['bootstrap', 'postgres']) {
      expect(containerOf(podSpec, name).volumeMounts.filter((m: any) => m.name === 'tls')).toEqual([TLS_MOUNT]);
    }
  });

  test.each(ROLES)('without tls the %s has no tls volume and no tls mount', (role) => {
    const podSpec = clusterPodSpec(clusterObjects(), role);
    expect(volumeOf(podSpec, 'tls')).toBeUndefined();
    for (const container of [...podSpec.initContainers, ...podSpec.containers]) {
      expect(container.volumeMounts.map((m: any) => m.name)).not.toContain('tls');
    }
  });

  test('turning tls on rolls the pods: the config checksum changes', () => {
    const checksum = (objects: any[]) => statefulSet(objects, 'primary').spec.template.metadata.annotations['checksum/config'];
    expect(checksum(clusterObjects())).not.toBe(checksum(clusterObjects({ tls: {} })));
  });

  test.each(VERSIONS)('a cluster with tls, an issuer and an exporter validates strictly against Kubernetes %s', (version) => {
    expect(validateManifests(clusterObjects({ tls: { issuer: ISSUER } }, true), version)).toEqual([]);
  });
});

describe('bootstrap.sh', () => {
  test.each([
    ['with tls', { tls: {} }],
    ['without tls', {}],
  ])('is shellcheck-clean %s', (_what, props) => {
    const script = bootstrapScript(chain({ cluster: props, balancer: { tls: {} } }).objects);
    expect(script.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
  });

  /** A libpq connection string's keywords and values (values single-quoted with \ escapes, or bare). */
  function parseConninfo(conninfo: string): { [key: string]: string } {
    const result: { [key: string]: string } = {};
    const pattern = /\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']+))/gy;
    let match: RegExpExecArray | null;
    let end = 0;
    while ((match = pattern.exec(conninfo)) !== null) {
      result[match[1]] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3];
      end = pattern.lastIndex;
    }
    expect(conninfo.slice(end).trim()).toBe('');
    return result;
  }

  /** A postgresql.auto.conf line's quoted value, unescaped as PostgreSQL's configuration lexer does. */
  function autoConfValue(line: string, name: string): string {
    const match = new RegExp(`^${name} = '((?:[^'\\\\]|\\\\.|'')*)'$`).exec(line);
    expect(match).not.toBeNull();
    return match![1].replace(/''/g, "'").replace(/\\(.)/g, '$1');
  }

  interface ReplicaRestart {
    readonly status: number | null;
    readonly stderr: string;
    readonly autoConf: string;
  }

  /**
   * Runs bootstrap.sh as a replica pod's bootstrap container does on a restart: a data directory
   * that already holds a cluster (PG_VERSION) and a postgresql.auto.conf from an earlier start,
   * with the container's environment except the paths, which point into a scratch directory.
   * No PostgreSQL binary runs on this path: the script only rewrites the standby settings.
   */
  function restartReplica(objects: any[], autoConf: string, runs = 1): ReplicaRestart {
    const dir = mkdtempSync(join(tmpdir(), 'tls-bootstrap-'));
    try {
      const podSpec = clusterPodSpec(objects, 'replica');
      const bootstrap = containerOf(podSpec, 'bootstrap');
      const pgdata = join(dir, 'pgdata');
      mkdirSync(pgdata);
      writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
      writeFileSync(join(pgdata, 'postgresql.auto.conf'), autoConf);
      const credentials = join(dir, 'secrets');
      const source = volumeOf(podSpec, 'secrets').projected.sources.find((s: any) => s.secret.name === 'pg-replication');
      for (const item of source.secret.items) {
        mkdirSync(join(credentials, item.path.split('/')[0]), { recursive: true });
        writeFileSync(join(credentials, item.path), item.path.endsWith('username') ? "repl'user" : 'secret');
      }
      const rendered = Object.fromEntries(bootstrap.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      const env = {
        ...rendered,
        PATH: process.env.PATH!,
        POD_NAME: 'db-replica-1',
        PGDATA: pgdata,
        PGPASSFILE: join(dir, 'pgpass'),
        CREDENTIALS_DIR: credentials,
        CONFIG_FILE: join(dir, 'postgresql.conf'),
      };
      writeFileSync(join(dir, 'bootstrap.sh'), bootstrapScript(objects));
      let result = spawnSync('bash', [join(dir, 'bootstrap.sh')], { env, encoding: 'utf8' });
      for (let run = 1; run < runs && result.status === 0; run++) result = spawnSync('bash', [join(dir, 'bootstrap.sh')], { env, encoding: 'utf8' });
      // The scratch directory differs from run to run: shown as <scratch>.
      const written = readFileSync(join(pgdata, 'postgresql.auto.conf'), 'utf8').split(dir).join('<scratch>');
      return { status: result.status, stderr: result.stderr, autoConf: written };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const EARLIER = [
    '# Do not edit this file manually!',
    "work_mem = '8MB'",
    "primary_conninfo = 'host=''old-primary'' port=5432'",
    "primary_slot_name = 'old_slot'",
    '',
  ].join('\n');

  test('a replica restarted with tls rewrites primary_conninfo with sslmode=verify-full and the CA file, keeping other settings', () => {
    const objects = chain({ cluster: { tls: {} }, balancer: { tls: {} } }).objects;
    const run = restartReplica(objects, EARLIER);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.stringContaining('data directory holds a cluster') });
    const lines = run.autoConf.split('\n');
    expect(lines.filter((line) => /^primary_(conninfo|slot_name) /.test(line)).length).toBe(2);
    expect(lines.slice(0, 2)).toEqual(['# Do not edit this file manually!', "work_mem = '8MB'"]);
    const conninfo = parseConninfo(autoConfValue(lines.find((line) => line.startsWith('primary_conninfo = '))!, 'primary_conninfo'));
    expect(conninfo).toEqual({
      host: 'db-primary-0.db-headless',
      port: '5432',
      user: "repl'user",
      sslmode: 'verify-full',
      sslrootcert: '/etc/postgresql-tls/ca.crt',
      passfile: '<scratch>/pgpass',
      application_name: 'db_replica_1',
    });
    expect(lines).toContain("primary_slot_name = 'db_replica_1'");
  });

  test('a replica restarted without tls writes primary_conninfo without sslmode', () => {
    const run = restartReplica(chain().objects, EARLIER);
    expect(run.status).toBe(0);
    const line = run.autoConf.split('\n').find((l) => l.startsWith('primary_conninfo = '))!;
    const conninfo = parseConninfo(autoConfValue(line, 'primary_conninfo'));
    expect(conninfo.host).toBe('db-primary-0.db-headless');
    expect(Object.keys(conninfo)).not.toContain('sslmode');
    expect(Object.keys(conninfo)).not.toContain('sslrootcert');
  });

  test('the rewrite is idempotent: a second start leaves the same file', () => {
    const objects = chain({ cluster: { tls: {} }, balancer: { tls: {} } }).objects;
    const twice = restartReplica(objects, EARLIER, 2);
    expect(twice.status).toBe(0);
    expect(twice.autoConf).toBe(restartReplica(objects, EARLIER, 1).autoConf);
    expect(twice.autoConf).toContain('sslmode=verify-full');
  });
});

describe('tls.minimumProtocolVersion', () => {
  test.each([
    [undefined, "ssl_min_protocol_version = 'TLSv1.2'", 'client_tls_protocols = tlsv1.2,tlsv1.3'],
    [TlsProtocolVersion.TLS_1_2, "ssl_min_protocol_version = 'TLSv1.2'", 'client_tls_protocols = tlsv1.2,tlsv1.3'],
    [TlsProtocolVersion.TLS_1_3, "ssl_min_protocol_version = 'TLSv1.3'", 'client_tls_protocols = tlsv1.3'],
  ])('%s: PostgreSQL and PgBouncer accept no older TLS', (minimumProtocolVersion, postgresLine, pgbouncerLine) => {
    const tls = { issuer: ISSUER, ...(minimumProtocolVersion ? { minimumProtocolVersion } : {}) };
    const chart = testChart('shop');
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, tls });
    new PgBouncerPooler(chart, 'Pooler', { backend: cluster, ...POOLER, tls });
    const objects = synthObjects(chart);
    expect(clusterFile(objects, 'postgresql.conf').split('\n')).toContain(postgresLine);
    expect(pgbouncerIni(objects).split('\n')).toContain(pgbouncerLine);
  });

  test.each([
    ['ssl_min_protocol_version', 'TLSv1'],
    ['ssl_max_protocol_version', 'TLSv1.2'],
  ])('the cluster refuses extraParameters.%s, naming tls.minimumProtocolVersion', (name, value) => {
    const message = thrownMessage(() => new PostgresStatefulCluster(testChart(), 'Db', { ...CLUSTER, tls: {}, extraParameters: { [name]: value } }), name);
    expectPropErrorMessage(message, 'test/Db', { prop: `extraParameters.${name}`, value: JSON.stringify(value), fix: /use tls\.minimumProtocolVersion$/ });
  });

  test('the pooler refuses extraSettings.client_tls_protocols, naming tls.minimumProtocolVersion', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', CLUSTER);
    const message = thrownMessage(() => new PgBouncerPooler(chart, 'Pooler', { backend: cluster, ...POOLER, extraSettings: { client_tls_protocols: 'tlsv1.0' } }), 'tlsv1.0');
    expectPropErrorMessage(message, 'test/Pooler', { prop: 'extraSettings.client_tls_protocols', value: '"tlsv1.0"', fix: /use tls\.minimumProtocolVersion$/ });
  });
});

describe('errors', () => {
  /** A cluster `Db` with tls in a chart of namespace `db`, and a chart of namespace `apps` for what fronts it. */
  function twoNamespaces(clusterTls: TlsOptions | undefined) {
    const app: App = Testing.app();
    const dbChart = new Chart(app, 'db', { namespace: 'db' });
    const appsChart = new Chart(app, 'apps', { namespace: 'apps' });
    const cluster = new PostgresStatefulCluster(dbChart, 'Db', { ...CLUSTER, ...(clusterTls ? { tls: clusterTls } : {}) });
    return { appsChart, cluster };
  }

  test.each([
    ['pooler', 'Pooler', (chart: Chart, backend: IPostgresEndpoint) => new PgBouncerPooler(chart, 'Pooler', { backend, ...POOLER })],
    ['balancer', 'Balancer', (chart: Chart, backend: IPostgresEndpoint) => new PgpoolBalancer(chart, 'Balancer', { backend, ...BALANCER, tls: {} })],
  ])('a %s in another namespace than its TLS cluster is refused: it cannot mount the CA Secret', (_what, id, make) => {
    const { appsChart, cluster } = twoNamespaces({ secretName: 'db-cert' });
    const message = thrownMessage(() => make(appsChart, cluster), `a ${id} across namespaces`);
    expectPropErrorMessage(message, `apps/${id}`, { prop: 'backend', value: '"db/Db"', fix: /front the cluster with ExternalPostgres and its certificateAuthority/ });
    expect(message).toContain('Secret "db-cert"');
    expect(message).toContain('namespace "db"');
    expect(message).toContain('namespace "apps"');
  });

  test('two components whose Certificates would write one Secret fail synthesis, naming both and the fix', () => {
    const app: App = Testing.app();
    const chart = new Chart(app, 'c', { namespace: 'shop' });
    const tls = { secretName: 'shared-tls', issuer: ISSUER };
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, tls });
    new PgpoolBalancer(chart, 'Balancer', { backend: cluster, ...BALANCER, tls });
    const message = thrownMessage(() => app.synthYaml(), 'two Certificates for one Secret');
    expect(message).toContain('c/Db: tls.secretName "shared-tls" is also the Secret of the Certificate of c/Balancer');
    expect(message).toContain('c/Balancer: tls.secretName "shared-tls" is also the Secret of the Certificate of c/Db');
    expect(message).toContain('give each its own tls.secretName, or leave it unset for <name>-tls');
  });

  test('one Secret without an issuer, or the same Secret name in two namespaces, is no error', () => {
    const app: App = Testing.app();
    for (const namespace of ['a', 'b']) {
      const chart = new Chart(app, namespace, { namespace });
      new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, tls: { secretName: 'db-tls', issuer: ISSUER } });
    }
    const shared = new Chart(app, 'shared', { namespace: 'c' });
    const cluster = new PostgresStatefulCluster(shared, 'Db', { ...CLUSTER, tls: { secretName: 'shared-tls' } });
    new PgpoolBalancer(shared, 'Balancer', { backend: cluster, ...BALANCER, tls: { secretName: 'shared-tls' } });
    expect(() => app.synthYaml()).not.toThrow();
  });

  test('across namespaces, a cluster without tls is no TLS error', () => {
    const { appsChart, cluster } = twoNamespaces(undefined);
    expect(new PgBouncerPooler(appsChart, 'Pooler', { backend: cluster, ...POOLER }).backend).toBe(cluster);
  });

  const constructs = [
    ['cluster', 'test/Db', (tls: TlsOptions) => chain({ cluster: { tls }, balancer: { tls: {} } })],
    ['balancer', 'test/Balancer', (tls: TlsOptions) => chain({ balancer: { tls } })],
    ['pooler', 'test/Pooler', (tls: TlsOptions) => chain({ pooler: { tls } })],
  ] as const;
  const expectError = (make: (tls: TlsOptions) => unknown, tls: TlsOptions, path: string, expected: ExpectedPropError) =>
    expectPropErrorMessage(thrownMessage(() => make(tls), JSON.stringify(tls)), path, expected);

  test.each(constructs)('the %s refuses a tls.secretName that is no Secret name', (_what, path, make) => {
    for (const secretName of ['DB_TLS', '-tls', 'db tls', 'x'.repeat(254)]) {
      const fix = secretName.length > 253 ? /at most 253 characters/ : /name of an existing Secret/;
      expectError(make, { secretName }, path, { prop: 'tls.secretName', value: JSON.stringify(secretName), fix });
    }
  });

  test.each(constructs)('the %s refuses a tls.issuer.name that is no issuer name', (_what, path, make) => {
    for (const name of ['Internal_CA', 'ca issuer', '']) {
      expectError(make, { issuer: { name } }, path, { prop: 'tls.issuer.name', value: JSON.stringify(name), fix: /name of an existing cert-manager issuer/ });
    }
  });

  test.each([
    ['ssl', 'on', /use tls$/],
    ['ssl_cert_file', '/x/server.crt', /use tls\.secretName$/],
    ['ssl_key_file', '/x/server.key', /use tls\.secretName$/],
    ['ssl_ca_file', '/x/ca.crt', /use nothing: clients log in with passwords, not certificates$/],
  ])('the cluster refuses extraParameters.%s, which tls manages', (name, value, fix) => {
    for (const tls of [undefined, {}]) {
      const message = thrownMessage(() => new PostgresStatefulCluster(testChart(), 'Db', { ...CLUSTER, ...(tls ? { tls } : {}), extraParameters: { [name]: value } }), name);
      expectPropErrorMessage(message, 'test/Db', { prop: `extraParameters.${name}`, value: JSON.stringify(value), fix });
      expect(message).toContain('is set by the construct');
    }
  });

  // Rendered after the construct's lines they would win: ssl_ciphers = 'ALL:eNULL' would admit no encryption at all.
  test('the cluster refuses every other ssl_* parameter too, naming tls', () => {
    const message = thrownMessage(() => new PostgresStatefulCluster(testChart(), 'Db', { ...CLUSTER, tls: {}, extraParameters: { ssl_ciphers: 'ALL:eNULL' } }), 'ssl_ciphers');
    expectPropErrorMessage(message, 'test/Db', { prop: 'extraParameters.ssl_ciphers', value: '"ALL:eNULL"', fix: /use tls \(tls\.minimumProtocolVersion TLS_1_3/ });
  });

  test('a balancer without tls in front of a TLS cluster is refused, naming the CA Secret', () => {
    const message = thrownMessage(() => chain({ cluster: { tls: {} } }), 'a balancer without tls');
    expectPropErrorMessage(message, 'test/Balancer', { prop: 'tls', value: '(unset)', fix: /set tls/ });
    expect(message).toContain('"db-tls"');
  });

  test.each([
    [{ secretName: 'Corp CA' }, 'certificateAuthority.secretName', '"Corp CA"', /name of an existing Secret/],
    [{ secretName: 'corp-ca', key: 'ca/crt' }, 'certificateAuthority.key', '"ca/crt"', /letters, digits, "-", "_" and "\."/],
    [{ secretName: 'corp-ca', key: '' }, 'certificateAuthority.key', '""', /letters, digits/],
  ])('ExternalPostgres refuses the certificateAuthority %p', (certificateAuthority, prop, value, fix) => {
    const message = thrownMessage(() => new ExternalPostgres(testChart(), 'Ext', {
      readWriteService: 'pg-main-rw', superuserSecret: SECRETS.superuserSecret, certificateAuthority,
    }), JSON.stringify(certificateAuthority));
    expectPropErrorMessage(message, 'test/Ext', { prop, value, fix });
  });
});

describe('Overlays: stack-wide tls', () => {
  const BASE_CLUSTER: PostgresStatefulClusterProps = { ...CLUSTER };
  const stack = (overlays: StackOverlay[]) => {
    const chart = testChart('shop');
    const cluster = new PostgresStatefulCluster(chart, 'Db', Overlays.cluster(BASE_CLUSTER, overlays));
    const balancer = new PgpoolBalancer(chart, 'Balancer', Overlays.balancer({ backend: cluster, ...BALANCER }, overlays));
    const pooler = new PgBouncerPooler(chart, 'Pooler', Overlays.pooler({ backend: balancer, ...POOLER }, overlays));
    return { cluster, balancer, pooler, objects: synthObjects(chart) };
  };

  test('a stack-wide tls { issuer } gives each component its own `<name>-tls` Certificate, for its own names', () => {
    const { cluster, balancer, pooler, objects } = stack([{ tls: { issuer: ISSUER } }]);
    expect(certificates(objects).map((o) => o.spec.secretName).sort()).toEqual(['balancer-tls', 'db-tls', 'pooler-tls']);
    for (const [construct, secretName] of [[cluster, 'db-tls'], [balancer, 'balancer-tls'], [pooler, 'pooler-tls']] as const) {
      const certificate = certificateOf(objects, secretName);
      expect(certificate.spec.dnsNames).toEqual(construct.certificateDnsNames);
      expect(certificate.spec.issuerRef).toEqual({ name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    }
    expect(iniValue(pgbouncerIni(objects), 'server_tls_sslmode')).toBe('verify-full');
    expect(validateManifests(objects, 'v1.36.0')).toEqual([]);
  });

  test('a component section merges into the stack-wide tls key by key', () => {
    const { objects } = stack([{ tls: { issuer: ISSUER }, pooler: { tls: { required: false } } }]);
    expect(certificates(objects).length).toBe(3);
    expect(iniValue(pgbouncerIni(objects), 'client_tls_sslmode')).toBe('prefer');
    expect(pgHbaRules(objects).filter((rule) => rule.startsWith('hostssl')).length).toBeGreaterThan(0);
  });

  test('without a tls overlay there is no TLS anywhere', () => {
    const { objects } = stack([{ labels: { env: 'dev' } }]);
    expect(certificates(objects)).toEqual([]);
    expect(sslLines(objects)).toEqual([]);
    expect(iniValue(pgbouncerIni(objects), 'client_tls_sslmode')).toBe('disable');
  });
});
