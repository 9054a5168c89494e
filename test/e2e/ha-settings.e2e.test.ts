/**
 * Settings changes of the props reaching a running HA cluster through the settings agent
 * (lib/cluster/patroni-settings-agent.ts), started by the rendered patroni-start.sh in every
 * member, on the worker's daemons (Debian 12's Patroni 3.0.2 with PostgreSQL 15; the `e2e trixie`
 * project runs it on Debian 13's Patroni 4.0.7 with PostgreSQL 17). A 3-member synchronous
 * cluster on etcd under a stream of single-row commits; each change is applied as the kubelet
 * applies a ConfigMap change: the pod template stays the same (no pod rolls), and every member's
 * mounted files are swapped at once (`..data`), a second apart from one member to the next.
 */
import { rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { MemoryCheck, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../../lib';
import { findObject } from '../support/synth';
import { SecretStore } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { HA_OWNER, HA_SECRETS } from './support/ha-fixture';
import { CommitWriter, PatroniCluster } from './support/patroni-harness';
import { psql, requirePostgres, scratchDir } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

const MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SECRETS: SecretStore = { ...HA_SECRETS };
const OWNER = HA_OWNER;
const BASE: Partial<PostgresStatefulClusterProps> = {
  // Patroni's default timings: the figures are the ones a cluster with the defaults sees.
  highAvailability: { synchronousMode: true },
  // A CA-signed certificate naming 127.0.0.1, where the members' REST APIs are: Patroni 3.0
  // verifies its peers', and the agent verifies a member's before it asks it to restart.
  tls: { secretName: 'db-tls' },
  settings: { sharedBuffers: '64MB', workMem: '4MB', walKeepSize: '256MB', maxConnections: 100 },
  // The test's members share one host's memory; the check is not what is tested here.
  memoryCheck: MemoryCheck.OFF,
};

function synth(props: Partial<PostgresStatefulClusterProps>): { objects: any[]; cluster: PostgresStatefulCluster } {
  const chart = new Chart(Testing.app(), 'settings', { namespace: 'shop' });
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    instances: 3,
    postgresVersion: DAEMONS.postgresMajor,
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    ...BASE,
    ...props,
  });
  return { objects: chart.toJson(), cluster };
}

/** One poll of a member's `GET /patroni`. */
interface Sample {
  readonly at: number;
  readonly members: Array<{ name: string; state?: string; role?: string; started?: string }>;
}

describe(`HA mode: settings changes applied by the settings agent, Patroni ${DAEMONS.versions.patroni} with PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  const figures: string[] = [];
  let scratch: string;
  let cluster: PatroniCluster;
  let writer: CommitWriter;
  let current: any[];

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('patroni');
    scratch = scratchDir('cdk8s-ha-settings');
    const { objects, cluster: model } = synth({});
    SECRETS['db-tls'] = new TestCa(scratch, 'settings-ca').issue('db-tls', { dnsNames: model.certificateDnsNames, ipAddresses: ['127.0.0.1'] });
    current = objects;
    cluster = await PatroniCluster.create(scratch, objects, 'db', SECRETS);
    cluster.start();
    const { leader } = await cluster.waitHealthy();
    psql({ port: cluster.member(leader).pgPort, ...OWNER }, 'CREATE TABLE commits (id bigint PRIMARY KEY)');
    writer = new CommitWriter(cluster.members.map((m) => m.pgPort), OWNER, 'commits', join(scratch, 'writer.log'));
    writer.start();
    await writer.firstAckAbove(0, 10 * MS);
  }, 180_000);

  afterAll(async () => {
    await writer?.stop();
    await cluster?.stop();
    if (figures.length > 0) process.stdout.write(`${figures.join('\n')}\n`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  /** SHOW of every member, by member; undefined for a member that does not answer. */
  function show(parameter: string): Array<string | undefined> {
    return cluster.members.map((member) => {
      try {
        return member.psql(`SHOW ${parameter}`);
      } catch {
        return undefined;
      }
    });
  }

  /** The store's dynamic configuration (`GET /config`). */
  async function storeConfig(): Promise<any> {
    return JSON.parse((await cluster.members[0].rest('/config'))!);
  }

  /**
   * The props applied as `kubectl apply` and the kubelet apply them: the pod template must not
   * change (no pod rolls), and every member's ConfigMap volumes are refreshed, a second apart.
   * Returns when the first member saw the new files.
   */
  async function apply(props: Partial<PostgresStatefulClusterProps>): Promise<number> {
    const { objects } = synth(props);
    expect(findObject(objects, 'StatefulSet', 'db').spec.template).toEqual(findObject(current, 'StatefulSet', 'db').spec.template);
    current = objects;
    const start = Date.now();
    for (const member of cluster.members) {
      member.refreshConfigMaps(objects);
      await sleep(MS);
    }
    return start;
  }

  /** Polls until `check` holds, at most timeoutMs; returns when it did. */
  async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
    const start = Date.now();
    while (!(await check())) {
      if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${cluster.describe()}`);
      await sleep(MS);
    }
    return Date.now();
  }

  /** Every member's `GET /patroni` every 250 ms until stopped: states, roles and postmaster start times. */
  function observe(): { samples: Sample[]; stop: () => void } {
    const samples: Sample[] = [];
    let running = true;
    void (async () => {
      while (running) {
        const members = await Promise.all(cluster.members.map(async (member) => {
          const body = await member.rest('/patroni');
          try {
            const status = JSON.parse(body ?? '');
            return { name: member.name, state: status.state, role: status.role, started: status.postmaster_start_time };
          } catch {
            return { name: member.name };
          }
        }));
        samples.push({ at: Date.now(), members });
        await sleep(250);
      }
    })();
    return { samples, stop: () => (running = false) };
  }

  /** The longest time between two acknowledged commits in [from, to]. */
  function longestPause(from: number, to: number): number {
    const times = [...writer.acknowledged.values()].filter((at) => at >= from && at <= to).sort((a, b) => a - b);
    let longest = 0;
    for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i] - times[i - 1]);
    return longest;
  }

  const noPendingRestart = async () => (await cluster.status())?.every((m: any) => !m.pending_restart) === true;
  const startTimes = () => cluster.members.map((m) => m.psql('SELECT pg_postmaster_start_time()'));

  test('reload-only settings, local (work_mem, an extra parameter) and shared through the store (wal_keep_size): every member takes them, no postmaster restarts', async () => {
    await cluster.waitHealthy();
    const before = startTimes();
    const from = await apply({
      settings: { ...BASE.settings, workMem: '8MB', walKeepSize: '512MB' }, extraParameters: { log_min_duration_statement: '250ms' },
    });
    const applied = await until('every member to show the new values', async () =>
      show('work_mem').every((v) => v === '8MB') && show('wal_keep_size').every((v) => v === '512MB')
      && show('log_min_duration_statement').every((v) => v === '250ms'), 90 * MS);
    expect((await storeConfig()).postgresql.parameters).toMatchObject({ work_mem: '8MB', wal_keep_size: '512MB', log_min_duration_statement: '250ms' });
    expect(startTimes()).toEqual(before);
    expect(await noPendingRestart()).toBe(true);
    figures.push(`reload-only change: applied on every member ${((applied - from) / MS).toFixed(1)} s after the first member's files changed, no restart, `
      + `longest pause between two commits ${(longestPause(from, applied) / MS).toFixed(1)} s`);
  }, 120_000);

  test('restart settings, shared through the store (max_connections up) and local (shared_buffers): replicas first, then a switchover, no acknowledged commit lost', async () => {
    const { leader: oldLeader } = await cluster.waitHealthy();
    const watch = observe();
    await sleep(MS);
    const from = await apply({
      settings: { ...BASE.settings, workMem: '8MB', walKeepSize: '512MB', maxConnections: 120, sharedBuffers: '96MB' },
      extraParameters: { log_min_duration_statement: '250ms' },
    });
    const applied = await until('every member to run the new values, none pending a restart', async () =>
      show('max_connections').every((v) => v === '120') && show('shared_buffers').every((v) => v === '96MB') && await noPendingRestart(), 240 * MS);
    watch.stop();
    const { leader: newLeader } = await cluster.waitHealthy();
    expect((await storeConfig()).postgresql.parameters).toMatchObject({ max_connections: 120, shared_buffers: '96MB' });

    // When each member's postmaster started again, and its role and the leader's at that moment.
    const { samples } = watch;
    const initial = Object.fromEntries(samples[0].members.map((m) => [m.name, m.started]));
    const restarts = cluster.members.map((member) => {
      const index = samples.findIndex((s) => s.members.some((m) => m.name === member.name && m.started && m.started !== initial[member.name]));
      expect(index).toBeGreaterThan(0);
      const leaders = samples[index].members.filter((m) => ['primary', 'master'].includes(m.role ?? '')).map((m) => m.name);
      return { name: member.name, at: samples[index].at, leaders };
    }).sort((a, b) => a.at - b.at);
    // Replicas first; the old leader last, restarted once another member led (the switchover's demotion).
    expect(restarts.map((r) => r.name).pop()).toBe(oldLeader);
    expect(restarts[2].leaders).toEqual([newLeader]);
    expect(newLeader).not.toBe(oldLeader);
    // One member down at a time.
    const down = Math.max(...samples.map((s) => s.members.filter((m) => m.state !== 'running').length));
    expect(down).toBe(1);
    const agentLog = cluster.member(oldLeader).logSinceStart();
    expect(agentLog).toContain(`switched over to ${newLeader}`);
    expect(agentLog).not.toContain('restarting the leader in place');

    // Every acknowledged commit is on the new leader.
    const last = Math.max(...writer.acknowledged.keys());
    await writer.firstAckAbove(last, 30 * MS);
    const present = new Set(cluster.member(newLeader).psql('SELECT id FROM commits', OWNER.database).split('\n').filter(Boolean).map(Number));
    expect([...writer.acknowledged.keys()].filter((id) => !present.has(id))).toEqual([]);
    const pause = longestPause(from, applied);
    figures.push(`restart change: applied on every member ${((applied - from) / MS).toFixed(1)} s after the first member's files changed `
      + `(restarts at ${restarts.map((r) => `${r.name} +${((r.at - from) / MS).toFixed(1)} s`).join(', ')}; leader ${oldLeader} -> ${newLeader}), `
      + `longest pause between two commits ${(pause / MS).toFixed(1)} s, ${writer.acknowledged.size} commits acknowledged in all, none lost`);
    // A switchover, not a lock expiry (ttl 30 s).
    expect(pause).toBeLessThan(15 * MS);
  }, 300_000);

  test('a parameter removed from the props leaves the store and every member', async () => {
    await cluster.waitHealthy();
    const from = await apply({ settings: { ...BASE.settings, workMem: '8MB', walKeepSize: '512MB', maxConnections: 120, sharedBuffers: '96MB' } });
    const applied = await until('log_min_duration_statement to be gone', async () =>
      !('log_min_duration_statement' in (await storeConfig()).postgresql.parameters) && show('log_min_duration_statement').every((v) => v === '-1'), 90 * MS);
    expect(await noPendingRestart()).toBe(true);
    figures.push(`parameter removed: gone from the store and every member ${((applied - from) / MS).toFixed(1)} s after the first member's files changed`);
  }, 120_000);
});
