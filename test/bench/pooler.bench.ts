// npm run bench: PgBouncerPooler against direct connections, side by side in one run, on
// loopback: the pooled-cluster example's rendered cluster and pooler, booted as in test/e2e.
import { rmSync } from 'fs';
import { Testing } from 'cdk8s';
import { PooledClusterChart } from '../../examples/pooled-cluster';
import { LocalInstance, SecretStore } from '../e2e/support/cluster-harness';
import { concurrentSessions } from '../e2e/support/load';
import { LocalPooler, startPooledCluster } from '../e2e/support/pooler-harness';
import { requirePostgres, requireProgram, runOk, scratchDir } from '../e2e/support/postgres-bin';

const SECRETS: SecretStore = {
  'airflow-db-superuser': { username: 'postgres', password: 'bench-super' },
  'airflow-db-replication': { username: 'replicator', password: 'bench-repl' },
  'airflow-app': { username: 'airflow', password: 'bench-app' },
  'airflow-pgbouncer-auth': { username: 'pgbouncer_auth', password: 'bench-auth' },
};
const ROUNDS = 3;
const SECONDS = 8;

function pgbench(port: number, extra: string[]): number {
  const output = runOk('pgbench', ['--client=10', '--jobs=2', `--time=${SECONDS}`, '--no-vacuum', '--host=127.0.0.1', `--port=${port}`,
    '--username=airflow', ...extra, 'airflow'], { PGPASSWORD: 'bench-app' });
  if (!/number of failed transactions: 0 /.test(output)) throw new Error(`pgbench had failures:\n${output}`);
  return Number(/tps = ([0-9.]+)/.exec(output)![1]);
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

async function main(): Promise<void> {
  requirePostgres();
  requireProgram('/usr/sbin/pgbouncer', 'pgbouncer');
  const objects = new PooledClusterChart(Testing.app(), 'bench').toJson();
  const scratch = scratchDir('cdk8s-postgres-bench');
  let instances: LocalInstance[] = [];
  let pooler: LocalPooler | undefined;
  try {
    ({ instances, pooler } = await startPooledCluster(scratch, objects, objects, 'airflow-pgbouncer', SECRETS));
    const primary = instances[0].port;
    runOk('pgbench', ['--initialize', '--scale=10', '--quiet', '--host=127.0.0.1', `--port=${primary}`, '--username=airflow', 'airflow'],
      { PGPASSWORD: 'bench-app' });

    console.log(`pgbench, 10 clients, ${SECONDS} s per run, ${ROUNDS} rounds alternating direct and pooled (tps):`);
    for (const [label, extra] of [['persistent connections', []], ['a new connection per transaction (-C)', ['--connect']]] as const) {
      const direct: number[] = [];
      const pooled: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        direct.push(pgbench(primary, [...extra]));
        pooled.push(pgbench(pooler.port, [...extra]));
      }
      const format = (values: number[]) => values.map((value) => value.toFixed(0)).join(', ');
      console.log(`  ${label}: direct ${format(direct)} | pooled ${format(pooled)} | pooled/direct ${(mean(pooled) / mean(direct)).toFixed(2)}`);
    }

    const target = (port: number) => ({ port, user: 'airflow', password: 'bench-app', database: 'airflow' });
    const pooledSessions = await concurrentSessions(target(pooler.port), 500);
    const directSessions = await concurrentSessions(target(primary), 500);
    console.log('500 concurrent sessions (3 short transactions each), max_connections 100:');
    console.log(`  pooled: ${pooledSessions.failed} of 500 failed | direct: ${directSessions.failed} of 500 failed`);
  } finally {
    pooler?.kill();
    for (const instance of instances) instance.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
