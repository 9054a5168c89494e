/**
 * Tablespaces and the props' pg_hba rules on the worker's daemons (Debian 12's by default:
 * PostgreSQL 15, pgBackRest 2.45; it passes on Debian 13's PostgreSQL 17.12 and pgBackRest 2.55.1
 * too), from a synthesized plain-mode cluster of two instances. Each pod's
 * tablespace volumes are its own directory, bound over /var/lib/postgresql/tablespaces in its
 * processes' mount namespaces, so primary, replica and a restored cluster each see theirs at the
 * one path PostgreSQL records.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { Client } from 'pg';
import {
  BackupOptions, BackupRepository, Ensure, HbaConnection, HbaMethod, IdentMapping, PostgresStatefulCluster, PostgresStatefulClusterProps,
  PostgresTablespace,
} from '../../lib';
import { CLUSTER_FILES, CLUSTER_PATHS } from '../../lib/cluster/cluster-layout';
import { SETTINGS_AGENT_CONTAINER } from '../../lib/cluster/plain-settings-agent';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { archiveEverything, LocalBackupTopology } from './support/backup-harness';
import { LocalInstance, SecretStore, bootCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveEnv } from './support/environment';
import { resolveOnLoopback } from './support/loopback-hosts';
import { psql, psqlResult, requirePostgres, resolveHostsWith, runIn, scratchDir, startDaemonIn, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

const NAME = 'ts-db';
const SUPERUSER = { username: 'dbadmin', password: 'super-secret' };
const SECRETS: SecretStore = {
  'ts-db-superuser': SUPERUSER,
  'ts-db-replication': { username: 'replicator', password: 'repl-secret' },
  'app': { username: 'app', password: 'app-secret' },
  'blocked': { username: 'blocked', password: 'blocked-secret' },
  'ts-owner': { username: 'archivist', password: 'owner-secret' },
};
const BACKUP: BackupOptions = { repositories: [BackupRepository.volume()] };
const HOT: PostgresTablespace = { name: 'hot', size: '1Gi', owner: { secretName: 'ts-owner' } };
const COLD: PostgresTablespace = { name: 'cold', size: '1Gi' };
const REPORTS: IdentMapping = { mapName: 'clients', systemUsername: 'reports.example.com', databaseUsername: 'app' };

/** The cluster: TLS from the test CA, a volume repository, the tablespaces given, a cert rule mapped through pg_ident and a reject rule. */
function synthCluster(tablespaces: PostgresTablespace[], backup: BackupOptions = BACKUP, identMaps: IdentMapping[] = [REPORTS]): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  const props: PostgresStatefulClusterProps = {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    // Only the image name (one with pgBackRest): the e2e runs Debian's binaries.
    image: postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image,
    superuserSecret: { secretName: 'ts-db-superuser' },
    replicationSecret: { secretName: 'ts-db-replication' },
    roles: [{ credentials: { secretName: 'app' } }, { credentials: { secretName: 'blocked' } }],
    tls: { issuer: { name: 'test-ca' } },
    backup,
    tablespaces,
    hbaRules: [
      { connection: HbaConnection.HOSTSSL, users: ['app'], address: '127.0.0.1/32', method: HbaMethod.CERT, identMap: 'clients' },
      { connection: HbaConnection.HOSTSSL, users: ['blocked'], address: 'all', method: HbaMethod.REJECT },
    ],
    identMaps,
  };
  new PostgresStatefulCluster(chart, 'TsDb', props);
  return chart.toJson();
}

describe(`tablespaces and pg_hba rules on PostgreSQL ${DAEMONS.postgresMajor} (${DAEMONS.name}): replicas and a pgBackRest restore keep the tablespaces, cert logins map through pg_ident`, () => {
  const objects = synthCluster([HOT]);
  const certificate = findObject(objects, 'Certificate', NAME).spec;
  const superuser = (instance: LocalInstance) => ({
    port: instance.port, user: SUPERUSER.username, password: SUPERUSER.password, host: instance.socketDir,
  });
  const pods: { kill(): void }[] = [];
  const times: { [step: string]: string } = {};
  let scratch: string;
  let ca: TestCa;
  let topology: LocalBackupTopology;
  let primary: LocalInstance;
  let replica: LocalInstance;
  let restoredPrimary: LocalInstance;

  /** The files of a tablespace in a pod's own volume directory. */
  const tablespaceFiles = (instance: LocalInstance, name: string) => {
    const dir = join(instance.root, 'tablespaces', name, 'data');
    return existsSync(dir) ? readdirSync(dir) : [];
  };
  /** Whether relation `table`'s file is in the pod's own copy of its tablespace. */
  const relationInOwnVolume = (instance: LocalInstance, tablespace: string, table: string) => {
    const path = psql(superuser(instance), `SELECT pg_relation_filepath('${table}')`);
    // pg_tblspc/<oid>/PG_15_<catalog>/<database>/<relfilenode>: the part after the link is inside the tablespace's LOCATION.
    return existsSync(join(instance.root, 'tablespaces', tablespace, 'data', ...path.split('/').slice(2)));
  };

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbackrest');
    scratch = scratchDir('cdk8s-postgres-tablespaces-e2e');
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
    const started = Date.now();
    await bootCluster(instances);
    times.boot = ((Date.now() - started) / 1000).toFixed(1);
  }, 120_000);

  afterAll(() => {
    for (const pod of pods.reverse()) pod.kill();
    resolveHostsWith(undefined);
    console.log(`tablespaces-e2e (PostgreSQL ${DAEMONS.postgresMajor}): boot of two instances ${times.boot} s, full backup ${times.backup} s, restore ${times.restore} s, `
      + `a new pg_ident line in effect ${times.identReload} s after the file changed`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the primary created the tablespace at its LOCATION, owned by its Secret\'s role; the replica cloned it into its own volume at the same path', async () => {
    const login = superuser(primary);
    expect(psql(login, "SELECT pg_tablespace_location(oid) || ' ' || pg_get_userbyid(spcowner) FROM pg_tablespace WHERE spcname = 'hot'"))
      .toBe('/var/lib/postgresql/tablespaces/hot/data archivist');
    psql(login, "CREATE TABLE orders (id int PRIMARY KEY, note text) TABLESPACE hot; INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 1000) g");
    expect(relationInOwnVolume(primary, 'hot', 'orders')).toBe(true);
    await waitFor('the replica to replay the orders', () => psqlResult(superuser(replica), 'SELECT count(*) FROM orders').stdout.trim() === '1000');
    expect(psql(superuser(replica), "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'hot'")).toBe('/var/lib/postgresql/tablespaces/hot/data');
    expect(relationInOwnVolume(replica, 'hot', 'orders')).toBe(true);
    expect(tablespaceFiles(replica, 'hot')).toEqual(tablespaceFiles(primary, 'hot'));
  }, 60_000);

  test('a tablespace added later: the replica restarted first makes its directory, then the primary\'s CREATE TABLESPACE replays there', async () => {
    const [primaryV2, replicaV2] = await topology.instancesOf(synthCluster([HOT, COLD]));
    pods.push(primaryV2, replicaV2);
    replica.stop();
    expect(replicaV2.bootstrap()).toMatch(/data directory holds a cluster: starting it as it is/);
    expect(tablespaceFiles(replicaV2, 'cold')).toEqual([]);
    await replicaV2.start();
    // Stopped at once: the preStop hook's wait for the replicas is rollout-order.e2e's matter.
    primary.kill();
    primaryV2.bootstrap();
    await primaryV2.start();
    [primary, replica] = [primaryV2, replicaV2];
    for (const instance of [primary, replica]) await instance.startSidecar('pgbackrest');
    psql(superuser(primary), "CREATE TABLE history (id int, note text) TABLESPACE cold; INSERT INTO history SELECT g, 'old ' || g FROM generate_series(1, 500) g");
    await waitFor('the replica to replay the history', () => psqlResult(superuser(replica), 'SELECT count(*) FROM history').stdout.trim() === '500');
    expect(psql(superuser(replica), "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'cold'")).toBe('/var/lib/postgresql/tablespaces/cold/data');
    expect(relationInOwnVolume(replica, 'cold', 'history')).toBe(true);
  }, 90_000);

  test('a replica that lost its data volume but kept its tablespaces\' re-clones: the stale tablespace files are removed first', async () => {
    replica.kill();
    replica.wipeVolumes();
    expect(tablespaceFiles(replica, 'cold')).not.toEqual([]);
    expect(replica.bootstrap()).toMatch(/replica cloned/);
    await replica.start();
    // The pod's sidecar starts with it: pgBackRest retries an instance whose server is down for tens of seconds.
    await replica.startSidecar('pgbackrest');
    expect(psql(superuser(replica), 'SELECT (SELECT count(*) FROM orders) || \' \' || (SELECT count(*) FROM history)')).toBe('1000 500');
    expect(relationInOwnVolume(replica, 'cold', 'history')).toBe(true);
  }, 60_000);

  test('a cert rule logs a client certificate\'s CN in as the role its pg_ident map names, without a password; another CN and a reject rule are refused; '
    + 'a new map line is reloaded by the settings agent', async () => {
    const connect = async (user: string, options: { cert?: { [key: string]: string }; password?: string }) => {
      const client = new Client({
        host: '127.0.0.1', port: primary.port, user, database: 'postgres', connectionTimeoutMillis: 5000,
        ...(options.password ? { password: options.password } : {}),
        ssl: { rejectUnauthorized: false, ...(options.cert ? { cert: options.cert['tls.crt'], key: options.cert['tls.key'] } : {}) },
      });
      try {
        await client.connect();
        return (await client.query('SELECT current_user AS name')).rows[0].name as string;
      } catch (error) {
        return `refused: ${(error as Error).message}`;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    const reports = ca.issue('reports', { dnsNames: ['reports.example.com'], usages: ['client auth'] });
    const other = ca.issue('other', { dnsNames: ['other.example.com'], usages: ['client auth'] });
    expect(await connect('app', { cert: reports })).toBe('app');
    expect(await connect('app', { cert: other })).toBe('refused: certificate authentication failed for user "app"');
    // The cert line comes first for app: a password alone does not do.
    expect(await connect('app', { password: 'app-secret' })).toMatch(/^refused: .*certificate/);
    expect(await connect('blocked', { password: 'blocked-secret' })).toMatch(/^refused: pg_hba.conf rejects connection for host "127.0.0.1", user "blocked"/);
    // Roles no rule names still log in with their password through the allowedCidrs line.
    expect(await connect('archivist', { password: 'owner-secret' })).toBe('archivist');

    // The primary's settings agent as its pod runs it; then pg_ident.conf of a synthesis with one more map line, as the kubelet refreshes it.
    const container = findObject(objects, 'StatefulSet', `${NAME}-primary`).spec.template.spec.containers
      .find((c: any) => c.name === SETTINGS_AGENT_CONTAINER);
    const localize = (value: string) => primary.localize(value);
    const agentLog = `${primary.root}-${SETTINGS_AGENT_CONTAINER}.log`;
    const command = container.command.map(localize);
    const env = { ...resolveEnv(container, SECRETS, [], localize), PGPORT: String(primary.port) };
    const agent = startDaemonIn(DAEMONS, command[0], command.slice(1), agentLog, env);
    pods.push({ kill: () => runIn(DAEMONS, 'kill', ['-KILL', String(agent.pid)]) });
    await waitFor('the settings agent\'s first reload', () => existsSync(agentLog) && readFileSync(agentLog, 'utf8').includes('reloaded at start'));
    const twoMaps = synthCluster([HOT, COLD], BACKUP, [REPORTS, { ...REPORTS, systemUsername: 'other.example.com' }]);
    const identFile = findObject(twoMaps, 'ConfigMap', `${NAME}-config`).data[CLUSTER_FILES.pgIdentConf];
    const written = Date.now();
    writeFileSync(primary.localize(`${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.pgIdentConf}`), primary.localConfigFile(CLUSTER_FILES.pgIdentConf, identFile));
    while ((await connect('app', { cert: other })) !== 'app') {
      if (Date.now() - written > 30_000) {
        throw new Error(`the new map line was not in effect 30 s after pg_ident.conf changed:\n${readFileSync(agentLog, 'utf8')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    times.identReload = ((Date.now() - written) / 1000).toFixed(1);
  }, 60_000);

  test('a pgBackRest full backup and a restore bring both tablespaces back, each in the restored pod\'s own volume at the same path', async () => {
    const full = Date.now();
    topology.job(`${NAME}-backup-repo1-full`).runOk();
    times.backup = ((Date.now() - full) / 1000).toFixed(1);
    psql(superuser(primary), "INSERT INTO history VALUES (501, 'after the backup')");
    await archiveEverything(superuser(primary));
    const restored = await topology.primaryOf(synthCluster([HOT, COLD], { ...BACKUP, restore: {} }), 'restore');
    pods.push(restored);
    const started = Date.now();
    expect(restored.bootstrap()).toMatch(/cluster restored and promoted/);
    times.restore = ((Date.now() - started) / 1000).toFixed(1);
    await restored.start();
    const login = superuser(restored);
    expect(psql(login, "SELECT string_agg(spcname || '=' || pg_tablespace_location(oid), ',' ORDER BY spcname) FROM pg_tablespace WHERE spcname NOT LIKE 'pg_%'"))
      .toBe('cold=/var/lib/postgresql/tablespaces/cold/data,hot=/var/lib/postgresql/tablespaces/hot/data');
    expect(psql(login, "SELECT (SELECT count(*) FROM orders) || ' ' || (SELECT count(*) FROM history) || ' ' || (SELECT note FROM history WHERE id = 501)"))
      .toBe('1000 501 after the backup');
    expect(relationInOwnVolume(restored, 'hot', 'orders')).toBe(true);
    expect(relationInOwnVolume(restored, 'cold', 'history')).toBe(true);
    restoredPrimary = restored;
  }, 120_000);

  test('ensure: absent keeps a tablespace that holds a table, says so in the log, and drops it at the next start once it is empty', async () => {
    const absent = synthCluster([HOT, { ...COLD, ensure: Ensure.ABSENT }], { ...BACKUP, restore: {} });
    const restart = async () => {
      restoredPrimary.kill();
      restoredPrimary = await topology.primaryOf(absent, 'restore');
      pods.push(restoredPrimary);
      const log = restoredPrimary.bootstrap();
      await restoredPrimary.start();
      return log;
    };
    expect(await restart()).toMatch(/ERROR: {2}tablespace "cold" is not empty[^]*tablespace cold kept \(ensure absent\): it still holds objects; move them/);
    const login = superuser(restoredPrimary);
    expect(psql(login, "SELECT count(*) FROM pg_tablespace WHERE spcname = 'cold'")).toBe('1');
    psql(login, 'DROP TABLE history');
    expect(await restart()).toMatch(/roles and databases provisioned/);
    expect(psql(superuser(restoredPrimary), "SELECT string_agg(spcname, ',' ORDER BY spcname) FROM pg_tablespace")).toBe('hot,pg_default,pg_global');
  }, 60_000);
});
