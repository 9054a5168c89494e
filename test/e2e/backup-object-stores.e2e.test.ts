import { randomBytes } from 'crypto';
import { existsSync, renameSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { AzureUriStyle, BackupRepository, GcsKeyType, PostgresStatefulCluster, RestoreOptions } from '../../lib';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { LocalAzureServer } from './support/azure-server';
import { archiveEverything, commandSeconds, LocalBackupTopology } from './support/backup-harness';
import { LocalInstance, SecretStore, bootCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { LocalGcsServer } from './support/gcs-server';
import { resolveOnLoopback } from './support/loopback-hosts';
import { freePort, psql, requirePostgres, resolveHostsWith, scratchDir, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

/**
 * On Debian 12's daemons (pgBackRest 2.45, PostgreSQL 15): an Azure repository against Azurite and
 * a GCS one against firebase-tools' Cloud Storage emulator, with backups taken from the replica
 * (backup.fromStandby), the README's in-place restore from Azure (the cluster stopped, the
 * primary's data directory moved aside, restored into its volume, the replica cloned again), and
 * a restore from GCS.
 */
const NAME = 'shop-db';
const ACCOUNT = 'shopbackups';
const CONTAINER = 'shop-db';
/** The stores' DNS names, mapped to loopback; their certificate is for these names, from a CA of its own. */
const ENDPOINT = 'blob.storage.svc';
const GCS_ENDPOINT = 'gcs.storage.svc';
const BUCKET = 'shop-backups';
const SUPERUSER = { username: 'dbadmin', password: 'super-secret' };
// A fresh account key each run: Azurite accepts only requests signed with it.
const ACCOUNT_KEY = randomBytes(32).toString('base64');
const SECRETS: SecretStore = {
  'shop-db-superuser': SUPERUSER,
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
  'azure-key': { 'azure-key': ACCOUNT_KEY },
  'gcs-token': { token: LocalGcsServer.TOKEN },
};
const CONTENT = "SELECT (SELECT string_agg(note, ',' ORDER BY id) FROM marker) || ' ' || (SELECT count(*) || ':' || md5(string_agg(payload, '' ORDER BY id)) FROM bulk)";

const UNITS: { [unit: string]: number } = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** The files and bytes a backup copied from each host, from pgBackRest's detail lines `backup file <host>:<path> (<size>, <pct>)`. */
function copiedBytes(log: string): { [host: string]: { files: string[]; bytes: number } } {
  const copied: { [host: string]: { files: string[]; bytes: number } } = {};
  for (const [, host, path, size, unit] of log.matchAll(/backup file ([^:\s]+):(\S+) \(([\d.]+)(B|KB|MB|GB),/g)) {
    copied[host] ??= { files: [], bytes: 0 };
    copied[host].files.push(path.replace(/^.*\/pgdata\//, ''));
    copied[host].bytes += Number(size) * UNITS[unit];
  }
  return copied;
}

/** Two instances, TLS from the test CA, an Azure repository at Azurite and a GCS one at the emulator, backups from the replica. */
function synthCluster(ports: { azure: number; gcs: number }, restore?: RestoreOptions): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'ShopDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    // Only the image name (one with pgBackRest, of the same major): the e2e runs Debian's binaries.
    image: postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image,
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    tls: { issuer: { name: 'test-ca' } },
    backup: {
      repositories: [BackupRepository.azure({
        account: ACCOUNT, container: CONTAINER, endpoint: ENDPOINT, port: ports.azure, uriStyle: AzureUriStyle.PATH,
        credentials: { secretName: 'azure-key' }, certificateAuthority: { secretName: 'storage-ca', key: 'ca.crt' },
      }), BackupRepository.gcs({
        bucket: BUCKET, endpoint: GCS_ENDPOINT, port: ports.gcs,
        credentials: { secretName: 'gcs-token', keyType: GcsKeyType.TOKEN }, certificateAuthority: { secretName: 'storage-ca', key: 'ca.crt' },
      })],
      fromStandby: true,
      ...(restore ? { restore } : {}),
    },
  });
  return chart.toJson();
}

describe('pgBackRest with Azure and GCS repositories end to end (emulators over HTTPS, a private CA), backups from the replica, restores in place and beside', () => {
  const times: { [step: string]: string } = {};
  const pods: { kill(): void }[] = [];
  let scratch: string;
  let ports: { azure: number; gcs: number };
  let azure: LocalAzureServer;
  let gcs: LocalGcsServer;
  let topology: LocalBackupTopology;
  let primary: LocalInstance;
  let replica: LocalInstance;
  /** The primary restored in place. */
  let inPlace: LocalInstance | undefined;
  const superuser = (instance: LocalInstance) => ({
    port: instance.port, user: SUPERUSER.username, password: SUPERUSER.password, host: instance.socketDir,
  });

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbackrest');
    scratch = scratchDir('cdk8s-postgres-backup-azure-e2e');
    ports = { azure: await freePort(), gcs: await freePort() };
    const objects = synthCluster(ports);
    const certificate = findObject(objects, 'Certificate', NAME).spec;
    SECRETS[certificate.secretName] = new TestCa(scratch, 'test-ca').issue('cluster', certificate);
    const storage = new TestCa(scratch, 'storage-ca').issue('stores', { dnsNames: [ENDPOINT, GCS_ENDPOINT] });
    SECRETS['storage-ca'] = { 'ca.crt': storage['ca.crt'] };
    azure = await LocalAzureServer.start({
      dir: join(scratch, 'azurite'), port: ports.azure, certificate: storage['tls.crt'], key: storage['tls.key'],
      account: ACCOUNT, accountKey: ACCOUNT_KEY, container: CONTAINER,
    });
    pods.push(azure);
    gcs = await LocalGcsServer.start({ dir: join(scratch, 'gcs'), port: ports.gcs, certificate: storage['tls.crt'], key: storage['tls.key'] });
    pods.push(gcs);
    topology = await LocalBackupTopology.create(scratch, objects, NAME, SECRETS);
    resolveOnLoopback(scratch, [...topology.hosts, ENDPOINT, GCS_ENDPOINT]);
    const instances = await topology.instances();
    pods.push(...instances);
    [primary, replica] = instances;
    await bootCluster(instances);
    for (const instance of instances) await instance.startSidecar('pgbackrest');
  }, 120_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    resolveHostsWith(undefined);
    console.log(`backup-object-stores-e2e: Azure: stanza-create ${times.stanzaCreate} s, full from the replica ${times.full} s `
      + `(from the primary: ${times.fromPrimary}), restore in place ${times.inPlace} s; GCS: full ${times.gcsFull} s, restore ${times.gcsRestore} s`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the full CronJob creates the stanza in the container and copies the files from the replica; the primary archives WAL to the container', async () => {
    psql(superuser(primary), "CREATE TABLE marker (id serial PRIMARY KEY, note text NOT NULL); INSERT INTO marker (note) VALUES ('before-full');"
      + 'CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 100000) g');
    // archive-push goes to every repository and fails while one has no stanza: the GCS job's stanza-create first.
    topology.job(`${NAME}-backup-repo2-full`, 'gcs-stanza-create').exec('pgbackrest', ['--config=/etc/pgbackrest/backup-repo2.conf', `--stanza=${NAME}`, 'stanza-create']);
    // The rendered job, with pgBackRest's console at detail (the environment overrides the config file): a line per file copied, naming its host.
    const objects = synthCluster(ports);
    findObject(objects, 'CronJob', `${NAME}-backup-repo1-full`).spec.jobTemplate.spec.template.spec.containers[0].env
      .push({ name: 'PGBACKREST_LOG_LEVEL_CONSOLE', value: 'detail' });
    const log = topology.job(`${NAME}-backup-repo1-full`, `${NAME}-backup-repo1-full`, SECRETS, objects).runOk();
    times.stanzaCreate = commandSeconds(log, 'stanza-create');
    times.full = commandSeconds(log, 'backup');
    expect(log).toMatch(/backup command begin .*--backup-standby/);
    expect(log).toMatch(/wait for replay on the standby to reach/);
    // The primary gave pg_control and its config files only; every relation came from the replica.
    const copied = copiedBytes(log);
    expect(Object.keys(copied)).toEqual(expect.arrayContaining([`${NAME}-primary-0.${NAME}-headless`, `${NAME}-replica-0.${NAME}-headless`]));
    const fromPrimary = copied[`${NAME}-primary-0.${NAME}-headless`];
    expect(fromPrimary.files.filter((file) => /^(base|global)\/\d+/.test(file))).toEqual([]);
    expect(fromPrimary.files).toContain('global/pg_control');
    expect(copied[`${NAME}-replica-0.${NAME}-headless`].bytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(fromPrimary.bytes).toBeLessThan(100 * 1024);
    times.fromPrimary = `${fromPrimary.files.length} files, ${(fromPrimary.bytes / 1024).toFixed(1)} KB`;
    const label = /new backup label = (\d{8}-\d{6}F)/.exec(log)?.[1];
    expect(label).toBeDefined();
    expect(await azure.hasBlob(`${NAME}/backup/${NAME}/${label}/backup.manifest`)).toBe(true);
    expect(await azure.hasBlob(`${NAME}/archive/${NAME}/archive.info`)).toBe(true);
  }, 120_000);

  test('the GCS repository\'s full CronJob creates its stanza in the bucket and backs up from the replica too', async () => {
    const log = topology.job(`${NAME}-backup-repo2-full`).runOk();
    times.gcsFull = commandSeconds(log, 'backup');
    expect(log).toMatch(/backup command begin .*--backup-standby(=y)? .*--repo2-gcs-endpoint=gcs\.storage\.svc:\d+ .*--repo2-gcs-key-type=token/);
    const label = /new backup label = (\d{8}-\d{6}F)/.exec(log)?.[1];
    expect(label).toBeDefined();
    expect(await gcs.hasObject(BUCKET, `${NAME}/backup/${NAME}/${label}/backup.manifest`)).toBe(true);
    expect(await gcs.hasObject(BUCKET, `${NAME}/archive/${NAME}/archive.info`)).toBe(true);
  }, 120_000);

  test('in place: both instances stopped, the primary\'s data directory moved aside on its volume, restored into it, the replica cloned again from it', async () => {
    psql(superuser(primary), "INSERT INTO marker (note) VALUES ('after-full')");
    await archiveEverything(superuser(primary));
    const expected = psql(superuser(primary), CONTENT);
    // Scaled to zero; the primary's claim kept, its data directory moved aside; the replica's claims deleted.
    replica.kill();
    primary.kill();
    const before = `${primary.pgdata}.before-restore`;
    renameSync(primary.pgdata, before);
    replica.wipeVolumes();
    // backup.restore set, synthesized and applied: the same pods, over the same volumes.
    const [restoredPrimary, restoredReplica] = await topology.instancesOf(synthCluster(ports, {}));
    pods.push(restoredPrimary, restoredReplica);
    inPlace = restoredPrimary;
    expect(restoredPrimary.root).toBe(primary.root);
    const started = Date.now();
    expect(restoredPrimary.bootstrap()).toMatch(/restoring repository 1[^]*cluster restored and promoted/);
    times.inPlace = ((Date.now() - started) / 1000).toFixed(2);
    await restoredPrimary.start();
    expect(psql(superuser(restoredPrimary), CONTENT)).toBe(expected);
    expect(existsSync(join(before, 'PG_VERSION'))).toBe(true);
    expect(expected).toMatch(/^before-full,after-full 100000:/);
    // Promoted on a new timeline, which the repository gets too: its history file is archived.
    expect(psql(superuser(restoredPrimary), 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
    restoredReplica.bootstrap();
    await restoredReplica.start();
    psql(superuser(restoredPrimary), "INSERT INTO marker (note) VALUES ('after-in-place')");
    const segment = await archiveEverything(superuser(restoredPrimary));
    expect(segment).toMatch(/^00000002/);
    expect(await azure.hasBlob(`${NAME}/archive/${NAME}/${DAEMONS.postgresMajor}-1/00000002.history`)).toBe(true);
    expect(await gcs.hasObject(BUCKET, `${NAME}/archive/${NAME}/${DAEMONS.postgresMajor}-1/00000002.history`)).toBe(true);
    const notes = "SELECT pg_is_in_recovery()::text || ' ' || (SELECT string_agg(note, ',' ORDER BY id) FROM marker)";
    await waitFor('the replica cloned from the restored primary to replay its last write', () => psql(superuser(restoredReplica), notes).endsWith('after-in-place'));
    expect(psql(superuser(restoredReplica), notes)).toBe('true before-full,after-full,after-in-place');
  }, 180_000);

  test('a cluster created from the GCS repository beside the restored one has its every row, along the new timeline', async () => {
    // The in-place test archived its last write, and nothing was written since (a WAL switch now would be a no-op, never archived).
    const expected = psql(superuser(inPlace!), CONTENT);
    const restored = await topology.primaryOf(synthCluster(ports, { repository: 2 }), 'restore-gcs');
    pods.push(restored);
    const started = Date.now();
    expect(restored.bootstrap()).toMatch(/restoring repository 2[^]*cluster restored and promoted/);
    times.gcsRestore = ((Date.now() - started) / 1000).toFixed(2);
    await restored.start();
    expect(psql(superuser(restored), CONTENT)).toBe(expected);
    expect(expected).toMatch(/^before-full,after-full,after-in-place 100000:/);
  }, 120_000);
});
