import { rmSync } from 'fs';
import { Chart, Duration, Testing } from 'cdk8s';
import { PgBouncerPooler, PgBouncerPoolerProps, PostgresStatefulCluster } from '../../lib';
import { SecretStore } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { LeaderForwarder } from './support/leader-forwarder';
import { PatroniCluster, PatroniMember } from './support/patroni-harness';
import { PooledWriter, OutageFigures } from './support/pooled-writer';
import { LocalPooler } from './support/pooler-harness';
import { psql, requirePostgres, scratchDir, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

const TTL_S = 20;
const LOOP_WAIT_S = 5;
const MS = 1000;
// Planned: Patroni checks the candidate, stops the leader with a checkpoint, the candidate
// promotes; measured 3-6 s without a write. The pooler adds at most one server_login_retry.
const SWITCHOVER_BOUND_S = 12;
// Killed leader: its lock expires ttl - loop_wait to ttl after the kill, a replica notices
// within a loop and promotes; then one server_login_retry at most. Measured 17-22 s.
const FAILOVER_BOUND_S = TTL_S + LOOP_WAIT_S + 5;
// A read-write Service whose endpoint follows the lock LAG_S late, longer than the demoted primary
// takes to restart as a replica (about 3 s here): PgBouncer then opens a server connection to it,
// on which every write fails as read-only until server_lifetime (LIFETIME_S for that pooler) ends it.
const LAG_S = 6;
const LIFETIME_S = 15;
// What a client may see: its server connection closed by the old primary's shutdown or death;
// PgBouncer's answer while it cannot log in to a leader (none, or a dead one still holding the
// lock); a read-only error while the new leader, labelled as it takes the lock, still promotes;
// and the client's own 5 s timeout.
const EXPECTED_ERRORS = [
  /^08P01 server conn crashed\?/, /^08P01 server login has been failing/, /^08P01 pgbouncer cannot connect to server/,
  /^57P01 terminating connection due to administrator command/, /^57P03 the database system is shutting down/,
  /^25006 cannot execute INSERT in a read-only transaction/, /^Connection terminated/, /^Query read timeout/,
];

const SECRETS: SecretStore = {
  'db-superuser': { username: 'dbadmin', password: 'super-secret' },
  'db-replication': { username: 'replicator', password: 'repl-secret' },
  'shop-owner': { username: 'shop_app', password: "app'pass" },
  'db-patroni-api': { username: 'patroni', password: 'api-secret' },
};
const OWNER = { user: 'shop_app', password: "app'pass", database: 'shop' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => (ms / MS).toFixed(1);
const summary = (f: OutageFigures) => `no write for ${seconds(f.longestGapMs)} s, errors ${JSON.stringify(f.errors)}`;

describe('PgBouncer in front of the HA cluster\'s read-write Service: switchover and failover as a client sees them', () => {
  const chart = new Chart(Testing.app(), 'hap', { namespace: 'shop' });
  const db = new PostgresStatefulCluster(chart, 'Db', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    // CA-signed: Patroni 3.0's leader presents and verifies certificates when it asks the candidate (ha.e2e).
    tls: { secretName: 'db-tls' },
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    highAvailability: {
      ttl: Duration.seconds(TTL_S), loopWait: Duration.seconds(LOOP_WAIT_S), retryTimeout: Duration.seconds(5), synchronousMode: true,
    },
  });
  // The same pooler with the library's defaults; with PgBouncer's own login retry and connect
  // timeout (15 s each), which it rendered before issue 19; and behind a late Service with a short
  // server_lifetime: side by side under the same events, each behind its own forwarder.
  const poolers: { [name: string]: Partial<PgBouncerPoolerProps> } = {
    'pool-now': {},
    'pool-before': { extraSettings: { server_login_retry: '15', server_connect_timeout: '15' } },
    'pool-late-service': { serverLifetime: Duration.seconds(LIFETIME_S) },
  };
  const lagS = (name: string) => (name === 'pool-late-service' ? LAG_S : 0);
  for (const [name, props] of Object.entries(poolers)) {
    new PgBouncerPooler(chart, name, { backend: db, name, users: [{ secretName: 'shop-owner' }], defaultPoolSize: 5, ...props });
  }
  const objects = chart.toJson();
  let scratch: string;
  let cluster: PatroniCluster;
  const forwarders: LeaderForwarder[] = [];
  const writers: { [name: string]: PooledWriter } = {};

  /** Runs `event` under writes through both poolers; returns each writer's figures and checks no acknowledged write is lost. */
  async function underWrites(round: string, event: () => Promise<void>, boundS: number): Promise<{ [name: string]: OutageFigures }> {
    const { leader } = await cluster.waitHealthy();
    for (const name of Object.keys(poolers)) {
      const table = `${round}_${name.replace(/-/g, '_')}`;
      psql({ port: cluster.member(leader).pgPort, ...OWNER }, `CREATE TABLE ${table} (id bigint PRIMARY KEY)`);
      writers[name] = new PooledWriter({ port: poolerPorts[name], ...OWNER }, table);
      writers[name].start();
    }
    await sleep(3 * MS);
    const at = Date.now();
    await event();
    // Until both write again, 3 s past their last error, or well past the bound (the assertions then say how far).
    const deadline = Date.now() + (boundS + 30) * MS;
    const recovered = (w: PooledWriter) => Math.max(...w.acknowledged.values()) > Math.max(at, ...w.errors.map((e) => e.at)) + 3 * MS;
    while (!Object.values(writers).every(recovered) && Date.now() < deadline) await sleep(250);
    await Promise.all(Object.values(writers).map((w) => w.stop()));
    const newLeader = await cluster.leader();
    const figures: { [name: string]: OutageFigures } = {};
    for (const [name, writer] of Object.entries(writers)) {
      figures[name] = writer.figures(at, Date.now());
      console.log(`ha-pooler-e2e: ${round} through ${name}: ${summary(figures[name])}, acknowledged ${writer.acknowledged.size}`);
      const table = `${round}_${name.replace(/-/g, '_')}`;
      const present = new Set(cluster.member(newLeader).psql(`SELECT id FROM ${table}`, OWNER.database).split('\n').map(Number));
      expect([name, [...writer.acknowledged.keys()].filter((id) => !present.has(id))]).toEqual([name, []]);
    }
    return figures;
  }

  const poolerPorts: { [name: string]: number } = {};
  const poolerProcesses: LocalPooler[] = [];

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('patroni');
    DAEMONS.require('etcd');
    DAEMONS.require('etcdctl');
    DAEMONS.require('pgbouncer');
    scratch = scratchDir('cdk8s-postgres-ha-pooler');
    SECRETS['db-tls'] = new TestCa(scratch, 'db-ca').issue('db-tls', { dnsNames: db.certificateDnsNames, ipAddresses: ['127.0.0.1'] });
    cluster = await PatroniCluster.create(scratch, objects, 'db', SECRETS);
    cluster.start();
    await cluster.waitHealthy();
    for (const name of Object.keys(poolers)) {
      const forwarder = await LeaderForwarder.start(cluster, lagS(name) * MS);
      forwarders.push(forwarder);
      await waitFor(`${name}'s Service to have an endpoint`, () => forwarder.leader !== undefined, (LAG_S + 5) * MS);
      const pooler = await LocalPooler.create(scratch, objects, name, { [db.readWriteHost]: forwarder.port }, SECRETS);
      pooler.writeUserlist();
      await pooler.start();
      poolerProcesses.push(pooler);
      poolerPorts[name] = pooler.port;
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(Object.values(writers).map((w) => w.stop()));
    for (const pooler of poolerProcesses) pooler.kill();
    await Promise.all(forwarders.map((forwarder) => forwarder.stop()));
    await cluster?.stop();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  /** The defaults' pooler within `boundS`, the late Service's within its lag and server_lifetime more; only expected errors. */
  const expectWithinBound = (figures: { [name: string]: OutageFigures }, boundS: number, lateBoundS: number) => {
    for (const [name, bound] of [['pool-now', boundS], ['pool-late-service', lateBoundS]] as const) {
      expect([name, figures[name].longestGapMs / MS <= bound]).toEqual([name, true]);
      const unexpected = Object.keys(figures[name].errors).filter((message) => !EXPECTED_ERRORS.some((kind) => kind.test(message)));
      expect([name, unexpected]).toEqual([name, []]);
    }
  };

  test('a planned switchover (POST /switchover): writes succeed again through the pooler within the bound, none acknowledged is lost', async () => {
    const { leader, syncStandby } = await cluster.waitHealthy();
    const login = SECRETS['db-patroni-api'];
    const figures = await underWrites('switchover', async () => {
      const call = (member: PatroniMember) => member.restCall('/switchover', {
        method: 'POST', body: { leader, candidate: syncStandby }, auth: { username: login.username, password: login.password },
      });
      let response = await call(cluster.member(leader));
      // 412: the leader could not yet get a good status from the candidate; patronictl's user would retry too.
      for (let attempt = 0; response.status === 412 && attempt < 10; attempt++) {
        await sleep(2 * MS);
        response = await call(cluster.member(leader));
      }
      expect(response).toEqual({ status: 200, body: expect.any(String) });
    }, SWITCHOVER_BOUND_S);
    expect(await cluster.leader()).toBe(syncStandby);
    expectWithinBound(figures, SWITCHOVER_BOUND_S, SWITCHOVER_BOUND_S + LAG_S + LIFETIME_S);
  }, 120_000);

  test('the leader killed (Patroni and PostgreSQL, SIGKILL): writes succeed again through the pooler within the bound, none acknowledged is lost', async () => {
    const { leader } = await cluster.waitHealthy();
    const figures = await underWrites('failover', () => cluster.member(leader).kill(), FAILOVER_BOUND_S);
    expect(await cluster.leader()).not.toBe(leader);
    expectWithinBound(figures, FAILOVER_BOUND_S, FAILOVER_BOUND_S + LAG_S);
  }, 150_000);
});
