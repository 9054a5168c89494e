import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Testing, Yaml } from 'cdk8s';
import { DEV, OrdersStackChart, PROD } from '../examples/team-overlays';
import {
  Acknowledgement, ChangeImpact, ChangeImpactReport, ClusterMode, ComponentImpact, PostgresStatefulCluster, PostgresStatefulClusterProps,
  RestartOrder, SettingAction, StackOverlay,
} from '../lib';
import { classifySettingChange } from '../lib/testing/change-impact/classify-setting';
import { parsePostgresqlConf } from '../lib/testing/change-impact/settings-diff';
import { PostgresTesting } from '../lib/testing/testing';

const yamlOf = (chart: Chart): string => Yaml.stringify(...PostgresTesting.synth(chart));
/** The orders stack (examples/team-overlays.ts), same chart id and namespace, with these overlays. */
const orders = (...overlays: StackOverlay[]): string => yamlOf(new OrdersStackChart(Testing.app(), 'orders', { namespace: 'orders', overlays }));
const DEV_YAML = orders(DEV);

function clusterYaml(props: Partial<PostgresStatefulClusterProps>): string {
  const chart = new Chart(Testing.app(), 'ledger', { namespace: 'ledger' });
  new PostgresStatefulCluster(chart, 'LedgerDb', {
    instances: 3, superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, storage: { size: '10Gi' }, ...props,
  });
  return yamlOf(chart);
}

const component = (report: ChangeImpactReport, prefix: string): ComponentImpact => {
  const found = report.components.find((c) => c.component.startsWith(prefix));
  if (!found) throw new Error(`no component ${prefix} in ${report.components.map((c) => c.component).join(', ')}`);
  return found;
};

describe('classifySettingChange', () => {
  test('by context: reload, restart, raised/lowered standby minimums, preset; the HA mode\'s settings agent', () => {
    expect(classifySettingChange('work_mem', '4MB', '8MB', ClusterMode.PLAIN).action).toBe(SettingAction.RELOAD);
    expect(classifySettingChange('log_min_duration_statement', undefined, '1s', ClusterMode.PLAIN).action).toBe(SettingAction.RELOAD);
    expect(classifySettingChange('shared_buffers', '128MB', '1GB', ClusterMode.PLAIN)).toMatchObject({ action: SettingAction.RESTART, order: RestartOrder.ANY });
    expect(classifySettingChange('max_connections', '100', '200', ClusterMode.PLAIN).order).toBe(RestartOrder.PRIMARY_LAST);
    expect(classifySettingChange('MAX_WAL_SENDERS', '10', '5', ClusterMode.HIGH_AVAILABILITY).order).toBe(RestartOrder.PRIMARY_FIRST);
    expect(classifySettingChange('max_prepared_transactions', undefined, '10', ClusterMode.PLAIN).order).toBe(RestartOrder.PRIMARY_LAST);
    expect(classifySettingChange('block_size', '8192', '4096', ClusterMode.PLAIN).action).toBe(SettingAction.CANNOT_CHANGE);
    expect(classifySettingChange('no_such_thing', '1', '2', ClusterMode.PLAIN).action).toBe(SettingAction.UNKNOWN_PARAMETER);
    expect(classifySettingChange('max_connections', '100', '200', ClusterMode.HIGH_AVAILABILITY)).toMatchObject({
      action: SettingAction.RESTART, order: RestartOrder.PRIMARY_LAST,
      note: 'needs a restart of every member: the settings agent restarts them one at a time, replicas first, '
        + 'then switches over to one of them and the old leader restarts as a replica',
    });
    expect(classifySettingChange('max_connections', '200', '100', ClusterMode.HIGH_AVAILABILITY).note).toContain('then the leader in place');
    expect(classifySettingChange('work_mem', '4MB', '8MB', ClusterMode.HIGH_AVAILABILITY).note).toBe('a reload applies it (user): the settings agent reloads every member');
  });

  test('postgresql.conf: quotes, comments and include lines', () => {
    expect(parsePostgresqlConf("# c\nwork_mem = '8MB' # x\nport=5433\ninclude 'other.conf'\nsearch_path = '\"$user\", public'\n")).toEqual({
      work_mem: '8MB', port: '5433', search_path: '"$user", public',
    });
  });
});

describe('ChangeImpact on the examples\' overlays', () => {
  test('dev to prod: instances, resources, storage', () => {
    const report = ChangeImpact.compare(DEV_YAML, orders(PROD));
    const db = component(report, 'orders-db (postgresql)');
    expect(db.mode).toBe(ClusterMode.PLAIN);
    expect(db.added).toEqual(expect.arrayContaining(['StatefulSet/orders-db-replica', 'Service/orders-db-ro', 'PodDisruptionBudget/orders-db']));
    expect(db.restarts[0]).toMatchObject({ workload: 'StatefulSet/orders-db-primary', pods: ['orders-db-primary-0'], flags: ['primary restart'] });
    expect(db.storage).toEqual([
      expect.objectContaining({ claim: 'data', before: '5Gi', after: '200Gi', note: expect.stringContaining('growth') }),
      expect.objectContaining({ claim: 'wal', after: '50Gi' }),
    ]);
    expect(db.settings.find((s) => s.parameter === 'shared_buffers')?.action).toBe(SettingAction.RESTART);
    const gates = report.findings.map((f) => f.gate);
    expect(gates).toEqual(expect.arrayContaining([Acknowledgement.REFUSED_APPLY, Acknowledgement.PRIMARY_RESTART]));
    expect(report.exitCode).toBe(4);
    expect(ChangeImpact.compare(DEV_YAML, orders(PROD), { allow: [Acknowledgement.REFUSED_APPLY] }).exitCode).toBe(3);
    const allow = [Acknowledgement.REFUSED_APPLY, Acknowledgement.PRIMARY_RESTART];
    expect(ChangeImpact.compare(DEV_YAML, orders(PROD), { allow }).exitCode).toBe(0);
    expect(report.markdown).toMatch(/^## Change impact\n\nexit code 4/);
    expect(report.markdown).toContain('| orders-db (postgresql) in orders | 3 | 0 | 7 | 1 | 4 | refused-apply, primary-restart |');
    expect(JSON.parse(report.json).exitCode).toBe(4);
  });

  test('a pool size change: the pooler\'s ConfigMap and pods only, no database restart', () => {
    const report = ChangeImpact.compare(DEV_YAML, orders(DEV, { pooler: { defaultPoolSize: 6 } }));
    expect(report.components.map((c) => c.component)).toEqual(['orders-pgbouncer (pgbouncer) in orders']);
    const pooler = report.components[0];
    expect(pooler.changed).toEqual([
      { objectRef: 'ConfigMap/orders-pgbouncer-config', paths: ['data.pgbouncer.ini'] },
      { objectRef: 'Deployment/orders-pgbouncer', paths: ['spec.template'] },
    ]);
    expect(pooler.restarts).toEqual([expect.objectContaining({ workload: 'Deployment/orders-pgbouncer', flags: [] })]);
    expect(report.exitCode).toBe(0);
  });

  test('a sighup setting: a reload, which the settings agent applies; no pod rolls', () => {
    const report = ChangeImpact.compare(DEV_YAML, orders(DEV, { cluster: { settings: { workMem: '16MB' } } }));
    const db = component(report, 'orders-db (postgresql)');
    expect(db.settings).toEqual([expect.objectContaining({ parameter: 'work_mem', newValue: '16MB', action: SettingAction.RELOAD })]);
    expect(db.restarts).toEqual([]);
    expect(report.exitCode).toBe(0);
  });

  test('a postmaster setting, and max_connections raised: restart, primary last', () => {
    const report = ChangeImpact.compare(DEV_YAML, orders(DEV, { cluster: { settings: { maxConnections: 150 }, extraParameters: { max_locks_per_transaction: '128' } } }));
    const db = component(report, 'orders-db (postgresql)');
    expect(db.settings.find((s) => s.parameter === 'max_connections')).toMatchObject({ action: SettingAction.RESTART, order: RestartOrder.PRIMARY_LAST });
    expect(db.settings.find((s) => s.parameter === 'max_locks_per_transaction')).toMatchObject({ action: SettingAction.RESTART });
    expect([db.maxConnectionsBefore, db.maxConnectionsAfter]).toEqual([100, 150]);
  });

  test('a storage change: refused apply through volumeClaimTemplates, with the resize advice', () => {
    const report = ChangeImpact.compare(DEV_YAML, orders(DEV, { cluster: { storage: { size: '10Gi' } } }));
    const refused = report.findings.find((f) => f.gate === Acknowledgement.REFUSED_APPLY)!;
    expect(refused).toMatchObject({ objectRef: 'StatefulSet/orders-db-primary', message: expect.stringContaining('spec.volumeClaimTemplates') });
    expect(refused.fix).toContain('kubectl delete sts orders-db-primary --cascade=orphan');
    expect(refused.fix).toContain('resize each PVC');
    expect(report.exitCode).toBe(4);
    const shrink = ChangeImpact.compare(DEV_YAML, orders(DEV, { cluster: { storage: { size: '1Gi' } } }));
    expect(component(shrink, 'orders-db (postgresql)').storage[0].note).toMatch(/^shrink/);
  });

  test('an instances change: the replica StatefulSet scales, a new slot, no primary restart', () => {
    const before = orders(DEV, { cluster: { instances: 2 } });
    const report = ChangeImpact.compare(before, orders(DEV, { cluster: { instances: 3 } }));
    const db = component(report, 'orders-db (postgresql)');
    expect(db.findings.map((f) => f.message)).toContain(
      '1 -> 2 pods; new orders-db-replica-1: each clones from the primary through a new replication slot named after the pod');
    expect(db.restarts.filter((r) => r.flags.includes('primary restart'))).toEqual([]);
  });

  test('an image bump: every pod rolls, the primary restarts', () => {
    const report = ChangeImpact.compare(clusterYaml({ image: 'postgres:15.14-bookworm' }), clusterYaml({ image: 'postgres:15.15-bookworm' }));
    const db = component(report, 'ledger-db (postgresql)');
    expect(db.restarts.map((r) => [r.workload, r.pods, r.flags])).toEqual([
      ['StatefulSet/ledger-db-primary', ['ledger-db-primary-0'], ['primary restart']],
      ['StatefulSet/ledger-db-replica', ['ledger-db-replica-1', 'ledger-db-replica-0'], []],
    ]);
    expect(db.restarts[1].order).toContain('kubectl apply rolls the primary and replica StatefulSets at the same time');
    expect(report.exitCode).toBe(3);
  });

  test('HA mode: a settings change rolls no pod (the settings agent applies it, once); an image change rolls the members, highest ordinal first', () => {
    const ha = { highAvailability: {} };
    const report = ChangeImpact.compare(clusterYaml({ ...ha }), clusterYaml({ ...ha, settings: { maxConnections: 200 } }));
    const db = component(report, 'ledger-db (postgresql)');
    expect(db.mode).toBe(ClusterMode.HIGH_AVAILABILITY);
    expect(db.restarts).toEqual([]);
    expect(db.settings).toEqual([expect.objectContaining({ parameter: 'max_connections', action: SettingAction.RESTART, order: RestartOrder.PRIMARY_LAST })]);
    const image = ChangeImpact.compare(clusterYaml({ ...ha, image: 'postgres:15.14-bookworm' }), clusterYaml({ ...ha, image: 'postgres:15.15-bookworm' }));
    expect(component(image, 'ledger-db (postgresql)').restarts[0]).toMatchObject({
      pods: ['ledger-db-2', 'ledger-db-1', 'ledger-db-0'], flags: ['may restart the leader; switch over first'],
    });
  });

  test('highAvailability turned on or off by an overlay: the members move to new StatefulSets and claims, exit code 5 until acknowledged', () => {
    const plain = orders(PROD);
    const ha = orders(PROD, { cluster: { highAvailability: {} } });
    const on = ChangeImpact.compare(plain, ha);
    expect(on.exitCode).toBe(5);
    const topology = (report: ChangeImpactReport) => component(report, 'orders-db (postgresql)').findings.filter((f) => f.gate === Acknowledgement.TOPOLOGY_CHANGE);
    expect(topology(on)).toEqual([expect.objectContaining({ category: 'topology', objectRef: 'StatefulSet/orders-db' })]);
    expect(topology(on)[0].message).toBe('highAvailability turned on: the members move from StatefulSet/orders-db-primary and '
      + 'StatefulSet/orders-db-replica to StatefulSet/orders-db, whose pods start on new claims (data-orders-db-*, wal-orders-db-*) with an empty '
      + 'cluster (initdb, or a restore with backup.restore); the data stays on data-orders-db-primary-*, wal-orders-db-primary-*, '
      + 'data-orders-db-replica-*, wal-orders-db-replica-*, and the old pods keep running until their StatefulSets are deleted or pruned');
    expect(topology(on)[0].fix).toMatch(/^not an in-place change: .*delete the old StatefulSets and ConfigMap\/orders-db-config \(the plain mode's, whose name Patroni's/);
    expect(on.markdown).toContain('exit code 5: **topology-change** not acknowledged (--allow topology-change)');
    // The members are a new cluster: no settings diff between postgresql.conf and patroni.yml.
    expect(component(on, 'orders-db (postgresql)')).toMatchObject({ settings: [], maxConnectionsBefore: undefined, maxConnectionsAfter: undefined });
    // The Patroni API Secret is new too: acknowledging the topology leaves that gate.
    expect(ChangeImpact.compare(plain, ha, { allow: [Acknowledgement.TOPOLOGY_CHANGE] }).exitCode).toBe(2);
    const off = ChangeImpact.compare(ha, plain);
    expect(topology(off)[0].message).toMatch(/^highAvailability turned off: the members move from StatefulSet\/orders-db to StatefulSet\/orders-db-primary and StatefulSet\/orders-db-replica, /);
    expect(topology(off)[0].fix).toContain('ConfigMap/orders-db-config (Patroni\'s, whose initialize key would keep a later HA cluster from bootstrapping)');
    expect(ChangeImpact.compare(ha, plain, { allow: [Acknowledgement.TOPOLOGY_CHANGE] }).exitCode).toBe(0);
    // Within one mode there is no topology finding, whatever else changes.
    expect(topology(ChangeImpact.compare(ha, orders(PROD, { cluster: { highAvailability: {}, instances: 4 } })))).toEqual([]);
    expect(topology(ChangeImpact.compare(DEV_YAML, plain))).toEqual([]);
  });

  test('new Secrets and immutable selectors are reported; nothing changed is exit code 0', () => {
    expect(ChangeImpact.compare(DEV_YAML, DEV_YAML)).toMatchObject({ exitCode: 0, components: [] });
    const report = ChangeImpact.compare(clusterYaml({}), clusterYaml({ superuserSecret: { secretName: 'su-2' } }));
    expect(report.findings.find((f) => f.gate === Acknowledgement.NEW_SECRETS)).toMatchObject({
      objectRef: 'Secret/su-2', fix: 'create Secret su-2 in namespace ledger before applying, or the pods do not start',
    });
  });
});

describe('the cdk8s-postgres-impact bin', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'impact-'));
  const write = (name: string, text: string) => {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    fs.writeFileSync(path.join(dir, name, 'orders.k8s.yaml'), text);
    return path.join(dir, name);
  };
  const before = write('before', DEV_YAML);
  const after = write('after', orders(DEV, { cluster: { settings: { maxConnections: 150 } } }));
  const run = (...args: string[]) => spawnSync(process.execPath, [require.resolve('ts-node/dist/bin'), '--transpile-only',
    path.join(__dirname, '..', 'lib', 'testing', 'change-impact', 'cli.ts'), ...args], { encoding: 'utf8' });

  test('exit codes, --allow, --json, --output and bad arguments', () => {
    const gated = run('--before', before, '--after', after);
    expect(gated.status).toBe(3);
    expect(gated.stdout).toContain('**primary restart**');
    const allowed = run('--before', before, '--after', after, '--allow', 'primary-restart', '--json', '--output', path.join(dir, 'r.json'));
    expect(allowed.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'r.json'), 'utf8')).exitCode).toBe(0);
    const bad = run('--before', before, '--after', after, '--allow', 'everything');
    expect([bad.status, bad.stderr.trim()]).toEqual([1,
      'cdk8s-postgres-impact: --allow "everything" is not a finding to acknowledge; use topology-change, refused-apply, primary-restart, new-secrets']);
    expect(run('--after', after).stderr).toMatch(/^cdk8s-postgres-impact: --before is missing/);
  });
});
