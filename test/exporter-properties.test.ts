import { Chart, Duration } from 'cdk8s';
import * as fc from 'fast-check';
import {
  ContainerResources, ExporterSidecar, IMonitorable, MemoryCheck, PgBouncerPooler, PgpoolBalancer, PostgresCredentials, PostgresStatefulCluster,
  ScrapeObject,
} from '../lib';
import { validateManifests } from './support/kube-schema';
import { findObject, synthObjects, testChart } from './support/synth';

/**
 * Property test of ExporterSidecar: any props on any target either synthesize objects that are
 * valid in Kubernetes 1.27 with the prometheus-operator CRDs, or are refused with a plain Error
 * naming the construct at fault and the prop. Which one is decided here, independently of the
 * library, from the Kubernetes rules for names, labels and quantities and from what the target
 * already holds (its Secrets, its ports, an exporter of its own).
 */

type TargetKind = 'cluster' | 'pooler' | 'balancer';
const TARGET_KINDS: TargetKind[] = ['cluster', 'pooler', 'balancer'];

const NUM_RUNS = 300;

/** What each target is called and runs, written out here rather than taken from the library. */
const TARGETS = {
  cluster: {
    path: 'test/Db',
    name: 'db',
    exporter: 'postgres-exporter',
    defaultImage: 'prometheuscommunity/postgres-exporter:v0.20.1',
    defaultPort: 9187,
    workloads: [['StatefulSet', 'db-primary'], ['StatefulSet', 'db-replica']],
    service: 'db-headless',
    /** Ports of the daemon's containers in the pod, and those only on the Service. */
    podPorts: [5432],
    servicePorts: [] as number[],
  },
  pooler: {
    path: 'test/Pooler',
    name: 'pooler',
    exporter: 'pgbouncer-exporter',
    defaultImage: 'prometheuscommunity/pgbouncer-exporter:v0.12.1',
    defaultPort: 9127,
    workloads: [['Deployment', 'pooler']],
    service: 'pooler',
    podPorts: [6432],
    servicePorts: [5432],
  },
  balancer: {
    path: 'test/Balancer',
    name: 'balancer',
    exporter: 'pgpool2-exporter',
    defaultImage: 'pgpool/pgpool2_exporter:1.2.2',
    defaultPort: 9719,
    workloads: [['Deployment', 'balancer']],
    service: 'balancer',
    podPorts: [9999, 9898],
    servicePorts: [] as number[],
  },
} as const;

/**
 * The Secrets of each target's other logins, which an exporter must not share, and the construct
 * that refuses them: the balancer's exporter logs in to the cluster behind it too, so the
 * cluster refuses its roles' Secrets there; both proxies refuse the backend's superuser Secret.
 */
const CLUSTER_SECRETS = ['pg-superuser', 'pg-replication', 'app-owner'];
const TAKEN_SECRETS: { [kind in TargetKind]: Array<[string, string]> } = {
  cluster: CLUSTER_SECRETS.map((name) => [name, 'test/Db']),
  // Every proxy also refuses its backend's superuser Secret itself, whatever the backend.
  pooler: ['pooler-auth', 'app-user', 'reports-user', 'pg-superuser'].map((name) => [name, 'test/Pooler']),
  balancer: [
    ...['app-user', 'pgpool-srcheck', 'pgpool-pcp', 'pg-superuser'].map((name): [string, string] => [name, 'test/Balancer']),
    ...CLUSTER_SECRETS.filter((name) => name !== 'pg-superuser').map((name): [string, string] => [name, 'test/Db']),
  ],
};

/**
 * A cluster `Db` (3 instances, room for any number of connections, a database owned by
 * `app-owner`) and, for a pooler or balancer target, a PgBouncerPooler `Pooler` (auth user and two
 * users) or a PgpoolBalancer `Balancer` (a user, an sr_check user and a PCP user) in front of it.
 */
function stack(kind: TargetKind, namespace: string | null): { chart: Chart; target: IMonitorable } {
  const chart = testChart(namespace ?? undefined);
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    superuserSecret: { secretName: 'pg-superuser' },
    replicationSecret: { secretName: 'pg-replication' },
    databases: [{ name: 'app', owner: { secretName: 'app-owner' } }],
    settings: { maxConnections: 1000 },
    memoryCheck: MemoryCheck.OFF,
  });
  switch (kind) {
    case 'cluster':
      return { chart, target: cluster };
    case 'pooler':
      return {
        chart,
        target: new PgBouncerPooler(chart, 'Pooler', {
          backend: cluster, authUser: { secretName: 'pooler-auth' }, users: [{ secretName: 'app-user' }, { secretName: 'reports-user' }],
        }),
      };
    case 'balancer':
      return {
        chart,
        target: new PgpoolBalancer(chart, 'Balancer', {
          backend: cluster,
          users: [{ credentials: { secretName: 'app-user' }, envPrefix: 'APP' }],
          srCheckUser: { secretName: 'pgpool-srcheck' },
          pcpUser: { secretName: 'pgpool-pcp' },
        }),
      };
  }
}

// Kubernetes' own rules for the names and labels the exporter is given (apimachinery validation).
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const isSecretName = (name: string) => DNS_1123_SUBDOMAIN.test(name) && name.length <= 253;
const isSecretKey = (key: string) => SECRET_KEY.test(key) && key.length <= 253;
function isLabelKey(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1];
  const prefixOk = parts.length === 1 || (isSecretName(parts[0]) && parts[0].length <= 253);
  return prefixOk && LABEL_NAME.test(name) && name.length <= 63 && key !== 'constructor';
}
const isLabelValue = (value: string) => LABEL_VALUE.test(value) && value.length <= 63;

/**
 * CPU quantities (in millicores) and memory quantities (in bytes), in ascending order, some equal in
 * another notation ("700m" and "0.7" must compare equal: 700 * 1e-3 would not be 0.7).
 */
const CPU: Array<[string, number]> = [
  ['5m', 5], ['10m', 10], ['50m', 50], ['100m', 100], ['0.1', 100], ['250m', 250], ['500m', 500], ['0.5', 500],
  ['700m', 700], ['0.7', 700], ['1', 1000], ['1000m', 1000], ['1500m', 1500], ['1.5', 1500], ['2', 2000],
  ['2300m', 2300], ['2.3', 2300],
];
const MI = 2 ** 20;
const MEMORY: Array<[string, number]> = [
  ['32Mi', 32 * MI], ['64Mi', 64 * MI], ['100M', 100e6], ['128Mi', 128 * MI], ['0.125Gi', 128 * MI], ['256Mi', 256 * MI],
  ['1G', 1e9], ['1000M', 1e9], ['1Gi', 1024 * MI], ['1024Mi', 1024 * MI], ['1.1G', 1.1e9], ['1100M', 1.1e9], ['1.5Gi', 1536 * MI], ['1536Mi', 1536 * MI],
];
/** Strings that are no Kubernetes quantity. */
const NOT_QUANTITIES = ['lots', '', '1.5 Gi', '-1', '12MB', 'Mi', '1,5', ' 64Mi', '64mi', '1Gi '];
const QUANTITY_VALUES = new Map<string, number>([...CPU, ...MEMORY]);
const EXPORTER_DEFAULTS = { cpuRequest: '10m', cpuLimit: '100m', memoryLimit: '64Mi' };

/** Mostly valid values, so that both outcomes are common: weight 9 to 1, unset a third of the time. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>) =>
  fc.option(fc.oneof({ arbitrary: valid, weight: 9 }, { arbitrary: other, weight: 1 }), { nil: undefined, freq: 3 });

/** A Secret name: a fresh one, one of another login of the target (by index), or no Secret name. */
type SecretChoice = { fresh: string } | { taken: number } | { invalid: string };
const secretChoice: fc.Arbitrary<SecretChoice> = fc.oneof(
  {
    arbitrary: fc.oneof(
      fc.constantFrom('metrics-exporter', 'exporter', 'db.metrics', 'x', `${'e'.repeat(62)}.${'f'.repeat(62)}`),
      fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?){0,2}$/),
    ).map((fresh) => ({ fresh })), weight: 18,
  },
  { arbitrary: fc.nat(5).map((taken) => ({ taken })), weight: 1 },
  {
    arbitrary: fc.oneof(
      fc.constantFrom('Metrics_Exporter', '', '-exporter', 'exporter-', 'my exporter', 'exporter..x', '.exporter', 'e'.repeat(254)),
      fc.string({ maxLength: 12 }),
    ).map((invalid) => ({ invalid })), weight: 1,
  },
);
/** A username key: mostly the default, sometimes another one. */
const secretKey = fc.option(fc.oneof(
  { arbitrary: fc.constantFrom('role', 'monitor.user', 'USER_NAME', 'user-1'), weight: 9 },
  { arbitrary: fc.constantFrom('bad key', '', 'a/b', 'k'.repeat(254)), weight: 1 },
), { nil: undefined, freq: 2 });

const image = mostly(
  fc.oneof(
    fc.constantFrom('registry.example/exporter:1.0', 'prometheuscommunity/postgres-exporter:v0.15.0', 'exporter',
      `quay.io/org/exporter@sha256:${'a'.repeat(64)}`, 'localhost:5000/exporter'),
    fc.stringMatching(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?$/),
  ),
  fc.constantFrom('', ' ', 'Bad Image', 'exporter:1.0 ', '\texporter', 'a\nb'),
);

/** A port number, or the port the daemon listens on in the pod, or one the target's Service has. */
type PortChoice = number | 'daemon' | 'service';
const port: fc.Arbitrary<PortChoice | undefined> = mostly(
  fc.integer({ min: 1024, max: 65535 }),
  fc.oneof(
    { arbitrary: fc.constantFrom(0, 70000, 1.5, 9187.5, Number.NaN, -1, Number.POSITIVE_INFINITY), weight: 2 },
    { arbitrary: fc.constantFrom<PortChoice>('daemon', 'service'), weight: 1 },
  ),
);

/** A request and a limit, mostly in order; otherwise each one unset, of the list or not a quantity. */
const requestAndLimit = (list: Array<[string, number]>) => {
  const quantity = fc.oneof(
    { arbitrary: fc.constantFrom(...list.map(([q]) => q)), weight: 9 }, { arbitrary: fc.constantFrom(...NOT_QUANTITIES), weight: 1 },
  );
  return fc.oneof(
    {
      arbitrary: fc.tuple(fc.nat(list.length - 1), fc.nat(list.length - 1))
        .map(([a, b]) => ({ request: list[Math.min(a, b)][0], limit: list[Math.max(a, b)][0] })), weight: 7,
    },
    { arbitrary: fc.record({ request: fc.option(quantity, { nil: undefined }), limit: fc.option(quantity, { nil: undefined }) }), weight: 1 },
    { arbitrary: fc.constant({ request: undefined, limit: undefined }), weight: 2 },
  );
};
const resources: fc.Arbitrary<ContainerResources | undefined> = fc.option(
  fc.tuple(requestAndLimit(CPU), requestAndLimit(MEMORY)).map(([cpu, memory]) => Object.fromEntries(Object.entries({
    cpuRequest: cpu.request, cpuLimit: cpu.limit, memoryRequest: memory.request, memoryLimit: memory.limit,
  }).filter(([, value]) => value !== undefined))),
  { nil: undefined, freq: 3 },
);

/** A duration as unit and amount, so a counterexample reads as the Duration it builds. */
type DurationChoice = ['seconds' | 'minutes' | 'millis', number];
const UNIT_MILLIS = { seconds: 1000, minutes: 60_000, millis: 1 };
const toDuration = ([unit, amount]: DurationChoice) => Duration[unit](amount);
const scrapeInterval: fc.Arbitrary<DurationChoice | undefined> = mostly(
  fc.oneof(
    fc.integer({ min: 1, max: 600 }).map((s): DurationChoice => ['seconds', s]),
    fc.integer({ min: 1, max: 10 }).map((m): DurationChoice => ['minutes', m]),
    fc.integer({ min: 1, max: 300 }).map((s): DurationChoice => ['millis', s * 1000]),
  ),
  fc.oneof(
    fc.integer({ min: 1, max: 999_999 }).filter((ms) => ms % 1000 !== 0).map((ms): DurationChoice => ['millis', ms]),
    fc.constantFrom<DurationChoice>(['seconds', 0], ['seconds', 1.5], ['millis', 500], ['minutes', 0], ['millis', 0.5], ['seconds', 1.0005]),
  ),
);

const connectionAlertPercent = mostly(fc.integer({ min: 1, max: 100 }), fc.constantFrom(0, 101, 50.5, Number.NaN, -1, Number.POSITIVE_INFINITY, 1e9));

/** Label keys. */
const labelKey = fc.oneof(
  fc.constantFrom('release', 'team', 'prometheus', 'example.com/tier', 'monitoring.example.io/scrape', 'A_b.c-9', 'k'.repeat(63)),
  fc.stringMatching(/^([a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?)?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/),
);
const labelValue = fc.oneof(
  fc.constantFrom('kube-prometheus-stack', 'monitoring', '', 'v1.2_3', 'A', 'v'.repeat(63)),
  fc.stringMatching(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/),
);
const badLabelKey = fc.oneof(
  // "constructor" is a valid Kubernetes key that cdk8s cannot render, so the library refuses it.
  fc.constantFrom('constructor', 'bad key!', 'Example_Com/release', '-release', 'release-', 'r'.repeat(64), '/release', 'a/b/c', '', 'example.com/', 'ünicode'),
  fc.string({ maxLength: 10 }),
);
const badLabelValue = fc.oneof(fc.constantFrom('kube prometheus', '-x', 'x-', 'v'.repeat(64), 'a\nb', 'a/b', 'ü'), fc.string({ maxLength: 10 }));
const monitoringLabels = fc.option(
  fc.array(fc.oneof(
    { arbitrary: fc.tuple(labelKey, labelValue), weight: 18 },
    { arbitrary: fc.tuple(badLabelKey, labelValue), weight: 1 },
    { arbitrary: fc.tuple(labelKey, badLabelValue), weight: 1 },
  ), { maxLength: 3 }).map((entries) => Object.fromEntries(entries) as { [key: string]: string }),
  { nil: undefined, freq: 3 },
);

const cases = fc.record({
  kind: fc.constantFrom(...TARGET_KINDS),
  namespace: fc.constantFrom<string | null>('apps', null),
  secret: secretChoice,
  usernameKey: secretKey,
  image,
  port,
  resources,
  scrapeObject: fc.option(fc.constantFrom(...Object.values(ScrapeObject)), { nil: undefined }),
  scrapeInterval,
  alerts: fc.option(fc.boolean(), { nil: undefined }),
  dashboard: fc.option(fc.boolean(), { nil: undefined }),
  connectionAlertPercent,
  monitoringLabels,
  /** A second exporter on the same target, with a Secret and port of its own. */
  second: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }),
});
type Case = typeof cases extends fc.Arbitrary<infer T> ? T : never;

/** A prop error the case must be refused with: the construct that refuses it and the start of the prop it names. */
interface Fault {
  readonly path: string;
  readonly prop: string;
}

function resolveSecret(c: Case): string {
  const secret = c.secret;
  if ('fresh' in secret) return secret.fresh;
  if ('invalid' in secret) return secret.invalid;
  const taken = TAKEN_SECRETS[c.kind];
  return taken[secret.taken % taken.length][0];
}

function resolvePort(c: Case): number | undefined {
  const target = TARGETS[c.kind];
  if (c.port === 'daemon') return target.podPorts[0];
  if (c.port === 'service') return target.servicePorts[0] ?? target.podPorts[0];
  return c.port;
}

/** Whether the resources are quantities with each request at most its limit, once the exporter's defaults are applied. */
function resourcesValid(given: ContainerResources | undefined): boolean {
  const memoryLimit = given?.memoryLimit ?? EXPORTER_DEFAULTS.memoryLimit;
  const value = (quantity: string) => QUANTITY_VALUES.get(quantity);
  const pairs = [
    [given?.cpuRequest ?? EXPORTER_DEFAULTS.cpuRequest, given?.cpuLimit ?? EXPORTER_DEFAULTS.cpuLimit],
    [given?.memoryRequest ?? memoryLimit, memoryLimit],
  ];
  return pairs.every(([request, limit]) => value(request) !== undefined && value(limit) !== undefined && value(request)! <= value(limit)!);
}

/**
 * The errors the case must be refused with, in the order the exporter checks: its own props,
 * then the target's Secrets (grantMetricsAccess), then the pod's ports (addSidecar). Empty when
 * it must synthesize. The second exporter is refused separately.
 */
function expectedFaults(c: Case): Fault[] {
  const own: Fault[] = [];
  const fault = (prop: string) => own.push({ path: 'test/Metrics', prop });
  if (c.image !== undefined && (c.image.trim() === '' || /\s/.test(c.image))) fault('image');
  const p = resolvePort(c);
  if (p !== undefined && !(Number.isInteger(p) && p >= 1 && p <= 65535)) fault('port');
  const secretName = resolveSecret(c);
  if (!isSecretName(secretName)) fault('credentials.secretName');
  if (c.usernameKey !== undefined && !isSecretKey(c.usernameKey)) fault('credentials.usernameKey');
  if (!resourcesValid(c.resources)) fault('resources.');
  const percent = c.connectionAlertPercent;
  if (percent !== undefined && !(Number.isInteger(percent) && percent >= 1 && percent <= 100)) fault('connectionAlertPercent');
  if (c.scrapeInterval !== undefined) {
    const millis = c.scrapeInterval[1] * UNIT_MILLIS[c.scrapeInterval[0]];
    if (millis % 1000 !== 0 || millis < 1000) fault('scrapeInterval');
  }
  for (const [key, value] of Object.entries(c.monitoringLabels ?? {})) {
    if (!isLabelKey(key)) fault('monitoringLabels key');
    else if (!isLabelValue(value)) fault(`monitoringLabels.${key}`);
  }
  if (own.length > 0) return own;

  const taken = TAKEN_SECRETS[c.kind].find(([name]) => name === secretName);
  if (taken) {
    return [{ path: taken[1], prop: taken[1] === TARGETS[c.kind].path ? 'grantMetricsAccess(credentials).secretName' : 'addRole(role).credentials.secretName' }];
  }
  const target = TARGETS[c.kind];
  const metricsPort = p ?? target.defaultPort;
  if ((target.podPorts as readonly number[]).includes(metricsPort)) return [{ path: target.path, prop: 'sidecar port' }];
  if ((target.servicePorts as readonly number[]).includes(metricsPort)) return [{ path: target.path, prop: 'sidecar Service port' }];
  return [];
}

/** Asserts the error is a plain Error (a TypeError or RangeError is a crash) naming one of the faults. */
function expectPropError(error: unknown, faults: Fault[], c: Case): void {
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).constructor).toBe(Error);
  const message = (error as Error).message;
  const named = faults.some((f) => message.startsWith(`${f.path}: ${f.prop}`));
  if (!named) throw new Error(`expected a refusal naming one of ${JSON.stringify(faults)} for ${JSON.stringify(c)}, got: ${message}`);
}

describe('ExporterSidecar with any props on any target (property test)', () => {
  test(`synthesizes strictly valid objects or throws the expected prop error, over ${NUM_RUNS} cases`, () => {
    const outcomes = { cases: 0, synthesized: 0, rejected: 0, secondRefused: 0 };
    const byKind = Object.fromEntries(TARGET_KINDS.map((kind) => [kind, { cases: 0, synthesized: 0, rejected: 0 }])) as
      { [kind in TargetKind]: { cases: number; synthesized: number; rejected: number } };

    fc.assert(fc.property(cases, (c) => {
      outcomes.cases++;
      byKind[c.kind].cases++;
      const target = TARGETS[c.kind];
      const faults = expectedFaults(c);
      const metricsPort = resolvePort(c) ?? target.defaultPort;
      const credentials: PostgresCredentials = {
        secretName: resolveSecret(c), ...(c.usernameKey === undefined ? {} : { usernameKey: c.usernameKey }),
      };
      const s = stack(c.kind, c.namespace);

      let objects: any[];
      try {
        new ExporterSidecar(s.chart, 'Metrics', {
          target: s.target,
          credentials,
          image: c.image,
          port: c.port === undefined ? undefined : metricsPort,
          resources: c.resources,
          scrapeObject: c.scrapeObject,
          scrapeInterval: c.scrapeInterval === undefined ? undefined : toDuration(c.scrapeInterval),
          alerts: c.alerts,
          dashboard: c.dashboard,
          connectionAlertPercent: c.connectionAlertPercent,
          monitoringLabels: c.monitoringLabels,
        });
        if (c.second) {
          // A component takes one exporter: the second is refused by the target, whatever its props.
          const second = () => new ExporterSidecar(s.chart, 'Metrics2', { target: s.target, credentials: { secretName: 'second-exporter' } });
          let refused: unknown;
          try {
            second();
          } catch (error) {
            refused = error;
          }
          if (refused === undefined) throw new Error(`a second exporter on the ${c.kind} was accepted: ${JSON.stringify(c)}`);
          expectPropError(refused, [{ path: target.path, prop: 'sidecar container name' }], c);
          outcomes.secondRefused++;
        }
        objects = synthObjects(s.chart);
      } catch (error) {
        if (faults.length === 0) throw error;
        expectPropError(error, faults, c);
        outcomes.rejected++;
        byKind[c.kind].rejected++;
        return;
      }
      if (faults.length > 0) throw new Error(`expected a refusal naming one of ${JSON.stringify(faults)}, but it synthesized: ${JSON.stringify(c)}`);
      // A case with a second exporter counts as refused: its first exporter synthesized (checked below), its second did not.
      const counted = c.second ? 'rejected' : 'synthesized';

      expect(validateManifests(objects, 'v1.27.0')).toEqual([]);

      // The exporter runs once in every pod of the target, on the port given, with the image given.
      for (const [workloadKind, workloadName] of target.workloads) {
        const pod = findObject(objects, workloadKind, workloadName).spec.template.spec;
        const exporters = pod.containers.filter((container: any) => container.name === target.exporter);
        expect(exporters).toHaveLength(1);
        expect(exporters[0].ports).toEqual([{ name: 'metrics', containerPort: metricsPort, protocol: 'TCP' }]);
        expect(exporters[0].image).toBe(c.image ?? target.defaultImage);
        expect((pod.initContainers ?? []).map((container: any) => container.name)).not.toContain(target.exporter);
      }
      const servicePorts = findObject(objects, 'Service', target.service).spec.ports.filter((p: any) => p.name === 'metrics');
      expect(servicePorts).toEqual([{ name: 'metrics', port: metricsPort, targetPort: 'metrics', protocol: 'TCP' }]);

      // The monitoring objects asked for, and no others, with the monitoring labels.
      // postgres_exporter's queries file (pending_restart) is the pods' ConfigMap, labelled as the target, not a monitoring object.
      const filesConfigMap = target.exporter === 'postgres-exporter' ? `ConfigMap/${target.name}-postgres-exporter` : undefined;
      expect(objects.filter((o) => `${o.kind}/${o.metadata.name}` === filesConfigMap)).toHaveLength(filesConfigMap ? 1 : 0);
      const own = objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === target.exporter
        && `${o.kind}/${o.metadata.name}` !== filesConfigMap);
      const scrapeObject = c.scrapeObject ?? ScrapeObject.NONE;
      const expected = [
        ...(scrapeObject === ScrapeObject.NONE ? [] : [`${scrapeObject}/${target.name}-metrics`]),
        ...(c.alerts ? [`PrometheusRule/${target.name}-alerts`] : []),
        ...(c.dashboard ? [`ConfigMap/${target.name}-dashboard`] : []),
      ];
      expect(own.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(expected.sort());
      const userLabels = Object.entries(c.monitoringLabels ?? {}).filter(([key]) => !key.startsWith('app.kubernetes.io/'));
      for (const o of own) {
        expect(o.metadata.namespace).toBe(c.namespace ?? undefined);
        for (const [key, value] of userLabels) {
          expect([key, o.metadata.labels[key]]).toEqual([key, o.kind === 'ConfigMap' && key === 'grafana_dashboard' ? '1' : value]);
        }
      }
      if (scrapeObject !== ScrapeObject.NONE) {
        const monitor = findObject(objects, scrapeObject, `${target.name}-metrics`);
        const endpoints = scrapeObject === ScrapeObject.POD_MONITOR ? monitor.spec.podMetricsEndpoints : monitor.spec.endpoints;
        const seconds = c.scrapeInterval === undefined ? 30 : (c.scrapeInterval[1] * UNIT_MILLIS[c.scrapeInterval[0]]) / 1000;
        expect(endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: `${seconds}s` }]);
      }
      if (c.alerts) expect(findObject(objects, 'PrometheusRule', `${target.name}-alerts`).spec.groups[0].rules.length).toBeGreaterThan(0);

      outcomes[counted]++;
      byKind[c.kind][counted]++;
    }), { numRuns: NUM_RUNS });

    expect(outcomes.cases).toBe(NUM_RUNS);
    expect(outcomes.synthesized).toBeGreaterThan(0);
    expect(outcomes.rejected).toBeGreaterThan(0);
    for (const kind of TARGET_KINDS) expect(byKind[kind].cases).toBeGreaterThan(0);
    const perKind = TARGET_KINDS.map((kind) => `${kind} ${byKind[kind].cases}: ${byKind[kind].synthesized} synthesized, ${byKind[kind].rejected} rejected`);
    console.log(`exporter property test: ${outcomes.cases} cases, ${outcomes.synthesized} synthesized, ${outcomes.rejected} rejected `
      + `(${outcomes.secondRefused} second exporters refused); ${perKind.join('; ')}`);
  }, 120_000);
});
