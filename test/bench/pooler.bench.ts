// npm run bench: PgBouncerPooler against direct connections, side by side in one run, on
// loopback: the pooled-cluster example's rendered cluster and pooler, booted as in test/e2e, and
// in front of the same primary a pooler with a real team's settings (issue 19) and the example's
// pooler with its listener's TLS off, which tells the client hop's TLS from the rest of the hop.
import { rmSync } from 'fs';
import { Chart, Testing } from 'cdk8s';
import { PooledClusterChart } from '../../examples/pooled-cluster';
import { ExternalPostgres, PgBouncerPooler, PoolMode } from '../../lib';
import { LocalInstance, SecretStore } from '../e2e/support/cluster-harness';
import { DAEMONS } from '../e2e/support/daemons';
import { concurrentSessions, LoadResult, samplePeaks, Target } from '../e2e/support/load';
import { LocalPooler, startPooledCluster } from '../e2e/support/pooler-harness';
import { requirePostgres, runOk, scratchDir } from '../e2e/support/postgres-bin';

const SECRETS: SecretStore = {
  'airflow-db-superuser': { username: 'postgres', password: 'bench-super' },
  'airflow-db-replication': { username: 'replicator', password: 'bench-repl' },
  'airflow-app': { username: 'airflow', password: 'bench-app' },
  'airflow-pgbouncer-auth': { username: 'pgbouncer_auth', password: 'bench-auth' },
};
const ROUNDS = 2;
const SECONDS = 5;
const TEAM_SESSIONS = 626;
// Server connections per user, sampled on the primary; the sampler's own session left out.
const SERVER_CONNECTIONS = "SELECT usename, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY usename";

/**
 * One pgbench run. It vacuums the updated tables and empties the history first, as it does by
 * default, so throughput does not sink from run to run as they grow, which would favor the first.
 */
function pgbench(port: number, extra: string[]): number {
  const output = runOk('pgbench', ['--client=10', '--jobs=2', `--time=${SECONDS}`, '--host=127.0.0.1', `--port=${port}`,
    '--username=airflow', ...extra, 'airflow'], { PGPASSWORD: 'bench-app' });
  if (!/number of failed transactions: 0 /.test(output)) throw new Error(`pgbench had failures:\n${output}`);
  return Number(/tps = ([0-9.]+)/.exec(output)![1]);
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

/**
 * The example's objects, then one-pod poolers in front of its cluster, which they know by its
 * Service names (so they stay out of its connection budget, as an operator's cluster would): the
 * team's (transaction mode, max_client_conn 2000, default_pool_size 5) and the example's pool
 * settings without TLS on the listener.
 */
function benchObjects(): any[] {
  const chart = new Chart(Testing.app(), 'extra', { namespace: 'airflow' });
  const backend = new ExternalPostgres(chart, 'Db', { readWriteService: 'airflow-db-rw', readOnlyService: 'airflow-db-ro', replicas: 2 });
  const common = { backend, authUser: { secretName: 'airflow-pgbouncer-auth' }, replicas: 1 };
  new PgBouncerPooler(chart, 'TeamPgbouncer', { ...common, name: 'team-pgbouncer', poolMode: PoolMode.TRANSACTION, maxClientConn: 2000, defaultPoolSize: 5 });
  new PgBouncerPooler(chart, 'PlainPgbouncer', { ...common, name: 'plain-pgbouncer', defaultPoolSize: 20, maxDbConnections: 40, tls: { disabled: true } });
  return [...new PooledClusterChart(Testing.app(), 'bench').toJson(), ...chart.toJson()];
}

/** Another pooler of `objects` in front of the primary, started. */
async function startPooler(scratch: string, objects: any[], name: string, primary: number): Promise<LocalPooler> {
  const pooler = await LocalPooler.create(scratch, objects, name, { 'airflow-db-rw.airflow.svc': primary }, SECRETS);
  pooler.writeUserlist();
  await pooler.start();
  return pooler;
}

/** TEAM_SESSIONS concurrent sessions of short transactions, with the primary's peak server connections per user. */
async function teamLoad(app: Target, superuser: Target): Promise<{ load: LoadResult; peaks: { [user: string]: number } }> {
  const sampler = samplePeaks(superuser, SERVER_CONNECTIONS);
  const load = await concurrentSessions(app, TEAM_SESSIONS);
  return { load, peaks: await sampler.stop() };
}

async function main(): Promise<void> {
  requirePostgres();
  DAEMONS.require('pgbouncer');
  const objects = benchObjects();
  const scratch = scratchDir('cdk8s-postgres-bench');
  let instances: LocalInstance[] = [];
  const poolers: LocalPooler[] = [];
  try {
    const started = await startPooledCluster(scratch, objects, objects, 'airflow-pgbouncer', SECRETS);
    instances = started.instances;
    const primary = instances[0].port;
    const pooler = started.pooler;
    poolers.push(pooler);
    const team = await startPooler(scratch, objects, 'team-pgbouncer', primary);
    poolers.push(team);
    const plain = await startPooler(scratch, objects, 'plain-pgbouncer', primary);
    poolers.push(plain);
    const app = (port: number): Target => ({ port, user: 'airflow', password: 'bench-app', database: 'airflow' });
    const superuser: Target = { port: primary, user: 'postgres', password: 'bench-super', database: 'airflow', host: instances[0].socketDir };

    // Direct first: the pooler's server connections outlive its run and would take slots.
    const direct = await teamLoad(app(primary), superuser);
    const pooled = await teamLoad(app(team.port), superuser);
    console.log(`${TEAM_SESSIONS} concurrent sessions (3 short transactions each), PostgreSQL max_connections 100; pooled: PgBouncer transaction mode,`);
    console.log('max_client_conn 2000, default_pool_size 5 (one pod); peak server connections on the primary, by user:');
    for (const [label, { load, peaks }] of [['pooled', pooled], ['direct', direct]] as const) {
      const users = Object.entries(peaks).sort().map(([user, peak]) => `${user} ${peak}`).join(', ');
      const errors = Object.entries(load.errors).map(([message, times]) => `${times}x "${message}"`).join('; ');
      console.log(`  ${label}: ${load.failed} of ${load.sessions} failed${errors ? ` (${errors})` : ''} | peak ${users}`);
    }

    runOk('pgbench', ['--initialize', '--scale=10', '--quiet', '--host=127.0.0.1', `--port=${primary}`, '--username=airflow', 'airflow'],
      { PGPASSWORD: 'bench-app' });
    const paths: [string, number][] = [['direct', primary], ['pooled', pooler.port], ['pooled, listener without TLS', plain.port]];
    console.log(`pgbench (TPC-B-like), 10 clients, ${SECONDS} s per run, ${ROUNDS} rounds, each in order then reversed (tps):`);
    for (const [label, extra] of [['persistent connections', []], ['a new connection per transaction (-C)', ['--connect']]] as const) {
      const tps = new Map(paths.map(([path]) => [path, [] as number[]]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const [path, port] of [...paths, ...[...paths].reverse()]) tps.get(path)!.push(pgbench(port, [...extra]));
      }
      const directMean = mean(tps.get('direct')!);
      console.log(`  ${label}:`);
      for (const [path, values] of tps) {
        console.log(`    ${path}: ${values.map((value) => value.toFixed(0)).join(', ')}${path === 'direct' ? '' : ` | /direct ${(mean(values) / directMean).toFixed(2)}`}`);
      }
    }
  } finally {
    for (const pooler of poolers) pooler.kill();
    for (const instance of instances) instance.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
