import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
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
import { SELF_SIGNED_CERTIFICATE_SCRIPT } from '../lib/core/certificate-volume';

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
 * default; each with the TLS its options give: by default, a certificate each pod makes itself.
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
/** pgpool.conf's line for a parameter, quoting included; undefined when it is not set. */
const pgpoolLine = (objects: any[], name: string, balancer = 'balancer') =>
  pgpoolConf(objects, balancer).split('\n').find((line) => line.startsWith(`${name} = `));

/** The volume a Secret's keys make, as the components mount their certificate (tls.crt, tls.key) or the cluster its three files. */
const secretVolume = (name: string, secretName: string, keys: string[], defaultMode = 0o440) =>
  ({ name, secret: { secretName, defaultMode, items: keys.map((key) => ({ key, path: key })) } });
/** The projected volume of a backend's CA, as a pooler (`server-ca`) or a balancer (`backend-ca`) mounts it: the key as ca.crt. */
const authorityVolume = (name: string, secretName: string, key = 'ca.crt') =>
  ({ name, projected: { defaultMode: 0o440, sources: [{ secret: { name: secretName, items: [{ key, path: 'ca.crt' }] } }] } });
/** The in-memory volume the `certificate` init container fills with a self-signed certificate. */
const SELF_SIGNED_VOLUME = { name: 'tls', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } };
const CERTIFICATE_KEYS = ['tls.crt', 'tls.key'];
const initContainerNames = (podSpec: any): string[] => (podSpec.initContainers ?? []).map((c: any) => c.name);
/** The pod specs of every component of a chain: the cluster's two StatefulSets, the balancer and the pooler. */
const chainPodSpecs = (objects: any[]) => ({
  primary: clusterPodSpec(objects), replica: clusterPodSpec(objects, 'replica'),
  balancer: proxyPodSpec(objects, 'balancer'), pooler: proxyPodSpec(objects, 'pooler'),
});

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

  test('each hop verifies the next one with its CA: pooler verify-full with the balancer\'s, balancer ssl_ca_cert with the cluster\'s', () => {
    const ini = pgbouncerIni(objects);
    expect([iniValue(ini, 'client_tls_sslmode'), iniValue(ini, 'server_tls_sslmode'), iniValue(ini, 'server_tls_ca_file')])
      .toEqual(['require', 'verify-full', '/etc/pgbouncer-tls/server/ca.crt']);
    const pods = chainPodSpecs(objects);
    expect([volumeOf(pods.pooler, 'tls'), volumeOf(pods.pooler, 'server-ca')]).toEqual([
      secretVolume('tls', 'pooler-tls', CERTIFICATE_KEYS), authorityVolume('server-ca', 'balancer-tls'),
    ]);
    expect([volumeOf(pods.balancer, 'tls'), volumeOf(pods.balancer, 'backend-ca')]).toEqual([
      secretVolume('tls', 'balancer-tls', CERTIFICATE_KEYS), authorityVolume('backend-ca', 'db-tls'),
    ]);
    expect(['ssl', 'ssl_cert', 'ssl_key', 'ssl_ca_cert'].map((name) => pgpoolLine(objects, name))).toEqual([
      "ssl = 'true'", "ssl_cert = '/etc/pgpool-tls/tls.crt'", "ssl_key = '/etc/pgpool-tls/tls.key'", "ssl_ca_cert = '/etc/pgpool-backend-ca/ca.crt'",
    ]);
    expect(new Set(poolHbaTypes(objects).slice(1))).toEqual(new Set(['hostssl']));
    // Every certificate comes from its Secret: no pod makes one of its own.
    for (const podSpec of Object.values(pods)) expect(initContainerNames(podSpec)).not.toContain('certificate');
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

  test('with self-signed certificates (no tls prop) the names are there too, every component is encrypted, and no CA is exposed', () => {
    const selfSigned = chain();
    expect(selfSigned.pooler.certificateDnsNames).toEqual(forms('pooler', 'shop'));
    expect([selfSigned.cluster, selfSigned.balancer, selfSigned.pooler].map((c) => [c.encrypted, c.certificateAuthority]))
      .toEqual([[true, undefined], [true, undefined], [true, undefined]]);
    expect(certificates(selfSigned.objects)).toEqual([]);
  });

  test('with tls.disabled the names are there too, and no component is encrypted or exposes a CA', () => {
    const plain = chain(everywhere({ disabled: true }));
    expect(plain.pooler.certificateDnsNames).toEqual(forms('pooler', 'shop'));
    expect([plain.cluster, plain.balancer, plain.pooler].map((c) => [c.encrypted, c.certificateAuthority]))
      .toEqual([[false, undefined], [false, undefined], [false, undefined]]);
    expect(certificates(plain.objects)).toEqual([]);
  });
});

describe('tls without an issuer: a self-signed certificate, or tls.secretName', () => {
  test.each([
    ['no tls prop', {}],
    ['tls: {} (which named the Secret <name>-tls before TLS was on by default)', everywhere({})],
  ] as const)('%s: each pod makes its own certificate, with no Certificate, no Secret and no CA', (_what, options) => {
    const { objects } = chain(options);
    expect(certificates(objects)).toEqual([]);
    const pods = chainPodSpecs(objects);
    for (const [component, podSpec] of Object.entries(pods)) {
      expect({ component, volume: volumeOf(podSpec, 'tls') }).toEqual({ component, volume: SELF_SIGNED_VOLUME });
      expect({ component, first: initContainerNames(podSpec)[0] }).toEqual({ component, first: 'certificate' });
    }
    expect([volumeOf(pods.pooler, 'server-ca'), volumeOf(pods.balancer, 'backend-ca')]).toEqual([undefined, undefined]);
    expect(iniValue(pgbouncerIni(objects), 'server_tls_ca_file')).toBeUndefined();
    expect(pgpoolLine(objects, 'ssl_ca_cert')).toBeUndefined();
    expect(JSON.stringify(objects)).not.toMatch(/"(db|balancer|pooler)-tls"/);
  });

  test('a tls.secretName without an issuer: no Certificate is rendered, yet every component mounts its Secret and no pod makes a certificate', () => {
    const { cluster, balancer, pooler, objects } = chain({
      cluster: { tls: { secretName: 'db-cert' } }, balancer: { tls: { secretName: 'balancer-cert' } }, pooler: { tls: { secretName: 'pooler-cert' } },
    });
    expect(certificates(objects)).toEqual([]);
    const pods = chainPodSpecs(objects);
    expect(volumeOf(pods.primary, 'tls')).toEqual(secretVolume('tls', 'db-cert', ['tls.crt', 'tls.key', 'ca.crt'], 0o640));
    expect(volumeOf(pods.replica, 'tls')).toEqual(secretVolume('tls', 'db-cert', ['tls.crt', 'tls.key', 'ca.crt'], 0o640));
    expect([volumeOf(pods.balancer, 'tls'), volumeOf(pods.balancer, 'backend-ca')])
      .toEqual([secretVolume('tls', 'balancer-cert', CERTIFICATE_KEYS), authorityVolume('backend-ca', 'db-cert')]);
    expect([volumeOf(pods.pooler, 'tls'), volumeOf(pods.pooler, 'server-ca')])
      .toEqual([secretVolume('tls', 'pooler-cert', CERTIFICATE_KEYS), authorityVolume('server-ca', 'balancer-cert')]);
    for (const podSpec of Object.values(pods)) expect(initContainerNames(podSpec)).not.toContain('certificate');
    expect([cluster.certificateAuthority, balancer.certificateAuthority, pooler.certificateAuthority]).toEqual([
      { secretName: 'db-cert', key: 'ca.crt' }, { secretName: 'balancer-cert', key: 'ca.crt' }, { secretName: 'pooler-cert', key: 'ca.crt' },
    ]);
  });

  test('a tls.secretName is used everywhere: volumes, the CA the next hop mounts, the Certificate and certificateAuthority', () => {
    const { cluster, balancer, pooler, objects } = chain({
      cluster: { tls: { secretName: 'pg-server-cert', issuer: ISSUER } },
      balancer: { tls: { secretName: 'pgpool-cert', issuer: ISSUER } },
      pooler: { tls: { secretName: 'bouncer-cert', issuer: ISSUER } },
    });
    expect(certificates(objects).map((o) => o.spec.secretName).sort()).toEqual(['bouncer-cert', 'pg-server-cert', 'pgpool-cert']);
    expect(certificateOf(objects, 'pg-server-cert').metadata.name).toBe('db');
    const pods = chainPodSpecs(objects);
    expect(volumeOf(pods.primary, 'tls').secret.secretName).toBe('pg-server-cert');
    expect([volumeOf(pods.balancer, 'tls').secret.secretName, volumeOf(pods.balancer, 'backend-ca').projected.sources[0].secret.name])
      .toEqual(['pgpool-cert', 'pg-server-cert']);
    expect([volumeOf(pods.pooler, 'tls').secret.secretName, volumeOf(pods.pooler, 'server-ca').projected.sources[0].secret.name])
      .toEqual(['bouncer-cert', 'pgpool-cert']);
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

  // server_tls_sslmode follows the backend: verified with its CA, else encrypted unverified, plaintext only when it takes no TLS.
  test.each([
    ['with tls.disabled', { disabled: true }, 'prefer', undefined],
    ['with its self-signed certificate (no tls prop)', undefined, 'require', undefined],
    ['with tls: {} (self-signed too)', {}, 'require', undefined],
    ['with a tls Secret', { secretName: 'db-cert' }, 'verify-full', '/etc/pgbouncer-tls/server/ca.crt'],
    ['with tls { issuer }', { issuer: ISSUER }, 'verify-full', '/etc/pgbouncer-tls/server/ca.crt'],
    ['with a tls Secret not required', { secretName: 'db-cert', required: false }, 'verify-full', '/etc/pgbouncer-tls/server/ca.crt'],
  ] as const)('pooler in front of a cluster %s: server_tls_sslmode and server_tls_ca_file', (_what, tls, sslmode, caFile) => {
    const objects = fronted(clusterBackend(tls));
    const ini = pgbouncerIni(objects);
    expect([iniValue(ini, 'server_tls_sslmode'), iniValue(ini, 'server_tls_ca_file')]).toEqual([sslmode, caFile]);
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'server-ca') !== undefined).toBe(caFile !== undefined);
  });

  test('the pooler with tls.disabled still verifies a TLS backend, and mounts only the CA', () => {
    const objects = fronted(clusterBackend({ secretName: 'db-cert' }), { pooler: { tls: { disabled: true } } });
    const ini = pgbouncerIni(objects);
    expect([iniValue(ini, 'client_tls_sslmode'), iniValue(ini, 'client_tls_cert_file'), iniValue(ini, 'server_tls_sslmode')])
      .toEqual(['disable', undefined, 'verify-full']);
    const podSpec = proxyPodSpec(objects, 'pooler');
    expect(podSpec.volumes.filter((v: any) => ['tls', 'server-ca'].includes(v.name))).toEqual([authorityVolume('server-ca', 'db-cert')]);
    expect(initContainerNames(podSpec)).toEqual(['userlist']);
  });

  test('the balancer mounts the backend cluster\'s CA as backend-ca and names it ssl_ca_cert; a self-signed or plaintext cluster has none', () => {
    const withCa = fronted(clusterBackend({ secretName: 'db-cert' }));
    expect(volumeOf(proxyPodSpec(withCa, 'balancer'), 'backend-ca')).toEqual(authorityVolume('backend-ca', 'db-cert'));
    expect(pgpoolLine(withCa, 'ssl_ca_cert')).toBe("ssl_ca_cert = '/etc/pgpool-backend-ca/ca.crt'");
    for (const tls of [undefined, { disabled: true }]) {
      const withoutCa = fronted(clusterBackend(tls));
      expect(volumeOf(proxyPodSpec(withoutCa, 'balancer'), 'backend-ca')).toBeUndefined();
      expect(pgpoolLine(withoutCa, 'ssl_ca_cert')).toBeUndefined();
      // The balancer's own TLS towards clients stays on, with its self-signed certificate.
      expect([pgpoolLine(withoutCa, 'ssl'), volumeOf(proxyPodSpec(withoutCa, 'balancer'), 'tls')]).toEqual(["ssl = 'true'", SELF_SIGNED_VOLUME]);
    }
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
    expect([external!.encrypted, external!.certificateAuthority]).toEqual([true, { secretName: certificateAuthority.secretName, key }]);
    expect(volumeOf(proxyPodSpec(objects, 'pooler'), 'server-ca')).toEqual(authorityVolume('server-ca', certificateAuthority.secretName, key));
    expect(iniValue(pgbouncerIni(objects), 'server_tls_sslmode')).toBe('verify-full');
    expect(volumeOf(proxyPodSpec(objects, 'balancer'), 'backend-ca')).toEqual(authorityVolume('backend-ca', certificateAuthority.secretName, key));
    expect(pgpoolLine(objects, 'ssl_ca_cert')).toBe("ssl_ca_cert = '/etc/pgpool-backend-ca/ca.crt'");
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });

  test('an ExternalPostgres without certificateAuthority is encrypted: the pooler requires TLS without verifying, the balancer keeps ssl on', () => {
    let external: ExternalPostgres | undefined;
    const objects = fronted((chart) => {
      external = new ExternalPostgres(chart, 'Ext', { readWriteService: 'pg-main-rw', superuserSecret: SECRETS.superuserSecret });
      return external;
    });
    expect([external!.encrypted, external!.certificateAuthority]).toEqual([true, undefined]);
    expect([iniValue(pgbouncerIni(objects), 'server_tls_sslmode'), iniValue(pgbouncerIni(objects), 'server_tls_ca_file')]).toEqual(['require', undefined]);
    expect([volumeOf(proxyPodSpec(objects, 'pooler'), 'server-ca'), volumeOf(proxyPodSpec(objects, 'balancer'), 'backend-ca')]).toEqual([undefined, undefined]);
    expect([pgpoolLine(objects, 'ssl'), pgpoolLine(objects, 'ssl_ca_cert')]).toEqual(["ssl = 'true'", undefined]);
    // Pgpool-II's one ssl switch serves both sides: it cannot reach this backend with TLS off.
    const message = thrownMessage(() => fronted((chart) => new ExternalPostgres(chart, 'Ext', { readWriteService: 'pg-main-rw' }),
      { balancer: { tls: { disabled: true } } }), 'a plaintext balancer in front of an encrypted ExternalPostgres');
    expectPropErrorMessage(message, 'test/Balancer', { prop: 'tls.disabled', value: 'true', fix: /drop tls\.disabled$/ });
  });

  test('an ExternalPostgres with tlsDisabled: the pooler prefers TLS towards it, and a balancer with tls.disabled is accepted', () => {
    let external: ExternalPostgres | undefined;
    const objects = fronted((chart) => {
      external = new ExternalPostgres(chart, 'Ext', { readWriteService: 'pg-main-rw', tlsDisabled: true });
      return external;
    }, { balancer: { tls: { disabled: true } } });
    expect([external!.encrypted, external!.certificateAuthority]).toEqual([false, undefined]);
    expect([iniValue(pgbouncerIni(objects), 'server_tls_sslmode'), iniValue(pgbouncerIni(objects), 'server_tls_ca_file')]).toEqual(['prefer', undefined]);
    expect([pgpoolLine(objects, 'ssl'), volumeOf(proxyPodSpec(objects, 'balancer'), 'tls')]).toEqual(['ssl = off', undefined]);
    expect(poolHbaTypes(objects)).toEqual(['local', 'host', 'host']);
  });

  test('a balancer with tls not required keeps host lines in pool_hba.conf but turns ssl on', () => {
    const objects = fronted(clusterBackend(), { balancer: { tls: { required: false } } });
    expect([pgpoolLine(objects, 'ssl'), ...poolHbaTypes(objects)]).toEqual(["ssl = 'true'", 'local', 'host', 'host']);
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

  const SSL_ON = [
    'ssl = on', "ssl_cert_file = '/etc/postgresql-tls/tls.crt'", "ssl_key_file = '/etc/postgresql-tls/tls.key'", "ssl_min_protocol_version = 'TLSv1.2'",
  ];
  const SUPERUSER_REJECT = 'host all @/etc/postgresql-superuser/username all reject';

  test.each([
    ['by default (self-signed)', {}],
    ['with tls: {} (self-signed)', { tls: {} }],
    ['with a tls Secret', { tls: { secretName: 'db-cert' } }],
  ])('postgresql.conf turns ssl on %s with the mounted certificate and key, and TLS 1.2 at least', (_what, props) => {
    expect(sslLines(clusterObjects(props))).toEqual(SSL_ON);
  });

  test('tls not required still turns ssl on', () => {
    expect(sslLines(clusterObjects({ tls: { required: false } }))).toEqual(SSL_ON);
  });

  test('with tls.disabled postgresql.conf sets no ssl parameter (PostgreSQL\'s default, off)', () => {
    expect(sslLines(clusterObjects({ tls: { disabled: true } }))).toEqual([]);
  });

  test('the files postgresql.conf names are the items of the mounted tls Secret', () => {
    const objects = clusterObjects({ tls: { secretName: 'db-cert' } });
    const mount = containerOf(clusterPodSpec(objects), 'postgres').volumeMounts.find((m: any) => m.name === 'tls');
    const files = volumeOf(clusterPodSpec(objects), 'tls').secret.items.map((item: any) => `${mount.mountPath}/${item.path}`);
    const named = sslLines(objects).filter((line) => line.includes('_file = ')).map((line) => /'(.*)'$/.exec(line)![1]);
    expect(named.length).toBe(2);
    for (const file of named) expect(files).toContain(file);
  });

  test('the files postgresql.conf names are those the certificate init container writes into the volume postgres mounts', () => {
    const objects = clusterObjects();
    const podSpec = clusterPodSpec(objects);
    const postgresMount = containerOf(podSpec, 'postgres').volumeMounts.find((m: any) => m.name === 'tls');
    const maker = containerOf(podSpec, 'certificate');
    const makerMount = maker.volumeMounts.find((m: any) => m.name === 'tls');
    expect(makerMount.readOnly).toBeUndefined();
    expect(envValue(maker, 'CERTIFICATE_DIR')).toBe(makerMount.mountPath);
    // The script writes $CERTIFICATE_DIR/tls.crt and $CERTIFICATE_DIR/tls.key; postgres sees them under its own mount path.
    expect(maker.command[2]).toContain('-keyout "$CERTIFICATE_DIR/tls.key" -out "$CERTIFICATE_DIR/tls.crt"');
    const named = sslLines(objects).filter((line) => line.includes('_file = ')).map((line) => /'(.*)'$/.exec(line)![1]);
    expect(named).toEqual([`${postgresMount.mountPath}/tls.crt`, `${postgresMount.mountPath}/tls.key`]);
  });

  test.each([
    ['by default (self-signed)', {}],
    ['with a tls Secret', { tls: { secretName: 'db-cert' } }],
  ])('pg_hba.conf %s: the superuser rejected over TCP first, then hostssl network lines, replication included', (_what, props) => {
    const rules = pgHbaRules(clusterObjects({ ...props, allowedCidrs: ['10.0.0.0/8'] }));
    expect(rules).toEqual([
      'local all all scram-sha-256',
      SUPERUSER_REJECT,
      'hostssl replication +replication_clients 10.0.0.0/8 scram-sha-256',
      'hostssl all all 10.0.0.0/8 scram-sha-256',
    ]);
  });

  test.each([
    ['with tls.disabled', { tls: { disabled: true } }],
    ['with tls not required', { tls: { required: false } }],
  ])('pg_hba.conf keeps host lines %s', (_what, props) => {
    const rules = pgHbaRules(clusterObjects({ ...props, allowedCidrs: ['10.0.0.0/8'] }));
    expect(rules).toEqual([
      'local all all scram-sha-256',
      SUPERUSER_REJECT,
      'host replication +replication_clients 10.0.0.0/8 scram-sha-256',
      'host all all 10.0.0.0/8 scram-sha-256',
    ]);
  });

  test('with an ExporterSidecar, the exporter\'s loopback lines stay host while the network lines are hostssl, all after the superuser\'s reject', () => {
    const rules = pgHbaRules(clusterObjects({}, true));
    expect(rules.slice(0, 4)).toEqual([
      'local all all scram-sha-256', SUPERUSER_REJECT,
      'host postgres +pg_monitor 127.0.0.1/32 scram-sha-256', 'host postgres +pg_monitor ::1/128 scram-sha-256',
    ]);
    expect(rules.slice(4).map((rule) => rule.split(' ')[0])).toEqual(['hostssl', 'hostssl', 'hostssl', 'hostssl']);
  });

  test.each(ROLES)('the %s\'s bootstrap container gets TLS_CA_FILE, the tls Secret\'s ca.crt, only with a Secret, and TLS_ENABLED unless tls.disabled', (role) => {
    const bootstrap = (objects: any[]) => containerOf(clusterPodSpec(objects, role), 'bootstrap');
    const tlsEnv = (props: Partial<PostgresStatefulClusterProps>) => ['TLS_CA_FILE', 'TLS_ENABLED'].map((name) => envValue(bootstrap(clusterObjects(props)), name));
    expect(tlsEnv({ tls: { secretName: 'db-cert' } })).toEqual(['/etc/postgresql-tls/ca.crt', 'true']);
    expect(tlsEnv({ tls: { issuer: ISSUER } })).toEqual(['/etc/postgresql-tls/ca.crt', 'true']);
    expect(tlsEnv({})).toEqual(['', 'true']);
    expect(tlsEnv({ tls: {} })).toEqual(['', 'true']);
    expect(tlsEnv({ tls: { disabled: true } })).toEqual(['', '']);
    const postgres = containerOf(clusterPodSpec(clusterObjects({ tls: { secretName: 'db-cert' } }), role), 'postgres');
    expect([envValue(postgres, 'TLS_CA_FILE'), envValue(postgres, 'TLS_ENABLED')]).toEqual([undefined, undefined]);
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

  test.each(ROLES)('by default the %s makes its certificate in the certificate init container, into an in-memory volume the bootstrap and postgres containers mount read-only', (role) => {
    const podSpec = clusterPodSpec(clusterObjects(), role);
    expect(volumeOf(podSpec, 'tls')).toEqual(SELF_SIGNED_VOLUME);
    expect(initContainerNames(podSpec)).toEqual(['certificate', 'bootstrap']);
    for (const name of ['bootstrap', 'postgres']) {
      expect(containerOf(podSpec, name).volumeMounts.filter((m: any) => m.name === 'tls')).toEqual([TLS_MOUNT]);
    }
  });

  test.each(ROLES)('with tls.disabled the %s has no tls volume, no tls mount and no certificate init container', (role) => {
    const podSpec = clusterPodSpec(clusterObjects({ tls: { disabled: true } }), role);
    expect(volumeOf(podSpec, 'tls')).toBeUndefined();
    expect(initContainerNames(podSpec)).toEqual(['bootstrap']);
    for (const container of [...podSpec.initContainers, ...podSpec.containers]) {
      expect(container.volumeMounts.map((m: any) => m.name)).not.toContain('tls');
    }
  });

  test('turning tls off rolls the pods: the template loses the certificate (ssl itself is reloadable, so the config checksum stays)', () => {
    const template = (objects: any[]) => statefulSet(objects, 'primary').spec.template;
    const [on, off] = [clusterObjects(), clusterObjects({ tls: { disabled: true } })];
    expect(template(off).metadata.annotations['checksum/config']).toBe(template(on).metadata.annotations['checksum/config']);
    expect(template(off).spec.volumes.map((v: any) => v.name)).not.toContain('tls');
    expect(template(on).spec.volumes.map((v: any) => v.name)).toContain('tls');
  });

  test.each(VERSIONS)('a cluster with tls, an issuer and an exporter validates strictly against Kubernetes %s', (version) => {
    expect(validateManifests(clusterObjects({ tls: { issuer: ISSUER } }, true), version)).toEqual([]);
  });
});

describe('bootstrap.sh', () => {
  test.each([
    ['with a tls Secret', { tls: { secretName: 'db-cert' } }],
    ['with a self-signed certificate', {}],
    ['with tls.disabled', { tls: { disabled: true } }],
  ])('is shellcheck-clean %s', (_what, props) => {
    const script = bootstrapScript(chain({ cluster: props }).objects);
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
   * No PostgreSQL server runs: pg_controldata is a stub, and the primary does not answer, so the
   * identity check lets the replica start and the script rewrites the standby settings.
   */
  function restartReplica(objects: any[], autoConf: string, runs = 1): ReplicaRestart {
    const dir = mkdtempSync(join(tmpdir(), 'tls-bootstrap-'));
    try {
      const podSpec = clusterPodSpec(objects, 'replica');
      const bootstrap = containerOf(podSpec, 'bootstrap');
      const pgdata = join(dir, 'pgdata');
      mkdirSync(pgdata);
      writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
      // A standby's data: one without standby.signal was promoted by hand and is refused.
      writeFileSync(join(pgdata, 'standby.signal'), '');
      writeFileSync(join(pgdata, 'postgresql.auto.conf'), autoConf);
      const credentials = join(dir, 'secrets');
      const source = volumeOf(podSpec, 'secrets').projected.sources.find((s: any) => s.secret.name === 'pg-replication');
      for (const item of source.secret.items) {
        mkdirSync(join(credentials, item.path.split('/')[0]), { recursive: true });
        writeFileSync(join(credentials, item.path), item.path.endsWith('username') ? "repl'user" : 'secret');
      }
      const rendered = Object.fromEntries(bootstrap.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      // pg_controldata of a standby's data, as the identity check reads it; the primary does not answer here, so the check lets it start.
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'pg_controldata'), [
        '#!/bin/sh',
        "printf '%s\\n' 'Database system identifier:           7400000000000000001' \\",
        "  \"Latest checkpoint's TimeLineID:       1\" \"Min recovery ending loc's timeline:   1\" \\",
        "  'Latest checkpoint location:           0/3000060' 'Minimum recovery ending location:     0/3000108'",
        '',
      ].join('\n'), { mode: 0o755 });
      const env = {
        ...rendered,
        PATH: `${bin}:${process.env.PATH!}`,
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

  test('a replica restarted with a tls Secret rewrites primary_conninfo with sslmode=verify-full and the CA file, keeping other settings', () => {
    const objects = chain({ cluster: { tls: { secretName: 'db-cert' } } }).objects;
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

  const restartedConninfo = (objects: any[]) => {
    const run = restartReplica(objects, EARLIER);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.stringContaining('data directory holds a cluster') });
    const line = run.autoConf.split('\n').find((l) => l.startsWith('primary_conninfo = '))!;
    return parseConninfo(autoConfValue(line, 'primary_conninfo'));
  };

  test.each([
    ['by default (a self-signed certificate)', {}],
    ['with tls: {} (a self-signed certificate)', { tls: {} }],
  ])('a replica restarted %s writes primary_conninfo with sslmode=require and no CA: TLS always, unverified', (_what, props) => {
    expect(restartedConninfo(chain({ cluster: props }).objects)).toEqual({
      host: 'db-primary-0.db-headless',
      port: '5432',
      user: "repl'user",
      sslmode: 'require',
      passfile: '<scratch>/pgpass',
      application_name: 'db_replica_1',
    });
  });

  test('a replica restarted with tls.disabled writes primary_conninfo without sslmode', () => {
    const conninfo = restartedConninfo(chain(everywhere({ disabled: true })).objects);
    expect(conninfo.host).toBe('db-primary-0.db-headless');
    expect(Object.keys(conninfo)).not.toContain('sslmode');
    expect(Object.keys(conninfo)).not.toContain('sslrootcert');
  });

  test('the rewrite is idempotent: a second start leaves the same file', () => {
    const objects = chain({ cluster: { tls: { secretName: 'db-cert' } } }).objects;
    const twice = restartReplica(objects, EARLIER, 2);
    expect(twice.status).toBe(0);
    expect(twice.autoConf).toBe(restartReplica(objects, EARLIER, 1).autoConf);
    expect(twice.autoConf).toContain('sslmode=verify-full');
  });
});

describe('the certificate init container of a self-signed certificate', () => {
  const { cluster, balancer, pooler, objects } = chain();
  const pods = chainPodSpecs(objects);
  const components = [
    ['primary', pods.primary, 'db-rw', cluster.certificateDnsNames, 'postgres'],
    ['replica', pods.replica, 'db-rw', cluster.certificateDnsNames, 'postgres'],
    ['balancer', pods.balancer, 'balancer', balancer.certificateDnsNames, 'pgpool'],
    ['pooler', pods.pooler, 'pooler', pooler.certificateDnsNames, 'pgbouncer'],
  ] as const;
  const RESTRICTED = {
    allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] },
  };

  test.each(components)('the %s: first init container, the default image, /bin/sh -c the script, its names in the environment', (_what, podSpec, commonName, dnsNames) => {
    const maker = podSpec.initContainers[0];
    expect(maker.name).toBe('certificate');
    expect(podSpec.initContainers.filter((c: any) => c.name === 'certificate').length).toBe(1);
    expect([maker.image, maker.command, maker.args]).toEqual(['postgres:17.10-bookworm', ['/bin/sh', '-c', SELF_SIGNED_CERTIFICATE_SCRIPT], undefined]);
    expect(maker.env).toEqual([
      { name: 'CERTIFICATE_DIR', value: '/certificate' },
      { name: 'CERTIFICATE_COMMON_NAME', value: commonName },
      { name: 'CERTIFICATE_DNS_NAMES', value: dnsNames.join(' ') },
    ]);
    expect(maker.volumeMounts).toEqual([{ name: 'tls', mountPath: '/certificate' }]);
    expect(maker.securityContext).toMatchObject(RESTRICTED);
  });

  test.each(components)('the %s: the certificate\'s volume is an in-memory emptyDir, mounted read-only by the daemon', (_what, podSpec, _cn, _names, daemon) => {
    expect(volumeOf(podSpec, 'tls')).toEqual(SELF_SIGNED_VOLUME);
    const mounts = containerOf(podSpec, daemon).volumeMounts.filter((m: any) => m.name === 'tls');
    expect(mounts.length).toBe(1);
    expect(mounts[0].readOnly).toBe(true);
  });

  test.each(components)('the %s: the init container gets the daemon\'s resources, so it fits wherever the pod does', (_what, podSpec, _cn, _names, daemon) => {
    expect(podSpec.initContainers[0].resources).toEqual(containerOf(podSpec, daemon).resources);
  });

  test('the daemons read the certificate where the volume is mounted: /etc/postgresql-tls, /etc/pgpool-tls, /etc/pgbouncer-tls/client', () => {
    const mountOf = (podSpec: any, daemon: string) => containerOf(podSpec, daemon).volumeMounts.find((m: any) => m.name === 'tls').mountPath;
    expect([mountOf(pods.primary, 'postgres'), mountOf(pods.balancer, 'pgpool'), mountOf(pods.pooler, 'pgbouncer')])
      .toEqual(['/etc/postgresql-tls', '/etc/pgpool-tls', '/etc/pgbouncer-tls/client']);
    expect(sslLines(objects).slice(1, 3)).toEqual(["ssl_cert_file = '/etc/postgresql-tls/tls.crt'", "ssl_key_file = '/etc/postgresql-tls/tls.key'"]);
    expect([pgpoolLine(objects, 'ssl_cert'), pgpoolLine(objects, 'ssl_key')]).toEqual(["ssl_cert = '/etc/pgpool-tls/tls.crt'", "ssl_key = '/etc/pgpool-tls/tls.key'"]);
    const ini = pgbouncerIni(objects);
    expect([iniValue(ini, 'client_tls_cert_file'), iniValue(ini, 'client_tls_key_file')])
      .toEqual(['/etc/pgbouncer-tls/client/tls.crt', '/etc/pgbouncer-tls/client/tls.key']);
  });

  test('tls.selfSignedImage sets the image of each component\'s certificate init container', () => {
    const image = 'registry.example/openssl-sh:3';
    const custom = chain(everywhere({ selfSignedImage: image }));
    for (const podSpec of Object.values(chainPodSpecs(custom.objects))) expect(podSpec.initContainers[0].image).toBe(image);
  });

  test('the HA mode\'s members make their certificate too: the certificate init container is their only one', () => {
    const chart = testChart('shop');
    new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, highAvailability: {} });
    const podSpec = findObject(synthObjects(chart), 'StatefulSet', 'db').spec.template.spec;
    expect(initContainerNames(podSpec)).toEqual(['certificate']);
    expect(volumeOf(podSpec, 'tls')).toEqual(SELF_SIGNED_VOLUME);
  });

  test('the script is shellcheck-clean as the POSIX sh it runs under', () => {
    expect(shellcheck(`#!/bin/sh\n${SELF_SIGNED_CERTIFICATE_SCRIPT}`)).toBe('');
  });

  test('the script makes an ECDSA P-256 certificate for the component\'s names and a key only its user may read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-certificate-'));
    try {
      const out = join(dir, 'certificate');
      mkdirSync(out);
      // A file a wildcard name would match, were the script to let the shell expand `*.db-headless.shop...`.
      writeFileSync(join(dir, 'x.db-headless.shop.svc'), '');
      const maker = pods.replica.initContainers[0];
      const rendered = Object.fromEntries(maker.env.map((e: any) => [e.name, e.value]));
      const env = { PATH: process.env.PATH!, ...rendered, CERTIFICATE_DIR: out };
      const run = spawnSync(maker.command[0], maker.command.slice(1), { env, cwd: dir, encoding: 'utf8' });
      expect(run.status).toBe(0);
      const openssl = (...args: string[]) => spawnSync('openssl', args, { encoding: 'utf8' }).stdout;
      const certificate = join(out, 'tls.crt');
      const key = join(out, 'tls.key');
      expect(openssl('x509', '-in', certificate, '-noout', '-subject').trim()).toBe('subject=CN = db-rw');
      const sans = openssl('x509', '-in', certificate, '-noout', '-ext', 'subjectAltName').split('\n')[1].trim().split(', ');
      expect(sans).toEqual(cluster.certificateDnsNames.map((name) => `DNS:${name}`));
      expect(openssl('x509', '-in', certificate, '-noout', '-text')).toContain('ASN1 OID: prime256v1');
      expect(openssl('pkey', '-in', key, '-pubout')).toBe(openssl('x509', '-in', certificate, '-noout', '-pubkey'));
      // umask 077: the key and the certificate are the pod user's alone.
      expect([statSync(key).mode.toString(8).slice(-3), statSync(certificate).mode.toString(8).slice(-3)]).toEqual(['600', '600']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the script fails, and the pod with it, when the certificate directory is not writable', () => {
    const maker = pods.pooler.initContainers[0];
    const rendered = Object.fromEntries(maker.env.map((e: any) => [e.name, e.value]));
    const run = spawnSync(maker.command[0], maker.command.slice(1), { env: { PATH: process.env.PATH!, ...rendered, CERTIFICATE_DIR: '/nonexistent/certificate' }, encoding: 'utf8' });
    expect(run.status).not.toBe(0);
  });

  test.each([
    ['a tls Secret', { secretName: 'own-cert' }],
    ['tls { issuer }', { issuer: ISSUER }],
    ['tls.disabled', { disabled: true }],
  ] as const)('with %s no pod has a certificate init container, and no container carries its environment', (_what, tls) => {
    const { objects: rendered } = chain(everywhere(tls));
    for (const podSpec of Object.values(chainPodSpecs(rendered))) expect(initContainerNames(podSpec)).not.toContain('certificate');
    expect(JSON.stringify(rendered)).not.toContain('CERTIFICATE_DNS_NAMES');
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

  test.each([
    ['with a self-signed certificate (no CA to mount)', undefined, 'require'],
    ['with tls.disabled', { disabled: true }, 'prefer'],
  ] as const)('across namespaces, a cluster %s is no TLS error', (_what, tls, sslmode) => {
    const { appsChart, cluster } = twoNamespaces(tls);
    expect(new PgBouncerPooler(appsChart, 'Pooler', { backend: cluster, ...POOLER }).backend).toBe(cluster);
    const objects = synthObjects(appsChart);
    expect(iniValue(pgbouncerIni(objects), 'server_tls_sslmode')).toBe(sslmode);
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
    ['ssl_ca_file', '/x/ca.crt', /use hbaRules with HbaMethod\.CERT \(client certificates are verified against the tls Secret's ca\.crt\)$/],
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

  test.each([
    ['a self-signed certificate', {}],
    ['a tls Secret', { secretName: 'db-cert' }],
  ])('a balancer with tls.disabled in front of a cluster with %s is refused, naming tls.disabled', (_what, tls) => {
    const message = thrownMessage(() => chain({ cluster: { tls }, balancer: { tls: { disabled: true } } }), 'a plaintext balancer in front of TLS');
    expectPropErrorMessage(message, 'test/Balancer', { prop: 'tls.disabled', value: 'true', fix: /drop tls\.disabled$/ });
    expect(message).toContain('Pgpool-II speaks TLS to backends only with its own ssl on');
  });

  test('a balancer with tls.disabled in front of a cluster with tls.disabled is accepted: plaintext on both sides', () => {
    const { objects } = chain({ cluster: { tls: { disabled: true } }, balancer: { tls: { disabled: true } } });
    expect([pgpoolLine(objects, 'ssl'), volumeOf(proxyPodSpec(objects, 'balancer'), 'tls')]).toEqual(['ssl = off', undefined]);
  });

  test.each([
    ['secretName', { secretName: 'db-cert' }, '"db-cert"'],
    ['issuer', { issuer: { name: 'ca' } }, '{"name":"ca"}'],
    ['required', { required: false }, 'false'],
    ['required', { required: true }, 'true'],
    ['minimumProtocolVersion', { minimumProtocolVersion: TlsProtocolVersion.TLS_1_3 }, '"TLSv1.3"'],
    ['selfSignedImage', { selfSignedImage: 'postgres:15' }, '"postgres:15"'],
  ] as const)('tls.disabled with tls.%s is refused by every component, naming the field and its value', (field, options, value) => {
    for (const [path, make] of constructs.map(([, p, m]) => [p, m] as const)) {
      const message = thrownMessage(() => make({ disabled: true, ...options }), `tls.disabled with tls.${field} on ${path}`);
      expectPropErrorMessage(message, path, { prop: `tls.${field}`, value, fix: new RegExp(`drop tls\\.disabled to keep TLS, or drop tls\\.${field}$`) });
      expect(message).toContain('is set while tls.disabled turns TLS off');
    }
  });

  test('tls.disabled: false is TLS as if unset, and combines with the other fields', () => {
    const { objects } = chain({ cluster: { tls: { disabled: false, secretName: 'db-cert' } } });
    expect(volumeOf(clusterPodSpec(objects), 'tls').secret.secretName).toBe('db-cert');
    expect(sslLines(objects)[0]).toBe('ssl = on');
  });

  test.each(constructs)('the %s refuses tls.selfSignedImage beside a tls Secret, and one that is no image reference', (_what, path, make) => {
    for (const tls of [{ secretName: 'db-cert', selfSignedImage: 'postgres:15' }, { issuer: ISSUER, selfSignedImage: 'postgres:15' }]) {
      expectError(make, tls, path, { prop: 'tls.selfSignedImage', value: '"postgres:15"', fix: /drop tls\.selfSignedImage, or drop tls\.secretName and tls\.issuer$/ });
    }
    expectError(make, { selfSignedImage: 'postgres 15' }, path, { prop: 'tls.selfSignedImage', value: '"postgres 15"', fix: /use a reference such as "postgres:17\.10-bookworm"$/ });
  });

  test('ExternalPostgres refuses tlsDisabled with a certificateAuthority, naming both', () => {
    const message = thrownMessage(() => new ExternalPostgres(testChart(), 'Ext', {
      readWriteService: 'pg-main-rw', tlsDisabled: true, certificateAuthority: { secretName: 'corp-ca' },
    }), 'tlsDisabled with a CA');
    expectPropErrorMessage(message, 'test/Ext', { prop: 'tlsDisabled', value: 'true', fix: /drop tlsDisabled, or drop certificateAuthority$/ });
    expect(message).toContain('contradicts certificateAuthority');
  });

  test('ExternalPostgres tlsDisabled: false is the default: encrypted, with or without a CA', () => {
    for (const certificateAuthority of [undefined, { secretName: 'corp-ca' }]) {
      const external = new ExternalPostgres(testChart(), 'Ext', { readWriteService: 'pg-main-rw', tlsDisabled: false, certificateAuthority });
      expect(external.encrypted).toBe(true);
    }
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
  const SSL_ON_LINES = [
    'ssl = on', "ssl_cert_file = '/etc/postgresql-tls/tls.crt'", "ssl_key_file = '/etc/postgresql-tls/tls.key'", "ssl_min_protocol_version = 'TLSv1.2'",
  ];
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

  test('without a tls overlay every component makes a self-signed certificate: TLS everywhere, required, unverified', () => {
    const { cluster, balancer, pooler, objects } = stack([{ labels: { env: 'dev' } }]);
    expect(certificates(objects)).toEqual([]);
    expect(sslLines(objects)).toEqual(SSL_ON_LINES);
    expect(new Set(pgHbaRules(objects).slice(2).map((rule) => rule.split(' ')[0]))).toEqual(new Set(['hostssl']));
    expect([pgpoolLine(objects, 'ssl'), pgpoolLine(objects, 'ssl_ca_cert')]).toEqual(["ssl = 'true'", undefined]);
    expect(new Set(poolHbaTypes(objects).slice(1))).toEqual(new Set(['hostssl']));
    const ini = pgbouncerIni(objects);
    expect(['client_tls_sslmode', 'server_tls_sslmode', 'server_tls_ca_file'].map((key) => iniValue(ini, key))).toEqual(['require', 'require', undefined]);
    for (const podSpec of Object.values(chainPodSpecs(objects))) expect(initContainerNames(podSpec)[0]).toBe('certificate');
    expect([cluster, balancer, pooler].map((c) => [c.encrypted, c.certificateAuthority]))
      .toEqual([[true, undefined], [true, undefined], [true, undefined]]);
  });

  test('a stack-wide tls { disabled: true } turns TLS off everywhere: no ssl, host lines, plaintext towards the backends', () => {
    const { cluster, balancer, pooler, objects } = stack([{ tls: { disabled: true } }]);
    expect(certificates(objects)).toEqual([]);
    expect(sslLines(objects)).toEqual([]);
    expect(new Set(pgHbaRules(objects).slice(2).map((rule) => rule.split(' ')[0]))).toEqual(new Set(['host']));
    expect(pgpoolLine(objects, 'ssl')).toBe('ssl = off');
    expect(new Set(poolHbaTypes(objects).slice(1))).toEqual(new Set(['host']));
    const ini = pgbouncerIni(objects);
    expect(['client_tls_sslmode', 'server_tls_sslmode', 'client_tls_cert_file'].map((key) => iniValue(ini, key))).toEqual(['disable', 'prefer', undefined]);
    for (const podSpec of Object.values(chainPodSpecs(objects))) {
      expect(initContainerNames(podSpec)).not.toContain('certificate');
      expect(volumeOf(podSpec, 'tls')).toBeUndefined();
    }
    expect([cluster.encrypted, balancer.encrypted, pooler.encrypted]).toEqual([false, false, false]);
  });
});
