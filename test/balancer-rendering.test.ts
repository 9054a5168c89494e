import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Duration } from 'cdk8s';
import { stringify } from 'yaml';
import {
  DisableLoadBalanceOnWrite, EndpointRole, ExternalPostgres, IPostgresEndpoint, PgBouncerPooler, PgpoolBalancer, PgpoolBalancerProps,
  IssuerKind, PgpoolConfigMode, PgpoolPasswordEncryption, PodSpread, PostgresStatefulCluster, MemoryCheck,
} from '../lib';
import { describeProxyScaffolding } from './support/common-props';
import { KubeVersion, validateManifests } from './support/kube-schema';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { PGPOOL_43_PARAMETERS } from '../lib/balancer/pgpool-parameters';

type Props = Partial<PgpoolBalancerProps>;

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};
/** A cluster with room for any pool size: this file tests the proxy, test/connection-budget.test.ts the budget. */
// A backend no consumer can overbook, for tests of the consumers themselves.
const CLUSTER = { ...SECRETS, settings: { maxConnections: 100_000 }, memoryCheck: MemoryCheck.OFF };
const AIRFLOW = { secretName: 'airflow-app' };
const USERS = [{ credentials: AIRFLOW, envPrefix: 'AIRFLOW' }];
const SR_CHECK_USER = { secretName: 'pgpool-srcheck' };
const CONFIG_MAP = { configMode: PgpoolConfigMode.CONFIG_MAP };
const ENVIRONMENT = { configMode: PgpoolConfigMode.ENVIRONMENT };

/** What the Secrets hold at run time, for running the init steps and emulating the image's entrypoint; never in the YAML. */
const SECRET_VALUES: { [secretName: string]: { [key: string]: string } } = {
  'airflow-app': { username: 'airflow', password: "app'pass:word" },
  'pgpool-srcheck': { username: 'srcheck', password: 'check=secret' },
  'pgpool-pcp': { username: 'pcpadmin', password: 'pcp-secret' },
  'reporting': { login: 'reporter', secret: 'report-secret' },
};

interface Options {
  /** Namespace of the chart; `null` for none. */
  readonly namespace?: string | null;
  /**
   * The balancer's backend: the cluster `Db` itself, an ExternalPostgres handle to two Services
   * with 2 replicas, or one to a primary-only Service.
   */
  readonly backend?: 'cluster' | 'external' | 'external-primary-only';
  /** Instances of the cluster `Db`. */
  readonly instances?: number;
  /**
   * Whether the backend has a CA to verify it with: the cluster `Db` with the tls Secret `db-tls`,
   * an ExternalPostgres with the certificateAuthority `ext-ca`, key `root-ca.pem`. Without it the
   * backend is still encrypted: the cluster makes self-signed certificates, the ExternalPostgres has no CA.
   */
  readonly backendTls?: boolean;
  /** The backend takes no TLS: the cluster with `tls.disabled`, an ExternalPostgres with `tlsDisabled`. */
  readonly backendPlaintext?: boolean;
}

interface Synthesized {
  readonly cluster: PostgresStatefulCluster;
  readonly balancer: PgpoolBalancer;
  readonly objects: any[];
}

/**
 * A cluster `Db` (name `db`, 3 instances) and a balancer `Balancer` (name `balancer`) in front of
 * it, with the user `AIRFLOW` and the sr_check user `pgpool-srcheck`, in namespace `apps` by default.
 */
function synth(props: Props = {}, options: Options = {}): Synthesized {
  const chart = testChart(options.namespace === null ? undefined : options.namespace ?? 'apps');
  const clusterTls = options.backendPlaintext ? { disabled: true } : options.backendTls ? { secretName: 'db-tls' } : undefined;
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    ...CLUSTER, instances: options.instances ?? 3, ...(clusterTls && !options.backend?.startsWith('external') ? { tls: clusterTls } : {}),
  });
  const certificateAuthority = {
    ...(options.backendTls ? { certificateAuthority: { secretName: 'ext-ca', key: 'root-ca.pem' } } : {}),
    ...(options.backendPlaintext ? { tlsDisabled: true } : {}),
  };
  let backend: IPostgresEndpoint = cluster;
  if (options.backend === 'external') {
    backend = new ExternalPostgres(chart, 'Ext', {
      readWriteService: 'ext-rw', readOnlyService: 'ext-ro', replicas: 2, superuserSecret: SECRETS.superuserSecret, ...certificateAuthority,
    });
  } else if (options.backend === 'external-primary-only') {
    backend = new ExternalPostgres(chart, 'Ext', { readWriteService: 'ext-rw', superuserSecret: SECRETS.superuserSecret, ...certificateAuthority });
  }
  const balancer = new PgpoolBalancer(chart, 'Balancer', { backend, users: USERS, srCheckUser: SR_CHECK_USER, ...props });
  return { cluster, balancer, objects: synthObjects(chart) };
}

const objectsOf = (props: Props = {}, options: Options = {}) => synth(props, options).objects;
const deployment = (objects: any[]) => findObject(objects, 'Deployment', 'balancer');
const podSpec = (objects: any[]) => deployment(objects).spec.template.spec;
const pgpoolContainer = (objects: any[]) => podSpec(objects).containers.find((c: any) => c.name === 'pgpool');
const initContainer = (objects: any[], name: string) => podSpec(objects).initContainers.find((c: any) => c.name === name);
const allContainers = (objects: any[]): any[] => [...podSpec(objects).initContainers, ...podSpec(objects).containers];
const volume = (objects: any[], name: string) => podSpec(objects).volumes.find((v: any) => v.name === name);
const mountAt = (container: any, path: string) => container.volumeMounts.find((m: any) => m.mountPath === path);
const envEntry = (container: any, name: string) => container.env?.find((e: any) => e.name === name);
const balancerObjects = (objects: any[]) => objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === 'pgpool');

const configData = (objects: any[]): { [file: string]: string } => findObject(objects, 'ConfigMap', 'balancer-config').data;
const pgpoolConf = (objects: any[]) => configData(objects)['pgpool.conf'];
const poolHbaConf = (objects: any[]) => configData(objects)['pool_hba.conf'];
const configScript = (objects: any[]) => configData(objects)['config.sh'];
const checksum = (objects: any[]): string => deployment(objects).spec.template.metadata.annotations['checksum/config'];
const bootstrapScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['bootstrap.sh'];
const clusterSecretSources = (objects: any[]): any[] => findObject(objects, 'StatefulSet', 'db-primary').spec.template.spec.volumes
  .find((v: any) => v.name === 'secrets').projected.sources.map((s: any) => s.secret);

const SELECTOR = { 'app.kubernetes.io/name': 'pgpool', 'app.kubernetes.io/instance': 'balancer', 'app.kubernetes.io/component': 'balancer' };

/**
 * pgpool.conf text as Pgpool-II 4.3 reads it (src/config/pool_config.l): per line a name, an
 * optional "=", then one value token. A quoted value is the longest match of '([^'\n]|\\.)*' with
 * only the outer quotes stripped: no escape is undone, so a doubled quote ends the string.
 * Throws on a line Pgpool-II refuses; returns the settings in file order.
 */
function readPgpoolConf(text: string): Array<[string, string]> {
  const settings: Array<[string, string]> = [];
  text.split('\n').forEach((raw, index) => {
    const fail = (why: string) => new Error(`pgpool.conf line ${index + 1} ${JSON.stringify(raw)} ${why}`);
    const line = raw.replace(/^[ \t\r]+/, '');
    if (line === '' || line.startsWith('#')) return;
    const key = /^[A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*/.exec(line);
    if (!key) throw fail('does not start with a parameter name');
    let rest = line.slice(key[0].length).replace(/^[ \t\r]*(=[ \t\r]*)?/, '');
    let value: string;
    if (rest.startsWith("'")) {
      // A quote preceded by a backslash may be inside the string or end it: flex takes the longest.
      let end = -1;
      for (let i = 1; i < rest.length; i++) {
        if (rest[i] !== "'") continue;
        end = i;
        if (rest[i - 1] !== '\\') break;
      }
      if (end < 0) throw fail('has an unterminated quoted value');
      value = rest.slice(1, end);
      rest = rest.slice(end + 1);
    } else {
      const token = /^(?:[-+]?0x[0-9a-fA-F]+|[-+]?[0-9]*\.?[0-9]+(?:[Ee][-+]?[0-9]+)?|[A-Za-z_\u0080-\uffff][-A-Za-z_0-9\u0080-\uffff._:/]*)/.exec(rest);
      if (!token || token[0] === '') throw fail('has no value Pgpool-II reads');
      value = token[0];
      rest = rest.slice(token[0].length);
    }
    if (!/^[ \t\r]*(#.*)?$/.test(rest)) throw fail(`has ${JSON.stringify(rest)} after the value, a syntax error`);
    settings.push([key[0], value]);
  });
  return settings;
}

/** The settings as a map, failing on a name given twice. */
function settingsMap(settings: Array<[string, string]>): Map<string, string> {
  const names = settings.map(([name]) => name);
  expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
  return new Map(settings);
}

/** A container's environment at run time: literal values, configMapKeyRefs from `objects`, and secretKeyRefs from SECRET_VALUES. */
function runtimeEnv(container: any, objects: any[]): Array<{ name: string; value: string }> {
  return (container.env ?? []).map((e: any) => {
    if (e.value !== undefined) return { name: e.name, value: e.value };
    const configRef = e.valueFrom.configMapKeyRef;
    if (configRef) return { name: e.name, value: findObject(objects, 'ConfigMap', configRef.name).data[configRef.key] };
    const ref = e.valueFrom.secretKeyRef;
    const value = SECRET_VALUES[ref.name]?.[ref.key];
    if (value === undefined) throw new Error(`no test value for Secret ${ref.name} key ${ref.key}`);
    return { name: e.name, value };
  });
}

/** The image's `printenv | sed -nr "s/^PGPOOL_PARAMS_(.*)=(.*)/\L\1 = '\E\2'/p"`, line by line as printenv prints. */
function imageSed(env: Array<{ name: string; value: string }>): string {
  const printenv = env.map(({ name, value }) => `${name}=${value}`).join('\n');
  return printenv.split('\n').flatMap((line) => {
    // Both groups greedy, as in sed: the name runs to the last "=".
    const match = /^PGPOOL_PARAMS_([^\n]*)=([^\n]*)/.exec(line);
    return match ? [`${match[1].toLowerCase()} = '${match[2]}'${line.slice(match[0].length)}`] : [];
  }).join('\n');
}

/** The prefixes the image registers in pool_passwd: `printenv | grep -E '.+_USERNAME=.+' | awk -F "_" '{print $1}'`. */
function poolPasswdPrefixes(env: Array<{ name: string; value: string }>): string[] {
  return env.map(({ name, value }) => `${name}=${value}`).join('\n').split('\n')
    .filter((line) => /.+_USERNAME=.+/.test(line))
    .map((line) => line.split('_')[0]);
}

/** Runs config.sh as the init container does, over a scratch copy of the ConfigMap and the sr_check Secret. */
interface ConfigRun {
  readonly status: number | null;
  readonly stderr: string;
  readonly pgpoolConf?: string;
  readonly poolHbaConf?: string;
}

function runConfigScript(objects: any[], srCheckName: string): ConfigRun {
  const dir = mkdtempSync(join(tmpdir(), 'balancer-config-'));
  try {
    const template = join(dir, 'template');
    const config = join(dir, 'config');
    const secrets = join(dir, 'secrets');
    mkdirSync(template);
    mkdirSync(config);
    // The projected volume's path for the username, as the pod spec mounts it for the config init container.
    const item = volume(objects, 'srcheck-name').projected.sources[0].secret.items[0];
    mkdirSync(join(secrets, item.path.split('/')[0]), { recursive: true });
    writeFileSync(join(secrets, item.path), srCheckName);
    for (const [file, text] of Object.entries(configData(objects))) writeFileSync(join(template, file), text);
    const container = initContainer(objects, 'config');
    const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
    expect(env).toEqual({ TEMPLATE_DIR: '/etc/pgpool-template', CONFIG_DIR: '/config', CREDENTIALS_DIR: '/etc/pgpool-secrets' });
    const result = spawnSync('/bin/sh', [join(template, 'config.sh')], {
      env: { PATH: process.env.PATH, TEMPLATE_DIR: template, CONFIG_DIR: config, CREDENTIALS_DIR: secrets }, encoding: 'utf8',
    });
    const read = (file: string) => (existsSync(join(config, file)) ? readFileSync(join(config, file), 'utf8') : undefined);
    return { status: result.status, stderr: result.stderr, pgpoolConf: read('pgpool.conf'), poolHbaConf: read('pool_hba.conf') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The settings Pgpool-II starts with, in either mode, once the pod has started with the test Secrets. */
function startedSettings(objects: any[], mode: PgpoolConfigMode): Map<string, string> {
  if (mode === PgpoolConfigMode.CONFIG_MAP) {
    const run = runConfigScript(objects, SECRET_VALUES['pgpool-srcheck'].username);
    expect(run.status).toBe(0);
    return settingsMap(readPgpoolConf(run.pgpoolConf!));
  }
  return settingsMap(readPgpoolConf(imageSed(runtimeEnv(pgpoolContainer(objects), objects))));
}

/** A pgpool.conf setting of the ConfigMap as Pgpool-II reads it; undefined when absent. */
const setting = (objects: any[], name: string) => new Map(readPgpoolConf(pgpoolConf(objects))).get(name);
/** The line of a setting as written. */
const confLine = (objects: any[], name: string) => pgpoolConf(objects).split('\n').find((line) => line.startsWith(`${name} = `));

describe('the test\'s Pgpool-II reader', () => {
  test('reads quoted, numeric and boolean values as Pgpool-II 4.3 does', () => {
    expect(readPgpoolConf("# comment\nport = 9999\nssl = on\nx = 'a b'\n  y='c\\'d' # note\nz = ''\n")).toEqual([
      ['port', '9999'], ['ssl', 'on'], ['x', 'a b'], ['y', "c\\'d"], ['z', ''],
    ]);
  });

  test('refuses a doubled quote and an unterminated string, as Pgpool-II 4.3.5 does', () => {
    expect(() => readPgpoolConf("log_line_prefix = 'it''s'")).toThrow(/syntax error/);
    expect(() => readPgpoolConf("log_line_prefix = 'open")).toThrow(/unterminated/);
  });

  test('the sed emulation splits at the last "=" and lower-cases only the name', () => {
    expect(imageSed([{ name: 'PGPOOL_PARAMS_LOG_LINE_PREFIX', value: 'A=B' }, { name: 'PGPOOL_ENABLE_POOL_PASSWD', value: 'true' }]))
      .toBe("log_line_prefix=a = 'B'");
  });
});

describe('objects and names', () => {
  test('a balancer has a ServiceAccount, a ConfigMap, a Service, a Deployment, a PodDisruptionBudget and a NetworkPolicy', () => {
    const kinds = balancerObjects(objectsOf()).map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual([
      'ConfigMap/balancer-config', 'Deployment/balancer', 'NetworkPolicy/balancer', 'PodDisruptionBudget/balancer', 'Service/balancer',
      'ServiceAccount/balancer',
    ]);
  });

  test('the name defaults to the construct id in kebab-case', () => {
    const chart = testChart('apps');
    const cluster = new PostgresStatefulCluster(chart, 'Db', CLUSTER);
    const balancer = new PgpoolBalancer(chart, 'ReadBalancer', { backend: cluster, users: USERS, srCheckUser: SR_CHECK_USER });
    expect(balancer.name).toBe('read-balancer');
    expect(findObject(synthObjects(chart), 'Deployment', 'read-balancer').spec.replicas).toBe(2);
  });

  test('every balancer object gets the chart namespace and the labels', () => {
    const objects = balancerObjects(objectsOf({ labels: { team: 'data' } }));
    expect(objects.map((o) => o.metadata.namespace)).toEqual(objects.map(() => 'apps'));
    for (const object of objects) {
      expect(object.metadata.labels).toEqual({
        ...SELECTOR, 'team': 'data', 'app.kubernetes.io/part-of': 'balancer', 'app.kubernetes.io/managed-by': 'cdk8s-postgres',
      });
    }
  });
});

describe('the balancer as an IPostgresEndpoint', () => {
  test('both hosts are its Service, <name>.apps.svc, on port 9999, with no replicas behind a read-only Service', () => {
    const { balancer } = synth();
    expect([balancer.readWriteHost, balancer.readOnlyHost, balancer.port, balancer.replicas])
      .toEqual(['balancer.apps.svc', 'balancer.apps.svc', 9999, 0]);
    expect(findObject(objectsOf(), 'Service', 'balancer').spec.ports[0].port).toBe(balancer.port);
  });

  test('a custom name names the hosts; without a namespace they are the short name', () => {
    expect(synth({ name: 'reads' }).balancer.readWriteHost).toBe('reads.apps.svc');
    expect(synth({}, { namespace: null }).balancer.readOnlyHost).toBe('balancer');
  });

  test('the superuser and the backend are the cluster\'s', () => {
    const { cluster, balancer } = synth();
    expect(balancer.superuserCredentials).toBe(cluster.superuserCredentials);
    expect(balancer.backend).toBe(cluster);
  });

  test.each([
    [{}, 2 * 32 * 1],
    [{ replicas: 3, numInitChildren: 10, maxPool: 4 }, 120],
    [{ replicas: 1, numInitChildren: 1, maxPool: 1 }, 1],
  ])('connectionsPerBackend for %p is replicas x numInitChildren x maxPool = %p', (props, expected) => {
    expect(synth(props).balancer.connectionsPerBackend).toBe(expected);
  });

  test.each([EndpointRole.READ_WRITE, EndpointRole.READ_ONLY])('a PgBouncerPooler with target %s routes to the balancer\'s Service', (target) => {
    const chart = testChart('apps');
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, instances: 3 });
    const balancer = new PgpoolBalancer(chart, 'Balancer', { backend: cluster, users: USERS, srCheckUser: SR_CHECK_USER });
    const pooler = new PgBouncerPooler(chart, 'Pooler', { backend: balancer, users: [AIRFLOW], target });
    const objects = synthObjects(chart);
    const ini: string = findObject(objects, 'ConfigMap', 'pooler-config').data['pgbouncer.ini'];
    const databases = ini.split('\n').slice(ini.split('\n').indexOf('[databases]') + 1);
    expect(databases.filter((line) => line.startsWith('* = '))).toEqual([`* = host=${balancer.readWriteHost} port=9999`]);
    expect(balancer.readWriteHost).toBe('balancer.apps.svc');
    expect(pooler.backend).toBe(balancer);
    expect(bootstrapScript(objects)).not.toContain('get_auth');
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });
});

describe('Deployment', () => {
  test('runs pgpool/pgpool:4.4.3 by default, or the image given, in every container but the certificate init container', () => {
    const images = (props: Props, options: Options = {}) => allContainers(objectsOf(props, options)).map((c) => [c.name, c.image]);
    // With a tls Secret (or none at all) every container is the balancer's own, all on its image.
    const own = images({ tls: { secretName: 'pgpool-tls' } });
    expect(own.length).toBeGreaterThanOrEqual(3);
    expect(own.map(([, image]) => image)).toEqual(own.map(() => 'pgpool/pgpool:4.4.3'));
    expect(images({}).slice(1)).toEqual(own);
    expect(images({})[0]).toEqual(['certificate', 'postgres:17.10-bookworm']);
    const image = 'registry.example/pgpool:4.4.3';
    expect(images({ image })).toEqual([['certificate', 'postgres:17.10-bookworm'], ...own.map(([name]) => [name, image])]);
    expect(images({ image, tls: { disabled: true } }, { backendPlaintext: true })).toEqual(own.map(([name]) => [name, image]));
  });

  test('spreads pods over nodes, preferred by default and required when asked', () => {
    expect(podSpec(objectsOf()).topologySpreadConstraints).toEqual([{
      maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: SELECTOR },
    }]);
    expect(podSpec(objectsOf({ spread: PodSpread.REQUIRED })).topologySpreadConstraints[0].whenUnsatisfiable).toBe('DoNotSchedule');
  });
});

describe('Service', () => {
  test('port 9999 is named postgres and targets the pgpool port', () => {
    const objects = objectsOf();
    const service = findObject(objects, 'Service', 'balancer');
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports).toEqual([{ name: 'postgres', port: 9999, targetPort: 'pgpool', protocol: 'TCP' }]);
    expect(pgpoolContainer(objects).ports).toContainEqual({ name: 'pgpool', containerPort: 9999, protocol: 'TCP' });
    expect(setting(objects, 'port')).toBe('9999');
  });

  test('PCP\'s port 9898 is on the Service, the container and every pod address only with exposePcp; otherwise on localhost', () => {
    const exposed = objectsOf({ exposePcp: true, pcpUser: { secretName: 'pgpool-pcp' } });
    expect(findObject(exposed, 'Service', 'balancer').spec.ports).toEqual([
      { name: 'postgres', port: 9999, targetPort: 'pgpool', protocol: 'TCP' },
      { name: 'pcp', port: 9898, targetPort: 'pcp', protocol: 'TCP' },
    ]);
    expect(pgpoolContainer(exposed).ports).toContainEqual({ name: 'pcp', containerPort: 9898, protocol: 'TCP' });
    expect(setting(exposed, 'pcp_listen_addresses')).toBe('*');
    const unexposed = objectsOf({ pcpUser: { secretName: 'pgpool-pcp' } });
    expect(pgpoolContainer(unexposed).ports).toEqual([{ name: 'pgpool', containerPort: 9999, protocol: 'TCP' }]);
    expect(setting(unexposed, 'pcp_listen_addresses')).toBe('localhost');
    expect(setting(unexposed, 'pcp_port')).toBe('9898');
  });

  test('selects the Deployment\'s pods', () => {
    const objects = objectsOf();
    expect(findObject(objects, 'Service', 'balancer').spec.selector).toEqual(deployment(objects).spec.selector.matchLabels);
  });
});

describeProxyScaffolding('balancer', SELECTOR, (props) => objectsOf(props));

describe('pgpool.conf backends', () => {
  test('node 0 is the read-write Service, node 1 the read-only one, on the cluster\'s port', () => {
    const objects = objectsOf();
    const names = ['backend_hostname0', 'backend_port0', 'backend_hostname1', 'backend_port1'];
    expect(names.map((name) => setting(objects, name))).toEqual(['db-rw.apps.svc', '5432', 'db-ro.apps.svc', '5432']);
    expect(confLine(objects, 'backend_hostname0')).toBe("backend_hostname0 = 'db-rw.apps.svc'");
  });

  test('node 0 is always primary and never detached; the replica Service is, on a failed health check, until its first replica streams', () => {
    const objects = objectsOf();
    expect(confLine(objects, 'backend_flag0')).toBe("backend_flag0 = 'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER'");
    expect(confLine(objects, 'backend_flag1')).toBe("backend_flag1 = 'ALLOW_TO_FAILOVER'");
    // The first replica's slot name, which is its application_name in pg_stat_replication.
    expect(confLine(objects, 'backend_application_name1')).toBe("backend_application_name1 = 'db_replica_0'");
    expect([setting(objects, 'auto_failback'), setting(objects, 'auto_failback_interval')]).toEqual(['on', '10']);
    expect(confLine(objects, 'failover_on_backend_error')).toBe('failover_on_backend_error = off');
    expect(setting(objects, 'failover_command')).toBeUndefined();
  });

  test.each([
    ['health checks are off', {}, { healthCheckPeriod: Duration.seconds(0) }],
    ['the backend names no replica to watch (ExternalPostgres)', { backend: 'external' as const }, {}],
  ])('the replica Service is never detached when %s', (_what, options, props) => {
    const objects = objectsOf(props, options);
    expect(confLine(objects, 'backend_flag1')).toBe("backend_flag1 = 'DISALLOW_TO_FAILOVER'");
    expect([setting(objects, 'backend_application_name1'), setting(objects, 'auto_failback')]).toEqual([undefined, undefined]);
  });

  test('in HA mode no member stays a replica, so the replica Service is never detached', () => {
    const chart = testChart('apps');
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, instances: 3, highAvailability: {} });
    new PgpoolBalancer(chart, 'Balancer', { backend: cluster, users: USERS, srCheckUser: SR_CHECK_USER });
    expect(cluster.readOnlyApplicationName).toBeUndefined();
    expect(confLine(synthObjects(chart), 'backend_flag1')).toBe("backend_flag1 = 'DISALLOW_TO_FAILOVER'");
  });

  test.each([
    [3, 2],
    [2, 1],
    [5, 4],
  ])('with %p instances, node 0 weighs 1 and node 1 the %p replicas', (instances, replicas) => {
    const objects = objectsOf({}, { instances });
    expect([setting(objects, 'backend_weight0'), setting(objects, 'backend_weight1')]).toEqual(['1', String(replicas)]);
  });

  test('a cluster without replicas has no node 1', () => {
    const conf = pgpoolConf(objectsOf({}, { instances: 1 }));
    expect(readPgpoolConf(conf).filter(([name]) => /^backend_.*1$/.test(name))).toEqual([]);
    expect(new Map(readPgpoolConf(conf)).get('backend_hostname0')).toBe('db-rw.apps.svc');
  });

  test('an ExternalPostgres without readOnlyService has no node 1', () => {
    const conf = pgpoolConf(objectsOf({}, { backend: 'external-primary-only' }));
    expect(readPgpoolConf(conf).filter(([name]) => /^backend_.*1$/.test(name))).toEqual([]);
    expect(new Map(readPgpoolConf(conf)).get('backend_hostname0')).toBe('ext-rw.apps.svc');
  });

  test('an ExternalPostgres with a read-only Service and 2 replicas has node 1 with weight 2', () => {
    const objects = objectsOf({}, { backend: 'external' });
    expect(['backend_hostname0', 'backend_hostname1', 'backend_weight1'].map((name) => setting(objects, name)))
      .toEqual(['ext-rw.apps.svc', 'ext-ro.apps.svc', '2']);
  });

  test('the cluster mode is streaming replication', () => {
    expect(confLine(objectsOf(), 'backend_clustering_mode')).toBe("backend_clustering_mode = 'streaming_replication'");
  });
});

describe('pgpool.conf settings', () => {
  test('load balancing, connection caching and pool_hba are on by default', () => {
    const objects = objectsOf();
    expect(['load_balance_mode', 'connection_cache', 'enable_pool_hba', 'statement_level_load_balance', 'allow_clear_text_frontend_auth', 'ssl']
      .map((name) => confLine(objects, name))).toEqual([
      'load_balance_mode = on', 'connection_cache = on', 'enable_pool_hba = on', 'statement_level_load_balance = off',
      'allow_clear_text_frontend_auth = off', "ssl = 'true'",
    ]);
  });

  test('defaults: 32 children, 1 connection each, 5-minute child life, sr_check every 10 s, a health check every 5 s', () => {
    const objects = objectsOf();
    const names = ['num_init_children', 'max_pool', 'child_life_time', 'child_max_connections', 'connection_life_time', 'client_idle_limit',
      'sr_check_period', 'health_check_period'];
    expect(names.map((name) => setting(objects, name))).toEqual(['32', '1', '300', '0', '0', '0', '10', '5']);
    expect(setting(objects, 'disable_load_balance_on_write')).toBe('transaction');
  });

  test('waits on a dead or frozen backend are bounded: health check timeout 5 s without retries, connect timeout 5 s', () => {
    const names = ['health_check_timeout', 'health_check_max_retries', 'health_check_retry_delay', 'connect_timeout'];
    expect(names.map((name) => setting(objectsOf(), name))).toEqual(['5', '0', '1', '5000']);
    // Without health checks, only connect_timeout remains.
    expect(names.map((name) => setting(objectsOf({ healthCheckPeriod: Duration.seconds(0) }), name))).toEqual([undefined, undefined, undefined, '5000']);
  });

  test('extraParameters replace a bound\'s default, which then appears once', () => {
    const settings = readPgpoolConf(pgpoolConf(objectsOf({ extraParameters: { health_check_timeout: '20', connect_timeout: '10000' } })));
    expect(settings.filter(([name]) => name === 'health_check_timeout' || name === 'connect_timeout')).toEqual([['connect_timeout', '10000'], ['health_check_timeout', '20']]);
  });

  test('typed props are rendered with Pgpool-II quoting: numbers and booleans bare, strings quoted, durations in seconds', () => {
    const objects = objectsOf({
      loadBalanceMode: false, connectionCache: false, statementLevelLoadBalance: true,
      disableLoadBalanceOnWrite: DisableLoadBalanceOnWrite.DML_ADAPTIVE,
      numInitChildren: 64, maxPool: 4, childLifeTime: Duration.minutes(10), childMaxConnections: 1000, connectionLifeTime: Duration.hours(1),
      clientIdleLimit: Duration.seconds(90), srCheckPeriod: Duration.seconds(5), healthCheckPeriod: Duration.seconds(30), tls: {},
    });
    const names = ['load_balance_mode', 'connection_cache', 'statement_level_load_balance', 'disable_load_balance_on_write', 'num_init_children',
      'max_pool', 'child_life_time', 'child_max_connections', 'connection_life_time', 'client_idle_limit', 'sr_check_period',
      'health_check_period', 'ssl'];
    expect(names.map((name) => confLine(objects, name))).toEqual([
      'load_balance_mode = off', 'connection_cache = off', 'statement_level_load_balance = on', "disable_load_balance_on_write = 'dml_adaptive'",
      'num_init_children = 64', 'max_pool = 4', 'child_life_time = 600', 'child_max_connections = 1000', 'connection_life_time = 3600',
      'client_idle_limit = 90', 'sr_check_period = 5', 'health_check_period = 30', "ssl = 'true'",
    ]);
  });

  test('listening, the pidfile and logs are the construct\'s', () => {
    const objects = objectsOf();
    expect(['listen_addresses', 'pcp_listen_addresses', 'pid_file_name', 'logdir', 'log_destination'].map((name) => setting(objects, name)))
      .toEqual(['*', 'localhost', '/var/run/pgpool/pgpool.pid', '/var/run/pgpool', 'stderr']);
    expect(mountAt(pgpoolContainer(objects), '/var/run/pgpool').name).toBe('run');
  });

  test('extra parameters are written, quoted, after the typed ones', () => {
    const objects = objectsOf({ extraParameters: { log_min_messages: 'warning', health_check_timeout: '10' } });
    const names = readPgpoolConf(pgpoolConf(objects)).map(([name]) => name);
    expect(names.slice(-2)).toEqual(['health_check_timeout', 'log_min_messages']);
    expect(confLine(objects, 'log_min_messages')).toBe("log_min_messages = 'warning'");
  });

  test('every line is one Pgpool-II reads, every parameter appears once and is a Pgpool-II 4.3 parameter or a node\'s', () => {
    const objects = objectsOf({ tls: {}, healthCheckPeriod: Duration.seconds(30), extraParameters: { log_min_messages: 'warning' } });
    const settings = readPgpoolConf(pgpoolConf(objects));
    settingsMap(settings);
    const perNode = /^backend_(hostname|port|weight|flag|application_name)[01]$/;
    expect(settings.map(([name]) => name).filter((name) => !PGPOOL_43_PARAMETERS.has(name) && !perNode.test(name))).toEqual([]);
  });

  // The balancer writes log_destination itself, so extraParameters may not write it a second
  // time: it would be twice in pgpool.conf, and in ENVIRONMENT mode two
  // PGPOOL_PARAMS_LOG_DESTINATION variables in one container, which server-side apply refuses
  // ("duplicate entries for key").
  test.each([
    ['CONFIG_MAP', CONFIG_MAP],
    ['ENVIRONMENT', ENVIRONMENT],
  ] as const)('in %s mode a parameter the construct also writes (log_destination) is refused or written once', (_mode, mode) => {
    let objects: any[];
    try {
      objects = objectsOf({ ...mode, extraParameters: { log_destination: 'stderr,syslog' } });
    } catch (error) {
      expect((error as Error).message).toMatch(/^test\/Balancer: extraParameters\.log_destination /);
      return;
    }
    const names = pgpoolContainer(objects).env.map((e: any) => e.name);
    expect(names.filter((name: string, index: number) => names.indexOf(name) !== index)).toEqual([]);
    // startedSettings fails on a name Pgpool-II would read twice.
    expect(startedSettings(objects, mode.configMode).get('log_destination')).toBe('stderr,syslog');
  });
});

describe('pool_hba.conf', () => {
  const entries = (conf: string) => conf.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')).map((line) => line.split(/\s+/));
  /** The image's pool_passwd settings: none is set, as the logins init step writes pool_passwd itself. */
  const IMAGE_PASSWORD_SETTINGS = ['PGPOOL_PASSWORD_ENCRYPTION_METHOD', 'PGPOOL_SKIP_PASSWORD_ENCRYPTION'];

  test('every client and the local socket log in with scram-sha-256 over pool_passwd, from anywhere by default, over TLS', () => {
    const objects = objectsOf();
    expect(entries(poolHbaConf(objects))).toEqual([
      ['local', 'all', 'all', 'scram-sha-256'],
      ['hostssl', 'all', 'all', '0.0.0.0/0', 'scram-sha-256'],
      ['hostssl', 'all', 'all', '::/0', 'scram-sha-256'],
    ]);
    // pool_passwd stays enabled (else the entrypoint appends ssl = 'on'); the image encrypts nothing itself.
    expect(envEntry(pgpoolContainer(objects), 'PGPOOL_ENABLE_POOL_PASSWD')).toEqual({ name: 'PGPOOL_ENABLE_POOL_PASSWD', value: 'true' });
    expect(IMAGE_PASSWORD_SETTINGS.map((name) => envEntry(pgpoolContainer(objects), name))).toEqual([undefined, undefined]);
  });

  test('md5 when asked, in pool_hba.conf only: pool_passwd holds the same TEXT entries for md5 and scram-sha-256', () => {
    const md5 = objectsOf({ passwordEncryption: PgpoolPasswordEncryption.MD5 });
    expect(entries(poolHbaConf(md5)).map((entry) => entry[entry.length - 1])).toEqual(['md5', 'md5', 'md5']);
    expect(IMAGE_PASSWORD_SETTINGS.map((name) => envEntry(pgpoolContainer(md5), name))).toEqual([undefined, undefined]);
    expect(configData(md5)['logins.sh']).toBe(configData(objectsOf())['logins.sh']);
    expect(configData(md5)['logins.sh']).toContain("printf '%s:TEXT%s\\n'");
  });

  test('tls (required by default) turns the network lines into hostssl, with a Secret too', () => {
    const objects = objectsOf({ tls: { secretName: 'pgpool-tls' }, allowedCidrs: ['10.0.0.0/8'] });
    expect(entries(poolHbaConf(objects))).toEqual([['local', 'all', 'all', 'scram-sha-256'], ['hostssl', 'all', 'all', '10.0.0.0/8', 'scram-sha-256']]);
  });

  test('tls with required: false keeps host lines, with ssl on', () => {
    const objects = objectsOf({ tls: { required: false } });
    expect(entries(poolHbaConf(objects)).map((entry) => entry[0])).toEqual(['local', 'host', 'host']);
    expect(confLine(objects, 'ssl')).toBe("ssl = 'true'");
  });

  test('tls.disabled keeps host lines, with ssl off', () => {
    const objects = objectsOf({ tls: { disabled: true } }, { backendPlaintext: true });
    expect(entries(poolHbaConf(objects)).map((entry) => entry[0])).toEqual(['local', 'host', 'host']);
    expect(confLine(objects, 'ssl')).toBe('ssl = off');
  });

  test('allowedCidrs lists the client networks', () => {
    const cidrs = entries(poolHbaConf(objectsOf({ allowedCidrs: ['10.0.0.0/8', 'fd00::/8'] }))).slice(1).map((entry) => entry[3]);
    expect(cidrs).toEqual(['10.0.0.0/8', 'fd00::/8']);
  });

  test('pool_hba.conf is in the ConfigMap in both modes, and the image reads it from /config', () => {
    for (const mode of [CONFIG_MAP, ENVIRONMENT]) {
      const objects = objectsOf(mode);
      expect(poolHbaConf(objects)).toContain('scram-sha-256');
      expect(mountAt(pgpoolContainer(objects), '/config').name).toBe('config');
    }
  });
});

describe('config.sh (CONFIG_MAP mode)', () => {
  test('appends sr_check_user, and health_check_user when healthCheckPeriod > 0', () => {
    expect(configScript(objectsOf({ healthCheckPeriod: Duration.seconds(0) }))).toMatch(/^set -- sr_check_user$/m);
    expect(configScript(objectsOf())).toMatch(/^set -- sr_check_user health_check_user$/m);
  });

  test.each([
    ['without health checks', { healthCheckPeriod: Duration.seconds(0) }],
    ['with health checks', {}],
  ])('is POSIX sh and shellcheck-clean %s', (_what, props) => {
    const script = configScript(objectsOf(props));
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
  });

  test('checks the name before it writes it into pgpool.conf', () => {
    const script = configScript(objectsOf());
    expect(script.indexOf('*[!A-Za-z0-9_.-]*')).toBeGreaterThan(0);
    expect(script.indexOf('*[!A-Za-z0-9_.-]*')).toBeLessThan(script.indexOf('printf'));
  });

  test('run as the init container runs it, it writes the ConfigMap\'s pgpool.conf plus sr_check_user, and pool_hba.conf', () => {
    const objects = objectsOf();
    const run = runConfigScript(objects, 'srcheck');
    expect(run.status).toBe(0);
    expect(run.pgpoolConf).toBe(`${pgpoolConf(objects)}sr_check_user = 'srcheck'\nhealth_check_user = 'srcheck'\n`);
    expect(run.poolHbaConf).toBe(poolHbaConf(objects));
    expect(new Map(readPgpoolConf(run.pgpoolConf!)).get('sr_check_user')).toBe('srcheck');
  });

  test('with health checks it writes health_check_user too', () => {
    const settings = new Map(readPgpoolConf(runConfigScript(objectsOf({ healthCheckPeriod: Duration.seconds(30) }), 'srcheck').pgpoolConf!));
    expect([settings.get('sr_check_user'), settings.get('health_check_user'), settings.get('health_check_period')]).toEqual(['srcheck', 'srcheck', '30']);
  });

  test.each(["srcheck'; x", 'sr check', ''])('refuses the sr_check name %p and writes no pgpool.conf', (name) => {
    const run = runConfigScript(objectsOf(), name);
    expect(run.status).toBe(1);
    expect(run.pgpoolConf).toBeUndefined();
    expect(run.stderr).toMatch(/sr_check user's name/);
  });

  test('the Secret\'s username key, and not its password, is projected where config.sh reads it', () => {
    const objects = objectsOf({ srCheckUser: { secretName: 'pgpool-srcheck', usernameKey: 'login' } });
    expect(volume(objects, 'srcheck-name')).toEqual({
      name: 'srcheck-name', projected: { defaultMode: 0o440, sources: [{ secret: { name: 'pgpool-srcheck', items: [{ key: 'login', path: 'srcheck/username' }] } }] },
    });
    expect(configScript(objects)).toContain('"$CREDENTIALS_DIR/srcheck/username"');
  });
});

describe('CONFIG_MAP mode pod', () => {
  test('the init containers are the certificate maker, seed-etc, logins, then config; with a tls Secret or without TLS no certificate maker', () => {
    const names = (objects: any[]) => podSpec(objects).initContainers.map((c: any) => c.name);
    expect(names(objectsOf({ tls: { secretName: 'pgpool-tls' } }))).toEqual(['seed-etc', 'logins', 'config']);
    expect(names(objectsOf())).toEqual(['certificate', 'seed-etc', 'logins', 'config']);
    expect(names(objectsOf({ tls: { disabled: true } }, { backendPlaintext: true }))).toEqual(['seed-etc', 'logins', 'config']);
  });

  test('seed-etc copies the image\'s etc directory into the etc emptyDir', () => {
    const seed = initContainer(objectsOf(), 'seed-etc');
    expect(seed.command).toEqual(['cp', '-R', '/opt/pgpool-II/etc/.', '/seed/']);
    expect(seed.volumeMounts).toEqual([{ name: 'etc', mountPath: '/seed' }]);
  });

  test('/config is an emptyDir that config.sh fills from the ConfigMap and the sr_check user\'s name', () => {
    const objects = objectsOf();
    expect(volume(objects, 'config')).toEqual({ name: 'config', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
    expect(volume(objects, 'template').configMap.name).toBe('balancer-config');
    const config = initContainer(objects, 'config');
    expect(config.command).toEqual(['/bin/sh', '/etc/pgpool-template/config.sh']);
    expect(config.volumeMounts).toEqual([
      { name: 'template', mountPath: '/etc/pgpool-template', readOnly: true },
      { name: 'config', mountPath: '/config' },
      { name: 'srcheck-name', mountPath: '/etc/pgpool-secrets', readOnly: true },
    ]);
    expect(mountAt(pgpoolContainer(objects), '/config').name).toBe('config');
  });

  test('the ConfigMap holds pgpool.conf, pool_hba.conf, config.sh and logins.sh; no PGPOOL_PARAMS_ variable is set', () => {
    const objects = objectsOf();
    expect(Object.keys(configData(objects)).sort()).toEqual(['config.sh', 'logins.sh', 'pgpool.conf', 'pool_hba.conf']);
    expect(volume(objects, 'template').configMap.items.map((item: any) => item.path)).toEqual(['pgpool.conf', 'pool_hba.conf', 'config.sh']);
    expect(volume(objects, 'scripts').configMap.items.map((item: any) => item.path)).toEqual(['logins.sh']);
    expect(pgpoolContainer(objects).env.filter((e: any) => e.name.startsWith('PGPOOL_PARAMS_'))).toEqual([]);
  });

  test('only the logins init container mounts the logins\' Secrets, only the config init container the sr_check user\'s name', () => {
    const mounting = (objects: any[], name: string) => allContainers(objects)
      .filter((c) => c.volumeMounts.some((m: any) => m.name === name)).map((c) => c.name);
    const objects = objectsOf();
    expect(mounting(objects, 'secrets')).toEqual(['logins']);
    expect(mounting(objects, 'srcheck-name')).toEqual(['config']);
  });
});

describe('ENVIRONMENT mode', () => {
  const typedProps: Props = {
    numInitChildren: 16, maxPool: 2, childLifeTime: Duration.minutes(10), srCheckPeriod: Duration.seconds(5), healthCheckPeriod: Duration.seconds(30),
    disableLoadBalanceOnWrite: DisableLoadBalanceOnWrite.ALWAYS, statementLevelLoadBalance: true, tls: { secretName: 'pgpool-tls' },
    extraParameters: { log_min_messages: 'warning', log_line_prefix: '%m: %a pid %p: ' },
  };

  test('the ConfigMap holds only pool_hba.conf and logins.sh, pool_hba.conf mounted read-only at /config; the init containers are the certificate maker, seed-etc and logins', () => {
    const objects = objectsOf(ENVIRONMENT);
    expect(Object.keys(configData(objects)).sort()).toEqual(['logins.sh', 'pool_hba.conf']);
    // Only pool_hba.conf lands in /config; logins.sh is the logins init container's.
    expect(volume(objects, 'config')).toEqual({
      name: 'config', configMap: { name: 'balancer-config', defaultMode: 0o444, items: [{ key: 'pool_hba.conf', path: 'pool_hba.conf' }] },
    });
    expect(mountAt(pgpoolContainer(objects), '/config')).toEqual({ name: 'config', mountPath: '/config', readOnly: true });
    expect(podSpec(objects).initContainers.map((c: any) => c.name)).toEqual(['certificate', 'seed-etc', 'logins']);
    expect(podSpec(objectsOf({ ...ENVIRONMENT, tls: { secretName: 'pgpool-tls' } })).initContainers.map((c: any) => c.name)).toEqual(['seed-etc', 'logins']);
    // No config.sh step: neither its template nor the sr_check user's name; the logins' Secrets are mounted in both modes.
    expect([volume(objects, 'template'), volume(objects, 'srcheck-name')]).toEqual([undefined, undefined]);
    expect(volume(objects, 'secrets').projected.sources.map((s: any) => s.secret.name)).toEqual(['pgpool-srcheck', 'airflow-app']);
  });

  test('every pgpool.conf parameter is a PGPOOL_PARAMS_ variable', () => {
    const confNames = readPgpoolConf(pgpoolConf(objectsOf(typedProps))).map(([name]) => `PGPOOL_PARAMS_${name.toUpperCase()}`).sort();
    const envNames = pgpoolContainer(objectsOf({ ...ENVIRONMENT, ...typedProps })).env
      .filter((e: any) => e.name.startsWith('PGPOOL_PARAMS_') && e.value !== undefined).map((e: any) => e.name).sort();
    expect(envNames).toEqual(confNames);
  });

  test.each([
    ['the defaults', {}],
    ['typed props, TLS, health checks and extra parameters', typedProps],
    ['md5 and PCP', { passwordEncryption: PgpoolPasswordEncryption.MD5, pcpUser: { secretName: 'pgpool-pcp' }, exposePcp: true }],
  ])('with %s, the image\'s sed turns the variables into exactly ConfigMap mode\'s settings', (_what, props) => {
    const configMap = objectsOf({ ...CONFIG_MAP, ...props });
    const environment = objectsOf({ ...ENVIRONMENT, ...props });
    const literal = pgpoolContainer(environment).env.filter((e: any) => e.value !== undefined);
    expect([...settingsMap(readPgpoolConf(imageSed(literal))).entries()].sort())
      .toEqual([...settingsMap(readPgpoolConf(pgpoolConf(configMap))).entries()].sort());
    // And as started, the sr_check (and health check) user from the Secret included.
    expect([...startedSettings(environment, PgpoolConfigMode.ENVIRONMENT).entries()].sort())
      .toEqual([...startedSettings(configMap, PgpoolConfigMode.CONFIG_MAP).entries()].sort());
  });

  test('PGPOOL_PARAMS_SR_CHECK_USER comes from the sr_check Secret, and the health check user too with health checks', () => {
    const container = pgpoolContainer(objectsOf({ ...ENVIRONMENT, srCheckUser: { secretName: 'pgpool-srcheck', usernameKey: 'login' } }));
    expect(envEntry(container, 'PGPOOL_PARAMS_SR_CHECK_USER')).toEqual({
      name: 'PGPOOL_PARAMS_SR_CHECK_USER', valueFrom: { secretKeyRef: { name: 'pgpool-srcheck', key: 'login' } },
    });
    const withoutChecks = pgpoolContainer(objectsOf({ ...ENVIRONMENT, healthCheckPeriod: Duration.seconds(0) }));
    expect(envEntry(withoutChecks, 'PGPOOL_PARAMS_HEALTH_CHECK_USER')).toBeUndefined();
    const withChecks = pgpoolContainer(objectsOf({ ...ENVIRONMENT }));
    expect(envEntry(withChecks, 'PGPOOL_PARAMS_HEALTH_CHECK_USER')).toEqual({
      name: 'PGPOOL_PARAMS_HEALTH_CHECK_USER', valueFrom: { secretKeyRef: { name: 'pgpool-srcheck', key: 'username' } },
    });
  });

  test('values keep their case: the image lower-cases only the name', () => {
    const container = pgpoolContainer(objectsOf(ENVIRONMENT));
    expect(envEntry(container, 'PGPOOL_PARAMS_BACKEND_FLAG0').value).toBe('ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER');
    expect(envEntry(container, 'PGPOOL_PARAMS_BACKEND_HOSTNAME0').value).toBe('db-rw.apps.svc');
  });

  test('every variable name appears once', () => {
    const names = pgpoolContainer(objectsOf({ ...ENVIRONMENT, ...typedProps, pcpUser: { secretName: 'pgpool-pcp' } })).env.map((e: any) => e.name);
    expect(names.filter((name: string, index: number) => names.indexOf(name) !== index)).toEqual([]);
  });
});

describe('extraParameters values reach Pgpool-II exactly, or are refused', () => {
  const VALUES = ['%m: pid %p: ', 'a\\b', 'ends with a backslash\\', 'x # y', '', '  padded  ', 'ünïcödé', 'pid=%p', "it's", "\\'"];
  const cases = (['CONFIG_MAP', 'ENVIRONMENT'] as const).flatMap((mode) => VALUES.map((value) => [mode, value] as const));

  test.each(cases)('%s mode: log_line_prefix %p', (mode, value) => {
    const configMode = PgpoolConfigMode[mode];
    let objects: any[];
    try {
      objects = objectsOf({ configMode, extraParameters: { log_line_prefix: value } });
    } catch (error) {
      expect((error as Error).constructor).toBe(Error);
      expect((error as Error).message).toMatch(/^test\/Balancer: /);
      return;
    }
    expect(startedSettings(objects, configMode).get('log_line_prefix')).toBe(value);
  });
});

describe('logins: pool_passwd and pcp.conf written by an init container from the mounted Secrets', () => {
  const users = [
    { credentials: AIRFLOW, envPrefix: 'AIRFLOW' },
    { credentials: { secretName: 'reporting', usernameKey: 'login', passwordKey: 'secret' } },
  ];
  const PCP = { pcpUser: { secretName: 'pgpool-pcp' } };
  const items = (dir: string, secretName: string, usernameKey = 'username', passwordKey = 'password') =>
    ({ secret: { name: secretName, items: [{ key: usernameKey, path: `${dir}/username` }, { key: passwordKey, path: `${dir}/password` }] } });
  const loginsScript = (objects: any[]) => configData(objects)['logins.sh'];
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');

  test('the logins init container runs logins.sh from the ConfigMap with the Secrets and the image\'s etc directory mounted', () => {
    const objects = objectsOf({ users, ...PCP });
    const logins = initContainer(objects, 'logins');
    expect(logins.command).toEqual(['/bin/sh', '/etc/pgpool-scripts/logins.sh']);
    expect(logins.env).toEqual([{ name: 'CREDENTIALS_DIR', value: '/etc/pgpool-secrets' }, { name: 'ETC_DIR', value: '/opt/pgpool-II/etc' }]);
    expect(logins.volumeMounts).toEqual([
      { name: 'scripts', mountPath: '/etc/pgpool-scripts', readOnly: true },
      { name: 'secrets', mountPath: '/etc/pgpool-secrets', readOnly: true },
      { name: 'etc', mountPath: '/opt/pgpool-II/etc' },
    ]);
    expect(volume(objects, 'scripts')).toEqual({
      name: 'scripts', configMap: { name: 'balancer-config', defaultMode: 0o444, items: [{ key: 'logins.sh', path: 'logins.sh' }] },
    });
    // pool_passwd and pcp.conf land where Pgpool-II reads them: the pgpool container's etc mount, in memory.
    expect(mountAt(pgpoolContainer(objects), '/opt/pgpool-II/etc')).toEqual({ name: 'etc', mountPath: '/opt/pgpool-II/etc' });
    expect(volume(objects, 'etc').emptyDir).toEqual({ medium: 'Memory', sizeLimit: '16Mi' });
  });

  test.each([CONFIG_MAP, ENVIRONMENT])('each role\'s Secret is a directory of the secrets volume: srcheck, login-<prefix> by user (USER<index> by default), then pcp (%p)', (mode) => {
    expect(volume(objectsOf({ ...mode, users, ...PCP }), 'secrets')).toEqual({
      name: 'secrets',
      projected: {
        defaultMode: 0o440,
        sources: [
          items('srcheck', 'pgpool-srcheck'),
          items('login-airflow', 'airflow-app'),
          items('login-user1', 'reporting', 'login', 'secret'),
          items('pcp', 'pgpool-pcp'),
        ],
      },
    });
    expect(volume(objectsOf({ ...mode, users }), 'secrets').projected.sources.map((s: any) => s.secret.name))
      .toEqual(['pgpool-srcheck', 'airflow-app', 'reporting']);
  });

  test.each([CONFIG_MAP, ENVIRONMENT])('the pgpool container has no credential in its environment and mounts no Secret, so the image registers nobody (%p)', (mode) => {
    const objects = objectsOf({ ...mode, users, ...PCP, healthCheckPeriod: Duration.seconds(30) });
    const container = pgpoolContainer(objects);
    const fromSecrets = container.env.filter((e: any) => e.valueFrom).map((e: any) => [e.name, e.valueFrom.secretKeyRef]);
    // Only the sr_check user's name, and only where the image writes pgpool.conf from the environment.
    expect(fromSecrets).toEqual(mode === ENVIRONMENT ? [
      ['PGPOOL_PARAMS_SR_CHECK_USER', { name: 'pgpool-srcheck', key: 'username' }],
      ['PGPOOL_PARAMS_HEALTH_CHECK_USER', { name: 'pgpool-srcheck', key: 'username' }],
    ] : []);
    expect(container.env.map((e: any) => e.name).filter((name: string) => /_USERNAME$|PASSWORD|^PGPOOL_PCP_/.test(name))).toEqual([]);
    expect(container.envFrom).toBeUndefined();
    // The entrypoint's `printenv | grep -E '.+_USERNAME=.+'` finds no pair to pass to pg_enc.
    expect(poolPasswdPrefixes(runtimeEnv(container, objects))).toEqual([]);
    expect(container.volumeMounts.map((m: any) => m.name).filter((name: string) => ['secrets', 'srcheck-name', 'scripts'].includes(name))).toEqual([]);
  });

  test.each([
    ['users', { users }],
    ['users and a PCP user', { users, ...PCP }],
    ['ENVIRONMENT mode, a PCP user and md5', { ...ENVIRONMENT, ...PCP, passwordEncryption: PgpoolPasswordEncryption.MD5 }],
  ])('logins.sh is POSIX sh and shellcheck-clean with %s', (_what, props) => {
    const script = loginsScript(objectsOf(props as Props));
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
  });

  test('logins.sh lists the roles\' directories in pool_passwd order, and writes pcp.conf only with a PCP user', () => {
    const script = loginsScript(objectsOf({ users }));
    expect(script).toMatch(/^set -- srcheck login-airflow login-user1$/m);
    expect(script).not.toContain('pcp.conf');
    expect(loginsScript(objectsOf({ users, ...PCP }))).toMatch(/^user=\$\(secret_line pcp username\)$/m);
  });

  interface LoginsRun {
    readonly status: number | null;
    readonly stderr: string;
    /** The files of ETC_DIR afterwards, with their permission bits. */
    readonly files: { [file: string]: { text: string; mode: string } };
  }

  /**
   * Runs logins.sh with `shell` as the logins init container does: the secrets volume's items
   * written as the kubelet projects them (SECRET_VALUES, then `values`), ETC_DIR seeded with the
   * image's files and a stale pool_passwd.
   */
  function runLogins(objects: any[], shell: string, values: { [secretName: string]: { [key: string]: string } } = {}): LoginsRun {
    const dir = mkdtempSync(join(tmpdir(), 'balancer-logins-'));
    try {
      const secrets = join(dir, 'secrets');
      const etc = join(dir, 'etc');
      mkdirSync(etc);
      for (const { secret } of volume(objects, 'secrets').projected.sources) {
        for (const item of secret.items) {
          const value = values[secret.name]?.[item.key] ?? SECRET_VALUES[secret.name]?.[item.key];
          if (value === undefined) throw new Error(`no test value for Secret ${secret.name} key ${item.key}`);
          mkdirSync(join(secrets, item.path, '..'), { recursive: true });
          writeFileSync(join(secrets, item.path), value, { mode: 0o440 });
        }
      }
      writeFileSync(join(etc, 'pgpool.conf.sample'), '# the image\'s sample\n');
      writeFileSync(join(etc, 'pool_passwd'), 'stale:TEXTold\n', { mode: 0o644 });
      const script = join(dir, 'logins.sh');
      writeFileSync(script, loginsScript(objects));
      const result = spawnSync(shell, [script], { env: { PATH: process.env.PATH, CREDENTIALS_DIR: secrets, ETC_DIR: etc }, encoding: 'utf8' });
      const files = Object.fromEntries(readdirSync(etc).map((file) => [file, {
        text: readFileSync(join(etc, file), 'utf8'), mode: statSync(join(etc, file)).mode.toString(8).slice(-3),
      }]));
      return { status: result.status, stderr: result.stderr, files };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const SHELLS = ['bash', '/bin/sh'];

  test.each(SHELLS)('run with %s, it writes pool_passwd (srcheck, the users) and pcp.conf (the md5 of the PCP password), both 0600', (shell) => {
    const run = runLogins(objectsOf({ users, ...PCP }), shell);
    expect(run.status).toBe(0);
    expect(run.files).toEqual({
      'pgpool.conf.sample': { text: '# the image\'s sample\n', mode: '644' },
      'pool_passwd': { text: "srcheck:TEXTcheck=secret\nairflow:TEXTapp'pass\\:word\nreporter:TEXTreport-secret\n", mode: '600' },
      'pcp.conf': { text: `pcpadmin:${md5('pcp-secret')}\n`, mode: '600' },
    });
    expect(run.stderr).toBe('logins: pool_passwd written for 3 role(s)\nlogins: pcp.conf written\n');
  });

  test.each(SHELLS)('run with %s without a PCP user, it writes pool_passwd and no pcp.conf', (shell) => {
    const run = runLogins(objectsOf(), shell);
    expect(run.status).toBe(0);
    expect(Object.keys(run.files).sort()).toEqual(['pgpool.conf.sample', 'pool_passwd']);
    expect(run.files.pool_passwd).toEqual({ text: "srcheck:TEXTcheck=secret\nairflow:TEXTapp'pass\\:word\n", mode: '600' });
  });

  test.each(SHELLS)('run with %s, it escapes backslash and colon in names and passwords as Pgpool-II reads them, and keeps other bytes', (shell) => {
    const run = runLogins(objectsOf(), shell, { 'airflow-app': { username: 'air:flow\\x', password: ' a\\b:c$(x)`y` "q" ü ' } });
    expect(run.status).toBe(0);
    expect(run.files.pool_passwd.text).toBe('srcheck:TEXTcheck=secret\nair\\:flow\\\\x:TEXT a\\\\b\\:c$(x)`y` "q" ü \n');
  });

  test.each(SHELLS)('run with %s, a password of 124 bytes is written and one of 125 refused', (shell) => {
    const fits = runLogins(objectsOf(), shell, { 'airflow-app': { password: 'p'.repeat(124) } });
    expect(fits.status).toBe(0);
    expect(fits.files.pool_passwd.text).toContain(`\nairflow:TEXT${'p'.repeat(124)}\n`);
    const long = runLogins(objectsOf(), shell, { 'airflow-app': { password: 'p'.repeat(125) } });
    expect(long.status).toBe(1);
    expect(long.stderr).toBe('logins: the password in login-airflow is longer than the 124 bytes Pgpool-II reads\n');
    expect(long.files.pool_passwd).toEqual({ text: 'stale:TEXTold\n', mode: '644' });
  });

  test.each([
    ['a password of two lines', 'airflow-app', 'password', 'two\nlines', 'login-airflow/password'],
    ['an empty user name', 'airflow-app', 'username', '', 'login-airflow/username'],
    ['an empty sr_check password', 'pgpool-srcheck', 'password', '', 'srcheck/password'],
  ])('refuses %s, naming the file and not the value, and leaves pool_passwd as it was', (_what, secretName, key, value, file) => {
    const run = runLogins(objectsOf(), 'bash', { [secretName]: { [key]: value } });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`logins: ${file} must hold one non-empty line\n`);
    expect(run.files.pool_passwd).toEqual({ text: 'stale:TEXTold\n', mode: '644' });
    // Nothing else is written (a half-written .tmp is replaced on the next attempt).
    expect(Object.keys(run.files).filter((name) => !name.endsWith('.tmp')).sort()).toEqual(['pgpool.conf.sample', 'pool_passwd']);
  });

  test('refuses a PCP user name pcp.conf cannot hold, and writes no pcp.conf', () => {
    const run = runLogins(objectsOf(PCP), 'bash', { 'pgpool-pcp': { username: 'pcp:admin' } });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("logins: the PCP user's name must be letters, digits, '_', '.' or '-'\n");
    expect(run.files['pcp.conf']).toBeUndefined();
  });
});

describe('no password in the YAML', () => {
  const props: Props = { pcpUser: { secretName: 'pgpool-pcp' }, healthCheckPeriod: Duration.seconds(30), tls: { secretName: 'pgpool-tls' } };

  test.each([CONFIG_MAP, ENVIRONMENT])('no Secret object is rendered, no container reads a password key from its environment, and the password keys are files only the logins init container mounts (%p)', (mode) => {
    const objects = objectsOf({ ...props, ...mode });
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    const containers = allContainers(objects);
    expect(containers.filter((c) => c.envFrom)).toEqual([]);
    const env = containers.flatMap((c) => c.env ?? []);
    expect(env.filter((e: any) => /PASSWORD/i.test(e.name))).toEqual([]);
    expect(env.filter((e: any) => e.valueFrom?.secretKeyRef && e.valueFrom.secretKeyRef.key !== 'username')).toEqual([]);
    const passwordFiles = podSpec(objects).volumes.flatMap((v: any) => (v.projected?.sources ?? [])
      .flatMap((s: any) => (s.secret?.items ?? []).filter((item: any) => item.key === 'password').map((item: any) => `${v.name}:${s.secret.name}/${item.path}`)));
    expect(passwordFiles).toEqual(['secrets:pgpool-srcheck/srcheck/password', 'secrets:airflow-app/login-airflow/password', 'secrets:pgpool-pcp/pcp/password']);
    expect(containers.filter((c) => c.volumeMounts.some((m: any) => m.name === 'secrets')).map((c) => c.name)).toEqual(['logins']);
  });

  test.each([CONFIG_MAP, ENVIRONMENT])('pgpool.conf and the variables set no password (%p)', (mode) => {
    const objects = objectsOf({ ...props, ...mode });
    const yaml = stringify(balancerObjects(objects));
    expect(yaml).not.toMatch(/(sr_check|health_check|recovery|wd_lifecheck)_password|PGPOOL_PARAMS_\w*PASSWORD/i);
    const literals = allContainers(objects).flatMap((c) => c.env ?? []).filter((e: any) => e.value !== undefined).map((e: any) => e.value);
    const secretValues = Object.values(SECRET_VALUES).flatMap((values) => Object.values(values));
    expect(literals.filter((value: string) => secretValues.includes(value))).toEqual([]);
  });
});

describe('the cluster\'s sr_check role', () => {
  test('the cluster gains a login role for the sr_check Secret, granted pg_monitor', () => {
    const objects = objectsOf();
    const source = clusterSecretSources(objects).find((s: any) => s.name === 'pgpool-srcheck');
    expect(source).toBeDefined();
    const dir = source.items[0].path.split('/')[0];
    const script = bootstrapScript(objects);
    const start = script.indexOf(`\\set role_name \`cat "$CREDENTIALS_DIR/${dir}/username"\``);
    expect(start).toBeGreaterThan(0);
    const next = script.indexOf('\\set role_name', start + 1);
    const block = script.slice(start, next < 0 ? undefined : next);
    expect(block).toContain('ALTER ROLE :"role_name" WITH LOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT '
      + 'CONNECTION LIMIT -1 VALID UNTIL \'infinity\' PASSWORD :\'role_password\';');
    expect(block).toContain('GRANT pg_monitor TO :"role_name";');
  });

  test('the cluster\'s checksum changes when a balancer adds the role', () => {
    const chart = testChart('apps');
    new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, instances: 3 });
    const plain = findObject(synthObjects(chart), 'StatefulSet', 'db-primary').spec.template.metadata.annotations['checksum/config'];
    const withBalancer = findObject(objectsOf(), 'StatefulSet', 'db-primary').spec.template.metadata.annotations['checksum/config'];
    expect(withBalancer).not.toBe(plain);
  });

  test('an ExternalPostgres backend adds no role to a cluster in the chart', () => {
    const objects = objectsOf({}, { backend: 'external' });
    expect(clusterSecretSources(objects).map((s: any) => s.name)).not.toContain('pgpool-srcheck');
    expect(bootstrapScript(objects)).not.toContain('pg_monitor');
  });
});

describe('security, volumes and resources', () => {
  test('the pod runs as non-root uid 70 with a matching gid and fsGroup and RuntimeDefault seccomp', () => {
    expect(podSpec(objectsOf()).securityContext).toEqual({
      runAsNonRoot: true, runAsUser: 70, runAsGroup: 70, fsGroup: 70, fsGroupChangePolicy: 'OnRootMismatch', seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('runAsUser sets the uid, gid and fsGroup', () => {
    expect(podSpec(objectsOf({ runAsUser: 1000 })).securityContext).toMatchObject({ runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 });
  });

  test.each([CONFIG_MAP, ENVIRONMENT])('every container drops all capabilities, cannot escalate and has a read-only root filesystem (%p)', (mode) => {
    const containers = allContainers(objectsOf(mode));
    const contexts = containers.map((c) => c.securityContext);
    // The certificate init container, on top of the balancer's own containers (config in CONFIG_MAP mode only).
    expect(containers.map((c) => c.name)).toEqual(mode === CONFIG_MAP
      ? ['certificate', 'seed-etc', 'logins', 'config', 'pgpool'] : ['certificate', 'seed-etc', 'logins', 'pgpool']);
    expect(contexts.length).toBe(allContainers(objectsOf({ ...mode, tls: { secretName: 'pgpool-tls' } })).length + 1);
    for (const context of contexts) {
      expect(context).toEqual({
        allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
        capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
      });
    }
  });

  test.each([CONFIG_MAP, ENVIRONMENT])('what the image writes is on in-memory emptyDirs (%p)', (mode) => {
    const objects = objectsOf(mode);
    const container = pgpoolContainer(objects);
    for (const [path, name, sizeLimit] of [
      ['/opt/pgpool-II/etc', 'etc', '16Mi'], ['/var/run/pgpool', 'run', '1Mi'], ['/tmp', 'tmp', '64Mi'],
    ]) {
      expect(mountAt(container, path)).toEqual({ name, mountPath: path });
      expect(volume(objects, name)).toEqual({ name, emptyDir: { medium: 'Memory', sizeLimit } });
    }
    // The image's own TLS directory is gone: its entrypoint makes no certificate of its own.
    expect([mountAt(container, '/opt/pgpool-II/tls'), volume(objects, 'image-tls')]).toEqual([undefined, undefined]);
  });

  test('resources default to 100m/1 CPU and 256Mi memory on every container, and can be set', () => {
    for (const container of allContainers(objectsOf())) {
      expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '256Mi' } });
    }
    const resources = pgpoolContainer(objectsOf({ resources: { cpuRequest: '250m', cpuLimit: '2', memoryLimit: '512Mi' } })).resources;
    expect(resources).toEqual({ requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '512Mi' } });
  });
});

describe('probes and shutdown', () => {
  test('startup, readiness and liveness probes are TCP checks of the pgpool port', () => {
    const container = pgpoolContainer(objectsOf());
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
      expect(probe.tcpSocket).toEqual({ port: 'pgpool' });
      expect(probe.exec).toBeUndefined();
      expect(probe.httpGet).toBeUndefined();
    }
    expect(container.ports.map((p: any) => p.name)).toContain('pgpool');
  });

  test('preStop waits for the Services to forget the pod within the grace period', () => {
    const objects = objectsOf();
    expect(pgpoolContainer(objects).lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
    expect(podSpec(objects).terminationGracePeriodSeconds).toBe(30);
  });
});

describe('TLS', () => {
  const TLS_ITEMS = [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }];
  const CERTIFICATE_MOUNT = { name: 'tls', mountPath: '/etc/pgpool-tls', readOnly: true };
  const BACKEND_CA_MOUNT = { name: 'backend-ca', mountPath: '/etc/pgpool-backend-ca', readOnly: true };
  const SSL_FILES = ["ssl_cert = '/etc/pgpool-tls/tls.crt'", "ssl_key = '/etc/pgpool-tls/tls.key'"];
  /** pgpool.conf's ssl lines as written (CONFIG_MAP mode, the default). */
  const sslLines = (objects: any[]) => pgpoolConf(objects).split('\n').filter((line) => /^ssl/.test(line));
  /** The ssl settings Pgpool-II starts with, in either mode. */
  const startedSsl = (objects: any[], mode: { configMode: PgpoolConfigMode }) =>
    [...startedSettings(objects, mode.configMode)].filter(([name]) => name.startsWith('ssl'));
  const tlsMounts = (objects: any[]) => pgpoolContainer(objects).volumeMounts.filter((m: any) => ['tls', 'backend-ca'].includes(m.name));

  test.each([CONFIG_MAP, ENVIRONMENT])('the tls Secret is mounted read-only at /etc/pgpool-tls, named by ssl_cert and ssl_key, and ssl is \'true\' (%p)', (mode) => {
    const objects = objectsOf({ ...mode, tls: { secretName: 'pgpool-tls' } });
    expect(tlsMounts(objects)).toEqual([CERTIFICATE_MOUNT]);
    expect(volume(objects, 'tls')).toEqual({ name: 'tls', secret: { secretName: 'pgpool-tls', defaultMode: 0o440, items: TLS_ITEMS } });
    // The self-signed cluster behind has no CA: Pgpool-II takes its certificate unverified, without ssl_ca_cert.
    expect(startedSsl(objects, mode)).toEqual([['ssl', 'true'], ['ssl_cert', '/etc/pgpool-tls/tls.crt'], ['ssl_key', '/etc/pgpool-tls/tls.key']]);
  });

  test.each([CONFIG_MAP, ENVIRONMENT])('ssl is written \'true\', never on, and nothing lands in /config/tls: the image\'s entrypoint keeps the construct\'s certificate (%p)', (mode) => {
    for (const tls of [{}, { secretName: 'pgpool-tls' }]) {
      const objects = objectsOf({ ...mode, tls });
      const started = [...startedSettings(objects, mode.configMode)].filter(([name]) => name === 'ssl');
      // The entrypoint replaces the certificate on a last `ssl = on` (quoted or not) or files in /config/tls.
      expect(started).toEqual([['ssl', 'true']]);
      expect(allContainers(objects).flatMap((c) => c.volumeMounts).filter((m: any) => m.mountPath.startsWith('/config/tls'))).toEqual([]);
    }
  });

  test.each([CONFIG_MAP, ENVIRONMENT])('by default the certificate is self-signed: an in-memory tls volume the first init container fills (%p)', (mode) => {
    const objects = objectsOf(mode);
    expect(volume(objects, 'tls')).toEqual({ name: 'tls', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
    const maker = podSpec(objects).initContainers[0];
    expect([maker.name, maker.volumeMounts]).toEqual(['certificate', [{ name: 'tls', mountPath: '/certificate' }]]);
    expect(maker.env).toEqual([
      { name: 'CERTIFICATE_DIR', value: '/certificate' },
      { name: 'CERTIFICATE_COMMON_NAME', value: 'balancer' },
      { name: 'CERTIFICATE_DNS_NAMES', value: 'balancer balancer.apps balancer.apps.svc balancer.apps.svc.cluster.local' },
    ]);
    expect(tlsMounts(objects)).toEqual([CERTIFICATE_MOUNT]);
    expect(startedSsl(objects, mode)).toEqual([['ssl', 'true'], ['ssl_cert', '/etc/pgpool-tls/tls.crt'], ['ssl_key', '/etc/pgpool-tls/tls.key']]);
    expect(objects.filter((o) => o.kind === 'Certificate')).toEqual([]);
  });

  test('tls: {} is a self-signed certificate too; with tls { issuer } the Secret defaults to <name>-tls', () => {
    expect(volume(objectsOf({ tls: {} }), 'tls')).toEqual({ name: 'tls', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
    expect(volume(objectsOf({ tls: { issuer: { name: 'internal-ca' } } }), 'tls').secret.secretName).toBe('balancer-tls');
  });

  test.each([
    ['the cluster', 'cluster', { name: 'db-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] }],
    ['an ExternalPostgres', 'external', { name: 'ext-ca', items: [{ key: 'root-ca.pem', path: 'ca.crt' }] }],
  ] as const)('in front of %s with a CA, the backend\'s CA is the backend-ca volume, named by ssl_ca_cert', (_what, backend, ca) => {
    const objects = objectsOf({ tls: { secretName: 'pgpool-tls' } }, { backend, backendTls: true });
    expect(volume(objects, 'backend-ca')).toEqual({ name: 'backend-ca', projected: { defaultMode: 0o440, sources: [{ secret: ca }] } });
    expect(tlsMounts(objects)).toEqual([CERTIFICATE_MOUNT, BACKEND_CA_MOUNT]);
    expect(sslLines(objects)).toEqual(["ssl = 'true'", ...SSL_FILES, "ssl_ca_cert = '/etc/pgpool-backend-ca/ca.crt'"]);
  });

  test.each([
    ['the self-signed cluster', {}],
    ['an ExternalPostgres without a CA', { backend: 'external' }],
  ] as const)('in front of %s there is no backend-ca and no ssl_ca_cert, and ssl stays on', (_what, options) => {
    const objects = objectsOf({}, options);
    expect(volume(objects, 'backend-ca')).toBeUndefined();
    expect(sslLines(objects)).toEqual(["ssl = 'true'", ...SSL_FILES]);
  });

  test('no init container but the certificate maker mounts the TLS volume, and none mounts the backend CA', () => {
    for (const tls of [{ secretName: 'pgpool-tls' }, {}]) {
      const objects = objectsOf({ tls }, { backendTls: true });
      expect(podSpec(objects).initContainers.length).toBeGreaterThan(0);
      const mounting = podSpec(objects).initContainers.filter((c: any) => c.volumeMounts.some((m: any) => ['tls', 'backend-ca'].includes(m.name)));
      expect(mounting.map((c: any) => c.name)).toEqual(tls.secretName ? [] : ['certificate']);
    }
  });

  test('with tls.disabled in front of a plaintext backend there is no tls volume, ssl is off and pool_hba has host lines', () => {
    for (const backend of ['cluster', 'external'] as const) {
      const objects = objectsOf({ tls: { disabled: true } }, { backend, backendPlaintext: true });
      expect([volume(objects, 'tls'), volume(objects, 'backend-ca')]).toEqual([undefined, undefined]);
      expect(tlsMounts(objects)).toEqual([]);
      expect(sslLines(objects)).toEqual(['ssl = off']);
      expect(poolHbaConf(objects)).not.toContain('hostssl');
      expect(podSpec(objects).initContainers.map((c: any) => c.name)).not.toContain('certificate');
    }
  });

  test('a balancer with TLS in front of a plaintext backend keeps its own TLS for clients', () => {
    const objects = objectsOf({}, { backendPlaintext: true });
    expect([volume(objects, 'tls')?.emptyDir, volume(objects, 'backend-ca')]).toEqual([{ medium: 'Memory', sizeLimit: '1Mi' }, undefined]);
    expect(sslLines(objects)).toEqual(["ssl = 'true'", ...SSL_FILES]);
  });

  test('without an issuer no Certificate is rendered; with one, a Certificate for the Service names', () => {
    expect(objectsOf({ tls: { secretName: 'pgpool-tls' } }).filter((o) => o.kind === 'Certificate')).toEqual([]);
    const { balancer, objects } = synth({ tls: { issuer: { name: 'internal-ca' } } });
    const certificates = objects.filter((o) => o.kind === 'Certificate');
    expect(certificates.map((o) => o.metadata.name)).toEqual(['balancer']);
    const certificate = certificates[0];
    expect(certificate.spec.secretName).toBe('balancer-tls');
    expect(certificate.spec.dnsNames).toEqual(balancer.certificateDnsNames);
    expect(balancer.certificateDnsNames).toEqual(['balancer', 'balancer.apps', 'balancer.apps.svc', 'balancer.apps.svc.cluster.local']);
    expect(certificate.spec.issuerRef).toEqual({ name: 'internal-ca', kind: 'Issuer', group: 'cert-manager.io' });
  });

  test('certificateAuthority is the tls Secret\'s ca.crt with a Secret, and unset for a self-signed certificate or tls.disabled; encrypted unless disabled', () => {
    const withSecret = synth({ tls: { secretName: 'pgpool-tls' } }).balancer;
    expect([withSecret.encrypted, withSecret.certificateAuthority]).toEqual([true, { secretName: 'pgpool-tls', key: 'ca.crt' }]);
    expect([synth().balancer.encrypted, synth().balancer.certificateAuthority]).toEqual([true, undefined]);
    const plaintext = synth({ tls: { disabled: true } }, { backendPlaintext: true }).balancer;
    expect([plaintext.encrypted, plaintext.certificateAuthority]).toEqual([false, undefined]);
  });
});

describe('config checksum', () => {
  test('is a sha256 hex digest, identical for identical props', () => {
    expect(checksum(objectsOf())).toMatch(/^[0-9a-f]{64}$/);
    expect(checksum(objectsOf({ numInitChildren: 40 }))).toBe(checksum(objectsOf({ numInitChildren: 40 })));
  });

  test.each([
    ['a typed parameter', { numInitChildren: 32 }, { numInitChildren: 33 }],
    ['an extra parameter', {}, { extraParameters: { log_min_messages: 'warning' } }],
    ['the config mode', CONFIG_MAP, ENVIRONMENT],
    ['the users', {}, { users: [...USERS, { credentials: { secretName: 'reporting' } }] }],
    ['pool_hba.conf', {}, { allowedCidrs: ['10.0.0.0/8'] }],
  ])('changes with %s', (_what, before, after) => {
    expect(checksum(objectsOf(before as Props))).not.toBe(checksum(objectsOf(after as Props)));
  });

  test.each([
    ['a typed parameter', { numInitChildren: 32 }, { numInitChildren: 33 }],
    ['an extra parameter', {}, { extraParameters: { log_min_messages: 'warning' } }],
  ])('changes with %s in ENVIRONMENT mode too', (_what, before, after) => {
    expect(checksum(objectsOf({ ...ENVIRONMENT, ...before } as Props))).not.toBe(checksum(objectsOf({ ...ENVIRONMENT, ...after } as Props)));
  });
});

describe('schema validation', () => {
  const variations: Array<[string, Props, Options]> = [
    ['a default balancer', {}, {}],
    ['ENVIRONMENT mode with TLS, PCP, md5 and health checks', {
      ...ENVIRONMENT, tls: { secretName: 'pgpool-tls', required: true }, pcpUser: { secretName: 'pgpool-pcp' }, exposePcp: true,
      passwordEncryption: PgpoolPasswordEncryption.MD5, healthCheckPeriod: Duration.seconds(30),
    }, {}],
    ['a single replica and no namespace', { replicas: 1 }, { namespace: null }],
    ['a primary-only ExternalPostgres backend', {}, { backend: 'external-primary-only' }],
    ['TLS disabled in front of a plaintext cluster', { tls: { disabled: true } }, { backendPlaintext: true }],
    ['TLS with an issuer in front of a cluster with TLS', { tls: { issuer: { name: 'internal-ca' } } }, { backendTls: true }],
    ['TLS in front of an ExternalPostgres with a CA', { ...ENVIRONMENT, tls: { required: false } }, { backend: 'external', backendTls: true }],
    ['a fully configured balancer', {
      name: 'airflow-pgpool',
      replicas: 3,
      image: 'registry.example/pgpool:4.4.3',
      runAsUser: 1000,
      users: [{ credentials: AIRFLOW, envPrefix: 'AIRFLOW' }, { credentials: { secretName: 'reporting', usernameKey: 'login', passwordKey: 'secret' } }],
      srCheckUser: { secretName: 'pgpool-srcheck', usernameKey: 'login' },
      passwordEncryption: PgpoolPasswordEncryption.SCRAM_SHA_256,
      pcpUser: { secretName: 'pgpool-pcp' },
      exposePcp: true,
      loadBalanceMode: true,
      connectionCache: true,
      statementLevelLoadBalance: true,
      disableLoadBalanceOnWrite: DisableLoadBalanceOnWrite.TRANS_TRANSACTION,
      numInitChildren: 64,
      maxPool: 2,
      childLifeTime: Duration.minutes(10),
      childMaxConnections: 1000,
      connectionLifeTime: Duration.hours(1),
      clientIdleLimit: Duration.minutes(30),
      srCheckPeriod: Duration.seconds(5),
      healthCheckPeriod: Duration.seconds(30),
      tls: { secretName: 'pgpool-tls', required: true, issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } },
      allowedCidrs: ['10.0.0.0/8', 'fd00::/8'],
      extraParameters: { log_min_messages: 'warning', health_check_timeout: '10' },
      resources: { cpuRequest: '250m', cpuLimit: '2', memoryRequest: '256Mi', memoryLimit: '512Mi' },
      spread: PodSpread.REQUIRED,
      labels: { 'team': 'data', 'example.com/tier': 'db' },
    }, { namespace: 'prod' }],
  ];
  const versions: KubeVersion[] = ['v1.27.0', 'v1.36.0'];
  const cases = variations.flatMap(([what, props, options]) => versions.map((version) => [what, version, props, options] as const));

  test.each(cases)('%s validates strictly against Kubernetes %s', (_what, version, props, options) => {
    const objects = objectsOf(props, options);
    expect(balancerObjects(objects).length).toBeGreaterThanOrEqual(4);
    expect(validateManifests(objects, version)).toEqual([]);
  });
});
