import { rmSync } from 'fs';
import { connect } from 'net';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster } from '../../lib';
import { SecretStore } from './support/cluster-harness';
import { DAEMONS, versionAtLeast } from './support/daemons';
import { PatroniCluster, PatroniMember } from './support/patroni-harness';
import { requirePostgres, scratchDir, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

// Patroni's REST API as rendered, on its own so it runs on both daemon sets while the pod-loss
// rounds of ha.e2e run on Debian 12's only (Debian 13's Patroni 4.0.7 loses its leader in
// ha-failover-profiles.e2e and ha-kubernetes.e2e).
const MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Passwords with the characters that break naive quoting: colon and backslash (passfile), quotes (conninfo, SQL).
const SECRETS: SecretStore = {
  'db-superuser': { username: 'dbadmin', password: "su:per\\pass'word" },
  'db-replication': { username: 'replicator', password: 'rep:li\\ca"tion' },
};

describe('Patroni\'s REST API: basic auth on the unsafe endpoints, HTTPS with the cluster\'s certificate', () => {
  const API_LOGIN = { username: 'patroni-ops', password: "rest:api 'pass\\word" };
  const API_SECRETS: SecretStore = { ...SECRETS, 'api-patroni-api': API_LOGIN };
  const chart = new Chart(Testing.app(), 'api', { namespace: 'shop' });
  const api = new PostgresStatefulCluster(chart, 'Api', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    tls: { secretName: 'api-tls' },
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    highAvailability: { ttl: Duration.seconds(20), loopWait: Duration.seconds(2), retryTimeout: Duration.seconds(9) },
  });
  let scratch: string;
  let cluster: PatroniCluster;

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('patroni');
    DAEMONS.require('etcd');
    DAEMONS.require('etcdctl');
    scratch = scratchDir('cdk8s-postgres-ha-api');
    // The harness's members reach each other at 127.0.0.1, which the certificate names too.
    API_SECRETS['api-tls'] = new TestCa(scratch, 'api-ca').issue('api-tls', { dnsNames: api.certificateDnsNames, ipAddresses: ['127.0.0.1'] });
    cluster = await PatroniCluster.create(scratch, chart.toJson(), 'api', API_SECRETS);
    cluster.start();
    await cluster.waitHealthy();
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  const roles = async () => {
    const { leader } = await cluster.waitHealthy();
    return { leader: cluster.member(leader), replica: cluster.members.find((m) => m.name !== leader)! };
  };
  const UNSAFE: Array<[string, string, (names: { leader: string; replica: string }) => object]> = [
    ['POST', '/restart', () => ({})],
    ['POST', '/reinitialize', () => ({})],
    ['POST', '/failover', ({ replica }) => ({ candidate: replica })],
    ['POST', '/switchover', ({ leader, replica }) => ({ leader, candidate: replica })],
    ['POST', '/reload', () => ({})],
    ['PATCH', '/config', () => ({ maximum_lag_on_failover: 1048577 })],
  ];

  test('the REST API serves HTTPS only, with the cluster\'s certificate', async () => {
    const { leader } = await roles();
    expect(leader.restHttps).toBe(true);
    expect((await leader.restCall('/health')).status).toBe(200);
    const plain = await new Promise<string>((resolve) => {
      const socket = connect(leader.restPort, '127.0.0.1', () => socket.end('GET /health HTTP/1.0\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
    });
    expect(plain).not.toMatch(/^HTTP\/1\.[01] 200/);
  });

  test('health checks answer without credentials', async () => {
    const { leader, replica } = await roles();
    for (const path of ['/health', '/readiness', '/liveness', '/patroni', '/cluster']) expect([path, (await leader.restCall(path)).status]).toEqual([path, 200]);
    expect((await replica.restCall('/replica')).status).toBe(200);
    // Patroni 4 names the leader's role `primary` where 3.x said `master`; /cluster's `leader`, which the harness reads, is the same in both.
    const role = async (member: PatroniMember) => JSON.parse((await member.restCall('/patroni')).body).role;
    expect([await role(leader), await role(replica)]).toEqual([versionAtLeast(DAEMONS.versions.patroni, '4.0') ? 'primary' : 'master', 'replica']);
    expect((await leader.restCall('/primary')).status).toBe(200);
  });

  test('every unsafe endpoint refuses a call without credentials or with a wrong password (401), and nothing changes', async () => {
    const { leader, replica } = await roles();
    const names = { leader: leader.name, replica: replica.name };
    for (const [method, path, body] of UNSAFE) {
      for (const target of [leader, replica]) {
        for (const auth of [undefined, { username: API_LOGIN.username, password: 'guess' }]) {
          const response = await target.restCall(path, { method, body: body(names), auth });
          expect([method, path, target.name, auth ? 'wrong password' : 'none', response.status])
            .toEqual([method, path, target.name, auth ? 'wrong password' : 'none', 401]);
        }
      }
    }
    expect((await roles()).leader.name).toBe(leader.name);
    expect(JSON.parse((await leader.rest('/config'))!).maximum_lag_on_failover).toBe(1048576);
  });

  test('with the Secret\'s credentials they work: config, reload, restart, reinitialize, switchover and failover (members call each other over HTTPS)', async () => {
    let { leader, replica } = await roles();
    // Patroni answers a restart or a switchover once it is done, which takes seconds on a loaded machine.
    const call = (member: PatroniMember, method: string, path: string, body: object = {}) =>
      member.restCall(path, { method, body, auth: API_LOGIN, timeoutMs: 60 * MS });
    // 412: the leader could not yet get a good status from the candidate (it allows 2 s), as
    // right after a reinitialize; patronictl's user would retry too. Never a 401.
    const takeOver = async (member: PatroniMember, path: string, body: object) => {
      let response = await call(member, 'POST', path, body);
      for (let attempt = 0; response.status === 412 && attempt < 10; attempt++) {
        console.log(`ha-e2e: ${path} answered 412 (${response.body}), retrying`);
        await sleep(3 * MS);
        response = await call(member, 'POST', path, body);
      }
      return response;
    };

    // Patroni answers with the configuration it stored. A read after it may already show the
    // props' value again: the leader's settings agent writes patroni-dynamic.json back.
    const patched = await call(leader, 'PATCH', '/config', { maximum_lag_on_failover: 1048577 });
    expect(patched.status).toBe(200);
    expect(JSON.parse(patched.body).maximum_lag_on_failover).toBe(1048577);
    expect((await call(replica, 'POST', '/reload')).status).toBe(202);
    expect(await call(replica, 'POST', '/restart')).toMatchObject({ status: 200 });
    await cluster.waitHealthy();
    const removals = () => replica.logSinceStart().split('Removing data directory').length;
    const before = removals();
    expect(await call(replica, 'POST', '/reinitialize', { force: true })).toMatchObject({ status: 200 });
    await waitFor(`${replica.name} to remove its data directory`, () => removals() > before, 30 * MS);
    await cluster.waitHealthy();

    // The leader asks the candidate's REST API whether it may take over before it steps down.
    expect(await takeOver(leader, '/switchover', { leader: leader.name, candidate: replica.name })).toEqual({ status: 200, body: expect.any(String) });
    expect((await cluster.waitHealthy()).leader).toBe(replica.name);
    ({ leader, replica } = await roles());
    expect(await takeOver(replica, '/failover', { candidate: replica.name })).toEqual({ status: 200, body: expect.any(String) });
    expect((await cluster.waitHealthy()).leader).toBe(replica.name);
  }, 180_000);
});
