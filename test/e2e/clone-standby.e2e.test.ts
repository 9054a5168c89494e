import { readdirSync, rmSync } from 'fs';
import { basename, join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { BackupRepository, CloneMethod, PostgresStatefulCluster, PostgresStatefulClusterProps, SourceCluster } from '../../lib';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { archiveEverything, LocalBackupTopology } from './support/backup-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveOnLoopback } from './support/loopback-hosts';
import { Login, psql, requirePostgres, resolveHostsWith, runOk, scratchDir, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

/**
 * Clones and standby clusters in the plain mode, on the worker's daemon set (Debian 12's
 * PostgreSQL 15 and pgBackRest 2.45 by default): a source cluster `shop-db` with a volume
 * repository on its repository host; a clone from its backup and one from the running cluster
 * (pg_basebackup over verify-full TLS), each under its own name with its own superuser and roles;
 * a standby cluster following it from the repository and by streaming, its replica cascading,
 * promoted by removing its `standby` prop, with every row the source acknowledged.
 */
const SOURCE = 'shop-db';
const SECRETS: SecretStore = {
  'shop-db-superuser': { username: 'dbadmin', password: 'super-secret' },
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
  'clone-superuser': { username: 'cloneadmin', password: 'clone-secret' },
  'clone-app': { username: 'reporting', password: 'reporting-secret' },
  'dr-superuser': { username: 'dradmin', password: 'dr-secret' },
};
const IMAGE = postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image;
/**
 * Local measurements only (not in CI): E2E_CLONE_PGBENCH_SCALE=70 loads about 1 GB with pgbench
 * into the source before its full backup, so the figures are those of a 1 GB database.
 */
const PGBENCH_SCALE = Number(process.env.E2E_CLONE_PGBENCH_SCALE ?? 0);

function synth(name: string, props: Partial<PostgresStatefulClusterProps>): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Cluster', {
    name,
    postgresVersion: DAEMONS.postgresMajor,
    instances: 1,
    // Only the image name (one with pgBackRest, of the same major): the e2e runs the daemon set's binaries.
    image: IMAGE,
    superuserSecret: { secretName: `${name}-superuser` },
    replicationSecret: { secretName: `${name}-replication` },
    tls: { issuer: { name: 'test-ca' } },
    ...props,
  });
  return chart.toJson();
}

describe('clones and a standby cluster of a plain cluster: from its backup, from the running cluster, following it and promoted', () => {
  const sourceObjects = synth(SOURCE, { backup: { repositories: [BackupRepository.volume({ schedule: {} })] } });
  const pods: { kill(): void }[] = [];
  const figures: string[] = [];
  const hosts: string[] = [];
  let scratch: string;
  let ca: TestCa;
  let topology: LocalBackupTopology;
  let source: LocalInstance;
  let sourcePort: number;

  const login = (instance: LocalInstance, user = 'dbadmin', password = 'super-secret'): Login => ({ port: instance.port, user, password, host: instance.socketDir });
  const sourceLogin = () => login(source);
  const count = (l: Login) => psql(l, 'SELECT count(*) FROM orders');
  const sourceCluster = (): SourceCluster => ({
    name: SOURCE,
    repository: { repository: BackupRepository.volume(), tlsSecretName: 'shop-db-tls' },
    streaming: { replicationSecret: { secretName: 'shop-db-replication' }, certificateAuthority: { secretName: 'shop-db-tls' }, port: sourcePort },
  });

  /** The instances of a synthesized clone or standby, their certificate issued, their host names on loopback; source.conf for the source's topology. */
  async function instancesOf(name: string, objects: any[]): Promise<LocalInstance[]> {
    const certificate = findObject(objects, 'Certificate', name).spec;
    SECRETS[certificate.secretName] ??= ca.issue(name, certificate);
    SECRETS[`${name}-replication`] ??= SECRETS['shop-db-replication'];
    const instances = await localCluster(objects, name, scratch, SECRETS, true,
      (instance, file, text) => (file === 'source.conf' ? topology.foreignConf(instance, text) : undefined));
    hosts.push(...instances.map((instance) => instance.host));
    resolveOnLoopback(scratch, hosts);
    pods.push(...instances);
    return instances;
  }

  /** Files of another timeline than the source's first in its repository's archive: the clones and the standby (each on timeline 2) must add none. */
  const foreignArchive = () => readdirSync(join(scratch, 'repo1-shop-db-repo-host-0', 'archive', SOURCE), { recursive: true }).map((file) => basename(String(file)))
    .filter((file) => /^[0-9A-F]{8}/.test(file) && !file.startsWith('00000001'));

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbackrest');
    scratch = scratchDir('cdk8s-postgres-clone-standby-e2e');
    ca = new TestCa(scratch, 'test-ca');
    const certificate = findObject(sourceObjects, 'Certificate', SOURCE).spec;
    SECRETS[certificate.secretName] = ca.issue('source', certificate);
    topology = await LocalBackupTopology.create(scratch, sourceObjects, SOURCE, SECRETS);
    hosts.push(...topology.hosts, 'shop-db-rw');
    resolveOnLoopback(scratch, hosts);
    const repoHost = topology.repoHost();
    pods.push(repoHost);
    await repoHost.start();
    const instances = await topology.instances();
    pods.push(...instances);
    [source] = instances;
    sourcePort = source.port;
    await bootCluster(instances);
    await source.startSidecar('pgbackrest');
    // The first full backup creates the stanza, after which archive_command succeeds.
    topology.job(`${SOURCE}-backup-repo1-full`).runOk();
    if (PGBENCH_SCALE > 0) {
      runOk(`${DAEMONS.postgresBin}/pgbench`, ['--initialize', `--scale=${PGBENCH_SCALE}`, '--quiet', `--host=${source.socketDir}`, `--port=${source.port}`,
        '--username=dbadmin', 'postgres'], { PGPASSWORD: 'super-secret' });
      await archiveEverything(sourceLogin());
      const backupStarted = Date.now();
      const backup = await topology.job(`${SOURCE}-backup-repo1-full`, 'full-backup-2').runInBackground();
      expect(backup.status).toBe(0);
      figures.push(`source database ${psql(sourceLogin(), 'SELECT pg_size_pretty(pg_database_size(current_database()))')}, `
        + `its full backup ${((Date.now() - backupStarted) / 1000).toFixed(1)} s`);
    }
    psql(sourceLogin(), 'CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL)');
    psql(sourceLogin(), "INSERT INTO orders (item) SELECT 'before the clones ' || g FROM generate_series(1, 1000) g");
    await archiveEverything(sourceLogin());
  }, 180_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    resolveHostsWith(undefined);
    console.log(`clone-standby-e2e (PostgreSQL ${DAEMONS.postgresMajor}, pgBackRest ${DAEMONS.versions.pgbackrest}): ${figures.join('; ')}`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('a clone from the backup, under its own name: every archived row, its own superuser and role, a new timeline, nothing written to the source\'s repository', async () => {
    const objects = synth('shop-clone', {
      superuserSecret: { secretName: 'clone-superuser' },
      roles: [{ credentials: { secretName: 'clone-app' } }],
      clone: { source: sourceCluster(), method: CloneMethod.FROM_BACKUP },
    });
    const [clone] = await instancesOf('shop-clone', objects);
    const started = Date.now();
    const log = clone.bootstrap();
    await clone.start();
    figures.push(`clone from the backup: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(log).toMatch(/restoring repository 1 of stanza shop-db/);
    const admin = login(clone, 'cloneadmin', 'clone-secret');
    expect(count(admin)).toBe('1000');
    expect(psql({ port: clone.port, user: 'reporting', password: 'reporting-secret' }, 'SELECT current_user')).toBe('reporting');
    expect(psql(admin, 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
    psql(admin, "INSERT INTO orders (item) VALUES ('written by the clone')");
    psql(admin, 'SELECT pg_switch_wal()');
    expect(count(admin)).toBe('1001');
    // Restarted, the clone keeps its data and provisions with its own superuser's password.
    clone.stop();
    expect(clone.bootstrap()).toMatch(/data directory holds a cluster/);
    await clone.start();
    expect(count(admin)).toBe('1001');
    expect(foreignArchive()).toEqual([]);
  }, 120_000);

  test('a clone of the running cluster (pg_basebackup over verify-full TLS as the source\'s replication role): every committed row, a new timeline', async () => {
    psql(sourceLogin(), "INSERT INTO orders (item) VALUES ('committed, not archived')");
    const objects = synth('shop-copy', {
      superuserSecret: { secretName: 'clone-superuser' },
      clone: { source: sourceCluster(), method: CloneMethod.FROM_RUNNING_CLUSTER },
    });
    const [copy] = await instancesOf('shop-copy', objects);
    const started = Date.now();
    const log = copy.bootstrap();
    await copy.start();
    figures.push(`clone of the running cluster: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(log).toMatch(/copying the running source at shop-db-rw:/);
    const admin = login(copy, 'cloneadmin', 'clone-secret');
    expect(count(admin)).toBe('1001');
    expect(psql(admin, "SELECT count(*) FROM orders WHERE item = 'committed, not archived'")).toBe('1');
    expect(psql(admin, 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
  }, 120_000);

  test('a standby cluster follows from the repository and by streaming, its replica cascades; removing standby promotes it with every acknowledged row', async () => {
    const standbyProps: Partial<PostgresStatefulClusterProps> = {
      instances: 2, superuserSecret: { secretName: 'dr-superuser' }, replicationSecret: { secretName: 'shop-db-replication' },
    };
    const objects = synth('shop-dr', { ...standbyProps, standby: { source: sourceCluster() } });
    const [leader, replica] = await instancesOf('shop-dr', objects);
    const started = Date.now();
    expect(leader.bootstrap()).toMatch(/restoring the latest backup of stanza shop-db[\s\S]*following the source as a standby cluster/);
    await leader.start();
    replica.bootstrap();
    await replica.start();
    // While a standby, the catalog is the source's: its superuser logs in.
    const leaderLogin = login(leader);
    await waitFor('the standby leader to replay every row', () => count(leaderLogin) === count(sourceLogin()), 60_000);
    figures.push(`standby from the repository: every row in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await waitFor('the standby leader to stream from the source', () => psql(leaderLogin, 'SELECT coalesce(max(status), \'\') FROM pg_stat_wal_receiver') === 'streaming', 60_000);
    expect(psql(leaderLogin, 'SELECT pg_is_in_recovery()')).toBe('t');
    await waitFor('the replica to stream from the standby leader',
      () => psql(leaderLogin, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'shop_dr_replica_0' AND state = 'streaming'") === '1', 60_000);
    expect(psql(sourceLogin(), "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'shop_dr_standby'")).toBe('1');

    // Writes on the source, acknowledged, reach the standby leader and its replica.
    for (let batch = 0; batch < 10; batch++) psql(sourceLogin(), `INSERT INTO orders (item) SELECT 'while followed ${batch}-' || g FROM generate_series(1, 100) g`);
    // The promotion steps: writes stop on the source, its last segment is switched out, the standby
    // leader replays it and its replica replays as far as the leader.
    const acknowledged = count(sourceLogin());
    psql(sourceLogin(), 'SELECT pg_switch_wal()');
    const lastLsn = psql(sourceLogin(), 'SELECT pg_current_wal_lsn()');
    await waitFor('the standby leader to replay the source\'s last LSN', () => psql(leaderLogin, `SELECT pg_last_wal_replay_lsn() >= '${lastLsn}'`) === 't', 60_000);
    const leaderLsn = psql(leaderLogin, 'SELECT pg_last_wal_replay_lsn()');
    await waitFor('the replica to replay as far as the standby leader', () => psql(login(replica), `SELECT pg_last_wal_replay_lsn() >= '${leaderLsn}'`) === 't', 60_000);
    expect(count(login(replica))).toBe(acknowledged);

    // Promotion: the standby prop removed, the pods restart with the new objects.
    const promoted = synth('shop-dr', standbyProps);
    replica.stop();
    leader.stop();
    const [newLeader, newReplica] = await instancesOf('shop-dr', promoted);
    const promoting = Date.now();
    expect(newLeader.bootstrap()).toMatch(/no longer a standby: promoting[\s\S]*roles and databases provisioned/);
    await newLeader.start();
    figures.push(`promotion: writable in ${((Date.now() - promoting) / 1000).toFixed(1)} s`);
    const admin = login(newLeader, 'dradmin', 'dr-secret');
    expect(psql(admin, 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(count(admin)).toBe(acknowledged);
    expect(psql(admin, 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
    psql(admin, "INSERT INTO orders (item) VALUES ('after the promotion')");
    newReplica.bootstrap();
    await newReplica.start();
    const written = psql(admin, 'SELECT pg_current_wal_lsn()');
    await waitFor('the replica to follow the promoted leader', () => psql(admin,
      `SELECT count(*) FROM pg_stat_replication WHERE application_name = 'shop_dr_replica_0' AND replay_lsn >= '${written}'`) === '1', 60_000);
    expect(count(login(newReplica, 'dradmin', 'dr-secret'))).toBe(String(Number(acknowledged) + 1));
    // Neither the standby nor its promotion wrote to the source's repository.
    expect(foreignArchive()).toEqual([]);
  }, 180_000);
});
