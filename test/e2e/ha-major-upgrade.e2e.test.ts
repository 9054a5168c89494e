import { ChildProcess } from 'child_process';
import { existsSync, readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { Document, parse } from 'yaml';
import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../../lib';
import { SecretStore } from './support/cluster-harness';
import { daemonSet, DaemonSet } from './support/daemons';
import { resolveEnv } from './support/environment';
import { KubernetesDcs } from './support/kubernetes-dcs';
import { prepareOldBinaries } from './support/old-binaries';
import { localizePaths } from './support/paths';
import { CommitWriter, LocalEtcd, PatroniCluster, PatroniDcs, PatroniMember } from './support/patroni-harness';
import { psql, psqlResult, scratchDir, startDaemonIn, waitFor } from './support/postgres-bin';
import { findObject } from '../support/synth';

const MS = 1000;
const seconds = (ms: number) => (ms / MS).toFixed(1);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SECRETS: SecretStore = {
  'db-superuser': { username: 'dbadmin', password: "su:per\\pass'word" },
  'db-replication': { username: 'replicator', password: 'rep:li\\ca"tion' },
  'shop-owner': { username: 'shop_app', password: "app'pass" },
  'db-patroni-api': { username: 'patroni', password: "api:pa\\ss'word" },
};
const OWNER = { user: 'shop_app', password: "app'pass", database: 'shop' };

/** The cluster as its app declares it: 15 first, then 17 with the upgrade prop. */
function synth(version: Pick<PostgresStatefulClusterProps, 'postgresVersion' | 'majorUpgrade'>): any[] {
  const chart = new Chart(Testing.app(), 'ha', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', {
    ...version,
    instances: 3,
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    highAvailability: { ttl: Duration.seconds(30), loopWait: Duration.seconds(10), retryTimeout: Duration.seconds(10), synchronousMode: true },
  });
  return chart.toJson();
}

/** The one etcd, kept running through the upgrade, with the members of either daemon set on it. */
function membersOn(etcd: LocalEtcd, daemons: DaemonSet): PatroniDcs {
  return {
    daemons,
    configure: (config: Document) => etcd.configure(config),
    environment: (member, env) => etcd.environment(member, env),
    start: (_member, command, logFile, env) => startDaemonIn(daemons, command[0], command.slice(1), logFile, env),
    describe: () => etcd.describe(),
    // Stopped once, at the end.
    stop: () => undefined,
  };
}

/** The init container `name` of the members' pod spec in `objects`. */
function initContainer(objects: any[], name: string): any {
  const container = findObject(objects, 'StatefulSet', 'db').spec.template.spec.initContainers.find((c: any) => c.name === name);
  if (!container) throw new Error(`the StatefulSet has no ${name} init container`);
  return container;
}

/** A container's mounts under the member's root, one directory per volume as the harness lays them out. */
function mountsOf(member: PatroniMember, container: any): { [podPath: string]: string } {
  return Object.fromEntries(container.volumeMounts.map((mount: any) => [mount.mountPath, join(member.root, mount.name)]));
}

/**
 * What the pod's `old-binaries` init container leaves in its emptyDir, made before the pods stop:
 * this machine's library wrappers (old-binaries.ts) are no part of a pod's downtime.
 */
function prepareOldBinariesOf(member: PatroniMember, objects: any[], daemons: DaemonSet): void {
  const step = initContainer(objects, 'major-upgrade');
  const volume = step.volumeMounts.find((mount: any) => mount.name === 'old-binaries');
  prepareOldBinaries(initContainer(objects, 'old-binaries'), mountsOf(member, step)[volume.mountPath], daemons);
}

/**
 * The pod's `major-upgrade` init container for a member, as the kubelet runs it: its command and
 * environment with the pod's paths under the member's root. Resolves with its exit code.
 */
function runUpgradeStep(member: PatroniMember, objects: any[], dcs: PatroniDcs, logFile: string): Promise<number | null> {
  const step = initContainer(objects, 'major-upgrade');
  const mounts = mountsOf(member, step);
  const fields: { [path: string]: string } = { 'metadata.name': member.name, 'metadata.namespace': 'shop' };
  const env = step.env.map((variable: any) => {
    const path = variable.valueFrom?.fieldRef?.fieldPath;
    return path === undefined ? variable : { name: variable.name, value: fields[path] };
  });
  const resolved = dcs.environment(member.name, resolveEnv({ env }, SECRETS, objects, (value) => localizePaths(value, mounts)));
  const command = step.command.map((arg: string) => localizePaths(arg, mounts));
  const child: ChildProcess = startDaemonIn(dcs.daemons, 'bash', command, logFile, resolved);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

/** Every member's REST API, sampled: how many say they lead a running primary. */
class LeaderSampler {
  public readonly samples: Array<{ at: number; leaders: string[] }> = [];
  private running = true;
  private loop?: Promise<void>;

  constructor(private readonly members: () => PatroniMember[]) {}

  public start(): void {
    this.loop = (async () => {
      while (this.running) {
        const at = Date.now();
        const answers = await Promise.all(this.members().map(async (member) => {
          const body = await member.rest('/patroni');
          try {
            const status = body === undefined ? undefined : JSON.parse(body);
            return ['master', 'primary'].includes(status?.role) && status?.state === 'running' ? `${member.name}:${member.restPort}` : undefined;
          } catch {
            return undefined;
          }
        }));
        this.samples.push({ at, leaders: answers.filter((name): name is string => name !== undefined) });
        await sleep(250);
      }
    })();
  }

  public async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

// The README's order (the replicas' pods, then the leader's), and every pod at once.
describe.each([['the replicas\' pods first, then the leader\'s', true], ['every pod at once', false]])('HA major upgrade: Patroni 3.0.2 on PostgreSQL 15, '
  + 'then %s deleted and Patroni 4.0.7 on 17 upgrades it, etcd kept', (order, replicasFirst) => {
  const bookworm = daemonSet('bookworm');
  const trixie = daemonSet('trixie');
  const before = synth({ postgresVersion: 15 });
  const after = synth({ postgresVersion: 17, majorUpgrade: { fromVersion: 15 } });
  let scratch: string;
  let etcd: LocalEtcd;
  let old: PatroniCluster;
  let upgraded: PatroniCluster | undefined;
  const writers: CommitWriter[] = [];
  let rowsBefore = 0;
  let sampler: LeaderSampler | undefined;

  beforeAll(async () => {
    for (const set of [bookworm, trixie]) for (const program of ['postgres', 'psql', 'patroni', 'python'] as const) set.require(program);
    scratch = scratchDir('cdk8s-postgres-ha-upgrade');
    etcd = await LocalEtcd.start(scratch);
    old = await PatroniCluster.create(scratch, before, 'db', SECRETS, membersOn(etcd, bookworm));
  }, 120_000);

  afterAll(async () => {
    await sampler?.stop();
    for (const writer of writers) await writer.stop();
    await old?.stop();
    await upgraded?.stop();
    etcd?.stop();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  test('15 to 17: one member upgrades, the others re-clone it; one leader at most, every acknowledged row kept', async () => {
    old.start();
    const { leader: oldLeader } = await old.waitHealthy(180 * MS);
    const oldOwner = { port: old.member(oldLeader).pgPort, ...OWNER };
    psql(oldOwner, 'CREATE TABLE upgrade_writes (id bigint PRIMARY KEY)');
    expect(old.member(oldLeader).psql('SHOW server_version_num')).toMatch(/^15\d{4}$/);
    const oldSystem = JSON.parse((await old.member(oldLeader).rest('/patroni'))!).database_system_identifier;

    // Synchronous work here would stall the writer's acknowledgements: the old binaries first.
    for (const member of old.members) prepareOldBinariesOf(member, after, trixie);
    const writer = new CommitWriter(old.members.map((m) => m.pgPort), OWNER, 'upgrade_writes', join(scratch, 'writer-15.log'));
    writers.push(writer);
    writer.start();
    await writer.firstAckAbove(0, 10 * MS);
    await sleep(3 * MS);

    const leaders = new LeaderSampler(() => [...old.members, ...upgraded?.members ?? []]);
    sampler = leaders;
    leaders.start();

    // The pods deleted first: their new pods wait in the upgrade step (the manifests' ConfigMaps
    // reach a still running leader's volumes too, as the kubelet syncs them).
    const startedAt = Date.now();
    const first = replicasFirst ? old.members.filter((member) => member.name !== oldLeader) : old.members;
    await Promise.all(first.map((member) => member.stop()));
    upgraded = await PatroniCluster.create(scratch, after, 'db', SECRETS, membersOn(etcd, trixie));
    const cluster = upgraded;
    expect(findObject(after, 'StatefulSet', 'db').spec.updateStrategy).toEqual({ type: 'OnDelete' });
    const stepLog = (name: string) => join(scratch, `${name}-upgrade.log`);
    const runStep = async (member: PatroniMember) => {
      const code = await runUpgradeStep(member, after, cluster.dcs, stepLog(member.name));
      if (code !== 0) throw new Error(`${member.name}'s major-upgrade step exited ${code}\n${readFileSync(stepLog(member.name), 'utf8')}`);
      member.start();
    };
    const steps = first.map((member) => runStep(cluster.member(member.name)));
    const sentWithoutReplicas = writer.sent;
    let leaderDeletedAt = startedAt;
    if (replicasFirst) {
      // The leader alone takes writes meanwhile (synchronous_mode without strict lets it go on).
      await writer.firstAckAbove(sentWithoutReplicas, 60 * MS);
      await sleep(5 * MS);
      expect(existsSync(join(scratch, `${oldLeader}-upgrade.log`))).toBe(false);
      // Then the leader's pod: the writes stop until the upgraded leader takes them.
      leaderDeletedAt = Date.now();
      await old.member(oldLeader).stop();
      steps.push(runStep(cluster.member(oldLeader)));
    }
    await writer.stop();
    const lastAckBefore = Math.max(...writer.acknowledged.values());
    const newWriter = new CommitWriter(cluster.members.map((m) => m.pgPort), OWNER, 'upgrade_writes', join(scratch, 'writer-17.log'));
    newWriter.sent = writer.sent;
    writers.push(newWriter);
    newWriter.start();
    await Promise.all(steps);
    const { leader } = await cluster.waitHealthy(300 * MS);
    const healthyAt = Date.now();
    const firstAckAfter = await newWriter.firstAckAbove(writer.sent, 60 * MS);
    await sleep(2 * MS);
    await newWriter.stop();
    await leaders.stop();

    // The last leader was elected, and it alone ran pg_upgrade.
    const stepLogs = Object.fromEntries(cluster.members.map((m) => [m.name, readFileSync(join(scratch, `${m.name}-upgrade.log`), 'utf8')]));
    expect(Object.entries(stepLogs).filter(([, log]) => log.includes('elected to upgrade')).map(([name]) => name)).toEqual([oldLeader]);
    expect(Object.entries(stepLogs).filter(([, log]) => log.includes('pg_upgrade done')).map(([name]) => name)).toEqual([oldLeader]);
    expect(leader).toBe(oldLeader);

    // One leader at most at every sample.
    const doubled = leaders.samples.filter((sample) => sample.leaders.length > 1);
    expect(doubled).toEqual([]);
    expect(leaders.samples.length).toBeGreaterThan(20);

    // Every acknowledged row, before and after the upgrade, is on the new leader.
    const newLeader = cluster.member(leader);
    const present = new Set(newLeader.psql('SELECT id FROM upgrade_writes', OWNER.database).split('\n').map(Number));
    const acknowledged = [...writer.acknowledged.keys(), ...newWriter.acknowledged.keys()];
    expect(writer.acknowledged.size).toBeGreaterThan(0);
    expect(newWriter.acknowledged.size).toBeGreaterThan(0);
    expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    const acknowledgedAlone = [...writer.acknowledged.keys()].filter((id) => id > sentWithoutReplicas).length;
    if (replicasFirst) expect(acknowledgedAlone).toBeGreaterThan(0);

    // Every member runs 17, the replicas stream from the leader; the REST API says 17.
    const newSystem = JSON.parse((await newLeader.rest('/patroni'))!).database_system_identifier;
    expect(newSystem).not.toBe(oldSystem);
    for (const member of cluster.members) {
      expect([member.name, member.psql('SHOW server_version_num')]).toEqual([member.name, expect.stringMatching(/^17\d{4}$/)]);
      const status = JSON.parse((await member.rest('/patroni'))!);
      expect([member.name, Math.floor(status.server_version / 10000)]).toEqual([member.name, 17]);
      // One new system, which the store names: the followers are clones of the upgraded leader.
      expect([member.name, status.database_system_identifier]).toEqual([member.name, newSystem]);
      // The old major's data stays beside the new until majorUpgrade is removed.
      expect([member.name, readFileSync(join(member.root, 'data', 'pgdata.15', 'PG_VERSION'), 'utf8').trim()]).toEqual([member.name, '15']);
    }
    expect(cluster.streamingTo(leader)).toEqual(cluster.members.map((m) => m.name).filter((name) => name !== leader).sort());

    // Passwords carried over: the owner logs in over TCP with its Secret's password, and a wrong one is refused.
    const owner = { port: newLeader.pgPort, ...OWNER };
    expect(psql(owner, 'SELECT current_user')).toBe('shop_app');
    const wrong = psqlResult({ ...owner, password: 'guess' }, 'SELECT 1');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain('password authentication failed for user "shop_app"');

    const unavailable = firstAckAfter - lastAckBefore;
    console.log(`ha-major-upgrade-e2e (${order}): writes unavailable ${seconds(unavailable)} s (leader's pod deleted to first commit on 17: `
      + `${seconds(firstAckAfter - leaderDeletedAt)} s); first pods deleted to healthy on 17 ${seconds(healthyAt - startedAt)} s; `
      + `rows acknowledged ${acknowledged.length} (${acknowledgedAlone} by the leader alone), all present; `
      + `${leaders.samples.length} leader samples, max ${Math.max(...leaders.samples.map((sample) => sample.leaders.length))} leader`);
    expect(existsSync(join(newLeader.root, 'data', 'pgdata.upgrade-sysid'))).toBe(false);
    rowsBefore = present.size;
  }, 900_000);

  test('majorUpgrade removed: a rolling update back to RollingUpdate, each member deletes the old major\'s data at its start', async () => {
    const cluster = upgraded!;
    const { leader } = await cluster.waitHealthy();
    const final = synth({ postgresVersion: 17 });
    const statefulSet = findObject(final, 'StatefulSet', 'db');
    expect(statefulSet.spec.updateStrategy).toEqual({ type: 'RollingUpdate' });
    const rendered = findObject(final, 'ConfigMap', 'db-patroni').data['patroni.yml'];
    // The StatefulSet's order, the leader last as its preStop hook would hand it over anyway; same addresses.
    const sequence = [...cluster.members.map((m) => m.name).filter((name) => name !== leader).sort().reverse(), leader];
    for (const name of sequence) {
      const index = cluster.members.findIndex((m) => m.name === name);
      const previous = cluster.members[index];
      await previous.stop();
      const member = new PatroniMember(scratch, name, previous.pgPort, previous.restPort, final, statefulSet, rendered, SECRETS, cluster.dcs);
      cluster.members[index] = member;
      member.start();
      await cluster.waitHealthy(180 * MS);
      expect([name, existsSync(join(member.root, 'data', 'pgdata.15'))]).toEqual([name, false]);
      expect(member.logSinceStart()).toMatch(/removed \S+pgdata\.15, the PostgreSQL 15 data kept since the major upgrade/);
    }
    const { leader: last } = await cluster.waitHealthy();
    const count = Number(cluster.member(last).psql('SELECT count(*) FROM upgrade_writes', OWNER.database));
    expect(count).toBe(rowsBefore);
    for (const member of cluster.members) expect([member.name, member.psql('SHOW server_version_num')]).toEqual([member.name, expect.stringMatching(/^17\d{4}$/)]);
  }, 600_000);
});

// A replica's pod lost (killed, not stopped) before the upgrade: its data may hold WAL no clean
// member has, so every member's step refuses and nothing changes; the rollback (the old manifests)
// brings the cluster back as it was.
describe('HA major upgrade refused: a member not shut down cleanly; rolled back to 15 with nothing lost', () => {
  const bookworm = daemonSet('bookworm');
  const trixie = daemonSet('trixie');
  const before = synth({ postgresVersion: 15 });
  const after = synth({ postgresVersion: 17, majorUpgrade: { fromVersion: 15 } });
  let scratch: string;
  let etcd: LocalEtcd;
  let clusters: PatroniCluster[] = [];
  let writer: CommitWriter | undefined;

  beforeAll(async () => {
    for (const set of [bookworm, trixie]) for (const program of ['postgres', 'psql', 'patroni', 'python'] as const) set.require(program);
    scratch = scratchDir('cdk8s-postgres-ha-upgrade-refused');
    etcd = await LocalEtcd.start(scratch);
  }, 120_000);

  afterAll(async () => {
    await writer?.stop();
    for (const cluster of clusters) await cluster.stop();
    etcd?.stop();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  test('every step refuses, no data changes; the old manifests start the cluster again with every acknowledged row', async () => {
    const old = await PatroniCluster.create(scratch, before, 'db', SECRETS, membersOn(etcd, bookworm));
    clusters = [old];
    old.start();
    const { leader } = await old.waitHealthy(180 * MS);
    psql({ port: old.member(leader).pgPort, ...OWNER }, 'CREATE TABLE refused_writes (id bigint PRIMARY KEY)');
    for (const member of old.members) prepareOldBinariesOf(member, after, trixie);
    writer = new CommitWriter(old.members.map((m) => m.pgPort), OWNER, 'refused_writes', join(scratch, 'writer.log'));
    writer.start();
    await writer.firstAckAbove(0, 10 * MS);
    await sleep(5 * MS);

    const [lost, ...others] = [...old.members.filter((m) => m.name !== leader), old.member(leader)];
    await lost.kill();
    await Promise.all(others.map((member) => member.stop()));
    await writer.stop();
    const upgraded = await PatroniCluster.create(scratch, after, 'db', SECRETS, membersOn(etcd, trixie));
    clusters.push(upgraded);
    const codes = await Promise.all(upgraded.members.map((member) => runUpgradeStep(member, after, upgraded.dcs, join(scratch, `${member.name}-upgrade.log`))));
    expect(codes).toEqual([1, 1, 1]);
    for (const member of upgraded.members) {
      const log = readFileSync(join(scratch, `${member.name}-upgrade.log`), 'utf8');
      expect([member.name, log]).toEqual([member.name, expect.stringContaining(`refused: the data of ${lost.name} was not shut down cleanly`)]);
      expect([member.name, log.includes('pg_upgrade')]).toEqual([member.name, false]);
      expect(readFileSync(join(member.root, 'data', 'pgdata', 'PG_VERSION'), 'utf8').trim()).toBe('15');
      expect(existsSync(join(member.root, 'data', 'pgdata.upgrade'))).toBe(false);
    }

    // The rollback: the old manifests; Patroni elects a leader among the old data.
    const rolledBack = await PatroniCluster.create(scratch, before, 'db', SECRETS, membersOn(etcd, bookworm));
    clusters.push(rolledBack);
    rolledBack.start();
    const { leader: again } = await rolledBack.waitHealthy(240 * MS);
    const present = new Set(rolledBack.member(again).psql('SELECT id FROM refused_writes', OWNER.database).split('\n').map(Number));
    expect(writer.acknowledged.size).toBeGreaterThan(0);
    expect([...writer.acknowledged.keys()].filter((id) => !present.has(id))).toEqual([]);
    expect(rolledBack.member(again).psql('SHOW server_version_num')).toMatch(/^15\d{4}$/);
    console.log(`ha-major-upgrade-e2e (refused): ${lost.name} lost; every step refused; rolled back, leader ${again}, `
      + `${writer.acknowledged.size} acknowledged rows present`);
  }, 900_000);
});

// The same election through Patroni's Kubernetes store (the fake API of kubernetes-dcs.ts, which
// enforces the rendered Role): the member keys are the pods' annotations, the initialize key an
// annotation of <name>-config.
describe('HA major upgrade: the election through Patroni 4.0.7\'s Kubernetes store, within the rendered Role', () => {
  const OLD = '7000000000000000001';
  const NEW = '7000000000000000002';
  let scratch: string;
  let dcs: KubernetesDcs | undefined;
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await dcs?.stop();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  test('the last primary is elected, the others wait; its new system reaches the config ConfigMap; no request is forbidden', async () => {
    const trixie = daemonSet('trixie');
    trixie.require('patroni');
    const objects = synth({ postgresVersion: 17, majorUpgrade: { fromVersion: 15 } });
    scratch = scratchDir('cdk8s-postgres-ha-upgrade-k8s');
    const store = await KubernetesDcs.start(scratch, objects, 'db', trixie);
    dcs = store;
    const cluster = await PatroniCluster.create(scratch, objects, 'db', SECRETS, store);
    const pod = findObject(objects, 'StatefulSet', 'db').spec.template.metadata;
    const labels = { ...parse(findObject(objects, 'ConfigMap', 'db-patroni').data['patroni.yml']).kubernetes.labels, 'cluster-name': 'db' };
    expect(Object.entries(labels).every(([key, value]) => pod.labels[key] === value)).toBe(true);
    store.api.create('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'db-config', namespace: 'shop', labels, annotations: { initialize: OLD } } });

    const states: { [member: string]: object } = {
      'db-0': { state: 'shut down in recovery', timeline: 2, checkpoint: '0/5000028', sysid: OLD },
      'db-1': { state: 'shut down', timeline: 2, checkpoint: '0/6000028', sysid: OLD },
      'db-2': { state: 'empty' },
    };
    const coordinator = (member: PatroniMember, args: string[]) => [trixie.programs.python, join(member.root, 'scripts', 'patroni-upgrade.py'),
      join(member.root, 'config', 'patroni.yml'), ...args];
    const envOf = (member: PatroniMember) => store.environment(member.name, { PATRONI_NAME: member.name, PATRONI_KUBERNETES_NAMESPACE: 'shop' });
    const logOf = (member: PatroniMember) => join(scratch, `${member.name}-coordinator.log`);
    const exits = cluster.members.map((member) => {
      const child = store.start(member.name, coordinator(member, ['coordinate', JSON.stringify(states[member.name]), 'db-0 db-1 db-2', '17']),
        logOf(member), envOf(member));
      children.push(child);
      return new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    });
    await waitFor('db-1 to be elected', () => children[1].exitCode !== null, 120 * MS);
    expect(await exits[1]).toBe(0);
    expect(readFileSync(logOf(cluster.members[1]), 'utf8')).toMatch(/^upgrade$/m);
    // The others keep waiting for a leader on 17, which never comes here.
    await sleep(5 * MS);
    for (const index of [0, 2]) expect([index, children[index].exitCode]).toEqual([index, null]);
    for (const member of cluster.members) {
      const published = store.api.get('pods', 'shop', member.name).metadata;
      expect([member.name, JSON.parse(published.annotations.status).upgrade]).toEqual([member.name, states[member.name]]);
      expect([member.name, published.labels.role]).toEqual([member.name, undefined]);
    }

    const initialize = await store.exec('db-1', coordinator(cluster.members[1], ['initialize', OLD, NEW]), envOf(cluster.members[1]));
    expect(initialize.status).toBe(0);
    expect(store.api.get('configmaps', 'shop', 'db-config').metadata.annotations.initialize).toBe(NEW);
    expect(store.api.requests.filter((request) => request.status === 403)).toEqual([]);
  }, 300_000);
});
