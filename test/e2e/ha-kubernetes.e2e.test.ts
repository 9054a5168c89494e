import { rmSync } from 'fs';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster } from '../../lib';
import { SecretStore } from './support/cluster-harness';
import { daemonSet } from './support/daemons';
import { KubernetesDcs } from './support/kubernetes-dcs';
import { PatroniCluster, PatroniMember } from './support/patroni-harness';
import { scratchDir, waitFor } from './support/postgres-bin';
import { findObject } from '../support/synth';

const MS = 1000;
const TTL_S = 30;
const LOOP_WAIT_S = 10;
// As in ha.e2e.test.ts: the lock expires ttl - loop_wait to ttl after the kill, a replica notices
// within loop_wait, 10 s more for the promotion and the label patch.
const FAILOVER_BOUND_S = TTL_S + LOOP_WAIT_S + 10;
// A switchover: the leader demotes at once, the candidate promotes and labels itself in its next loops.
const SWITCHOVER_BOUND_S = 2 * LOOP_WAIT_S + 10;

const SECRETS: SecretStore = {
  'db-superuser': { username: 'dbadmin', password: "su:per\\pass'word" },
  'db-replication': { username: 'replicator', password: 'rep:li\\ca"tion' },
  'shop-owner': { username: 'shop_app', password: "app'pass" },
  'db-patroni-api': { username: 'patroni', password: "api:pa\\ss'word" },
};
const API_LOGIN = { username: SECRETS['db-patroni-api'].username, password: SECRETS['db-patroni-api'].password };

const seconds = (ms: number) => (ms / MS).toFixed(1);

/** Whether an equality selector (a Service's spec.selector) matches the object's labels. */
const selects = (selector: { [key: string]: string }, object: any) =>
  Object.entries(selector).every(([key, value]) => object.metadata.labels?.[key] === value);

describe('HA mode on Patroni 4.0 with its Kubernetes store (fake API, rendered Role): the Services follow the leader by the role label', () => {
  const TRIXIE = daemonSet('trixie');
  const chart = new Chart(Testing.app(), 'ha', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', {
    instances: 3,
    postgresVersion: 17,
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    highAvailability: {
      ttl: Duration.seconds(TTL_S), loopWait: Duration.seconds(LOOP_WAIT_S), retryTimeout: Duration.seconds(10), synchronousMode: true,
    },
  });
  const objects = chart.toJson();
  const statefulSet = findObject(objects, 'StatefulSet', 'db');
  const readiness = statefulSet.spec.template.spec.containers.find((c: any) => c.name === 'postgres').readinessProbe;
  const services = { rw: findObject(objects, 'Service', 'db-rw'), ro: findObject(objects, 'Service', 'db-ro') };
  let scratch: string;
  let dcs: KubernetesDcs;
  let cluster: PatroniCluster;

  const pods = () => dcs.api.list('pods', dcs.namespace);
  const selected = (service: any) => pods().filter((pod) => selects(service.spec.selector, pod)).map((pod) => pod.metadata.name).sort();

  /** The kubelet's readiness probe, as rendered (an HTTP GET of the REST API): 200-399 is ready. */
  async function ready(member: PatroniMember): Promise<boolean> {
    if (readiness?.httpGet?.port !== 'patroni') throw new Error(`the readiness probe is not a GET of Patroni's REST API: ${JSON.stringify(readiness)}`);
    const { status } = await member.restCall(readiness.httpGet.path);
    return status >= 200 && status < 400;
  }

  /** A Service's endpoints as the endpoints controller makes them: the pods its selector matches that are ready. */
  async function endpoints(service: any): Promise<string[]> {
    const names = selected(service);
    const readyNames = await Promise.all(names.map(async (name) => (await ready(cluster.member(name))) ? name : undefined));
    return readyNames.filter((name): name is string => name !== undefined);
  }

  /** When the API first stored `pod` with the role label the Service selects, at or after `since`. */
  function labelledAt(pod: string, service: any, since: number): number | undefined {
    return dcs.api.history('pods', dcs.namespace, pod).find((change) => change.at >= since && change.object && selects(service.spec.selector, change.object))?.at;
  }

  /** The role label's transitions on every pod since `since`, for the log: "+2.1 s db-0 primary -> (none)". */
  function roleTransitions(since: number): string {
    const key = Object.keys(services.rw.spec.selector).find((k) => services.rw.spec.selector[k] !== services.ro.spec.selector[k])!;
    const lines: [number, string][] = [];
    for (const name of cluster.members.map((m) => m.name)) {
      let last: string | undefined;
      for (const change of dcs.api.history('pods', dcs.namespace, name)) {
        const value = change.object?.metadata.labels?.[key] ?? '(none)';
        if (change.at >= since && value !== last) lines.push([change.at, `+${seconds(change.at - since)} s ${name} ${last ?? '(none)'} -> ${value}`]);
        last = value;
      }
    }
    return lines.sort(([a], [b]) => a - b).map(([, line]) => line).join('; ');
  }

  /**
   * Samples the -rw Service's endpoints every 250 ms while `during` runs: how long it had none
   * (no writes possible) and how long more than one (writes reaching a pod that is not the leader).
   */
  async function sampleRw(during: () => Promise<void>): Promise<{ noneMs: number; severalMs: number; several: string[] }> {
    let running = true;
    const figures = { noneMs: 0, severalMs: 0, several: [] as string[] };
    const sampler = (async () => {
      for (let last = Date.now(); running; await new Promise((resolve) => setTimeout(resolve, 250))) {
        const found = await endpoints(services.rw);
        const now = Date.now();
        if (found.length === 0) figures.noneMs += now - last;
        if (found.length > 1) {
          figures.severalMs += now - last;
          figures.several.push(found.join('+'));
        }
        last = now;
      }
    })();
    try {
      await during();
    } finally {
      running = false;
      await sampler;
    }
    return figures;
  }

  /** Waits until the -rw Service's selector matches the leader's pod alone and the -ro's every other pod; returns the leader's name. */
  async function labelsSettled(timeoutMs: number): Promise<string> {
    const { leader } = await cluster.waitHealthy(timeoutMs);
    const replicas = cluster.members.map((m) => m.name).filter((name) => name !== leader).sort();
    await waitFor(`the role labels of leader ${leader} and replicas ${replicas}`,
      () => JSON.stringify([selected(services.rw), selected(services.ro)]) === JSON.stringify([[leader], replicas]), timeoutMs)
      .catch((error) => { throw new Error(`${error.message}\npods' labels: ${JSON.stringify(pods().map((p) => [p.metadata.name, p.metadata.labels]))}\n${cluster.describe()}`); });
    expect(await endpoints(services.rw)).toEqual([leader]);
    expect(await endpoints(services.ro)).toEqual(replicas);
    return leader;
  }

  beforeAll(async () => {
    TRIXIE.require('patroni');
    TRIXIE.require('postgres');
    scratch = scratchDir('cdk8s-postgres-ha-kubernetes');
    dcs = await KubernetesDcs.start(scratch, objects, 'db', TRIXIE);
    cluster = await PatroniCluster.create(scratch, objects, 'db', SECRETS, dcs);
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  test('Patroni 4.0 and PostgreSQL 17 from the trixie root', () => {
    expect(TRIXIE.versions.patroni).toMatch(/^4\.0\./);
    expect(TRIXIE.versions.postgres).toMatch(/^17\./);
  });

  test('three members bootstrap on the API: the leader\'s pod carries the value -rw selects, the others -ro\'s', async () => {
    const startedAt = Date.now();
    cluster.start();
    const leader = await labelsSettled(180 * MS);
    const labelled = cluster.members.map((m) => labelledAt(m.name, m.name === leader ? services.rw : services.ro, startedAt)!);
    console.log(`ha-kubernetes-e2e: bootstrap, every pod labelled ${seconds(Math.max(...labelled) - startedAt)} s after the start (leader ${leader})`);
    // Patroni's objects: its ConfigMaps, labelled as the rendered kubernetes.labels and scope say.
    const configMaps = dcs.api.list('configmaps', dcs.namespace).map((c) => c.metadata.name).sort();
    expect(configMaps).toEqual(expect.arrayContaining(['db-config', 'db-leader', 'db-sync']));
    expect(dcs.api.get('configmaps', dcs.namespace, 'db-leader').metadata.annotations.leader).toBe(leader);
    // The headless Service selects every pod, whatever its role.
    expect(selected(findObject(objects, 'Service', 'db-headless'))).toEqual(cluster.members.map((m) => m.name).sort());
  }, 240_000);

  test('SIGKILL of the leader: the new leader\'s pod is labelled primary, the Services\' endpoints follow; restarted, the old one is a replica', async () => {
    const { leader } = await cluster.waitHealthy();
    const killedAt = Date.now();
    // A dead member stays listed as it last was (its pod's status annotation): the labels tell who took over.
    const others = cluster.members.map((m) => m.name).filter((name) => name !== leader);
    const newLeader = () => others.find((name) => labelledAt(name, services.rw, killedAt) !== undefined);
    const rw = await sampleRw(async () => {
      await cluster.member(leader).kill();
      await waitFor('another pod to be labelled primary', () => newLeader() !== undefined, (FAILOVER_BOUND_S + 30) * MS)
        .catch((error) => { throw new Error(`${error.message}\n${cluster.describe()}`); });
    });
    expect(rw.several).toEqual([]);
    const promoted = newLeader()!;
    const promotedAt = labelledAt(promoted, services.rw, killedAt)!;
    expect(dcs.api.get('configmaps', dcs.namespace, 'db-leader').metadata.annotations.leader).toBe(promoted);
    // Nobody relabels a dead member's pod: its stale label stays until its Patroni runs again,
    // and the endpoints controller drops it because its readiness probe fails.
    const staleRw = selected(services.rw);
    const rwEndpoints = await endpoints(services.rw);
    console.log(`ha-kubernetes-e2e: leader ${leader} killed, ${promoted}'s pod labelled primary after ${seconds(promotedAt - killedAt)} s; `
      + `-rw selects ${staleRw.join(', ')}, endpoints ${rwEndpoints.join(', ')}; -rw without endpoints ${seconds(rw.noneMs)} s`
      + `\n  role labels: ${roleTransitions(killedAt)}`);
    expect(rwEndpoints).toEqual([promoted]);
    expect(await endpoints(services.ro)).toEqual(others.filter((name) => name !== promoted));
    expect((promotedAt - killedAt) / MS).toBeLessThanOrEqual(FAILOVER_BOUND_S);

    const restartedAt = Date.now();
    cluster.member(leader).start();
    expect(await labelsSettled(180 * MS)).toBe(promoted);
    console.log(`ha-kubernetes-e2e: ${leader} restarted, its pod labelled replica after ${seconds(labelledAt(leader, services.ro, restartedAt)! - restartedAt)} s`);
  }, 300_000);

  test('an authenticated REST switchover moves the labels: the candidate\'s pod to -rw, the old leader\'s to -ro', async () => {
    const leader = await labelsSettled(120 * MS);
    // In synchronous mode Patroni switches over only to the sync standby.
    const candidate = (await cluster.waitHealthy()).syncStandby!;
    const unauthenticated = await cluster.member(leader).restCall('/switchover', { method: 'POST', body: { leader, candidate } });
    expect(unauthenticated.status).toBe(401);
    const startedAt = Date.now();
    const rw = await sampleRw(async () => {
      const response = await cluster.member(leader).restCall('/switchover', { method: 'POST', body: { leader, candidate }, auth: API_LOGIN });
      expect(response).toEqual({ status: 200, body: expect.any(String) });
      await waitFor(`${candidate}'s pod to be labelled primary and ${leader}'s replica`,
        () => labelledAt(candidate, services.rw, startedAt) !== undefined && labelledAt(leader, services.ro, startedAt) !== undefined,
        SWITCHOVER_BOUND_S * MS);
    });
    const promotedAt = labelledAt(candidate, services.rw, startedAt)!;
    const demotedAt = labelledAt(leader, services.ro, startedAt)!;
    expect(await labelsSettled(60 * MS)).toBe(candidate);
    console.log(`ha-kubernetes-e2e: switchover ${leader} -> ${candidate}: ${leader}'s pod labelled replica after ${seconds(demotedAt - startedAt)} s, `
      + `${candidate}'s primary after ${seconds(promotedAt - startedAt)} s; -rw without endpoints ${seconds(rw.noneMs)} s, with several ${seconds(rw.severalMs)} s`
      + `\n  role labels: ${roleTransitions(startedAt)}`);
    expect(rw.several).toEqual([]);
  }, 240_000);

  test('the leader cut off from the API demotes itself; its pod keeps the primary label but fails readiness, so -rw never has two endpoints; '
    + 'reconnected, it is a replica', async () => {
    const leader = await labelsSettled(120 * MS);
    const others = cluster.members.map((m) => m.name).filter((name) => name !== leader);
    const cutAt = Date.now();
    const newLeader = () => others.find((name) => labelledAt(name, services.rw, cutAt) !== undefined);
    let demotedAt: number | undefined;
    const rw = await sampleRw(async () => {
      dcs.api.isolate(leader);
      await waitFor('another pod to be labelled primary', () => {
        if (demotedAt === undefined && /demoting self because DCS is not accessible/.test(cluster.member(leader).logSinceStart())) demotedAt = Date.now();
        return newLeader() !== undefined;
      }, (FAILOVER_BOUND_S + 30) * MS).catch((error) => { throw new Error(`${error.message}\n${cluster.describe()}`); });
    });
    const promoted = newLeader()!;
    const promotedAt = labelledAt(promoted, services.rw, cutAt)!;
    expect(selected(services.rw)).toEqual([leader, promoted].sort());
    expect(await endpoints(services.rw)).toEqual([promoted]);
    console.log(`ha-kubernetes-e2e: leader ${leader} cut off from the API: demoted itself after ${demotedAt ? seconds(demotedAt - cutAt) : '?'} s, `
      + `${promoted}'s pod labelled primary after ${seconds(promotedAt - cutAt)} s; -rw without endpoints ${seconds(rw.noneMs)} s, with several ${seconds(rw.severalMs)} s`);
    expect(demotedAt).toBeDefined();
    expect(demotedAt!).toBeLessThan(promotedAt);
    expect(rw.several).toEqual([]);

    const reconnectedAt = Date.now();
    dcs.api.reconnect(leader);
    expect(await labelsSettled(180 * MS)).toBe(promoted);
    console.log(`ha-kubernetes-e2e: ${leader} reconnected, its pod labelled replica after ${seconds(labelledAt(leader, services.ro, reconnectedAt)! - reconnectedAt)} s`);
  }, 300_000);

  test('patronictl in a pod (kubectl exec) lists the members and changes the dynamic configuration through the API, under the Role', async () => {
    const leader = await labelsSettled(60 * MS);
    const member = cluster.member(leader);
    const ctl = async (...args: string[]) => {
      const result = await member.exec('patronictl', args);
      if (result.status !== 0) throw new Error(`patronictl ${args.join(' ')} exited ${result.status}\n${result.stdout}\n${result.stderr}`);
      return result.stdout;
    };
    const listed = JSON.parse(await ctl('list', '--format', 'json'));
    expect(listed.map((m: any) => m.Member).sort()).toEqual(cluster.members.map((m) => m.name).sort());
    expect(listed.find((m: any) => m.Role === 'Leader').Member).toBe(leader);
    await ctl('edit-config', '--force', '--set', 'maximum_lag_on_failover=2097152');
    expect(JSON.parse(dcs.api.get('configmaps', dcs.namespace, 'db-config').metadata.annotations.config).maximum_lag_on_failover).toBe(2097152);
  }, 120_000);

  test('a write Patroni has not seen (its watch late): the leader\'s compare-and-swap on the lock gets 409, it reads the lock again and keeps it', async () => {
    const leader = await labelsSettled(120 * MS);
    const since = Date.now();
    // Later than the leader's next renewal, earlier than the ttl the replicas judge the lock by.
    dcs.api.lagWatches((LOOP_WAIT_S + 5) * MS);
    try {
      dcs.api.patch('configmaps', dcs.namespace, 'db-leader', { metadata: { annotations: { 'example.com/audited': 'yes' } } });
      const renewedAfterConflict = () => {
        const onLock = dcs.api.requests.filter((r) => r.at >= since && r.pod === leader && r.resource === 'configmaps' && r.name === 'db-leader');
        const conflict = onLock.findIndex((r) => r.verb === 'patch' && r.status === 409);
        const after = onLock.slice(conflict + 1);
        return conflict >= 0 && after.some((r) => r.verb === 'get' && r.status === 200) && after.some((r) => r.verb === 'patch' && r.status === 200);
      };
      await waitFor(`${leader} to renew its lock after a conflict`, renewedAfterConflict, 3 * LOOP_WAIT_S * MS)
        .catch((error) => { throw new Error(`${error.message}\n${cluster.describe()}`); });
    } finally {
      dcs.api.lagWatches(0);
    }
    const lock = dcs.api.get('configmaps', dcs.namespace, 'db-leader').metadata.annotations;
    expect(lock).toMatchObject({ 'leader': leader, 'example.com/audited': 'yes' });
    expect(await labelsSettled(60 * MS)).toBe(leader);
  }, 180_000);

  test('Patroni\'s requests all fit the rendered Role: none refused nor failed, each member patches only its own pod; every grant of it was used', () => {
    const requests = dcs.api.requests;
    const refused = requests.filter((r) => r.status === 401 || r.status === 403);
    expect(refused).toEqual([]);
    // 409 is the compare-and-swap (or a create that lost a race); anything else is a request the fake does not serve, or a fault.
    expect(requests.filter((r) => ![200, 201, 409].includes(r.status))).toEqual([]);
    const used = new Map<string, number>();
    for (const r of requests) used.set(`${r.verb} ${r.resource}${r.name ? `/${r.name}` : ''} ${r.status}`, (used.get(`${r.verb} ${r.resource}${r.name ? `/${r.name}` : ''} ${r.status}`) ?? 0) + 1);
    console.log(`ha-kubernetes-e2e: API requests (verb resource/name status: count):\n${[...used].sort().map(([key, count]) => `  ${key}: ${count}`).join('\n')}`);
    const unused = dcs.api.unusedGrants(dcs.namespace, dcs.serviceAccount);
    console.log(`ha-kubernetes-e2e: grants of the Role no request used: ${unused.map((g) => `${g.verb} ${g.resource}${g.name ? `/${g.name}` : ''}`).join(', ') || 'none'}`);

    // Least privilege: every verb the Role grants on every name was needed.
    expect(unused).toEqual([]);

    const podPatches = requests.filter((r) => r.resource === 'pods' && r.verb === 'patch');
    expect(podPatches.length).toBeGreaterThan(0);
    expect(podPatches.filter((r) => r.name !== r.pod)).toEqual([]);
    expect([...new Set(requests.filter((r) => r.verb === 'patch').map((r) => r.contentType))]).toEqual(['application/strategic-merge-patch+json']);
  });
});
