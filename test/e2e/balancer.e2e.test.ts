import { execFileSync } from 'child_process';
import { readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { Client } from 'pg';
import { AirflowStackChart } from '../../examples/airflow-stack';
import { ExternalPostgres, PgpoolBalancer, PgpoolConfigMode } from '../../lib';
import { LocalBalancer } from './support/balancer-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { LocalPooler } from './support/pooler-harness';
import { psql, psqlResult, requirePostgres, run, scratchDir } from './support/postgres-bin';
import { pgpoolRelease } from '../../lib/balancer/pgpool-versions';

const SECRETS: SecretStore = {
  'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
  'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
  'airflow-app': { username: 'airflow', password: "app'pass:word" },
  'airflow-pgpool-srcheck': { username: 'srcheck', password: 'check-secret' },
  // The example's exporters' own Secrets.
  'airflow-db-exporter': { username: 'postgres_exporter', password: 'db-stats' },
  'airflow-pgpool-exporter': { username: 'pgpool_exporter', password: 'pool-stats' },
  'airflow-pgbouncer-exporter': { username: 'pgbouncer_exporter', password: 'bouncer-stats' },
};

describe(`PgpoolBalancer with real Pgpool-II ${DAEMONS.versions.pgpool} over the real primary and replicas, PgBouncer in front`, () => {
  const objects = new AirflowStackChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor }).toJson();
  let scratch: string;
  let instances: LocalInstance[];
  let balancer: LocalBalancer;
  let pooler: LocalPooler;
  const app = (port: number) => ({ port, user: 'airflow', password: "app'pass:word", database: 'airflow' });

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgpool');
    DAEMONS.require('pgbouncer');
    scratch = scratchDir('cdk8s-postgres-balancer-e2e');
    instances = await localCluster(objects, 'airflow-db', scratch, SECRETS);
    await bootCluster(instances);
    balancer = await LocalBalancer.create(scratch, objects, 'airflow-pgpool', {
      'airflow-db-rw.airflow-ha.svc': instances[0].port,
      'airflow-db-ro.airflow-ha.svc': instances[1].port,
    }, SECRETS);
    await balancer.start();
    pooler = await LocalPooler.create(scratch, objects, 'airflow-pgbouncer', { 'airflow-pgpool.airflow-ha.svc': balancer.port }, SECRETS);
    pooler.writeUserlist();
    await pooler.start();
  }, 180_000);

  afterAll(() => {
    pooler?.kill();
    balancer?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('a client logs in with SCRAM through pool_passwd; a wrong password is refused', () => {
    expect(psql(app(balancer.port), 'SELECT current_user')).toBe('airflow');
    const wrong = psqlResult({ ...app(balancer.port), password: 'guess' }, 'SELECT 1');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/authentication failed/);
  });

  // Debian's pgpool.conf is the release's sample: extraParameters must take no name this Pgpool-II lacks.
  test(`every parameter extraParameters takes with pgpoolVersion ${DAEMONS.versions.pgpool} is in that Pgpool-II's sample pgpool.conf`, () => {
    const sample = readFileSync(join(DAEMONS.root ?? '/', 'etc', 'pgpool2', 'pgpool.conf'), 'utf8');
    const known = new Set([...sample.matchAll(/^#?([A-Za-z_0-9]+) *=/gm)].map((match) => match[1].toLowerCase()));
    const { parameters } = pgpoolRelease(DAEMONS.versions.pgpool);
    expect([...parameters].filter((name) => !known.has(name))).toEqual([]);
    expect(parameters.size).toBeGreaterThan(140);
  });

  // Rendered as is: not exposed, PCP is bound to the loopback only, never to the pod's address.
  test('PCP, not exposed, listens on localhost only, as rendered', () => {
    expect(readFileSync(join(balancer.root, 'etc', 'pgpool.conf'), 'utf8')).toMatch(/^pcp_listen_addresses = 'localhost'$/m);
    // The host's ss: loopback is shared with the daemons' root, which has no iproute2.
    const listening = execFileSync('ss', ['-ltnH', `sport = :${balancer.pcpPort}`], { encoding: 'utf8' }).trim().split('\n').map((line) => line.trim().split(/\s+/)[3]);
    expect(listening.length).toBeGreaterThan(0);
    for (const address of listening) expect(address).toMatch(/^(127\.0\.0\.1|\[::1\]):/);
  });

  // Pgpool-II 4.3 has no minimum protocol setting: its OpenSSL's default security level is the floor.
  test('Pgpool-II refuses a TLS 1.1 handshake and takes TLS 1.2', () => {
    const handshake = (version: string) => run('openssl', ['s_client', '-starttls', 'postgres', '-connect', `127.0.0.1:${balancer.port}`, version], {}, '');
    expect(handshake('-tls1_1').stdout).toMatch(/Cipher is \(NONE\)/);
    expect(handshake('-tls1_2').stdout).toMatch(/New, TLSv1\.2, Cipher is /);
  });

  test('writes land on the primary', () => {
    psql(app(balancer.port), 'CREATE TABLE IF NOT EXISTS notes (body text)');
    const port = psql(app(balancer.port), "WITH written AS (INSERT INTO notes VALUES ('x') RETURNING 1) SELECT inet_server_port() FROM written");
    expect(port).toBe(String(instances[0].port));
  });

  test('reads spread over both backends by weight (1 primary : 2 replicas)', async () => {
    const sessions = 90;
    const ports: number[] = [];
    for (let i = 0; i < sessions; i++) {
      // pool_hba.conf admits only TLS (hostssl) by default: sslmode=require, the self-signed certificate unverified.
      const client = new Client({ host: '127.0.0.1', ...app(balancer.port), ssl: { rejectUnauthorized: false } });
      await client.connect();
      ports.push(Number((await client.query('SELECT inet_server_port() AS port')).rows[0].port));
      await client.end();
    }
    const onPrimary = ports.filter((port) => port === instances[0].port).length;
    const onReplicas = ports.filter((port) => port === instances[1].port).length;
    expect(onPrimary + onReplicas).toBe(sessions);
    expect(onPrimary).toBeGreaterThan(0);
    expect(onReplicas).toBeGreaterThan(onPrimary);
    const nodes = psql(app(balancer.port), 'SHOW pool_nodes').split('\n').map((row) => row.split('|'));
    expect(nodes.map((row) => Number(row[8])).every((selects) => selects > 0)).toBe(true);
    console.log(`read split over ${sessions} sessions: primary ${onPrimary}, replica Service ${onReplicas}; pool_nodes select_cnt ${nodes.map((row) => row[8]).join(' / ')}`);
  }, 60_000);

  test('the streaming-replication check authenticates as the sr_check role', async () => {
    // A failed login shows after one sr_check_period (10 s) as "Failed to check replication time
    // lag ... No persistent db connection" here, and as a failed password in PostgreSQL's log.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    expect(balancer.log()).toMatch(/sr_check_worker pid \d+: LOG: +process started/);
    expect(balancer.log()).not.toMatch(/sr_check_worker pid \d+: (ERROR|FATAL)/);
    for (const instance of instances.slice(0, 2)) {
      expect(readFileSync(instance.logFile, 'utf8')).not.toContain('authentication failed for user "srcheck"');
    }
  }, 30_000);

  test('the image\'s environment mode (PGPOOL_PARAMS_ variables) boots and balances too', async () => {
    const chart = new Chart(Testing.app(), 'env', { namespace: 'airflow-ha' });
    const backend = new ExternalPostgres(chart, 'Db', {
      readWriteService: 'airflow-db-rw', readOnlyService: 'airflow-db-ro', replicas: 2, superuserSecret: { secretName: 'airflow-db-superuser' },
    });
    new PgpoolBalancer(chart, 'EnvPgpool', {
      pgpoolVersion: DAEMONS.versions.pgpool,
      backend, configMode: PgpoolConfigMode.ENVIRONMENT, replicas: 1,
      users: [{ credentials: { secretName: 'airflow-app' } }], srCheckUser: { secretName: 'airflow-pgpool-srcheck' },
    });
    const envBalancer = await LocalBalancer.create(scratch, chart.toJson(), 'env-pgpool', {
      'airflow-db-rw.airflow-ha.svc': instances[0].port,
      'airflow-db-ro.airflow-ha.svc': instances[1].port,
    }, SECRETS);
    try {
      await envBalancer.start();
      const ports = new Set<string>();
      for (let i = 0; i < 20; i++) ports.add(psql(app(envBalancer.port), 'SELECT inet_server_port()'));
      expect([...ports].sort()).toEqual([String(instances[0].port), String(instances[1].port)].sort());
    } finally {
      envBalancer.kill();
    }
  }, 60_000);

  test('PgBouncer with the balancer as its backend works end to end', () => {
    expect(psql(app(pooler.port), 'SELECT current_user, count(*) FROM notes')).toMatch(/^airflow\|[1-9]/);
  });
});
