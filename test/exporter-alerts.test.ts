/**
 * The exporters' PrometheusRules and dashboard expressions, checked by the real promtool: the
 * rules load, every alert fires just above its threshold (computed here by hand from the
 * target's limits) and stays quiet at it, only for the target's own pods, and every metric the
 * rules and dashboards read is one the exporter is known to serve.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Duration } from 'cdk8s';
import { stringify } from 'yaml';
import {
  BackupRepository, ExporterKind, ExporterSidecar, IMonitorable, PgBouncerPooler, PgBouncerPoolerProps, PgpoolBalancer, PgpoolBalancerProps,
  PostgresStatefulCluster, PostgresStatefulClusterProps,
} from '../lib';
import { synthObjects, testChart } from './support/synth';
import { dashboardExpressions } from '../lib/exporter/dashboards';
import { EXPORTER_METRICS, KUBE_STATE_METRICS } from '../lib/exporter/exporter-metrics';

interface PromtoolResult {
  readonly status: number | null;
  readonly output: string;
}

/** Runs promtool in `dir`; throws when promtool is missing, so the suite fails rather than skips. */
function promtool(dir: string, ...args: string[]): PromtoolResult {
  const result = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
  if (result.error) throw new Error(`promtool is not installed (apt-get install prometheus): ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Asserts promtool succeeded; on failure the assertion shows its whole output. */
function expectSuccess(result: PromtoolResult): void {
  expect(result).toEqual({ status: 0, output: result.output });
}

const tempDirs: string[] = [];
/** A fresh directory holding the files; removed after the suite. */
function writeFiles(files: { [name: string]: unknown }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exporter-alerts-'));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), stringify(content));
  return dir;
}
afterAll(() => tempDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

type TargetKind = 'cluster' | 'pooler' | 'balancer';

interface Thresholds {
  /** PostgresConnectionsHigh fires above this many connections per pod. */
  readonly connections?: number;
  /** PostgresReplicationLagHigh fires above this many bytes of WAL held by a slot. */
  readonly lagBytes?: number;
  /** The replicas' slot names. */
  readonly slots?: string[];
  /** The backup CronJobs and the age PostgresBackupTooOld fires above, in seconds. */
  readonly backupJobs?: Array<{ readonly name: string; readonly ageSeconds: number }>;
  /** PgBouncerClientsWaiting fires above this many seconds of waiting. */
  readonly waitSeconds?: number;
  /** PgBouncerClientConnectionsHigh fires above this many clients per pod. */
  readonly clients?: number;
  /** PgpoolFrontendsHigh fires above this many frontends per pod. */
  readonly frontends?: number;
}

interface Variant {
  readonly title: string;
  readonly kind: TargetKind;
  /** The chart's namespace, or none. */
  readonly namespace?: string;
  readonly cluster?: Partial<PostgresStatefulClusterProps>;
  readonly pooler?: Partial<PgBouncerPoolerProps>;
  readonly balancer?: Partial<PgpoolBalancerProps>;
  readonly connectionAlertPercent?: number;
  /** Worked out by hand from the props: floor(limit x percent / 100), half of max_slot_wal_keep_size, ... */
  readonly thresholds: Thresholds;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

const VARIANTS: Variant[] = [
  // max_slot_wal_keep_size defaults to half the WAL volume (the data volume without a WAL volume);
  // the lag alert fires at half of that.
  {
    title: 'cluster of 3, maxConnections 100, 10Gi, 80%', kind: 'cluster', namespace: 'apps',
    cluster: { instances: 3, settings: { maxConnections: 100 } },
    thresholds: { connections: 80, lagBytes: 2.5 * GiB, slots: ['db_replica_0', 'db_replica_1'] },
  },
  {
    title: 'cluster of 3, maxConnections 250, 20Gi, 90%', kind: 'cluster', namespace: 'apps', connectionAlertPercent: 90,
    cluster: { instances: 3, settings: { maxConnections: 250 }, storage: { size: '20Gi' } },
    thresholds: { connections: 225, lagBytes: 5 * GiB, slots: ['db_replica_0', 'db_replica_1'] },
  },
  {
    title: 'cluster of 1, maxConnections 250, 80%', kind: 'cluster', namespace: 'apps',
    cluster: { instances: 1, settings: { maxConnections: 250 } },
    thresholds: { connections: 200 },
  },
  {
    title: 'cluster of 2, maxConnections 100, 3Gi WAL volume, 80%', kind: 'cluster', namespace: 'apps',
    cluster: { instances: 2, settings: { maxConnections: 100 }, storage: { size: '50Gi', walSize: '3Gi' } },
    thresholds: { connections: 80, lagBytes: 768 * MiB, slots: ['db_replica_0'] },
  },
  {
    title: 'cluster of 3, maxConnections 250, maxSlotWalKeepSize 1000MB, 90%, no namespace', kind: 'cluster', connectionAlertPercent: 90,
    cluster: { instances: 3, settings: { maxConnections: 250, maxSlotWalKeepSize: '1000MB' } },
    thresholds: { connections: 225, lagBytes: 500 * MiB, slots: ['db_replica_0', 'db_replica_1'] },
  },
  {
    // Full backups weekly (7 days and a quarter of them), incremental ones on the other days
    // (Saturday to Monday: 2 days and a half), hourly differential ones (an hour and an hour).
    title: 'cluster of 2 with backups, maxConnections 100, 80%', kind: 'cluster', namespace: 'apps',
    cluster: {
      instances: 2, settings: { maxConnections: 100 }, image: 'registry.example/postgres-pgbackrest:16', tls: { secretName: 'db-cert' },
      backup: { repositories: [BackupRepository.volume({ schedule: { full: '0 1 * * 0', differential: '30 * * * *', incremental: '0 1 * * 1-6' } })] },
    },
    thresholds: {
      connections: 80, lagBytes: 2.5 * GiB, slots: ['db_replica_0'],
      backupJobs: [
        { name: 'db-backup-repo1-full', ageSeconds: 7 * 86400 + 42 * 3600 },
        { name: 'db-backup-repo1-diff', ageSeconds: 2 * 3600 },
        { name: 'db-backup-repo1-incr', ageSeconds: 2 * 86400 + 12 * 3600 },
      ],
    },
  },
  {
    title: 'pooler, maxClientConn 2000, queryWaitTimeout 120s, 80%', kind: 'pooler', namespace: 'apps',
    pooler: { maxClientConn: 2000, queryWaitTimeout: Duration.seconds(120) },
    thresholds: { clients: 1600, waitSeconds: 60 },
  },
  {
    title: 'pooler, maxClientConn 500, queryWaitTimeout 30s, 90%', kind: 'pooler', namespace: 'apps', connectionAlertPercent: 90,
    pooler: { maxClientConn: 500, queryWaitTimeout: Duration.seconds(30) },
    thresholds: { clients: 450, waitSeconds: 15 },
  },
  {
    // Without a timeout clients may wait forever: the alert fires after a minute.
    title: 'pooler, maxClientConn 2000, queryWaitTimeout 0, 80%', kind: 'pooler', namespace: 'apps',
    pooler: { queryWaitTimeout: Duration.seconds(0) },
    thresholds: { clients: 1600, waitSeconds: 60 },
  },
  {
    title: 'pooler, maxClientConn 500, queryWaitTimeout 1s, 80%, no namespace', kind: 'pooler',
    pooler: { maxClientConn: 500, queryWaitTimeout: Duration.seconds(1) },
    thresholds: { clients: 400, waitSeconds: 1 },
  },
  {
    title: 'balancer, numInitChildren 32, 80%', kind: 'balancer', namespace: 'apps',
    balancer: { numInitChildren: 32 },
    thresholds: { frontends: 25 },
  },
  {
    title: 'balancer, numInitChildren 10, 90%', kind: 'balancer', namespace: 'apps', connectionAlertPercent: 90,
    balancer: { numInitChildren: 10 },
    thresholds: { frontends: 9 },
  },
  {
    title: 'balancer, numInitChildren 10, 80%, no namespace', kind: 'balancer',
    balancer: { numInitChildren: 10 },
    thresholds: { frontends: 8 },
  },
];

/** Pod names: one of the target's, and others the rules must ignore (other workloads whose names share a prefix). */
const PODS: { [kind in TargetKind]: { own: string; others: string[] } } = {
  cluster: { own: 'db-replica-1', others: ['olddb-primary-0', 'db-primary-0-debug', 'db-archive-0'] },
  pooler: { own: 'pooler-5d8f7c9b4-x2kzp', others: ['pooler-canary-5d8f7c9b4-x2kzp', 'web-pooler-5d8f7c9b4-x2kzp'] },
  balancer: { own: 'balancer-7f6d5b8c9-q8w2e', others: ['balancer-v2-7f6d5b8c9-q8w2e', 'old-balancer-7f6d5b8c9-q8w2e'] },
};
/** The primary holds the replication slots. */
const PRIMARY_POD = 'db-primary-0';

interface Synthesized {
  readonly target: IMonitorable;
  /** spec.groups of the rendered PrometheusRule. */
  readonly groups: any[];
}

function synthVariant(variant: Variant): Synthesized {
  const chart = testChart(variant.namespace);
  const secrets = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    ...secrets, ...(variant.kind === 'cluster' ? {} : { settings: { maxConnections: 1000 } }), ...variant.cluster,
  });
  const target: IMonitorable = variant.kind === 'cluster'
    ? cluster
    : variant.kind === 'pooler'
      ? new PgBouncerPooler(chart, 'Pooler', { backend: cluster, authUser: { secretName: 'pooler-auth' }, ...variant.pooler })
      : new PgpoolBalancer(chart, 'Balancer', {
        backend: cluster, users: [{ credentials: { secretName: 'app-user' } }], srCheckUser: { secretName: 'pgpool-srcheck' }, ...variant.balancer,
      });
  new ExporterSidecar(chart, 'Metrics', {
    target, credentials: { secretName: 'metrics-exporter' }, alerts: true, connectionAlertPercent: variant.connectionAlertPercent,
  });
  const rules = synthObjects(chart).filter((o) => o.kind === 'PrometheusRule');
  expect(rules).toHaveLength(1);
  return { target, groups: rules[0].spec.groups };
}

const synthesized = new Map<Variant, Synthesized>();
const variantOutput = (variant: Variant): Synthesized => {
  if (!synthesized.has(variant)) synthesized.set(variant, synthVariant(variant));
  return synthesized.get(variant)!;
};
const rulesOf = (variant: Variant): any[] => variantOutput(variant).groups.flatMap((group) => group.rules);

type Labels = { [name: string]: string };
interface Sample {
  readonly metric: string;
  readonly labels: Labels;
  readonly value: number;
  /** What a counter adds every minute; a gauge's value stays. */
  readonly perMinute?: number;
}

/** Where the series of one test come from. */
interface Source {
  readonly namespace?: string;
  readonly pod: string;
  readonly thresholds: Thresholds;
}

/**
 * How to make one alert fire or not. `samples` are the series for one value of what the alert
 * watches (split over several series where the rule aggregates them); `labels` those the alert
 * must carry besides alertname and severity; `threshold` the last value that must not fire and
 * `above` whether values above it fire (else values below it, for "== 0" rules on 0/1 gauges).
 */
interface AlertCase {
  readonly severity: 'warning' | 'critical';
  readonly samples: (source: Source, value: number) => Sample[];
  readonly labels: (source: Source) => Labels;
  readonly fires: (thresholds: Thresholds) => number;
  readonly quiet: (thresholds: Thresholds) => number;
  /** More series that carry the firing value and must not fire, besides those of other pods and namespaces. */
  readonly foreign?: (source: Source, value: number) => Sample[];
}

const podLabels = (source: Source): Labels => ({ ...(source.namespace ? { namespace: source.namespace } : {}), pod: source.pod });
const defined = <T>(value: T | undefined, what: string): T => {
  if (value === undefined) throw new Error(`the variant has no ${what} threshold`);
  return value;
};

/** A 0/1 gauge per scraped pod: alerts at 0 with every label of the series. */
const gaugeDown = (metric: string, severity: 'warning' | 'critical', port: number): AlertCase => {
  const labels = (source: Source) => ({ ...podLabels(source), instance: `10.1.2.3:${port}`, job: 'metrics' });
  return {
    severity,
    samples: (source, value) => [{ metric, labels: labels(source), value }],
    labels,
    fires: () => 0,
    quiet: () => 1,
  };
};

/** A quantity summed over series of one pod: two series that add up to the value. */
const summedPerPod = (metric: string, split: [Labels, Labels], threshold: (t: Thresholds) => number): AlertCase => ({
  severity: 'warning',
  samples: (source, value) => [
    { metric, labels: { ...podLabels(source), ...split[0] }, value: Math.ceil(value / 2) },
    { metric, labels: { ...podLabels(source), ...split[1] }, value: Math.floor(value / 2) },
  ],
  labels: podLabels,
  fires: (t) => threshold(t) + 1,
  quiet: threshold,
});

/** The firing value on one slot of the primary: the replica's (the last), next to a healthy one. */
const slotSamples = (metric: string, healthy: number) => (source: Source, value: number): Sample[] => {
  const slots = defined(source.thresholds.slots, 'slots');
  const primary = { ...podLabels(source), pod: source.pod === PODS.cluster.own ? PRIMARY_POD : source.pod };
  return [
    ...(slots.length > 1 ? [{ metric, labels: { ...primary, slot_name: slots[0] }, value: healthy }] : []),
    { metric, labels: { ...primary, slot_name: slots[slots.length - 1] }, value },
  ];
};
const slotLabels = (source: Source): Labels => {
  const slots = defined(source.thresholds.slots, 'slots');
  return { ...podLabels(source), pod: PRIMARY_POD, slot_name: slots[slots.length - 1] };
};
/** A slot that is not a replica's (a backup tool's), which the slot alerts leave alone. */
const otherSlot = (metric: string) => (source: Source, value: number): Sample[] =>
  [{ metric, labels: { ...podLabels(source), pod: PRIMARY_POD, slot_name: 'backup_tool' }, value }];

/** PostgresBackupTooOld has no `for`, so its rule is evaluated at 10m (evalTime), when time() is 600. */
const BACKUP_EVAL_SECONDS = 600;

/**
 * The backup CronJobs' last successes: the last job's `value` seconds before the evaluation, the
 * others' at it. Other pods stand for other clusters, whose CronJob names contain this one's.
 */
const backupSamples = (source: Source, value: number): Sample[] => {
  const jobs = defined(source.thresholds.backupJobs, 'backupJobs');
  return jobs.map((job, index) => ({
    metric: 'kube_cronjob_status_last_successful_time',
    labels: {
      ...(source.namespace ? { namespace: source.namespace } : {}),
      cronjob: source.pod === PODS.cluster.own ? job.name : `${source.pod}-${job.name}`,
      instance: '10.1.9.9:8080', job: 'kube-state-metrics',
    },
    value: BACKUP_EVAL_SECONDS - (index === jobs.length - 1 ? value : 0),
  }));
};
const lastBackupJob = (t: Thresholds) => {
  const jobs = defined(t.backupJobs, 'backupJobs');
  return jobs[jobs.length - 1];
};

/** Every alert the exporters' rules may raise. A new alert needs a case here, or the coverage test fails. */
const ALERT_CASES: { [alert: string]: AlertCase } = {
  PostgresExporterDown: gaugeDown('up', 'warning', 9187),
  PostgresDown: gaugeDown('pg_up', 'critical', 9187),
  PostgresConnectionsHigh: summedPerPod('pg_stat_activity_count', [{ datname: 'app', state: 'active' }, { datname: 'postgres', state: 'idle' }],
    (t) => defined(t.connections, 'connections')),
  PostgresPendingRestart: {
    severity: 'warning',
    samples: (source, value) => [{ metric: 'pg_settings_pending_restart_count', labels: { ...podLabels(source), instance: '10.1.2.3:9187', job: 'metrics' }, value }],
    labels: podLabels,
    fires: () => 1,
    quiet: () => 0,
  },
  // A counter that grows by `value` every minute: by one fires, flat stays quiet.
  PostgresArchivingFailing: {
    severity: 'critical',
    samples: (source, value) => [{
      metric: 'pg_stat_archiver_failed_count', labels: { ...podLabels(source), instance: '10.1.2.3:9187', job: 'metrics' }, value: 3, perMinute: value,
    }],
    labels: podLabels,
    fires: () => 1,
    quiet: () => 0,
  },
  // Segments waiting all along, and the archived count flat (fires) or rising by one a minute (quiet).
  PostgresArchivingStalled: {
    severity: 'critical',
    samples: (source, value) => {
      const labels = { ...podLabels(source), instance: '10.1.2.3:9187', job: 'metrics' };
      return [
        { metric: 'pg_archive_ready_segments', labels, value: 2 },
        { metric: 'pg_stat_archiver_archived_count', labels, value: 40, perMinute: 1 - value },
      ];
    },
    labels: podLabels,
    fires: () => 1,
    quiet: () => 0,
  },
  PostgresBackupTooOld: {
    severity: 'warning',
    samples: backupSamples,
    labels: (source) => ({ ...(source.namespace ? { namespace: source.namespace } : {}), cronjob: lastBackupJob(source.thresholds).name }),
    fires: (t) => lastBackupJob(t).ageSeconds + 1,
    quiet: (t) => lastBackupJob(t).ageSeconds,
  },
  PostgresReplicationLagHigh: {
    severity: 'warning',
    samples: slotSamples('pg_replication_slots_pg_wal_lsn_diff', 0),
    labels: slotLabels,
    fires: (t) => defined(t.lagBytes, 'lagBytes') + 1,
    quiet: (t) => defined(t.lagBytes, 'lagBytes'),
    foreign: otherSlot('pg_replication_slots_pg_wal_lsn_diff'),
  },
  PostgresReplicaNotStreaming: {
    severity: 'critical',
    samples: slotSamples('pg_replication_slots_active', 1),
    labels: slotLabels,
    fires: () => 0,
    quiet: () => 1,
    foreign: otherSlot('pg_replication_slots_active'),
  },
  PgBouncerExporterDown: gaugeDown('up', 'warning', 9127),
  PgBouncerDown: gaugeDown('pgbouncer_up', 'critical', 9127),
  PgBouncerClientsWaiting: {
    severity: 'warning',
    samples: (source, value) => [
      { metric: 'pgbouncer_pools_client_maxwait_seconds', labels: { ...podLabels(source), database: 'app', user: 'app_user' }, value },
      { metric: 'pgbouncer_pools_client_maxwait_seconds', labels: { ...podLabels(source), database: 'pgbouncer', user: 'pgbouncer' }, value: 0 },
    ],
    labels: (source) => ({ ...podLabels(source), database: 'app', user: 'app_user' }),
    fires: (t) => defined(t.waitSeconds, 'waitSeconds') + 1,
    quiet: (t) => defined(t.waitSeconds, 'waitSeconds'),
  },
  PgBouncerClientConnectionsHigh: {
    severity: 'warning',
    samples: (source, value) => [{ metric: 'pgbouncer_used_clients', labels: { ...podLabels(source), instance: '10.1.2.3:9127', job: 'metrics' }, value }],
    labels: podLabels,
    fires: (t) => defined(t.clients, 'clients') + 1,
    quiet: (t) => defined(t.clients, 'clients'),
  },
  PgpoolExporterDown: gaugeDown('up', 'warning', 9719),
  PgpoolDown: gaugeDown('pgpool2_up', 'critical', 9719),
  PgpoolFrontendsHigh: summedPerPod('pgpool2_frontend_used', [{ database: 'app', username: 'app' }, { database: 'reports', username: 'app' }],
    (t) => defined(t.frontends, 'frontends')),
  PgpoolBackendDown: {
    severity: 'critical',
    samples: (source, value) => [
      { metric: 'pgpool2_pool_nodes_status', labels: { ...podLabels(source), hostname: 'db-rw', port: '5432', role: 'primary' }, value: 1 },
      { metric: 'pgpool2_pool_nodes_status', labels: { ...podLabels(source), hostname: 'db-ro', port: '5432', role: 'standby' }, value },
    ],
    labels: (source) => ({ ...podLabels(source), hostname: 'db-ro' }),
    fires: () => 0,
    quiet: () => 1,
  },
};

/** Prometheus's humanize1024: `%.4g` of the value scaled down by 1024s, with the binary prefix. */
function humanize1024(value: number): string {
  const g4 = (v: number) => String(Number(v.toPrecision(4)));
  if (Math.abs(value) <= 1) return g4(value);
  let scaled = value;
  let prefix = '';
  for (const p of ['ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'Zi', 'Yi']) {
    if (Math.abs(scaled) < 1024) break;
    prefix = p;
    scaled /= 1024;
  }
  return `${g4(scaled)}${prefix}`;
}

/** An annotation as Prometheus expands it for an alert with these labels and value; only the forms the rules use. */
function expandTemplate(template: string, labels: Labels, value: number): string {
  const expanded = template
    .replace(/\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_match, name: string) => {
      if (labels[name] === undefined) throw new Error(`annotation ${JSON.stringify(template)} reads $labels.${name}, which the alert does not carry`);
      return labels[name];
    })
    .replace(/\{\{\s*\$value\s*\|\s*humanize1024\s*\}\}/g, () => humanize1024(value))
    .replace(/\{\{\s*\$value\s*\}\}/g, () => {
      // Go prints a float64 in %g form with exponents from 1e21 on; the values here are small integers.
      if (!Number.isInteger(value) || Math.abs(value) >= 1e21) throw new Error(`cannot format $value ${value} as Go does`);
      return String(value);
    });
  if (expanded.includes('{{')) throw new Error(`annotation ${JSON.stringify(template)} uses a template form this test does not expand`);
  return expanded;
}

const seriesName = (sample: Sample) =>
  `${sample.metric}{${Object.entries(sample.labels).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(',')}}`;
/** 31 samples a minute apart: long enough for every rule's `for` at its evaluation (evalTime). */
const inputSeries = (samples: Sample[]) => samples.map((sample) =>
  ({ series: seriesName(sample), values: `${sample.value}${sample.perMinute === undefined ? '' : `+${sample.perMinute}`}x30` }));
/** When a rule is evaluated: 10m, or 5m past a longer `for` (PostgresPendingRestart's 15m). */
const evalTime = (rule: { for: string }) => `${Math.max(10, Number(/^(\d+)m$/.exec(rule.for)![1]) + 5)}m`;

interface TestGroup {
  readonly name: string;
  readonly interval: string;
  readonly input_series: Array<{ series: string; values: string }>;
  readonly alert_rule_test: Array<{ eval_time: string; alertname: string; exp_alerts: any[] }>;
}

function caseFor(alert: string): AlertCase {
  const found = ALERT_CASES[alert];
  if (!found) throw new Error(`no promtool case for alert ${alert}: add one to ALERT_CASES`);
  return found;
}

/**
 * The promtool test groups of one variant: per alert, one that fires just above the threshold,
 * one that stays quiet at it, and one with the firing value on series that are not the target's.
 * With `inverted`, each group expects the opposite, so promtool must fail every one.
 */
function testGroups(variant: Variant, inverted = false): TestGroup[] {
  const own: Source = { namespace: variant.namespace, pod: PODS[variant.kind].own, thresholds: variant.thresholds };
  const foreignSources: Source[] = [
    ...PODS[variant.kind].others.map((pod) => ({ ...own, pod })),
    ...(variant.namespace ? [{ ...own, namespace: 'other' }] : []),
  ];
  return rulesOf(variant).flatMap((rule): TestGroup[] => {
    const alertCase = caseFor(rule.alert);
    const group = (name: string, samples: Sample[], expected: any[]): TestGroup => ({
      name: `${rule.alert}: ${name}`,
      interval: '1m',
      input_series: inputSeries(samples),
      alert_rule_test: [{ eval_time: evalTime(rule), alertname: rule.alert, exp_alerts: expected }],
    });
    const firing = alertCase.fires(variant.thresholds);
    const quiet = alertCase.quiet(variant.thresholds);
    const labels = alertCase.labels(own);
    const alert = {
      exp_labels: { ...labels, severity: alertCase.severity },
      exp_annotations: Object.fromEntries(Object.entries<string>(rule.annotations).map(([key, text]) => [key, expandTemplate(text, labels, firing)])),
    };
    const foreign = [
      ...foreignSources.flatMap((source) => alertCase.samples(source, firing)),
      ...(alertCase.foreign ? alertCase.foreign(own, firing) : []),
    ];
    return [
      group(`fires at ${firing}`, alertCase.samples(own, firing), inverted ? [] : [alert]),
      group(`is quiet at ${quiet}`, alertCase.samples(own, quiet), inverted ? [alert] : []),
      group(`ignores other pods${variant.namespace ? ', namespaces' : ''} and series at ${firing}`, foreign, inverted ? [alert] : []),
    ];
  });
}

/** Writes the variant's rules and unit tests; returns the directory. */
function writeRuleTests(variant: Variant, inverted = false): string {
  return writeFiles({
    'rules.yaml': { groups: variantOutput(variant).groups },
    'tests.yaml': { rule_files: ['rules.yaml'], evaluation_interval: '1m', tests: testGroups(variant, inverted) },
  });
}

const ALERTS_BY_KIND: { [kind in TargetKind]: string[] } = {
  cluster: ['PostgresExporterDown', 'PostgresDown', 'PostgresConnectionsHigh', 'PostgresPendingRestart', 'PostgresArchivingFailing',
    'PostgresArchivingStalled', 'PostgresBackupTooOld', 'PostgresReplicationLagHigh', 'PostgresReplicaNotStreaming'],
  pooler: ['PgBouncerExporterDown', 'PgBouncerDown', 'PgBouncerClientsWaiting', 'PgBouncerClientConnectionsHigh'],
  balancer: ['PgpoolExporterDown', 'PgpoolDown', 'PgpoolFrontendsHigh', 'PgpoolBackendDown'],
};

describe.each(VARIANTS.map((variant) => [variant.title, variant] as [string, Variant]))('%s', (_title, variant) => {
  test('renders the alerts of its kind (the slot alerts only with replicas, the backup ones only with backups)', () => {
    const expected = ALERTS_BY_KIND[variant.kind]
      .filter((alert) => !alert.startsWith('PostgresReplica') || (variant.thresholds.slots ?? []).length > 0)
      .filter((alert) => !(alert.startsWith('PostgresArchiving') || alert === 'PostgresBackupTooOld') || variant.thresholds.backupJobs !== undefined);
    expect(rulesOf(variant).map((rule) => rule.alert)).toEqual(expected);
  });

  test('promtool check rules accepts the PrometheusRule\'s groups', () => {
    const dir = writeFiles({ 'rules.yaml': { groups: variantOutput(variant).groups } });
    const result = promtool(dir, 'check', 'rules', 'rules.yaml');
    expectSuccess(result);
    expect(result.output).toContain(`SUCCESS: ${rulesOf(variant).length} rules found`);
  });

  test('promtool test rules: every alert fires above its threshold, stays quiet at it and ignores other pods', () => {
    expectSuccess(promtool(writeRuleTests(variant), 'test', 'rules', 'tests.yaml'));
  });

  test('promtool test rules fails every case when the expectations are inverted', () => {
    const result = promtool(writeRuleTests(variant, true), 'test', 'rules', 'tests.yaml');
    expect(result.status).toBe(1);
    for (const rule of rulesOf(variant)) {
      expect(result.output.split(`alertname: ${rule.alert},`).length - 1).toBe(3);
    }
  });
});

describe('coverage of the alert cases', () => {
  test('every alert the rules can raise has a firing and a quiet case, and every case an alert', () => {
    const rendered = new Set(VARIANTS.flatMap((variant) => rulesOf(variant).map((rule) => rule.alert)));
    expect([...rendered].sort()).toEqual(Object.keys(ALERT_CASES).sort());
  });

  test('every case of a variant has a firing value above its quiet one, or 0 below 1', () => {
    for (const variant of VARIANTS) {
      for (const rule of rulesOf(variant)) {
        const alertCase = caseFor(rule.alert);
        const [firing, quiet] = [alertCase.fires(variant.thresholds), alertCase.quiet(variant.thresholds)];
        expect([rule.alert, Math.abs(firing - quiet)]).toEqual([rule.alert, 1]);
      }
    }
  });

  test('the humanize1024 of this test matches Prometheus\'s for the sizes used', () => {
    expect([humanize1024(2.5 * GiB + 1), humanize1024(768 * MiB + 1), humanize1024(1023.99), humanize1024(5 * GiB + 1)])
      .toEqual(['2.5Gi', '768Mi', '1024', '5Gi']);
  });
});

/** One variant per kind and namespace, for the dashboards. */
const DASHBOARD_VARIANTS = VARIANTS.filter((variant, index) =>
  VARIANTS.findIndex((other) => other.kind === variant.kind && (other.namespace === undefined) === (variant.namespace === undefined)) === index);

describe.each(DASHBOARD_VARIANTS.map((variant) => [variant.title, variant] as [string, Variant]))('dashboard of %s', (_title, variant) => {
  test('every expression is valid PromQL: promtool check rules accepts them as recording rules', () => {
    const expressions = dashboardExpressions(variantOutput(variant).target.monitoringProfile);
    expect(expressions.length).toBeGreaterThan(0);
    const rules = expressions.map((expr, index) => ({ record: `cdk8s_postgres_dashboard_expr_${index}`, expr }));
    const result = promtool(writeFiles({ 'rules.yaml': { groups: [{ name: 'dashboard', rules }] } }), 'check', 'rules', 'rules.yaml');
    expectSuccess(result);
    expect(result.output).toContain(`SUCCESS: ${expressions.length} rules found`);
  });
});

test('promtool check rules rejects a broken expression, so the checks above can fail', () => {
  const result = promtool(writeFiles({ 'rules.yaml': { groups: [{ name: 'g', rules: [{ record: 'broken', expr: 'sum by (pod) (pg_up{pod=~"db-.*"}' }] }] } }),
    'check', 'rules', 'rules.yaml');
  expect(result.status).not.toBe(0);
});

/** PromQL functions, aggregations and keywords the expressions may use; an unknown one fails the metric check. */
const PROMQL_FUNCTIONS = new Set(['sum', 'max', 'min', 'avg', 'count', 'rate', 'irate', 'increase', 'delta', 'abs', 'clamp_min', 'clamp_max', 'time']);
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset']);

/** The metric names an expression reads: identifiers that are not functions, keywords, label names or strings. */
function metricNames(expression: string): string[] {
  const names: string[] = [];
  const plain = expression
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  for (const [, identifier, next] of plain.matchAll(/(?<![0-9.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)/g)) {
    if (next === '(') {
      if (!PROMQL_FUNCTIONS.has(identifier)) throw new Error(`${JSON.stringify(expression)} calls ${identifier}, unknown to this test`);
    } else if (!PROMQL_KEYWORDS.has(identifier)) {
      names.push(identifier);
    }
  }
  return names;
}

const KIND_OF: { [kind in TargetKind]: ExporterKind } = {
  cluster: ExporterKind.POSTGRES, pooler: ExporterKind.PGBOUNCER, balancer: ExporterKind.PGPOOL,
};

describe('metric names', () => {
  test('the parser finds the metrics and skips functions, groupings, matchers and ranges', () => {
    expect(metricNames('sum by (namespace, pod) (rate(pg_stat_database_xact_commit{namespace="a",pod=~"(x|y)-[0-9]+"}[5m])) > 80'))
      .toEqual(['pg_stat_database_xact_commit']);
    expect(metricNames('max(pg_settings_max_connections{pod=~"p"}) or up{pod="p"} == 0')).toEqual(['pg_settings_max_connections', 'up']);
    expect(() => metricNames('histogram_quantile(0.9, x)')).toThrow(/histogram_quantile/);
  });

  describe.each(['cluster', 'pooler', 'balancer'] as TargetKind[])('of the %s', (kind) => {
    const variants = VARIANTS.filter((variant) => variant.kind === kind);
    // The backup alerts read kube-state-metrics besides the exporter.
    const listed = [...EXPORTER_METRICS[KIND_OF[kind]], ...(kind === 'cluster' ? KUBE_STATE_METRICS : [])].map((metric) => metric.name);
    const alertExpressions = () => variants.flatMap((variant) => rulesOf(variant).map((rule) => rule.expr as string));
    const dashboardExpressionsOf = () => variants.flatMap((variant) => dashboardExpressions(variantOutput(variant).target.monitoringProfile));

    test('every metric an alert reads is listed in EXPORTER_METRICS', () => {
      for (const expression of alertExpressions()) {
        const names = metricNames(expression);
        expect(names.length).toBeGreaterThan(0);
        for (const name of names) expect([expression, listed.includes(name)]).toEqual([expression, true]);
      }
    });

    test('every metric a dashboard panel reads is listed in EXPORTER_METRICS', () => {
      for (const expression of dashboardExpressionsOf()) {
        const names = metricNames(expression);
        expect(names.length).toBeGreaterThan(0);
        for (const name of names) expect([expression, listed.includes(name)]).toEqual([expression, true]);
      }
    });

    test('EXPORTER_METRICS lists only metrics the alerts or dashboards read', () => {
      const used = new Set([...alertExpressions(), ...dashboardExpressionsOf()].flatMap(metricNames));
      expect(listed.filter((name) => !used.has(name))).toEqual([]);
    });
  });
});
