import { spawnSync } from 'child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App, Testing } from 'cdk8s';
import { buildExamples } from '../examples/main';
import {
  BackupRepository, ExporterSidecar, MemoryCheck, PgBouncerPooler, PgpoolBalancer, PgpoolConfigMode, PostgresStatefulCluster,
} from '../lib';
import { findObject, synthObjects, testChart } from './support/synth';
import { PASSFILE_SCRIPT } from '../lib/exporter/exporter-kinds';

/**
 * Issue 17: no password reaches a log, an argv or an environment listing. Every container's
 * environment is checked over every example and a chart with the options the examples leave
 * out; the scripts that read passwords run under strace, which lists every program they start
 * with its arguments and environment.
 */

/**
 * Secrets that stay in the environment, as their program reads them from nowhere else.
 * pgBackRest 2.45 has no *_file option for the S3 secret access key or the repository cipher
 * passphrase (https://pgbackrest.org/configuration.html); it reads them from PGBACKREST_* variables.
 */
const ALLOWED = [/^PGBACKREST_REPO\d+_S3_KEY_SECRET$/, /^PGBACKREST_REPO\d+_CIPHER_PASS$/];

function optionsChart(): any[] {
  const chart = testChart('shop');
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    superuserSecret: { secretName: 'db-superuser' }, replicationSecret: { secretName: 'db-replication' },
    memoryCheck: MemoryCheck.OFF, settings: { maxConnections: 1000 },
  });
  const balancer = new PgpoolBalancer(chart, 'Balancer', {
    backend: cluster, users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'srcheck' },
    pcpUser: { secretName: 'pcp' }, exposePcp: true, configMode: PgpoolConfigMode.ENVIRONMENT,
  });
  const pooler = new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: { secretName: 'pooler-auth' } });
  new ExporterSidecar(chart, 'DbMetrics', { target: cluster, credentials: { secretName: 'db-exporter' } });
  new ExporterSidecar(chart, 'BalancerMetrics', { target: balancer, credentials: { secretName: 'balancer-exporter' } });
  new ExporterSidecar(chart, 'PoolerMetrics', { target: pooler, credentials: { secretName: 'pooler-exporter' } });
  return synthObjects(chart);
}

function exampleObjects(): any[] {
  const app: App = Testing.app();
  buildExamples(app);
  return app.charts.flatMap((chart) => chart.toJson());
}

/** Every container (init ones too) of every pod template, with where it is. */
function containers(objects: any[]): { where: string; container: any }[] {
  return objects.flatMap((object) => {
    const spec = object.spec?.template?.spec ?? object.spec?.jobTemplate?.spec?.template?.spec;
    if (!spec) return [];
    return [...spec.initContainers ?? [], ...spec.containers].map((container: any) => ({ where: `${object.kind}/${object.metadata.name}`, container }));
  });
}

describe.each([['the examples', exampleObjects], ['the options the examples leave out', optionsChart]])('%s', (_what, objectsOf) => {
  const objects = objectsOf();

  test('no container takes a password from its environment, beyond the commented allow-list', () => {
    const leaks = containers(objects).flatMap(({ where, container }) => (container.env ?? [])
      .filter((variable: any) => {
        const key = variable.valueFrom?.secretKeyRef?.key ?? '';
        const named = /PASS(WORD)?$|SECRET$/i.test(variable.name);
        return (named || /pass/i.test(key)) && !ALLOWED.some((pattern) => pattern.test(variable.name));
      })
      .map((variable: any) => `${where} ${container.name} ${variable.name}`));
    expect(leaks).toEqual([]);
    expect(containers(objects).length).toBeGreaterThan(0);
  });

  test('no container command or argument names a password variable', () => {
    const argv = containers(objects).flatMap(({ where, container }) => [...container.command ?? [], ...container.args ?? []]
      .filter((arg: string) => /\$\(?\{?(PG)?PASSWORD|DATA_SOURCE_PASS\b/.test(arg)).map((arg: string) => `${where} ${container.name}: ${arg}`));
    expect(argv).toEqual([]);
  });
});

/**
 * Runs `script` with `env` under strace; returns every execve it logged (each program's
 * arguments and environment, at full length) and its status.
 */
function traceExecs(script: string, shell: string, env: { [name: string]: string }, dir: string) {
  const file = join(dir, 'script');
  writeFileSync(file, script, { mode: 0o755 });
  const log = join(dir, 'strace.log');
  const result = spawnSync('strace', ['-f', '-qq', '-v', '-s', '65536', '-e', 'trace=execve', '-o', log, shell, file],
    { env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, ...env }, encoding: 'utf8' });
  if (result.error) throw new Error(`strace is not installed (apt-get install strace): ${result.error.message}`);
  return { execs: readFileSync(log, 'utf8'), status: result.status, stderr: result.stderr };
}

describe('scripts that read passwords start no program with one in its arguments or environment', () => {
  const PASSWORD = 'Sentinel:pass\\word';
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'password-exposure-'));
    mkdirSync(join(dir, 'bin'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** `<dir>/secrets/<role>/{username,password}` for each role. */
  const secrets = (roles: string[]) => {
    for (const role of roles) {
      mkdirSync(join(dir, 'secrets', role), { recursive: true });
      writeFileSync(join(dir, 'secrets', role, 'username'), `user_${role}`);
      writeFileSync(join(dir, 'secrets', role, 'password'), `${PASSWORD}${role}`);
    }
  };

  test('the balancer\'s logins.sh, with a PCP user and an exporter', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', {
      superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, memoryCheck: MemoryCheck.OFF, settings: { maxConnections: 1000 },
    });
    const balancer = new PgpoolBalancer(chart, 'Pgpool', {
      backend: cluster, users: [{ credentials: { secretName: 'app' }, envPrefix: 'APP' }],
      srCheckUser: { secretName: 'srcheck' }, pcpUser: { secretName: 'pcp' },
    });
    new ExporterSidecar(chart, 'Metrics', { target: balancer, credentials: { secretName: 'exporter' } });
    const script = findObject(synthObjects(chart), 'ConfigMap', 'pgpool-config').data['logins.sh'];
    secrets(['srcheck', 'login-app', 'login-exporter', 'pcp']);
    mkdirSync(join(dir, 'etc'));
    const { execs, status, stderr } = traceExecs(script, '/bin/sh', { CREDENTIALS_DIR: join(dir, 'secrets'), ETC_DIR: join(dir, 'etc') }, dir);
    expect({ status, stderr }).toEqual({ status: 0, stderr: expect.not.stringContaining('Sentinel') });
    expect(execs).toMatch(/md5sum/);
    expect(execs).not.toContain('Sentinel');
    expect(readFileSync(join(dir, 'etc', 'pool_passwd'), 'utf8')).toContain('user_login-app:TEXTSentinel\\:pass\\\\wordlogin-app\n');
  });

  test('the exporters\' passfile init step', () => {
    mkdirSync(join(dir, 'secret'));
    writeFileSync(join(dir, 'secret', 'password'), PASSWORD);
    const script = PASSFILE_SCRIPT.replace('/etc/exporter-secret', join(dir, 'secret'));
    const { execs, status } = traceExecs(script, '/bin/sh', { PGPASSFILE: join(dir, 'pgpass') }, dir);
    expect(status).toBe(0);
    expect(execs).not.toContain('Sentinel');
    expect(readFileSync(join(dir, 'pgpass'), 'utf8')).toBe('*:*:*:*:Sentinel\\:pass\\\\word\n');
  });

  test('the pgBackRest server sidecar\'s server.sh', () => {
    const chart = testChart();
    new PostgresStatefulCluster(chart, 'Db', {
      superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, memoryCheck: MemoryCheck.OFF,
      image: 'percona/percona-distribution-postgresql:15.15-1', runAsUser: 26, tls: { secretName: 'db-tls' },
      backup: { repositories: [BackupRepository.volume()] },
    });
    const script = findObject(synthObjects(chart), 'ConfigMap', 'db-pgbackrest').data['server.sh'];
    secrets(['superuser']);
    // pgBackRest itself is not run: a stand-in shows what it would be started with.
    writeFileSync(join(dir, 'bin', 'pgbackrest'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, 'bin', 'pgbackrest'), 0o755);
    const { execs, status, stderr } = traceExecs(script, '/bin/bash', { CREDENTIALS_DIR: join(dir, 'secrets'), PGPASSFILE: join(dir, 'pgpass') }, dir);
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    expect(execs).toMatch(/pgbackrest/);
    expect(execs).not.toContain('Sentinel');
    expect(readFileSync(join(dir, 'pgpass'), 'utf8')).toBe('*:*:*:user_superuser:Sentinel\\:pass\\\\wordsuperuser\n');
  });
});
