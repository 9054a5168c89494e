import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Chart, Duration } from 'cdk8s';
import { stringify } from 'yaml';
import {
  ExporterKind, ExporterSidecar, ExporterSidecarProps, ExternalPostgres, IMonitorable, PgBouncerPooler, PgBouncerPoolerProps, PgpoolBalancer,
  PgpoolBalancerProps, PostgresStatefulCluster, PostgresStatefulClusterProps, ScrapeObject,
} from '../lib';
import { KubeVersion, validateManifests } from './support/kube-schema';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { dashboardExpressions } from '../lib/exporter/dashboards';
import { PASSFILE_SCRIPT } from '../lib/exporter/exporter-kinds';

type TargetKind = 'cluster' | 'pooler' | 'balancer';
const TARGET_KINDS: TargetKind[] = ['cluster', 'pooler', 'balancer'];

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};
/** Room for every consumer: this file tests the exporter, test/connection-budget.test.ts the budget. */
const CLUSTER_SETTINGS = { maxConnections: 1000 };
const AUTH_USER = { secretName: 'pooler-auth' };
const APP_USER = { secretName: 'app-user' };
const SR_CHECK_USER = { secretName: 'pgpool-srcheck' };
const EXPORTER_SECRET = { secretName: 'metrics-exporter' };

/** What each target is called and runs, written out here rather than taken from the library. */
const TARGETS = {
  cluster: {
    path: 'test/Db',
    name: 'db',
    kind: ExporterKind.POSTGRES,
    exporter: 'postgres-exporter',
    defaultImage: 'prometheuscommunity/postgres-exporter:v0.20.1',
    defaultPort: 9187,
    daemon: 'postgres',
    /** Containers of the target's own beside its daemon. */
    companions: ['settings-agent'],
    workloads: [['StatefulSet', 'db-primary'], ['StatefulSet', 'db-replica']],
    service: 'db-headless',
  },
  pooler: {
    path: 'test/Pooler',
    name: 'pooler',
    kind: ExporterKind.PGBOUNCER,
    exporter: 'pgbouncer-exporter',
    defaultImage: 'prometheuscommunity/pgbouncer-exporter:v0.12.1',
    defaultPort: 9127,
    daemon: 'pgbouncer',
    companions: [],
    workloads: [['Deployment', 'pooler']],
    service: 'pooler',
  },
  balancer: {
    path: 'test/Balancer',
    name: 'balancer',
    kind: ExporterKind.PGPOOL,
    exporter: 'pgpool2-exporter',
    defaultImage: 'pgpool/pgpool2_exporter:1.2.2',
    defaultPort: 9719,
    daemon: 'pgpool',
    companions: [],
    workloads: [['Deployment', 'balancer']],
    service: 'balancer',
  },
} as const;

interface StackOptions {
  /** Namespace of the chart; `null` for none. Default `apps`. */
  readonly namespace?: string | null;
  readonly cluster?: Partial<PostgresStatefulClusterProps>;
  readonly pooler?: Partial<PgBouncerPoolerProps>;
  readonly balancer?: Partial<PgpoolBalancerProps>;
}

interface Stack {
  readonly chart: Chart;
  readonly cluster: PostgresStatefulCluster;
  readonly target: IMonitorable;
}

/**
 * A cluster `Db` (name `db`, 3 instances) and, for a pooler or balancer target, a PgBouncerPooler
 * `Pooler` (auth user `pooler-auth`) or a PgpoolBalancer `Balancer` (user `app-user`, sr_check
 * user `pgpool-srcheck`) in front of it; no exporter yet.
 */
function stack(kind: TargetKind, options: StackOptions = {}): Stack {
  const chart = testChart(options.namespace === null ? undefined : options.namespace ?? 'apps');
  const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, settings: CLUSTER_SETTINGS, ...options.cluster });
  switch (kind) {
    case 'cluster':
      return { chart, cluster, target: cluster };
    case 'pooler':
      return { chart, cluster, target: new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: AUTH_USER, ...options.pooler }) };
    case 'balancer':
      return {
        chart, cluster,
        target: new PgpoolBalancer(chart, 'Balancer', { backend: cluster, users: [{ credentials: APP_USER, envPrefix: 'APP' }], srCheckUser: SR_CHECK_USER, ...options.balancer }),
      };
  }
}

/** An exporter `Metrics` (path `test/Metrics`) with the Secret `metrics-exporter` on the stack's target. */
function addExporter(s: Stack, props: Partial<ExporterSidecarProps> = {}): ExporterSidecar {
  return new ExporterSidecar(s.chart, 'Metrics', { target: s.target, credentials: EXPORTER_SECRET, ...props });
}

interface Synthesized extends Stack {
  readonly objects: any[];
}

/** The stack with an exporter (unless `exporter` is null), synthesized. */
function synth(kind: TargetKind, exporter: Partial<ExporterSidecarProps> | null = {}, options: StackOptions = {}): Synthesized {
  const s = stack(kind, options);
  if (exporter !== null) addExporter(s, exporter);
  return { ...s, objects: synthObjects(s.chart) };
}

const objectsOf = (kind: TargetKind, exporter: Partial<ExporterSidecarProps> | null = {}, options: StackOptions = {}) =>
  synth(kind, exporter, options).objects;

/** Asserts that adding the exporter to the stack throws the error; returns the message. */
function expectExporterError(kind: TargetKind, exporter: Partial<ExporterSidecarProps>, path: string, expected: ExpectedPropError,
  options: StackOptions = {}): string {
  const s = stack(kind, options);
  const message = thrownMessage(() => addExporter(s, exporter), `exporter ${JSON.stringify(exporter)} on the ${kind}`);
  expectPropErrorMessage(message, path, expected);
  return message;
}

const podTemplates = (kind: TargetKind, objects: any[]) =>
  TARGETS[kind].workloads.map(([workloadKind, name]) => findObject(objects, workloadKind, name).spec.template);
const exporterContainers = (kind: TargetKind, objects: any[]) =>
  podTemplates(kind, objects).map((template) => template.spec.containers.find((c: any) => c.name === TARGETS[kind].exporter));
const exporterContainer = (kind: TargetKind, objects: any[]) => exporterContainers(kind, objects)[0];
const envNamed = (container: any, name: string) => container.env?.find((e: any) => e.name === name);
const secretKeyRef = (name: string, key: string) => ({ secretKeyRef: { name, key } });
const checksum = (kind: TargetKind, objects: any[]): string => podTemplates(kind, objects)[0].metadata.annotations['checksum/config'];

const pgHbaRules = (objects: any[]): string[] => findObject(objects, 'ConfigMap', 'db-config').data['pg_hba.conf'].split('\n')
  .filter((line: string) => line.trim() !== '' && !line.startsWith('#'))
  .map((line: string) => line.trim().split(/\s+/).join(' '));
const bootstrapScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['bootstrap.sh'];
const clusterSecretSources = (objects: any[], statefulSet = 'db-primary'): any[] => findObject(objects, 'StatefulSet', statefulSet)
  .spec.template.spec.volumes.find((v: any) => v.name === 'secrets').projected.sources;

/** The secrets-volume directory the cluster mounts a Secret at (`role-0`, ...); fails when it is not mounted. */
function clusterSecretDir(objects: any[], secretName: string): string {
  const source = clusterSecretSources(objects).find((s: any) => s.secret.name === secretName);
  expect(source).toBeDefined();
  const paths = source.secret.items.map((item: any) => item.path);
  const dir = paths[0].split('/')[0];
  expect(paths).toEqual([`${dir}/username`, `${dir}/password`]);
  return dir;
}

/** The provisioning SQL of the role read from one secrets directory: its \set lines up to the next role's. */
function provisionedRole(objects: any[], dir: string): string {
  const script = bootstrapScript(objects);
  const start = script.indexOf(`\\set role_name \`cat "$CREDENTIALS_DIR/${dir}/username"\``);
  expect(start).toBeGreaterThan(0);
  const next = script.indexOf('\\set ', script.indexOf('\\set role_password', start) + 1);
  return script.slice(start, next < 0 ? script.indexOf('\nSQL\n', start) : next);
}

const poolerFile = (objects: any[], file: string): string => findObject(objects, 'ConfigMap', 'pooler-config').data[file];
const pgbouncerIniLines = (objects: any[]): string[] => poolerFile(objects, 'pgbouncer.ini').split('\n');

/** Whether a label selector's matchLabels select an object with these labels. */
const selects = (matchLabels: { [key: string]: string }, labels: { [key: string]: string } = {}) =>
  Object.keys(matchLabels).length > 0 && Object.entries(matchLabels).every(([key, value]) => labels[key] === value);

/** The exporter's monitoring objects: all of its objects but the ConfigMap of its own files (postgres_exporter's queries). */
const exporterObjects = (kind: TargetKind, objects: any[]) =>
  objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === TARGETS[kind].exporter && o.metadata.name !== exporterFilesName(kind));
const exporterFilesName = (kind: TargetKind) => `${TARGETS[kind].name}-${TARGETS[kind].exporter}`;

describe.each(TARGET_KINDS)('validation on the %s', (kind) => {
  const target = TARGETS[kind];

  test.each([
    [0, '0'],
    [70000, '70000'],
    [1.5, '1.5'],
  ])('rejects port %p', (port, shown) => {
    expectExporterError(kind, { port }, 'test/Metrics', { prop: 'port', value: shown, fix: /set port to a whole number from 1 to 65535/ });
  });

  test('rejects a second exporter on the same target: the container name is taken', () => {
    const s = stack(kind);
    addExporter(s);
    const message = thrownMessage(() => new ExporterSidecar(s.chart, 'Metrics2', { target: s.target, credentials: { secretName: 'other-exporter' }, port: 9300 }),
      'a second exporter');
    expectPropErrorMessage(message, target.path, {
      prop: 'sidecar container name', value: `"${target.exporter}"`, fix: /a component takes one exporter/,
    });
  });

  test.each(['Bad Image', '', ' '])('rejects image %p, showing the default as an example', (image) => {
    expectExporterError(kind, { image }, 'test/Metrics', {
      prop: 'image', value: JSON.stringify(image), fix: new RegExp(`use a reference such as "${target.defaultImage.replace(/[.]/g, '\\.')}"`),
    });
  });

  test.each([
    [0, '0'],
    [101, '101'],
    [50.5, '50.5'],
  ])('rejects connectionAlertPercent %p', (connectionAlertPercent, shown) => {
    expectExporterError(kind, { connectionAlertPercent, alerts: true }, 'test/Metrics', {
      prop: 'connectionAlertPercent', value: shown, fix: /set connectionAlertPercent to a whole number from 1 to 100/,
    });
  });

  test.each([1, 100])('accepts connectionAlertPercent %p', (connectionAlertPercent) => {
    expect(exporterObjects(kind, objectsOf(kind, { connectionAlertPercent, alerts: true })).map((o) => o.kind)).toEqual(['PrometheusRule']);
  });

  test.each([
    [Duration.millis(1500), '"1500ms"'],
    [Duration.millis(500), '"500ms"'],
  ])('rejects scrapeInterval %s, which is not whole seconds', (scrapeInterval, shown) => {
    expectExporterError(kind, { scrapeInterval, scrapeObject: ScrapeObject.POD_MONITOR }, 'test/Metrics', {
      prop: 'scrapeInterval', value: shown, fix: /use a whole number of seconds/,
    });
  });

  test('rejects a scrapeInterval of 0 seconds', () => {
    expectExporterError(kind, { scrapeInterval: Duration.seconds(0), scrapeObject: ScrapeObject.POD_MONITOR }, 'test/Metrics', {
      prop: 'scrapeInterval', value: '"0s"', fix: /Duration\.seconds\(10\) or more/,
    });
  });

  test.each([
    ['bad key!', /DNS prefix/],
    ['Example_Com/release', /DNS prefix/],
    ['-release', /starting and ending with a letter or digit/],
    [`${'r'.repeat(64)}`, /at most 63/],
  ])('rejects the monitoringLabels key %p', (key, fix) => {
    expectExporterError(kind, { monitoringLabels: { [key]: 'monitoring' } }, 'test/Metrics', {
      prop: 'monitoringLabels key', value: JSON.stringify(key), fix,
    });
  });

  test('rejects a monitoringLabels value that is not a label value', () => {
    expectExporterError(kind, { monitoringLabels: { release: 'kube prometheus' } }, 'test/Metrics', {
      prop: 'monitoringLabels.release', value: '"kube prometheus"', fix: /letters, digits/,
    });
  });

  test('rejects credentials whose Secret name is not a Secret name', () => {
    expectExporterError(kind, { credentials: { secretName: 'Metrics_Exporter' } }, 'test/Metrics', {
      prop: 'credentials.secretName', value: '"Metrics_Exporter"', fix: /use the name of an existing Secret/,
    });
  });

  test('rejects malformed resources', () => {
    expectExporterError(kind, { resources: { memoryLimit: 'lots' } }, 'test/Metrics', {
      prop: 'resources.memoryLimit', value: '"lots"', fix: /"512Mi"/,
    });
  });

  test('a rejected exporter adds nothing to the target\'s pods', () => {
    const s = stack(kind);
    expect(() => addExporter(s, { port: 0 })).toThrow(/port 0/);
    const objects = synthObjects(s.chart);
    expect(exporterContainers(kind, objects)).toEqual(target.workloads.map(() => undefined));
  });
});

describe('validation: ports taken in the pod or on the Service', () => {
  test.each([
    ['cluster', 5432, '5432'],
    ['pooler', 6432, '6432'],
    ['balancer', 9999, '9999, 9898'],
    ['balancer', 9898, '9999, 9898'],
  ] as Array<[TargetKind, number, string]>)('on the %s, port %p is the daemon\'s', (kind, port, taken) => {
    expectExporterError(kind, { port }, TARGETS[kind].path, {
      prop: 'sidecar port', value: String(port), fix: new RegExp(`choose another port than ${taken}`),
    });
  });

  test.each([false, true])('on the balancer, PCP\'s 9898 is taken whether or not it is exposed (exposePcp %p): unexposed, PCP still listens on localhost in the pod', (exposePcp) => {
    const pgpool = (objects: any[]) => findObject(objects, 'Deployment', 'balancer').spec.template.spec.containers.find((c: any) => c.name === 'pgpool');
    // The container port is declared only when exposed (commit 70a1da1); the port is taken either way.
    expect(pgpool(objectsOf('balancer', null, { balancer: { exposePcp } })).ports.map((p: any) => p.containerPort)).toEqual(exposePcp ? [9999, 9898] : [9999]);
    expectExporterError('balancer', { port: 9898 }, 'test/Balancer', {
      prop: 'sidecar port', value: '9898', fix: /choose another port than 9999, 9898$/,
    }, { balancer: { exposePcp } });
  });

  test.each([
    ['cluster', 5432, '5432'],
    ['pooler', 6432, '6432'],
    ['balancer', 9999, '9999, 9898'],
  ] as Array<[TargetKind, number, string]>)('on the %s, the fix names each port taken in the pod once', (kind, port, taken) => {
    // The cluster's primary and replica pods are alike: their ports are taken once, not once per StatefulSet.
    expectExporterError(kind, { port }, TARGETS[kind].path, {
      prop: 'sidecar port', value: String(port), fix: new RegExp(`choose another port than ${taken}$`),
    });
  });

  test('on the pooler, port 5432 is the Service\'s', () => {
    expectExporterError('pooler', { port: 5432 }, 'test/Pooler', {
      prop: 'sidecar Service port', value: '5432', fix: /choose another port than 5432$/,
    });
  });

  test('on a pooler whose Service listens on 9127, the default port is taken there', () => {
    expectExporterError('pooler', {}, 'test/Pooler', {
      prop: 'sidecar Service port', value: '9127', fix: /choose another port than 9127$/,
    }, { pooler: { port: 9127 } });
  });

  test('the cluster\'s own port counts, not 5432: on a cluster on 5433, 5433 is taken and 5432 is free', () => {
    expectExporterError('cluster', { port: 5433 }, 'test/Db', {
      prop: 'sidecar port', value: '5433', fix: /choose another port than 5433/,
    }, { cluster: { port: 5433 } });
    const objects = objectsOf('cluster', { port: 5432 }, { cluster: { port: 5433 } });
    expect(exporterContainer('cluster', objects).ports).toEqual([{ name: 'metrics', containerPort: 5432, protocol: 'TCP' }]);
    expect(envNamed(exporterContainer('cluster', objects), 'DATA_SOURCE_URI').value).toBe('127.0.0.1:5433/postgres?sslmode=disable');
  });
});

describe('validation: the exporter\'s Secret must be its own', () => {
  const fix = /give the exporter a Secret of its own/;
  const prop = 'grantMetricsAccess(credentials).secretName';
  // The cluster's roles all go through one check, whose fix speaks of roles in general.
  const clusterError = { prop, fix: /give each role a Secret of its own/ };
  const cluster = { databases: [{ name: 'app', owner: { secretName: 'app-owner' } }] };

  test.each(['pg-superuser', 'pg-replication', 'app-owner'])('the cluster refuses the Secret %p of one of its roles', (secretName) => {
    expectExporterError('cluster', { credentials: { secretName } }, 'test/Db', { ...clusterError, value: `"${secretName}"` }, { cluster });
  });

  test('the cluster refuses its superuser Secret under other keys too', () => {
    expectExporterError('cluster', { credentials: { secretName: 'pg-superuser', usernameKey: 'monitor-user', passwordKey: 'monitor-password' } },
      'test/Db', { ...clusterError, value: '"pg-superuser"' });
  });

  test('the cluster refuses the Secret of a pooler\'s auth user created before the exporter', () => {
    const s = stack('pooler');
    const message = thrownMessage(() => new ExporterSidecar(s.chart, 'DbMetrics', { target: s.cluster, credentials: AUTH_USER }), 'the auth user\'s Secret');
    expectPropErrorMessage(message, 'test/Db', { ...clusterError, value: '"pooler-auth"' });
  });

  test('the cluster\'s exporter Secret is refused when a pooler created after the exporter uses it as auth user', () => {
    // The same clash as above in the other order: the auth user would become a member of pg_monitor.
    const chart = testChart('apps');
    const db = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, settings: CLUSTER_SETTINGS });
    new ExporterSidecar(chart, 'DbMetrics', { target: db, credentials: AUTH_USER });
    expect(() => {
      new PgBouncerPooler(chart, 'Pooler', { backend: db, authUser: AUTH_USER });
      synthObjects(chart);
    }).toThrow(/pooler-auth/);
  });

  test.each(['pooler', 'balancer'] as const)('the %s refuses its backend\'s superuser Secret, also in front of an ExternalPostgres', (kind) => {
    const path = kind === 'pooler' ? 'test/Pooler' : 'test/Balancer';
    expectExporterError(kind, { credentials: { secretName: 'pg-superuser' } }, path, { prop, value: '"pg-superuser"', fix });
    const chart = testChart('apps');
    const external = new ExternalPostgres(chart, 'Ext', { readWriteService: 'ext-rw', superuserSecret: { secretName: 'ext-superuser' } });
    const target = kind === 'pooler'
      ? new PgBouncerPooler(chart, 'Pooler', { backend: external, users: [APP_USER] })
      : new PgpoolBalancer(chart, 'Balancer', { backend: external, users: [{ credentials: APP_USER }], srCheckUser: SR_CHECK_USER });
    const message = thrownMessage(() => new ExporterSidecar(chart, 'Metrics', { target, credentials: { secretName: 'ext-superuser' } }), 'the superuser');
    expectPropErrorMessage(message, path, { prop, value: '"ext-superuser"', fix });
    expect(message).toContain('already holds another login of the');
  });

  test.each(['pooler-auth', 'app-user'])('the pooler refuses the Secret %p of its auth user or a user', (secretName) => {
    expectExporterError('pooler', { credentials: { secretName } }, 'test/Pooler', { prop, value: `"${secretName}"`, fix }, { pooler: { users: [APP_USER] } });
  });

  test.each(['pgpool-srcheck', 'app-user', 'pgpool-pcp'])('the balancer refuses the Secret %p of its sr_check user, a user or the PCP user', (secretName) => {
    expectExporterError('balancer', { credentials: { secretName } }, 'test/Balancer', { prop, value: `"${secretName}"`, fix },
      { balancer: { pcpUser: { secretName: 'pgpool-pcp' } } });
  });

  test('the pooler refuses ignoreStartupParameters without extra_float_digits, which exporters send', () => {
    expectExporterError('pooler', {}, 'test/Pooler', { prop: 'ignoreStartupParameters', value: '[]', fix: /add "extra_float_digits"/ },
      { pooler: { ignoreStartupParameters: [] } });
    expectExporterError('pooler', {}, 'test/Pooler', {
      prop: 'ignoreStartupParameters', value: '["application_name"]', fix: /add "extra_float_digits"/,
    }, { pooler: { ignoreStartupParameters: ['application_name'] } });
  });

  test('the pooler accepts ignoreStartupParameters that include extra_float_digits among others', () => {
    const objects = objectsOf('pooler', {}, { pooler: { ignoreStartupParameters: ['application_name', 'extra_float_digits'] } });
    expect(exporterContainer('pooler', objects)).toBeDefined();
  });
});

/** The container's command, args and environment, per target, as the exporters' documentation asks for them. */
/**
 * The user comes from the Secret's username key in the environment, the password never does:
 * postgres_exporter reads it from the mounted Secret (DATA_SOURCE_PASS_FILE); pgbouncer_exporter
 * and pgpool2_exporter (lib/pq, no *_FILE variable) from a PGPASSFILE an init container writes.
 * pgpool2_exporter takes DATA_SOURCE_NAME without user or password, so lib/pq reads PGUSER and the passfile.
 */
const INVOCATIONS: { [kind in TargetKind]: (port: number, tls: boolean) => { command?: string[]; args: string[]; env: any[] } } = {
  cluster: (port) => ({
    args: [`--web.listen-address=:${port}`, '--extend.query-path=/etc/exporter-files/queries.yaml'],
    env: [
      { name: 'DATA_SOURCE_URI', value: '127.0.0.1:5432/postgres?sslmode=disable' },
      { name: 'DATA_SOURCE_USER', valueFrom: secretKeyRef('metrics-exporter', 'username') },
      { name: 'DATA_SOURCE_PASS_FILE', value: '/etc/exporter-secret/password' },
    ],
  }),
  pooler: (port, tls) => ({
    args: [`--web.listen-address=:${port}`, `--pgBouncer.connectionString=postgres://127.0.0.1:6432/pgbouncer?sslmode=${tls ? 'require' : 'disable'}`],
    env: [
      { name: 'PGUSER', valueFrom: secretKeyRef('metrics-exporter', 'username') },
      { name: 'PGPASSFILE', value: '/run/exporter-auth/pgpass' },
    ],
  }),
  balancer: (port, tls) => ({
    command: ['/bin/pgpool2_exporter'],
    args: [`--web.listen-address=:${port}`],
    env: [
      { name: 'DATA_SOURCE_NAME', value: `postgresql://127.0.0.1:9999/postgres?sslmode=${tls ? 'require' : 'disable'}` },
      { name: 'PGUSER', valueFrom: secretKeyRef('metrics-exporter', 'username') },
      { name: 'PGPASSFILE', value: '/run/exporter-auth/pgpass' },
    ],
  }),
};

describe.each(TARGET_KINDS)('the exporter container on the %s', (kind) => {
  const target = TARGETS[kind];

  test('runs in every pod template, after the daemon', () => {
    const objects = objectsOf(kind);
    for (const template of podTemplates(kind, objects)) {
      expect(template.spec.containers.map((c: any) => c.name)).toEqual([target.daemon, ...target.companions, target.exporter]);
      expect(template.spec.initContainers.map((c: any) => c.name)).not.toContain(target.exporter);
    }
    const [first, ...others] = exporterContainers(kind, objects);
    for (const other of others) expect(other).toEqual(first);
  });

  test('is absent without an exporter', () => {
    expect(exporterContainers(kind, objectsOf(kind, null))).toEqual(target.workloads.map(() => undefined));
  });

  test('runs the default image, or the one given', () => {
    expect(exporterContainer(kind, objectsOf(kind)).image).toBe(target.defaultImage);
    expect(exporterContainer(kind, objectsOf(kind, { image: 'registry.example/exporter:1.0' })).image).toBe('registry.example/exporter:1.0');
  });

  test('serves metrics on a port named metrics: the default one, or the one given', () => {
    expect(exporterContainer(kind, objectsOf(kind)).ports).toEqual([{ name: 'metrics', containerPort: target.defaultPort, protocol: 'TCP' }]);
    expect(exporterContainer(kind, objectsOf(kind, { port: 9400 })).ports).toEqual([{ name: 'metrics', containerPort: 9400, protocol: 'TCP' }]);
  });

  test('has the restricted security context', () => {
    expect(exporterContainer(kind, objectsOf(kind)).securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('has small default resources, or the ones given', () => {
    expect(exporterContainer(kind, objectsOf(kind)).resources).toEqual({
      requests: { cpu: '10m', memory: '64Mi' },
      limits: { cpu: '100m', memory: '64Mi' },
    });
    const given = exporterContainer(kind, objectsOf(kind, { resources: { cpuRequest: '20m', cpuLimit: '200m', memoryLimit: '128Mi' } })).resources;
    expect(given).toEqual({ requests: { cpu: '20m', memory: '128Mi' }, limits: { cpu: '200m', memory: '128Mi' } });
  });

  test('has a liveness probe on the metrics port and no readiness or startup probe', () => {
    const container = exporterContainer(kind, objectsOf(kind));
    expect(container.livenessProbe).toEqual({ httpGet: { path: '/', port: 'metrics' }, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 });
    expect(container.readinessProbe).toBeUndefined();
    expect(container.startupProbe).toBeUndefined();
  });

  test('gets its user from the Secret through the environment, and its password only as a file', () => {
    const container = exporterContainer(kind, objectsOf(kind));
    expect(container.env.length).toBeGreaterThan(0);
    for (const variable of container.env) {
      if (variable.valueFrom === undefined) {
        // Paths and a URL with neither user nor password.
        expect(variable.value).not.toMatch(/@|user=|password=/i);
      } else {
        expect(variable.valueFrom).toEqual({ secretKeyRef: { name: 'metrics-exporter', key: 'username' } });
      }
    }
    expect(container.env.filter((e: any) => e.valueFrom).length).toBe(1);
    expect(container.env.map((e: any) => e.name).filter((name: string) => /PASSWORD|_PASS$/.test(name))).toEqual([]);
    // Nothing about the login in the command line: no user, no password, no user@host URL.
    expect(JSON.stringify([container.command ?? [], container.args])).not.toMatch(/password|user|@/i);
  });

  test('reads the Secret under the keys given: the username key from the environment, the password key as a file', () => {
    const objects = objectsOf(kind, { credentials: { ...EXPORTER_SECRET, usernameKey: 'role', passwordKey: 'secret' } });
    const container = exporterContainer(kind, objects);
    expect(container.env.filter((e: any) => e.valueFrom).map((e: any) => e.valueFrom.secretKeyRef.key)).toEqual(['role']);
    expect(podTemplates(kind, objects)[0].spec.volumes.find((v: any) => v.name === `${target.exporter}-secret`).projected.sources)
      .toEqual([{ secret: { name: 'metrics-exporter', items: [{ key: 'secret', path: 'password' }] } }]);
  });

  test('the Secret\'s password key is a volume of its own, mounted only by the exporter\'s containers', () => {
    const objects = objectsOf(kind);
    for (const template of podTemplates(kind, objects)) {
      const { spec } = template;
      expect(spec.volumes.find((v: any) => v.name === `${target.exporter}-secret`)).toEqual({
        name: `${target.exporter}-secret`,
        projected: { defaultMode: 0o440, sources: [{ secret: { name: 'metrics-exporter', items: [{ key: 'password', path: 'password' }] } }] },
      });
      const mounting = [...spec.initContainers ?? [], ...spec.containers]
        .filter((c: any) => (c.volumeMounts ?? []).some((m: any) => m.name === `${target.exporter}-secret`)).map((c: any) => c.name);
      // postgres_exporter reads the file itself; the lib/pq exporters only through the passfile their init container writes.
      expect(mounting).toEqual(kind === 'cluster' ? [target.exporter] : [`${target.exporter}-passfile`]);
    }
  });

  test('has the command, arguments and environment of its exporter', () => {
    const container = exporterContainer(kind, objectsOf(kind));
    // TLS is on by default (self-signed): the pooler and the balancer require it, the cluster admits loopback as host lines.
    const tlsRequired = kind !== 'cluster';
    const expected = INVOCATIONS[kind](target.defaultPort, tlsRequired);
    expect({ command: container.command, args: container.args, env: container.env }).toEqual({ command: expected.command, ...expected });
    const onPort = exporterContainer(kind, objectsOf(kind, { port: 9400 }));
    expect(onPort.args).toEqual(INVOCATIONS[kind](9400, tlsRequired).args);
  });

  test('the pod template gets prometheus.io annotations next to checksum/config', () => {
    for (const port of [undefined, 9400]) {
      for (const template of podTemplates(kind, objectsOf(kind, { port }))) {
        expect(Object.keys(template.metadata.annotations).sort())
          .toEqual(['checksum/config', ...(kind === 'cluster' ? ['checksum/exporter-files'] : []), 'prometheus.io/path', 'prometheus.io/port', 'prometheus.io/scrape']);
        expect(template.metadata.annotations).toMatchObject({
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': String(port ?? target.defaultPort),
          'prometheus.io/path': '/metrics',
        });
        expect(template.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
      }
    }
    for (const template of podTemplates(kind, objectsOf(kind, null))) {
      expect(Object.keys(template.metadata.annotations)).toEqual(['checksum/config']);
    }
  });

  test('the pods roll when the exporter is added: their checksum changes', () => {
    expect(checksum(kind, objectsOf(kind))).not.toBe(checksum(kind, objectsOf(kind, null)));
  });

  test('the target\'s Service gets a metrics port after its own', () => {
    const ports = findObject(objectsOf(kind, { port: 9400 }), 'Service', target.service).spec.ports;
    const without = findObject(objectsOf(kind, null), 'Service', target.service).spec.ports;
    expect(ports).toEqual([...without, { name: 'metrics', port: 9400, targetPort: 'metrics', protocol: 'TCP' }]);
  });
});

describe('postgres_exporter reads its password file; the lib/pq exporters a passfile their init container writes', () => {
  const secretMount = (name: string) => ({ name: `${name}-secret`, mountPath: '/etc/exporter-secret', readOnly: true });

  test('postgres_exporter\'s queries file (pending_restart) is in a ConfigMap of its own, whose checksum the pod template carries', () => {
    const objects = objectsOf('cluster');
    const queries = findObject(objects, 'ConfigMap', exporterFilesName('cluster')).data['queries.yaml'];
    expect(queries).toContain('SELECT count(*) AS count FROM pg_settings WHERE pending_restart');
    expect(podTemplates('cluster', objects)[0].metadata.annotations['checksum/exporter-files']).toMatch(/^[0-9a-f]{64}$/);
    expect(objectsOf('cluster', null).filter((o) => o.metadata.name === exporterFilesName('cluster'))).toEqual([]);
  });

  test('postgres_exporter: DATA_SOURCE_PASS_FILE names the password file of its read-only Secret mount; no init container, no passfile', () => {
    const objects = objectsOf('cluster');
    for (const template of podTemplates('cluster', objects)) {
      const container = template.spec.containers.find((c: any) => c.name === 'postgres-exporter');
      expect(container.volumeMounts).toEqual([secretMount('postgres-exporter'), { name: 'postgres-exporter-files', mountPath: '/etc/exporter-files', readOnly: true }]);
      expect(envNamed(container, 'DATA_SOURCE_PASS_FILE').value).toBe('/etc/exporter-secret/password');
      const names = (spec: any) => [...spec.initContainers ?? []].map((c: any) => c.name);
      expect(names(template.spec)).toEqual(names(podTemplates('cluster', objectsOf('cluster', null))[0].spec));
      expect(template.spec.volumes.map((v: any) => v.name).filter((name: string) => name.startsWith('postgres-exporter')))
        .toEqual(['postgres-exporter-secret', 'postgres-exporter-files']);
      expect(template.spec.volumes.find((v: any) => v.name === 'postgres-exporter-files').configMap.name).toBe(exporterFilesName('cluster'));
    }
  });

  test.each(['pooler', 'balancer'] as const)('the %s\'s exporter: an init container writes the passfile into an in-memory volume, which the exporter mounts read-only', (kind) => {
    const name = TARGETS[kind].exporter;
    const objects = objectsOf(kind, { image: 'registry.example/exporter:1.0', resources: { cpuRequest: '20m', cpuLimit: '200m', memoryLimit: '128Mi' } });
    const { spec } = podTemplates(kind, objects)[0];
    const without = podTemplates(kind, objectsOf(kind, null))[0].spec;
    const exporter = spec.containers.find((c: any) => c.name === name);
    // The exporter's init container comes after the daemon's own.
    expect(spec.initContainers.map((c: any) => c.name)).toEqual([...without.initContainers.map((c: any) => c.name), `${name}-passfile`]);
    const init = spec.initContainers.find((c: any) => c.name === `${name}-passfile`);
    expect(init).toEqual({
      name: `${name}-passfile`,
      image: 'registry.example/exporter:1.0',
      imagePullPolicy: 'IfNotPresent',
      command: ['/bin/sh', '-c', PASSFILE_SCRIPT],
      env: [{ name: 'PGPASSFILE', value: '/run/exporter-auth/pgpass' }],
      resources: exporter.resources,
      securityContext: exporter.securityContext,
      volumeMounts: [secretMount(name), { name: `${name}-auth`, mountPath: '/run/exporter-auth' }],
    });
    expect(exporter.volumeMounts).toEqual([{ name: `${name}-auth`, mountPath: '/run/exporter-auth', readOnly: true }]);
    expect(envNamed(exporter, 'PGPASSFILE').value).toBe('/run/exporter-auth/pgpass');
    expect(spec.volumes.filter((v: any) => v.name.startsWith(name)).map((v: any) => v.name)).toEqual([`${name}-secret`, `${name}-auth`]);
    expect(spec.volumes.find((v: any) => v.name === `${name}-auth`)).toEqual({ name: `${name}-auth`, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
  });

  test('the passfile script is shellcheck-clean POSIX sh that reads the password from the file, not from its arguments or environment', () => {
    expect(shellcheck(`#!/bin/sh\n${PASSFILE_SCRIPT}`)).toBe('');
    expect(PASSFILE_SCRIPT).toContain('password=$(cat -- "/etc/exporter-secret/password")');
    expect(PASSFILE_SCRIPT).not.toMatch(/PASSWORD|DATA_SOURCE/);
  });

  /** Runs the passfile script with `shell`, its Secret file holding `password`; returns the status, stderr and the passfile with its mode. */
  function runPassfile(shell: string, password: string) {
    const dir = mkdtempSync(join(tmpdir(), 'exporter-passfile-'));
    try {
      mkdirSync(join(dir, 'secret'));
      writeFileSync(join(dir, 'secret', 'password'), password, { mode: 0o440 });
      const passfile = join(dir, 'pgpass');
      const script = join(dir, 'passfile.sh');
      writeFileSync(script, PASSFILE_SCRIPT.split('/etc/exporter-secret').join(join(dir, 'secret')));
      const result = spawnSync(shell, [script], { env: { PATH: process.env.PATH, PGPASSFILE: passfile }, encoding: 'utf8' });
      const file = existsSync(passfile) ? { text: readFileSync(passfile, 'utf8'), mode: statSync(passfile).mode.toString(8).slice(-3) } : undefined;
      return { status: result.status, stderr: result.stderr, file, files: readdirSync(dir).filter((name) => name !== 'passfile.sh').sort() };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test.each(['/bin/sh', 'bash'])('run with %s it writes one line that matches any host, port, database and user, backslash and colon escaped, mode 0600', (shell) => {
    const run = runPassfile(shell, 'a\\b:c $(x) ü');
    expect(run).toEqual({ status: 0, stderr: '', file: { text: '*:*:*:*:a\\\\b\\:c $(x) ü\n', mode: '600' }, files: ['pgpass', 'secret'] });
  });

  test.each(['', 'two\nlines'])('refuses the password %p and writes no passfile', (password) => {
    const run = runPassfile('/bin/sh', password);
    expect(run).toEqual({ status: 1, stderr: 'passfile: the exporter\'s password must be one non-empty line\n', file: undefined, files: ['secret'] });
  });
});

describe('the exporter connects with TLS where the daemon requires it', () => {
  test('pooler with tls (required by default): sslmode=require', () => {
    const container = exporterContainer('pooler', objectsOf('pooler', {}, { pooler: { tls: { secretName: 'pooler-tls' } } }));
    expect(container.args).toEqual(INVOCATIONS.pooler(9127, true).args);
  });

  test('pooler with tls not required (client_tls_sslmode prefer): sslmode=disable', () => {
    const container = exporterContainer('pooler', objectsOf('pooler', {}, { pooler: { tls: { required: false } } }));
    expect(container.args).toEqual(INVOCATIONS.pooler(9127, false).args);
  });

  test('pooler on another Service port: still the loopback port 6432', () => {
    const container = exporterContainer('pooler', objectsOf('pooler', {}, { pooler: { port: 6543 } }));
    expect(container.args).toEqual(INVOCATIONS.pooler(9127, true).args);
  });

  test('pooler with its default self-signed certificate: sslmode=require; with tls.disabled: sslmode=disable', () => {
    expect(exporterContainer('pooler', objectsOf('pooler')).args).toEqual(INVOCATIONS.pooler(9127, true).args);
    expect(exporterContainer('pooler', objectsOf('pooler', {}, { pooler: { tls: { disabled: true } } })).args).toEqual(INVOCATIONS.pooler(9127, false).args);
  });

  test('balancer with its default self-signed certificate: sslmode=require; with tls.disabled (a plaintext cluster behind): sslmode=disable', () => {
    const dataSource = (options: StackOptions) => JSON.stringify(exporterContainer('balancer', objectsOf('balancer', {}, options)).env);
    const selfSigned = dataSource({});
    expect(selfSigned).toContain('127.0.0.1:9999/postgres?sslmode=require');
    expect(selfSigned).not.toContain('sslmode=disable');
    const plaintext = dataSource({ cluster: { tls: { disabled: true } }, balancer: { tls: { disabled: true } } });
    expect(plaintext).toContain('127.0.0.1:9999/postgres?sslmode=disable');
    expect(plaintext).not.toContain('sslmode=require');
  });

  test('balancer with tls (required by default): sslmode=require', () => {
    const container = exporterContainer('balancer', objectsOf('balancer', {}, { balancer: { tls: {} } }));
    expect(container.env).toEqual(INVOCATIONS.balancer(9719, true).env);
  });

  test('cluster with tls: sslmode=disable over loopback, which pg_hba.conf keeps as host lines among hostssl ones', () => {
    const objects = objectsOf('cluster', {}, { cluster: { tls: {} } });
    expect(exporterContainer('cluster', objects).env).toEqual(INVOCATIONS.cluster(9187, false).env);
    const rules = pgHbaRules(objects);
    expect(rules.filter((rule) => rule.includes('pg_monitor'))).toEqual([
      'host postgres +pg_monitor 127.0.0.1/32 scram-sha-256', 'host postgres +pg_monitor ::1/128 scram-sha-256',
    ]);
    expect(rules.filter((rule) => rule.startsWith('hostssl all all')).length).toBeGreaterThan(0);
  });

  test('balancer with tls not required: sslmode=disable', () => {
    const container = exporterContainer('balancer', objectsOf('balancer', {}, { balancer: { tls: { required: false } } }));
    expect(container.env).toEqual(INVOCATIONS.balancer(9719, false).env);
  });
});

describe('cluster: Services, pg_hba.conf, roles and the connection budget', () => {
  const loopback = ['host postgres +pg_monitor 127.0.0.1/32 scram-sha-256', 'host postgres +pg_monitor ::1/128 scram-sha-256'];

  test('the metrics port is on the headless Service only, not on -rw and -ro', () => {
    const objects = objectsOf('cluster');
    expect(findObject(objects, 'Service', 'db-headless').spec.ports.map((p: any) => p.name)).toEqual(['postgres', 'metrics']);
    expect(findObject(objects, 'Service', 'db-rw').spec.ports.map((p: any) => p.name)).toEqual(['postgres']);
    expect(findObject(objects, 'Service', 'db-ro').spec.ports.map((p: any) => p.name)).toEqual(['postgres']);
  });

  test('the exporter runs in the primary and in the replicas', () => {
    const objects = objectsOf('cluster');
    for (const name of ['db-primary', 'db-replica']) {
      expect(findObject(objects, 'StatefulSet', name).spec.template.spec.containers.map((c: any) => c.name)).toEqual(['postgres', 'settings-agent', 'postgres-exporter']);
    }
  });

  test('pg_hba.conf admits members of pg_monitor to postgres over loopback, before the general rules', () => {
    const rules = pgHbaRules(objectsOf('cluster'));
    expect(rules.filter((rule) => rule.includes('pg_monitor'))).toEqual(loopback);
    // hostssl with TLS (the default), host with tls.disabled.
    const firstGeneral = rules.findIndex((rule) => /^hostssl? all all /.test(rule));
    expect(firstGeneral).toBeGreaterThan(0);
    expect(rules.indexOf(loopback[0])).toBeLessThan(firstGeneral);
    expect(rules.indexOf(loopback[1])).toBeLessThan(firstGeneral);
  });

  test('pg_hba.conf admits the exporter over loopback even when allowedCidrs leave loopback out', () => {
    const rules = pgHbaRules(objectsOf('cluster', {}, { cluster: { allowedCidrs: ['10.0.0.0/8'] } }));
    expect(rules).toEqual(expect.arrayContaining(loopback));
    expect(rules.filter((rule) => rule.includes('127.0.0.1') || rule.includes('::1'))).toEqual(loopback);
  });

  test('pg_hba.conf has no pg_monitor rule without an exporter on the cluster', () => {
    expect(pgHbaRules(objectsOf('cluster', null)).filter((rule) => rule.includes('pg_monitor') || rule.includes('127.0.0.1'))).toEqual([]);
  });

  test.each(['pooler', 'balancer'] as TargetKind[])('pg_hba.conf has no pg_monitor rule with an exporter on the %s only', (kind) => {
    expect(pgHbaRules(objectsOf(kind)).filter((rule) => rule.includes('pg_monitor') || rule.includes('127.0.0.1'))).toEqual([]);
  });

  test('the bootstrap provisions the exporter\'s role from its Secret, a LOGIN role granted pg_monitor', () => {
    const objects = objectsOf('cluster');
    const dir = clusterSecretDir(objects, 'metrics-exporter');
    const sql = provisionedRole(objects, dir);
    expect(sql).toContain(`\\set role_password \`cat "$CREDENTIALS_DIR/${dir}/password"\``);
    expect(sql).toContain('ALTER ROLE :"role_name" WITH LOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT '
      + 'CONNECTION LIMIT -1 VALID UNTIL \'infinity\' PASSWORD :\'role_password\';');
    expect(sql).toContain('GRANT pg_monitor TO :"role_name";');
    expect(sql).not.toMatch(/SUPERUSER|REPLICATION|GRANT replication_clients/);
    // Only the primary provisions roles: replicas mount the replication Secret alone.
    const replication = clusterSecretSources(objects, 'db-primary').filter((s: any) => s.secret.items[0].path === 'replication/username');
    expect(replication).toHaveLength(1);
    expect(clusterSecretSources(objects, 'db-replica')).toEqual(replication);
  });

  test('without an exporter the cluster mounts no exporter Secret and grants pg_monitor to nobody', () => {
    const objects = objectsOf('cluster', null);
    expect(clusterSecretSources(objects).map((s: any) => s.secret.name)).not.toContain('metrics-exporter');
    expect(bootstrapScript(objects)).not.toContain('pg_monitor');
  });

  test.each([
    [3, 2],
    [1, 0],
  ])('with %p instances the exporter asks for 2 connections on the primary and %p on each replica', (instances, replica) => {
    const { cluster } = synth('cluster', {}, { cluster: { instances } });
    expect(cluster._connectionDemands).toEqual([
      { consumer: 'test/Db settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: replica / 2 },
      { consumer: 'test/Db metrics exporter', purpose: 'postgres_exporter', primary: 2, replica },
    ]);
  });

  test('the exporter\'s connections count in the budget: one connection too many fails synthesis, naming it', () => {
    const tight = { settings: { maxConnections: 5, superuserReservedConnections: 3 } };
    const s = stack('cluster', { cluster: tight });
    s.cluster.addConnectionDemand({ consumer: 'app', primary: 1, replica: 0 });
    expect(synthObjects(s.chart).length).toBeGreaterThan(0);
    addExporter(s);
    expect(() => synthObjects(s.chart)).toThrow(/^test\/Db: settings\.maxConnections 5 leaves 2 connections[\s\S]*metrics exporter +postgres_exporter +2[\s\S]*raise settings\.maxConnections to 7 or more/);
  });

  test('an exporter added after the cluster\'s pods were declared still lands in them and in the budget', () => {
    const s = stack('cluster');
    new PgBouncerPooler(s.chart, 'Pooler', { backend: s.cluster, authUser: AUTH_USER });
    addExporter(s);
    const objects = synthObjects(s.chart);
    expect(exporterContainers('cluster', objects).every((c) => c !== undefined)).toBe(true);
    expect(s.cluster._connectionDemands.map((d) => d.consumer)).toEqual(['test/Db settings agent', 'test/Pooler', 'test/Pooler', 'test/Db metrics exporter']);
  });
});

describe('pooler: stats_users, the userlist and the Secrets volume', () => {
  const STATS_INCLUDE = '%include /var/run/pgbouncer-auth/stats_users.ini';
  const secretSources = (objects: any[]) => findObject(objects, 'Deployment', 'pooler').spec.template.spec.volumes
    .find((v: any) => v.name === 'secrets').projected.sources;

  test('pgbouncer.ini includes the stats_users file the init container writes and has no stats_users line of its own', () => {
    for (const pooler of [{}, { statsUsers: ['monitoring', 'oncall'] }]) {
      const lines = pgbouncerIniLines(objectsOf('pooler', {}, { pooler }));
      expect(lines).toContain(STATS_INCLUDE);
      expect(lines.filter((line) => /^stats_users\s*=/.test(line))).toEqual([]);
    }
  });

  test('without an exporter, statsUsers stay a plain line and nothing is included for them', () => {
    const lines = pgbouncerIniLines(objectsOf('pooler', null, { pooler: { statsUsers: ['monitoring', 'oncall'] } }));
    expect(lines).toContain('stats_users = monitoring,oncall');
    expect(lines).not.toContain(STATS_INCLUDE);
  });

  test('userlist.sh puts the exporter in the userlist from stats-0 and writes stats_users with it', () => {
    const script = poolerFile(objectsOf('pooler'), 'userlist.sh');
    expect(script).toContain('\nset -- auth-user stats-0\n');
    expect(script).toContain('\nstats_user_0=$(role_name stats-0)\n');
    expect(script).toContain('\ninclude_line stats_users.ini "stats_users = $stats_user_0"\n');
  });

  test('userlist.sh lists the statsUsers from props before the exporter', () => {
    const script = poolerFile(objectsOf('pooler', {}, { pooler: { statsUsers: ['monitoring', 'oncall'], users: [APP_USER] } }), 'userlist.sh');
    expect(script).toContain('\nset -- auth-user user-0 stats-0\n');
    expect(script).toContain('\ninclude_line stats_users.ini "stats_users = monitoring,oncall,$stats_user_0"\n');
  });

  test('userlist.sh without an exporter reads no stats directory', () => {
    expect(poolerFile(objectsOf('pooler', null), 'userlist.sh')).not.toMatch(/stats-0|stats_users/);
  });

  test('the exporter\'s Secret is projected at stats-0, after the pooler\'s own', () => {
    const sources = secretSources(objectsOf('pooler', { credentials: { ...EXPORTER_SECRET, usernameKey: 'role', passwordKey: 'secret' } }));
    expect(sources.map((s: any) => s.secret.name)).toEqual(['pooler-auth', 'metrics-exporter']);
    expect(sources[1]).toEqual({
      secret: { name: 'metrics-exporter', items: [{ key: 'role', path: 'stats-0/username' }, { key: 'secret', path: 'stats-0/password' }] },
    });
    expect(secretSources(objectsOf('pooler', null)).map((s: any) => s.secret.name)).toEqual(['pooler-auth']);
  });

  test.each([
    ['an auth user', {}],
    ['an auth user and statsUsers', { statsUsers: ['monitoring'] }],
    ['users only', { authUser: undefined, users: [APP_USER] }],
    ['users and statsUsers', { authUser: undefined, users: [APP_USER], statsUsers: ['monitoring', 'oncall'] }],
  ] as Array<[string, Partial<PgBouncerPoolerProps>]>)('userlist.sh with the exporter and %s is POSIX sh and shellcheck-clean', (_what, pooler) => {
    const script = poolerFile(objectsOf('pooler', {}, { pooler }), 'userlist.sh');
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toContain('stats_user_0=$(role_name stats-0)');
    expect(shellcheck(script)).toBe('');
  });

  test('the exporter\'s Secret is not provisioned in the cluster behind the pooler', () => {
    const objects = objectsOf('pooler');
    expect(clusterSecretSources(objects).map((s: any) => s.secret.name)).not.toContain('metrics-exporter');
  });
});

describe('balancer: pool_passwd and the backend role', () => {
  const pgpoolContainer = (objects: any[]) => findObject(objects, 'Deployment', 'balancer').spec.template.spec.containers
    .find((c: any) => c.name === 'pgpool');

  test('the logins init container reads the exporter\'s login from its Secret at login-exporter, last in pool_passwd; the pgpool container has no env for it', () => {
    const secretSources = (objects: any[]) => findObject(objects, 'Deployment', 'balancer').spec.template.spec.volumes
      .find((v: any) => v.name === 'secrets').projected.sources;
    const logins = (objects: any[]): string => findObject(objects, 'ConfigMap', 'balancer-config').data['logins.sh'];
    const objects = objectsOf('balancer', { credentials: { ...EXPORTER_SECRET, usernameKey: 'role', passwordKey: 'secret' } });
    expect(secretSources(objects).map((s: any) => s.secret)).toEqual([
      { name: 'pgpool-srcheck', items: [{ key: 'username', path: 'srcheck/username' }, { key: 'password', path: 'srcheck/password' }] },
      { name: 'app-user', items: [{ key: 'username', path: 'login-app/username' }, { key: 'password', path: 'login-app/password' }] },
      { name: 'metrics-exporter', items: [{ key: 'role', path: 'login-exporter/username' }, { key: 'secret', path: 'login-exporter/password' }] },
    ]);
    expect(logins(objects)).toMatch(/^set -- srcheck login-app login-exporter$/m);
    expect(pgpoolContainer(objects).env.map((e: any) => e.name).filter((name: string) => name.startsWith('EXPORTER'))).toEqual([]);
    const without = objectsOf('balancer', null);
    expect(secretSources(without).map((s: any) => s.secret.name)).toEqual(['pgpool-srcheck', 'app-user']);
    expect(logins(without)).toMatch(/^set -- srcheck login-app$/m);
  });

  test('the cluster behind provisions the exporter\'s role, a plain LOGIN role without pg_monitor', () => {
    const objects = objectsOf('balancer');
    const sql = provisionedRole(objects, clusterSecretDir(objects, 'metrics-exporter'));
    expect(sql).toContain('ALTER ROLE :"role_name" WITH LOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT '
      + 'CONNECTION LIMIT -1 VALID UNTIL \'infinity\' PASSWORD :\'role_password\';');
    expect(sql).not.toMatch(/GRANT|SUPERUSER|REPLICATION/);
  });

  test('pool_hba.conf admits the exporter over loopback even when allowedCidrs leave loopback out', () => {
    const objects = objectsOf('balancer', {}, { balancer: { allowedCidrs: ['10.0.0.0/8'] } });
    const rules = findObject(objects, 'ConfigMap', 'balancer-config').data['pool_hba.conf'].split('\n')
      .filter((line: string) => line.trim() !== '' && !line.startsWith('#')).map((line: string) => line.trim().split(/\s+/));
    // pgpool2_exporter logs in over TCP to 127.0.0.1: a local (socket) rule does not admit it.
    const admitsLoopback = rules.some((fields: string[]) => fields[0].startsWith('host') && ['127.0.0.1/32', '0.0.0.0/0'].includes(fields[3]));
    expect(admitsLoopback).toBe(true);
  });

  test('with the PCP port exposed, the metrics port follows it on the Service', () => {
    const ports = findObject(objectsOf('balancer', {}, { balancer: { exposePcp: true } }), 'Service', 'balancer').spec.ports;
    expect(ports.map((p: any) => [p.name, p.port])).toEqual([['postgres', 9999], ['pcp', 9898], ['metrics', 9719]]);
  });
});

/** Every object of a chart as YAML, by kind and name, for comparing two charts regardless of object order. */
function yamlByName(chart: Chart): { [key: string]: string } {
  return Object.fromEntries(synthObjects(chart).map((o) => [`${o.kind}/${o.metadata.name}`, stringify(o)]).sort(([a], [b]) => a.localeCompare(b)));
}

describe('the order in which the exporter and other users of its target are declared does not change the output', () => {
  type Step = (chart: Chart, made: { [id: string]: any }) => void;
  const cluster: Step = (chart, made) => {
    made.Db = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, settings: CLUSTER_SETTINGS });
  };
  const pooler = (backend: 'Db' | 'Balancer'): Step => (chart, made) => {
    made.Pooler = new PgBouncerPooler(chart, 'Pooler', backend === 'Db' ? { backend: made.Db, authUser: AUTH_USER } : { backend: made.Balancer, users: [APP_USER] });
  };
  const balancer: Step = (chart, made) => {
    made.Balancer = new PgpoolBalancer(chart, 'Balancer', { backend: made.Db, users: [{ credentials: APP_USER, envPrefix: 'APP' }], srCheckUser: SR_CHECK_USER });
  };
  const exporter = (id: string, target: string, secretName: string): Step => (chart, made) => {
    new ExporterSidecar(chart, id, {
      target: made[target], credentials: { secretName }, alerts: true, dashboard: true, scrapeObject: ScrapeObject.SERVICE_MONITOR,
    });
  };
  const dbExporter = exporter('DbMetrics', 'Db', 'db-exporter');
  const balancerExporter = exporter('BalancerMetrics', 'Balancer', 'balancer-exporter');
  const poolerExporter = exporter('PoolerMetrics', 'Pooler', 'pooler-exporter');

  const build = (steps: Step[]) => {
    const chart = testChart('apps');
    const made = {};
    steps.forEach((step) => step(chart, made));
    return yamlByName(chart);
  };

  test.each([
    ['the cluster\'s exporter before or after a pooler on the cluster', [cluster, dbExporter, pooler('Db')], [cluster, pooler('Db'), dbExporter]],
    ['the cluster\'s exporter before or after a balancer on the cluster', [cluster, dbExporter, balancer], [cluster, balancer, dbExporter]],
    ['the cluster\'s exporter before or after the balancer\'s', [cluster, balancer, dbExporter, balancerExporter], [cluster, balancer, balancerExporter, dbExporter]],
    ['the balancer\'s exporter before or after a pooler in front of the balancer',
      [cluster, balancer, balancerExporter, pooler('Balancer')], [cluster, balancer, pooler('Balancer'), balancerExporter]],
    ['the pooler\'s exporter before or after a balancer on the same cluster',
      [cluster, pooler('Db'), poolerExporter, balancer], [cluster, pooler('Db'), balancer, poolerExporter]],
  ] as Array<[string, Step[], Step[]]>)('%s', (_what, first, second) => {
    const a = build(first);
    const b = build(second);
    expect(Object.keys(a).length).toBeGreaterThan(10);
    expect(b).toEqual(a);
  });
});

describe.each(TARGET_KINDS)('monitoring objects of the %s', (kind) => {
  const target = TARGETS[kind];

  test('by default none: Prometheus finds the pods by their annotations', () => {
    expect(exporterObjects(kind, objectsOf(kind))).toEqual([]);
    expect(exporterObjects(kind, objectsOf(kind, { scrapeObject: ScrapeObject.NONE, scrapeInterval: Duration.seconds(15) }))).toEqual([]);
  });

  test('alerts render a PrometheusRule, dashboard a ConfigMap, and nothing else', () => {
    const objects = objectsOf(kind, { alerts: true, dashboard: true });
    expect(exporterObjects(kind, objects).map((o) => `${o.kind}/${o.metadata.name}`).sort())
      .toEqual([`ConfigMap/${target.name}-dashboard`, `PrometheusRule/${target.name}-alerts`]);
  });

  test.each([ScrapeObject.POD_MONITOR, ScrapeObject.SERVICE_MONITOR])('%s: one, named <name>-metrics, in the chart namespace, labelled', (scrapeObject) => {
    const objects = objectsOf(kind, { scrapeObject, monitoringLabels: { release: 'monitoring' } });
    const monitors = exporterObjects(kind, objects);
    expect(monitors.map((o) => `${o.apiVersion} ${o.kind}/${o.metadata.name}`)).toEqual([`monitoring.coreos.com/v1 ${scrapeObject}/${target.name}-metrics`]);
    expect(monitors[0].metadata.namespace).toBe('apps');
    expect(monitors[0].metadata.labels).toEqual({
      'release': 'monitoring',
      'app.kubernetes.io/name': target.exporter,
      'app.kubernetes.io/instance': target.name,
      'app.kubernetes.io/component': 'metrics',
      'app.kubernetes.io/part-of': target.name,
      'app.kubernetes.io/managed-by': 'cdk8s-postgres',
    });
    expect(monitors[0].spec.namespaceSelector).toEqual({ matchNames: ['apps'] });
  });

  test.each([ScrapeObject.POD_MONITOR, ScrapeObject.SERVICE_MONITOR])('%s without a chart namespace has no namespace and no namespaceSelector', (scrapeObject) => {
    const [monitor] = exporterObjects(kind, objectsOf(kind, { scrapeObject }, { namespace: null }));
    expect(monitor.metadata.namespace).toBeUndefined();
    expect(monitor.spec.namespaceSelector).toBeUndefined();
  });

  test.each([
    [undefined, '30s'],
    [Duration.seconds(15), '15s'],
    [Duration.minutes(2), '120s'],
  ])('PodMonitor and ServiceMonitor scrape the metrics port every %s', (scrapeInterval, interval) => {
    const pod = exporterObjects(kind, objectsOf(kind, { scrapeObject: ScrapeObject.POD_MONITOR, scrapeInterval }))[0];
    expect(pod.spec.podMetricsEndpoints).toEqual([{ port: 'metrics', path: '/metrics', interval }]);
    expect(pod.spec.endpoints).toBeUndefined();
    const service = exporterObjects(kind, objectsOf(kind, { scrapeObject: ScrapeObject.SERVICE_MONITOR, scrapeInterval }))[0];
    expect(service.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval }]);
    expect(service.spec.podMetricsEndpoints).toBeUndefined();
  });

  test('the PrometheusRule has one group of the target\'s alerts, with the monitoring labels', () => {
    const objects = objectsOf(kind, { alerts: true, monitoringLabels: { release: 'monitoring' } });
    const rule = findObject(objects, 'PrometheusRule', `${target.name}-alerts`);
    expect(rule.metadata.labels.release).toBe('monitoring');
    expect(rule.spec.groups.map((g: any) => g.name)).toEqual([`${target.kind}-${target.name}`]);
    const names = rule.spec.groups[0].rules.map((r: any) => r.alert);
    expect(names).toEqual({
      cluster: ['PostgresExporterDown', 'PostgresDown', 'PostgresConnectionsHigh', 'PostgresPendingRestart', 'PostgresReplicationLagHigh',
        'PostgresReplicaNotStreaming'],
      pooler: ['PgBouncerExporterDown', 'PgBouncerDown', 'PgBouncerClientsWaiting', 'PgBouncerClientConnectionsHigh'],
      balancer: ['PgpoolExporterDown', 'PgpoolDown', 'PgpoolFrontendsHigh', 'PgpoolBackendDown'],
    }[kind]);
  });

  test('the dashboard ConfigMap is labelled for Grafana\'s sidecar and holds one dashboard whose targets are the dashboard expressions', () => {
    const s = stack(kind);
    addExporter(s, { dashboard: true, monitoringLabels: { release: 'monitoring' } });
    const configMap = findObject(synthObjects(s.chart), 'ConfigMap', `${target.name}-dashboard`);
    expect(configMap.metadata.labels).toMatchObject({ grafana_dashboard: '1', release: 'monitoring' });
    expect(Object.keys(configMap.data)).toEqual([`${target.kind}-${target.name}.json`]);
    const dashboard = JSON.parse(configMap.data[`${target.kind}-${target.name}.json`]);
    expect(dashboard.uid).toBe(`${target.kind}-apps-${target.name}`);
    expect(dashboard.uid.length).toBeLessThanOrEqual(40);
    const targets = dashboard.panels.flatMap((panel: any) => panel.targets);
    const expressions = dashboardExpressions(s.target.monitoringProfile);
    expect(expressions.length).toBeGreaterThan(0);
    expect(targets.map((t: any) => t.expr)).toEqual(expressions);
    for (const panel of dashboard.panels) {
      expect(new Set(panel.targets.map((t: any) => t.refId)).size).toBe(panel.targets.length);
    }
    expect(new Set(dashboard.panels.map((p: any) => p.id)).size).toBe(dashboard.panels.length);
    expect(dashboard.templating.list.map((v: any) => v.name)).toContain('datasource');
  });

  test('the dashboard\'s expressions select the target\'s pods in its namespace', () => {
    const { target: t } = synth(kind, { dashboard: true });
    for (const expression of dashboardExpressions(t.monitoringProfile)) {
      expect(expression).toContain('namespace="apps"');
      expect(expression).toMatch(/pod=~"/);
    }
  });

  test('the dashboard uid stays within Grafana\'s 40 characters for long names and namespaces', () => {
    const namespace = 'n'.repeat(63);
    const name = 'x'.repeat(40);
    const options: StackOptions = { namespace, [kind]: { name } };
    const objects = objectsOf(kind, { dashboard: true }, options);
    const configMap = findObject(objects, 'ConfigMap', `${name}-dashboard`);
    const uid = JSON.parse(Object.values(configMap.data)[0] as string).uid;
    expect(uid.length).toBeGreaterThan(0);
    expect(uid.length).toBeLessThanOrEqual(40);
  });
});

describe('scrape object selectors, in a chart with all three targets', () => {
  /** A cluster, a balancer on it and a pooler on the balancer, each with an exporter. */
  function fullStack(scrapeObject: ScrapeObject, namespace: string | null = 'apps'): any[] {
    const chart = testChart(namespace ?? undefined);
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, settings: CLUSTER_SETTINGS });
    const balancer = new PgpoolBalancer(chart, 'Balancer', { backend: cluster, users: [{ credentials: APP_USER, envPrefix: 'APP' }], srCheckUser: SR_CHECK_USER });
    const pooler = new PgBouncerPooler(chart, 'Pooler', { backend: balancer, users: [APP_USER] });
    const monitor = (id: string, target: IMonitorable, secretName: string) => new ExporterSidecar(chart, id, {
      target, credentials: { secretName }, scrapeObject, alerts: true, dashboard: true, monitoringLabels: { release: 'monitoring' },
    });
    monitor('DbMetrics', cluster, 'db-exporter');
    monitor('BalancerMetrics', balancer, 'balancer-exporter');
    monitor('PoolerMetrics', pooler, 'pooler-exporter');
    return synthObjects(chart);
  }

  const serviceNames = (objects: any[], matchLabels: any) =>
    objects.filter((o) => o.kind === 'Service' && selects(matchLabels, o.metadata.labels)).map((o) => o.metadata.name).sort();
  const podOwners = (objects: any[], matchLabels: any) =>
    objects.filter((o) => ['StatefulSet', 'Deployment'].includes(o.kind) && selects(matchLabels, o.spec.template.metadata.labels))
      .map((o) => o.metadata.name).sort();

  test('the cluster\'s ServiceMonitor selects its headless Service only, which has the metrics port', () => {
    const objects = fullStack(ScrapeObject.SERVICE_MONITOR);
    const monitor = findObject(objects, 'ServiceMonitor', 'db-metrics');
    for (const name of ['db-headless', 'db-rw', 'db-ro']) {
      const labels = findObject(objects, 'Service', name).metadata.labels;
      expect([name, selects(monitor.spec.selector.matchLabels, labels)]).toEqual([name, name === 'db-headless']);
    }
    expect(serviceNames(objects, monitor.spec.selector.matchLabels)).toEqual(['db-headless']);
    expect(findObject(objects, 'Service', 'db-headless').spec.ports.map((p: any) => p.name)).toContain('metrics');
  });

  test.each([
    ['pooler', 'pooler-metrics', 'pooler'],
    ['balancer', 'balancer-metrics', 'balancer'],
  ])('the %s\'s ServiceMonitor selects its Service only, which has the metrics port', (_kind, monitorName, service) => {
    const objects = fullStack(ScrapeObject.SERVICE_MONITOR);
    const monitor = findObject(objects, 'ServiceMonitor', monitorName);
    expect(serviceNames(objects, monitor.spec.selector.matchLabels)).toEqual([service]);
    expect(findObject(objects, 'Service', service).spec.ports.map((p: any) => p.name)).toContain('metrics');
  });

  test.each([
    ['db-metrics', ['db-primary', 'db-replica']],
    ['pooler-metrics', ['pooler']],
    ['balancer-metrics', ['balancer']],
  ])('the PodMonitor %s selects the pods of its target only, all of which run the exporter', (monitorName, owners) => {
    const objects = fullStack(ScrapeObject.POD_MONITOR);
    const monitor = findObject(objects, 'PodMonitor', monitorName);
    expect(podOwners(objects, monitor.spec.selector.matchLabels)).toEqual(owners);
    for (const owner of objects.filter((o) => owners.includes(o.metadata.name) && ['StatefulSet', 'Deployment'].includes(o.kind))) {
      expect(owner.spec.template.spec.containers.flatMap((c: any) => c.ports ?? []).map((p: any) => p.name)).toContain('metrics');
    }
  });

  test('two clusters in a long namespace get dashboards of distinct uids', () => {
    const chart = testChart('team-payments-production-eu-west');
    for (const [id, prefix] of [['OrdersDb', 'orders'], ['BillingDb', 'billing']]) {
      const db = new PostgresStatefulCluster(chart, id, {
        superuserSecret: { secretName: `${prefix}-superuser` }, replicationSecret: { secretName: `${prefix}-replication` },
      });
      new ExporterSidecar(chart, `${id}Metrics`, { target: db, credentials: { secretName: `${prefix}-exporter` }, dashboard: true });
    }
    const uids = synthObjects(chart).filter((o) => o.metadata.labels?.grafana_dashboard === '1')
      .map((o) => JSON.parse(Object.values(o.data)[0] as string).uid);
    expect(uids).toHaveLength(2);
    for (const uid of uids) expect(uid.length).toBeLessThanOrEqual(40);
    // Grafana keys dashboards by uid: the same uid would make one overwrite the other.
    expect(new Set(uids).size).toBe(2);
  });

  describe.each([['apps'], [null]] as Array<[string | null]>)('strict schema validation, namespace %p', (namespace) => {
    test.each([
      [ScrapeObject.POD_MONITOR, 'v1.27.0'],
      [ScrapeObject.POD_MONITOR, 'v1.36.0'],
      [ScrapeObject.SERVICE_MONITOR, 'v1.27.0'],
      [ScrapeObject.SERVICE_MONITOR, 'v1.36.0'],
    ] as Array<[ScrapeObject, KubeVersion]>)('with a %s, every object is valid in Kubernetes %s with the prometheus-operator CRDs', (scrapeObject, version) => {
      const objects = fullStack(scrapeObject, namespace);
      expect(objects.filter((o) => o.apiVersion === 'monitoring.coreos.com/v1').map((o) => o.kind).sort())
        .toEqual([scrapeObject, scrapeObject, scrapeObject, 'PrometheusRule', 'PrometheusRule', 'PrometheusRule'].sort());
      expect(validateManifests(objects, version)).toEqual([]);
    });
  });

  test.each(TARGET_KINDS)('a bad field in the %s exporter\'s objects would be caught by the schema check', (kind) => {
    const objects = objectsOf(kind, { scrapeObject: ScrapeObject.SERVICE_MONITOR, alerts: true });
    const monitor = exporterObjects(kind, objects).find((o) => o.kind === 'ServiceMonitor');
    monitor.spec.endpoints[0].intervall = '30s';
    expect(validateManifests(objects, 'v1.36.0')).toEqual([`ServiceMonitor/${TARGETS[kind].name}-metrics: /spec/endpoints/0/intervall: unknown field`]);
  });
});
