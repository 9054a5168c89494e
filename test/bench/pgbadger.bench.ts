// npx ts-node test/bench/pgbadger.bench.ts: what a day of logs costs the pgbadger sidecar. A
// cluster with logAnalysis logging every statement is booted as in test/e2e; pgbench runs for
// BENCH_SECONDS (default 60), and its log file is copied into 24 hourly files of one day (the
// rotation's names and timestamps, hour by hour), so the day holds 24 times the run's statements.
// Then the pgbadger container's own script runs once over the day, as the sidecar does after a
// day without a run, and its time, peak memory and the report's size are printed.
import { spawnSync } from 'child_process';
import { readdirSync, rmSync, statSync } from 'fs';
import { join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster } from '../../lib';
import { bootCluster, localCluster, SecretStore } from '../e2e/support/cluster-harness';
import { DAEMONS } from '../e2e/support/daemons';
import { resolveEnv } from '../e2e/support/environment';
import { requirePostgres, requireProgram, runOk, runOkIn, scratchDir } from '../e2e/support/postgres-bin';
import { findObject } from '../support/synth';

const SECRETS: SecretStore = {
  'bench-superuser': { username: 'postgres', password: 'bench-super' },
  'bench-replication': { username: 'replicator', password: 'bench-repl' },
};
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const DAY = '2026-01-15';

function du(path: string): number {
  return readdirSync(path, { recursive: true }).map(String).reduce((sum, entry) => {
    const stat = statSync(join(path, entry));
    return sum + (stat.isFile() ? stat.size : 0);
  }, 0);
}

async function main(): Promise<void> {
  requirePostgres();
  requireProgram('/usr/bin/pgbadger', 'pgbadger');
  const chart = new Chart(Testing.app(), 'bench', { namespace: 'bench' });
  new PostgresStatefulCluster(chart, 'Db', {
    name: 'db', postgresVersion: DAEMONS.postgresMajor, instances: 1,
    superuserSecret: { secretName: 'bench-superuser' }, replicationSecret: { secretName: 'bench-replication' },
    logAnalysis: { image: 'pgbadger', minDurationStatement: Duration.millis(0) },
  });
  const objects = Testing.synth(chart);
  const scratch = scratchDir('pgbadger-bench');
  const [instance] = await localCluster(objects, 'db', scratch, SECRETS);
  try {
    await bootCluster([instance]);
    const pgbench = (args: string[]) => runOk(join(DAEMONS.postgresBin, 'pgbench'),
      [`--host=${instance.socketDir}`, `--port=${instance.port}`, '--username=postgres', ...args, 'postgres'], { PGPASSWORD: 'bench-super' });
    pgbench(['--initialize', '--scale=10', '--quiet']);
    const summary = pgbench(['--client=4', '--jobs=2', `--time=${SECONDS}`, '--no-vacuum']);
    const tps = /tps = ([0-9.]+)/.exec(summary)?.[1];
    instance.stop();

    const logDir = join(instance.root, 'data', 'log');
    const [source] = readdirSync(logDir).map((file) => join(logDir, file)).sort((a, b) => statSync(b).size - statSync(a).size);
    const statements = Number(runOk('grep', ['-c', ' statement: ', source]).trim());
    for (let hour = 0; hour < 24; hour++) {
      const hh = String(hour).padStart(2, '0');
      runOkIn(DAEMONS, 'sh', ['-c', `sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}/${DAY} ${hh}/' "$1" > "$2"`, 'sh', source,
        join(logDir, `postgresql-${DAY}_${hh}0000.log`)]);
    }
    for (const file of readdirSync(logDir).filter((name) => !name.startsWith(`postgresql-${DAY}_`))) rmSync(join(logDir, file));

    const container = findObject(objects, 'StatefulSet', 'db-primary').spec.template.spec.containers.find((c: any) => c.name === 'pgbadger');
    const localize = (value: string) => instance.localize(value);
    // logRetention would delete a day in the past: the bench's day is kept.
    const env = { ...resolveEnv(container, SECRETS, [], localize), LOG_RETENTION_MINUTES: String(10 * 365 * 24 * 60) };
    const command = container.command.map(localize);
    const started = Date.now();
    // No time limit, unlike runIn's: as the daemon user, with the container's environment.
    const result = spawnSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', '--', '/usr/bin/time', '-f', '%U %S %M', command[0],
      ...command.slice(1), 'once'], { env: { PATH: '/usr/bin:/bin', HOME: '/tmp', ...env }, encoding: 'utf8' });
    const seconds = (Date.now() - started) / 1000;
    if (result.status !== 0) throw new Error(`pgbadger-report.sh exited ${result.status}: ${result.stderr}`);
    const [user, system, peakKiB] = result.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    const logBytes = du(logDir);
    const reportBytes = du(join(instance.root, 'data', 'pgbadger'));
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    console.log(`${runOk('/usr/bin/pgbadger', ['--version']).trim()}, PostgreSQL ${DAEMONS.postgresMajor}: pgbench ${SECONDS} s at ${tps} tps `
      + `(${statements} statements) x 24 hours = ${24 * statements} statements, ${mib(logBytes)} of log in 24 files`);
    console.log(`one incremental run over the day: ${seconds.toFixed(1)} s (${(user + system).toFixed(1)} s of CPU), peak RSS ${(peakKiB / 1024).toFixed(0)} MiB; `
      + `report directory ${mib(reportBytes)} (HTML and the incremental binary files)`);
  } finally {
    instance.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
