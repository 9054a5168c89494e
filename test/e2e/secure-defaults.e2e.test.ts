import { readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster } from '../../lib';
import { LocalBalancer } from './support/balancer-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { LocalPooler } from './support/pooler-harness';
import { psql, requirePostgres, requireProgram, run, scratchDir, waitFor } from './support/postgres-bin';

const SECRETS: SecretStore = {
  'shop-db-superuser': { username: 'postgres', password: 'super-secret' },
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
  'shop-app': { username: 'shop', password: 'shop-app-secret' },
  'shop-pgpool-srcheck': { username: 'srcheck', password: 'check-secret' },
};

/** The stack as a new user writes it: no tls, no allowedCidrs, nothing about security. */
function defaultStack(): any[] {
  const chart = new Chart(Testing.app(), 'defaults', { namespace: 'shop' });
  const app = { secretName: 'shop-app' };
  const cluster = new PostgresStatefulCluster(chart, 'ShopDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    databases: [{ name: 'shop', owner: app }],
  });
  const balancer = new PgpoolBalancer(chart, 'ShopPgpool', {
    pgpoolVersion: DAEMONS.versions.pgpool,
    backend: cluster, users: [{ credentials: app, envPrefix: 'SHOP' }], srCheckUser: { secretName: 'shop-pgpool-srcheck' },
  });
  new PgBouncerPooler(chart, 'ShopPgbouncer', { backend: balancer, users: [app] });
  new PgBouncerPooler(chart, 'DirectPgbouncer', { backend: cluster, users: [app], defaultPoolSize: 10 });
  return chart.toJson();
}

describe('secure by default: the stack without a single security prop, run by the real daemons', () => {
  const objects = defaultStack();
  let scratch: string;
  let instances: LocalInstance[];
  let balancer: LocalBalancer;
  let pooler: LocalPooler;
  let directPooler: LocalPooler;

  /** psql as `user` over TCP with a libpq sslmode and nothing else: no CA, no certificate. */
  const connect = (port: number, sslmode: string, user = 'shop', sql = 'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()') => run('psql', [
    '--no-psqlrc', '--tuples-only', '--no-align', '--command', sql,
    `host=127.0.0.1 port=${port} user=${user} dbname=${user === 'shop' ? 'shop' : 'postgres'} sslmode=${sslmode} connect_timeout=5`,
  ], { PGPASSWORD: user === 'shop' ? SECRETS['shop-app'].password : SECRETS['shop-db-superuser'].password });

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgpool');
    DAEMONS.require('pgbouncer');
    requireProgram('/usr/bin/openssl', 'openssl');
    scratch = scratchDir('cdk8s-postgres-defaults-e2e');
    instances = await localCluster(objects, 'shop-db', scratch, SECRETS);
    await bootCluster(instances);
    balancer = await LocalBalancer.create(scratch, objects, 'shop-pgpool', {
      'shop-db-rw.shop.svc': instances[0].port, 'shop-db-ro.shop.svc': instances[1].port,
    }, SECRETS);
    await balancer.start();
    pooler = await LocalPooler.create(scratch, objects, 'shop-pgbouncer', { 'shop-pgpool.shop.svc': balancer.port }, SECRETS);
    directPooler = await LocalPooler.create(scratch, objects, 'direct-pgbouncer', { 'shop-db-rw.shop.svc': instances[0].port }, SECRETS);
    for (const local of [pooler, directPooler]) {
      local.writeUserlist();
      await local.start();
    }
  }, 180_000);

  afterAll(() => {
    for (const daemon of [directPooler, pooler, balancer, ...(instances ?? [])]) daemon?.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  const listeners = () => [
    { name: 'PostgreSQL primary', port: instances[0].port },
    { name: 'PostgreSQL replica', port: instances[1].port },
    { name: 'Pgpool-II', port: balancer.port },
    { name: 'PgBouncer -> Pgpool-II', port: pooler.port },
    { name: 'PgBouncer -> PostgreSQL', port: directPooler.port },
  ];

  test('every pod made its own certificate at start: an ECDSA P-256 key only its user may read', () => {
    const certificate = join(instances[0].root, 'tls', 'tls.crt');
    const text = run('openssl', ['x509', '-in', certificate, '-noout', '-text']).stdout;
    expect(text).toMatch(/ASN1 OID: prime256v1/);
    expect(text).toMatch(/DNS:shop-db-rw\.shop\.svc/);
    const mode = run('stat', ['-c', '%a', join(instances[0].root, 'tls', 'tls.key')]).stdout.trim();
    expect(mode).toBe('600');
    // Two pods, two keys.
    expect(readFileSync(certificate, 'utf8')).not.toBe(readFileSync(join(instances[1].root, 'tls', 'tls.crt'), 'utf8'));
  });

  test('a client that configures nothing (libpq\'s default sslmode prefer) gets TLS on every listener', () => {
    for (const { name, port } of listeners()) {
      const result = connect(port, 'prefer');
      expect({ name, stderr: result.stderr, row: result.stdout.trim() }).toEqual({ name, stderr: '', row: expect.stringMatching(/^t\|TLSv1\.[23]$/) });
    }
  });

  test('plaintext is refused on every listener', () => {
    for (const { name, port } of listeners()) {
      const result = connect(port, 'disable');
      expect({ name, status: result.status }).toEqual({ name, status: 2 });
      expect(result.stderr).toMatch(/no encryption|SSL required|no pool_hba\.conf entry/);
    }
  });

  test('each hop behind the listeners is encrypted too: PostgreSQL sees the proxies\' and the replica\'s connections over TLS', async () => {
    const superuser = { port: instances[0].port, user: 'postgres', password: SECRETS['shop-db-superuser'].password, host: instances[0].socketDir };
    await waitFor('the replica to stream', () => psql(superuser, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") === '1');
    expect(psql(superuser, 'SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)')).toBe('t');
    expect(readFileSync(join(instances[1].pgdata, 'postgresql.auto.conf'), 'utf8')).toMatch(/^primary_conninfo = .*sslmode=require/m);
    // Through each proxy, the backend's own view of the connection it got.
    for (const port of [pooler.port, directPooler.port, balancer.port]) expect(connect(port, 'require').stdout.trim()).toMatch(/^t\|/);
  });

  test('the superuser logs in over the Unix socket only: pg_hba rejects it over TCP, with TLS, on every instance', () => {
    const socket = { port: instances[0].port, user: 'postgres', password: SECRETS['shop-db-superuser'].password, host: instances[0].socketDir };
    expect(psql(socket, 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).toBe('t');
    for (const instance of instances) {
      const result = connect(instance.port, 'require', 'postgres', 'SELECT 1');
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "postgres", database "postgres", SSL encryption/);
    }
    // Nor through a proxy: the pooler's password lookup never hands out a superuser's hash.
    expect(connect(directPooler.port, 'require', 'postgres', 'SELECT 1').status).not.toBe(0);
  });
});
