// npm run bench: what TLS by default costs, side by side in one run on loopback: the same
// cluster and pooler rendered with the default (a self-signed certificate per pod) and with
// tls.disabled, booted as in test/e2e, then pgbench through the pooler and straight to
// PostgreSQL, alternating TLS and plaintext runs.
import { mkdirSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { PgBouncerPooler, PostgresStatefulCluster, TlsOptions } from '../../lib';
import { LocalInstance, SecretStore, bootCluster, localCluster } from '../e2e/support/cluster-harness';
import { DAEMONS } from '../e2e/support/daemons';
import { LocalPooler } from '../e2e/support/pooler-harness';
import { giveToDaemonUser, requirePostgres, requireProgram, runOk, scratchDir } from '../e2e/support/postgres-bin';

const SECRETS: SecretStore = {
  'bench-db-superuser': { username: 'postgres', password: 'bench-super' },
  'bench-db-replication': { username: 'replicator', password: 'bench-repl' },
  'bench-app': { username: 'app', password: 'bench-app' },
};
const ROUNDS = 3;
const SECONDS = 6;

interface Stack {
  readonly label: string;
  readonly sslmode: string;
  readonly instance: LocalInstance;
  readonly pooler: LocalPooler;
}

function stackObjects(tls: TlsOptions | undefined): any[] {
  const chart = new Chart(Testing.app(), 'bench', { namespace: 'bench' });
  const app = { secretName: 'bench-app' };
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    name: 'bench-db', instances: 1, superuserSecret: { secretName: 'bench-db-superuser' }, replicationSecret: { secretName: 'bench-db-replication' },
    databases: [{ name: 'app', owner: app }], tls,
  });
  new PgBouncerPooler(chart, 'Pooler', { name: 'bench-pgbouncer', backend: cluster, users: [app], defaultPoolSize: 10, tls });
  return chart.toJson();
}

async function startStack(scratch: string, label: string, tls: TlsOptions | undefined, sslmode: string): Promise<Stack> {
  const dir = join(scratch, label);
  mkdirSync(dir);
  giveToDaemonUser(dir);
  const objects = stackObjects(tls);
  const [instance] = await localCluster(objects, 'bench-db', dir, SECRETS);
  await bootCluster([instance]);
  const pooler = await LocalPooler.create(dir, objects, 'bench-pgbouncer', { 'bench-db-rw.bench.svc': instance.port }, SECRETS);
  pooler.writeUserlist();
  await pooler.start();
  return { label, sslmode, instance, pooler };
}

/** pgbench's select-only script for SECONDS; `--connect` opens a new connection per transaction. */
function tps(stack: Stack, port: number, extra: string[]): number {
  const output = runOk('pgbench', ['--client=8', '--jobs=2', `--time=${SECONDS}`, '--no-vacuum', '--select-only', '--host=127.0.0.1', `--port=${port}`,
    '--username=app', ...extra, 'app'], { PGPASSWORD: 'bench-app', PGSSLMODE: stack.sslmode });
  if (!/number of failed transactions: 0 /.test(output)) throw new Error(`pgbench had failures:\n${output}`);
  return Number(/tps = ([0-9.]+)/.exec(output)![1]);
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

async function main(): Promise<void> {
  requirePostgres();
  DAEMONS.require('pgbouncer');
  requireProgram('/usr/bin/openssl', 'openssl');
  const scratch = scratchDir('cdk8s-postgres-tls-bench');
  const stacks: Stack[] = [];
  try {
    stacks.push(await startStack(scratch, 'tls', undefined, 'require'));
    stacks.push(await startStack(scratch, 'plaintext', { disabled: true }, 'disable'));
    for (const stack of stacks) {
      runOk('pgbench', ['--initialize', '--scale=5', '--quiet', '--host=127.0.0.1', `--port=${stack.instance.port}`, '--username=app', 'app'],
        { PGPASSWORD: 'bench-app', PGSSLMODE: stack.sslmode });
    }
    const [tls, plaintext] = stacks;
    console.log(`TLS (default: self-signed, sslmode=require) against tls.disabled: pgbench -S, 8 clients, ${SECONDS} s per run, ${ROUNDS} rounds alternating (tps):`);
    const cases: [string, (stack: Stack) => number, string[]][] = [
      ['through PgBouncer, persistent connections', (stack) => stack.pooler.port, []],
      ['through PgBouncer, a new connection per transaction (-C)', (stack) => stack.pooler.port, ['--connect']],
      ['straight to PostgreSQL, persistent connections', (stack) => stack.instance.port, []],
      ['straight to PostgreSQL, a new connection per transaction (-C)', (stack) => stack.instance.port, ['--connect']],
    ];
    for (const [label, port, extra] of cases) {
      const encrypted: number[] = [];
      const plain: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        encrypted.push(tps(tls, port(tls), extra));
        plain.push(tps(plaintext, port(plaintext), extra));
      }
      const format = (values: number[]) => values.map((value) => value.toFixed(0)).join(', ');
      console.log(`  ${label}: TLS ${format(encrypted)} | plaintext ${format(plain)} | TLS/plaintext ${(mean(encrypted) / mean(plain)).toFixed(2)}`);
    }
  } finally {
    for (const stack of stacks) {
      stack.pooler.kill();
      stack.instance.kill();
    }
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
