import { existsSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { Client } from 'pg';
import { LocalInstance, SecretStore } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import {
  freePort, Login, psql, psqlResult, requirePostgres, resolveHostsWith, run, runIn, scratchDir, waitFor,
} from './support/postgres-bin';
import { PostgresStatefulCluster, PrimaryRecovery, SynchronousReplication } from '../../lib';
import { findObject } from '../support/synth';

const SECRETS: SecretStore = {
  'pf-superuser': { username: 'dbadmin', password: 'super-secret' },
  'pf-replication': { username: 'replicator', password: 'repl-secret' },
};
const NAME = 'pf-db';
const HEADLESS = `${NAME}-headless`;
const PODS = [`${NAME}-primary-0`, `${NAME}-replica-0`, `${NAME}-replica-1`];
/** Each pod its own loopback address, all on one port, as pods are on the cluster network: the headless Service resolves to all three. */
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

/** The objects of a three-instance plain cluster whose first replica confirms every commit. */
function clusterObjects(primaryRecovery?: PrimaryRecovery): any[] {
  const chart = new Chart(Testing.app(), 'e2e');
  new PostgresStatefulCluster(chart, 'db', {
    name: NAME,
    postgresVersion: DAEMONS.postgresMajor,
    instances: 3,
    superuserSecret: { secretName: 'pf-superuser' },
    replicationSecret: { secretName: 'pf-replication' },
    synchronousReplication: SynchronousReplication.first(1),
    resources: { memoryLimit: '512Mi' },
    settings: { maxConnections: 50 },
    ...(primaryRecovery ? { primaryRecovery } : {}),
  });
  return chart.toJson();
}

const figures: { [figure: string]: number | string } = {};
const seconds = (ms: number) => Math.round(ms / 10) / 100;

/**
 * The plain mode's safety on real PostgreSQL: bootstrap.sh and postgres from the rendered files,
 * each pod on its own loopback address with the pods' and the headless Service's names in a hosts
 * file. A primary whose volume is lost refuses initdb while its replicas hold the cluster; with
 * primaryRecovery it is rebuilt from the most advanced replica with every acknowledged commit; a
 * replica refuses data promoted by hand or of another cluster; a new cluster starts as before.
 */
describe(`plain mode: manual failover without two primaries, PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  const plain = clusterObjects();
  const recovering = clusterObjects(PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA);
  let scratch: string;
  let port: number;
  let instances: LocalInstance[];
  let primary: LocalInstance;
  let replicas: LocalInstance[];
  let acknowledged: number[] = [];

  const superuser = (instance: LocalInstance): Login => ({ port, user: 'dbadmin', password: 'super-secret', host: instance.socketDir });
  const sql = (instance: LocalInstance, query: string) => psql(superuser(instance), query);
  const streaming = () => sql(primary, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1")
    .split('\n').filter(Boolean);
  const systemIdentifier = (instance: LocalInstance) => sql(instance, 'SELECT system_identifier FROM pg_control_system()');

  /** A pod of `objects` on its own address; the same root keeps its volumes across renderings. */
  function pod(objects: any[], index: number): LocalInstance {
    const configMaps = Object.fromEntries(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data]));
    const statefulSet = findObject(objects, 'StatefulSet', index === 0 ? `${NAME}-primary` : `${NAME}-replica`);
    const instance = new LocalInstance(scratch, PODS[index], port, statefulSet, configMaps, port, SECRETS, true);
    const conf = join(instance.root, 'etc', 'postgresql.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^listen_addresses = .*$/m, `listen_addresses = '${ADDRESSES[index]}'`));
    return instance;
  }

  /** Runs a bootstrap expected to refuse; returns what it logged. */
  function refusedBootstrap(instance: LocalInstance): string {
    const { command, env } = instance.initContainer('bootstrap');
    const result = runIn(DAEMONS, command[0], command.slice(1), env);
    expect(result.status).not.toBe(0);
    return result.stderr;
  }

  /** SIGKILL of the postmaster and its children: a crashed pod. */
  function crash(instance: LocalInstance): void {
    const postmaster = readFileSync(join(instance.pgdata, 'postmaster.pid'), 'utf8').split('\n')[0].trim();
    const children = run('ps', ['-o', 'pid=', '--ppid', postmaster]).stdout.split('\n').map((pid) => pid.trim()).filter(Boolean);
    run('kill', ['-KILL', postmaster, ...children]);
  }

  beforeAll(async () => {
    requirePostgres();
    scratch = scratchDir('cdk8s-postgres-plain-failover-e2e');
    port = await freePort();
    const hosts = join(scratch, 'hosts');
    writeFileSync(hosts, `127.0.0.1 localhost\n${PODS.map((name, i) => `${ADDRESSES[i]} ${name}.${HEADLESS} ${HEADLESS}`).join('\n')}\n`, { mode: 0o644 });
    resolveHostsWith(hosts);
    instances = PODS.map((_, index) => pod(plain, index));
    [primary, ...replicas] = instances;
  }, 60_000);

  afterAll(() => {
    for (const instance of instances ?? []) instance.kill();
    resolveHostsWith(undefined);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
    console.log(`plain-mode failover figures: ${JSON.stringify(figures)}`);
  });

  test('a new cluster starts as before: the primary asks the pods, none answers, initdb runs; the replicas clone', async () => {
    const start = Date.now();
    const log = primary.bootstrap();
    figures['new primary bootstrap, s'] = seconds(Date.now() - start);
    // The replicas' pods exist but wait for the primary in their init container: nothing listens there.
    const asked = /asked the 3 pod addresses of pf-db-headless in (\d+) ms: 0 answer/.exec(log);
    expect(asked).not.toBeNull();
    figures['asking the 3 pods, ms'] = Number(asked![1]);
    expect(log).toContain('initializing a new cluster');
    await primary.start();
    for (const replica of replicas) {
      replica.bootstrap();
      await replica.start();
    }
    await waitFor('both replicas streaming', () => streaming().length === 2, 30_000);
    expect(streaming()).toEqual(['pf_db_replica_0', 'pf_db_replica_1']);
  }, 120_000);

  test('a lost primary volume: bootstrap refuses initdb and names the replicas; with primaryRecovery the primary is rebuilt '
    + 'from the most advanced replica with every acknowledged commit, on a new timeline, and both replicas follow it', async () => {
    sql(primary, 'CREATE TABLE acked (id integer PRIMARY KEY)');
    const writer = new Client({ host: primary.socketDir, port, user: 'dbadmin', password: 'super-secret', database: 'postgres' });
    writer.on('error', () => undefined);
    await writer.connect();
    // Commits wait for replica 0 (FIRST 1): each acknowledged one is on its disk.
    const writing = (async () => {
      for (let id = 1; ; id++) {
        try {
          await writer.query('INSERT INTO acked VALUES ($1)', [id]);
          acknowledged.push(id);
        } catch {
          return;
        }
      }
    })();
    await waitFor('writes to be acknowledged', () => acknowledged.length >= 300, 30_000);
    crash(primary);
    await writing;
    await writer.end().catch(() => undefined);
    figures['acknowledged commits before the crash'] = acknowledged.length;
    primary.wipeVolumes();
    const positions = replicas.map((replica) => sql(replica, 'SELECT pg_last_wal_receive_lsn()'));

    // (a) The default: refused, nothing initialized, the replicas and their cluster named.
    const identifier = systemIdentifier(replicas[0]);
    const refusal = refusedBootstrap(primary);
    console.log(`the primary's refusal:\n${refusal}`);
    expect(refusal).toContain('REFUSED to initialize: this primary\'s volume is empty, but PostgreSQL answers on other pods of the cluster');
    for (const [index, replica] of replicas.entries()) {
      expect(refusal).toContain(`${replica.podName} (${ADDRESSES[index + 1]}): system identifier ${identifier}, timeline 1, WAL position ${positions[index]}`);
    }
    expect(refusal).toContain('set primaryRecovery to PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA');
    expect(refusal).not.toContain('initializing a new cluster');
    expect(existsSync(join(primary.pgdata, 'PG_VERSION'))).toBe(false);

    // (b) primaryRecovery: rebuilt from the replica with the most WAL.
    const mostAdvanced = positions.map((position, index) => ({ position, pod: replicas[index].podName }))
      .sort((a, b) => Number(sql(replicas[0], `SELECT '${b.position}'::pg_lsn - '${a.position}'::pg_lsn`)))[0];
    primary = pod(recovering, 0);
    instances[0] = primary;
    let start = Date.now();
    const log = primary.bootstrap();
    figures['primary rebuild (bootstrap), s'] = seconds(Date.now() - start);
    console.log(`the primary's rebuild:\n${log}`);
    expect(log).toContain(`rebuilding the primary from ${mostAdvanced.pod}`);
    expect(log).toMatch(/primary rebuilt from .*: promoted onto timeline 2 with slots for pf_db_replica_0 pf_db_replica_1; .*Remove primaryRecovery/);
    expect(log).not.toContain('initializing a new cluster');
    start = Date.now();
    await primary.start();
    expect(sql(primary, 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(sql(primary, 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
    expect(systemIdentifier(primary)).toBe(identifier);
    const kept = sql(primary, `SELECT count(*) FROM acked WHERE id = ANY('{${acknowledged.join(',')}}'::int[])`);
    expect(Number(kept)).toBe(acknowledged.length);
    figures['acknowledged commits kept'] = Number(kept);
    // The replicas never restarted: their WAL receivers reconnect to the primary's address and follow the new timeline.
    await waitFor('both replicas streaming from the rebuilt primary', () => streaming().length === 2, 60_000);
    figures['rebuilt primary start to both replicas streaming, s'] = seconds(Date.now() - start);
    expect(streaming()).toEqual(['pf_db_replica_0', 'pf_db_replica_1']);
    for (const replica of replicas) {
      await waitFor(`${replica.podName} on timeline 2`, () => sql(replica, 'SELECT received_tli FROM pg_stat_wal_receiver') === '2', 30_000);
    }
    sql(primary, 'INSERT INTO acked VALUES (-1)');
    for (const replica of replicas) {
      await waitFor(`${replica.podName} to replay a write on the new timeline`, () => sql(replica, 'SELECT count(*) FROM acked WHERE id = -1') === '1');
    }
  }, 180_000);

  test('a replica promoted by hand, then restarted, refuses to start (also with standby.signal put back: its timeline is ahead); deleting its volume lets it re-clone', async () => {
    const promoted = replicas[1];
    sql(promoted, 'SELECT pg_promote()');
    await waitFor('the promoted replica to leave recovery', () => sql(promoted, 'SELECT pg_is_in_recovery()') === 'f');
    promoted.stop();
    const refusal = refusedBootstrap(promoted);
    console.log(`the promoted replica's refusal:\n${refusal}`);
    expect(refusal).toContain('REFUSED to start: ');
    expect(refusal).toContain('has no standby.signal, so this replica was promoted by hand');
    expect(refusal).toContain(`kubectl delete pvc --wait=false data-${promoted.podName} && kubectl delete pod ${promoted.podName}`);
    // standby.signal put back by hand does not hide it: its timeline is ahead of the primary's.
    run('touch', [join(promoted.pgdata, 'standby.signal')]);
    const ahead = refusedBootstrap(promoted);
    expect(ahead).toContain('REFUSED to start: this replica\'s data is on timeline 3, ahead of the primary\'s timeline 2');
    // The way out it names: a new volume, cloned from the primary.
    promoted.wipeVolumes();
    expect(promoted.bootstrap()).toContain('replica cloned');
    await promoted.start();
    expect(sql(promoted, 'SELECT pg_is_in_recovery()')).toBe('t');
    await waitFor('both replicas streaming again', () => streaming().length === 2, 30_000);
  }, 120_000);

  test('a replica restarted against a re-initialized primary refuses, naming both system identifiers', async () => {
    const identifier = systemIdentifier(primary);
    // With every replica down, the primary's empty volume cannot be told from a new cluster's.
    for (const replica of replicas) replica.stop();
    primary.kill();
    primary.wipeVolumes();
    primary = pod(plain, 0);
    instances[0] = primary;
    expect(primary.bootstrap()).toContain('initializing a new cluster');
    await primary.start();
    const other = systemIdentifier(primary);
    expect(other).not.toBe(identifier);
    const refusal = refusedBootstrap(replicas[0]);
    console.log(`the replica's refusal:\n${refusal}`);
    expect(refusal).toContain(`REFUSED to start: this replica holds the cluster with system identifier ${identifier}, while the primary at `
      + `${PODS[0]}.${HEADLESS} runs the cluster ${other}`);
    expect(refusal).toContain(`kubectl delete pvc --wait=false data-${PODS[0]} && kubectl delete pod ${PODS[0]}`);
    expect(psqlResult(superuser(replicas[0]), 'SELECT 1').status).not.toBe(0);
  }, 120_000);

  test('the way out it names: with primaryRecovery and the primary\'s volume deleted, the replicas start while it is down '
    + 'and it is rebuilt from them, every acknowledged commit back', async () => {
    primary.kill();
    primary.wipeVolumes();
    primary = pod(recovering, 0);
    instances[0] = primary;
    // Before any replica answers, the primary waits (its init container fails and is retried), never initdb.
    const waiting = refusedBootstrap(primary);
    expect(waiting).toContain('REFUSED to initialize: primaryRecovery is set and no replica answers at pf-db-headless yet');
    expect(existsSync(join(primary.pgdata, 'PG_VERSION'))).toBe(false);
    for (const replica of replicas) {
      expect(replica.bootstrap()).toContain(`the primary at ${PODS[0]}.${HEADLESS} does not answer`);
      await replica.start();
    }
    expect(primary.bootstrap()).toContain('promoted onto timeline 3');
    await primary.start();
    await waitFor('both replicas streaming from the rebuilt primary', () => streaming().length === 2, 60_000);
    const kept = sql(primary, `SELECT count(*) FROM acked WHERE id = ANY('{${acknowledged.join(',')}}'::int[])`);
    expect(Number(kept)).toBe(acknowledged.length);
    sql(primary, 'INSERT INTO acked VALUES (-2)');
    for (const replica of replicas) {
      await waitFor(`${replica.podName} to replay a write on timeline 3`, () => sql(replica, 'SELECT count(*) FROM acked WHERE id = -2') === '1');
    }
  }, 120_000);

  test('a replica that was ahead of the one the primary was rebuilt from refuses: its timeline forked off the primary\'s; '
    + 'one behind the fork follows it across a restart', async () => {
    const [behind, ahead] = replicas;
    // replica 0 stops streaming; replica 1 receives a commit it never gets (made without waiting for a standby), then stops.
    sql(behind, "ALTER SYSTEM SET primary_conninfo = ''");
    sql(behind, 'SELECT pg_reload_conf()');
    await waitFor('replica 0 to stop streaming', () => sql(behind, 'SELECT count(*) FROM pg_stat_wal_receiver') === '0');
    sql(primary, 'SET synchronous_commit = local; INSERT INTO acked VALUES (-3)');
    sql(primary, 'CHECKPOINT');
    await waitFor('replica 1 to replay it', () => sql(ahead, 'SELECT count(*) FROM acked WHERE id = -3') === '1');
    ahead.stop();
    crash(primary);
    primary.wipeVolumes();
    primary = pod(recovering, 0);
    instances[0] = primary;
    const rebuild = primary.bootstrap();
    expect(rebuild).toContain(`rebuilding the primary from ${behind.podName}`);
    expect(rebuild).toContain('promoted onto timeline 4');
    await primary.start();
    const refusal = refusedBootstrap(ahead);
    console.log(`the forked replica's refusal:\n${refusal}`);
    expect(refusal).toMatch(/REFUSED to start: this replica's data went past \S+ on timeline 3, while the primary's timeline 4 forked from it at \S+: the two histories differ/);
    // The replica the primary was rebuilt from, restarted, reads the new timeline's history and starts.
    behind.stop();
    const started = behind.bootstrap();
    expect(started).toMatch(/a copy of the primary's history \(timeline 4, /);
    await behind.start();
    await waitFor('replica 0 streaming from the rebuilt primary', () => streaming().includes('pf_db_replica_0'), 30_000);
  }, 120_000);
});
