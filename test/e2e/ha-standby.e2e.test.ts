import { mkdirSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { BackupRepository, FailoverProfile, PostgresStatefulCluster, PostgresStatefulClusterProps, SourceCluster } from '../../lib';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { findObject } from '../support/synth';
import { archiveEverything, LocalBackupTopology } from './support/backup-harness';
import { bootCluster, LocalInstance, SecretStore } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveOnLoopback } from './support/loopback-hosts';
import { CommitWriter, MemberStatus, PatroniCluster } from './support/patroni-harness';
import { psql, requirePostgres, resolveHostsWith, scratchDir, waitFor } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

const MS = 1000;
const seconds = (ms: number) => (ms / MS).toFixed(1);
const SOURCE = 'orders';
const OWNER = { user: 'shop_app', password: 'app-secret', database: 'shop' };
const SOURCE_SUPERUSER = { username: 'dbadmin', password: 'su-secret' };
const SECRETS: SecretStore = {
  'orders-superuser': SOURCE_SUPERUSER,
  'orders-replication': { username: 'replicator', password: 'repl-secret' },
  'shop-owner': { username: OWNER.user, password: OWNER.password },
  // The standby: a physical copy of the source, whose superuser Patroni logs in as (the source's credentials).
  'orders-dr-superuser': SOURCE_SUPERUSER,
  'orders-dr-replication': { username: 'dr_replicator', password: 'dr-repl-secret' },
  'orders-dr-patroni-api': { username: 'patroni', password: 'api-secret' },
  // The clone: a superuser the source does not have.
  'orders-copy-superuser': { username: 'copyadmin', password: 'copy-secret' },
  'orders-copy-replication': { username: 'copy_replicator', password: 'copy-repl-secret' },
  'orders-copy-patroni-api': { username: 'patroni', password: 'copy-api-secret' },
  'orders-live-superuser': { username: 'liveadmin', password: 'live-secret' },
  'orders-live-replication': { username: 'live_replicator', password: 'live-repl-secret' },
  'orders-live-patroni-api': { username: 'patroni', password: 'live-api-secret' },
};

/** The source: a plain cluster of one instance, TLS from the test CA's Issuer, one volume repository. */
function synthSource(): any[] {
  const chart = new Chart(Testing.app(), 'source', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Orders', {
    name: SOURCE,
    postgresVersion: DAEMONS.postgresMajor,
    instances: 1,
    image: postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image,
    superuserSecret: { secretName: 'orders-superuser' },
    replicationSecret: { secretName: 'orders-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    tls: { issuer: { name: 'test-ca' } },
    backup: { repositories: [BackupRepository.volume()] },
  });
  return chart.toJson();
}

/** An HA cluster `name` of `instances` members beside the source, TLS from `<name>-tls`, FAST failover timings. */
function synthHa(name: string, instances: number, props: Partial<PostgresStatefulClusterProps>): { objects: any[]; dnsNames: string[] } {
  const chart = new Chart(Testing.app(), name, { namespace: 'shop' });
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    name,
    postgresVersion: DAEMONS.postgresMajor,
    instances,
    superuserSecret: { secretName: `${name}-superuser` },
    replicationSecret: { secretName: `${name}-replication` },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    tls: { secretName: `${name}-tls` },
    highAvailability: { failoverProfile: FailoverProfile.FAST },
    ...props,
  });
  return { objects: chart.toJson(), dnsNames: cluster.certificateDnsNames };
}

describe(`HA standby cluster and clone (Patroni ${DAEMONS.versions.patroni}, etcd ${DAEMONS.versions.etcd}, PostgreSQL ${DAEMONS.postgresMajor}) from a plain source's repository and primary`, () => {
  const sourceObjects = synthSource();
  const sourceCertificate = findObject(sourceObjects, 'Certificate', SOURCE).spec;
  const times: { [step: string]: string } = {};
  const stops: Array<() => void | Promise<void>> = [];
  let scratch: string;
  let ca: TestCa;
  let topology: LocalBackupTopology;
  let primary: LocalInstance;
  let repoHostPort: number;
  let standby: PatroniCluster;
  let acknowledged: number[] = [];

  const sourceOwner = () => ({ port: primary.port, ...OWNER });
  const superuserOn = (instance: LocalInstance) => ({
    port: instance.port, user: SOURCE_SUPERUSER.username, password: SOURCE_SUPERUSER.password, host: instance.socketDir,
  });

  /** The source as another cluster's props name it: its repository (through its repository host's local port) and/or its primary. */
  function source(parts: { repository?: boolean; streaming?: boolean }): SourceCluster {
    return {
      name: SOURCE,
      ...(parts.repository ? { repository: { repository: BackupRepository.volume(), tlsSecretName: 'orders-tls-copy', serverPort: repoHostPort } } : {}),
      ...(parts.streaming ? {
        streaming: { replicationSecret: { secretName: 'orders-replication' }, certificateAuthority: { secretName: 'orders-ca' }, port: primary.port },
      } : {}),
    };
  }

  /** Lays out and starts an HA cluster on its own etcd, its TLS Secret issued by the test CA for its names and 127.0.0.1. */
  async function startHa(name: string, synthesized: { objects: any[]; dnsNames: string[] }): Promise<PatroniCluster> {
    SECRETS[`${name}-tls`] = ca.issue(`${name}-tls`, { dnsNames: synthesized.dnsNames, ipAddresses: ['127.0.0.1'] });
    // source.conf reads the source's repository host: its local port and paths, as the topology rewrites a clone's.
    const dir = join(scratch, name);
    mkdirSync(dir);
    const cluster = await PatroniCluster.create(dir, synthesized.objects, name, SECRETS, undefined, (member, file, text) => (file === 'source.conf'
      ? topology.foreignConf({ localize: (path: string) => member.localize(path), host: member.name, port: member.pgPort }, text) : undefined));
    stops.push(() => cluster.stop());
    cluster.start();
    return cluster;
  }

  /** GET /cluster until `check` accepts the members. */
  async function waitForMembers(cluster: PatroniCluster, what: string, check: (members: MemberStatus[]) => boolean,
    timeoutMs: number): Promise<MemberStatus[]> {
    let members: MemberStatus[] = [];
    const started = Date.now();
    for (;;) {
      members = (await cluster.status()) ?? [];
      if (members.length === cluster.members.length && check(members)) return members;
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}\n${cluster.describe()}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbackrest');
    DAEMONS.require('patroni');
    DAEMONS.require('etcd');
    scratch = scratchDir('cdk8s-postgres-ha-standby');
    ca = new TestCa(scratch, 'test-ca');
    SECRETS[sourceCertificate.secretName] = ca.issue('orders', sourceCertificate);
    // What the other clusters' namespace holds of the source: its tls Secret and CA, copied.
    SECRETS['orders-tls-copy'] = SECRETS[sourceCertificate.secretName];
    SECRETS['orders-ca'] = { 'ca.crt': ca.certificate };
    topology = await LocalBackupTopology.create(scratch, sourceObjects, SOURCE, SECRETS);
    resolveOnLoopback(scratch, [...topology.hosts, `${SOURCE}-rw`]);
    const repoHost = topology.repoHost();
    stops.push(() => repoHost.kill());
    await repoHost.start();
    repoHostPort = repoHost.serverPort!;
    const instances = await topology.instances();
    stops.push(...instances.map((instance) => () => instance.kill()));
    [primary] = instances;
    await bootCluster(instances);
    await primary.startSidecar('pgbackrest');
    psql(sourceOwner(), 'CREATE TABLE orders (id bigint PRIMARY KEY)');
    psql(sourceOwner(), 'INSERT INTO orders SELECT generate_series(1, 1000)');
    topology.job(`${SOURCE}-backup-repo1-full`).runOk();
  }, 120_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    resolveHostsWith(undefined);
    console.log(`ha-standby-e2e: ${Object.entries(times).map(([step, value]) => `${step} ${value} s`).join(', ')}`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  test('two clones started together, one from the source\'s backup, one of the running source over TLS verified for orders-rw: '
    + 'every row, their own superusers, promoted', async () => {
    psql(sourceOwner(), 'INSERT INTO orders SELECT generate_series(1001, 1500)');
    await archiveEverything(superuserOn(primary));
    const started = Date.now();
    // Both at once: each its own Patroni on its own etcd, as two clusters in two namespaces.
    const [fromBackup, ofRunning] = await Promise.all([
      startHa('orders-copy', synthHa('orders-copy', 1, { clone: { source: source({ repository: true }) } })),
      startHa('orders-live', synthHa('orders-live', 1, { clone: { source: source({ streaming: true }) } })),
    ]);
    const [copy, live] = await Promise.all([fromBackup, ofRunning].map(async (clone, index) => {
      const member = clone.member(await clone.leader(90_000));
      times[index === 0 ? 'cloneFromBackup' : 'cloneOfRunning'] = seconds(Date.now() - started);
      return member;
    }));
    expect(copy.logSinceStart()).toMatch(/cluster restored and promoted[^]*cloned from cluster orders/);
    expect(live.logSinceStart()).toMatch(new RegExp(`copying the running cluster orders from orders-rw:${primary.port} \\(pg_basebackup\\)[^]*cloned from cluster orders`));
    // Restored from the backup: promoted onto a new timeline. Copied from the running source: its timeline, ended by crash recovery.
    expect(Number(copy.psql('SELECT timeline_id FROM pg_control_checkpoint()'))).toBeGreaterThan(1);
    expect(live.psql('SELECT timeline_id FROM pg_control_checkpoint()')).toBe(psql(superuserOn(primary), 'SELECT timeline_id FROM pg_control_checkpoint()'));
    for (const [member, superuser] of [[copy, 'copyadmin'], [live, 'liveadmin']] as const) {
      expect(member.psql('SELECT count(*) FROM orders', 'shop')).toBe('1500');
      expect(member.psql('SELECT pg_is_in_recovery()')).toBe('f');
      // Its own superuser (which the source has not) logs in with its own Secret's password; the owner too.
      expect(member.superuser.user).toBe(superuser);
      expect(member.psql(`SELECT rolsuper FROM pg_roles WHERE rolname = '${superuser}'`)).toBe('t');
      expect(psql({ port: member.pgPort, ...OWNER }, 'SELECT count(*) FROM orders')).toBe('1500');
    }
    await Promise.all([fromBackup.stop(), ofRunning.stop()]);
  }, 150_000);

  test('a standby cluster of two members: the standby leader restores the source\'s backup and streams from its primary, the other member cascades', async () => {
    const started = Date.now();
    standby = await startHa('orders-dr', synthHa('orders-dr', 2, { standby: { source: source({ repository: true, streaming: true }) } }));
    const members = await waitForMembers(standby, 'a streaming standby leader and a streaming replica', (all) => {
      // Patroni 4 reports a standby leader's state as streaming, Patroni 3 as running.
      const leader = all.find((m) => m.role === 'standby_leader' && ['running', 'streaming'].includes(m.state));
      return leader !== undefined && all.every((m) => m === leader || (m.role === 'replica' && ['running', 'streaming'].includes(m.state)))
        && standby.streamingTo(leader.name).length === 1;
    }, 120_000);
    times.standbyUp = seconds(Date.now() - started);
    const leader = members.find((m) => m.role === 'standby_leader')!.name;
    const replica = members.find((m) => m.name !== leader)!.name;
    expect(standby.member(leader).logSinceStart()).toMatch(/restoring the latest backup of cluster orders[^]*replica has been created using source_backup/);
    expect(standby.streamingTo(leader)).toEqual([replica]);
    // The standby leader streams from the source's primary over TLS.
    expect(standby.member(leader).psql('SELECT status || \':\' || sender_port FROM pg_stat_wal_receiver')).toBe(`streaming:${primary.port}`);
    expect(primary.ready()).toBe(true);
    expect(standby.member(replica).psql('SELECT count(*) FROM orders', 'shop')).toBe(psql(sourceOwner(), 'SELECT count(*) FROM orders'));
  }, 180_000);

  test('rows acknowledged by the source reach both members; dropping `standby` promotes the standby leader through the settings agent, every row there', async () => {
    const writer = new CommitWriter([primary.port], OWNER, 'orders_live', join(scratch, 'writer.log'));
    psql(sourceOwner(), 'CREATE TABLE orders_live (id bigint PRIMARY KEY)');
    writer.start();
    await writer.firstAckAbove(200, 30 * MS);
    await writer.stop();
    acknowledged = [...writer.acknowledged.keys()];
    const last = Math.max(...acknowledged);
    const members = (await standby.status())!;
    const leader = members.find((m) => m.role === 'standby_leader')!.name;
    for (const member of standby.members) {
      await waitFor(`${member.name} to replay id ${last}`, () => member.psql(`SELECT count(*) FROM orders_live WHERE id = ${last}`, 'shop') === '1', 30_000);
    }

    // Writes stopped on the source: the prop change, applied as the kubelet refreshes the ConfigMaps.
    const promotedAt = Date.now();
    const promoted = synthHa('orders-dr', 2, {});
    for (const member of standby.members) member.refreshConfigMaps(promoted.objects);
    const after = await waitForMembers(standby, 'the standby leader promoted', (all) => all.some((m) => m.name === leader && m.role === 'leader' && m.state === 'running'), 60_000);
    await waitFor('the promoted leader to be writable', () => standby.member(leader).psql('SELECT pg_is_in_recovery()') === 'f', 30_000);
    times.promotion = seconds(Date.now() - promotedAt);
    expect(after.find((m) => m.name !== leader)?.role).toBe('replica');
    expect(standby.member(leader).logSinceStart()).toMatch(/settings-agent \S+: dynamic configuration: changed standby_cluster \(removed\)/);
    const present = new Set(standby.member(leader).psql('SELECT id FROM orders_live', 'shop').split('\n').map(Number));
    console.log(`ha-standby-e2e: acknowledged ${acknowledged.length}, present ${present.size}`);
    expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    // It takes writes, and its replica follows the new timeline.
    psql({ port: standby.member(leader).pgPort, ...OWNER }, 'INSERT INTO orders_live VALUES (-1)');
    const replica = standby.members.find((m) => m.name !== leader)!;
    await waitFor('the replica to stream the promoted leader\'s writes', () => replica.psql('SELECT count(*) FROM orders_live WHERE id = -1', 'shop') === '1', 60_000);
  }, 180_000);
});
