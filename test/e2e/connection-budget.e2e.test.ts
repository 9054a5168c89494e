import { rmSync } from 'fs';
import { join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { Client } from 'pg';
import { EndpointRole, ExporterSidecar, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster } from '../../lib';
import { ExporterKind } from '../../lib/core/monitoring';
import { EXPORTERS } from '../../lib/exporter/exporter-kinds';
import { findObject } from '../support/synth';
import { ActivityPeaks, sampleActivity } from './support/activity-sampler';
import { LocalBalancer } from './support/balancer-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { LocalPostgresExporter, configMapsOf, sidecarContainer } from './support/exporter-harness';
import { clientConfig, concurrentSessions, LoadResult, Target } from './support/load';
import { LocalPooler } from './support/pooler-harness';
import { requirePostgres, scratchDir } from './support/postgres-bin';

const login = (username: string) => ({ username, password: `${username}-secret` });
const SECRETS: SecretStore = {
  'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
  'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
  'airflow-app': login('airflow'),
  'pgbouncer-auth': login('pgbouncer_auth'),
  'listed-app': login('listed_app'),
  'looked-a': login('looked_a'),
  'looked-b': login('looked_b'),
  'pool-a': login('pool_a'),
  'pool-b': login('pool_b'),
  'pgpool-srcheck': login('srcheck'),
  'db-exporter': login('postgres_exporter'),
};

/**
 * What each component logs in as on the backends: the sampler counts a component's sessions by
 * these roles, so each component's peak is measured apart from the others'.
 */
const COMPONENT_ROLES = {
  'budget/Pgbouncer': ['pgbouncer_auth', 'listed_app', 'looked_a', 'looked_b'],
  'budget/Pgpool': ['pool_a', 'pool_b', 'srcheck'],
  'budget/AirflowDb metrics exporter': ['postgres_exporter'],
};

/**
 * How far above the measured peak a budget may be: 1.5 x measured + 4. The budget is the worst
 * case, and two of its lines open only some of the time: reserve pools open once clients have
 * waited reserve_pool_timeout (the auth user's pool rarely waits that long, its queries take a
 * millisecond), and Pgpool-II's sr_check and health check sessions live for milliseconds per
 * period (2 pods x 2 per backend = 4, which a 20 ms sampler catches only by chance).
 */
const SLACK_FACTOR = 1.5;
const SLACK_CONSTANT = 4;

/** `sessions` clients at once, each running `transactions` transactions of `seconds` through the same pools. */
async function slowSessions(target: Target, sessions: number, transactions: number, seconds: number): Promise<LoadResult> {
  const errors: { [message: string]: number } = {};
  const outcomes = await Promise.all(Array.from({ length: sessions }, async () => {
    const client = new Client({ ...clientConfig(target), connectionTimeoutMillis: 30_000, query_timeout: 60_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      for (let i = 0; i < transactions; i++) await client.query(`SELECT pg_sleep(${seconds})`);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      errors[message] = (errors[message] ?? 0) + 1;
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }));
  const succeeded = outcomes.filter(Boolean).length;
  return { sessions, succeeded, failed: sessions - succeeded, errors };
}

describe(`the connection budget against real PgBouncer ${DAEMONS.versions.pgbouncer}, Pgpool-II ${DAEMONS.versions.pgpool} and postgres_exporter driven to their maximum`, () => {
  const chart = new Chart(Testing.app(), 'budget', { namespace: 'airflow' });
  const cluster = new PostgresStatefulCluster(chart, 'AirflowDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    superuserSecret: { secretName: 'airflow-db-superuser' },
    replicationSecret: { secretName: 'airflow-db-replication' },
    databases: [{ name: 'airflow', owner: { secretName: 'airflow-app' } }],
  });
  for (const secretName of ['listed-app', 'looked-a', 'looked-b', 'pool-a', 'pool-b']) cluster.addRole({ credentials: { secretName } });
  // Three pooled roles (one in the userlist, two looked up by auth_query), each with a pool per
  // database, the auth user's pool in each, and a reserve pool for each of these.
  new PgBouncerPooler(chart, 'Pgbouncer', {
    backend: cluster,
    replicas: 2,
    authUser: { secretName: 'pgbouncer-auth' },
    users: [{ secretName: 'listed-app' }],
    authQueryRoles: 2,
    databases: [{ name: 'airflow' }, { name: 'airflow_ro', dbname: 'airflow', target: EndpointRole.READ_ONLY }],
    defaultPoolSize: 3,
    reservePoolSize: 2,
    reservePoolTimeout: Duration.seconds(1),
  });
  new PgpoolBalancer(chart, 'Pgpool', {
    pgpoolVersion: DAEMONS.versions.pgpool,
    backend: cluster,
    replicas: 2,
    users: [{ credentials: { secretName: 'pool-a' }, envPrefix: 'POOLA' }, { credentials: { secretName: 'pool-b' }, envPrefix: 'POOLB' }],
    srCheckUser: { secretName: 'pgpool-srcheck' },
    numInitChildren: 6,
    maxPool: 2,
    srCheckPeriod: Duration.seconds(1),
    healthCheckPeriod: Duration.seconds(1),
  });
  new ExporterSidecar(chart, 'AirflowDbMetrics', { target: cluster, credentials: { secretName: 'db-exporter' } });
  const objects = chart.toJson();
  const hosts = (instances: LocalInstance[]) => ({ 'airflow-db-rw.airflow.svc': instances[0].port, 'airflow-db-ro.airflow.svc': instances[1].port });

  let scratch: string;
  let instances: LocalInstance[] = [];
  const poolers: LocalPooler[] = [];
  const balancers: LocalBalancer[] = [];
  const exporters: LocalPostgresExporter[] = [];
  const measured: Array<{ component: string; backend: string; peak: number; budget: number; sessions: ActivityPeaks['sessions'] }> = [];

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbouncer');
    DAEMONS.require('pgpool');
    DAEMONS.require('postgresExporter');
    scratch = scratchDir('cdk8s-postgres-budget-e2e');
    instances = await localCluster(objects, 'airflow-db', scratch, SECRETS);
    await bootCluster(instances);
    // Each pod in a scratch directory of its own: the harnesses lay a pod out under its Deployment's name.
    for (const pod of ['a', 'b']) {
      const pooler = await LocalPooler.create(join(scratch, `pooler-${pod}`), objects, 'pgbouncer', hosts(instances), SECRETS);
      pooler.writeUserlist();
      await pooler.start();
      poolers.push(pooler);
      const balancer = await LocalBalancer.create(join(scratch, `pgpool-${pod}`), objects, 'pgpool', hosts(instances), SECRETS);
      await balancer.start();
      balancers.push(balancer);
    }
    const exporterName = EXPORTERS[ExporterKind.POSTGRES].exporterName;
    for (const [instance, statefulSet] of [[instances[0], 'airflow-db-primary'], [instances[1], 'airflow-db-replica']] as const) {
      const podSpec = findObject(objects, 'StatefulSet', statefulSet).spec.template.spec;
      const exporter = await LocalPostgresExporter.create(scratch, `${instance.podName}-exporter`, podSpec, sidecarContainer(podSpec, exporterName),
        SECRETS, cluster.monitoringProfile.daemonPort, instance.port, configMapsOf(objects));
      exporter.start();
      exporters.push(exporter);
    }
  }, 240_000);

  afterAll(() => {
    poolers.forEach((pooler) => pooler.kill());
    balancers.forEach((balancer) => balancer.kill());
    exporters.forEach((exporter) => exporter.kill());
    instances.forEach((instance) => instance.kill());
    if (measured.length > 0) {
      console.log(['component / backend: budget, measured peak (per role/application_name)', ...measured.map((m) =>
        `${m.component} / ${m.backend}: ${m.budget}, ${m.peak} (${Object.entries(m.sessions).map(([s, n]) => `${s} ${n}`).join(', ')})`)].join('\n'));
    }
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  const superuser = (instance: LocalInstance): Target =>
    ({ port: instance.port, user: 'postgres', password: 'super-secret', database: 'postgres', host: instance.socketDir });
  const as = (port: number, username: string, database = 'airflow'): Target =>
    ({ port, user: username, password: login(username).password, database });

  /** The budget's lines of one consumer, summed, on the primary or on the replica. */
  const budgetOf = (consumer: string, backend: 'primary' | 'replica') => cluster._connectionDemands
    .filter((demand) => demand.consumer === consumer).reduce((sum, demand) => sum + demand[backend], 0);

  /** Runs `load` while sampling both instances; checks each backend's peak of `component` against its budget. */
  async function measure(component: keyof typeof COMPONENT_ROLES, load: () => Promise<LoadResult[]>): Promise<void> {
    const samplers = instances.map((instance) => sampleActivity(superuser(instance), { [component]: COMPONENT_ROLES[component] }));
    const results = await load();
    const peaks = await Promise.all(samplers.map((sampler) => sampler.stop()));
    for (const result of results) expect(result).toEqual({ sessions: result.sessions, succeeded: result.sessions, failed: 0, errors: {} });
    (['primary', 'replica'] as const).forEach((backend, index) => {
      const peak = peaks[index].groups[component];
      const budget = budgetOf(component, backend);
      const sessions = Object.fromEntries(Object.entries(peaks[index].sessions)
        .filter(([session]) => COMPONENT_ROLES[component].includes(session.split('/')[0])));
      measured.push({ component, backend, peak, budget, sessions });
      expect(peak).toBeLessThanOrEqual(budget);
      expect(budget).toBeLessThanOrEqual(SLACK_FACTOR * peak + SLACK_CONSTANT);
    });
  }

  test('PgBouncer: userlist and auth_query users, with reserve pools, stay within the pooler\'s budget lines on each instance', async () => {
    expect(cluster._connectionDemands.filter((d) => d.consumer === 'budget/Pgbouncer').map((d) => [d.purpose, d.primary, d.replica])).toEqual([
      ['pooled users', 18, 18], ['reserve pool', 16, 16], ['auth_query pool', 6, 6],
    ]);
    // 80 sessions per role, database and pod, 10 short transactions each, and beside them 12
    // sessions holding half-second transactions: clients queue behind pools of 3 for longer than
    // reserve_pool_timeout (1 s), so the reserve pools open too.
    await measure('budget/Pgbouncer', () => Promise.all(poolers.flatMap((pooler) => ['listed_app', 'looked_a', 'looked_b']
      .flatMap((user) => ['airflow', 'airflow_ro'].flatMap((database) => [
        concurrentSessions(as(pooler.port, user, database), 80, 10),
        slowSessions(as(pooler.port, user, database), 12, 2, 0.5),
      ])))));
  }, 180_000);

  test('Pgpool-II: every child caching max_pool connections, plus sr_check and health checks, stays within the balancer\'s budget lines', async () => {
    expect(cluster._connectionDemands.filter((d) => d.consumer === 'budget/Pgpool').map((d) => [d.purpose, d.primary, d.replica])).toEqual([
      ['child pools', 24, 24], ['sr_check', 2, 2], ['health check', 2, 2],
    ]);
    // num_init_children sessions per pod take every child; a second round as another role fills
    // each child's second cache slot (max_pool 2), on both backends.
    await measure('budget/Pgpool', async () => {
      const results: LoadResult[] = [];
      for (const user of ['pool_a', 'pool_b']) {
        results.push(...await Promise.all(balancers.map((balancer) => concurrentSessions(as(balancer.port, user), 6, 3))));
      }
      // Held a little longer, so that sr_check and health check periods (1 s) fall in the window.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      return results;
    });
  }, 180_000);

  test('postgres_exporter: two connections on each instance, however many scrapes run at once', async () => {
    await measure('budget/AirflowDb metrics exporter', async () => {
      for (let round = 0; round < 5; round++) await Promise.all(exporters.flatMap((exporter) => Array.from({ length: 8 }, () => exporter.scrape())));
      return [];
    });
  }, 60_000);
});
