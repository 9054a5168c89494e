import { ChildProcess } from 'child_process';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'fs';
import { createConnection } from 'net';
import { join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster } from '../../lib';
import { findObject } from '../support/synth';
import { bootCluster, LocalInstance, localCluster, SecretStore } from './support/cluster-harness';
import { DAEMONS, daemonSet } from './support/daemons';
import { resolveEnv } from './support/environment';
import { freePort, giveToDaemonUser, requirePostgres, requireProgram, runIn, runOk, scratchDir, startDaemonIn } from './support/postgres-bin';

const SECRETS: SecretStore = {
  'pg-superuser': { username: 'dbadmin', password: 'superuser-secret' },
  'pg-replication': { username: 'replicator', password: 'replication-secret' },
};
const PGBADGER = '/usr/bin/pgbadger';
/** pgBadger and BusyBox are the host's (Debian 12's), the sidecars' images' stand-ins, whichever daemons run PostgreSQL. */
const HOST = daemonSet('bookworm');
const BUSYBOX = '/usr/bin/busybox';

function synth(): any[] {
  const chart = new Chart(Testing.app(), 'logs', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 1,
    superuserSecret: { secretName: 'pg-superuser' },
    replicationSecret: { secretName: 'pg-replication' },
    // Every statement, so a short pgbench run fills the query sections.
    logAnalysis: { image: 'pgbadger', minDurationStatement: Duration.millis(0), server: { clients: [{ namespace: 'dba' }] } },
  });
  return Testing.synth(chart);
}

const containerOf = (objects: any[], name: string) => findObject(objects, 'StatefulSet', 'db-primary').spec.template.spec.containers
  .find((c: any) => c.name === name);

/** The pgbadger container of the instance's pod, run as the pod runs it: its command and environment, paths localized. */
function reportRun(instance: LocalInstance, objects: any[], args: string[]) {
  const container = containerOf(objects, 'pgbadger');
  const localize = (value: string) => instance.localize(value);
  const command = container.command.map(localize);
  return runIn(HOST, command[0], [...command.slice(1), ...args], resolveEnv(container, SECRETS, [], localize));
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
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    requirePostgres();
    requireProgram(PGBADGER, 'pgbadger');
    objects = synth();
    [instance] = await localCluster(objects, 'db', scratchDir('log-analysis'), SECRETS);
    await bootCluster([instance]);
    logDir = join(instance.root, 'data', 'log');
    reportDir = join(instance.root, 'data', 'pgbadger');
  }, 120_000);

  afterAll(() => {
    if (server?.pid !== undefined && server.exitCode === null) runIn(HOST, 'kill', [String(server.pid)]);
    instance?.kill();
  });

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

    // Every statement is logged; the passwords, set by the provisioning on its own temporary server, are not.
    const logs = readdirSync(logDir).map((file) => readFileSync(join(logDir, file), 'utf8')).join('');
    expect(logs).toMatch(/user=dbadmin,db=postgres,app=pgbench/);
    for (const { password } of Object.values(SECRETS)) expect(logs).not.toContain(password);

    const second = reportRun(instance, objects, ['once']);
    expect(second.status).toBe(0);
    expect(readFileSync(join(reportDir, 'LAST_PARSED'), 'utf8')).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
  }, 120_000);

  test('the pgbadger-http container\'s BusyBox httpd serves the report directory and nothing outside it', async () => {
    requireProgram(BUSYBOX, 'busybox');
    const [httpd, ...args] = containerOf(objects, 'pgbadger-http').command.map((arg: string) => instance.localize(arg));
    const port = await freePort();
    // The container's command, with the test's free port: Debian's busybox runs it as an applet.
    const local = args.map((arg: string, index: number) => (args[index - 1] === '-p' ? String(port) : arg));
    server = startDaemonIn(HOST, BUSYBOX, [httpd, ...local], join(instance.root, 'httpd.log'));
    // A raw request line: fetch() would resolve "..", which is what httpd must refuse.
    const get = (path: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      let response = '';
      const socket = createConnection(port, '127.0.0.1', () => socket.end(`GET ${path} HTTP/1.0\r\n\r\n`));
      socket.setEncoding('utf8').on('data', (chunk) => (response += chunk)).on('error', reject)
        .on('end', () => resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0), body: response.split('\r\n\r\n').slice(1).join('\r\n\r\n') }));
    });
    // Until httpd listens: a refused connection rejects.
    let index = { status: 0, body: '' };
    for (let attempt = 0; attempt < 50 && index.status === 0; attempt++) {
      index = await get('/').catch(() => ({ status: 0, body: '' }));
      if (index.status === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(index.status).toBe(200);
    expect(index.body).toMatch(/pgBadger/);
    expect((await get('/LAST_PARSED')).status).toBe(200);
    // PGDATA sits beside the reports on the data volume.
    expect(existsSync(join(instance.root, 'data', 'pgdata', 'PG_VERSION'))).toBe(true);
    for (const path of ['/../pgdata/PG_VERSION', '/%2e%2e/pgdata/PG_VERSION', '/..%2fpgdata/PG_VERSION', '/2026/../../pgdata/PG_VERSION']) {
      const outside = await get(path);
      expect({ path, served: outside.status === 200 || outside.body.trim() === String(DAEMONS.postgresMajor) }).toEqual({ path, served: false });
    }
  }, 60_000);

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
