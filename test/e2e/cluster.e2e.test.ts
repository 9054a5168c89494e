import { existsSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { LocalInstance, SecretStore, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { Login, psql, psqlResult, requirePostgres, run, runOk, scratchDir, waitFor } from './support/postgres-bin';
import { ReplicatedClusterChart } from '../../examples/replicated-cluster';
import { MemoryCheck, PostgresStatefulCluster } from '../../lib';
import { postgresVersion } from '../../lib/core/postgres-versions';

// Passwords with the characters that break naive quoting: colon and backslash (passfile),
// quotes (conninfo, SQL), and a trailing newline as `kubectl create secret --from-file` keeps it.
const SECRETS: SecretStore = {
  'orders-db-superuser': { username: 'dbadmin', password: "su:per\\pass'word\n" },
  'orders-db-replication': { username: 'replicator', password: 'rep:li\\ca"tion' },
  'orders-app': { username: 'orders_app', password: "app'pass" },
  'orders-monitoring': { username: 'monitoring', password: 'mon-pass' },
  'orders-pooler-auth': { username: 'pooler_auth', password: 'lookup-pass' },
};
const superuser = (instance: LocalInstance): Login => ({ port: instance.port, user: 'dbadmin', password: "su:per\\pass'word", host: instance.socketDir });
const replicator = (port: number): Login => ({ port, user: 'replicator', password: 'rep:li\\ca"tion' });

const timings: { [step: string]: number } = {};
async function timed<T>(step: string, action: () => T | Promise<T>): Promise<T> {
  const start = Date.now();
  const result = await action();
  timings[step] = Date.now() - start;
  return result;
}

describe(`PostgresStatefulCluster with real PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  const chart = new ReplicatedClusterChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor });
  // Added after the cluster was built, as a pooler or an exporter does.
  chart.cluster.addRole({ credentials: { secretName: 'orders-monitoring' }, memberOf: ['pg_monitor'] });
  const authQuery = chart.cluster._addPasswordLookup({ secretName: 'orders-pooler-auth' });
  const objects = chart.toJson();
  let scratch: string;
  let primary: LocalInstance;
  let replicas: LocalInstance[];
  let all: LocalInstance[];

  const inRecovery = (instance: LocalInstance) => psql(superuser(instance), 'SELECT pg_is_in_recovery()');
  const streamingReplicas = () => psql(superuser(primary),
    "SELECT application_name || ':' || sync_state FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1").split('\n').filter(Boolean);
  const replayed = (instance: LocalInstance, marker: string) =>
    psql(superuser(instance), `SELECT count(*) FROM markers WHERE note = '${marker}'`) === '1';

  beforeAll(async () => {
    requirePostgres();
    scratch = scratchDir('cdk8s-postgres-e2e');
    all = await localCluster(objects, 'orders-db', scratch, SECRETS);
    [primary, ...replicas] = all;
    await timed('primary initdb + roles + database', () => primary.bootstrap());
    await timed('primary start', () => primary.start());
    for (const replica of replicas) {
      await timed(`${replica.podName} clone`, () => replica.bootstrap());
      await timed(`${replica.podName} start`, () => replica.start());
    }
  }, 180_000);

  afterAll(() => {
    for (const instance of all ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
    console.log(`e2e timings (ms): ${JSON.stringify(timings)}`);
  });

  test('both replicas stream from the primary, one of them as a quorum-synchronous standby', async () => {
    // A standby that has just started streaming reports "async" until the primary has taken
    // it into synchronous_standby_names' quorum; wait for that, then assert it.
    const expected = ['orders_db_replica_0:quorum', 'orders_db_replica_1:quorum'];
    await waitFor('both replicas streaming in the quorum', () => JSON.stringify(streamingReplicas()) === JSON.stringify(expected), 15_000)
      .catch(() => undefined);
    expect(streamingReplicas()).toEqual(expected);
    expect(psql(superuser(primary), 'SELECT slot_name FROM pg_replication_slots WHERE active ORDER BY 1'))
      .toBe('orders_db_replica_0\norders_db_replica_1');
  });

  test('the primary accepts writes, the replicas replay them and refuse their own', async () => {
    psql(superuser(primary), "CREATE TABLE markers (note text); INSERT INTO markers VALUES ('first')");
    for (const replica of replicas) {
      await waitFor(`${replica.podName} to replay`, () => replayed(replica, 'first'));
      const refused = psqlResult(superuser(replica), "INSERT INTO markers VALUES ('nope')");
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('cannot execute INSERT in a read-only transaction');
    }
  });

  test('the read-write Service reaches only the primary and the read-only Service only replicas', () => {
    const podsOf = (serviceName: string) => {
      const selector = objects.find((o) => o.kind === 'Service' && o.metadata.name === serviceName).spec.selector;
      const statefulSets = objects.filter((o) => o.kind === 'StatefulSet' &&
        Object.entries(selector).every(([key, value]) => o.spec.template.metadata.labels[key] === value));
      return all.filter((instance) => statefulSets.some((s) => instance.podName.startsWith(`${s.metadata.name}-`)));
    };
    expect(podsOf('orders-db-rw').map((i) => [i.podName, inRecovery(i)])).toEqual([['orders-db-primary-0', 'f']]);
    expect(podsOf('orders-db-ro').map((i) => [i.podName, inRecovery(i)]))
      .toEqual([['orders-db-replica-0', 't'], ['orders-db-replica-1', 't']]);
    expect(podsOf('orders-db-headless')).toHaveLength(3);
  });

  test('logins need the right password, and only the replication role may stream WAL over TCP', () => {
    const wrong = psqlResult({ ...superuser(primary), password: 'guess' }, 'SELECT 1');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain('password authentication failed for user "dbadmin"');

    const owner: Login = { port: primary.port, user: 'orders_app', password: "app'pass", database: 'orders' };
    expect(psql(owner, 'SELECT current_database() || \':\' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()'))
      .toBe('orders:orders_app');

    const replication = (login: Login) => runOk('psql', [`dbname=postgres replication=true host=127.0.0.1 port=${login.port} user=${login.user}`,
      '--no-psqlrc', '--tuples-only', '--no-align', '--command', 'IDENTIFY_SYSTEM'], { PGPASSWORD: login.password });
    expect(replication(replicator(primary.port))).toMatch(/^\d+\|1\|/);
    expect(() => replication(superuser(primary))).toThrow(/no pg_hba.conf entry for replication connection/);
  });

  test('no password reaches postgresql.auto.conf; the WAL receiver uses the passfile', () => {
    for (const replica of replicas) {
      const autoConf = readFileSync(join(replica.pgdata, 'postgresql.auto.conf'), 'utf8');
      expect(autoConf).toContain(`passfile=\\'${replica.localize('/run/postgresql-auth/pgpass')}\\'`);
      expect(autoConf).toContain(`primary_slot_name = '${replica.podName.replace(/-/g, '_')}'`);
      expect(autoConf).not.toMatch(/password=/);
      expect(autoConf).not.toContain('rep:li');
    }
  });

  test('a separate WAL volume holds the WAL of every instance', () => {
    for (const instance of all) {
      expect(runOk('readlink', [join(instance.pgdata, 'pg_wal')]).trim()).toBe(instance.localize('/var/lib/postgresql/wal/pg_wal'));
    }
  });

  test('a restarted replica starts as it was, without a new basebackup', async () => {
    const replica = replicas[1];
    const marker = join(replica.pgdata, 'kept-across-restart');
    writeFileSync(marker, '');
    replica.stop();
    expect(replica.ready()).toBe(false);
    psql(superuser(primary), "INSERT INTO markers VALUES ('while-stopped')");

    const log = await timed('replica restart: bootstrap', () => replica.bootstrap());
    expect(log).toContain('data directory holds a cluster: starting it as it is');
    expect(log).not.toContain('cloning');
    expect(existsSync(marker)).toBe(true);
    await timed('replica restart: start', () => replica.start());
    await waitFor('the restarted replica to catch up', () => replayed(replica, 'while-stopped'));
    await waitFor('two streaming replicas', () => streamingReplicas().length === 2);
  });

  test('a replica whose volumes were lost re-clones through its existing slot', async () => {
    const replica = replicas[0];
    replica.kill();
    replica.wipeVolumes();
    psql(superuser(primary), "INSERT INTO markers VALUES ('while-wiped')");

    const log = await timed('wiped replica: re-clone', () => replica.bootstrap());
    expect(log).toContain('cloning from 127.0.0.1 through slot orders_db_replica_0');
    await timed('wiped replica: start', () => replica.start());
    await waitFor('the re-cloned replica to catch up', () => replayed(replica, 'while-wiped'));
    expect(inRecovery(replica)).toBe('t');
    await waitFor('two streaming replicas', () => streamingReplicas().length === 2);
    expect(psql(superuser(primary), 'SELECT count(*) FROM pg_replication_slots')).toBe('2');
  });

  test('roles added after the cluster exist with their memberships', () => {
    expect(psql({ port: primary.port, user: 'monitoring', password: 'mon-pass' }, "SELECT pg_has_role('pg_monitor', 'member')")).toBe('t');
  });

  test('the password lookup gives the auth user SCRAM secrets of ordinary roles only, in every database', () => {
    const lookup = (database: string, user: string) =>
      psql({ port: primary.port, user: 'pooler_auth', password: 'lookup-pass', database }, authQuery.replace('$1', `'${user}'`));
    for (const database of ['postgres', 'orders', 'template1']) {
      expect(lookup(database, 'orders_app')).toMatch(/^orders_app\|SCRAM-SHA-256\$4096:/);
      expect(lookup(database, 'dbadmin')).toBe('');
    }
    const denied = psqlResult({ port: primary.port, user: 'orders_app', password: "app'pass", database: 'orders' }, authQuery.replace('$1', "'dbadmin'"));
    expect(denied.stderr).toContain('permission denied');
  });

  test('a primary restart keeps its data and sets passwords changed in the Secrets', async () => {
    primary.stop();
    primary.updateSecret('orders-app', 'password', 'rotated-pass');
    const log = primary.bootstrap();
    expect(log).toContain('starting it as it is');
    expect(log).toContain('roles and databases provisioned');
    await primary.start();
    expect(psql(superuser(primary), "SELECT count(*) FROM markers WHERE note = 'first'")).toBe('1');
    const app = { port: primary.port, user: 'orders_app', database: 'orders' };
    expect(psql({ ...app, password: 'rotated-pass' }, 'SELECT 1')).toBe('1');
    expect(psqlResult({ ...app, password: "app'pass" }, 'SELECT 1').stderr).toContain('password authentication failed');
    await waitFor('two streaming replicas', () => streamingReplicas().length === 2, 60_000);
  });

  test(`every parameter name the library accepts is one PostgreSQL ${DAEMONS.postgresMajor} knows`, () => {
    const real = runOk(join(DAEMONS.postgresBin, 'postgres'), ['--describe-config'])
      .split('\n').filter(Boolean).map((line) => line.split('\t')[0].toLowerCase()).sort();
    // A subset, not equality: minor releases add parameters (15.19 added output_plugin_libraries),
    // and a name missing here is only a spurious error, while an unknown one would stop PostgreSQL.
    const { parameters } = postgresVersion(DAEMONS.postgresMajor);
    expect([...parameters].filter((name) => !real.includes(name))).toEqual([]);
    expect(parameters.size).toBeGreaterThan(300);
  });

  // settings.* memory sizes are bounded by PostgreSQL's own ranges: the defaults of a huge limit stop at them.
  test(`the memory defaults of a 32Ti limit are values PostgreSQL ${DAEMONS.postgresMajor} takes, and one unit past each bound is refused`, () => {
    const big = new Chart(Testing.app(), 'big');
    new PostgresStatefulCluster(big, 'Db', {
      postgresVersion: DAEMONS.postgresMajor,
      superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, resources: { memoryLimit: '32Ti' }, memoryCheck: MemoryCheck.OFF,
    });
    const conf = big.toJson().find((o: any) => o.kind === 'ConfigMap' && o.data?.['postgresql.conf']).data['postgresql.conf'];
    const rendered = (name: string) => new RegExp(`^${name} = '([^']+)'$`, 'm').exec(conf)![1];
    const takes = (name: string, value: string) => run(join(DAEMONS.postgresBin, 'postgres'), ['-D', primary.pgdata, '-c', `${name}=${value}`, '-C', name]).status === 0;
    for (const name of ['shared_buffers', 'effective_cache_size', 'maintenance_work_mem']) expect([name, takes(name, rendered(name))]).toEqual([name, true]);
    expect(rendered('shared_buffers')).toBe('8589934584kB');
    // maintenance_work_mem's floor is the major's: 1MB up to 16, 64kB from 17.
    const floor = (name: string) => (postgresVersion(DAEMONS.postgresMajor).parameterTypes[name] as { min: number }).min;
    expect([takes('shared_buffers', '8589934592kB'), takes('effective_cache_size', '17179869184kB'), takes('work_mem', '2147483648kB'),
      takes('work_mem', '63kB'), takes('maintenance_work_mem', `${floor('maintenance_work_mem') - 1}kB`), takes('maintenance_work_mem', `${floor('maintenance_work_mem')}kB`),
      takes('wal_keep_size', '2147483648MB')]).toEqual([false, false, false, false, false, true, false]);
  });
});
