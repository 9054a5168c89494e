/**
 * The plain mode's settings changes on real PostgreSQL (the worker's daemon set): a primary and
 * two replicas from the rendered files, each with its settings agent run as the pod runs it.
 * The Config ConfigMap is swapped as the kubelet does (a new directory, then an atomic rename of
 * the `..data` symlink): a reload-only change reaches every instance without a restart, a
 * postmaster change is left pending_restart and reported, pg_hba.conf changes apply and a broken
 * one keeps the old rules; scaling from 3 to 2 instances drops the removed replica's slot after
 * the grace period and keeps every other slot, and scaling back up clones a replica whose slot stays.
 */
import { ChildProcess } from 'child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { parse } from 'yaml';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { resolveEnv } from './support/environment';
import { giveToDaemonUser, psqlResult, requirePostgres, runIn, runOk, scratchDir, startDaemonIn, waitFor } from './support/postgres-bin';
import { CLUSTER_FILES, CLUSTER_PATHS, REPLICATION_GROUP } from '../../lib/cluster/cluster-layout';
import { PostgresStatefulClusterProps, VolumeRetention } from '../../lib/cluster/cluster-props';
import { SETTINGS_AGENT_CONTAINER, SETTINGS_AGENT_INTERVAL_SECONDS } from '../../lib/cluster/plain-settings-agent';
import { PostgresStatefulCluster } from '../../lib/cluster/postgres-stateful-cluster';
import { POSTGRES_EXPORTER_QUERIES } from '../../lib/exporter/exporter-kinds';
import { findObject } from '../support/synth';

const SECRETS: SecretStore = {
  'shop-db-superuser': { username: 'dbadmin', password: 'su-secret' },
  'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
  'shop-app': { username: 'shop_app', password: 'app-secret' },
};
/** The grace before a removed replica's slot is dropped, shortened from the rendered 60 s to keep the suite short. */
const GRACE_SECONDS = 20;
/** How long a change may take to reach every instance: a loop of the agent, the reload's 2 s, and slack for a loaded machine. */
const APPLY_MS = (SETTINGS_AGENT_INTERVAL_SECONDS + 10) * 1000;

/** The cluster's objects for these props over the base ones. */
function render(props: Partial<PostgresStatefulClusterProps>): any[] {
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'ShopDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 3,
    allowedCidrs: ['10.0.0.0/8'],
    volumeRetention: VolumeRetention.DELETE,
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-app' } }],
    ...props,
  });
  return chart.toJson();
}
const config = (objects: any[]) => findObject(objects, 'ConfigMap', 'shop-db-config').data;
const podTemplate = (objects: any[], role: 'primary' | 'replica') => findObject(objects, 'StatefulSet', `shop-db-${role}`).spec.template;

// In Kubernetes a replica streams from its pod address in 10.0.0.0/8; here it comes from 127.0.0.1.
const replicationLine = new RegExp(`^(host(?:ssl)?\\s+replication\\s+\\+${REPLICATION_GROUP}\\s+)10\\.0\\.0\\.0/8`, 'm');
const rewriteHba = (instance: LocalInstance, file: string, text: string) =>
  (file === CLUSTER_FILES.pgHbaConf ? instance.localize(text).replace(replicationLine, '$1127.0.0.1/32') : undefined);

describe(`the plain mode's settings agent on PostgreSQL ${DAEMONS.postgresMajor} (${DAEMONS.name} daemons): reloads, pending_restart, slot cleanup`, () => {
  let scratch: string;
  let instances: LocalInstance[];
  const agents = new Map<LocalInstance, ChildProcess>();
  let version = 0;
  const timings: string[] = [];

  const asSuperuser = (instance: LocalInstance, sql: string) =>
    runOk('psql', ['--no-psqlrc', '--tuples-only', '--no-align', '--set=ON_ERROR_STOP=1', `--host=${instance.socketDir}`, `--port=${instance.port}`,
      '--username=dbadmin', '--dbname=postgres', '--command', sql], { PGPASSWORD: 'su-secret' }).trim();
  const agentLog = (instance: LocalInstance) => readFileSync(`${instance.root}-${SETTINGS_AGENT_CONTAINER}.log`, 'utf8');
  const startTimes = () => instances.map((instance) => asSuperuser(instance, 'SELECT pg_postmaster_start_time()'));
  const slots = (primary: LocalInstance) => asSuperuser(primary, "SELECT slot_name || ':' || CASE WHEN active THEN 't' ELSE 'f' END FROM pg_replication_slots ORDER BY 1").split('\n');

  /** The Config ConfigMap's directory as the kubelet lays it out: files are symlinks through `..data` to a versioned directory. */
  function kubeletLayout(instance: LocalInstance): void {
    const dir = instance.localize(CLUSTER_PATHS.configDir);
    const files = readdirSync(dir);
    mkdirSync(join(dir, '..v0'));
    for (const file of files) renameSync(join(dir, file), join(dir, '..v0', file));
    symlinkSync('..v0', join(dir, '..data'));
    for (const file of files) symlinkSync(join('..data', file), join(dir, file));
    giveToDaemonUser(dir);
  }

  /** The kubelet's update of the ConfigMap volume: every file in a new directory, then `..data` renamed onto it at once. */
  function swapConfig(instance: LocalInstance, objects: any[]): void {
    const dir = instance.localize(CLUSTER_PATHS.configDir);
    const next = `..v${++version}`;
    mkdirSync(join(dir, next));
    for (const [file, text] of Object.entries<string>(config(objects))) {
      writeFileSync(join(dir, next, file), instance.localConfigFile(file, text), { mode: 0o444 });
      if (!existsSync(join(dir, file))) symlinkSync(join('..data', file), join(dir, file));
    }
    giveToDaemonUser(join(dir, next));
    symlinkSync(next, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  }

  /** The sidecar's command and environment as rendered, paths localized; the port is the instance's and the grace shortened. */
  function startAgent(instance: LocalInstance, objects: any[], role: 'primary' | 'replica'): void {
    const container = podTemplate(objects, role).spec.containers.find((c: any) => c.name === SETTINGS_AGENT_CONTAINER);
    const localize = (value: string) => instance.localize(value);
    const env = { ...resolveEnv(container, SECRETS, [], localize), PGPORT: String(instance.port), SLOT_DROP_GRACE_SECONDS: String(GRACE_SECONDS) };
    const command = container.command.map(localize);
    agents.set(instance, startDaemonIn(DAEMONS, command[0], command.slice(1), `${instance.root}-${SETTINGS_AGENT_CONTAINER}.log`, env));
  }
  function stopAgent(instance: LocalInstance): void {
    const agent = agents.get(instance);
    if (agent?.pid !== undefined && agent.exitCode === null) runIn(DAEMONS, 'kill', ['-KILL', String(agent.pid)]);
    agents.delete(instance);
  }

  /** Waits until check passes, polling every 200 ms; returns the seconds it took. */
  async function seconds(what: string, check: () => boolean, timeoutMs = APPLY_MS): Promise<number> {
    return (await waitFor(what, check, timeoutMs)) / 1000;
  }

  const base = render({});
  let current = base;

  beforeAll(async () => {
    requirePostgres();
    scratch = scratchDir('cdk8s-postgres-plain-settings-e2e');
    instances = await localCluster(base, 'shop-db', scratch, SECRETS, false, rewriteHba);
    instances.forEach(kubeletLayout);
    await bootCluster(instances);
    instances.forEach((instance, index) => startAgent(instance, base, index === 0 ? 'primary' : 'replica'));
    const [primary] = instances;
    await waitFor('both replicas to stream', () => slots(primary).join(' ') === 'shop_db_replica_0:t shop_db_replica_1:t', 30_000);
    // A slot of another tool (pgBackRest's, a user's), inactive: the agent never touches it.
    asSuperuser(primary, "SELECT pg_create_physical_replication_slot('backup_tool')");
    await waitFor('every agent\'s first reload', () => instances.every((instance) => agentLog(instance).includes('reloaded at start')), APPLY_MS);
  }, 90_000);

  afterAll(() => {
    for (const instance of instances ?? []) {
      stopAgent(instance);
      instance.kill();
    }
    console.log(`plain-mode settings (${DAEMONS.name}):\n  ${timings.join('\n  ')}`);
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('a reload-only change (work_mem) reaches every instance without a restart, and keeps the pod templates', async () => {
    const next = render({ settings: { workMem: '6MB' } });
    expect(podTemplate(next, 'primary')).toEqual(podTemplate(current, 'primary'));
    expect(podTemplate(next, 'replica')).toEqual(podTemplate(current, 'replica'));
    const started = startTimes();
    current = next;
    instances.forEach((instance) => swapConfig(instance, next));
    const took = await seconds('work_mem 6MB on every instance', () => instances.every((instance) => asSuperuser(instance, 'SHOW work_mem') === '6MB'));
    timings.push(`reload-only change on 3 instances: ${took.toFixed(1)} s`);
    expect(startTimes()).toEqual(started);
    await waitFor('the agents to log it', () => instances.every((instance) => agentLog(instance).includes('work_mem changed: applied, now 6144kB')), APPLY_MS);
  }, 60_000);

  test('a postmaster change (shared_buffers) is left pending_restart: the agent logs it, the metric\'s query counts it, the templates change', async () => {
    const next = render({ settings: { workMem: '6MB', sharedBuffers: '64MB' } });
    expect(podTemplate(next, 'primary').metadata.annotations['checksum/config']).not.toBe(podTemplate(current, 'primary').metadata.annotations['checksum/config']);
    expect(podTemplate(next, 'replica').metadata.annotations['checksum/config']).not.toBe(podTemplate(current, 'replica').metadata.annotations['checksum/config']);
    const started = startTimes();
    current = next;
    instances.forEach((instance) => swapConfig(instance, next));
    const took = await seconds('every agent to report shared_buffers pending_restart',
      () => instances.every((instance) => agentLog(instance).includes('shared_buffers changed: pending_restart')));
    timings.push(`postmaster change reported pending_restart by 3 agents: ${took.toFixed(1)} s`);
    const query = parse(POSTGRES_EXPORTER_QUERIES).pg_settings_pending_restart.query;
    for (const instance of instances) {
      expect(asSuperuser(instance, query)).toBe('1');
      expect(agentLog(instance)).toMatch(/pending_restart: shared_buffers; a restart of the pod applies them/);
    }
    expect(startTimes()).toEqual(started);
  }, 60_000);

  test('pg_hba.conf: a new rule applies at once; a broken file is refused and the old rules stay', async () => {
    const [primary] = instances;
    const app = { port: primary.port, user: 'shop_app', password: 'app-secret', database: 'shop' };
    expect(psqlResult(app, 'SELECT 1').stderr).toContain('no pg_hba.conf entry for host "127.0.0.1", user "shop_app", database "shop"');
    const next = render({ settings: { workMem: '6MB', sharedBuffers: '64MB' }, allowedCidrs: ['10.0.0.0/8', '127.0.0.1/32'] });
    expect(podTemplate(next, 'primary')).toEqual(podTemplate(current, 'primary'));
    current = next;
    instances.forEach((instance) => swapConfig(instance, next));
    const took = await seconds('shop_app admitted over loopback TCP', () => psqlResult(app, 'SELECT current_user').stdout.trim() === 'shop_app');
    timings.push(`pg_hba.conf rule applied on the primary: ${took.toFixed(1)} s`);

    const broken = { ...config(next), [CLUSTER_FILES.pgHbaConf]: `${config(next)[CLUSTER_FILES.pgHbaConf]}host all all 10.0.0.0/99 scram-sha-256\n` };
    swapConfig(primary, [{ ...findObject(next, 'ConfigMap', 'shop-db-config'), data: broken }]);
    await seconds('the agent to report the broken line', () => /pg_hba\.conf line \d+: .*the file was not loaded, PostgreSQL keeps the previous rules/.test(agentLog(primary)));
    expect(psqlResult(app, 'SELECT current_user').stdout.trim()).toBe('shop_app');
    swapConfig(primary, next);
  }, 60_000);

  test('scale down to 2: the removed replica\'s slot is dropped after the grace period, the others kept', async () => {
    const [primary, replica0, replica1] = instances;
    const next = render({ settings: { workMem: '6MB', sharedBuffers: '64MB' }, allowedCidrs: ['10.0.0.0/8', '127.0.0.1/32'], instances: 2 });
    expect(podTemplate(next, 'primary')).toEqual(podTemplate(current, 'primary'));
    current = next;
    // The StatefulSet controller stops the highest ordinal; with volumeRetention DELETE its claims go too.
    stopAgent(replica1);
    replica1.stop();
    replica1.wipeVolumes();
    const stopped = Date.now();
    [primary, replica0].forEach((instance) => swapConfig(instance, next));
    await new Promise((resolve) => setTimeout(resolve, (GRACE_SECONDS / 2) * 1000));
    expect(slots(primary)).toContain('shop_db_replica_1:f');
    const took = await seconds('the removed replica\'s slot dropped', () => !slots(primary).some((slot) => slot.startsWith('shop_db_replica_1:')),
      (GRACE_SECONDS + 2 * SETTINGS_AGENT_INTERVAL_SECONDS + 10) * 1000);
    const total = (Date.now() - stopped) / 1000;
    timings.push(`scale down: slot dropped ${total.toFixed(1)} s after the replica stopped (grace ${GRACE_SECONDS} s, waited ${took.toFixed(1)} s past half of it)`);
    expect(total).toBeGreaterThanOrEqual(GRACE_SECONDS);
    expect(slots(primary)).toEqual(['backup_tool:f', 'shop_db_replica_0:t']);
    expect(agentLog(primary)).toMatch(/dropped slot shop_db_replica_1, inactive and no current replica's for \d+s/);
  }, 60_000);

  test('scale back up to 3: the new replica clones, streams, and keeps its slot', async () => {
    const [primary, replica0, replica1] = instances;
    const next = render({ settings: { workMem: '6MB', sharedBuffers: '64MB' }, allowedCidrs: ['10.0.0.0/8', '127.0.0.1/32'] });
    current = next;
    // The new pod mounts the new ConfigMap; the primary's copy lags behind, as the kubelet's may.
    swapConfig(replica1, next);
    const start = Date.now();
    expect(replica1.bootstrap()).toContain('replica cloned');
    await replica1.start();
    startAgent(replica1, next, 'replica');
    const took = await seconds('the new replica to stream', () => slots(primary).includes('shop_db_replica_1:t'), 30_000);
    timings.push(`scale up: replica cloned and streaming ${((Date.now() - start) / 1000).toFixed(1)} s after its bootstrap began (${took.toFixed(1)} s to stream)`);
    [primary, replica0].forEach((instance) => swapConfig(instance, next));
    // Two loops of the primary's agent with the new slot wanted and active: nothing to drop.
    await new Promise((resolve) => setTimeout(resolve, 2 * SETTINGS_AGENT_INTERVAL_SECONDS * 1000));
    expect(slots(primary)).toEqual(['backup_tool:f', 'shop_db_replica_0:t', 'shop_db_replica_1:t']);
    expect(agentLog(primary).split('\n').filter((line) => line.includes('dropped slot'))).toHaveLength(1);
    asSuperuser(primary, 'CREATE TABLE scaled_up AS SELECT 1 AS one');
    await waitFor('the row on the new replica', () => asSuperuser(replica1, "SELECT count(*) FROM pg_class WHERE relname = 'scaled_up'") === '1', 15_000);
  }, 60_000);
});
