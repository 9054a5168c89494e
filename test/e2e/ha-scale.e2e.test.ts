import { existsSync, readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster } from '../../lib';
import { findObject } from '../support/synth';
import { SecretStore } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { HA_OWNER, HA_SECRETS } from './support/ha-fixture';
import { CommitWriter, LocalEtcd, PatroniCluster, PatroniMember } from './support/patroni-harness';
import { freePort, scratchDir, waitFor } from './support/postgres-bin';

/**
 * The HA mode scaled 3 -> 2 -> 3 by synthesizing again with another `instances`, under a stream
 * of commits: the departed member's slot leaves the leader, a new member on an empty volume is
 * cloned and streams, and writes never stop. On the worker's daemons: Debian 12's Patroni 3.0.2
 * (which drops a departed member's slot once it is gone) in the default project, Debian 13's
 * 4.0.7 in the e2e trixie one (memberSlotsTtl 0: its default keeps the slot 30 min).
 */
const TTL_S = 20;
const LOOP_WAIT_S = 5;
const MS = 1000;
const SECRETS: SecretStore = { ...HA_SECRETS };
const OWNER = HA_OWNER;
const seconds = (ms: number) => (ms / MS).toFixed(1);

function synth(instances: number, major: number): any[] {
  const chart = new Chart(Testing.app(), 'ha', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', {
    postgresVersion: major,
    instances,
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    highAvailability: {
      ttl: Duration.seconds(TTL_S), loopWait: Duration.seconds(LOOP_WAIT_S), retryTimeout: Duration.seconds(5), memberSlotsTtl: Duration.seconds(0),
    },
  });
  return chart.toJson();
}

describe(`HA scale down and up: Patroni ${DAEMONS.versions.patroni} on etcd ${DAEMONS.versions.etcd}, PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  const daemons = DAEMONS;
  const figures: string[] = [];
  let scratch: string;
  let cluster: PatroniCluster;
  let writer: CommitWriter;
  let writerLog: string;

  /** The physical slots on the leader. */
  const slots = () => cluster.member('db-0').psql('SELECT slot_name FROM pg_replication_slots ORDER BY 1').split('\n').filter(Boolean);

  beforeAll(async () => {
    daemons.require('patroni');
    daemons.require('etcd');
    scratch = scratchDir('cdk8s-postgres-ha-scale-e2e');
    cluster = await PatroniCluster.create(scratch, synth(3, daemons.postgresMajor), 'db', SECRETS, await LocalEtcd.start(scratch));
    // db-0 first, so it leads: the scale-down removes db-2, a replica, as the StatefulSet removes the highest ordinal.
    cluster.member('db-0').start();
    await cluster.leader(90 * MS);
    for (const member of cluster.members.slice(1)) member.start();
    await cluster.waitHealthy(120 * MS);
    expect((await cluster.leader())).toBe('db-0');
    cluster.member('db-0').psql('CREATE TABLE scale_writes (id bigint PRIMARY KEY)', OWNER.database);
    cluster.member('db-0').psql(`GRANT ALL ON scale_writes TO ${OWNER.user}`, OWNER.database);
    writerLog = join(scratch, 'writer.log');
    writer = new CommitWriter([cluster.member('db-0').pgPort], OWNER, 'scale_writes', writerLog);
    writer.start();
    await writer.firstAckAbove(0, 10 * MS);
  }, 180_000);

  afterAll(async () => {
    await writer?.stop();
    await cluster?.stop();
    console.log(`ha-scale-e2e (Patroni ${daemons.versions.patroni}, PostgreSQL ${daemons.postgresMajor}, ttl ${TTL_S} s, loop_wait ${LOOP_WAIT_S} s): ${figures.join('; ')}`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('3 -> 2: the Role and the StatefulSet follow instances; db-2 stops and its slot leaves the leader within ttl + loop_wait', async () => {
    const objects = synth(2, daemons.postgresMajor);
    expect(findObject(objects, 'StatefulSet', 'db').spec.replicas).toBe(2);
    const podRule = findObject(objects, 'Role', 'db-patroni').rules.find((rule: any) => rule.resources.includes('pods') && rule.resourceNames);
    expect(podRule.resourceNames).toEqual(['db-0', 'db-1']);
    expect(slots()).toEqual(['db_1', 'db_2']);
    const stoppedAt = Date.now();
    await cluster.member('db-2').stop();
    cluster.members.splice(cluster.members.indexOf(cluster.member('db-2')), 1);
    await waitFor('db-2\'s slot to leave the leader', () => !slots().includes('db_2'), (TTL_S + LOOP_WAIT_S + 10) * MS);
    const slotGone = Date.now() - stoppedAt;
    expect(slotGone).toBeLessThanOrEqual((TTL_S + LOOP_WAIT_S) * MS + 2 * MS);
    await cluster.waitHealthy(60 * MS);
    expect(slots()).toEqual(['db_1']);
    figures.push(`3 -> 2: db-2's slot dropped ${seconds(slotGone)} s after its stop`);
  }, 90_000);

  test('2 -> 3: a new db-2 on an empty volume is cloned from the leader and streams', async () => {
    const objects = synth(3, daemons.postgresMajor);
    const podRule = findObject(objects, 'Role', 'db-patroni').rules.find((rule: any) => rule.resources.includes('pods') && rule.resourceNames);
    expect(podRule.resourceNames).toEqual(['db-0', 'db-1', 'db-2']);
    rmSync(join(scratch, 'db-2'), { recursive: true, force: true });
    const member = new PatroniMember(scratch, 'db-2', await freePort(), await freePort(), objects, findObject(objects, 'StatefulSet', 'db'),
      findObject(objects, 'ConfigMap', 'db-patroni').data['patroni.yml'], SECRETS, cluster.dcs);
    cluster.members.push(member);
    const startedAt = Date.now();
    member.start();
    await waitFor('db-2 to stream from the leader', () => cluster.streamingTo('db-0').includes('db-2'), 90 * MS);
    const streaming = Date.now() - startedAt;
    await cluster.waitHealthy(60 * MS);
    expect(slots()).toEqual(['db_1', 'db_2']);
    expect(member.logSinceStart()).toMatch(/replica has been created using basebackup|bootstrapped from leader/);
    figures.push(`2 -> 3: the new db-2 cloned and streaming ${seconds(streaming)} s after its start`);
  }, 150_000);

  test('3 -> 2 -> 3 with db-2\'s volume kept (volumeRetention RETAIN, the default): its slot dropped meanwhile, it resumes from its data and streams; writes never stopped throughout', async () => {
    const member = cluster.member('db-2');
    await member.stop();
    cluster.members.splice(cluster.members.indexOf(member), 1);
    await waitFor('db-2\'s slot to leave the leader', () => !slots().includes('db_2'), (TTL_S + LOOP_WAIT_S + 10) * MS);
    cluster.members.push(member);
    const startedAt = Date.now();
    member.start();
    await waitFor('db-2 to stream from the leader again', () => cluster.streamingTo('db-0').includes('db-2'), 90 * MS);
    const streaming = Date.now() - startedAt;
    await cluster.waitHealthy(60 * MS);
    expect(slots()).toEqual(['db_1', 'db_2']);
    expect(member.logSinceStart()).not.toMatch(/replica has been created using basebackup/);
    figures.push(`2 -> 3 with the old volume: db-2 streaming ${seconds(streaming)} s after its start`);

    const stoppedAt = Date.now();
    const sentAtStop = writer.sent;
    await writer.stop();
    const acks = [...writer.acknowledged.values()].sort((a, b) => a - b);
    const gaps = acks.slice(1).map((at, i) => ({ gap: at - acks[i], at }));
    const { gap: longestGap, at: gapEnd } = gaps.reduce((longest, next) => (next.gap > longest.gap ? next : longest), { gap: 0, at: 0 });
    // Not one failed statement or lost connection (the writer logs psql's stderr); the longest
    // pause is printed: the clone's fast checkpoint on CI's two shared cores can stall
    // a commit for some seconds.
    expect(existsSync(writerLog) ? readFileSync(writerLog, 'utf8') : '').toBe('');
    expect(longestGap).toBeLessThan(10 * MS);
    const acknowledged = [...writer.acknowledged.keys()];
    await waitFor('db-2 to hold every acknowledged commit', () => Number(member.psql('SELECT count(*) FROM scale_writes', OWNER.database)) >= acknowledged.length, 30 * MS);
    const present = new Set(member.psql('SELECT id FROM scale_writes', OWNER.database).split('\n').map(Number));
    expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    figures.push(`writes throughout: ${acknowledged.length} commits of ${sentAtStop} sent, longest gap between two acknowledgements`
      + ` ${seconds(longestGap)} s (ending ${seconds(stoppedAt - gapEnd)} s before the end)`);
  }, 150_000);
});
