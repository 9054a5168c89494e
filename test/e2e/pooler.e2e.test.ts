import { rmSync } from 'fs';
import { Chart, Testing } from 'cdk8s';
import { Client } from 'pg';
import { PooledClusterChart } from '../../examples/pooled-cluster';
import { ExternalPostgres, PgBouncerPooler, TlsProtocolVersion } from '../../lib';
import { LocalInstance, SecretStore } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { clientConfig, concurrentSessions, sampleMax, Target } from './support/load';
import { LocalPooler, startPooledCluster } from './support/pooler-harness';
import { psql, psqlResult, requirePostgres, runOk, scratchDir, waitFor } from './support/postgres-bin';

const SECRETS: SecretStore = {
  'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
  'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
  'airflow-app': { username: 'airflow', password: 'app"pass:word' },
  'airflow-pgbouncer-auth': { username: 'pgbouncer_auth', password: 'auth-secret' },
};

describe(`PgBouncerPooler with real PgBouncer ${DAEMONS.versions.pgbouncer} in front of real PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  const objects = new PooledClusterChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor }).toJson();
  let scratch: string;
  let instances: LocalInstance[];
  let pooler: LocalPooler;
  const app = (port: number): Target => ({ port, user: 'airflow', password: 'app"pass:word', database: 'airflow' });
  const superuser = () => ({ port: instances[0].port, user: 'postgres', password: 'super-secret', database: 'airflow', host: instances[0].socketDir });
  const serverConnections = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'airflow' AND backend_type = 'client backend'";

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbouncer');
    scratch = scratchDir('cdk8s-postgres-pooler-e2e');
    ({ instances, pooler } = await startPooledCluster(scratch, objects, objects, 'airflow-pgbouncer', SECRETS));
  }, 180_000);

  afterAll(() => {
    pooler?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('a client logs in with SCRAM through auth_query and reaches the primary', () => {
    expect(psql(app(pooler.port), 'SELECT current_user, pg_is_in_recovery()')).toBe('airflow|f');
  });

  test('a wrong password is refused, and no superuser can log in through the pooler', () => {
    const wrong = psqlResult({ ...app(pooler.port), password: 'guess' }, 'SELECT 1');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/password authentication failed|SASL authentication failed/);
    const superuserThroughPooler = psqlResult({ ...superuser(), port: pooler.port }, 'SELECT 1');
    expect(superuserThroughPooler.status).not.toBe(0);
  });

  test('the userlist holds only the auth user, in an owner-only file', () => {
    const userlist = runOk('cat', [pooler.localize('/var/run/pgbouncer-auth/userlist.txt')]);
    expect(userlist).toBe('"pgbouncer_auth" "auth-secret"\n');
    expect(runOk('stat', ['-c', '%a', pooler.localize('/var/run/pgbouncer-auth/userlist.txt')]).trim()).toBe('600');
  });

  test('a transaction-mode pgbench workload runs through the pooler without failures', () => {
    runOk('pgbench', ['--initialize', '--scale=1', '--quiet', '--host=127.0.0.1', `--port=${instances[0].port}`, '--username=airflow', 'airflow'],
      { PGPASSWORD: 'app"pass:word' });
    const output = runOk('pgbench', ['--client=10', '--jobs=2', '--time=3', '--no-vacuum', '--host=127.0.0.1', `--port=${pooler.port}`,
      '--username=airflow', 'airflow'], { PGPASSWORD: 'app"pass:word' });
    expect(output).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
    expect(Number(/tps = ([0-9.]+)/.exec(output)![1])).toBeGreaterThan(0);
  });

  test('500 concurrent sessions all succeed through the pooler on at most default_pool_size server connections', async () => {
    const sampler = sampleMax(superuser(), serverConnections);
    const pooled = await concurrentSessions(app(pooler.port), 500);
    const peak = await sampler.stop();
    expect(pooled).toEqual({ sessions: 500, succeeded: 500, failed: 0, errors: {} });
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(20);
    console.log(`pooled: 500 sessions, 0 failed, peak ${peak} server connections`);
  }, 120_000);

  test('the same 500 sessions straight to PostgreSQL (max_connections 100) are refused', async () => {
    const direct = await concurrentSessions(app(instances[0].port), 500);
    // Only max_connections - superuser_reserved_connections = 97 slots are open to ordinary roles.
    expect(direct.succeeded).toBeLessThanOrEqual(97);
    expect(Object.keys(direct.errors).some((message) => message.includes('too many clients already'))).toBe(true);
    console.log(`direct: 500 sessions, ${direct.failed} failed: ${JSON.stringify(direct.errors)}`);
  }, 120_000);

  test('a container restarted after a kill starts despite the pidfile and drain marker left behind', async () => {
    pooler.kill();
    await waitFor('PgBouncer to stop', () => !pooler.listening());
    // As after a liveness restart: a drain marker, and a pidfile naming a live process (in a pod,
    // PID 1 is the new PgBouncer itself; here the primary's postmaster stands in).
    const postmaster = runOk('head', ['-1', `${instances[0].pgdata}/postmaster.pid`]).trim();
    runOk('sh', ['-c', `echo ${postmaster} > ${pooler.localize('/var/run/pgbouncer/pgbouncer.pid')}`]);
    runOk('touch', [pooler.localize('/var/run/pgbouncer/draining')]);
    expect(pooler.ready()).toBe(false);
    await pooler.start();
    expect(pooler.ready()).toBe(true);
    expect(psql(app(pooler.port), 'SELECT 1')).toBe('1');
  });

  test('draining fails readiness at once, lets an open transaction finish, then stops PgBouncer', async () => {
    const client = new Client(clientConfig(app(pooler.port)));
    // PgBouncer closes the client's socket as it exits, once the transaction is over.
    const closed = new Promise((resolve) => client.on('error', resolve));
    await client.connect();
    await client.query('BEGIN');
    const transaction = client.query('SELECT pg_sleep(8)').then(() => client.query('COMMIT'));
    expect(pooler.ready()).toBe(true);
    const drained = pooler.drain();
    await waitFor('readiness to fail', () => !pooler.ready(), 2_000);
    expect((await transaction).command).toBe('COMMIT');
    expect(await drained).toBe(0);
    expect(String(await closed)).toContain('Connection terminated');
    expect(pooler.listening()).toBe(false);
  }, 60_000);
});

describe('PgBouncerPooler with client TLS and a userlist, in front of an ExternalPostgres', () => {
  // The same cluster, known only by its Service and Secret names, as an operator's would be.
  const clusterObjects = new PooledClusterChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor }).toJson();
  const chart = new Chart(Testing.app(), 'tls', { namespace: 'airflow' });
  const backend = new ExternalPostgres(chart, 'Db', {
    readWriteService: 'airflow-db-rw', readOnlyService: 'airflow-db-ro', replicas: 2,
    superuserSecret: { secretName: 'airflow-db-superuser' },
  });
  new PgBouncerPooler(chart, 'TlsPgbouncer', {
    backend, replicas: 1, users: [{ secretName: 'airflow-app' }], tls: { secretName: 'pgbouncer-tls', minimumProtocolVersion: TlsProtocolVersion.TLS_1_3 },
  });
  const objects = chart.toJson();
  let scratch: string;
  let instances: LocalInstance[];
  let pooler: LocalPooler;

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbouncer');
    scratch = scratchDir('cdk8s-postgres-pooler-tls-e2e');
    // A throwaway self-signed certificate, made here, for the Secret the pooler mounts.
    runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-keyout', `${scratch}/tls.key`, '-out', `${scratch}/tls.crt`]);
    const tls = { 'tls.crt': runOk('cat', [`${scratch}/tls.crt`]), 'tls.key': runOk('cat', [`${scratch}/tls.key`]) };
    ({ instances, pooler } = await startPooledCluster(scratch, clusterObjects, objects, 'tls-pgbouncer', { ...SECRETS, 'pgbouncer-tls': tls }));
  }, 180_000);

  afterAll(() => {
    pooler?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  const connect = (sslmode: string, options = '') => runOk('psql', [
    `host=127.0.0.1 port=${pooler.port} user=airflow dbname=airflow sslmode=${sslmode} ${options}`,
    '--no-psqlrc', '--command', '\\conninfo',
  ], { PGPASSWORD: 'app"pass:word' });

  test('a userlist role logs in over TLS 1.3, the tls.minimumProtocolVersion', () => {
    expect(connect('require')).toMatch(/SSL connection \(protocol: TLSv1\.3/);
  });

  test('a client that offers at most TLS 1.2 is refused (client_tls_protocols = tlsv1.3)', () => {
    expect(() => connect('require', 'ssl_max_protocol_version=TLSv1.2')).toThrow(/protocol version/);
  });

  test('a plain-text connection is refused', () => {
    expect(() => connect('disable')).toThrow(/SSL required/);
  });
});
