import { ChildProcess } from 'child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import {
  BackupOptions, BackupRepository, backupCertificateDnsNames, backupParameters, instancePodAdditions, renderRestoreScript,
} from '../../lib/backup';
import { serviceDnsNames } from '../../lib/core/tls';
import { findObject } from '../support/synth';
import {
  BACKUP_FILES, BACKUP_PATHS, INSTANCE_PATHS, LocalBackupPod, TestCa, backupFiles, containerEnv, rewritePgbackrestConf, synthBackup,
} from './support/backup-harness';
import { SecretStore } from './support/cluster-harness';
import {
  freePort, giveToDaemonUser, psql, requirePostgres, requireProgram, resolveHostsWith, run, runOk, scratchDir, startDaemon, waitFor,
} from './support/postgres-bin';

const NAME = 'shop-db';
const SUPERUSER_PASSWORD = 'super-secret';
const SECRETS: SecretStore = { 'shop-db-superuser': { username: 'postgres', password: SUPERUSER_PASSWORD } };
const PRIMARY_HOST = `${NAME}-primary-0.${NAME}-headless`;
const REPO_HOST = `${NAME}-repo-host-0.${NAME}-repo-host`;
/** One volume repository; one instance, whose server the backup job reaches by its pod name. */
const OPTIONS: BackupOptions = { repositories: [BackupRepository.volume()] };

/** pgBackRest's own duration of a command, from its "command end" line, in seconds. */
function commandSeconds(log: string, command: string): string {
  const match = new RegExp(`${command} command end: completed successfully \\((\\d+)ms\\)`).exec(log);
  if (!match) throw new Error(`no successful ${command} in:\n${log}`);
  return (Number(match[1]) / 1000).toFixed(2);
}

describe('pgBackRest end to end: instance with its server sidecar, repository host and backup job over TLS, restore and PITR', () => {
  const { chart, model, objects } = synthBackup(OPTIONS, { instances: 1 }, NAME);
  const files = backupFiles(objects, NAME);
  const additions = instancePodAdditions(model);
  const repoHost = findObject(objects, 'StatefulSet', `${NAME}-repo-host`).spec.template.spec.containers[0];
  const fullJob = findObject(objects, 'CronJob', `${NAME}-backup-repo1-full`).spec.jobTemplate.spec.template.spec.containers[0];
  const incrJob = findObject(objects, 'CronJob', `${NAME}-backup-repo1-incr`).spec.jobTemplate.spec.template.spec.containers[0];
  const daemons: ChildProcess[] = [];
  const postgresDirs: string[] = [];
  let scratch: string;
  let ports: { repoHost: number; sidecar: number; postgres: number };
  let tlsSecret: { [key: string]: string };
  let ca: TestCa;
  let instance: LocalBackupPod;
  let host: LocalBackupPod;
  let job: LocalBackupPod;
  let jobRoots: (root: string) => { [podPath: string]: string };
  const times: { [step: string]: string } = {};

  /** The roots of an instance pod. */
  const instanceRoots = (root: string) => ({
    [BACKUP_PATHS.configDir]: join(root, 'etc-pgbackrest'), [BACKUP_PATHS.lockDir]: join(root, 'lock'),
    [INSTANCE_PATHS.dataVolume]: join(root, 'data'), [INSTANCE_PATHS.walVolume]: join(root, 'wal'),
    [INSTANCE_PATHS.socketDir]: join(root, 'socket'), [INSTANCE_PATHS.configDir]: join(root, 'etc-postgresql'),
    [INSTANCE_PATHS.tlsDir]: join(root, 'tls'),
  });

  /**
   * An instance pod's files: the pgBackRest ConfigMap items the pod mounts, the TLS Secret, and
   * postgresql.conf / pg_hba.conf as the cluster would give them (loopback, its own port and
   * socket, scram-sha-256, and the archive parameters of backupParameters).
   */
  function instancePod(podName: string, postgresPort: number, restoreScript?: string): LocalBackupPod {
    const pod = new LocalBackupPod(scratch, podName, instanceRoots);
    const mounted = additions.volumes.find((v) => v.name === 'pgbackrest-config')!.configMap!.items!.map((item) => item.key);
    const podFiles: { [file: string]: string } = Object.fromEntries(mounted.filter((file) => files[file] !== undefined).map((file) => [file, files[file]]));
    if (restoreScript) podFiles[BACKUP_FILES.restoreScript] = restoreScript;
    pod.writeConfig(podFiles, (file, text) => (file.endsWith('.conf')
      ? rewritePgbackrestConf(text, { [REPO_HOST]: ports.repoHost }, postgresPort, ports.sidecar) : text), { instance: pod, repoHost: host });
    const etc = pod.localize(INSTANCE_PATHS.configDir);
    mkdirSync(etc, { recursive: true });
    const parameters = backupParameters(model).map(({ name, value }) => `${name} = ${typeof value === 'boolean' ? (value ? 'on' : 'off') : `'${pod.localize(String(value))}'`}`);
    writeFileSync(join(etc, 'postgresql.conf'), [
      "listen_addresses = '127.0.0.1'", `port = ${postgresPort}`, `unix_socket_directories = '${pod.localize(INSTANCE_PATHS.socketDir)}'`,
      `hba_file = '${join(etc, 'pg_hba.conf')}'`, "password_encryption = 'scram-sha-256'", 'wal_level = replica', ...parameters, '',
    ].join('\n'));
    writeFileSync(join(etc, 'pg_hba.conf'), 'local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n');
    for (const dir of ['data', 'wal', 'socket', 'tmp']) mkdirSync(join(pod.root, dir), { recursive: true });
    giveToDaemonUser(pod.root);
    // Last: the kubelet's root-owned files, which pgBackRest (like PostgreSQL) accepts at mode 0640.
    pod.writeTls(INSTANCE_PATHS.tlsDir, tlsSecret);
    return pod;
  }

  /** Starts PostgreSQL on a data directory of `pod` and waits until it accepts connections. */
  async function startPostgres(pod: LocalBackupPod, port: number): Promise<void> {
    const pgdata = pod.localize(INSTANCE_PATHS.pgdata);
    postgresDirs.push(pgdata);
    daemons.push(startDaemon('postgres', ['-D', pgdata, '-c', `config_file=${pod.localize(INSTANCE_PATHS.configDir)}/postgresql.conf`], `${pod.root}-postgres.log`));
    await waitFor(`PostgreSQL of ${pod.podName}`, () => run('pg_isready', ['--host=127.0.0.1', `--port=${port}`, '--quiet']).status === 0);
  }

  const superuser = (port: number) => ({ port, user: 'postgres', password: SUPERUSER_PASSWORD });

  /** Switches WAL and waits until the segment is archived, so the repository holds every commit so far. */
  async function archiveEverything(port: number): Promise<void> {
    const segment = psql(superuser(port), 'SELECT pg_walfile_name(pg_switch_wal())');
    await waitFor(`segment ${segment} to be archived`, () => psql(superuser(port), 'SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver') >= segment);
  }

  /** Restores with a rendered restore.sh into a new pod, starts it, and returns its markers. */
  async function restore(podName: string, options: BackupOptions, walVolume: boolean): Promise<{ markers: string; seconds: string; autoConf: string; log: string }> {
    const restoreModel = synthBackup(options, { instances: 1, walVolume }, NAME).model;
    const port = await freePort();
    const pod = instancePod(podName, port, renderRestoreScript(restoreModel));
    const hook = instancePodAdditions(restoreModel).restore!;
    const env = { ...containerEnv({ env: hook.env }, SECRETS, (value) => pod.localize(value)), TMPDIR: join(pod.root, 'tmp') };
    const started = Date.now();
    const log = pod.runOk(hook.command, env);
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    // Running it again is a no-op on the restored directory.
    expect(pod.runOk(hook.command, env)).toMatch(/data directory holds a cluster: nothing to restore/);
    await startPostgres(pod, port);
    return {
      markers: psql(superuser(port), 'SELECT string_agg(note, \',\' ORDER BY id) FROM marker'),
      seconds,
      autoConf: readFileSync(join(pod.localize(INSTANCE_PATHS.pgdata), 'postgresql.auto.conf'), 'utf8'),
      log,
    };
  }

  beforeAll(async () => {
    requirePostgres();
    requireProgram('/usr/bin/pgbackrest', 'pgbackrest');
    scratch = scratchDir('cdk8s-postgres-backup-e2e');
    ports = { repoHost: await freePort(), sidecar: await freePort(), postgres: await freePort() };
    // The cluster's Certificate with backups: its Service and pod names, the repository host's, CN and client auth.
    ca = new TestCa(scratch, 'test-ca');
    tlsSecret = ca.issue('shop-db-tls', `${NAME}-rw`,
      [...serviceDnsNames(chart, [`${NAME}-rw`], [`${NAME}-headless`]), ...backupCertificateDnsNames(chart, model)]);
    const hosts = join(scratch, 'hosts');
    writeFileSync(hosts, `127.0.0.1 localhost\n::1 localhost\n127.0.0.1 ${PRIMARY_HOST}\n127.0.0.1 ${REPO_HOST}\n`, { mode: 0o644 });
    resolveHostsWith(hosts);

    // The repository host: its config, the cluster's TLS Secret, and the volume.
    host = new LocalBackupPod(scratch, `${NAME}-repo-host-0`, (root) => ({
      [BACKUP_PATHS.configDir]: join(root, 'etc-pgbackrest'), [BACKUP_PATHS.lockDir]: join(root, 'lock'),
      [BACKUP_PATHS.repositoryRoot]: join(scratch, 'repo-volume'), [BACKUP_PATHS.tlsDir]: join(root, 'tls'),
    }));
    mkdirSync(join(scratch, 'repo-volume', 'repo1'), { recursive: true });
    host.writeConfig({ [BACKUP_FILES.repoHostConf]: files[BACKUP_FILES.repoHostConf] }, (_file, text) => rewritePgbackrestConf(text, {}, 0, ports.repoHost));
    host.writeTls(BACKUP_PATHS.tlsDir, tlsSecret);
    giveToDaemonUser(join(scratch, 'repo-volume'));
    daemons.push(host.startDaemon('pgbackrest', repoHost.command));
    await host.waitUntil('readiness probe', repoHost.readinessProbe.exec.command);

    // The primary and its server sidecar.
    instance = instancePod(`${NAME}-primary-0`, ports.postgres);
    const pgdata = instance.localize(INSTANCE_PATHS.pgdata);
    writeFileSync(join(instance.root, 'tmp', 'pw'), SUPERUSER_PASSWORD);
    giveToDaemonUser(join(instance.root, 'tmp', 'pw'));
    runOk('initdb', [`--pgdata=${pgdata}`, '--username=postgres', `--pwfile=${join(instance.root, 'tmp', 'pw')}`, '--auth=scram-sha-256', '--encoding=UTF8',
      '--locale=C.UTF-8', '--data-checksums']);
    await startPostgres(instance, ports.postgres);
    const sidecar = additions.sidecars[0];
    daemons.push(instance.startDaemon('pgbackrest', sidecar.command!, containerEnv(sidecar, SECRETS, (value) => instance.localize(value))));
    await instance.waitUntil('sidecar readiness probe', sidecar.readinessProbe!.exec!.command!);

    // The backup job's pod: its config and script, the TLS Secret, and the repository host's volume.
    jobRoots = (root: string) => ({
      [BACKUP_PATHS.configDir]: join(root, 'etc-pgbackrest'), [BACKUP_PATHS.lockDir]: join(root, 'lock'),
      [BACKUP_PATHS.repositoryRoot]: join(scratch, 'repo-volume'), [BACKUP_PATHS.tlsDir]: join(root, 'tls'),
    });
    job = new LocalBackupPod(scratch, `${NAME}-backup-repo1`, jobRoots);
    job.writeConfig({ [BACKUP_FILES.backupConf(1)]: files[BACKUP_FILES.backupConf(1)], [BACKUP_FILES.backupScript]: files[BACKUP_FILES.backupScript] },
      (file, text) => (file.endsWith('.conf') ? rewritePgbackrestConf(text, { [PRIMARY_HOST]: ports.sidecar }, ports.postgres) : text), { instance });
    job.writeTls(BACKUP_PATHS.tlsDir, tlsSecret);
  }, 120_000);

  afterAll(() => {
    for (const pgdata of postgresDirs.reverse()) run('pg_ctl', ['stop', `--pgdata=${pgdata}`, '--mode=immediate', '--wait']);
    for (const daemon of daemons) {
      try {
        if (daemon.pid) process.kill(daemon.pid);
      } catch {
        // already gone
      }
    }
    resolveHostsWith(undefined);
    console.log(`backup-e2e: stanza-create ${times.stanzaCreate} s, full ${times.full} s, incr ${times.incr} s, restore latest ${times.latest} s, restore pitr ${times.pitr} s`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the first run of the full CronJob on an empty repository creates the stanza and backs up, the repository local and the instance remote over TLS', () => {
    psql(superuser(ports.postgres), "CREATE TABLE marker (id serial PRIMARY KEY, note text NOT NULL); INSERT INTO marker (note) VALUES ('before-full')");
    const log = job.runOk(fullJob.command);
    times.stanzaCreate = commandSeconds(log, 'stanza-create');
    times.full = commandSeconds(log, 'backup');
    expect(log).toMatch(/new backup label = \d{8}-\d{6}F/);
    // The backup ends with expire, by the repository's retention.
    expect(log).toMatch(/expire command begin .*--repo1-retention-full=2/);
    // archive-push reached the repository host over TLS: WAL is in its volume.
    expect(readFileSync(join(instance.root + '-postgres.log'), 'utf8')).toMatch(/pushed WAL file '0000000100000000000000\w\w' to the archive/);
  });

  test('after more writes, the incremental CronJob backs up what changed', () => {
    psql(superuser(ports.postgres), "INSERT INTO marker (note) VALUES ('before-incr'); CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g");
    const log = job.runOk(incrJob.command);
    times.incr = commandSeconds(log, 'backup');
    expect(log).toMatch(/new backup label = \d{8}-\d{6}F_\d{8}-\d{6}I/);
    expect(log).toMatch(/stanza-create for stanza 'shop-db' on repo1|already exists and is valid/);
  });

  test('a client without the cluster\'s certificate CN is refused by the instance\'s server', () => {
    // Signed by the same CA, for the same names: only the CN differs.
    const rogue = new LocalBackupPod(scratch, 'rogue-job', (root) => ({ ...jobRoots(root), [BACKUP_PATHS.repositoryRoot]: join(root, 'repo') }));
    rogue.writeConfig({ [BACKUP_FILES.backupConf(1)]: readFileSync(job.localize(`${BACKUP_PATHS.configDir}/${BACKUP_FILES.backupConf(1)}`), 'utf8') }, (_f, text) => text, { instance });
    rogue.writeTls(BACKUP_PATHS.tlsDir, ca.issue('rogue', 'someone-else', [PRIMARY_HOST]));
    const conf = rogue.localize(`${BACKUP_PATHS.configDir}/${BACKUP_FILES.backupConf(1)}`);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^(pg1-host-(?:cert|key)-file=).*\/(tls\.\w+)$/gm,
      (_m, key: string, file: string) => `${key}${rogue.localize(`${BACKUP_PATHS.tlsDir}/${file}`)}`));
    const result = run('pgbackrest', [`--config=${conf}`, `--stanza=${NAME}`, '--repo=1', 'backup', '--type=incr']);
    expect(result.status).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toMatch(/unable to find primary cluster/);
  });

  test('restore to the latest point, into a new data directory with a separate WAL directory, has every marker and is promoted', async () => {
    psql(superuser(ports.postgres), "INSERT INTO marker (note) VALUES ('before-latest')");
    await archiveEverything(ports.postgres);
    const restored = await restore(`${NAME}-restore-latest`, { ...OPTIONS, restore: {} }, true);
    times.latest = restored.seconds;
    expect(restored.markers).toBe('before-full,before-incr,before-latest');
    expect(restored.log).toMatch(/cluster restored and promoted/);
    // No recovery target is left behind for replicas cloned from it to stop at.
    expect(restored.autoConf).not.toMatch(/recovery_target|restore_command/);
  }, 120_000);

  test('restore to a time between two marker writes (PITR) has the first marker and not the second', async () => {
    const login = superuser(ports.postgres);
    psql(login, "INSERT INTO marker (note) VALUES ('pitr-first')");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const target = psql(login, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    psql(login, "INSERT INTO marker (note) VALUES ('pitr-second')");
    await archiveEverything(ports.postgres);
    const restored = await restore(`${NAME}-restore-pitr`, { ...OPTIONS, restore: { targetTime: target } }, false);
    times.pitr = restored.seconds;
    expect(restored.markers).toBe('before-full,before-incr,before-latest,pitr-first');
    expect(restored.log).toMatch(/--target-timeline=current/);
    expect(restored.autoConf).not.toMatch(/recovery_target/);
  }, 120_000);
});
