import { Chart, Duration, Testing } from 'cdk8s';
import { DAEMONS } from './daemons';
import {
  BackupRepository, ExporterSidecar, ExternalPostgres, IssuerKind, MemoryCheck, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster,
  SynchronousReplication,
} from '../../../lib';
import { postgresVersion } from '../../../lib/core/postgres-versions';

/**
 * The adversarial cases: every prop that reaches a rendered file, fed hostile strings, edge
 * numbers, edge sizes and durations, and hostile map keys and values. A case is synthesized on
 * its own chart; what it renders is then handed to the real daemons (adversarial-daemons.ts).
 */

/** Which construct (and so which daemons) a case exercises. */
export type Component = 'cluster' | 'ha' | 'backup' | 'pooler' | 'balancer' | 'exporter';

export interface AdversarialCase {
  readonly component: Component;
  /** The prop path the library must name when it refuses the value (`settings.workMem`). */
  readonly prop: string;
  /** The value as a reader sees it, for reports. */
  readonly shown: string;
  /** Synthesizes the case's chart; returns its objects. */
  readonly synth: () => any[];
}

/** Quotes, backslashes, line ends, NUL, comment and shell characters, YAML specials, unicode, size. */
export const HOSTILE_STRINGS: readonly string[] = [
  "it's", 'say "hi"', 'back`tick`', 'back\\slash', 'line\nbreak', 'carriage\rreturn', 'nul\0byte', 'hash # comment',
  'semi;colon', '$(touch /tmp/adversarial-pwned)', '${HOME}', 'has space', 'ünïcödé-☃', 'x'.repeat(5000), '-leading-dash',
  '%s%n%p%%', '*?[a-z]', 'key: value', '- item', '{flow}', '&anchor', '*alias', '!tag', '', ' ', 'trailing\\',
];

/** Integers at the C int and JavaScript limits, and what is not an integer at all. */
export const EDGE_NUMBERS: readonly number[] = [0, -1, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1e308, NaN, Infinity, -Infinity, -0, 0.5, 1.5];

/** PostgreSQL memory and size settings at their limits, and sizes that are no sizes. */
export const EDGE_SIZES: readonly string[] = [
  '0', '-1MB', '999999TB', '1e3', '0.5', '0.5MB', '2147483648kB', '1TB', 'NaN', 'Infinity', '4 MB', '4mb', '1e308MB',
];

/** Kubernetes quantities at their limits, and quantities that are none. */
export const EDGE_QUANTITIES: readonly string[] = [
  '999999Ti', '1e3', '0.5', '-1Gi', '0', '1e308', 'NaN', '1Ei', '0.5Gi', '100m', '1E', '1e-3', 'Infinity',
];

/**
 * Durations that are zero, fractional, not numbers or past every daemon's counters. Negative ones
 * cannot be made: cdk8s's Duration refuses them itself, before the library sees them.
 */
export const EDGE_DURATIONS: ReadonlyArray<[string, () => Duration]> = [
  ['Duration.seconds(0)', () => Duration.seconds(0)],
  ['Duration.millis(1500)', () => Duration.millis(1500)], ['Duration.millis(1)', () => Duration.millis(1)],
  ['Duration.seconds(2 ** 31 - 1)', () => Duration.seconds(2 ** 31 - 1)], ['Duration.seconds(2 ** 31)', () => Duration.seconds(2 ** 31)],
  ['Duration.seconds(2 ** 53)', () => Duration.seconds(2 ** 53)], ['Duration.seconds(1e308)', () => Duration.seconds(1e308)],
  ['Duration.seconds(NaN)', () => Duration.seconds(NaN)], ['Duration.seconds(Infinity)', () => Duration.seconds(Infinity)],
  ['Duration.days(36500)', () => Duration.days(36500)],
];

/** A value as a report shows it: strings JSON-quoted and cut at 60 characters. */
export function show(value: unknown): string {
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 40)}...(${text.length} chars)` : text;
}

/** Sets `path` (`databases[0].owner.secretName`) in `props`, creating objects and arrays on the way. */
function setAt(props: any, path: string, value: unknown): void {
  const parts = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  let node = props;
  for (let i = 0; i < parts.length - 1; i++) {
    if (node[parts[i]] === undefined) node[parts[i]] = /^\d+$/.test(parts[i + 1]) ? [] : {};
    node = node[parts[i]];
  }
  node[parts[parts.length - 1]] = value;
}

// Secrets the base props reference, so a hostile value in one never collides with another's.
const SUPERUSER = { secretName: 'db-superuser' };
const REPLICATION = { secretName: 'db-replication' };

/** A cluster small enough to boot quickly, with a database and its extension, roles and room for the front ends. */
function clusterProps(): any {
  return {
    postgresVersion: DAEMONS.postgresMajor,
    name: 'db',
    instances: 2,
    superuserSecret: { ...SUPERUSER },
    replicationSecret: { ...REPLICATION },
    databases: [{ name: 'app', owner: { secretName: 'db-app' }, extensions: [{ name: 'citext' }] }],
    roles: [{ credentials: { secretName: 'db-reporting' }, memberOf: ['pg_read_all_data'] }],
    namedRoles: [{ name: 'readers' }],
    resources: { memoryLimit: '512Mi' },
    settings: { maxConnections: 200 },
    memoryCheck: MemoryCheck.OFF,
    extraParameters: { log_min_duration_statement: '500ms' },
  };
}

function haProps(): any {
  return { ...clusterProps(), highAvailability: { ttl: Duration.seconds(30) } };
}

function backupProps(s3: any = {}, volume: any = {}): any {
  return {
    ...clusterProps(),
    image: postgresVersion(DAEMONS.postgresMajor).highAvailabilityImage.image,
    runAsUser: 26,
    tls: { issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } },
    backup: {
      repositories: [
        BackupRepository.volume({ size: '20Gi', retentionFull: 2, ...volume }),
        BackupRepository.s3({
          bucket: 'db-backups', endpoint: 's3.eu-central-1.amazonaws.com', region: 'eu-central-1',
          retentionFull: 3, ...s3,
          // A case's credentials field lands beside the base Secret name, not in place of it.
          credentials: { secretName: 'db-backup-s3', ...s3.credentials },
        }),
      ],
    },
  };
}

function poolerProps(): any {
  return {
    name: 'pool',
    pgbouncerVersion: DAEMONS.versions.pgbouncer,
    users: [{ secretName: 'pool-app' }],
    authUser: { secretName: 'pool-auth' },
    adminUsers: ['pool_admin'],
    statsUsers: ['pool_stats'],
    databases: [{ name: 'app', dbname: 'app', poolSize: 10 }],
    extraSettings: { server_connect_timeout: '15' },
  };
}

function balancerProps(): any {
  return {
    name: 'bal',
    users: [{ credentials: { secretName: 'bal-app' }, envPrefix: 'APP' }],
    srCheckUser: { secretName: 'bal-srcheck' },
    numInitChildren: 4,
    extraParameters: { search_primary_node_timeout: '10' },
  };
}

/** The chart a case synthesizes; backends of poolers and balancers are external, so only the case's construct renders files. */
function newChart(): Chart {
  return new Chart(Testing.app(), 'adv', { namespace: 'adv' });
}

function externalBackend(chart: Chart): ExternalPostgres {
  return new ExternalPostgres(chart, 'Backend', {
    readWriteService: 'db-rw', readOnlyService: 'db-ro', port: 5432, replicas: 1, certificateAuthority: { secretName: 'db-ca' },
  });
}

/** Synthesizes one component with `props` (already holding the case's value). */
export function synthComponent(component: Component, props: any): any[] {
  const chart = newChart();
  switch (component) {
    case 'cluster': case 'ha': case 'backup':
      new PostgresStatefulCluster(chart, 'Db', props);
      break;
    case 'pooler':
      new PgBouncerPooler(chart, 'Pool', { backend: externalBackend(chart), ...props });
      break;
    case 'balancer':
      new PgpoolBalancer(chart, 'Bal', { backend: externalBackend(chart), ...props });
      break;
    case 'exporter': {
      const cluster = new PostgresStatefulCluster(chart, 'Db', clusterProps());
      new ExporterSidecar(chart, 'Exporter', { target: cluster, credentials: { secretName: 'db-monitoring' }, alerts: true, ...props });
      break;
    }
  }
  return chart.toJson();
}

const BASE_PROPS: { [component in Component]: () => any } = {
  cluster: clusterProps, ha: haProps, backup: () => backupProps(), pooler: poolerProps, balancer: balancerProps,
  exporter: () => ({}),
};

/** The props of each component with nothing hostile: these must render and boot. */
export const baseline = (component: Component): AdversarialCase => ({
  component, prop: '(baseline)', shown: '-', synth: () => synthComponent(component, BASE_PROPS[component]()),
});

type Kind = 'string' | 'number' | 'size' | 'quantity' | 'duration' | 'map';

/** Which props reach which files, by kind: the list the suite walks. */
const PROPS: Array<[Component, string, Kind]> = [];
const add = (component: Component, kind: Kind, ...props: string[]) => props.forEach((prop) => PROPS.push([component, prop, kind]));

// PostgresStatefulCluster: postgresql.conf, pg_hba.conf and the bootstrap/provision scripts.
add('cluster', 'string', 'name', 'superuserSecret.secretName', 'superuserSecret.usernameKey', 'superuserSecret.passwordKey',
  'replicationSecret.secretName', 'replicationSecret.usernameKey', 'replicationSecret.passwordKey',
  'databases[0].name', 'databases[0].owner.secretName', 'databases[0].owner.usernameKey', 'databases[0].owner.passwordKey',
  'roles[0].credentials.secretName', 'roles[0].credentials.passwordKey', 'roles[0].memberOf[0]',
  'roles[0].attributes.validUntil', 'namedRoles[0].name', 'namedRoles[0].memberOf[0]', 'databases[0].encoding', 'databases[0].locale',
  'databases[0].template', 'databases[0].extensions[0].name', 'databases[0].extensions[0].version', 'databases[0].extensions[0].schema',
  'settings.sharedPreloadLibraries[0]', 'settings.walLevel', 'settings.synchronousCommit', 'allowedCidrs[0]',
  'settings.sharedBuffers', 'settings.effectiveCacheSize', 'settings.workMem', 'settings.maintenanceWorkMem',
  'settings.maxSlotWalKeepSize', 'settings.walKeepSize');
add('cluster', 'size', 'settings.sharedBuffers', 'settings.effectiveCacheSize', 'settings.workMem', 'settings.maintenanceWorkMem',
  'settings.maxSlotWalKeepSize', 'settings.walKeepSize');
add('cluster', 'quantity', 'resources.memoryLimit', 'storage.size', 'storage.walSize');
add('cluster', 'number', 'instances', 'port', 'settings.maxConnections', 'settings.superuserReservedConnections',
  'settings.maxWalSenders', 'settings.maxReplicationSlots', 'synchronousReplication');
add('cluster', 'duration', 'terminationGracePeriod');
add('cluster', 'map', 'extraParameters');
// The HA mode: patroni.yml.
add('ha', 'duration', 'highAvailability.ttl', 'highAvailability.loopWait', 'highAvailability.retryTimeout', 'highAvailability.primaryStartTimeout');
add('ha', 'number', 'highAvailability.maximumLagOnFailover', 'highAvailability.restApiPort');
add('ha', 'string', 'highAvailability.apiServer.cidrs[0]');
add('ha', 'map', 'extraParameters');
// pgBackRest: pgbackrest.conf, archive_command and the backup/restore scripts.
add('backup', 'string', 'backup.restore.targetTime', 'backup.restore.targetTimeline', 's3.bucket', 's3.endpoint', 's3.region', 's3.path',
  's3.credentials.secretName', 's3.credentials.accessKeyIdKey', 's3.schedule.full', 'volume.size');
add('backup', 'number', 'backup.serverPort', 'backup.restore.repository', 's3.port', 's3.retentionFull', 'volume.retentionFull');
add('backup', 'duration', 'backup.archiveTimeout', 'backup.ioTimeout');
// PgBouncerPooler: pgbouncer.ini and its start, userlist and drain scripts.
add('pooler', 'string', 'name', 'authQuery', 'users[0].secretName', 'users[0].usernameKey', 'users[0].passwordKey',
  'authUser.secretName', 'authUser.usernameKey', 'adminUsers[0]', 'statsUsers[0]', 'databases[0].name', 'databases[0].dbname',
  'ignoreStartupParameters[0]', 'pgbouncerVersion', 'poolMode', 'authType', 'databases[0].poolMode');
add('pooler', 'number', 'port', 'maxClientConn', 'defaultPoolSize', 'minPoolSize', 'reservePoolSize', 'maxDbConnections',
  'maxUserConnections', 'databases[0].poolSize', 'databases[0].maxDbConnections');
add('pooler', 'duration', 'reservePoolTimeout', 'serverIdleTimeout', 'serverLifetime', 'queryWaitTimeout', 'idleTransactionTimeout',
  'drainDelay', 'terminationGracePeriod');
add('pooler', 'map', 'extraSettings');
// PgpoolBalancer: pgpool.conf, pool_hba.conf and its config script.
add('balancer', 'string', 'name', 'users[0].envPrefix', 'users[0].credentials.secretName', 'users[0].credentials.usernameKey',
  'srCheckUser.secretName', 'srCheckUser.passwordKey', 'allowedCidrs[0]', 'disableLoadBalanceOnWrite');
add('balancer', 'number', 'numInitChildren', 'maxPool', 'childMaxConnections');
add('balancer', 'duration', 'childLifeTime', 'connectionLifeTime', 'clientIdleLimit', 'srCheckPeriod', 'healthCheckPeriod');
add('balancer', 'map', 'extraParameters');
// ExporterSidecar: its PrometheusRule (promtool) and its container's arguments.
add('exporter', 'number', 'port', 'connectionAlertPercent');
add('exporter', 'duration', 'scrapeInterval');

/** Map props: a key each value case uses, one that takes a string and one that takes a number. */
const MAP_KEYS: { [component in Component]?: { stringKey: string; numberKey: string } } = {
  cluster: { stringKey: 'application_name', numberKey: 'log_min_duration_statement' },
  ha: { stringKey: 'application_name', numberKey: 'log_min_duration_statement' },
  pooler: { stringKey: 'server_reset_query', numberKey: 'server_connect_timeout' },
  balancer: { stringKey: 'log_line_prefix', numberKey: 'search_primary_node_timeout' },
};

/** The props of a case: the component's base props with `value` at `prop`. */
function propsWith(component: Component, prop: string, value: unknown): any {
  if (component === 'backup' && /^(s3|volume)\./.test(prop)) {
    const [repo, ...rest] = prop.split('.');
    const options: any = {};
    setAt(options, rest.join('.'), value);
    return repo === 's3' ? backupProps(options) : backupProps({}, options);
  }
  const props = BASE_PROPS[component]();
  if (prop === 'synchronousReplication') props.synchronousReplication = SynchronousReplication.any(value as number);
  else setAt(props, prop, value);
  return props;
}

/** The prop path a refusal must name: a repository's options are `backup.repositories[n]`'s. */
function namedProp(prop: string): string {
  if (prop.startsWith('s3.')) return `backup.repositories[1].${prop.slice(3)}`;
  if (prop.startsWith('volume.')) return `backup.repositories[0].${prop.slice(7)}`;
  return prop;
}

function mapCases(component: Component, prop: string): AdversarialCase[] {
  const keys = MAP_KEYS[component]!;
  const cases: AdversarialCase[] = [];
  const withEntry = (key: string, value: string) => () => {
    const props = BASE_PROPS[component]();
    props[prop] = { ...props[prop], [key]: value };
    return synthComponent(component, props);
  };
  for (const key of [...HOSTILE_STRINGS, 'max_connections ', 'no_such_parameter', 'constructor', '__proto__', 'toString', 'a.b']) {
    cases.push({ component, prop, shown: `key ${show(key)}`, synth: withEntry(key, '1') });
  }
  for (const value of [...HOSTILE_STRINGS, ...EDGE_SIZES]) {
    cases.push({ component, prop, shown: `${keys.stringKey} = ${show(value)}`, synth: withEntry(keys.stringKey, value) });
  }
  for (const value of [...HOSTILE_STRINGS, ...EDGE_NUMBERS.map(String), '1e3', '0x10', '+5', '5 ', '010']) {
    cases.push({ component, prop, shown: `${keys.numberKey} = ${show(value)}`, synth: withEntry(keys.numberKey, value) });
  }
  return cases;
}

/** Every case, grouped by component. */
export function adversarialCases(): AdversarialCase[] {
  const cases: AdversarialCase[] = [];
  for (const [component, prop, kind] of PROPS) {
    const named = namedProp(prop);
    const one = (shown: string, value: () => unknown): AdversarialCase =>
      ({ component, prop: named, shown, synth: () => synthComponent(component, propsWith(component, prop, value())) });
    switch (kind) {
      case 'string': cases.push(...HOSTILE_STRINGS.map((value) => one(show(value), () => value))); break;
      case 'size': cases.push(...EDGE_SIZES.map((value) => one(show(value), () => value))); break;
      case 'quantity': cases.push(...EDGE_QUANTITIES.map((value) => one(show(value), () => value))); break;
      case 'number': cases.push(...EDGE_NUMBERS.map((value) => one(show(value), () => value))); break;
      case 'duration': cases.push(...EDGE_DURATIONS.map(([shown, value]) => one(shown, value))); break;
      case 'map': cases.push(...mapCases(component, prop)); break;
    }
  }
  return cases;
}

/** How many distinct props the cases cover. */
export const propCount = (): number => new Set(PROPS.map(([component, prop]) => `${component}:${prop}`)).size;
