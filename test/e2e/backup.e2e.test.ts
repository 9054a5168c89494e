import { readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { BackupOptions, BackupRepository, PostgresStatefulCluster, PostgresStatefulClusterProps, RestoreOptions } from '../../lib';
import { CLUSTER_PATHS } from '../../lib/cluster/cluster-layout';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { archiveEverything, commandSeconds, LocalBackupTopology } from './support/backup-harness';
import { LocalInstance, SecretStore, bootCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveOnLoopback } from './support/loopback-hosts';
import { psql, requirePostgres, resolveHostsWith, runOk, scratchDir } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

const NAME = 'shop-db';
const SUPERUSER = { username: 'dbadmin', password: 'super-secret' };
const SECRETS: SecretStore = {
  'shop-db-superuser': SUPERUSER,
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
};
const BACKUP: BackupOptions = { repositories: [BackupRepository.volume()] };

/** The cluster: two instances, TLS from a cert-manager Issuer (the test CA), one volume repository; `props` on top. */
function synthCluster(backup: BackupOptions, props: Partial<PostgresStatefulClusterProps> = {}): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'ShopDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    // Only the image name (one with pgBackRest, of the same major): the e2e runs Debian's binaries.
    image: postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image,
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    tls: { issuer: { name: 'test-ca' } },
    backup,
    ...props,
  });
  return chart.toJson();
}

describe('pgBackRest end to end from a synthesized PostgresStatefulCluster: instances with their server sidecars, repository host and backup jobs over TLS, restore and PITR through bootstrap.sh', () => {
  const objects = synthCluster(BACKUP);
  const certificate = findObject(objects, 'Certificate', NAME).spec;
  const superuser = (instance: LocalInstance) => ({
    port: instance.port, user: SUPERUSER.username, password: SUPERUSER.password, host: instance.socketDir,
  });
  const times: { [step: string]: string } = {};
  const pods: { kill(): void }[] = [];
  let scratch: string;
  let ca: TestCa;
  let topology: LocalBackupTopology;
  let primary: LocalInstance;
  let replica: LocalInstance;

  /**
   * Synthesizes the cluster again with `backup.restore` (and `props`), runs its primary's
   * bootstrap (restore.sh instead of initdb, then provisioning) in `<scratch>/<dir>`, starts it
   * and returns its markers.
   */
  async function restore(dir: string, options: RestoreOptions, props: Partial<PostgresStatefulClusterProps> = {}) {
    const instance = await topology.primaryOf(synthCluster({ ...BACKUP, restore: options }, props), dir);
    pods.push(instance);
    const started = Date.now();
    const log = instance.bootstrap();
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    await instance.start();
    return {
      instance,
      log,
      seconds,
      markers: psql(superuser(instance), 'SELECT string_agg(note, \',\' ORDER BY id) FROM marker'),
      autoConf: readFileSync(join(instance.pgdata, 'postgresql.auto.conf'), 'utf8'),
    };
  }

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbackrest');
    scratch = scratchDir('cdk8s-postgres-backup-e2e');
    // The cluster's TLS Secret, as the Issuer would make it for the Certificate: CN, names and usages.
    ca = new TestCa(scratch, 'test-ca');
    SECRETS[certificate.secretName] = ca.issue('cluster', certificate);
    topology = await LocalBackupTopology.create(scratch, objects, NAME, SECRETS);
    resolveOnLoopback(scratch, topology.hosts);

    const repoHost = topology.repoHost();
    pods.push(repoHost);
    await repoHost.start();
    const instances = await topology.instances();
    pods.push(...instances);
    [primary, replica] = instances;
    await bootCluster(instances);
    for (const instance of instances) await instance.startSidecar('pgbackrest');
  }, 180_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    resolveHostsWith(undefined);
    console.log(`backup-e2e: stanza-create ${times.stanzaCreate} s, full ${times.full} s, incr ${times.incr} s, restore latest ${times.latest} s, restore pitr ${times.pitr} s`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the first run of the full CronJob on an empty repository creates the stanza and backs up the primary, found among both instances over TLS', () => {
    expect(psql(superuser(replica), 'SELECT pg_is_in_recovery()')).toBe('t');
    psql(superuser(primary), "CREATE TABLE marker (id serial PRIMARY KEY, note text NOT NULL); INSERT INTO marker (note) VALUES ('before-full')");
    const log = topology.job(`${NAME}-backup-repo1-full`).runOk();
    times.stanzaCreate = commandSeconds(log, 'stanza-create');
    times.full = commandSeconds(log, 'backup');
    expect(log).toMatch(/new backup label = \d{8}-\d{6}F/);
    // Both instances' servers answered: pgBackRest chose the primary, not the only one it reached.
    expect(log).not.toMatch(/unable to check pg\d/);
    // The backup ends with expire, by the repository's retention.
    expect(log).toMatch(/expire command begin .*--repo1-retention-full=2/);
    // The rendered archive_command reached the repository host over TLS.
    expect(readFileSync(primary.logFile, 'utf8')).toMatch(/pushed WAL file '0000000100000000000000\w\w' to the archive/);
  });

  test('after more writes, the incremental CronJob backs up what changed', () => {
    psql(superuser(primary), "INSERT INTO marker (note) VALUES ('before-incr'); CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g");
    const log = topology.job(`${NAME}-backup-repo1-incr`).runOk();
    times.incr = commandSeconds(log, 'backup');
    expect(log).toMatch(/new backup label = \d{8}-\d{6}F_\d{8}-\d{6}I/);
    expect(log).toMatch(/stanza-create for stanza 'shop-db' on repo1|already exists and is valid/);
  });

  test('a backup job whose certificate has another CN is refused by the instances\' servers', () => {
    // Signed by the same CA, for the same names and usages: only the CN differs.
    const rogueSecret = ca.issue('rogue', { ...certificate, commonName: 'someone-else' });
    const rogue = topology.job(`${NAME}-backup-repo1-incr`, 'rogue-job', { ...SECRETS, [certificate.secretName]: rogueSecret });
    const result = rogue.run();
    expect(result.status).not.toBe(0);
    expect(result.output).toMatch(/unable to check pg1: \[AccessError\] .* access denied/);
    expect(result.output).toMatch(/unable to check pg2: \[AccessError\] .* access denied/);
    expect(result.output).toMatch(/unable to find primary cluster/);
  });

  test('a cluster created from the backup at the latest point, with a separate WAL volume, has every marker and is promoted', async () => {
    psql(superuser(primary), "INSERT INTO marker (note) VALUES ('before-latest')");
    await archiveEverything(superuser(primary));
    const restored = await restore('restore-latest', {}, { storage: { walSize: '1Gi' } });
    times.latest = restored.seconds;
    expect(restored.log).toMatch(/creating the cluster from a backup[^]*cluster restored and promoted[^]*roles and databases provisioned/);
    expect(restored.markers).toBe('before-full,before-incr,before-latest');
    expect(runOk('readlink', [join(restored.instance.pgdata, 'pg_wal')]).trim()).toBe(restored.instance.localize(CLUSTER_PATHS.walDir));
    // No recovery target is left behind for replicas cloned from it to stop at.
    expect(restored.autoConf).not.toMatch(/recovery_target|restore_command/);
    // A restart of the pod starts it as it is, with backup.restore still set.
    restored.instance.stop();
    expect(restored.instance.bootstrap()).toMatch(/data directory holds a cluster: starting it as it is/);
    await restored.instance.start();
  }, 120_000);

  test('a cluster created from the backup at a time between two marker writes (PITR) has the first marker and not the second', async () => {
    const login = superuser(primary);
    psql(login, "INSERT INTO marker (note) VALUES ('pitr-first')");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const target = psql(login, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    psql(login, "INSERT INTO marker (note) VALUES ('pitr-second')");
    await archiveEverything(superuser(primary));
    const restored = await restore('restore-pitr', { targetTime: target });
    times.pitr = restored.seconds;
    expect(restored.markers).toBe('before-full,before-incr,before-latest,pitr-first');
    expect(restored.log).toMatch(/--target-timeline=current/);
    expect(restored.autoConf).not.toMatch(/recovery_target/);
  }, 120_000);
});
