import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { Testing } from 'cdk8s';
import { AirflowStackChart } from '../examples/airflow-stack';
import { BackedUpClusterChart } from '../examples/backed-up-cluster';
import { HealthStatus, StatusCheck } from '../lib';
import { main, parseStatusArguments } from '../lib/status/cli';
import { balancerFindings, clusterFindings, poolerFindings, Thresholds } from '../lib/status/evaluate';
import { ExpectedCluster, expectedStack } from '../lib/status/expected-stack';
import { InstanceState, PoolNodeRow, parseEndpoint } from '../lib/status/probes';
import { statusTargets } from '../lib/status/status-check';
import { exitCodeOf, worstStatus } from '../lib/status/status-render';

const THRESHOLDS: Thresholds = { maxLagBytes: 16 * 1024 * 1024, maxLagSeconds: 30, maxArchiveReady: 16, maxPoolWaitSeconds: 5 };
const airflow = Testing.synth(new AirflowStackChart(Testing.app(), 'airflow'));
const airflowYaml = airflow.map((o) => JSON.stringify(o)).join('\n---\n');

const primaryState = (overrides: Partial<InstanceState> = {}): InstanceState => ({
  inRecovery: false,
  replication: [
    { applicationName: 'airflow_db_replica_0', state: 'streaming', lagBytes: 0, lagSeconds: null },
    { applicationName: 'airflow_db_replica_1', state: 'streaming', lagBytes: 0, lagSeconds: null },
  ],
  slots: [{ name: 'airflow_db_replica_0', active: true, walStatus: 'reserved', retainedBytes: 0 }, { name: 'airflow_db_replica_1', active: true, walStatus: 'reserved', retainedBytes: 0 }],
  pendingRestart: [],
  archiver: { mode: 'off', archivedCount: 0, failedCount: 0, lastArchivedWal: null, lastFailedWal: null, lastArchivedTime: null, lastFailedTime: null, ready: { value: 0 } },
  ...overrides,
});
const replicaState = (overrides: Partial<InstanceState> = {}): InstanceState => ({
  ...primaryState(), inRecovery: true, replication: [], slots: [], replay: { lagBytes: 0, lagSeconds: 0, paused: false, receiver: 'streaming' }, ...overrides,
});

function airflowCluster(): ExpectedCluster {
  return expectedStack(airflow).clusters[0];
}

function evaluate(states: { [pod: string]: InstanceState }, cluster = airflowCluster()) {
  const findings = clusterFindings(cluster, {
    instances: Object.fromEntries(Object.entries(states).map(([pod, state]) => [pod, { value: state }])), services: {}, metrics: {},
  }, THRESHOLDS);
  return { findings, find: (target: string, check: string) => findings.find((f) => f.target === target && f.check === check) };
}

describe('what the manifests say should run', () => {
  test('the Airflow example: a plain cluster of three with Services and exporters, a pooler and a balancer', () => {
    const stack = expectedStack(airflow);
    expect(stack.clusters).toEqual([{
      name: 'airflow-db', highAvailability: false, backups: false,
      instances: [
        { pod: 'airflow-db-primary-0', role: 'primary', exporter: true },
        { pod: 'airflow-db-replica-0', role: 'replica', exporter: true },
        { pod: 'airflow-db-replica-1', role: 'replica', exporter: true },
      ],
      services: [{ name: 'airflow-db-rw', role: 'primary' }, { name: 'airflow-db-ro', role: 'replica' }],
    }]);
    expect(stack.proxies).toEqual([
      { name: 'airflow-pgbouncer', kind: 'pooler', exporter: true },
      { name: 'airflow-pgpool', kind: 'balancer', exporter: true },
    ]);
    expect(statusTargets(stack)).toEqual([
      'pod/airflow-db-primary-0', 'pod/airflow-db-primary-0:metrics', 'pod/airflow-db-replica-0', 'pod/airflow-db-replica-0:metrics',
      'pod/airflow-db-replica-1', 'pod/airflow-db-replica-1:metrics', 'service/airflow-db-rw', 'service/airflow-db-ro',
      'service/airflow-pgbouncer', 'service/airflow-pgbouncer:metrics', 'service/airflow-pgpool', 'service/airflow-pgpool:metrics',
    ]);
  });

  test('an HA cluster with backups: any member may lead, and archiving must be on', () => {
    const [cluster] = expectedStack(Testing.synth(new BackedUpClusterChart(Testing.app(), 'billing'))).clusters;
    expect(cluster).toMatchObject({ name: 'billing-db', highAvailability: true, backups: true });
    expect(cluster.instances.map((i) => [i.pod, i.role])).toEqual([['billing-db-0', 'any'], ['billing-db-1', 'any'], ['billing-db-2', 'any']]);
  });
});

describe('evaluation of what the probes read', () => {
  const healthy = { 'airflow-db-primary-0': primaryState(), 'airflow-db-replica-0': replicaState(), 'airflow-db-replica-1': replicaState() };

  test('a healthy cluster: every check is ok', () => {
    const { findings } = evaluate(healthy);
    expect(findings.filter((f) => f.status !== HealthStatus.OK && f.status !== HealthStatus.SKIPPED)).toEqual([]);
    expect(worstStatus(findings)).toBe(HealthStatus.OK);
  });

  test('a replica promoted by hand: two primaries, and a role the plain mode does not allow', () => {
    const { find } = evaluate({ ...healthy, 'airflow-db-replica-1': primaryState({ replication: [] }) });
    expect(find('airflow-db', 'primary')).toMatchObject({ status: 'critical', message: '2 primaries: airflow-db-primary-0, airflow-db-replica-1' });
    expect(find('pod/airflow-db-replica-1', 'role')).toMatchObject({ status: 'critical', message: expect.stringMatching(/^primary, expected replica: /) });
  });

  test('no primary among the instances that answered', () => {
    const { find } = evaluate({ 'airflow-db-primary-0': replicaState(), 'airflow-db-replica-0': replicaState() });
    expect(find('airflow-db', 'primary')).toMatchObject({ status: 'critical', message: 'no primary among the 2 instance(s) that answered' });
    expect(find('pod/airflow-db-replica-1', 'reachable')).toMatchObject({ status: 'skipped' });
  });

  test('lag over either threshold is a warning, the larger of the standby\'s and the primary\'s view counting', () => {
    const primary = primaryState({
      replication: [
        { applicationName: 'airflow_db_replica_0', state: 'streaming', lagBytes: 32 * 1024 * 1024, lagSeconds: 2 },
        { applicationName: 'airflow-db-replica-1', state: 'catchup', lagBytes: 0, lagSeconds: 0 },
      ],
    });
    const { find } = evaluate({
      ...healthy, 'airflow-db-primary-0': primary,
      'airflow-db-replica-1': replicaState({ replay: { lagBytes: 0, lagSeconds: 45, paused: false, receiver: 'streaming' } }),
    });
    expect(find('pod/airflow-db-replica-0', 'lag')).toMatchObject({ status: 'warning', message: 'replay 32.0 MiB and 2.00 s behind: over 16.0 MiB' });
    expect(find('pod/airflow-db-replica-1', 'lag')).toMatchObject({ status: 'warning', message: 'replay 0 B and 45.0 s behind: over 30.0 s' });
    const unknown = evaluate({ ...healthy, 'airflow-db-replica-0': replicaState({ replay: { lagBytes: 40 * 1024 * 1024, lagSeconds: null, paused: false, receiver: 'streaming' } }) });
    expect(unknown.find('pod/airflow-db-replica-0', 'lag')).toMatchObject({
      status: 'warning', message: 'replay 40.0 MiB and unknown seconds (no commit replayed yet) behind: over 16.0 MiB',
    });
    expect(find('pod/airflow-db-primary-0', 'replication')).toMatchObject({
      status: 'critical', message: '1 of 2 standbys streaming; not streaming: airflow-db-replica-1 (catchup)',
    });
  });

  test('a standby without a streaming WAL receiver is critical', () => {
    const { find } = evaluate({ ...healthy, 'airflow-db-replica-0': replicaState({ replay: { lagBytes: null, lagSeconds: 0, paused: false, receiver: null } }) });
    expect(find('pod/airflow-db-replica-0', 'lag')).toMatchObject({ status: 'critical', message: expect.stringMatching(/^no WAL receiver streaming \(none\)/) });
  });

  test('slots: lost is critical, unreserved and inactive warnings; inactive slots of an HA standby are Patroni\'s', () => {
    const slots = [
      { name: 'a', active: true, walStatus: 'lost', retainedBytes: null },
      { name: 'b', active: false, walStatus: 'extended', retainedBytes: 2048 },
    ];
    expect(evaluate({ ...healthy, 'airflow-db-primary-0': primaryState({ slots }) }).find('pod/airflow-db-primary-0', 'slots'))
      .toMatchObject({ status: 'critical', message: 'WAL removed under slot a (wal_status lost): its standby cannot catch up' });
    expect(evaluate({ ...healthy, 'airflow-db-primary-0': primaryState({ slots: [slots[1], { name: 'c', active: true, walStatus: 'unreserved', retainedBytes: 0 }] }) })
      .find('pod/airflow-db-primary-0', 'slots')).toMatchObject({ status: 'warning', message: 'inactive: b (retains 2048 B); past max_slot_wal_keep_size: c' });
    const ha: ExpectedCluster = { ...airflowCluster(), highAvailability: true, instances: airflowCluster().instances.map((i) => ({ ...i, role: 'any' })) };
    expect(evaluate({ ...healthy, 'airflow-db-replica-0': replicaState({ slots: [slots[1]] }) }, ha).find('pod/airflow-db-replica-0', 'slots'))
      .toMatchObject({ status: 'ok' });
  });

  test('archiving: off though backups are configured, failing, and behind', () => {
    const backups: ExpectedCluster = { ...airflowCluster(), backups: true };
    expect(evaluate(healthy, backups).find('pod/airflow-db-primary-0', 'archiving'))
      .toMatchObject({ status: 'critical', message: 'archive_mode is off, though the manifests configure backups' });
    const archiver = { ...primaryState().archiver, mode: 'on', archivedCount: 3, lastArchivedWal: '000000010000000000000003', lastArchivedTime: 1000 };
    const failing = { ...archiver, failedCount: 2, lastFailedWal: '000000010000000000000004', lastFailedTime: 1060 };
    expect(evaluate({ ...healthy, 'airflow-db-primary-0': primaryState({ archiver: failing }) }).find('pod/airflow-db-primary-0', 'archiving'))
      .toMatchObject({ status: 'critical', message: expect.stringMatching(/^failing: 2 failure\(s\), last 000000010000000000000004 at 1970-01-01T00:17:40.000Z; /) });
    // A failure older than the last success is over.
    expect(evaluate({ ...healthy, 'airflow-db-primary-0': primaryState({ archiver: { ...failing, lastFailedTime: 900 } }) })
      .find('pod/airflow-db-primary-0', 'archiving')).toMatchObject({ status: 'ok' });
    expect(evaluate({ ...healthy, 'airflow-db-primary-0': primaryState({ archiver: { ...archiver, ready: { value: 40 } } }) })
      .find('pod/airflow-db-primary-0', 'archiving')).toMatchObject({ status: 'warning', message: expect.stringMatching(/40 segment\(s\) waiting \(over 16\)$/) });
    expect(evaluate({ ...healthy, 'airflow-db-primary-0': primaryState({ archiver: { ...archiver, ready: { error: 'permission denied for function pg_ls_archive_statusdir' } } }) })
      .find('pod/airflow-db-primary-0', 'archiving')).toMatchObject({ status: 'ok', message: expect.stringMatching(/backlog not readable \(permission denied/) });
  });

  test('pending restarts are a warning naming the settings', () => {
    expect(evaluate({ ...healthy, 'airflow-db-replica-0': replicaState({ pendingRestart: ['max_connections', 'shared_buffers'] }) })
      .find('pod/airflow-db-replica-0', 'pending-restart'))
      .toMatchObject({ status: 'warning', message: 'changed, applied at the next restart: max_connections, shared_buffers' });
  });

  test('Services: -rw must reach a primary, -ro a replica', () => {
    const findings = clusterFindings(airflowCluster(), { instances: {}, services: { 'airflow-db-rw': { value: true }, 'airflow-db-ro': { error: 'timeout expired' } }, metrics: {} }, THRESHOLDS);
    expect(findings.filter((f) => f.target.startsWith('service/')).map((f) => [f.target, f.status, f.message])).toEqual([
      ['service/airflow-db-rw', 'critical', 'reaches a replica, expected a primary'],
      ['service/airflow-db-ro', 'unreachable', 'timeout expired'],
    ]);
  });

  test('a pooler: waiting clients are a warning, a wait of maxPoolWaitSeconds critical; an exporter reading 0 critical', () => {
    const pooler = expectedStack(airflow).proxies[0];
    const pools = (maxWaitSeconds: number) => ({ value: [{ database: 'airflow', user: 'airflow', waiting: 3, maxWaitSeconds }] });
    expect(poolerFindings(pooler, pools(1.5), { value: 1 }, THRESHOLDS).map((f) => f.status)).toEqual(['warning', 'ok']);
    expect(poolerFindings(pooler, pools(6), { value: 0 }, THRESHOLDS).map((f) => [f.status, f.message])).toEqual([
      ['critical', 'saturated: clients waiting for a server connection (airflow/airflow: 3), longest 6.00 s'],
      ['critical', 'pgbouncer_up 0: the exporter cannot read its daemon'],
    ]);
  });

  test('a balancer: a backend down for Pgpool-II or for its health check is critical; a detached one that answers says how to attach it', () => {
    const balancer = expectedStack(airflow).proxies[1];
    const node = (nodeId: string, status: string, pgStatus: string): PoolNodeRow => ({ nodeId, hostname: 'db', port: '5432', status, pgStatus, role: 'standby' });
    expect(balancerFindings(balancer, { value: [node('0', 'up', 'up'), node('1', 'waiting', 'unknown')] }, undefined)[0]).toMatchObject({ status: 'ok' });
    expect(balancerFindings(balancer, { value: [node('0', 'up', 'up'), node('1', 'down', 'up')] }, undefined)[0]).toMatchObject({
      status: 'critical', message: 'backend(s) down: 1 db:5432 standby down/up; node 1 answers again but stays detached until pcp_attach_node -n <id> (or auto_failback)',
    });
  });

  test('exit codes: the worst finding decides, skipped counts as ok', () => {
    const statuses = [HealthStatus.OK, HealthStatus.SKIPPED, HealthStatus.WARNING, HealthStatus.CRITICAL, HealthStatus.UNREACHABLE];
    expect(statuses.map(exitCodeOf)).toEqual([0, 0, 2, 3, 4]);
    const finding = (status: HealthStatus) => ({ component: 'c', target: 't', check: 'x', status, message: '' });
    expect(worstStatus([finding(HealthStatus.SKIPPED)])).toBe(HealthStatus.OK);
    expect(worstStatus([finding(HealthStatus.UNREACHABLE), finding(HealthStatus.CRITICAL), finding(HealthStatus.WARNING)]))
      .toBe(HealthStatus.UNREACHABLE);
  });
});

describe('StatusCheck and the bin, without daemons', () => {
  let dir: string;
  let server: Server;
  let metricsPort: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'status-check-'));
    writeFileSync(join(dir, 'airflow.k8s.yaml'), airflowYaml);
    server = createServer((_, response) => response.end('# HELP pg_up Whether the last scrape could connect.\npg_up 0\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    metricsPort = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('with no endpoint nothing is checked, which is unreachable (exit code 4), not healthy', async () => {
    const report = await StatusCheck.check(airflowYaml, { endpoints: {} });
    expect(report.exitCode).toBe(4);
    expect(report.findings.filter((f) => f.status !== HealthStatus.SKIPPED)).toEqual([
      { component: '(all)', target: '(all)', check: 'reachable', status: 'unreachable', message: 'no endpoint given: nothing was checked' },
    ]);
  });

  test('an endpoint no target of the manifests has is refused with the targets listed', async () => {
    await expect(StatusCheck.check(airflowYaml, { endpoints: { 'pod/airflow-db-0': '127.0.0.1:5432' } })).rejects.toThrow(
      /^endpoints pod\/airflow-db-0 match no target of the manifests; the targets are: pod\/airflow-db-primary-0, /);
    await expect(StatusCheck.check(airflowYaml, { endpoints: { 'pod/airflow-db-primary-0': 'db:port' } })).rejects.toThrow(
      'endpoint of pod/airflow-db-primary-0 is "db:port": give host:port, such as 127.0.0.1:5432');
  });

  test('an exporter whose /metrics says pg_up 0 is critical; a closed port unreachable, the password never printed', async () => {
    writeFileSync(join(dir, 'credentials.json'), JSON.stringify({ 'airflow-db': { username: 'monitor', password: 'never-print-me' } }));
    let out = '';
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => { out += String(chunk); return true; });
    let code: number;
    try {
      code = await main(['--manifests', dir, '--credentials', join(dir, 'credentials.json'), '--json', '--timeout', '2',
        '--endpoint', `pod/airflow-db-primary-0:metrics=127.0.0.1:${metricsPort}`, '--endpoint', 'pod/airflow-db-primary-0=127.0.0.1:1']);
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(4);
    expect(out).not.toContain('never-print-me');
    const report = JSON.parse(out);
    const checked = report.findings.filter((f: any) => f.status !== 'skipped').map((f: any) => [f.target, f.status, f.message]);
    expect(checked).toEqual([
      ['pod/airflow-db-primary-0', 'unreachable', 'connect ECONNREFUSED 127.0.0.1:1'],
      ['pod/airflow-db-primary-0:metrics', 'critical', 'pg_up 0: the exporter cannot read its daemon'],
    ]);
  });

  test('with a kube context, every target is reached through kubectl port-forward; what kubectl cannot forward is unreachable with its message', async () => {
    // A stand-in for kubectl that forwards the primary's metrics port, in the chart's namespace, to the local /metrics page.
    const saved = { ...process.env };
    Object.assign(process.env, {
      FAKE_KUBECTL_CONTEXT: 'staging', FAKE_KUBECTL_TARGETS: JSON.stringify({ 'airflow-ha/pod/airflow-db-primary-0:9187': `127.0.0.1:${metricsPort}` }),
    });
    try {
      const report = await StatusCheck.check(airflowYaml, { endpoints: {}, kubeContext: 'staging', kubectl: join(__dirname, 'fixtures', 'fake-kubectl.js') });
      const byTarget = Object.fromEntries(report.findings.map((f) => [f.target, `${f.status}: ${f.message}`]));
      expect(byTarget['pod/airflow-db-primary-0:metrics']).toBe('critical: pg_up 0: the exporter cannot read its daemon');
      expect(byTarget['pod/airflow-db-replica-0']).toBe('unreachable: kubectl port-forward pod/airflow-db-replica-0 exited 1: '
        + 'error: pods "airflow-db-replica-0" not found (airflow-ha/pod/airflow-db-replica-0:5432)');
      expect(byTarget['service/airflow-pgbouncer:metrics']).toMatch(/^unreachable: .* not found \(airflow-ha\/service\/airflow-pgbouncer:9127\)$/);
      expect(report.findings.filter((f) => f.status === HealthStatus.SKIPPED)).toEqual([]);
      expect(report.exitCode).toBe(4);
    } finally {
      process.env = saved;
    }
  });

  test('the command line: endpoints from a file and flags, logins from a file or the environment, and one-line refusals', () => {
    writeFileSync(join(dir, 'endpoints.json'), JSON.stringify({ 'service/airflow-pgpool': 'pgpool.local:9999' }));
    const parsed = parseStatusArguments(['--manifests', dir, '--endpoints', join(dir, 'endpoints.json'), '--endpoint', 'service/airflow-db-rw=[::1]:5432',
      '--sslmode', 'verify-full', '--ca-file', 'ca.crt', '--max-lag-seconds', '5', '--context', 'prod'], { CDK8S_POSTGRES_STATUS_USER: 'u', CDK8S_POSTGRES_STATUS_PASSWORD: 'p' });
    expect(parsed.options).toMatchObject({
      endpoints: { 'service/airflow-pgpool': 'pgpool.local:9999', 'service/airflow-db-rw': '[::1]:5432' },
      defaultCredentials: { username: 'u', password: 'p' }, sslMode: 'verify-full', caFile: 'ca.crt', maxLagSeconds: 5, kubeContext: 'prod',
    });
    expect(parseEndpoint('x', '[::1]:5432')).toEqual({ host: '::1', port: 5432 });
    expect(() => parseStatusArguments([])).toThrow('--manifests is missing');
    expect(() => parseStatusArguments(['--manifests', dir, '--sslmode', 'strict'])).toThrow('--sslmode "strict" is not one of disable, allow, prefer, require, verify-ca, verify-full');
    expect(() => parseStatusArguments(['--manifests', dir], { CDK8S_POSTGRES_STATUS_USER: 'u' }))
      .toThrow('set both CDK8S_POSTGRES_STATUS_USER and CDK8S_POSTGRES_STATUS_PASSWORD, or neither');
    expect(() => parseStatusArguments(['--manifests', dir, '--max-lag-bytes', 'lots'])).toThrow('--max-lag-bytes "lots" is not a non-negative number');
    // A broken credentials file is named, never quoted: JSON.parse's message would quote its text.
    writeFileSync(join(dir, 'broken.json'), '{"airflow-db": {"username": "u", "password": "s3cret-in-file",}}');
    let message = '';
    try {
      parseStatusArguments(['--manifests', dir, '--credentials', join(dir, 'broken.json')]);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe(`cdk8s-postgres-status: --credentials ${join(dir, 'broken.json')} is not valid JSON`);
    expect(() => parseStatusArguments(['--manifests', dir, '--credentials', join(dir, 'endpoints.json')]))
      .toThrow('--credentials: "service/airflow-pgpool" needs "username" and "password" strings (and optionally "database")');
  });
});
