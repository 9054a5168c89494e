import { ChildProcess } from 'child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { MajorUpgrade, MajorUpgradeTransfer, PgBouncerPooler, PostgresStatefulCluster } from '../../lib';
import { CLUSTER_PATHS } from '../../lib/cluster/cluster-layout';
import { findObject } from '../support/synth';
import { LocalInstance, SecretStore } from './support/cluster-harness';
import { daemonSet, DaemonSet } from './support/daemons';
import { prepareOldBinaries } from './support/old-binaries';
import { PooledWriter } from './support/pooled-writer';
import { LocalPooler } from './support/pooler-harness';
import { freePort, giveToDaemonUser, Login, psql, psqlResult, requirePostgres, scratchDir, startDaemonIn, waitFor } from './support/postgres-bin';

const SECRETS: SecretStore = {
  'upg-superuser': { username: 'postgres', password: 'super-secret' },
  'upg-replication': { username: 'replicator', password: 'repl-secret' },
  'upg-app': { username: 'app', password: 'app"pass:word' },
  'upg-reporter': { username: 'reporter', password: 'rep0rt-secret' },
  'upg-pgbouncer-auth': { username: 'pgbouncer_auth', password: 'auth-secret' },
};
const APP_PASSWORD = SECRETS['upg-app'].password;
/** pgbench's scale for the data set: 1 (about 16 MB) by default, 70 for about 1 GB. */
const SCALE = Number(process.env.E2E_UPGRADE_SCALE ?? '1');
/** How pg_upgrade carries the files: COPY (the default) unless E2E_UPGRADE_TRANSFER says otherwise. */
const TRANSFER = (process.env.E2E_UPGRADE_TRANSFER ?? MajorUpgradeTransfer.COPY) as MajorUpgradeTransfer;

/** The app: a 2-instance cluster of `postgresVersion` with pg_stat_statements preloaded, its roles, a PgBouncer in front. */
function synth(postgresVersion: number, majorUpgrade?: MajorUpgrade, instances = 2): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  const cluster = new PostgresStatefulCluster(chart, 'Upg', {
    postgresVersion,
    ...(majorUpgrade ? { majorUpgrade } : {}),
    instances,
    superuserSecret: { secretName: 'upg-superuser' },
    replicationSecret: { secretName: 'upg-replication' },
    databases: [{ name: 'app', owner: { secretName: 'upg-app' } }],
    roles: [{ credentials: { secretName: 'upg-reporter' } }],
    settings: { sharedPreloadLibraries: ['pg_stat_statements'] },
  });
  new PgBouncerPooler(chart, 'UpgPooler', { backend: cluster, authUser: { secretName: 'upg-pgbouncer-auth' }, defaultPoolSize: 5 });
  return chart.toJson();
}

/** The pods of a synthesized app on the given loopback ports, their containers run by `daemons`. */
function pods(scratch: string, objects: any[], ports: number[], daemons: DaemonSet): LocalInstance[] {
  const configMaps = Object.fromEntries(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data]));
  const make = (statefulSet: string, ordinal: number, port: number) => {
    const instance = new LocalInstance(scratch, `${statefulSet}-${ordinal}`, port, findObject(objects, 'StatefulSet', statefulSet), configMaps, ports[0], SECRETS);
    instance.daemons = daemons;
    return instance;
  };
  const replicas = objects.some((o) => o.kind === 'StatefulSet' && o.metadata.name === 'upg-replica');
  return [make('upg-primary', 0, ports[0]), ...(replicas ? [make('upg-replica', 0, ports[1])] : [])];
}

/** A command started in its own process group; `done` resolves with its exit status and output. */
function startToEnd(set: DaemonSet, command: string[], env: NodeJS.ProcessEnv, logFile: string):
{ child: ChildProcess; done: Promise<{ status: number; log: string }> } {
  const child = startDaemonIn(set, command[0], command.slice(1), logFile, env);
  return { child, done: new Promise((resolve) => child.on('exit', (code) => resolve({ status: code ?? -1, log: readFileSync(logFile, 'utf8') }))) };
}

/** Runs a command to its end without blocking the event loop (the writer keeps writing); its exit status and output. */
function runToEnd(set: DaemonSet, command: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<{ status: number; log: string }> {
  return startToEnd(set, command, env, logFile).done;
}

/** Runs an init container of `pod` to its end, in the pod's daemon set. */
function runInit(pod: LocalInstance, name: string, logFile: string): Promise<{ status: number; log: string }> {
  const { command, env } = pod.initContainer(name);
  return runToEnd(pod.daemons, command, env, logFile);
}

describe('a major upgrade from PostgreSQL 15 (Debian 12) to 17 (the Debian 13 root) in place, behind PgBouncer', () => {
  const bookworm = daemonSet('bookworm');
  let trixie: DaemonSet;
  let scratch: string;
  let ports: number[];
  let old: LocalInstance[];
  let upgraded: LocalInstance[];
  let pooler: LocalPooler;
  let writer: PooledWriter;
  const superuser = (pod: LocalInstance, database = 'app'): Login =>
    ({ port: pod.port, user: 'postgres', password: 'super-secret', database, host: pod.socketDir });
  const throughPooler = (user: string, password: string): Login => ({ port: pooler.port, user, password, database: 'app' });
  const pgdata = (pod: LocalInstance) => pod.pgdata;

  beforeAll(async () => {
    requirePostgres();
    bookworm.require('postgres');
    bookworm.require('pgbouncer');
    trixie = daemonSet('trixie');
    trixie.require('postgres');
    scratch = scratchDir('cdk8s-postgres-upgrade-e2e');
    ports = [await freePort(), await freePort()];
    const objects15 = synth(15);
    old = pods(scratch, objects15, ports, bookworm);
    for (const pod of old) {
      pod.bootstrap();
      await pod.start();
    }
    pooler = await LocalPooler.create(scratch, objects15, 'upg-pooler', { 'upg-rw.shop.svc': ports[0], 'upg-ro.shop.svc': ports[1] }, SECRETS);
    pooler.writeUserlist();
    await pooler.start();
    psql(superuser(old[0]), `CREATE EXTENSION pgcrypto; CREATE EXTENSION pg_stat_statements;
      CREATE TABLE acks (id integer PRIMARY KEY); ALTER TABLE acks OWNER TO app;
      CREATE TABLE hashes (name text PRIMARY KEY, hash text NOT NULL); ALTER TABLE hashes OWNER TO app;
      GRANT SELECT ON acks, hashes TO reporter;
      INSERT INTO hashes VALUES ('app', crypt('app"pass:word', gen_salt('bf', 6)))`);
    const pgbench = await runToEnd(bookworm, ['pgbench', '--initialize', `--scale=${SCALE}`, '--quiet', '--host=127.0.0.1', `--port=${ports[0]}`,
      '--username=app', 'app'], { PGPASSWORD: APP_PASSWORD }, join(scratch, 'pgbench.log'));
    expect(pgbench).toMatchObject({ status: 0 });
  }, 900_000);

  afterAll(async () => {
    await writer?.stop();
    pooler?.kill();
    for (const pod of [...old ?? [], ...upgraded ?? []]) pod.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the init steps refuse data of another major than asked, before touching it', async () => {
    // Another pod's volume holding PostgreSQL 15 data, as far as the checks read it.
    const elsewhere = scratchDir('cdk8s-postgres-upgrade-refusals');
    try {
      const [, withoutProp] = pods(elsewhere, synth(17), ports, trixie);
      const [, wrongFrom] = pods(elsewhere, synth(17, { fromVersion: 16 }), ports, trixie);
      mkdirSync(join(pgdata(withoutProp), 'global'), { recursive: true });
      cpSync(join(pgdata(old[1]), 'PG_VERSION'), join(pgdata(withoutProp), 'PG_VERSION'));
      giveToDaemonUser(elsewhere);

      const plain = await runInit(withoutProp, 'bootstrap', join(elsewhere, 'bootstrap.log'));
      expect(plain.status).not.toBe(0);
      expect(plain.log).toContain('holds PostgreSQL 15 data and this image runs PostgreSQL 17: to upgrade, set majorUpgrade: { fromVersion: 15 } beside postgresVersion 17');
      const wrong = await runInit(wrongFrom, 'major-upgrade', join(elsewhere, 'wrong.log'));
      expect(wrong.status).not.toBe(0);
      expect(wrong.log).toContain('holds PostgreSQL 15 data, but majorUpgrade.fromVersion is 16: set majorUpgrade.fromVersion to 15');
      expect(readFileSync(join(pgdata(wrongFrom), 'PG_VERSION'), 'utf8').trim()).toBe('15');

      // A replica's wait for the primary's new major is bounded; it asks the primary, still on 15, over TLS as the replication role.
      rmSync(pgdata(wrongFrom), { recursive: true });
      const [, waiting] = pods(elsewhere, synth(17, { fromVersion: 15 }), ports, trixie);
      const { command, env } = waiting.initContainer('major-upgrade');
      const gaveUp = await runToEnd(trixie, command, { ...env, PRIMARY_WAIT_SECONDS: '6' }, join(elsewhere, 'wait.log'));
      expect(gaveUp.status).not.toBe(0);
      expect(gaveUp.log).toMatch(/waiting for the primary at 127\.0\.0\.1:\d+ to run PostgreSQL 17 \(server_version_num 15\d{4}\)/);
      expect(gaveUp.log).toMatch(/did not run PostgreSQL 17 within 6s \(server_version_num 15\d{4}\): exiting so that the pod starts over/);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  }, 120_000);

  test('postgresVersion 17 with majorUpgrade upgrades both pods; every acknowledged write survives', async () => {
    writer = new PooledWriter({ port: pooler.port, user: 'app', password: APP_PASSWORD, database: 'app' }, 'acks');
    writer.start();
    await waitFor('writes through the pooler', () => writer.acknowledged.size >= 20, 30_000);

    const objects17 = synth(17, { fromVersion: 15, transfer: TRANSFER });
    // The new pods' volumes are the old ones; their files are written now, as the kubelet would
    // before their init containers run. The old-binaries step runs first too: the libraries this
    // machine adds for Debian 12's binaries in Debian 13 are no part of a pod's downtime (the
    // copy itself, which is, is timed apart).
    upgraded = pods(scratch, objects17, ports, trixie);
    const [primary, replica] = upgraded;
    const copyContainer = findObject(objects17, 'StatefulSet', 'upg-primary').spec.template.spec.initContainers.find((c: any) => c.name === 'old-binaries');
    const { copyMs } = prepareOldBinaries(copyContainer, primary.localize(CLUSTER_PATHS.oldBinariesDir), trixie);

    // The replica StatefulSet rolls at the same time: its pod goes first and waits for the primary.
    const replicaStoppedAt = Date.now();
    old[1].stop();
    const replicaStep = runInit(replica, 'major-upgrade', join(scratch, 'replica-major-upgrade.log'));
    // The primary's preStop hook (rollout order) serves on while it waits for replicas to stream
    // again, which they only do after the upgrade: the writer keeps writing meanwhile.
    const stoppedAt = Date.now();
    const hook = old[0].preStop;
    expect(await runToEnd(old[0].daemons, hook.command, hook.env, join(scratch, 'primary-prestop.log'))).toMatchObject({ status: 0 });
    const stopMs = Date.now() - stoppedAt;
    const upgradeStart = Date.now();
    const step = await runInit(primary, 'major-upgrade', join(scratch, 'primary-major-upgrade.log'));
    const upgradeMs = Date.now() - upgradeStart;
    expect(step).toMatchObject({ status: 0 });
    expect(step.log).toMatch(/pg_upgrade done/);
    expect(step.log).toMatch(/the PostgreSQL 17 cluster is verified/);
    const bootstrapStart = Date.now();
    const bootstrapLog = primary.bootstrap();
    expect(bootstrapLog).toContain('data directory holds a cluster: starting it as it is');
    const bootstrapMs = Date.now() - bootstrapStart;
    await primary.start();
    const readyAt = Date.now();
    const startMs = readyAt - bootstrapStart - bootstrapMs;
    await waitFor('a write through the pooler to the upgraded primary', () => [...writer.acknowledged.values()].some((at) => at > readyAt), 60_000);

    const replicaResult = await replicaStep;
    expect(replicaResult).toMatchObject({ status: 0 });
    expect(replicaResult.log).toContain('moved the PostgreSQL 15 replica data aside');
    expect(replicaResult.log).toMatch(/the primary runs PostgreSQL 17 \(17\d{4}\): bootstrap.sh clones it/);
    expect(replica.bootstrap()).toContain('replica cloned');
    await replica.start();
    const replicaReadyAt = Date.now();

    await new Promise((resolve) => setTimeout(resolve, 2000));
    await writer.stop();
    const ids = new Set(psql(superuser(primary), 'SELECT id FROM acks').split('\n').map(Number));
    const lost = [...writer.acknowledged.keys()].filter((id) => !ids.has(id));
    expect(lost).toEqual([]);
    const figures = {
      scale: SCALE,
      transfer: TRANSFER,
      size: psql(superuser(primary), "SELECT pg_size_pretty(pg_database_size('app'))"),
      acknowledged: writer.acknowledged.size,
      // The longest time without an acknowledged write: the primary's fast shutdown to the first write on 17.
      writeUnavailableMs: writer.figures(stoppedAt, Date.now()).longestGapMs,
      stopMs,
      oldBinariesMs: copyMs,
      upgradeStepMs: upgradeMs,
      upgradeLog: step.log.split('\n').filter((line) => / in \d+ s/.test(line)).map((line) => line.replace(/^.*: /, '')),
      bootstrapMs,
      startMs,
      shutdownToReadyMs: readyAt - (stoppedAt + stopMs),
      replicaShutdownToReadyMs: replicaReadyAt - replicaStoppedAt,
      errors: writer.figures(stoppedAt, Date.now()).errors,
    };
    console.log(`major upgrade 15 -> 17: ${JSON.stringify(figures)}`);
  }, 1_800_000);

  test('roles log in with their old passwords through the pooler, on PostgreSQL 17', () => {
    expect(psql(throughPooler('app', APP_PASSWORD), "SELECT current_user, current_setting('server_version_num')::int / 10000"))
      .toBe('app|17');
    expect(psql(throughPooler('reporter', SECRETS['upg-reporter'].password), 'SELECT current_user, count(*) > 0 FROM acks')).toBe('reporter|t');
    const wrong = psqlResult(throughPooler('reporter', 'guess'), 'SELECT 1');
    expect(wrong.status).not.toBe(0);
    expect(psql(superuser(upgraded[0]), 'SELECT rolname FROM pg_authid WHERE rolpassword LIKE \'SCRAM-SHA-256$%\' ORDER BY 1').split('\n'))
      .toEqual(['app', 'pgbouncer_auth', 'postgres', 'replicator', 'reporter']);
  });

  test('the extensions work: pgcrypto checks the hash made on 15, pg_stat_statements was updated to 17\'s version', () => {
    expect(psql(throughPooler('app', APP_PASSWORD), "SELECT crypt('app\"pass:word', hash) = hash FROM hashes WHERE name = 'app'")).toBe('t');
    const versions = psql(superuser(upgraded[0]), 'SELECT e.extversion = a.default_version FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname ORDER BY e.extname');
    expect(versions.split('\n')).toEqual(['t', 't', 't']);
    expect(Number(psql(superuser(upgraded[0]), 'SELECT count(*) FROM pg_stat_statements'))).toBeGreaterThan(0);
    expect(Number(psql(superuser(upgraded[0]), 'SELECT count(*) FROM pgbench_accounts'))).toBe(SCALE * 100_000);
    // Statistics were gathered before the new cluster was let in.
    expect(psql(superuser(upgraded[0]), "SELECT count(*) > 0 FROM pg_stats WHERE tablename = 'pgbench_accounts'")).toBe('t');
  });

  test('the replica streams from the upgraded primary through its slot', async () => {
    const [primary, replica] = upgraded;
    expect(psql(superuser(primary, 'postgres'), 'SELECT slot_name, active FROM pg_replication_slots')).toBe('upg_replica_0|t');
    expect(psql(superuser(primary, 'postgres'), 'SELECT application_name, state FROM pg_stat_replication')).toBe('upg_replica_0|streaming');
    psql(throughPooler('app', APP_PASSWORD), 'INSERT INTO acks VALUES (-1)');
    await waitFor('the replica to replay the write', () => psql(superuser(replica), 'SELECT count(*) FROM acks WHERE id = -1') === '1', 30_000);
    expect(psql(superuser(replica), "SELECT pg_is_in_recovery(), current_setting('server_version_num')::int / 10000")).toBe('t|17');
  });

  test('the old data directories are kept whole, and nothing of the upgrade is left half done', () => {
    const [primary, replica] = upgraded;
    expect(readFileSync(`${pgdata(primary)}.15/PG_VERSION`, 'utf8').trim()).toBe('15');
    // COPY left the old cluster startable; LINK renamed its pg_control, as it shares files with the new one.
    const link = TRANSFER === MajorUpgradeTransfer.LINK;
    expect(existsSync(`${pgdata(primary)}.15/global/pg_control`)).toBe(!link);
    expect(existsSync(`${pgdata(primary)}.15/global/pg_control.old`)).toBe(link);
    expect(readFileSync(`${pgdata(replica)}.15/PG_VERSION`, 'utf8').trim()).toBe('15');
    for (const leftover of ['.upgrade', '.upgrade-state']) {
      expect(existsSync(`${pgdata(primary)}${leftover}`)).toBe(false);
    }
  });

  test('removing majorUpgrade removes the old data; a PostgreSQL 15 image is then refused on the 17 data', async () => {
    const [primary] = upgraded;
    primary.stop();
    const [finished] = pods(scratch, synth(17), ports, trixie);
    const log = finished.bootstrap();
    expect(log).toContain(`removed ${pgdata(finished)}.15, the PostgreSQL 15 data kept since the major upgrade`);
    expect(existsSync(`${pgdata(finished)}.15`)).toBe(false);
    await finished.start();
    upgraded[0] = finished;
    expect(psql(throughPooler('app', APP_PASSWORD), 'SELECT count(*) > 0 FROM acks')).toBe('t');
    finished.stop();

    const [downgraded] = pods(scratch, synth(15), ports, bookworm);
    const refused = await runInit(downgraded, 'bootstrap', join(scratch, 'downgrade.log'));
    expect(refused.status).not.toBe(0);
    expect(refused.log).toContain('holds PostgreSQL 17 data, newer than this image\'s PostgreSQL 15, and a data directory cannot be downgraded');
    expect(readFileSync(join(pgdata(downgraded), 'PG_VERSION'), 'utf8').trim()).toBe('17');
  }, 120_000);
});

describe('major-upgrade.sh resumes where a killed pod left it', () => {
  let scratch: string;
  let pod: LocalInstance;
  let state: () => string;
  const rows = (login: Login) => psql(login, 'SELECT count(*), max(id) FROM kept');

  beforeAll(async () => {
    requirePostgres();
    const trixie = daemonSet('trixie');
    trixie.require('postgres');
    scratch = scratchDir('cdk8s-postgres-upgrade-resume');
    const port = await freePort();
    const [old] = pods(scratch, synth(15, undefined, 1), [port, port], daemonSet('bookworm'));
    old.bootstrap();
    await old.start();
    psql({ port, user: 'postgres', password: 'super-secret', database: 'app', host: old.socketDir },
      'CREATE TABLE kept AS SELECT id FROM generate_series(1, 100000) AS id');
    old.stop();
    const objects17 = synth(17, { fromVersion: 15 }, 1);
    [pod] = pods(scratch, objects17, [port, port], trixie);
    const copy = findObject(objects17, 'StatefulSet', 'upg-primary').spec.template.spec.initContainers.find((c: any) => c.name === 'old-binaries');
    prepareOldBinaries(copy, pod.localize(CLUSTER_PATHS.oldBinariesDir), trixie);
    state = () => (existsSync(`${pod.pgdata}.upgrade-state`) ? readFileSync(`${pod.pgdata}.upgrade-state`, 'utf8').trim() : '');
  }, 600_000);

  afterAll(() => {
    pod?.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  /**
   * Kills the step as a container's end would, every process of it: its process group, then the
   * servers it started (pg_ctl puts them in a session of their own), found by their data directory.
   */
  async function killStep(step: ReturnType<typeof startToEnd>): Promise<string> {
    process.kill(-step.child.pid!, 'SIGKILL');
    // A server pg_ctl was forking at that moment appears a little later: look a few times.
    for (let round = 0; round < 4; round++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
        try {
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(pod.pgdata)) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
      }
    }
    return (await step.done).log;
  }

  test('killed during pg_upgrade it starts over, killed after it only verifies, and a finished upgrade is left alone', async () => {
    /** Whether `step` is still running: one that ended early fails the test with its log. */
    const running = (step: ReturnType<typeof startToEnd>, run: number) => {
      if (step.child.exitCode === null) return true;
      throw new Error(`major-upgrade.sh ended (${step.child.exitCode}) before it was killed:\n${readFileSync(join(scratch, `major-upgrade-${run}.log`), 'utf8')}`);
    };
    const begin = (run: number) => startToEnd(pod.daemons, pod.initContainer('major-upgrade').command, pod.initContainer('major-upgrade').env,
      join(scratch, `major-upgrade-${run}.log`));

    const first = begin(1);
    // Killed while pg_upgrade has the old server running (it dumps the schemas from it).
    await waitFor('pg_upgrade to run the old server', () => running(first, 1) && readFileSync(join(scratch, 'major-upgrade-1.log'), 'utf8').includes('upgrading with pg_upgrade')
      && existsSync(join(pod.pgdata, 'postmaster.pid')), 120_000);
    expect(await killStep(first)).not.toContain('pg_upgrade done');
    expect(state()).toBe('');
    expect(readFileSync(join(pod.pgdata, 'PG_VERSION'), 'utf8').trim()).toBe('15');

    const second = begin(2);
    await waitFor('pg_upgrade to finish', () => running(second, 2) && state() === 'upgraded copy', 120_000);
    const secondLog = await killStep(second);
    // Killed mid-upgrade, the old cluster was not shut down cleanly: it recovers, then pg_upgrade starts over.
    expect(secondLog).toContain('the PostgreSQL 15 cluster was not shut down cleanly: recovering it first');
    expect(secondLog).toContain('checking the PostgreSQL 15 cluster with pg_upgrade --check');
    expect(state()).toBe('upgraded copy');

    const third = await begin(3).done;
    expect(third.status).toBe(0);
    expect(third.log).not.toContain('pg_upgrade --check');
    expect(third.log).toContain('starting the PostgreSQL 17 cluster privately to verify it');
    expect(third.log).toContain('PostgreSQL 17 runs from');
    expect(state()).toBe('');

    pod.bootstrap();
    await pod.start();
    const superuser = { port: pod.port, user: 'postgres', password: 'super-secret', database: 'app', host: pod.socketDir };
    expect(rows(superuser)).toBe('100000|100000');
    expect(psql(superuser, "SELECT current_setting('server_version_num')::int / 10000")).toBe('17');
    pod.stop();

    const fourth = await begin(4).done;
    expect(fourth.status).toBe(0);
    expect(fourth.log).toContain('already holds PostgreSQL 17; the PostgreSQL 15 cluster is kept in');
  }, 600_000);
});
