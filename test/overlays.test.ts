import { ApiObject, App, Duration, JsonPatch, Testing } from 'cdk8s';
import * as fc from 'fast-check';
import { ANALYTICS_TEAM, buildOrdersEnvironments, DEV, OrdersStackChart, PROD } from '../examples/team-overlays';
import {
  BackupRepository, ExporterSidecarProps, Overlays, PgBouncerPoolerProps, PodSpread, PostgresStatefulCluster, PostgresStatefulClusterProps,
  StackOverlay, TaintEffect, TolerationOperator,
} from '../lib';
import { validateManifests } from './support/kube-schema';
import { findObject, synthObjects } from './support/synth';
import { postgresVersion } from '../lib/core/postgres-versions';

const BASE: PostgresStatefulClusterProps = {
  superuserSecret: { secretName: 'su' },
  replicationSecret: { secretName: 'repl' },
  instances: 2,
  labels: { service: 'orders', tier: 'db' },
  storage: { size: '20Gi', storageClassName: 'standard' },
  resources: { cpuLimit: '2', memoryLimit: '2Gi' },
  placement: { tolerations: [{ key: 'base', operator: TolerationOperator.EXISTS }] },
};

describe('Overlays: how layers merge', () => {
  test('no overlay gives the base props back, equal and unchanged', () => {
    expect(Overlays.cluster(BASE, [])).toEqual(BASE);
    expect(Overlays.cluster(BASE, [{}, { pooler: { replicas: 3 } }])).toEqual(BASE);
  });

  test('the base props are never mutated', () => {
    const before = JSON.stringify(BASE);
    Overlays.cluster(BASE, [PROD, ANALYTICS_TEAM, { labels: { service: 'x' }, cluster: { storage: { size: '1Gi' } } }]);
    expect(JSON.stringify(BASE)).toBe(before);
  });

  test('objects merge key by key: labels, storage, resources', () => {
    const props = Overlays.cluster(BASE, [{
      labels: { env: 'prod' },
      cluster: { storage: { size: '200Gi' }, resources: { memoryLimit: '8Gi' } },
    }]);
    expect(props.labels).toEqual({ service: 'orders', tier: 'db', env: 'prod' });
    expect(props.storage).toEqual({ size: '200Gi', storageClassName: 'standard' });
    expect(props.resources).toEqual({ cpuLimit: '2', memoryLimit: '8Gi' });
  });

  test('lists and numbers replace: tolerations, instances', () => {
    const tolerations = [{ key: 'dedicated', value: 'db', effect: TaintEffect.NO_SCHEDULE }];
    const props = Overlays.cluster(BASE, [{ placement: { tolerations }, cluster: { instances: 3 } }]);
    expect(props.placement!.tolerations).toEqual(tolerations);
    expect(props.instances).toBe(3);
  });

  test('the component section wins over the stack-wide fields of the same overlay', () => {
    const props = Overlays.cluster(BASE, [{ labels: { tier: 'stack' }, cluster: { labels: { tier: 'cluster' } } }]);
    expect(props.labels!.tier).toBe('cluster');
  });

  test('every stack-wide workload field reaches the components, the network policy too', () => {
    const networkPolicy = { clients: [{ namespace: 'orders-api' }] };
    const overlays: StackOverlay[] = [{ networkPolicy, annotations: { a: 'b' } }];
    const pooler: PgBouncerPoolerProps = { backend: undefined as any };
    expect(Overlays.cluster(BASE, overlays)).toMatchObject({ networkPolicy, annotations: { a: 'b' } });
    expect(Overlays.pooler(pooler, overlays)).toEqual({ ...pooler, networkPolicy, annotations: { a: 'b' } });
  });

  test('a later overlay wins over an earlier one, even over its component section', () => {
    const props = Overlays.cluster(BASE, [{ cluster: { labels: { tier: 'first' }, instances: 5 } }, { labels: { tier: 'second' } }]);
    expect(props.labels!.tier).toBe('second');
    expect(props.instances).toBe(5);
  });

  test('an unset field in an overlay keeps the base value', () => {
    expect(Overlays.cluster(BASE, [{ cluster: { instances: undefined, storage: { size: undefined } } }]).instances).toBe(2);
    expect(Overlays.cluster(BASE, [{ cluster: { storage: { size: undefined } } }]).storage).toEqual(BASE.storage);
  });

  test('a section for another component leaves the props alone', () => {
    const pooler: PgBouncerPoolerProps = { backend: undefined as any, defaultPoolSize: 20, replicas: 2 };
    const overlays: StackOverlay[] = [{ cluster: { instances: 9 }, balancer: { replicas: 9 }, pooler: { defaultPoolSize: 5 } }];
    expect(Overlays.pooler(pooler, overlays)).toEqual({ ...pooler, defaultPoolSize: 5 });
  });

  test('constructs and Durations are taken as they are, not merged', () => {
    const target = new PostgresStatefulCluster(Testing.chart(), 'Db', BASE);
    const base: ExporterSidecarProps = { target, credentials: { secretName: 'exp' }, scrapeInterval: Duration.seconds(30) };
    const props = Overlays.exporter(base, [{ exporter: { scrapeInterval: Duration.minutes(2), monitoringLabels: { release: 'x' } } }]);
    expect(props.target).toBe(target);
    expect(props.scrapeInterval!.toSeconds()).toBe(120);
    expect(props.monitoringLabels).toEqual({ release: 'x' });
  });

  test('exporters ignore the stack-wide labels, annotations and placement, which are their targets\'', () => {
    const target = new PostgresStatefulCluster(Testing.chart(), 'Db', BASE);
    const base: ExporterSidecarProps = { target, credentials: { secretName: 'exp' } };
    expect(Overlays.exporter(base, [{ labels: { a: 'b' }, placement: { nodeSelector: { a: 'b' } } }])).toEqual(base);
  });

  test('an overlay value the construct refuses fails with the construct\'s own error', () => {
    expect(() => new OrdersStackChart(Testing.app(), 'orders-x', { overlays: [{ pooler: { defaultPoolSize: 0 } }] }))
      .toThrow(/^orders-x\/OrdersPgbouncer: defaultPoolSize 0 must be a whole number from 1 to \d+; /);
    expect(() => new OrdersStackChart(Testing.app(), 'orders-x', { overlays: [{ placement: { nodeSelector: { pool: 'a b' } } }] }))
      .toThrow(/^orders-x\/OrdersDb: placement\.nodeSelector\.pool "a b" is not a label value; /);
  });

  test('an overlay that overbooks the cluster fails synthesis with the budget table', () => {
    const chart = new OrdersStackChart(Testing.app(), 'orders-x', { overlays: [{ balancer: { replicas: 4, numInitChildren: 32 } }] });
    expect(() => synthObjects(chart)).toThrow(/orders-x\/OrdersPgpool +child pools +128 +128/);
  });
});

describe('Overlays: high availability and backups per environment', () => {
  const s3 = (bucket: string, schedule: { full?: string; incremental?: string }) => BackupRepository.s3({
    bucket, endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1', credentials: { secretName: 'orders-s3' }, schedule,
  });
  const NIGHTLY = s3('orders-backups', { full: '0 1 * * 0', incremental: '0 1 * * 1-6' });
  /** Backed up in every environment unless one says otherwise; plain mode, so the image must carry pgBackRest. */
  const BACKED_UP: PostgresStatefulClusterProps = {
    ...BASE,
    image: postgresVersion().highAvailabilityImage.image,
    tls: { issuer: { name: 'internal-ca' } },
    backup: { repositories: [NIGHTLY], archiveTimeout: Duration.minutes(2) },
  };
  const NO_BACKUP: StackOverlay = { cluster: { instances: 1, withoutBackup: true } };
  const HOURLY = s3('orders-prod-backups', { full: '0 1 * * 0', incremental: '0 * * * *' });
  const HA_PROD: StackOverlay = {
    cluster: { instances: 3, highAvailability: { synchronousMode: true }, backup: { repositories: [HOURLY] } },
  };
  const synthCluster = (props: PostgresStatefulClusterProps) => synthObjects(withCluster(props));
  const withCluster = (props: PostgresStatefulClusterProps) => {
    const chart = Testing.chart();
    new PostgresStatefulCluster(chart, 'Db', { name: 'orders-db', ...props });
    return chart;
  };
  const kinds = (objects: any[], kind: string) => objects.filter((o) => o.kind === kind).map((o) => o.metadata.name).sort();
  const schedules = (objects: any[]) => objects.filter((o) => o.kind === 'CronJob').map((o) => o.spec.schedule).sort();

  test('dev without backups: no backup prop, no CronJob, no archiving, the rest of the base kept', () => {
    const props = Overlays.cluster(BACKED_UP, [NO_BACKUP]);
    expect(props).not.toHaveProperty('backup');
    expect(props).toEqual({ ...BACKED_UP, instances: 1, backup: undefined });
    const objects = synthCluster(props);
    expect(kinds(objects, 'CronJob')).toEqual([]);
    expect(kinds(objects, 'StatefulSet')).toEqual(['orders-db-primary']);
    expect(findObject(objects, 'ConfigMap', 'orders-db-config').data['postgresql.conf']).not.toMatch(/archive_command/);
    // The base itself does back up, so the test above is about the overlay.
    expect(schedules(synthCluster(BACKED_UP))).toEqual(['0 1 * * 0', '0 1 * * 1-6']);
  });

  test('prod with HA and its own schedule: one Patroni StatefulSet, the repositories list replaced, the other backup fields kept', () => {
    const props = Overlays.cluster(BACKED_UP, [HA_PROD]);
    expect(props.highAvailability).toEqual({ synchronousMode: true });
    expect(props.backup).toEqual({ repositories: [HOURLY], archiveTimeout: Duration.minutes(2) });
    const objects = synthCluster(props);
    expect(kinds(objects, 'StatefulSet')).toEqual(['orders-db']);
    expect(findObject(objects, 'StatefulSet', 'orders-db').spec.replicas).toBe(3);
    expect(schedules(objects)).toEqual(['0 * * * *', '0 1 * * 0']);
  });

  test('a team overriding one backup field and one HA field keeps everything else of prod', () => {
    const team: StackOverlay = { cluster: { backup: { archiveTimeout: Duration.minutes(5) }, highAvailability: { ttl: Duration.seconds(45) } } };
    const props = Overlays.cluster(BACKED_UP, [HA_PROD, team]);
    expect(props.backup!.repositories).toEqual([HOURLY]);
    expect(props.backup!.repositories[0]).toBe(HOURLY);
    expect(props.backup!.archiveTimeout!.toMinutes()).toBe(5);
    expect(props.highAvailability!.synchronousMode).toBe(true);
    expect(props.highAvailability!.ttl!.toSeconds()).toBe(45);
    const patroni = findObject(synthCluster(props), 'ConfigMap', 'orders-db-patroni').data['patroni.yml'];
    expect(patroni).toMatch(/^ {4}ttl: 45$/m);
    expect(patroni).toMatch(/archive_timeout: 300/);
  });

  test('nested HA fields merge key by key, lists in them replace', () => {
    const base = { ...BASE, highAvailability: { ttl: Duration.seconds(30), apiServer: { cidrs: ['10.0.0.0/8'], ports: [6443] } } };
    const props = Overlays.cluster(base, [{ cluster: { highAvailability: { apiServer: { cidrs: ['10.1.0.10/32'] } } } }]);
    expect(props.highAvailability).toEqual({ ttl: Duration.seconds(30), apiServer: { cidrs: ['10.1.0.10/32'], ports: [6443] } });
  });

  test('withoutHighAvailability runs the plain StatefulSets; a later overlay turns HA on again', () => {
    const haBase = { ...BASE, highAvailability: { synchronousMode: true } };
    const plain = Overlays.cluster(haBase, [{ cluster: { withoutHighAvailability: true } }]);
    expect(plain).not.toHaveProperty('highAvailability');
    expect(kinds(synthCluster(plain), 'StatefulSet')).toEqual(['orders-db-primary', 'orders-db-replica']);
    const again = Overlays.cluster(haBase, [
      { cluster: { withoutHighAvailability: true } },
      { cluster: { highAvailability: { ttl: Duration.seconds(20) } } },
    ]);
    // Turned off, then on: the base's fields do not come back.
    expect(again.highAvailability).toEqual({ ttl: Duration.seconds(20) });
  });

  test('switching off what the base does not have changes nothing; false switches nothing', () => {
    expect(Overlays.cluster(BASE, [{ cluster: { withoutBackup: true, withoutHighAvailability: true } }])).toEqual(BASE);
    expect(Overlays.cluster(BACKED_UP, [{ cluster: { withoutBackup: false, backup: { archiveTimeout: Duration.minutes(1) } } }]).backup)
      .toEqual({ repositories: [NIGHTLY], archiveTimeout: Duration.minutes(1) });
  });

  test('a switch and fields of the same feature in one overlay are refused, naming the overlay, the prop and the fix', () => {
    expect(() => Overlays.cluster(BACKED_UP, [{}, { cluster: { withoutBackup: true, backup: { archiveTimeout: Duration.minutes(5) } } }]))
      .toThrow('Overlays.cluster overlays[1]: cluster.withoutBackup true comes with cluster.backup (archiveTimeout) in the same overlay; '
        + 'keep withoutBackup to run this environment without backup, or drop it to change the base\'s backup');
    expect(() => Overlays.cluster(BASE, [{ cluster: { withoutHighAvailability: true, highAvailability: {} } }]))
      .toThrow(/^Overlays\.cluster overlays\[0\]: cluster\.withoutHighAvailability true comes with cluster\.highAvailability \(empty\) in the same overlay; /);
  });

  test('backup fields without repositories where there are no backups are refused, naming the overlay', () => {
    const message = 'Overlays.cluster overlays[1]: cluster.backup ["archiveTimeout"] changes backups that the base and the earlier overlays '
      + 'do not have (or turned off); list backup.repositories in this overlay to turn backups on here, or set backup in the base stack';
    const later: StackOverlay = { cluster: { backup: { archiveTimeout: Duration.minutes(5) } } };
    expect(() => Overlays.cluster(BACKED_UP, [NO_BACKUP, later])).toThrow(message);
    expect(() => Overlays.cluster(BASE, [{}, later])).toThrow(message);
    expect(Overlays.cluster(BACKED_UP, [NO_BACKUP, { cluster: { backup: { repositories: [HOURLY] } } }]).backup).toEqual({ repositories: [HOURLY] });
  });
});

describe('the orders example: one base stack, three environments', () => {
  const app = Testing.app();
  const [dev, prod, analytics] = buildOrdersEnvironments(app).map((chart) => synthObjects(chart));
  const environments = { dev, prod, analytics };
  const ALL = Object.entries(environments);

  const workloads = (objects: any[]) => objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind));
  const names = (objects: any[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  const selectors = (objects: any[]) => objects
    .filter((o) => ['Service', 'Deployment', 'StatefulSet', 'PodDisruptionBudget', 'ServiceMonitor'].includes(o.kind))
    .map((o) => [o.kind, o.metadata.name, o.kind === 'Service' ? o.spec.selector : o.spec.selector.matchLabels]);
  const iniValue = (objects: any[], key: string) =>
    new RegExp(`^${key} = (.*)$`, 'm').exec(findObject(objects, 'ConfigMap', 'orders-pgbouncer-config').data['pgbouncer.ini'])?.[1];

  test.each(ALL)('%s validates strictly against Kubernetes 1.27', (_env, objects) => {
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });

  test('prod and the team overlay have the same object names and selectors', () => {
    expect(names(analytics)).toEqual(names(prod));
    expect(selectors(analytics)).toEqual(selectors(prod));
  });

  test('dev has the same names and selectors, less the replica objects and budgets of a single instance', () => {
    const onlyInProd = names(prod).filter((name) => !names(dev).includes(name));
    expect(onlyInProd).toEqual([
      'PodDisruptionBudget/orders-db', 'PodDisruptionBudget/orders-pgbouncer', 'PodDisruptionBudget/orders-pgpool',
      'Service/orders-db-ro', 'StatefulSet/orders-db-replica',
    ]);
    expect(names(dev).filter((name) => !names(prod).includes(name))).toEqual([]);
    const common = (objects: any[]) => selectors(objects).filter(([kind, name]) => names(dev).includes(`${kind}/${name}`));
    expect(common(dev)).toEqual(common(prod));
  });

  test('sizes follow each environment: instances, proxies, pools, storage', () => {
    const facts = (objects: any[]) => ({
      primary: findObject(objects, 'StatefulSet', 'orders-db-primary').spec.replicas,
      replicas: objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'orders-db-replica')?.spec.replicas ?? 0,
      pgbouncerPods: findObject(objects, 'Deployment', 'orders-pgbouncer').spec.replicas,
      pgpoolPods: findObject(objects, 'Deployment', 'orders-pgpool').spec.replicas,
      poolSize: iniValue(objects, 'default_pool_size'),
      maxClientConn: iniValue(objects, 'max_client_conn'),
      data: findObject(objects, 'StatefulSet', 'orders-db-primary').spec.volumeClaimTemplates
        .map((claim: any) => `${claim.metadata.name}:${claim.spec.resources.requests.storage}:${claim.spec.storageClassName ?? 'default'}`),
      memory: findObject(objects, 'StatefulSet', 'orders-db-primary').spec.template.spec.containers
        .find((c: any) => c.name === 'postgres').resources.limits.memory,
    });
    expect(facts(dev)).toEqual({
      primary: 1, replicas: 0, pgbouncerPods: 1, pgpoolPods: 1, poolSize: '4', maxClientConn: '2000', data: ['data:5Gi:default'], memory: '1Gi',
    });
    expect(facts(prod)).toEqual({
      primary: 1, replicas: 2, pgbouncerPods: 3, pgpoolPods: 2, poolSize: '10', maxClientConn: '5000',
      data: ['data:200Gi:fast-ssd', 'wal:50Gi:fast-ssd'], memory: '8Gi',
    });
    expect(facts(analytics)).toEqual({ ...facts(prod), poolSize: '4', data: ['data:1Ti:fast-ssd', 'wal:50Gi:fast-ssd'] });
  });

  test('prod and the team run on their node pools, tolerating the dedicated taint, at database priority; dev anywhere', () => {
    const placement = (objects: any[]) => workloads(objects).map(({ spec }) =>
      [spec.template.spec.nodeSelector, spec.template.spec.tolerations, spec.template.spec.priorityClassName]);
    const taint = [{ key: 'example.com/dedicated', operator: 'Equal', value: 'database', effect: 'NoSchedule' }];
    expect(new Set(placement(dev).map((p) => JSON.stringify(p)))).toEqual(new Set([JSON.stringify([undefined, undefined, undefined])]));
    for (const [objects, pool] of [[prod, 'database'], [analytics, 'analytics']] as const) {
      expect(placement(objects).length).toBe(4);
      for (const fields of placement(objects)) expect(fields).toEqual([{ 'example.com/node-pool': pool }, taint, 'database-critical']);
    }
  });

  test('every object carries the labels of its environment and team, every workload object the annotations', () => {
    const expected = {
      dev: { 'example.com/environment': 'dev' },
      prod: { 'example.com/environment': 'prod' },
      analytics: { 'example.com/environment': 'prod', 'example.com/team': 'analytics' },
    };
    for (const [env, objects] of ALL) {
      // Monitoring objects carry the exporters' monitoringLabels instead.
      const own = objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'cdk8s-postgres'
        && !['ServiceMonitor', 'PrometheusRule'].includes(o.kind));
      expect(own.length).toBeGreaterThanOrEqual(14);
      for (const object of own) expect(object.metadata.labels).toMatchObject(expected[env as keyof typeof expected]);
    }
    const annotated = analytics.filter((o) => o.metadata.labels?.['example.com/service'] === 'orders');
    expect(annotated.length).toBe(23);
    for (const object of annotated) {
      expect(object.metadata.annotations).toEqual({ 'example.com/on-call': 'orders-oncall', 'example.com/cost-center': 'analytics-4711' });
    }
  });

  test('a JSON patch, the documented last resort, reaches the rendered object', () => {
    const chart = new OrdersStackChart(Testing.app(), 'orders-patched', { overlays: [PROD] });
    ApiObject.of(chart.node.findChild('OrdersDb').node.findChild('Primary')).addJsonPatch(JsonPatch.add('/spec/minReadySeconds', 10));
    const objects = synthObjects(chart);
    expect(findObject(objects, 'StatefulSet', 'orders-db-primary').spec.minReadySeconds).toBe(10);
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });

  test('the team\'s larger sorts are checked against its memory like any other setting', () => {
    const conf = findObject(analytics, 'ConfigMap', 'orders-db-config').data['postgresql.conf'];
    expect(conf).toMatch(/^work_mem = '48MB'$/m);
    expect(findObject(prod, 'ConfigMap', 'orders-db-config').data['postgresql.conf']).toMatch(/^work_mem = '4MB'$/m);
  });

  test('dev scrapes every minute, the others at the exporter default', () => {
    const interval = (objects: any[]) => objects.filter((o) => o.kind === 'ServiceMonitor').map((o) => o.spec.endpoints[0].interval);
    expect(interval(dev)).toEqual(['60s', '60s', '60s']);
    expect(new Set(interval(prod))).toEqual(new Set(['30s']));
  });
});

describe('any overlay (property test)', () => {
  const NUM_RUNS = 150;
  const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>) =>
    fc.option(fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: other, weight: 1 }), { nil: undefined, freq: 2 });
  const count = (min: number, max: number) => mostly(fc.integer({ min, max }), fc.constantFrom(0, -1, 1.5, max * 100, Number.NaN));
  const quantity = (valid: string[]) => mostly(fc.constantFrom(...valid), fc.constantFrom('lots', '', '-1Gi'));
  const labels = mostly(
    fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/), fc.stringMatching(/^[a-z0-9]{0,8}$/), { maxKeys: 2 }),
    fc.constantFrom<{ [key: string]: string }>({ 'bad key': 'x' }, { ok: 'bad value!' }),
  );
  const placement = fc.option(fc.record({
    nodeSelector: labels,
    tolerations: fc.option(fc.array(fc.record({
      key: fc.option(fc.constantFrom('dedicated', 'example.com/pool', 'bad key'), { nil: undefined }),
      operator: fc.option(fc.constantFrom(TolerationOperator.EQUAL, TolerationOperator.EXISTS), { nil: undefined }),
      effect: fc.option(fc.constantFrom(TaintEffect.NO_SCHEDULE, TaintEffect.NO_EXECUTE), { nil: undefined }),
    }, { requiredKeys: [] }), { maxLength: 2 }), { nil: undefined }),
    priorityClassName: mostly(fc.constantFrom('database-critical', 'high'), fc.constant('Bad_Name')),
  }, { requiredKeys: [] }), { nil: undefined });
  const resources = fc.option(fc.record({
    cpuLimit: quantity(['1', '2', '500m']),
    memoryLimit: quantity(['1Gi', '2Gi', '4Gi', '512Mi']),
  }, { requiredKeys: [] }), { nil: undefined });
  const overlay = fc.record({
    labels,
    placement,
    cluster: fc.option(fc.record({
      instances: count(1, 5),
      resources,
      storage: fc.option(fc.record({ size: quantity(['5Gi', '100Gi']), storageClassName: fc.option(fc.constantFrom('fast-ssd', 'Bad Class'), { nil: undefined }) },
        { requiredKeys: [] }), { nil: undefined }),
      spread: fc.option(fc.constantFrom(PodSpread.PREFERRED, PodSpread.REQUIRED), { nil: undefined }),
    }, { requiredKeys: [] }), { nil: undefined }),
    pooler: fc.option(fc.record({ replicas: count(1, 5), defaultPoolSize: count(1, 40), maxClientConn: count(10, 5000), resources },
      { requiredKeys: [] }), { nil: undefined }),
    balancer: fc.option(fc.record({ replicas: count(1, 4), numInitChildren: count(1, 40), maxPool: count(1, 3) }, { requiredKeys: [] }),
      { nil: undefined }),
  }, { requiredKeys: [] });

  const identity = (objects: any[]) => objects
    .filter((o) => ['Service', 'Deployment', 'StatefulSet', 'ConfigMap', 'ServiceAccount'].includes(o.kind))
    .map((o) => [o.kind, o.metadata.name, o.spec?.selector]);
  const baseIdentity = identity(synthObjects(new OrdersStackChart(Testing.app(), 'orders', { overlays: [DEV] })));

  test(`any list of overlays synthesizes valid objects with the base names and selectors, or fails with a prop error (${NUM_RUNS} cases)`, () => {
    const outcomes = { cases: 0, synthesized: 0, rejected: 0, overbooked: 0 };
    fc.assert(fc.property(fc.array(overlay as fc.Arbitrary<StackOverlay>, { minLength: 1, maxLength: 3 }), (overlays) => {
      outcomes.cases++;
      let objects: any[];
      try {
        objects = synthObjects(new OrdersStackChart(new App({ outdir: '/tmp/cdk8s-postgres-overlays' }), 'orders', { overlays: [DEV, ...overlays] }));
      } catch (error) {
        expect((error as Error).constructor).toBe(Error);
        expect((error as Error).message).toMatch(/^orders\/Orders(Db|Pgpool|Pgbouncer|DbMetrics|PgpoolMetrics|PgbouncerMetrics): \S+ [^]*; /);
        if (/leaves .* connections/.test((error as Error).message)) outcomes.overbooked++;
        outcomes.rejected++;
        return;
      }
      expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
      // Names and selectors of what every instance count renders never move.
      expect(identity(objects).filter(([kind, name]) => baseIdentity.some(([k, n]) => k === kind && n === name)))
        .toEqual(baseIdentity);
      outcomes.synthesized++;
    }), { numRuns: NUM_RUNS });
    expect(outcomes.cases).toBe(NUM_RUNS);
    expect(outcomes.synthesized).toBeGreaterThan(0);
    expect(outcomes.rejected).toBeGreaterThan(0);
    console.log(`overlay property test: ${outcomes.cases} cases, ${outcomes.synthesized} synthesized, `
      + `${outcomes.rejected} rejected (${outcomes.overbooked} by the connection budget)`);
  });
});
