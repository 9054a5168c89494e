/**
 * A minor upgrade (an image bump; any pod template change rolls the same way) played in the
 * kubelet's and the StatefulSet controllers' order on real daemons, under a stream of single-row
 * commits: replicas reach the new template before the primary does, and the write
 * unavailability is measured. The image itself is not run (the daemons are the worker's): what
 * is proved is the order the rendered preStop hooks impose, and what it costs the writers.
 */
import { ChildProcess } from 'child_process';
import { readFileSync, rmSync } from 'fs';
import { dirname, join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../../lib';
import { ROLLOUT_DETECT_SECONDS } from '../../lib/cluster/rollout-order';
import { findObject } from '../support/synth';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { HA_OWNER, HA_SECRETS } from './support/ha-fixture';
import { CommitWriter, PatroniCluster, PatroniMember } from './support/patroni-harness';
import { psql, requirePostgres, scratchDir, startDaemonIn, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';
import { postgresVersion } from '../../lib/core/postgres-versions';

const MS = 1000;
/** A pod's replacement beyond stopping and starting PostgreSQL (scheduling, image pull, init containers), which runs in no time here. */
const POD_REPLACEMENT_MS = 5 * MS;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SECRETS: SecretStore = { ...HA_SECRETS };
const OWNER = HA_OWNER;
const SUPERUSER = HA_SECRETS['db-superuser'];

/** The default image of the worker's major, and the same image one minor release later: the upgrade. */
const VERSION = postgresVersion(DAEMONS.postgresMajor);
const nextMinor = (image: string) => image.replace(/:(\d+)\.(\d+)/, (_, major: string, minor: string) => `:${major}.${Number(minor) + 1}`);

function synth(props: Partial<PostgresStatefulClusterProps>, image: { image: string; uid: number }): any[] {
  return synthCluster(props, image).objects;
}

function synthCluster(props: Partial<PostgresStatefulClusterProps>, image: { image: string; uid: number }):
{ objects: any[]; cluster: PostgresStatefulCluster } {
  const chart = new Chart(Testing.app(), 'rollout', { namespace: 'shop' });
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    instances: 3,
    postgresVersion: DAEMONS.postgresMajor,
    image: image.image,
    runAsUser: image.uid,
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    ...props,
  });
  return { objects: chart.toJson(), cluster };
}

/** What the writer saw: ids sent and acknowledged, psql's errors, and the longest time between two acknowledgements in [from, to]. */
function writeFigures(writer: CommitWriter, logFile: string, from: number, to: number) {
  const times = [...writer.acknowledged.values()].filter((at) => at >= from && at <= to).sort((a, b) => a - b);
  let longestGapMs = 0;
  for (let i = 1; i < times.length; i++) longestGapMs = Math.max(longestGapMs, times[i] - times[i - 1]);
  let errors: string[] = [];
  try {
    errors = readFileSync(logFile, 'utf8').split('\n').filter((line) => /error|fatal|could not|closed/i.test(line));
  } catch {
    // No log: psql wrote nothing to stderr.
  }
  return { sent: writer.sent, acknowledged: writer.acknowledged.size, errors: errors.length, longestGapMs };
}

const ids = (text: string) => new Set(text.split('\n').filter(Boolean).map(Number));

describe(`HA mode: a minor upgrade rolled by the StatefulSet, Patroni ${DAEMONS.versions.patroni} with PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  const imageA = VERSION.highAvailabilityImage;
  const imageB = { ...imageA, image: nextMinor(imageA.image) };
  const ha = { ttl: Duration.seconds(30), loopWait: Duration.seconds(10), retryTimeout: Duration.seconds(10) };
  // A CA-signed certificate: Patroni 3.0 presents restapi.certfile as a client certificate and
  // then verifies its peers, which the pods' self-signed ones fail (ha.e2e.test.ts); 3.1 and later do neither.
  const tls = { tls: { secretName: 'db-tls' } };
  const { objects: objectsA, cluster: model } = synthCluster({ highAvailability: ha, ...tls }, imageA);
  const objectsB = synth({ highAvailability: ha, ...tls }, imageB);
  const statefulSetB = findObject(objectsB, 'StatefulSet', 'db');
  const renderedB = findObject(objectsB, 'ConfigMap', 'db-patroni').data['patroni.yml'];
  const figures: string[] = [];
  let scratch: string;

  beforeAll(() => {
    requirePostgres();
    DAEMONS.require('patroni');
    expect(imageB.image).not.toBe(imageA.image);
    scratch = scratchDir('cdk8s-rollout-ha');
    SECRETS['db-tls'] = new TestCa(scratch, 'rollout-ca').issue('db-tls', { dnsNames: model.certificateDnsNames, ipAddresses: ['127.0.0.1'] });
  });

  afterAll(() => {
    if (figures.length > 0) process.stdout.write(`${figures.join('\n')}\n`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  /** A switchover through the leader's REST API, with its credentials. */
  async function switchover(cluster: PatroniCluster, candidate: string): Promise<void> {
    const leader = await cluster.leader();
    if (leader === candidate) return;
    const response = await cluster.member(leader).restCall('/switchover', {
      method: 'POST', body: { leader, candidate }, auth: { username: HA_SECRETS['db-patroni-api'].username, password: HA_SECRETS['db-patroni-api'].password },
    });
    expect([response.status, response.body]).toEqual([200, expect.stringContaining(candidate)]);
    expect((await cluster.waitHealthy()).leader).toBe(candidate);
  }

  /**
   * The StatefulSet's rolling update from the highest ordinal down, as the kubelet stops a pod
   * (preStop hook, then SIGTERM) and the controller waits for the new one before the next;
   * returns the leader after each step.
   */
  async function roll(cluster: PatroniCluster): Promise<{ leaders: string[]; hooks: string[] }> {
    const leaders: string[] = [];
    const hooks: string[] = [];
    for (let ordinal = cluster.members.length - 1; ordinal >= 0; ordinal--) {
      const old = cluster.members[ordinal];
      const hook = await old.runPreStop();
      expect(hook.status).toBe(0);
      hooks.push(hook.output.trim());
      await old.stop();
      await sleep(POD_REPLACEMENT_MS);
      const fresh = new PatroniMember(dirname(old.root), old.name, old.pgPort, old.restPort, objectsB, statefulSetB, renderedB, SECRETS, cluster.dcs);
      expect(fresh.templateRevision).not.toBe(old.templateRevision);
      cluster.members[ordinal] = fresh;
      fresh.start();
      leaders.push((await cluster.waitHealthy()).leader);
    }
    return { leaders, hooks };
  }

  test.each([
    ['the lowest ordinal, replaced last', 0, 1],
    // Patroni's own election on shutdown would take either replica, the old one too: the tag decides.
    ['the middle ordinal, with one replica replaced before it', 1, 1],
    ['the highest ordinal, replaced first', 2, 2],
  ])('leader at %s (ordinal %i): it moves %i time(s), each by a switchover before its pod stops; writes pause only for the switchover, no acknowledged commit is lost',
    async (_, leaderOrdinal, expectedMoves) => {
      const cluster = await PatroniCluster.create(scratchDir(`cdk8s-rollout-ha-${leaderOrdinal}`), objectsA, 'db', SECRETS);
      let writer: CommitWriter | undefined;
      try {
        cluster.start();
        await cluster.waitHealthy();
        await switchover(cluster, `db-${leaderOrdinal}`);
        const table = `rollout_${leaderOrdinal}`;
        psql({ port: cluster.member(`db-${leaderOrdinal}`).pgPort, ...OWNER }, `CREATE TABLE ${table} (id bigint PRIMARY KEY)`);
        const logFile = join(scratch, `writer-${leaderOrdinal}.log`);
        writer = new CommitWriter(cluster.members.map((m) => m.pgPort), OWNER, table, logFile);
        writer.start();
        await writer.firstAckAbove(0, 10 * MS);
        const rollStart = Date.now();

        const { leaders, hooks } = await roll(cluster);
        const rollEnd = Date.now();
        // Writes go on after the rollout.
        await writer.firstAckAbove(Math.max(...writer.acknowledged.keys()), 30 * MS);
        await writer.stop();

        // Every pod runs the new template, the leader too.
        const revisions = new Set(cluster.members.map((m) => m.templateRevision));
        expect(revisions.size).toBe(1);
        const moves = [`db-${leaderOrdinal}`, ...leaders].filter((leader, i, all) => i > 0 && leader !== all[i - 1]).length;
        expect(moves).toBe(expectedMoves);
        // The old leader's hook handed over, by switchover, to a member on the new template when there was one.
        const handover = hooks[cluster.members.length - 1 - leaderOrdinal];
        expect(handover).toMatch(/switched over to db-\d/);
        if (leaderOrdinal < 2) expect(handover).toContain(`(template ${cluster.members[2].templateRevision})`);
        if (leaderOrdinal === 1) expect(handover).toContain('switched over to db-2 ');
        // A replica's hook does nothing; the leader's successor hands over again only when it was on the old template.
        expect(hooks.filter((h, i) => i !== cluster.members.length - 1 - leaderOrdinal && h.includes('switch'))).toHaveLength(expectedMoves - 1);

        const leader = await cluster.leader();
        const present = ids(cluster.member(leader).psql(`SELECT id FROM ${table}`, OWNER.database));
        const lost = [...writer.acknowledged.keys()].filter((id) => !present.has(id));
        expect(lost).toEqual([]);
        const seen = writeFigures(writer, logFile, rollStart, rollEnd);
        figures.push(`HA rollout, leader at ordinal ${leaderOrdinal}: ${moves} leader move(s), ${seen.acknowledged} of ${seen.sent} commits acknowledged, `
          + `${seen.sent - seen.acknowledged} in flight when a connection dropped, ${seen.errors} psql error line(s), longest pause between two commits ${(seen.longestGapMs / MS).toFixed(1)} s, `
          + `rollout ${((rollEnd - rollStart) / MS).toFixed(0)} s`);
        // A switchover, not a lock expiry: well under the ttl of 30 s per move.
        expect(seen.longestGapMs).toBeLessThan(20 * MS);
      } finally {
        await writer?.stop();
        await cluster.stop();
      }
    }, 600_000);
});

describe(`plain mode: a minor upgrade rolled by both StatefulSets at once, PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  const imageA = VERSION.image;
  const imageB = { ...imageA, image: nextMinor(imageA.image) };
  const grace = { terminationGracePeriod: Duration.seconds(120) };
  // Loopback stands for the pod network: the replicas and the writer connect from it.
  const objectsA = synth({ ...grace, allowedCidrs: ['127.0.0.1/32'] }, imageA);
  const objectsB = synth({ ...grace, allowedCidrs: ['127.0.0.1/32'] }, imageB);
  const configMapsB = Object.fromEntries(objectsB.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data]));
  const figures: string[] = [];
  let scratch: string;
  let instances: LocalInstance[] = [];
  let writer: CommitWriter | undefined;

  beforeAll(async () => {
    requirePostgres();
    expect(imageB.image).not.toBe(imageA.image);
    scratch = scratchDir('cdk8s-rollout-plain');
    instances = await localCluster(objectsA, 'db', scratch, SECRETS);
    await bootCluster(instances);
    psql({ port: instances[0].port, ...OWNER }, 'CREATE TABLE rollout (id bigint PRIMARY KEY)');
  }, 120_000);

  afterAll(async () => {
    await writer?.stop();
    for (const instance of instances) instance.kill();
    if (figures.length > 0) process.stdout.write(`${figures.join('\n')}\n`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  /** Every replica's slot streaming. */
  const streaming = (primary: LocalInstance) => Number(psql(
    { port: primary.port, user: SUPERUSER.username, password: SUPERUSER.password, host: primary.socketDir },
    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"));

  /** The primary's preStop hook, started as the kubelet runs it, in the background; resolves with its exit code when it ends. */
  function startHook(primary: LocalInstance): { done: Promise<number | null>; child: ChildProcess; log: string } {
    const log = join(scratch, `hook-${Date.now()}.log`);
    const { command, env } = primary.preStop;
    const child = startDaemonIn(primary.daemons, command[0], command.slice(1), log, env);
    return { done: new Promise((resolve) => child.on('exit', resolve)), child, log };
  }

  test('a primary stopped alone (a drain) waits only the detection window, serving meanwhile', async () => {
    const [primary] = instances;
    await waitFor('both replicas to stream', () => streaming(primary) === 2, 30_000);
    const started = Date.now();
    const hook = startHook(primary);
    expect(await hook.done).toBe(0);
    const took = Date.now() - started;
    // bash counts whole seconds (SECONDS): the window ends between detect - 1 and detect s.
    expect(took).toBeGreaterThanOrEqual((ROLLOUT_DETECT_SECONDS - 1.5) * MS);
    expect(took).toBeLessThan((ROLLOUT_DETECT_SECONDS + 10) * MS);
    expect(primary.ready()).toBe(false);
    figures.push(`plain primary stopped alone: hook ${(took / MS).toFixed(1)} s (detection window ${ROLLOUT_DETECT_SECONDS} s)`);
    await primary.start();
    await waitFor('both replicas to stream again', () => streaming(primary) === 2, 60_000);
  }, 120_000);

  test('the primary keeps serving until both replicas stream from their new pods, then stops; no acknowledged commit is lost', async () => {
    const [primary, ...replicas] = instances;
    await waitFor('both replicas to stream', () => streaming(primary) === 2, 30_000);
    const logFile = join(scratch, 'writer.log');
    writer = new CommitWriter([primary.port], OWNER, 'rollout', logFile);
    writer.start();
    await writer.firstAckAbove(0, 10 * MS);

    // Both controllers act at once: the kubelet runs the primary's hook while the replica
    // StatefulSet replaces its pods from the highest ordinal down, each once the last is ready.
    const rollStart = Date.now();
    const hook = startHook(primary);
    let hookEnded: number | undefined;
    void hook.done.then(() => (hookEnded = Date.now()));
    const replicaStarted: number[] = [];
    const replicaReady: number[] = [];
    for (const old of [...replicas].reverse()) {
      // The hook still waits, and the primary serves, while replicas are on the old template.
      expect(hookEnded).toBeUndefined();
      old.stop();
      await sleep(POD_REPLACEMENT_MS);
      const fresh = new LocalInstance(scratch, old.podName, old.port, findObject(objectsB, 'StatefulSet', 'db-replica'), configMapsB, primary.port, SECRETS);
      instances[instances.indexOf(old)] = fresh;
      fresh.bootstrap();
      replicaStarted.push(Date.now());
      await fresh.start();
      replicaReady.push(Date.now());
    }
    expect(await hook.done).toBe(0);
    const hookLog = readFileSync(hook.log, 'utf8');
    expect(hookLog).toMatch(/(replica stream db_replica_1 ended|1 replica\(s\) not streaming): waiting/);
    expect(hookLog).toContain('2 of 2 replicas stream from new pods');
    // Only now is the primary down; the writer was served until then.
    expect(primary.ready()).toBe(false);
    const lastAckBeforeStop = Math.max(...[...writer.acknowledged.values()].filter((at) => at <= hookEnded!));
    const lastIdBeforeStop = Math.max(...writer.acknowledged.keys());
    // Served after the last replica's server started: its WAL receiver may stream (what the hook
    // waits for) before its readiness probe passes, so the test's ready time can come after the stop.
    expect(lastAckBeforeStop).toBeGreaterThan(Math.max(...replicaStarted));

    // The primary's new pod.
    await sleep(POD_REPLACEMENT_MS);
    const freshPrimary = new LocalInstance(scratch, primary.podName, primary.port, findObject(objectsB, 'StatefulSet', 'db-primary'), configMapsB, primary.port, SECRETS);
    instances[0] = freshPrimary;
    freshPrimary.bootstrap();
    await freshPrimary.start();
    const backAt = await writer.firstAckAbove(lastIdBeforeStop, 60 * MS);
    const rollEnd = Date.now();
    await writer.stop();
    await waitFor('both replicas to stream from the new primary', () => streaming(freshPrimary) === 2, 60_000);

    const present = ids(psql({ port: freshPrimary.port, ...OWNER }, 'SELECT id FROM rollout'));
    expect([...writer.acknowledged.keys()].filter((id) => !present.has(id))).toEqual([]);
    const seen = writeFigures(writer, logFile, rollStart, rollEnd);
    const downMs = backAt - lastAckBeforeStop;
    figures.push(`plain rollout: replicas ready ${replicaReady.map((at) => ((at - rollStart) / MS).toFixed(1)).join(' and ')} s after the start, `
      + `primary stopped ${((hookEnded! - rollStart) / MS).toFixed(1)} s after, writes unavailable ${(downMs / MS).toFixed(1)} s (the primary's restart), `
      + `${seen.acknowledged} of ${seen.sent} commits acknowledged, ${seen.errors} psql error line(s)`);
    expect(downMs).toBeLessThan(30 * MS);
  }, 300_000);
});
