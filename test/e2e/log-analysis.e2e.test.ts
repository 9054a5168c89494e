import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster } from '../../lib';
import { findObject } from '../support/synth';
import { bootCluster, LocalInstance, localCluster, SecretStore } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveEnv } from './support/environment';
import { giveToDaemonUser, requirePostgres, requireProgram, runIn, runOk, scratchDir } from './support/postgres-bin';

const SECRETS: SecretStore = {
  'pg-superuser': { username: 'dbadmin', password: 'superuser-secret' },
  'pg-replication': { username: 'replicator', password: 'replication-secret' },
};
const PGBADGER = '/usr/bin/pgbadger';

function synth(): any[] {
  const chart = new Chart(Testing.app(), 'logs', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 1,
    superuserSecret: { secretName: 'pg-superuser' },
    replicationSecret: { secretName: 'pg-replication' },
    // Every statement, so a short pgbench run fills the query sections.
    logAnalysis: { image: 'pgbadger', minDurationStatement: Duration.millis(0) },
  });
  return Testing.synth(chart);
}

/** The pgbadger container of the instance's pod, run as the pod runs it: its command and environment, paths localized. */
function reportRun(instance: LocalInstance, objects: any[], args: string[]) {
  const container = findObject(objects, 'StatefulSet', 'db-primary').spec.template.spec.containers.find((c: any) => c.name === 'pgbadger');
  const localize = (value: string) => instance.localize(value);
  const command = container.command.map(localize);
  return runIn(DAEMONS, command[0], [...command.slice(1), ...args], resolveEnv(container, SECRETS, [], localize));
}

/** A figure of the report's overview, such as "Number of queries", as a number. */
function overviewFigure(html: string, label: string): number {
  const match = new RegExp(`<span class="figure">([0-9,.]+)[^<]*</span>\\s*<span class="figure-label">${label}</span>`).exec(html);
  if (!match) throw new Error(`no "${label}" in the report's overview`);
  return Number(match[1].replace(/,/g, ''));
}

describe(`logAnalysis: PostgreSQL ${DAEMONS.postgresMajor} (${DAEMONS.name}'s daemons) under the rendered logging settings, reported by Debian's pgBadger`, () => {
  let instance: LocalInstance;
  let objects: any[];
  let logDir: string;
  let reportDir: string;

  beforeAll(async () => {
    requirePostgres();
    requireProgram(PGBADGER, 'pgbadger');
    objects = synth();
    [instance] = await localCluster(objects, 'db', scratchDir('log-analysis'), SECRETS);
    await bootCluster([instance]);
    logDir = join(instance.root, 'data', 'log');
    reportDir = join(instance.root, 'data', 'pgbadger');
  }, 120_000);

  afterAll(() => instance?.kill());

  test('the server logs to files on the data volume; its stderr, which kubectl logs shows, has only the first lines', () => {
    const files = readdirSync(logDir);
    expect(files).toEqual([expect.stringMatching(/^postgresql-\d{4}-\d{2}-\d{2}_\d{6}\.log$/)]);
    const stderr = readFileSync(instance.logFile, 'utf8');
    expect(stderr).toMatch(/redirecting log output to logging collector process/);
    expect(stderr).not.toMatch(/database system is ready to accept connections/);
    expect(readFileSync(join(logDir, files[0]), 'utf8')).toMatch(/^\S+ \S+ \S+ \[\d+\]: \[\d+-1\] user=,db=,app=,client= LOG: {2}database system is ready to accept connections$/m);
  });

  test('after a pgbench run, the rendered script writes an HTML report with its queries counted; a second run reads only new lines', () => {
    const pgbench = (args: string[]) => runOk(join(DAEMONS.postgresBin, 'pgbench'),
      [`--host=${instance.socketDir}`, `--port=${instance.port}`, '--username=dbadmin', ...args, 'postgres'], { PGPASSWORD: 'superuser-secret' });
    pgbench(['--initialize', '--scale=1', '--quiet']);
    pgbench(['--client=4', '--jobs=2', '--transactions=250', '--no-vacuum']);

    const first = reportRun(instance, objects, ['once']);
    expect({ status: first.status, stderr: first.stderr }).toEqual({ status: 0, stderr: '' });
    expect(existsSync(join(reportDir, 'index.html'))).toBe(true);
    // One report per day (<year>/<month>/<day>/index.html): the run may straddle midnight.
    const days = readdirSync(reportDir, { recursive: true }).map(String).filter((path) => /^\d{4}\/\d{2}\/\d{2}\/index\.html$/.test(path));
    expect(days.length).toBeGreaterThan(0);
    const reports = days.map((path) => readFileSync(join(reportDir, path), 'utf8'));
    const total = (label: string) => reports.reduce((sum, html) => sum + overviewFigure(html, label), 0);
    // 4 clients x 250 transactions of 7 statements (BEGIN, 3 UPDATEs, SELECT, INSERT, END), besides the initialization's.
    expect(total('Number of queries')).toBeGreaterThanOrEqual(4 * 250 * 7);
    expect(total('Number of unique normalized queries')).toBeGreaterThanOrEqual(7);
    expect(total('Total number of sessions')).toBeGreaterThanOrEqual(4);
    const html = reports.join('\n');
    // The statements' tables, in the query sections.
    for (const table of ['pgbench_tellers', 'pgbench_branches', 'pgbench_history']) expect(html).toContain(table);

    const second = reportRun(instance, objects, ['once']);
    expect(second.status).toBe(0);
    expect(readFileSync(join(reportDir, 'LAST_PARSED'), 'utf8')).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
  }, 120_000);

  test('log files past logRetention are deleted, the current one kept', () => {
    const old = join(logDir, 'postgresql-2020-01-01_000000.log');
    writeFileSync(old, '');
    giveToDaemonUser(old);
    const tenDaysAgo = Date.now() / 1000 - 10 * 86400;
    utimesSync(old, tenDaysAgo, tenDaysAgo);
    const result = reportRun(instance, objects, ['once']);
    expect(result.status).toBe(0);
    expect(existsSync(old)).toBe(false);
    expect(readdirSync(logDir)).toHaveLength(1);
  }, 60_000);
});
