/**
 * The exporters Debian packages, newer than the host's, run with the rendered sidecar's flags and
 * environment against the worker's real daemons: each must export every metric the alerts and
 * dashboards use (EXPORTER_METRICS), so a rename in a newer exporter fails here before a user's
 * alert goes silent. postgres_exporter runs in both versions at hand (Debian 12's 0.11.1 on the
 * host, Debian 13's 0.17.1 in the trixie root); pgbouncer_exporter only in the trixie root
 * (0.10.2: Debian 12 packages an unrelated exporter of the same name).
 */
import { ChildProcess } from 'child_process';
import { existsSync, readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { Client } from 'pg';
import { PooledClusterChart } from '../../examples/pooled-cluster';
import { CLUSTER_FILES, CLUSTER_PATHS, REPLICATION_GROUP } from '../../lib/cluster/cluster-layout';
import { PostgresStatefulCluster } from '../../lib/cluster/postgres-stateful-cluster';
import { ExporterKind } from '../../lib/core/monitoring';
import { EXPORTERS } from '../../lib/exporter/exporter-kinds';
import { EXPORTER_METRICS } from '../../lib/exporter/exporter-metrics';
import { ExporterSidecar } from '../../lib/exporter/exporter-sidecar';
import { findObject } from '../support/synth';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS, DaemonSet, daemonSet } from './support/daemons';
import { resolveEnv } from './support/environment';
import { LocalPostgresExporter, Sample, configMapsOf, parseMetrics, runPassfileInit, sidecarContainer } from './support/exporter-harness';
import { LocalPooler, startPooledCluster } from './support/pooler-harness';
import { freePort, requirePostgres, runIn, runOk, scratchDir, startDaemonIn, waitFor } from './support/postgres-bin';

/** The names an exporter must export: all but `up`, which Prometheus itself records per scrape. */
const exportedNames = (kind: ExporterKind) => EXPORTER_METRICS[kind].map((metric) => metric.name).filter((name) => name !== 'up');
const missingFrom = (kind: ExporterKind, samples: Sample[]) => {
  const names = new Set(samples.map((sample) => sample.name));
  return exportedNames(kind).filter((name) => !names.has(name));
};

const TRIXIE = daemonSet('trixie');
const BOOKWORM = daemonSet('bookworm');
const PGBOUNCER_EXPORTER = '/usr/bin/prometheus-pgbouncer-exporter';

/** The version `program --version` prints in `set` ("0.17.1"). */
function exporterVersion(set: DaemonSet, program: string): string {
  const output = runIn(set, program, ['--version']);
  const found = /version (\d+\.\d+\.\d+)/.exec(`${output.stdout}${output.stderr}`);
  if (!found) throw new Error(`${program} --version printed no version: ${output.stdout}${output.stderr}`);
  return found[1];
}

describe(`postgres_exporter of Debian 12 and 13 beside a real PostgreSQL ${DAEMONS.postgresMajor} primary and replica`, () => {
  const SECRETS: SecretStore = {
    'shop-db-superuser': { username: 'dbadmin', password: 'su-secret' },
    'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
    'shop-app': { username: 'shop_app', password: 'app-secret' },
    'shop-db-exporter': { username: 'postgres_exporter', password: 'ex@po:rt/pass' },
  };
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  const cluster = new PostgresStatefulCluster(chart, 'ShopDb', {
    instances: 2,
    allowedCidrs: ['10.0.0.0/8'],
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-app' } }],
  });
  new ExporterSidecar(chart, 'ShopDbMetrics', { target: cluster, credentials: { secretName: 'shop-db-exporter' } });
  const profile = cluster.monitoringProfile;
  const objects = chart.toJson();
  // As in exporter.e2e.test.ts: the replica streams from loopback here, not from the pod network.
  const config = findObject(objects, 'ConfigMap', 'shop-db-config');
  const replicationLine = new RegExp(`^(host(?:ssl)?\\s+replication\\s+\\+${REPLICATION_GROUP}\\s+)10\\.0\\.0\\.0/8`, 'm');
  config.data[CLUSTER_FILES.pgHbaConf] = config.data[CLUSTER_FILES.pgHbaConf].replace(replicationLine, '$1127.0.0.1/32');
  const podSpec = findObject(objects, 'StatefulSet', 'shop-db-primary').spec.template.spec;
  const container = sidecarContainer(podSpec, EXPORTERS[ExporterKind.POSTGRES].exporterName);

  let scratch: string;
  let primary: LocalInstance;
  let replica: LocalInstance;
  const exporters: LocalPostgresExporter[] = [];

  /** The exporter role's sessions on the primary right now, over its Unix socket as the superuser. */
  const exporterSessions = () => Number(runOk('psql', ['--no-psqlrc', '--tuples-only', '--no-align', `--host=${primary.localize(CLUSTER_PATHS.socketDir)}`,
    `--port=${primary.port}`, '--username=dbadmin', '--dbname=postgres', '--command',
    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'postgres_exporter'"], { PGPASSWORD: 'su-secret' }).trim());

  /** The most sessions the exporter role held while `during` ran, sampled without blocking the scrapes. */
  async function peakSessions(during: Promise<unknown>): Promise<number> {
    const client = new Client({ host: primary.localize(CLUSTER_PATHS.socketDir), port: primary.port, user: 'dbadmin', password: 'su-secret', database: 'postgres' });
    await client.connect();
    let done = false;
    void during.finally(() => (done = true));
    let peak = 0;
    try {
      while (!done) {
        const result = await client.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'postgres_exporter'");
        peak = Math.max(peak, result.rows[0].n);
      }
    } finally {
      await client.end();
    }
    return peak;
  }

  beforeAll(async () => {
    requirePostgres();
    for (const set of [BOOKWORM, TRIXIE]) set.require('postgresExporter');
    scratch = scratchDir('cdk8s-postgres-exporters');
    [primary, replica] = await localCluster(objects, 'shop-db', scratch, SECRETS);
    await bootCluster([primary, replica]);
    for (const set of [BOOKWORM, TRIXIE]) {
      exporters.push(await LocalPostgresExporter.create(scratch, `exporter-${set.name}`, podSpec, container, SECRETS, profile.daemonPort, primary.port, configMapsOf(objects), set));
    }
  }, 120_000);

  afterAll(() => {
    for (const exporter of exporters) exporter.kill();
    for (const instance of [primary, replica]) instance?.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the versions are Debian 12\'s 0.11.1 and Debian 13\'s 0.17.1', () => {
    expect([BOOKWORM.versions.postgresExporter, TRIXIE.versions.postgresExporter]).toEqual(['0.11.1', '0.17.1']);
  });

  test.each([['bookworm', 0], ['trixie', 1]])('%s\'s exporter, run as rendered, exports every metric the alerts and dashboards use, '
    + 'and keeps within the two connections the budget counts while one Prometheus scrapes it', async (_, index) => {
    const exporter = exporters[index];
    const slot = profile.replicationSlots![0];
    exporter.start();
    try {
      const samples = await exporter.scrapeUntilUp(30_000);
      const value = (name: string, labels: { [label: string]: string } = {}) => samples
        .filter((s) => s.name === name && Object.entries(labels).every(([label, v]) => s.labels[label] === v)).map((s) => s.value);
      expect(missingFrom(ExporterKind.POSTGRES, samples)).toEqual([]);
      expect(value('pg_up')).toEqual([1]);
      expect(value('pg_settings_max_connections')).toEqual([profile.connectionLimit]);
      expect(value('pg_replication_slots_pg_wal_lsn_diff', { slot_name: slot })).toHaveLength(1);
      // The label the alerts group by is still there.
      expect(samples.filter((s) => s.name === 'pg_stat_activity_count').every((s) => 'datname' in s.labels && 'state' in s.labels)).toBe(true);
      // One scraper (Prometheus scrapes a target one scrape at a time): never more than two sessions.
      let most = 0;
      for (let round = 0; round < 10; round++) {
        const scrape = exporter.scrape();
        most = Math.max(most, await peakSessions(scrape));
        expect(await scrape).toBeDefined();
      }
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(2);
      // Scrapes at once (two Prometheus servers, or a retry over a slow one): 0.11 shares its
      // collectors' connection; 0.14 and later open one per scrape in flight, so the budget's two
      // hold for one scraper only. Measured, and bounded by one per scrape plus the kept one.
      const concurrent = await peakSessions(Promise.all(Array.from({ length: 8 }, () => exporter.scrape())));
      expect(concurrent).toBeLessThanOrEqual(index === 0 ? 2 : 9);
      process.stdout.write(`postgres_exporter ${exporter.set.versions.postgresExporter}: at most ${most} sessions under one scraper, ${concurrent} under 8 scrapes at once\n`);
    } finally {
      exporter.kill();
      await waitFor('the exporter\'s sessions to end', () => exporterSessions() === 0, 15_000);
    }
  }, 60_000);
});

describe(`pgbouncer_exporter of Debian 13, run as rendered against a real PgBouncer ${DAEMONS.name === 'trixie' ? '1.24' : '1.18'}`, () => {
  const SECRETS: SecretStore = {
    'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
    'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
    'airflow-app': { username: 'airflow', password: 'app-secret' },
    'airflow-pgbouncer-auth': { username: 'pgbouncer_auth', password: 'auth-secret' },
    'airflow-pgbouncer-exporter': { username: 'pgbouncer_exporter', password: 'stats"secret' },
  };
  const chart = new PooledClusterChart(Testing.app(), 'e2e');
  new ExporterSidecar(chart, 'AirflowPgbouncerMetrics', { target: chart.pooler, credentials: { secretName: 'airflow-pgbouncer-exporter' } });
  const profile = chart.pooler.monitoringProfile;
  const objects = chart.toJson();
  const pod = findObject(objects, 'Deployment', 'airflow-pgbouncer').spec.template.spec;
  const exporterName = EXPORTERS[ExporterKind.PGBOUNCER].exporterName;
  const container = sidecarContainer(pod, exporterName);
  let scratch: string;
  let instances: LocalInstance[];
  let pooler: LocalPooler;
  let exporter: ChildProcess | undefined;

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbouncer');
    if (!existsSync(join(TRIXIE.root!, PGBOUNCER_EXPORTER))) {
      throw new Error(`${PGBOUNCER_EXPORTER} is not installed in ${TRIXIE.root}: run \`bash scripts/debian-trixie-root.sh\` (it installs prometheus-pgbouncer-exporter)`);
    }
    scratch = scratchDir('cdk8s-pgbouncer-exporters');
    ({ instances, pooler } = await startPooledCluster(scratch, objects, objects, 'airflow-pgbouncer', SECRETS));
  }, 120_000);

  afterAll(() => {
    if (exporter?.pid !== undefined && exporter.exitCode === null) process.kill(exporter.pid, 'SIGKILL');
    pooler?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('it is 0.10.2, and with the rendered args, PGUSER and the init step\'s passfile it exports every metric the alerts and dashboards use', async () => {
    expect(exporterVersion(TRIXIE, PGBOUNCER_EXPORTER)).toBe('0.10.2');
    runPassfileInit(pod, exporterName, SECRETS, join(scratch, 'exporter-volumes'));
    const env = resolveEnv(container, SECRETS);
    env.PGPASSFILE = join(scratch, 'exporter-volumes', container.volumeMounts.find((m: any) => env.PGPASSFILE.startsWith(m.mountPath)).name, 'pgpass');
    const port = await freePort();
    const connection = `--pgBouncer.connectionString=postgres://127.0.0.1:${profile.daemonPort}/`;
    const listen = `--web.listen-address=:${container.ports[0].containerPort}`;
    expect(container.args).toEqual([listen, expect.stringMatching(new RegExp(`^${connection}pgbouncer\\?sslmode=require$`))]);
    const args = container.args.map((arg: string) => (arg === listen ? `--web.listen-address=127.0.0.1:${port}`
      : arg.replace(connection, `--pgBouncer.connectionString=postgres://127.0.0.1:${pooler.port}/`)));
    const log = join(scratch, 'pgbouncer-exporter.log');
    exporter = startDaemonIn(TRIXIE, PGBOUNCER_EXPORTER, args, log, env);
    let samples: Sample[] = [];
    for (const start = Date.now(); !samples.some((s) => s.name === 'pgbouncer_up' && s.value === 1);) {
      if (Date.now() - start > 30_000) throw new Error(`no pgbouncer_up 1 within 30 s; its log:\n${readFileSync(log, 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      if (response?.ok) samples = parseMetrics(await response.text());
    }
    expect(missingFrom(ExporterKind.PGBOUNCER, samples)).toEqual([]);
    expect(samples.find((s) => s.name === 'pgbouncer_config_max_client_connections')?.value).toBe(profile.connectionLimit);
    expect(samples.filter((s) => s.name === 'pgbouncer_pools_client_maxwait_seconds').every((s) => 'database' in s.labels && 'user' in s.labels)).toBe(true);
  }, 60_000);
});
