import { spawnSync } from 'child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Testing } from 'cdk8s';
import { Client } from 'pg';
import { LocalBalancer } from './support/balancer-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { clientConfig, Target } from './support/load';
import { LocalPooler } from './support/pooler-harness';
import { AirflowStackChart } from '../../examples/airflow-stack';
import { findObject } from '../support/synth';
import { psql, requirePostgres, run, runOk, scratchDir, waitFor } from './support/postgres-bin';

const SECRETS: SecretStore = {
  'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
  'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
  'airflow-app': { username: 'airflow', password: 'app-secret' },
  'airflow-pgpool-srcheck': { username: 'srcheck', password: 'check-secret' },
  'airflow-db-exporter': { username: 'postgres_exporter', password: 'db-stats' },
  'airflow-pgpool-exporter': { username: 'pgpool_exporter', password: 'pool-stats' },
  'airflow-pgbouncer-exporter': { username: 'pgbouncer_exporter', password: 'bouncer-stats' },
};

/** The README's promise: every held or new session through either proxy gets a result or an error within it. */
const BOUND_SECONDS = 30;

type Fault = 'SIGKILL' | 'SIGSTOP';
type Proxy = 'Pgpool-II' | 'PgBouncer';
type Kind = 'held read' | 'held write' | 'new read' | 'new write';
interface Cell { fault: string; proxy: Proxy; kind: Kind; outcome: string; seconds: number; port?: number }

const READ = 'SELECT inet_server_port() AS port';
const WRITE = "WITH written AS (INSERT INTO fault_notes VALUES ('x') RETURNING 1) SELECT inet_server_port() AS port FROM written";

/** The postmaster's pid and its children's: a whole instance, as a crashed or frozen pod is. */
function instancePids(instance: LocalInstance): string[] {
  const postmaster = readFileSync(join(instance.pgdata, 'postmaster.pid'), 'utf8').split('\n')[0].trim();
  const children = run('ps', ['-o', 'pid=', '--ppid', postmaster]).stdout.split('\n').map((pid) => pid.trim()).filter(Boolean);
  return [postmaster, ...children];
}

/** A query in its own time, or the error the client saw, each timed from `start`. */
async function timed(start: number, work: () => Promise<number>): Promise<{ outcome: string; seconds: number; port?: number }> {
  try {
    const port = await work();
    return { outcome: 'result', seconds: (Date.now() - start) / 1000, port };
  } catch (error) {
    return { outcome: `error: ${error instanceof Error ? error.message : String(error)}`, seconds: (Date.now() - start) / 1000 };
  }
}

/** A session whose client gives up after `capMs`, past the bound, so a broken promise fails the test instead of hanging it. */
function client(target: Target, capMs: number): Client {
  const session = new Client({ ...clientConfig(target), connectionTimeoutMillis: capMs, query_timeout: capMs });
  session.on('error', () => undefined);
  return session;
}

async function queryPort(session: Client, sql: string): Promise<number> {
  return Number((await session.query(sql)).rows[0].port);
}

/**
 * The fault matrix: a whole instance (postmaster and backends) killed with SIGKILL or frozen with
 * SIGSTOP, as a crashed or a hung pod; through Pgpool-II (over the primary and replica) and
 * PgBouncer (over the primary), sessions held from before the fault and new ones, reading and
 * writing, each timed to its result or error. The matrix is printed for the README.
 */
describe('faults under Pgpool-II and PgBouncer: every session ends within the documented bound', () => {
  const objects = new AirflowStackChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor }).toJson();
  const matrix: Cell[] = [];
  let scratch: string;
  let instances: LocalInstance[];
  let balancer: LocalBalancer;
  let pooler: LocalPooler;
  const app = (port: number): Target => ({ port, user: 'airflow', password: 'app-secret', database: 'airflow' });
  const proxies = (): [Proxy, number][] => [['Pgpool-II', balancer.port], ['PgBouncer', pooler.port]];

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgpool');
    DAEMONS.require('pgbouncer');
    scratch = scratchDir('cdk8s-postgres-faults-e2e');
    instances = (await localCluster(objects, 'airflow-db', scratch, SECRETS)).slice(0, 2);
    await bootCluster(instances);
    balancer = await LocalBalancer.create(scratch, objects, 'airflow-pgpool', {
      'airflow-db-rw.airflow-ha.svc': instances[0].port,
      'airflow-db-ro.airflow-ha.svc': instances[1].port,
    }, SECRETS);
    await balancer.start();
    // The example's PgBouncer fronts Pgpool-II; here its backend host is the primary itself.
    pooler = await LocalPooler.create(scratch, objects, 'airflow-pgbouncer', { 'airflow-pgpool.airflow-ha.svc': instances[0].port }, SECRETS);
    pooler.writeUserlist();
    await pooler.start();
    psql(app(balancer.port), 'CREATE TABLE fault_notes (body text)');
  }, 180_000);

  afterAll(() => {
    pooler?.kill();
    balancer?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (matrix.length > 0) {
      console.log(['fault | proxy | session | outcome | seconds', '--- | --- | --- | --- | ---',
        ...matrix.map((c) => `${c.fault} | ${c.proxy} | ${c.kind} | ${c.outcome}${c.port ? ` from the ${c.port === instances[0].port ? 'primary' : 'replica'}` : ''} | ${c.seconds.toFixed(1)}`)].join('\n'));
    }
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  /** Held sessions (connected and used before the fault) and new ones, for both proxies, timed from the fault. */
  async function sessionsUnder(fault: string, boundSeconds: number, apply: () => void): Promise<Cell[]> {
    const capMs = (boundSeconds + 15) * 1000;
    const held = await Promise.all(proxies().map(async ([proxy, port]) => {
      const sessions = [client(app(port), capMs), client(app(port), capMs)];
      for (const session of sessions) {
        await session.connect();
        await queryPort(session, READ);
      }
      return { proxy, sessions };
    }));
    const start = Date.now();
    apply();
    const cells = await Promise.all(proxies().flatMap(([proxy, port]) => {
      const [heldRead, heldWrite] = held.find((h) => h.proxy === proxy)!.sessions;
      const fresh = async (sql: string) => {
        const session = client(app(port), capMs);
        try {
          await session.connect();
          return await queryPort(session, sql);
        } finally {
          await session.end().catch(() => undefined);
        }
      };
      const cell = async (kind: Kind, work: () => Promise<number>): Promise<Cell> => ({ fault, proxy, kind, ...await timed(start, work) });
      return [
        cell('held read', () => queryPort(heldRead, READ)), cell('held write', () => queryPort(heldWrite, WRITE)),
        cell('new read', () => fresh(READ)), cell('new write', () => fresh(WRITE)),
      ];
    }));
    await Promise.all(held.flatMap((h) => h.sessions).map((session) => session.end().catch(() => undefined)));
    matrix.push(...cells);
    return cells;
  }

  /** Kills or freezes a whole instance; returns how to bring it back. */
  function injure(instance: LocalInstance, fault: Fault): () => Promise<void> {
    const pids = instancePids(instance);
    if (fault === 'SIGSTOP') {
      runOk('kill', ['-STOP', ...pids]);
      return async () => { runOk('kill', ['-CONT', ...pids]); };
    }
    runOk('kill', ['-KILL', ...pids]);
    return () => restart(instance, pids);
  }

  async function restart(instance: LocalInstance, pids: string[]): Promise<void> {
    await waitFor(`${instance.podName}'s processes to end`, () => run('kill', ['-0', pids[0]]).status !== 0);
    await instance.start();
  }

  /**
   * What the kubelet does to a frozen primary: its liveness probe (pg_isready, which gives up
   * after 3 s) fails failureThreshold times periodSeconds apart, and the container is killed,
   * which closes its sockets. Resolves once it has been killed.
   */
  async function livenessKill(instance: LocalInstance): Promise<void> {
    const probe = livenessProbe();
    const start = Date.now();
    // Probes start periodSeconds apart, however long each takes.
    for (let failures = 0, tick = 1; failures < probe.failureThreshold; tick++) {
      await new Promise((resolve) => setTimeout(resolve, start + tick * probe.periodSeconds * 1000 - Date.now()));
      failures = instance.ready() ? 0 : failures + 1;
    }
    runOk('kill', ['-KILL', ...instancePids(instance)]);
  }

  const livenessProbe = () => findObject(objects, 'StatefulSet', 'airflow-db-primary').spec.template.spec.containers
    .find((c: any) => c.name === 'postgres').livenessProbe as { periodSeconds: number; failureThreshold: number; timeoutSeconds: number };

  /** A new read through Pgpool-II, and the port that answered it. */
  const readThroughPgpool = () => run('psql', ['-XAtc', READ, `host=127.0.0.1 port=${balancer.port} user=airflow dbname=airflow sslmode=require`],
    { PGPASSWORD: 'app-secret', PGCONNECT_TIMEOUT: '5' }).stdout.trim();

  /** New read sessions through Pgpool-II until one lands on the replica: the balancer took it back by itself. */
  function readsReturnToReplica(): Promise<number> {
    return waitFor('reads through Pgpool-II to reach the replica again', () =>
      Array.from({ length: 4 }, readThroughPgpool).includes(String(instances[1].port)), 60_000);
  }

  for (const fault of ['SIGKILL', 'SIGSTOP'] as Fault[]) {
    test(`replica ${fault}: held and new sessions end within ${BOUND_SECONDS} s; reads fall back to the primary, then return`, async () => {
      let recover = async () => undefined as void;
      const cells = await sessionsUnder(`replica ${fault}`, BOUND_SECONDS, () => { recover = injure(instances[1], fault); });
      // Still down: once Pgpool-II's health check has detached it (its failover restarts the
      // children, ending sessions that start at that moment), new reads are the primary's.
      await waitFor('Pgpool-II to detach the replica', () => poolNodesAsExporter().get(instances[1].port) === 'down', 60_000);
      const during = Array.from({ length: 4 }, readThroughPgpool);
      await recover();
      const back = await readsReturnToReplica();
      console.log(`replica ${fault}: reads during the fault from ports ${during.join(', ')}; back on the replica ${(back / 1000).toFixed(1)} s after it returned`);
      for (const cell of cells) expect(cell.seconds).toBeLessThanOrEqual(BOUND_SECONDS);
      expect(during).toEqual(during.map(() => String(instances[0].port)));
      expect(cells.filter((cell) => cell.proxy === 'PgBouncer').map((cell) => cell.outcome)).toEqual(['result', 'result', 'result', 'result']);
    }, 150_000);
  }

  test(`primary SIGKILL: held and new sessions end within ${BOUND_SECONDS} s; writes work again after it returns`, async () => {
    let recover = async () => undefined as void;
    const cells = await sessionsUnder('primary SIGKILL', BOUND_SECONDS, () => { recover = injure(instances[0], 'SIGKILL'); });
    await recover();
    await writesWorkAgain('primary SIGKILL');
    for (const cell of cells) expect(cell.seconds).toBeLessThanOrEqual(BOUND_SECONDS);
  }, 150_000);

  // Neither proxy can tell a query that a frozen server never answers from a slow one: the
  // kubelet's liveness probe ends it, and the sessions with it.
  test('primary SIGSTOP: sessions end by the liveness probe\'s restart at the latest; writes work again after it', async () => {
    const probe = livenessProbe();
    const bound = probe.periodSeconds * probe.failureThreshold + probe.timeoutSeconds + 10;
    let killed: Promise<void> = Promise.resolve();
    let pids: string[] = [];
    const cells = await sessionsUnder('primary SIGSTOP', bound, () => {
      // Taken now, with the held sessions' backends among them.
      pids = instancePids(instances[0]);
      runOk('kill', ['-STOP', ...pids]);
      killed = livenessKill(instances[0]);
    });
    await killed;
    await restart(instances[0], pids);
    await writesWorkAgain('primary SIGSTOP');
    for (const cell of cells) expect(cell.seconds).toBeLessThanOrEqual(bound);
    // Sessions that wait for a server, rather than on a query sent to the frozen one, end within the common bound.
    const waiting = cells.filter((cell) => cell.proxy === 'PgBouncer' && cell.kind !== 'held read');
    for (const cell of waiting) expect(cell.seconds).toBeLessThanOrEqual(BOUND_SECONDS);
  }, 200_000);

  async function writesWorkAgain(fault: string): Promise<void> {
    const back = await waitFor('writes through both proxies', () => proxies().every(([, port]) => run('psql', ['-XAtc', WRITE,
      `host=127.0.0.1 port=${port} user=airflow dbname=airflow sslmode=require`], { PGPASSWORD: 'app-secret', PGCONNECT_TIMEOUT: '5' }).status === 0), 60_000);
    console.log(`${fault}: writes through both proxies ${(back / 1000).toFixed(1)} s after the primary returned`);
  }

  /** SHOW POOL_NODES as pgpool2_exporter runs it (its user, database and sslmode): each port's status. */
  function poolNodesAsExporter(): Map<number, string> {
    const rows = run('psql', ['-XAt', '-F', '|', '-c', 'SHOW POOL_NODES', `host=127.0.0.1 port=${balancer.port} user=pgpool_exporter dbname=postgres sslmode=require`],
      { PGPASSWORD: 'pool-stats', PGCONNECT_TIMEOUT: '5' }).stdout.trim().split('\n').map((row) => row.split('|'));
    return new Map(rows.filter((row) => row.length > 3).map((row) => [Number(row[2]), row[3]]));
  }

  test('a stopped backend shows as down to the exporter within the health check interval, and PgpoolBackendDown fires on it', async () => {
    const conf = readFileSync(join(balancer.root, 'etc', 'pgpool.conf'), 'utf8');
    const setting = (name: string) => Number(new RegExp(`^${name} = (\\d+)$`, 'm').exec(conf)![1]);
    const interval = setting('health_check_period') + setting('health_check_timeout');
    expect(poolNodesAsExporter().get(instances[1].port)).toBe('up');
    instances[1].stop();
    const seen = await waitFor('the exporter to see the replica down', () => poolNodesAsExporter().get(instances[1].port) === 'down', 60_000);
    console.log(`stopped replica: SHOW POOL_NODES as pgpool_exporter says down after ${(seen / 1000).toFixed(1)} s; health check period + timeout ${interval} s`);
    expect(seen / 1000).toBeLessThanOrEqual(interval + 1);
    // pgpool2_exporter's pgpool2_pool_nodes_status: 1 for up or waiting, 0 for down or unused.
    const status = ['up', 'waiting'].includes(poolNodesAsExporter().get(instances[1].port)!) ? 1 : 0;
    promtoolFires(status);
    await instances[1].start();
    await readsReturnToReplica();
    expect(poolNodesAsExporter().get(instances[1].port)).toBe('up');
  }, 120_000);

  /**
   * The rendered PgpoolBackendDown rule, run by promtool over a replica node reported up for a
   * minute and then at `status` for five: it must fire for 0 and stay quiet for 1.
   */
  function promtoolFires(status: number): void {
    const rules = findObject(objects, 'PrometheusRule', 'airflow-pgpool-alerts').spec;
    const rule = rules.groups.flatMap((group: any) => group.rules).find((r: any) => r.alert === 'PgpoolBackendDown');
    const pod = 'airflow-pgpool-6d4b8c9f7-x2k4q';
    expect(pod).toMatch(new RegExp(`^(${/pod=~"([^"]+)"/.exec(rule.expr)![1]})$`));
    const hostname = 'airflow-db-ro.airflow-ha.svc';
    const labels = `namespace="airflow-ha",pod="${pod}",hostname="${hostname}",port="5432",role="standby"`;
    const expand = (text: string) => text.replace('{{ $labels.pod }}', pod).replace('{{ $labels.hostname }}', hostname);
    const dir = join(scratch, 'promtool');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'rules.yaml'), JSON.stringify({ groups: [{ name: 'pgpool', rules: [rule] }] }));
    writeFileSync(join(dir, 'tests.yaml'), JSON.stringify({
      rule_files: ['rules.yaml'], evaluation_interval: '1m',
      tests: [{
        interval: '1m', input_series: [{ series: `pgpool2_pool_nodes_status{${labels}}`, values: `1 ${status}x5` }],
        alert_rule_test: [{
          eval_time: '5m', alertname: 'PgpoolBackendDown', exp_alerts: status !== 0 ? [] : [{
            exp_labels: { severity: 'critical', namespace: 'airflow-ha', pod, hostname },
            exp_annotations: { summary: expand(rule.annotations.summary), description: expand(rule.annotations.description) },
          }],
        }],
      }],
    }));
    const result = spawnSync('promtool', ['test', 'rules', join(dir, 'tests.yaml')], { encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`).toMatch(/SUCCESS/);
    expect(status).toBe(0);
  }
});
