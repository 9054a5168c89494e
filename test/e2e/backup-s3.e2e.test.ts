import { randomBytes } from 'crypto';
import { readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { BackupOptions, BackupRepository, PostgresStatefulCluster, RestoreOptions, S3UriStyle } from '../../lib';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { archiveEverything, commandSeconds, LocalBackupTopology } from './support/backup-harness';
import { LocalInstance, SecretStore, bootCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveOnLoopback } from './support/loopback-hosts';
import { freePort, psql, requirePostgres, resolveHostsWith, scratchDir } from './support/postgres-bin';
import { LocalS3Server } from './support/s3-server';
import { TestCa } from './support/test-ca';

const NAME = 'shop-db';
const BUCKET = 'shop-backups';
/** The object store's DNS name, mapped to loopback; its certificate is for this name, from a CA of its own. */
const ENDPOINT = 's3.storage.svc';
const SUPERUSER = { username: 'dbadmin', password: 'super-secret' };
// Fresh keys each run: the server accepts only this key id, so a passing run proves the Secret
// reached pgBackRest. s3rver 3.7 does not verify SigV4 signatures, so the secret key goes unchecked.
const KEYS = { 'access-key-id': `E2E${randomBytes(8).toString('hex').toUpperCase()}`, 'secret-access-key': randomBytes(24).toString('base64') };
const SECRETS: SecretStore = {
  'shop-db-superuser': SUPERUSER,
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
  's3-keys': KEYS,
  's3-cipher': { 'cipher-pass': randomBytes(32).toString('base64') },
};

/**
 * The cluster: two instances, TLS from the test CA, one encrypted S3 repository at the local
 * server on `port`, path style unless `uriStyle` says otherwise (then at `/<name>-<style>`).
 */
function synthCluster(port: number, restore?: RestoreOptions, uriStyle = S3UriStyle.PATH): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  const backup: BackupOptions = {
    repositories: [BackupRepository.s3({
      bucket: BUCKET,
      endpoint: ENDPOINT,
      port,
      region: 'us-east-1',
      uriStyle,
      ...(uriStyle === S3UriStyle.PATH ? {} : { path: `/${NAME}-${uriStyle}` }),
      credentials: { secretName: 's3-keys' },
      certificateAuthority: { secretName: 's3-ca', key: 'ca.crt' },
      cipher: { secretName: 's3-cipher' },
    })],
    ...(restore ? { restore } : {}),
  };
  new PostgresStatefulCluster(chart, 'ShopDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    // Only the image name (one with pgBackRest, of the same major): the e2e runs Debian's binaries.
    image: postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image,
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    tls: { issuer: { name: 'test-ca' } },
    backup,
  });
  return chart.toJson();
}

describe('pgBackRest with an S3 repository end to end: the rendered configs against s3rver over HTTPS (path and host style, a private CA, encrypted)', () => {
  const times: { [step: string]: string } = {};
  const pods: { kill(): void }[] = [];
  let scratch: string;
  let port: number;
  let s3: LocalS3Server;
  let topology: LocalBackupTopology;
  let primary: LocalInstance;
  let replica: LocalInstance;
  const superuser = (instance: LocalInstance) => ({
    port: instance.port, user: SUPERUSER.username, password: SUPERUSER.password, host: instance.socketDir,
  });
  /** Every row of the test's tables, as one digest, to compare a restored cluster with the primary. */
  const CONTENT = "SELECT (SELECT string_agg(note, ',' ORDER BY id) FROM marker) || ' ' || (SELECT count(*) || ':' || md5(string_agg(payload, '' ORDER BY id)) FROM bulk)";

  /** A primary created from the bucket by the rendered bootstrap (restore.sh), in `<scratch>/<dir>`, started. */
  async function restore(dir: string, options: RestoreOptions) {
    const instance = await topology.primaryOf(synthCluster(port, options), dir);
    pods.push(instance);
    const started = Date.now();
    const log = instance.bootstrap();
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    await instance.start();
    return { instance, log, seconds };
  }

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbackrest');
    scratch = scratchDir('cdk8s-postgres-backup-s3-e2e');
    port = await freePort();
    const objects = synthCluster(port);
    const certificate = findObject(objects, 'Certificate', NAME).spec;
    SECRETS[certificate.secretName] = new TestCa(scratch, 'test-ca').issue('cluster', certificate);
    // The store's CA is not the cluster's: pgBackRest must verify it with repo1-storage-ca-file.
    const storage = new TestCa(scratch, 'storage-ca').issue('s3', { dnsNames: [ENDPOINT, `${BUCKET}.${ENDPOINT}`] });
    SECRETS['s3-ca'] = { 'ca.crt': storage['ca.crt'] };
    s3 = await LocalS3Server.start({
      dir: join(scratch, 's3'), port, serviceEndpoint: ENDPOINT.replace(/^s3\./, ''), certificate: storage['tls.crt'], key: storage['tls.key'], bucket: BUCKET,
      accessKeyId: KEYS['access-key-id'], secretAccessKey: KEYS['secret-access-key'],
    });
    pods.push(s3);
    topology = await LocalBackupTopology.create(scratch, objects, NAME, SECRETS);
    resolveOnLoopback(scratch, [...topology.hosts, ENDPOINT, `${BUCKET}.${ENDPOINT}`]);
    const instances = await topology.instances();
    pods.push(...instances);
    [primary, replica] = instances;
    await bootCluster(instances);
    for (const instance of instances) await instance.startSidecar('pgbackrest');
  }, 120_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    resolveHostsWith(undefined);
    console.log(`backup-s3-e2e: stanza-create ${times.stanzaCreate} s, full ${times.full} s, incr ${times.incr} s, restore latest ${times.latest} s, restore pitr ${times.pitr} s`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the full CronJob creates the stanza in the bucket and backs up the primary; the primary archives WAL straight to the bucket', () => {
    expect(psql(superuser(replica), 'SELECT pg_is_in_recovery()')).toBe('t');
    psql(superuser(primary), "CREATE TABLE marker (id serial PRIMARY KEY, note text NOT NULL); INSERT INTO marker (note) VALUES ('before-full')");
    const log = topology.job(`${NAME}-backup-repo1-full`).runOk();
    times.stanzaCreate = commandSeconds(log, 'stanza-create');
    times.full = commandSeconds(log, 'backup');
    const label = /new backup label = (\d{8}-\d{6}F)/.exec(log)?.[1];
    expect(label).toBeDefined();
    // In the bucket under the rendered repo1-path (/<cluster name>), as S3 objects.
    expect(s3.hasObject(BUCKET, `${NAME}/backup/${NAME}/backup.info`)).toBe(true);
    expect(s3.hasObject(BUCKET, `${NAME}/backup/${NAME}/${label}/backup.manifest`)).toBe(true);
    // Encrypted with the Secret's passphrase (aes-256-cbc, OpenSSL's salted format), info files included.
    expect(s3.object(BUCKET, `${NAME}/archive/${NAME}/archive.info`).subarray(0, 8).toString()).toBe('Salted__');
    expect(readFileSync(primary.logFile, 'utf8')).toMatch(/pushed WAL file '0000000100000000000000\w\w' to the archive/);
    // Expire runs by the retention; it has nothing to remove with one full backup (and s3rver's
    // delimited listing omits folders that hold only deeper files, so it would find nothing anyway).
    expect(log).toMatch(/expire command begin .*--repo1-retention-full=2/);
  });

  test('after more writes, the incremental CronJob backs up what changed, on top of the full backup', () => {
    psql(superuser(primary), "INSERT INTO marker (note) VALUES ('before-incr'); CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g");
    const log = topology.job(`${NAME}-backup-repo1-incr`).runOk();
    times.incr = commandSeconds(log, 'backup');
    expect(log).toMatch(/new backup label = \d{8}-\d{6}F_\d{8}-\d{6}I/);
  });

  test('a backup job whose Secret holds another access key id is refused by the store', () => {
    const wrongKeys = { ...SECRETS, 's3-keys': { ...KEYS, 'access-key-id': `E2E${randomBytes(8).toString('hex').toUpperCase()}` } };
    const result = topology.job(`${NAME}-backup-repo1-incr`, 'wrong-keys-job', wrongKeys).run();
    expect(result.status).not.toBe(0);
    // A HEAD has no body for InvalidAccessKeyId: pgBackRest shows the status and the path-style request.
    expect(result.output).toMatch(/HTTP request failed with 403 \(Forbidden\)[^]*HEAD \/shop-backups\/shop-db\/archive\/shop-db\/archive\.info/);
  });

  test('the default host-style addressing (<bucket>.<endpoint>) reaches the bucket too: stanza-create and info at another path', () => {
    // Not a backup: the running primary archives to the path-style repository, so one here would wait for WAL in vain.
    const job = topology.job(`${NAME}-backup-repo1-full`, 'host-style-job', SECRETS, synthCluster(port, undefined, S3UriStyle.HOST));
    const config = '--config=/etc/pgbackrest/backup-repo1.conf';
    const log = job.exec('pgbackrest', [config, `--stanza=${NAME}`, 'stanza-create']);
    expect(log).toMatch(/--repo1-s3-uri-style=host/);
    expect(s3.hasObject(BUCKET, `${NAME}-host/archive/${NAME}/archive.info`)).toBe(true);
    expect(job.exec('pgbackrest', [config, `--stanza=${NAME}`, 'info'])).toMatch(/status: error \(no valid backups\)/);
  });

  test('a cluster created from the bucket at the latest point has every row of the primary', async () => {
    psql(superuser(primary), "INSERT INTO marker (note) VALUES ('before-latest'); UPDATE bulk SET payload = md5(payload) WHERE id % 1000 = 0");
    await archiveEverything(superuser(primary));
    const expected = psql(superuser(primary), CONTENT);
    const restored = await restore('restore-latest', {});
    times.latest = restored.seconds;
    expect(restored.log).toMatch(/creating the cluster from a backup[^]*cluster restored and promoted/);
    expect(psql(superuser(restored.instance), CONTENT)).toBe(expected);
    expect(expected).toMatch(/^before-full,before-incr,before-latest 200000:/);
  }, 120_000);

  test('a cluster created from the bucket at a time between two writes (PITR) has the first and not the second', async () => {
    const login = superuser(primary);
    psql(login, "INSERT INTO marker (note) VALUES ('pitr-first')");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const target = psql(login, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    psql(login, "INSERT INTO marker (note) VALUES ('pitr-second')");
    await archiveEverything(superuser(primary));
    const restored = await restore('restore-pitr', { targetTime: target });
    times.pitr = restored.seconds;
    expect(psql(superuser(restored.instance), "SELECT string_agg(note, ',' ORDER BY id) FROM marker"))
      .toBe('before-full,before-incr,before-latest,pitr-first');
  }, 120_000);
});
