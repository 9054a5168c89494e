import { existsSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { BackupRepository, PostgresStatefulCluster } from '../../lib';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { LocalBackupTopology } from './support/backup-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveOnLoopback } from './support/loopback-hosts';
import { giveToDaemonUser, psql, requirePostgres, resolveHostsWith, scratchDir, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

/**
 * A plain-mode replica left behind past max_slot_wal_keep_size catches up from the backup
 * repository (the rendered restore_command) and streams again through the slot its bootstrap
 * makes again, without being cloned. Runs on the worker's daemon set (Debian 12's PostgreSQL 15
 * and pgBackRest 2.45 by default; `E2E_DAEMONS=trixie` for Debian 13's 17 and 2.55.1).
 */
const NAME = 'shop-db';
const SUPERUSER = { username: 'dbadmin', password: 'super-secret' };
const SECRETS: SecretStore = {
  'shop-db-superuser': SUPERUSER,
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
};
/** The slot may hold back two segments; the test writes eight past it. */
const SLOT_LIMIT = '32MB';
const SEGMENTS_WRITTEN = 8;
const SLOT = 'shop_db_replica_0';

function synthCluster(backup = true): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'ShopDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    // Only the image name (one with pgBackRest, of the same major): the e2e runs the daemon set's binaries.
    image: postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image,
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    tls: { issuer: { name: 'test-ca' } },
    settings: { maxSlotWalKeepSize: SLOT_LIMIT },
    ...(backup ? { backup: { repositories: [BackupRepository.volume()] } } : {}),
  });
  return chart.toJson();
}

describe('archive catch-up: a replica whose slot was invalidated fetches the removed WAL from the backup repository and streams again, not cloned', () => {
  const objects = synthCluster();
  const certificate = findObject(objects, 'Certificate', NAME).spec;
  const superuser = (instance: LocalInstance) => ({
    port: instance.port, user: SUPERUSER.username, password: SUPERUSER.password, host: instance.socketDir,
  });
  const pods: { kill(): void }[] = [];
  const figures: string[] = [];
  let scratch: string;
  let topology: LocalBackupTopology;
  let primary: LocalInstance;
  let replica: LocalInstance;

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbackrest');
    scratch = scratchDir('cdk8s-postgres-archive-catch-up-e2e');
    const ca = new TestCa(scratch, 'test-ca');
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
    // The first full backup creates the stanza, after which archive_command succeeds.
    topology.job(`${NAME}-backup-repo1-full`).runOk();
  }, 180_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    resolveHostsWith(undefined);
    console.log(`archive-catch-up-e2e (PostgreSQL ${DAEMONS.postgresMajor}): ${figures.join('; ')}`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  const primaryLogin = () => superuser(primary);
  const rows = (instance: LocalInstance) => psql(superuser(instance), 'SELECT count(*) FROM filler');
  const slotState = () => psql(primaryLogin(), `SELECT coalesce(wal_status, '') || ' ' || active FROM pg_replication_slots WHERE slot_name = '${SLOT}'`);

  test('the rendered restore_command is the replica\'s, and the replica streams through its slot', () => {
    expect(psql(superuser(replica), 'SHOW restore_command')).toMatch(/^pgbackrest --config=\S+\/instance\.conf --stanza=shop-db archive-get %f "%p"$/);
    psql(primaryLogin(), 'CREATE TABLE filler (id bigserial PRIMARY KEY, payload text NOT NULL)');
    return waitFor('the replica to stream through its slot', () => slotState() === 'reserved true');
  });

  test('stopped, left behind until its slot is lost and its WAL gone from the primary (archived), the replica catches up from the archive and streams through a new slot, not cloned', async () => {
    const marker = join(replica.pgdata, 'not-cloned');
    writeFileSync(marker, 'this data directory was never cloned again\n');
    giveToDaemonUser(marker);
    const needed = psql(primaryLogin(), `SELECT pg_walfile_name(restart_lsn) FROM pg_replication_slots WHERE slot_name = '${SLOT}'`);
    replica.stop();

    // Each switch after a write starts a new 16 MB segment: eight of them put the slot far past its limit.
    let switched = '';
    for (let segment = 0; segment < SEGMENTS_WRITTEN; segment++) {
      psql(primaryLogin(), 'INSERT INTO filler (payload) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 2000) g');
      switched = psql(primaryLogin(), 'SELECT pg_walfile_name(pg_switch_wal())');
    }
    await waitFor(`segment ${switched} to be archived`, () => psql(primaryLogin(), 'SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver') >= switched, 60_000);
    psql(primaryLogin(), 'CHECKPOINT');
    expect(slotState()).toBe('lost false');
    expect(existsSync(join(primary.pgdata, 'pg_wal', needed))).toBe(false);
    const expectedRows = rows(primary);

    const log = replica.bootstrap();
    expect(log).toMatch(new RegExp(`slot ${SLOT} on the primary was invalidated past max_slot_wal_keep_size: making it again; `
      + 'this replica fetches the WAL the primary removed from the backup repository \\(restore_command\\)'));
    expect(log).not.toMatch(/cloning from/);
    const started = Date.now();
    await replica.start();
    const ready = Date.now() - started;
    await waitFor('the replica to have every row', () => rows(replica) === expectedRows, 90_000);
    const caughtUp = Date.now() - started;
    await waitFor('the replica to stream through the new slot', () => slotState() === 'reserved true', 60_000);
    const streaming = Date.now() - started;
    expect(existsSync(marker)).toBe(true);

    const replicaLog = readFileSync(replica.logFile, 'utf8');
    const restored = [...replicaLog.matchAll(/restored log file "([0-9A-F]{24})" from archive/g)].map((match) => match[1]);
    expect(restored).toContain(needed);
    expect(psql(primaryLogin(), `SELECT count(*) FROM pg_stat_replication WHERE application_name = '${SLOT}' AND state = 'streaming'`)).toBe('1');
    // A write now reaches the replica by streaming.
    psql(primaryLogin(), "INSERT INTO filler (payload) VALUES ('after')");
    await waitFor('the write after the catch-up to reach the replica', () => rows(replica) === String(Number(expectedRows) + 1));
    const seconds = (ms: number) => (ms / 1000).toFixed(1);
    figures.push(`${restored.length} segments restored from the archive; after the start: ready ${seconds(ready)} s, every row ${seconds(caughtUp)} s,`
      + ` streaming through the new slot ${seconds(streaming)} s`);
  }, 180_000);

  test('a slot dropped while the replica was away (by hand, or the scale-down cleanup) is made again at its start, and it streams', async () => {
    replica.stop();
    psql(primaryLogin(), `SELECT pg_drop_replication_slot('${SLOT}')`);
    psql(primaryLogin(), "INSERT INTO filler (payload) VALUES ('while away')");
    const log = replica.bootstrap();
    expect(log).toMatch(new RegExp(`slot ${SLOT} is missing on the primary: making it again`));
    await replica.start();
    await waitFor('the replica to stream through the new slot', () => slotState() === 'reserved true', 60_000);
    await waitFor('the replica to have every row', () => rows(replica) === rows(primary));
  }, 90_000);
});

describe('archive catch-up without a backup repository: a replica whose slot was invalidated cannot catch up, says what to do and does not start', () => {
  const objects = synthCluster(false);
  const pods: LocalInstance[] = [];
  let scratch: string;

  beforeAll(async () => {
    requirePostgres();
    scratch = scratchDir('cdk8s-postgres-no-archive-e2e');
    const certificate = findObject(objects, 'Certificate', NAME).spec;
    // The replica reaches the primary at 127.0.0.1 here (no pgBackRest host names to resolve).
    SECRETS[certificate.secretName] = new TestCa(scratch, 'test-ca').issue('cluster', { ...certificate, ipAddresses: ['127.0.0.1'] });
    pods.push(...await localCluster(objects, NAME, scratch, SECRETS));
    await bootCluster(pods);
  }, 120_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the bootstrap refuses, naming the volume claims to delete, and leaves the lost slot alone', async () => {
    const [primary, replica] = pods;
    const login = { port: primary.port, user: SUPERUSER.username, password: SUPERUSER.password, host: primary.socketDir };
    const slotState = () => psql(login, `SELECT coalesce(wal_status, '') || ' ' || active FROM pg_replication_slots WHERE slot_name = '${SLOT}'`);
    await waitFor('the replica to stream through its slot', () => slotState() === 'reserved true');
    replica.stop();
    psql(login, 'CREATE TABLE filler (id bigserial PRIMARY KEY, payload text NOT NULL)');
    for (let segment = 0; segment < SEGMENTS_WRITTEN; segment++) {
      psql(login, 'INSERT INTO filler (payload) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 2000) g');
      psql(login, 'SELECT pg_switch_wal()');
    }
    psql(login, 'CHECKPOINT');
    expect(slotState()).toBe('lost false');
    expect(() => replica.bootstrap()).toThrow(new RegExp(`slot ${SLOT} on the primary was invalidated past max_slot_wal_keep_size: .*`
      + 'so it cannot catch up: delete its PersistentVolumeClaims \\(data-shop-db-replica-0, and wal-shop-db-replica-0 with a WAL volume\\) and the pod'));
    expect(slotState()).toBe('lost false');
  }, 90_000);
});
