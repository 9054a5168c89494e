import { readFileSync, rmSync } from 'fs';
import { Chart, Testing } from 'cdk8s';
import { BackupOptions, BackupRepository, MajorUpgrade, PostgresStatefulCluster } from '../../lib';
import { CLUSTER_PATHS } from '../../lib/cluster/cluster-layout';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { archiveEverything, commandSeconds, LocalBackupTopology, LocalPod } from './support/backup-harness';
import { bootCluster, LocalInstance, SecretStore } from './support/cluster-harness';
import { daemonSet, DaemonSet } from './support/daemons';
import { resolveOnLoopback } from './support/loopback-hosts';
import { prepareOldBinaries } from './support/old-binaries';
import { Login, psql, requirePostgres, resolveHostsWith, runIn, scratchDir } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

const NAME = 'upg';
const SECRETS: SecretStore = {
  'upg-superuser': { username: 'postgres', password: 'super-secret' },
  'upg-replication': { username: 'replicator', password: 'repl-secret' },
};
const BACKUP: BackupOptions = { repositories: [BackupRepository.volume()] };

/** One instance of `version` (an image with pgBackRest), TLS from the test CA, one volume repository. */
function synth(version: number, majorUpgrade?: MajorUpgrade, backup: BackupOptions = BACKUP): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Upg', {
    postgresVersion: version,
    ...(majorUpgrade ? { majorUpgrade } : {}),
    instances: 1,
    image: postgresVersion(version).highAvailabilityImage.image,
    superuserSecret: { secretName: 'upg-superuser' },
    replicationSecret: { secretName: 'upg-replication' },
    tls: { issuer: { name: 'test-ca' } },
    backup,
  });
  return chart.toJson();
}

describe('a major upgrade of a cluster with backups: PostgreSQL 15 and pgBackRest 2.45 (Debian 12) to 17 and 2.55.1 (the Debian 13 root)', () => {
  const bookworm = daemonSet('bookworm');
  const pods: { kill(): void }[] = [];
  const times: { [step: string]: string } = {};
  let trixie: DaemonSet;
  let scratch: string;
  let topology: LocalBackupTopology;
  let primary: LocalInstance;
  let rows = 0;
  const superuser = (instance: LocalInstance): Login =>
    ({ port: instance.port, user: 'postgres', password: 'super-secret', database: 'postgres', host: instance.socketDir });
  const write = (instance: LocalInstance, count: number) => {
    psql(superuser(instance), `INSERT INTO acks SELECT g FROM generate_series(${rows + 1}, ${rows + count}) g`);
    rows += count;
  };
  const start = async (pod: LocalPod, set: DaemonSet) => {
    pod.daemons = set;
    pods.push(pod);
    await pod.start();
  };

  beforeAll(async () => {
    requirePostgres();
    bookworm.require('pgbackrest');
    trixie = daemonSet('trixie');
    trixie.require('postgres');
    trixie.require('pgbackrest');
    scratch = scratchDir('cdk8s-postgres-upgrade-backup-e2e');
    const objects = synth(15);
    const certificate = findObject(objects, 'Certificate', NAME).spec;
    SECRETS[certificate.secretName] = new TestCa(scratch, 'test-ca').issue('cluster', certificate);
    topology = await LocalBackupTopology.create(scratch, objects, NAME, SECRETS);
    resolveOnLoopback(scratch, topology.hosts);
    await start(topology.repoHost(), bookworm);
    [primary] = await topology.instances();
    pods.push(primary);
    await bootCluster([primary]);
    await primary.startSidecar('pgbackrest');
    psql(superuser(primary), 'CREATE TABLE acks (id integer PRIMARY KEY)');
    write(primary, 1000);
  }, 300_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    resolveHostsWith(undefined);
    console.log(`major upgrade with backups: ${JSON.stringify(times)}`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('on 15: the full CronJob creates the stanza and backs up; WAL is archived', async () => {
    const log = topology.job(`${NAME}-backup-repo1-full`).runOk();
    expect(log).toMatch(/new backup label = \d{8}-\d{6}F/);
    write(primary, 1000);
    await archiveEverything(superuser(primary));
    expect(psql(superuser(primary), "SELECT current_setting('server_version_num')::int / 10000")).toBe('15');
  }, 120_000);

  test('the upgrade to 17: the stanza-upgrade Job waits for the new major, upgrades the stanza, checks archiving and takes a full backup', async () => {
    const objects17 = synth(17, { fromVersion: 15 });
    // The pods roll: the repository host and the instance come back on the new image (pgBackRest 2.55.1).
    primary.stop();
    for (const pod of pods.splice(0)) pod.kill();
    topology = await LocalBackupTopology.create(scratch, objects17, NAME, SECRETS);
    resolveOnLoopback(scratch, topology.hosts);
    await start(topology.repoHost(), trixie);
    [primary] = await topology.instances();
    primary.daemons = trixie;
    pods.push(primary);
    // Applied with the manifests, the Job starts while the instance is still down.
    const job = topology.job(`${NAME}-upgrade-repo1-17`);
    job.daemons = trixie;
    pods.push(job);
    const jobDone = job.runInBackground();

    const copy = findObject(objects17, 'StatefulSet', `${NAME}-primary`).spec.template.spec.initContainers.find((c: any) => c.name === 'old-binaries');
    prepareOldBinaries(copy, primary.localize(CLUSTER_PATHS.oldBinariesDir), trixie);
    const { command, env } = primary.initContainer('major-upgrade');
    const step = runIn(trixie, command[0], command.slice(1), env);
    expect(step.stderr).toContain('PostgreSQL 17 runs from');
    expect(step.status).toBe(0);
    const upgradedAt = Date.now();
    expect(primary.bootstrap()).toContain('data directory holds a cluster: starting it as it is');
    await primary.start();
    await primary.startSidecar('pgbackrest');
    const swappedAt = Date.now();
    // Writes on 17 while the stanza is being upgraded: archive-push of their WAL waits for it.
    write(primary, 500);

    const { status, output } = await jobDone;
    const jobEndedAt = Date.now();
    if (status !== 0) throw new Error(`the stanza-upgrade Job exited ${status}:\n${output}`);
    // The Job upgrades the stanza only once the primary runs 17: it logs that it waits when its
    // first try finds the instance down or on 15, or its first try blocks until the new major's
    // pgBackRest server answers; either way the upgrade itself comes after the swap.
    const upgradeLine = output.match(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) P00 +INFO: stanza-upgrade for stanza/m);
    expect(upgradeLine).not.toBeNull();
    expect(Date.parse(`${upgradeLine![1].replace(' ', 'T')}Z`)).toBeGreaterThanOrEqual(upgradedAt - 1000);
    expect(output).toMatch(/stanza-upgrade command end: completed successfully/);
    expect(output).toMatch(/check command end: completed successfully/);
    expect(output).toMatch(/new backup label = \d{8}-\d{6}F/);
    times.stanzaUpgrade = commandSeconds(output, 'stanza-upgrade');
    times.check = commandSeconds(output, 'check');
    times.fullBackup17 = commandSeconds(output, 'backup');
    times.instanceReadyToJobEnd = ((jobEndedAt - swappedAt) / 1000).toFixed(1);

    const info = runIn(trixie, 'pgbackrest', [`--config=${job.localize('/etc/pgbackrest/backup-repo1.conf')}`, `--stanza=${NAME}`, '--output=json', 'info']);
    const stanza = JSON.parse(info.stdout)[0];
    // Both systems stay in the stanza: the 15 backup restores with 15's binaries, the new one with 17's.
    expect(stanza.db.map((db: any) => db.version)).toEqual(['15', '17']);
    expect(stanza.backup.map((backup: any) => backup.type)).toEqual(['full', 'full']);
    expect(new Set(stanza.db.map((db: any) => db['system-id'])).size).toBe(2);
  }, 900_000);

  test('archive-push of the new system works: its WAL, including the WAL written before the stanza was upgraded, reaches the repository', async () => {
    write(primary, 500);
    const segment = await archiveEverything(superuser(primary));
    expect(psql(superuser(primary), 'SELECT last_archived_wal FROM pg_stat_archiver')).toBe(segment);
    expect(readFileSync(primary.logFile, 'utf8')).toMatch(/pushed WAL file '\w{24}' to the archive/);
  }, 120_000);

  test('a cluster restored from the 17 backup at the latest point starts on 17 with every acknowledged row', async () => {
    const restored = await topology.primaryOf(synth(17, undefined, { ...BACKUP, restore: {} }), 'restored');
    restored.daemons = trixie;
    pods.push(restored);
    const started = Date.now();
    expect(restored.bootstrap()).toContain('cluster restored and promoted');
    times.restore17 = ((Date.now() - started) / 1000).toFixed(1);
    await restored.start();
    expect(psql(superuser(restored), "SELECT count(*), min(id), max(id), current_setting('server_version_num')::int / 10000 FROM acks"))
      .toBe(`${rows}|1|${rows}|17`);
  }, 300_000);
});
