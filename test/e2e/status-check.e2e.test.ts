import { rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Testing } from 'cdk8s';
import { Client } from 'pg';
import { LocalBalancer } from './support/balancer-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { configMapsOf, LocalPostgresExporter, sidecarContainer } from './support/exporter-harness';
import { LocalPooler } from './support/pooler-harness';
import { psql, requirePostgres, scratchDir, waitFor } from './support/postgres-bin';
import { AirflowStackChart } from '../../examples/airflow-stack';
import { CLUSTER_FILES } from '../../lib/cluster/cluster-layout';
import { main } from '../../lib/status/cli';
import { statusTable } from '../../lib/status/status-render';
import { findObject } from '../support/synth';

const SECRETS: SecretStore = {
  'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
  'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
  'airflow-app': { username: 'airflow', password: 'app-pass:word' },
  'airflow-pgpool-srcheck': { username: 'srcheck', password: 'check-secret' },
  'airflow-db-exporter': { username: 'postgres_exporter', password: 'db-stats:secret' },
  'airflow-pgpool-exporter': { username: 'pgpool_exporter', password: 'pool-stats:secret' },
  'airflow-pgbouncer-exporter': { username: 'pgbouncer_exporter', password: 'bouncer-stats:secret' },
};
const PASSWORDS = Object.values(SECRETS).map((secret) => secret.password);

/** One run of the bin's main(): its exit code, its stdout, and the JSON report when --json. */
async function runStatus(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => { out += String(chunk); return true; });
  const writeErr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: any) => { out += String(chunk); return true; });
  try {
    const code = await main(args, {});
    return { code, out };
  } finally {
    write.mockRestore();
    writeErr.mockRestore();
  }
}

/**
 * The status check against the Airflow example's stack run on loopback: three instances,
 * Pgpool-II over the -rw and -ro Services, PgBouncer over Pgpool-II, postgres_exporter beside
 * the primary. The stack starts once; each test breaks one thing, checks the report, and heals it.
 * The cluster archives (archive_mode on, archive_command `true`), so a failing command can be shown.
 */
describe(`cdk8s-postgres-status against real PostgreSQL ${DAEMONS.postgresMajor}, PgBouncer ${DAEMONS.versions.pgbouncer} and Pgpool-II ${DAEMONS.versions.pgpool} (daemon set ${DAEMONS.name})`, () => {
  const objects = new AirflowStackChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor }).toJson();
  let scratch: string;
  let manifests: string;
  let instances: LocalInstance[];
  let balancer: LocalBalancer;
  let pooler: LocalPooler;
  let exporter: LocalPostgresExporter;
  let args: string[];
  const outputs: string[] = [];
  const superuser = (instance: LocalInstance, sql: string) =>
    psql({ host: instance.socketDir, port: instance.port, user: 'postgres', password: 'super-secret' }, sql);

  /** Runs the bin with --json (and `extra`), checks no password reaches the output, and keeps the findings as the bin's table shows them. */
  const status = async (extra: string[] = []) => {
    const json = await runStatus([...args, ...extra, '--json']);
    for (const password of PASSWORDS) expect(json.out).not.toContain(password);
    const report = JSON.parse(json.out);
    const table = { out: `${statusTable(report.findings)}\n` };
    outputs.push(`$ cdk8s-postgres-status ${extra.join(' ')}\n${table.out}`);
    const find = (target: string, check: string) => report.findings.find((f: any) => f.target === target && f.check === check);
    const notOk = report.findings.filter((f: any) => f.status !== 'ok').map((f: any) => `${f.status} ${f.target} ${f.check}: ${f.message}`);
    return { code: json.code, report, find, notOk, table: table.out };
  };
  type Status = Awaited<ReturnType<typeof status>>;
  /** Runs the check until `done` holds (keeping only the last output), within 30 s. */
  const waitForStatus = async (what: string, done: (result: Status) => boolean, extra: string[] = []): Promise<Status> => {
    const start = Date.now();
    for (;;) {
      const result = await status(extra);
      if (done(result)) return result;
      if (Date.now() - start > 30_000) throw new Error(`${what}: not reached after 30 s:\n${result.table}`);
      outputs.pop();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  const waitUntilHealthy = (what: string) => waitForStatus(`${what}: healthy`, (result) => result.code === 0);

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgpool');
    DAEMONS.require('pgbouncer');
    DAEMONS.require('postgresExporter');
    scratch = scratchDir('cdk8s-postgres-status-e2e');
    manifests = join(scratch, 'manifests.k8s.yaml');
    writeFileSync(manifests, Testing.synth(new AirflowStackChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor }))
      .map((o) => JSON.stringify(o)).join('\n---\n'));
    instances = await localCluster(objects, 'airflow-db', scratch, SECRETS, false, (instance, file, text) => (file === CLUSTER_FILES.postgresqlConf
      ? `${instance.localize(text)}archive_mode = on\narchive_command = 'true'\n` : undefined));
    await bootCluster(instances);
    balancer = await LocalBalancer.create(scratch, objects, 'airflow-pgpool', {
      'airflow-db-rw.airflow-ha.svc': instances[0].port,
      'airflow-db-ro.airflow-ha.svc': instances[1].port,
    }, SECRETS);
    await balancer.start();
    pooler = await LocalPooler.create(scratch, objects, 'airflow-pgbouncer', { 'airflow-pgpool.airflow-ha.svc': balancer.port }, SECRETS);
    pooler.writeUserlist();
    await pooler.start();
    const podSpec = findObject(objects, 'StatefulSet', 'airflow-db-primary').spec.template.spec;
    exporter = await LocalPostgresExporter.create(scratch, 'primary-exporter', podSpec, sidecarContainer(podSpec, 'postgres-exporter'), SECRETS,
      5432, instances[0].port, configMapsOf(objects));
    exporter.start();
    await exporter.scrapeUntilUp();

    const endpoints = {
      ...Object.fromEntries(instances.map((instance) => [`pod/${instance.podName}`, `127.0.0.1:${instance.port}`])),
      'pod/airflow-db-primary-0:metrics': `127.0.0.1:${exporter.port}`,
      'service/airflow-db-rw': `127.0.0.1:${instances[0].port}`,
      'service/airflow-db-ro': `127.0.0.1:${instances[1].port}`,
      'service/airflow-pgpool': `127.0.0.1:${balancer.port}`,
      'service/airflow-pgbouncer': `127.0.0.1:${pooler.port}`,
    };
    writeFileSync(join(scratch, 'endpoints.json'), JSON.stringify(endpoints, null, 2));
    // The exporters' read-only roles: pg_monitor, PgBouncer's stats_users, Pgpool-II's pool_passwd.
    const login = (secret: string) => ({ username: SECRETS[secret].username, password: SECRETS[secret].password });
    writeFileSync(join(scratch, 'credentials.json'), JSON.stringify({
      'airflow-db': login('airflow-db-exporter'), 'airflow-pgbouncer': login('airflow-pgbouncer-exporter'), 'airflow-pgpool': login('airflow-pgpool-exporter'),
    }), { mode: 0o600 });
    args = ['--manifests', manifests, '--endpoints', join(scratch, 'endpoints.json'), '--credentials', join(scratch, 'credentials.json')];
  }, 120_000);

  afterAll(() => {
    console.log(outputs.join('\n'));
    exporter?.kill();
    pooler?.kill();
    balancer?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the healthy stack: every check passes, exit code 0', async () => {
    const result = await waitUntilHealthy('the stack after its start');
    expect(result.notOk.filter((line: string) => !/^skipped /.test(line))).toEqual([]);
    expect(result.find('airflow-db', 'primary').message).toBe('one primary: airflow-db-primary-0');
    expect(result.find('pod/airflow-db-primary-0', 'replication').message).toBe('2 of 2 standbys streaming');
    expect(result.find('service/airflow-db-ro', 'service-role').message).toBe('reaches a replica');
    expect(result.find('service/airflow-pgpool', 'nodes').message).toMatch(/^2 backend\(s\) up: /);
    expect(result.find('pod/airflow-db-primary-0:metrics', 'metrics').message).toBe('pg_up 1');
  });

  test('a stopped replica: unreachable, and the primary streams to one standby of two (exit code 4)', async () => {
    instances[2].stop();
    try {
      const result = await status();
      expect(result.code).toBe(4);
      expect(result.find('pod/airflow-db-replica-1', 'reachable').status).toBe('unreachable');
      expect(result.find('pod/airflow-db-primary-0', 'replication')).toMatchObject({
        status: 'critical', message: '1 of 2 standbys streaming; not streaming: airflow-db-replica-1 (not connected)',
      });
      expect(result.find('pod/airflow-db-primary-0', 'slots')).toMatchObject({ status: 'warning', message: expect.stringMatching(/^inactive: airflow_db_replica_1 /) });
    } finally {
      await instances[2].start();
    }
    await waitUntilHealthy('the replica after its restart');
  }, 60_000);

  test('paused replay: the replica lags behind the threshold (exit code 2)', async () => {
    // A commit the replica replays first: seconds behind count from the last one replayed.
    superuser(instances[0], 'CREATE TABLE status_e2e (n int)');
    await waitUntilHealthy('the replicas after a commit');
    superuser(instances[1], 'SELECT pg_wal_replay_pause()');
    superuser(instances[0], 'INSERT INTO status_e2e SELECT generate_series(1, 10000)');
    try {
      // Seconds behind count from the last commit replayed while WAL waits: more than 0 while the replay is paused.
      const result = await status(['--max-lag-seconds', '0', '--max-lag-bytes', '1024']);
      expect(result.code).toBe(2);
      expect(result.find('pod/airflow-db-replica-0', 'lag')).toMatchObject({
        status: 'warning', message: expect.stringMatching(/behind: replay is paused \(pg_wal_replay_resume\(\) resumes it\); over 1024 B; over 0\.00 s$/),
      });
      // With a threshold of 0 s, the other replica, replaying the insert, may show a moment of lag too; nothing else is wrong.
      expect(result.notOk.filter((line: string) => !/^(skipped|warning pod\/airflow-db-replica-\d lag)/.test(line))).toEqual([]);
    } finally {
      superuser(instances[1], 'SELECT pg_wal_replay_resume()');
    }
    await waitUntilHealthy('the replica after its replay resumed');
  }, 60_000);

  test('an inactive slot retains WAL on the primary (exit code 2)', async () => {
    superuser(instances[0], "SELECT pg_create_physical_replication_slot('status_e2e_orphan', true)");
    try {
      const result = await status();
      expect(result.code).toBe(2);
      expect(result.find('pod/airflow-db-primary-0', 'slots'))
        .toMatchObject({ status: 'warning', message: expect.stringMatching(/^inactive: status_e2e_orphan \(retains \d+/) });
    } finally {
      superuser(instances[0], "SELECT pg_drop_replication_slot('status_e2e_orphan')");
    }
    await waitUntilHealthy('the primary after the slot was dropped');
  }, 60_000);

  test('a postmaster setting changed and reloaded waits for a restart (exit code 2)', async () => {
    superuser(instances[0], "ALTER SYSTEM SET shared_buffers = '160MB'");
    superuser(instances[0], 'SELECT pg_reload_conf()');
    try {
      await waitFor('the reload', () => superuser(instances[0], 'SELECT count(*) FROM pg_settings WHERE pending_restart') === '1', 10_000);
      const result = await status();
      expect(result.code).toBe(2);
      expect(result.find('pod/airflow-db-primary-0', 'pending-restart'))
        .toMatchObject({ status: 'warning', message: 'changed, applied at the next restart: shared_buffers' });
    } finally {
      superuser(instances[0], 'ALTER SYSTEM RESET shared_buffers');
      superuser(instances[0], 'SELECT pg_reload_conf()');
    }
    await waitUntilHealthy('the primary after the setting was reset');
  }, 60_000);

  test('a failing archive_command: the last failure is newer than the last archived segment (exit code 3)', async () => {
    superuser(instances[0], "ALTER SYSTEM SET archive_command = 'false'");
    superuser(instances[0], 'SELECT pg_reload_conf()');
    superuser(instances[0], 'INSERT INTO status_e2e VALUES (1); SELECT pg_switch_wal()');
    try {
      await waitFor('a failed archive_command', () => superuser(instances[0], 'SELECT failed_count > 0 FROM pg_stat_archiver') === 't', 15_000);
      const result = await status();
      expect(result.code).toBe(3);
      expect(result.find('pod/airflow-db-primary-0', 'archiving'))
        .toMatchObject({ status: 'critical', message: expect.stringMatching(/^failing: \d+ failure\(s\), last 0000/) });
    } finally {
      superuser(instances[0], 'ALTER SYSTEM RESET archive_command');
      superuser(instances[0], 'SELECT pg_reload_conf()');
    }
    await waitUntilHealthy('the archiver after archive_command was fixed');
  }, 90_000);

  test('a saturated pooler: clients wait for one of default_pool_size server connections (exit code 2)', async () => {
    // 20 transactions for a pool of 16: 4 clients wait while the 16 sleep.
    const clients = Array.from({ length: 20 }, () => new Client({
      host: '127.0.0.1', port: pooler.port, user: 'airflow', password: SECRETS['airflow-app'].password, database: 'airflow', ssl: { rejectUnauthorized: false },
    }));
    await Promise.all(clients.map((client) => client.connect()));
    const sleeping = Promise.all(clients.map((client) => client.query('SELECT pg_sleep(3)')));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const result = await status();
      expect(result.code).toBe(2);
      expect(result.find('service/airflow-pgbouncer', 'pools')).toMatchObject({
        status: 'warning', message: expect.stringMatching(/^saturated: clients waiting for a server connection \(airflow\/airflow: \d+\), longest \d/),
      });
      // At least the 4 transactions beyond the pool's 16 server connections wait.
      expect(Number(/airflow\/airflow: (\d+)/.exec(result.find('service/airflow-pgbouncer', 'pools').message)![1])).toBeGreaterThanOrEqual(4);
    } finally {
      await sleeping;
      await Promise.all(clients.map((client) => client.end()));
    }
    await waitUntilHealthy('the pooler after the transactions ended');
  }, 60_000);

  test('a stopped pooler is unreachable (exit code 4)', async () => {
    pooler.kill();
    await waitFor('PgBouncer to stop', () => !pooler.listening());
    try {
      const result = await status();
      expect(result.code).toBe(4);
      expect(result.find('service/airflow-pgbouncer', 'reachable')).toMatchObject({ status: 'unreachable', message: expect.stringContaining('ECONNREFUSED') });
    } finally {
      await pooler.start();
    }
    await waitUntilHealthy('the pooler after its restart');
  }, 60_000);

  // Last: Pgpool-II keeps a backend it saw fail detached (no auto_failback), so the stack is left so.
  test('a balancer backend down: the -ro backend stops, then answers again but stays detached (exit code 3)', async () => {
    instances[1].stop();
    try {
      const stopped = await status();
      expect(stopped.code).toBe(4);
      expect(stopped.find('service/airflow-pgpool', 'nodes'))
        .toMatchObject({ status: 'critical', message: expect.stringMatching(/^backend\(s\) down: 1 127\.0\.0\.1:\d+ standby \w+\/down$/) });
      // Pgpool-II's own status turns down within an sr_check_period (10 s); meanwhile a session may fail while Pgpool-II tries the backend.
      await waitForStatus('Pgpool-II to mark the backend down', (result) => / down\/down$/.test(result.find('service/airflow-pgpool', 'nodes')?.message ?? ''));
    } finally {
      await instances[1].start();
    }
    const detached = await waitForStatus('the replica to stream again', (result) => result.notOk.filter((line: string) => !/^skipped /.test(line)).length === 1);
    expect(detached.code).toBe(3);
    expect(detached.notOk.filter((line: string) => !/^skipped /.test(line))).toEqual([expect.stringMatching(
      /^critical service\/airflow-pgpool nodes: backend\(s\) down: 1 127\.0\.0\.1:\d+ standby down\/up; node 1 answers again but stays detached until pcp_attach_node/)]);
  }, 90_000);
});
