import { readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { SecureStackChart } from '../../examples/secure-stack';
import { ExternalPostgres, PgBouncerPooler, PgpoolBalancer } from '../../lib';
import { LocalBalancer } from './support/balancer-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveOnLoopback } from './support/loopback-hosts';
import { LocalPooler } from './support/pooler-harness';
import { psql, requirePostgres, resolveHostsWith, run, scratchDir, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

const APP_PASSWORD = 'shop-app-secret';
const SECRETS: SecretStore = {
  'shop-db-superuser': { username: 'postgres', password: 'super-secret' },
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
  'shop-app': { username: 'shop', password: APP_PASSWORD },
  'shop-pgpool-srcheck': { username: 'srcheck', password: 'check-secret' },
};

describe('TLS end to end: client -> PgBouncer -> Pgpool-II -> PostgreSQL primary and replicas, certificates from a test CA', () => {
  const objects = new SecureStackChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor }).toJson();
  const certificates = objects.filter((o) => o.kind === 'Certificate');
  let scratch: string;
  let caFile: string;
  let instances: LocalInstance[];
  let balancer: LocalBalancer;
  let pooler: LocalPooler;
  const extra: { kill(): void }[] = [];

  /** psql with a libpq connection string; the host's name is checked, its address is loopback. */
  const connect = (host: string, port: number, sslmode: string, sql = 'SELECT current_user') => run('psql', [
    '--no-psqlrc', '--tuples-only', '--no-align', '--command', sql,
    `host=${host} hostaddr=127.0.0.1 port=${port} user=shop dbname=shop sslmode=${sslmode} sslrootcert=${caFile} connect_timeout=5`,
  ], { PGPASSWORD: APP_PASSWORD });

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgpool');
    DAEMONS.require('pgbouncer');
    scratch = scratchDir('cdk8s-postgres-tls-e2e');
    const ca = new TestCa(scratch, 'test-ca');
    caFile = join(scratch, 'test-ca-ca.crt');
    for (const certificate of certificates) {
      SECRETS[certificate.spec.secretName] = ca.issue(certificate.spec.secretName, { dnsNames: certificate.spec.dnsNames });
    }
    // Every Service and pod name the chain connects by resolves to loopback, as cluster DNS would resolve them to pods.
    const names = [...certificates.flatMap((c) => c.spec.dnsNames.filter((name: string) => !name.startsWith('*'))),
      'shop-db-primary-0.shop-db-headless', 'other-db.shop.svc'];
    resolveOnLoopback(scratch, names);

    instances = await localCluster(objects, 'shop-db', scratch, SECRETS, true);
    await bootCluster(instances);
    balancer = await LocalBalancer.create(scratch, objects, 'shop-pgpool', {
      'shop-db-rw.shop.svc': instances[0].port,
      'shop-db-ro.shop.svc': instances[1].port,
    }, SECRETS);
    await balancer.start();
    pooler = await LocalPooler.create(scratch, objects, 'shop-pgbouncer', { 'shop-pgpool.shop.svc': balancer.port }, SECRETS, true);
    pooler.writeUserlist();
    await pooler.start();
  }, 180_000);

  afterAll(() => {
    for (const daemon of [...extra, pooler, balancer, ...(instances ?? [])]) daemon?.kill();
    resolveHostsWith(undefined);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the chart asks cert-manager for one certificate per component, for its Service names', () => {
    expect(certificates.map((c) => c.spec.secretName).sort()).toEqual(['shop-db-tls', 'shop-pgbouncer-tls', 'shop-pgpool-tls']);
  });

  test('a client with sslmode=verify-full reaches PostgreSQL through PgBouncer and Pgpool-II, TLS on every hop', () => {
    const result = connect('shop-pgbouncer.shop.svc', pooler.port, 'verify-full',
      'SELECT current_user, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(result.stderr).toBe('');
    // PostgreSQL sees Pgpool-II's connection encrypted; PgBouncer and Pgpool-II accept only TLS
    // clients (hostssl), so the two hops before it were encrypted to get this far.
    expect(result.stdout.trim()).toMatch(/^shop\|t\|TLSv1\.[23]$/);
  });

  test('replicas stream from the primary over TLS, verifying its pod name', async () => {
    const superuser = { port: instances[0].port, user: 'postgres', password: 'super-secret', host: instances[0].socketDir };
    await waitFor('both replicas to stream', () => psql(superuser, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") === '2');
    expect(psql(superuser, 'SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) ORDER BY r.application_name'))
      .toBe('t\nt');
    const conninfo = readFileSync(join(instances[1].pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(conninfo).toMatch(/^primary_conninfo = 'host=\\'shop-db-primary-0\.shop-db-headless\\' .* sslmode=verify-full sslrootcert=/m);
  });

  test('plaintext is refused by PgBouncer, Pgpool-II and PostgreSQL', () => {
    const refusals = [
      connect('shop-pgbouncer.shop.svc', pooler.port, 'disable'),
      connect('shop-pgpool.shop.svc', balancer.port, 'disable'),
      connect('shop-db-rw.shop.svc', instances[0].port, 'disable'),
      connect('shop-db-ro.shop.svc', instances[1].port, 'disable'),
    ];
    expect(refusals.map((result) => result.status)).toEqual([2, 2, 2, 2]);
    expect(refusals[0].stderr).toMatch(/SSL required/);
    expect(refusals[1].stderr).toMatch(/no pool_hba\.conf entry/);
    expect(refusals[2].stderr).toMatch(/no pg_hba\.conf entry .* no encryption/);
    expect(refusals[3].stderr).toMatch(/no pg_hba\.conf entry .* no encryption/);
  });

  test('a client checking for a host name the certificate does not name is refused', () => {
    // The pooler's certificate presented for the balancer's name: libpq's verify-full says no.
    const result = connect('shop-pgpool.shop.svc', pooler.port, 'verify-full');
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/server certificate for "shop-pgbouncer" .*does not match host name "shop-pgpool\.shop\.svc"/);
    // The same connection by the right name passes, so the name is the only difference.
    expect(connect('shop-pgbouncer.shop.svc', pooler.port, 'verify-full').stdout.trim()).toBe('shop');
  });

  test('PgBouncer refuses a backend whose certificate is for another host; by the right name it connects', async () => {
    const chart = new Chart(Testing.app(), 'names', { namespace: 'shop' });
    const authority = { secretName: 'shop-db-tls' };
    const pooled = (id: string, service: string) => new PgBouncerPooler(chart, id, {
      backend: new ExternalPostgres(chart, `${id}Db`, { readWriteService: service, superuserSecret: { secretName: 'shop-db-superuser' }, certificateAuthority: authority }),
      users: [{ secretName: 'shop-app' }],
      replicas: 1,
    });
    pooled('WrongName', 'other-db');
    pooled('RightName', 'shop-db-rw');
    const chartObjects = chart.toJson();
    const wrong = await LocalPooler.create(scratch, chartObjects, 'wrong-name', { 'other-db.shop.svc': instances[0].port }, SECRETS, true);
    const right = await LocalPooler.create(scratch, chartObjects, 'right-name', { 'shop-db-rw.shop.svc': instances[0].port }, SECRETS, true);
    for (const local of [wrong, right]) {
      extra.push(local);
      local.writeUserlist();
      await local.start();
    }
    // The poolers' own certificates are self-signed (no tls prop): the client takes them unverified.
    const unverified = (port: number) => run('psql', ['--no-psqlrc', '--tuples-only', '--no-align', '--command', 'SELECT 1',
      `host=127.0.0.1 port=${port} user=shop dbname=shop sslmode=require connect_timeout=5`], { PGPASSWORD: APP_PASSWORD });
    expect(unverified(right.port).stdout.trim()).toBe('1');
    const refused = unverified(wrong.port);
    expect(refused.status).not.toBe(0);
    expect(readFileSync(wrong.logFile, 'utf8')).toMatch(/TLS handshake error: name `other-db\.shop\.svc' not present in server certificate/);
    expect(readFileSync(right.logFile, 'utf8')).not.toMatch(/TLS handshake error/);
  }, 60_000);

  test('Pgpool-II refuses a backend certificate from another CA, does not check host names (verify-ca), and without the backend\'s CA takes it unverified', async () => {
    const rogue = new TestCa(scratch, 'rogue-ca');
    SECRETS['rogue-ca'] = { 'ca.crt': rogue.certificate };
    const chart = new Chart(Testing.app(), 'pgpool-ca', { namespace: 'shop' });
    const balanced = (id: string, service: string, caSecret: string) => new PgpoolBalancer(chart, id, {
      pgpoolVersion: DAEMONS.versions.pgpool,
      backend: new ExternalPostgres(chart, `${id}Db`, { readWriteService: service, superuserSecret: { secretName: 'shop-db-superuser' }, certificateAuthority: { secretName: caSecret } }),
      users: [{ credentials: { secretName: 'shop-app' } }],
      srCheckUser: { secretName: 'shop-pgpool-srcheck' },
      replicas: 1,
      tls: { secretName: 'shop-pgpool-tls' },
    });
    balanced('OtherCa', 'shop-db-rw', 'rogue-ca');
    balanced('OtherHost', 'other-db', 'shop-db-tls');
    // Without the backend's CA there is no ssl_ca_cert: TLS to the backend, unverified.
    new PgpoolBalancer(chart, 'NoCa', {
      pgpoolVersion: DAEMONS.versions.pgpool,
      backend: new ExternalPostgres(chart, 'NoCaDb', { readWriteService: 'shop-db-rw', superuserSecret: { secretName: 'shop-db-superuser' } }),
      users: [{ credentials: { secretName: 'shop-app' } }], srCheckUser: { secretName: 'shop-pgpool-srcheck' }, replicas: 1,
      tls: { secretName: 'shop-pgpool-tls' },
    });
    const chartObjects = chart.toJson();
    const otherCa = await LocalBalancer.create(scratch, chartObjects, 'other-ca', { 'shop-db-rw.shop.svc': instances[0].port }, SECRETS);
    const otherHost = await LocalBalancer.create(scratch, chartObjects, 'other-host', { 'other-db.shop.svc': instances[0].port }, SECRETS);
    const noCa = await LocalBalancer.create(scratch, chartObjects, 'no-ca', { 'shop-db-rw.shop.svc': instances[0].port }, SECRETS);
    for (const local of [otherCa, otherHost, noCa]) {
      extra.push(local);
      await local.start();
    }
    const refused = connect('shop-pgpool.shop.svc', otherCa.port, 'verify-full');
    expect(refused.status).not.toBe(0);
    expect(otherCa.log()).toMatch(/certificate verify failed/);
    expect(connect('shop-pgpool.shop.svc', otherHost.port, 'verify-full', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').stdout.trim()).toBe('t');
    // TLS to the clients with the balancer's Secret, and to the backend unverified: PostgreSQL sees it encrypted.
    expect(connect('shop-pgpool.shop.svc', noCa.port, 'verify-full', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').stdout.trim()).toBe('t');
    expect(noCa.log()).not.toMatch(/certificate verify failed|could not load root certificate/);
  }, 60_000);
});
