import { Chart, Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import {
  PodSpread, PostgresStatefulCluster, PostgresStatefulClusterProps, SynchronousReplication, VolumeRetention,
} from '../lib';
import { KubeVersion, validateManifests } from './support/kube-schema';
import { findObject, synthObjects, testChart } from './support/synth';

type Props = Partial<PostgresStatefulClusterProps>;

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};

interface Synthesized {
  readonly cluster: PostgresStatefulCluster;
  readonly objects: any[];
}

/** A cluster `Db` (name `db`) in a fresh chart, optionally under a parent construct. */
function synth(props: Props = {}, options: { namespace?: string; parent?: string } = {}): Synthesized {
  const chart = testChart(options.namespace);
  const scope: Construct = options.parent ? new Construct(chart, options.parent) : chart;
  const cluster = new PostgresStatefulCluster(scope, 'Db', { ...SECRETS, ...props });
  return { cluster, objects: synthObjects(chart as Chart) };
}

const objectsOf = (props: Props = {}) => synth(props).objects;
const statefulSet = (objects: any[], role: 'primary' | 'replica') => findObject(objects, 'StatefulSet', `db-${role}`);
const service = (objects: any[], suffix: 'headless' | 'rw' | 'ro') => findObject(objects, 'Service', `db-${suffix}`);
const podSpec = (objects: any[], role: 'primary' | 'replica' = 'primary') => statefulSet(objects, role).spec.template.spec;
const postgresContainer = (objects: any[]) => podSpec(objects).containers.find((c: any) => c.name === 'postgres');
const allContainers = (objects: any[]) => (['primary', 'replica'] as const)
  .flatMap((role) => [...podSpec(objects, role).initContainers, ...podSpec(objects, role).containers]);
const has = (objects: any[], kind: string, name: string) => objects.some((o) => o.kind === kind && o.metadata.name === name);

const configFile = (objects: any[], file: string): string => findObject(objects, 'ConfigMap', 'db-config').data[file];
const postgresqlConf = (objects: any[]) => configFile(objects, 'postgresql.conf');
const pgHbaConf = (objects: any[]) => configFile(objects, 'pg_hba.conf');
const bootstrapScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['bootstrap.sh'];

/** The value of a postgresql.conf parameter as written (quotes included); undefined when absent. */
function confValue(conf: string, parameter: string): string | undefined {
  return new RegExp(`^${parameter} = (.*)$`, 'm').exec(conf)?.[1];
}

/** The non-comment, non-empty lines of pg_hba.conf, split into fields. */
function hbaRules(objects: any[]): string[][] {
  return pgHbaConf(objects).split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.trim().split(/\s+/));
}

const checksum = (objects: any[], role: 'primary' | 'replica' = 'primary'): string =>
  statefulSet(objects, role).spec.template.metadata.annotations['checksum/config'];

const SELECTOR_ALL = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'db' };
const selectorOf = (component: string) => ({ ...SELECTOR_ALL, 'app.kubernetes.io/component': component });

describe('objects and names', () => {
  test('a default cluster has a primary and a replica StatefulSet', () => {
    const objects = objectsOf();
    expect(objects.filter((o) => o.kind === 'StatefulSet').map((o) => o.metadata.name).sort()).toEqual(['db-primary', 'db-replica']);
  });

  test('a default cluster has headless, read-write and read-only Services', () => {
    const objects = objectsOf();
    expect(objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name).sort()).toEqual(['db-headless', 'db-ro', 'db-rw']);
  });

  test('the name defaults to the construct id in kebab-case', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'OrdersDb', SECRETS);
    expect(cluster.name).toBe('orders-db');
    expect(has(synthObjects(chart), 'StatefulSet', 'orders-db-primary')).toBe(true);
  });

  test('both StatefulSets use the headless Service', () => {
    const objects = objectsOf();
    expect(statefulSet(objects, 'primary').spec.serviceName).toBe('db-headless');
    expect(statefulSet(objects, 'replica').spec.serviceName).toBe('db-headless');
  });

  test('every object gets the chart namespace', () => {
    const { objects } = synth({}, { namespace: 'prod' });
    expect(objects.map((o) => o.metadata.namespace)).toEqual(objects.map(() => 'prod'));
  });
});

describe('replicas', () => {
  test('the primary StatefulSet has one pod', () => {
    expect(statefulSet(objectsOf(), 'primary').spec.replicas).toBe(1);
  });

  test.each([2, 3, 5])('the replica StatefulSet has instances - 1 pods for %p instances', (instances) => {
    expect(statefulSet(objectsOf({ instances }), 'replica').spec.replicas).toBe(instances - 1);
  });

  describe('with a single instance', () => {
    const { cluster, objects } = synth({ instances: 1 });

    test('there is no replica StatefulSet', () => {
      expect(has(objects, 'StatefulSet', 'db-replica')).toBe(false);
    });

    test('there is no read-only Service', () => {
      expect(has(objects, 'Service', 'db-ro')).toBe(false);
    });

    test('there is no PodDisruptionBudget', () => {
      expect(objects.some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
    });

    test('the read-only host is the read-write host', () => {
      expect(cluster.readOnlyHost).toBe(cluster.readWriteHost);
      expect(cluster.replicas).toBe(0);
    });
  });

  test('hosts are short names without a namespace', () => {
    const { cluster } = synth();
    expect([cluster.readWriteHost, cluster.readOnlyHost]).toEqual(['db-rw', 'db-ro']);
  });

  test('hosts are <service>.<namespace>.svc with a namespace', () => {
    const { cluster } = synth({}, { namespace: 'prod' });
    expect([cluster.readWriteHost, cluster.readOnlyHost]).toEqual(['db-rw.prod.svc', 'db-ro.prod.svc']);
  });
});

describe('selectors', () => {
  test('the read-write Service selects the primary', () => {
    expect(service(objectsOf(), 'rw').spec.selector).toEqual(selectorOf('primary'));
  });

  test('the read-only Service selects the replicas', () => {
    expect(service(objectsOf(), 'ro').spec.selector).toEqual(selectorOf('replica'));
  });

  test('the headless Service selects every instance', () => {
    expect(service(objectsOf(), 'headless').spec.selector).toEqual(SELECTOR_ALL);
  });

  test('the PodDisruptionBudget selects every instance and allows one disruption', () => {
    const pdb = findObject(objectsOf(), 'PodDisruptionBudget', 'db');
    expect(pdb.spec.selector.matchLabels).toEqual(SELECTOR_ALL);
    expect(pdb.spec.maxUnavailable).toBe(1);
  });

  test.each(['primary', 'replica'] as const)('the %s StatefulSet selects its own pods', (role) => {
    const sts = statefulSet(objectsOf(), role);
    expect(sts.spec.selector.matchLabels).toEqual(selectorOf(role));
    expect(sts.spec.template.metadata.labels).toMatchObject(selectorOf(role));
  });

  test('selectors leave out managed-by, part-of and user labels', () => {
    const objects = objectsOf({ labels: { team: 'payments' }, partOf: 'shop' });
    const selectors = [
      ...objects.filter((o) => o.kind === 'Service').map((o) => o.spec.selector),
      ...objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'PodDisruptionBudget').map((o) => o.spec.selector.matchLabels),
    ];
    for (const selector of selectors) {
      expect(Object.keys(selector)).not.toContain('app.kubernetes.io/managed-by');
      expect(Object.keys(selector)).not.toContain('app.kubernetes.io/part-of');
      expect(Object.keys(selector)).not.toContain('team');
    }
  });

  test('metadata carries managed-by, part-of and user labels', () => {
    const labels = statefulSet(objectsOf({ labels: { team: 'payments' }, partOf: 'shop' }), 'primary').spec.template.metadata.labels;
    expect(labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'cdk8s-postgres', 'app.kubernetes.io/part-of': 'shop', 'team': 'payments' });
  });

  test('the fields a live StatefulSet cannot change stay put when labels, annotations, part-of or placement change', () => {
    // The API server refuses updates to anything but replicas, template, updateStrategy,
    // persistentVolumeClaimRetentionPolicy and minReadySeconds.
    const immutable = (objects: any[]) => objects.filter((o) => o.kind === 'StatefulSet')
      .map(({ spec }) => [spec.selector, spec.serviceName, spec.podManagementPolicy, spec.volumeClaimTemplates]);
    const changed = objectsOf({
      labels: { team: 'payments' }, annotations: { 'example.com/owner': 'payments' }, partOf: 'shop',
      placement: { nodeSelector: { pool: 'db' } },
    });
    expect(immutable(changed)).toEqual(immutable(objectsOf()));
    expect(statefulSet(changed, 'primary').spec.volumeClaimTemplates[0].metadata.labels).toEqual(selectorOf('primary'));
  });

  test('selectors do not change when the construct moves under another parent', () => {
    const selectorsOf = (objects: any[]) => objects
      .filter((o) => ['Service', 'StatefulSet', 'PodDisruptionBudget'].includes(o.kind))
      .map((o) => [o.kind, o.metadata.name, o.kind === 'Service' ? o.spec.selector : o.spec.selector.matchLabels]);
    const moved = synth({}, { parent: 'Databases' }).objects;
    expect(selectorsOf(moved)).toEqual(selectorsOf(objectsOf()));
  });
});

describe('ports', () => {
  test.each(['headless', 'rw', 'ro'] as const)('the %s Service port is named postgres and targets the named port', (suffix) => {
    expect(service(objectsOf(), suffix).spec.ports).toEqual([{ name: 'postgres', port: 5432, targetPort: 'postgres', protocol: 'TCP' }]);
  });

  test('a custom port reaches the Services, the container and postgresql.conf', () => {
    const objects = objectsOf({ port: 6543 });
    expect(service(objects, 'rw').spec.ports[0].port).toBe(6543);
    expect(postgresContainer(objects).ports).toEqual([{ name: 'postgres', containerPort: 6543, protocol: 'TCP' }]);
    expect(confValue(postgresqlConf(objects), 'port')).toBe('6543');
  });
});

describe('postgresql.conf', () => {
  test('shared_buffers is a quarter of the 1Gi default memory limit', () => {
    expect(confValue(postgresqlConf(objectsOf()), 'shared_buffers')).toBe("'256MB'");
  });

  test('effective_cache_size is three quarters of the 1Gi default memory limit', () => {
    expect(confValue(postgresqlConf(objectsOf()), 'effective_cache_size')).toBe("'768MB'");
  });

  test('memory settings follow the memory limit', () => {
    const conf = postgresqlConf(objectsOf({ resources: { memoryLimit: '4Gi' } }));
    expect([confValue(conf, 'shared_buffers'), confValue(conf, 'effective_cache_size')]).toEqual(["'1GB'", "'3GB'"]);
  });

  test.each([
    [1, '10'],
    [3, '10'],
    [8, '10'],
    [9, '11'],
    [12, '14'],
  ])('max_wal_senders and max_replication_slots are max(10, instances + 2) for %p instances', (instances, expected) => {
    const conf = postgresqlConf(objectsOf({ instances }));
    expect(confValue(conf, 'max_wal_senders')).toBe(expected);
    expect(confValue(conf, 'max_replication_slots')).toBe(expected);
  });

  test('max_slot_wal_keep_size is half of the data volume', () => {
    expect(confValue(postgresqlConf(objectsOf({ storage: { size: '20Gi' } })), 'max_slot_wal_keep_size')).toBe("'10GB'");
  });

  test('max_slot_wal_keep_size is half of the WAL volume when there is one', () => {
    const conf = postgresqlConf(objectsOf({ storage: { size: '20Gi', walSize: '4Gi' } }));
    expect(confValue(conf, 'max_slot_wal_keep_size')).toBe("'2GB'");
  });

  test('the construct sets listening, socket, hba file and scram-sha-256', () => {
    const conf = postgresqlConf(objectsOf());
    expect(confValue(conf, 'listen_addresses')).toBe("'*'");
    expect(confValue(conf, 'unix_socket_directories')).toBe("'/var/run/postgresql'");
    expect(confValue(conf, 'hba_file')).toBe("'/etc/postgresql/pg_hba.conf'");
    expect(confValue(conf, 'password_encryption')).toBe("'scram-sha-256'");
  });

  test('typed settings replace the defaults', () => {
    const conf = postgresqlConf(objectsOf({ settings: { maxConnections: 250, workMem: '16MB', hotStandbyFeedback: true } }));
    expect([confValue(conf, 'max_connections'), confValue(conf, 'work_mem'), confValue(conf, 'hot_standby_feedback')])
      .toEqual(['250', "'16MB'", 'on']);
  });

  test('an extension parameter is written quoted', () => {
    const conf = postgresqlConf(objectsOf({ extraParameters: { 'pg_stat_statements.max': '10000' } }));
    expect(confValue(conf, 'pg_stat_statements.max')).toBe("'10000'");
  });

  test('an extra parameter value with quotes has them doubled', () => {
    const conf = postgresqlConf(objectsOf({ extraParameters: { search_path: "'$user', public" } }));
    expect(confValue(conf, 'search_path')).toBe("'''$user'', public'");
  });

  test('every parameter appears once', () => {
    const names = postgresqlConf(objectsOf({ extraParameters: { log_min_duration_statement: '250' } }))
      .split('\n').filter((line) => /^[a-z_.]+ = /.test(line)).map((line) => line.split(' ')[0]);
    expect(new Set(names).size).toBe(names.length);
  });

  test('asynchronous replication writes no synchronous_standby_names', () => {
    expect(confValue(postgresqlConf(objectsOf()), 'synchronous_standby_names')).toBeUndefined();
  });

  test('ANY 1 lists the replica application names', () => {
    const conf = postgresqlConf(objectsOf({ synchronousReplication: SynchronousReplication.any(1) }));
    expect(confValue(conf, 'synchronous_standby_names')).toBe('\'ANY 1 ("db_replica_0", "db_replica_1")\'');
  });

  test('FIRST 2 lists the replica application names in ordinal order', () => {
    const conf = postgresqlConf(objectsOf({ instances: 4, synchronousReplication: SynchronousReplication.first(2) }));
    expect(confValue(conf, 'synchronous_standby_names')).toBe('\'FIRST 2 ("db_replica_0", "db_replica_1", "db_replica_2")\'');
  });
});

describe('pg_hba.conf', () => {
  const SUPERUSER_REJECT = ['host', 'all', '@/etc/postgresql-superuser/username', 'all', 'reject'];

  test('every rule uses scram-sha-256 but the superuser\'s reject', () => {
    const rules = hbaRules(objectsOf({ allowedCidrs: ['10.0.0.0/8', 'fd00::/8'] }));
    expect(rules.length).toBeGreaterThan(0);
    expect(rules.filter((rule) => rule[rule.length - 1] !== 'scram-sha-256')).toEqual([SUPERUSER_REJECT]);
    const logins = hbaRules(objectsOf({ allowedCidrs: ['10.0.0.0/8', 'fd00::/8'], superuserNetworkAccess: true }));
    expect(logins.map((rule) => rule[rule.length - 1])).toEqual(logins.map(() => 'scram-sha-256'));
  });

  test('no rule uses trust, md5 or password', () => {
    expect(pgHbaConf(objectsOf())).not.toMatch(/\b(trust|md5|password)\b/);
  });

  test('replication rules admit only the replication group', () => {
    const rules = hbaRules(objectsOf()).filter((rule) => rule[1] === 'replication');
    expect(rules.length).toBeGreaterThan(0);
    expect(rules.map((rule) => rule[2])).toEqual(rules.map(() => '+replication_clients'));
  });

  test('each allowed network gets a replication rule and a login rule, over TLS, after the superuser\'s reject', () => {
    const rules = hbaRules(objectsOf({ allowedCidrs: ['10.0.0.0/8'] }));
    expect(rules).toEqual([
      ['local', 'all', 'all', 'scram-sha-256'],
      SUPERUSER_REJECT,
      ['hostssl', 'replication', '+replication_clients', '10.0.0.0/8', 'scram-sha-256'],
      ['hostssl', 'all', 'all', '10.0.0.0/8', 'scram-sha-256'],
    ]);
  });

  // pg_hba.conf takes the first line that matches: the reject must come before every line the superuser's name would match.
  test('the superuser is rejected over TCP, the pod\'s loopback included, before any other host line; the socket still admits it', () => {
    for (const tls of [undefined, { disabled: true }]) {
      const rules = hbaRules(objectsOf({ ...(tls ? { tls } : {}), allowedCidrs: ['10.0.0.0/8'] }));
      expect(rules[0]).toEqual(['local', 'all', 'all', 'scram-sha-256']);
      expect(rules[1]).toEqual(SUPERUSER_REJECT);
      expect(rules.slice(2).every((rule) => rule[0].startsWith('host'))).toBe(true);
    }
  });

  test('superuserNetworkAccess: true drops the reject line: the superuser logs in from allowedCidrs like any role', () => {
    expect(hbaRules(objectsOf({ allowedCidrs: ['10.0.0.0/8'], superuserNetworkAccess: true }))).toEqual([
      ['local', 'all', 'all', 'scram-sha-256'],
      ['hostssl', 'replication', '+replication_clients', '10.0.0.0/8', 'scram-sha-256'],
      ['hostssl', 'all', 'all', '10.0.0.0/8', 'scram-sha-256'],
    ]);
    expect(hbaRules(objectsOf({ superuserNetworkAccess: false }))[1]).toEqual(SUPERUSER_REJECT);
  });

  test.each(['primary', 'replica'] as const)('the %s\'s superuser-name volume is the superuser Secret\'s username key alone, at the path pg_hba.conf reads', (role) => {
    const objects = objectsOf({ superuserSecret: { secretName: 'pg-superuser', usernameKey: 'user', passwordKey: 'pass' } });
    expect(podSpec(objects, role).volumes.find((v: any) => v.name === 'superuser-name')).toEqual({
      name: 'superuser-name', projected: { defaultMode: 0o440, sources: [{ secret: { name: 'pg-superuser', items: [{ key: 'user', path: 'username' }] } }] },
    });
    const postgres = podSpec(objects, role).containers.find((c: any) => c.name === 'postgres');
    const mount = postgres.volumeMounts.find((m: any) => m.name === 'superuser-name');
    expect(mount).toEqual({ name: 'superuser-name', mountPath: '/etc/postgresql-superuser', readOnly: true });
    const file = SUPERUSER_REJECT[2].slice(1);
    expect(file).toBe(`${mount.mountPath}/username`);
  });

  // PostgreSQL refuses to start ("could not load pg_hba.conf") when an @file of pg_hba.conf is missing.
  test.each(['primary', 'replica'] as const)('every %s container that can read pg_hba.conf (it mounts the config volume) also mounts each @file pg_hba.conf names', (role) => {
    const spec = podSpec(objectsOf(), role);
    const files = hbaRules(objectsOf()).flatMap((rule) => rule.filter((field) => field.startsWith('@')).map((field) => field.slice(1)));
    expect(files).toEqual(['/etc/postgresql-superuser/username']);
    const readers = [...spec.initContainers, ...spec.containers].filter((c: any) => c.volumeMounts.some((m: any) => m.name === 'config'));
    expect(readers.map((c: any) => c.name)).toEqual(['bootstrap', 'postgres', 'settings-agent']);
    for (const container of readers) {
      for (const file of files) {
        const covering = container.volumeMounts.filter((m: any) => file.startsWith(`${m.mountPath}/`));
        expect({ container: container.name, file, mounts: covering.map((m: any) => m.name) }).toEqual({ container: container.name, file, mounts: ['superuser-name'] });
      }
    }
  });

  test('with superuserNetworkAccess there is no superuser-name volume and no mount of it', () => {
    const objects = objectsOf({ superuserNetworkAccess: true });
    for (const role of ['primary', 'replica'] as const) {
      expect(podSpec(objects, role).volumes.map((v: any) => v.name)).not.toContain('superuser-name');
    }
    expect(allContainers(objects).flatMap((c) => c.volumeMounts).filter((m: any) => m.name === 'superuser-name')).toEqual([]);
    expect(pgHbaConf(objects)).not.toContain('@');
  });

  test('superuserNetworkAccess rolls the pods (the superuser-name volume goes), though its pg_hba.conf alone would be reloaded', () => {
    const [before, after] = [objectsOf(), objectsOf({ superuserNetworkAccess: true })];
    expect(checksum(after)).toBe(checksum(before));
    expect(pgHbaConf(after)).not.toBe(pgHbaConf(before));
    expect(podSpec(after)).not.toEqual(podSpec(before));
  });
});

describe('Secrets', () => {
  const props: Props = {
    superuserSecret: { secretName: 'pg-superuser', usernameKey: 'user', passwordKey: 'pass' },
    replicationSecret: { secretName: 'pg-replication' },
    databases: [{ name: 'orders', owner: { secretName: 'orders-owner', passwordKey: 'secret' } }],
  };

  test('no Secret object is rendered', () => {
    expect(objectsOf(props).filter((o) => o.kind === 'Secret')).toEqual([]);
  });

  test('no container takes a password from the environment', () => {
    const env = allContainers(objectsOf(props)).flatMap((c) => c.env ?? []);
    expect(env.map((e: any) => e.name).filter((name: string) => /PASSWORD/i.test(name))).toEqual([]);
    expect(env.filter((e: any) => e.valueFrom?.secretKeyRef)).toEqual([]);
    expect(allContainers(objectsOf(props)).filter((c) => c.envFrom)).toEqual([]);
  });

  test('literal environment values are paths, roles, hosts, ports, flags and the certificate\'s names only', () => {
    const { cluster, objects } = synth(props);
    const literals = allContainers(objects).flatMap((c) => c.env ?? []).filter((e: any) => 'value' in e);
    const certificateNames = literals.filter((e: any) => e.name.startsWith('CERTIFICATE_') && e.name !== 'CERTIFICATE_DIR');
    // One certificate init container in each of the two StatefulSets.
    expect(certificateNames).toEqual([0, 1].flatMap(() => [
      { name: 'CERTIFICATE_COMMON_NAME', value: 'db-rw' }, { name: 'CERTIFICATE_DNS_NAMES', value: cluster.certificateDnsNames.join(' ') },
    ]));
    for (const { value } of literals.filter((e: any) => !certificateNames.includes(e))) {
      expect(value).toMatch(/^(|\/[\w/.-]+|primary|replica|db-primary-0\.db-headless|db-headless|\d+|true)$/);
    }
  });

  test('the YAML sets no password anywhere', () => {
    const yaml = stringify(objectsOf(props));
    expect(yaml).not.toMatch(/PGPASSWORD|POSTGRES_PASSWORD|PASSWORD\s+'/i);
  });

  test('the bootstrap SQL reads passwords from the mounted files', () => {
    const script = bootstrapScript(objectsOf(props));
    expect(script).toContain('\\set role_password `cat "$CREDENTIALS_DIR/replication/password"`');
    expect(script).toMatch(/PASSWORD :'role_password'/);
    expect(script).not.toMatch(/PASSWORD\s+'/);
  });

  test('the projected volume maps the configured keys to username and password files', () => {
    const secrets = podSpec(objectsOf(props)).volumes.find((v: any) => v.name === 'secrets');
    // Other roles' directories are named after their Secret, so declaration order never renames them.
    const ownerDir = secrets.projected.sources[2].secret.items[0].path.split('/')[0];
    expect(ownerDir).toMatch(/^role-orders-owner-[0-9a-f]{8}$/);
    expect(secrets.projected.sources.map((s: any) => s.secret)).toEqual([
      { name: 'pg-superuser', items: [{ key: 'user', path: 'superuser/username' }, { key: 'pass', path: 'superuser/password' }] },
      { name: 'pg-replication', items: [{ key: 'username', path: 'replication/username' }, { key: 'password', path: 'replication/password' }] },
      { name: 'orders-owner', items: [{ key: 'username', path: `${ownerDir}/username` }, { key: 'secret', path: `${ownerDir}/password` }] },
    ]);
  });

  test('replicas mount only the replication role\'s Secret: they provision nothing', () => {
    const replicaSecrets = podSpec(objectsOf(props), 'replica').volumes.find((v: any) => v.name === 'secrets');
    expect(replicaSecrets.projected.sources.map((s: any) => s.secret)).toEqual([
      { name: 'pg-replication', items: [{ key: 'username', path: 'replication/username' }, { key: 'password', path: 'replication/password' }] },
    ]);
    expect(bootstrapScript(objectsOf(props)).match(/^clone_replica\(\) \{[\s\S]*?^\}/m)![0]).not.toMatch(/secret (superuser|role-)/);
  });

  test('only the bootstrap init container mounts the Secrets', () => {
    const spec = podSpec(objectsOf(props));
    const mountsSecrets = (c: any) => c.volumeMounts.some((m: any) => m.name === 'secrets');
    expect(spec.initContainers.filter(mountsSecrets).map((c: any) => c.name)).toEqual(['bootstrap']);
    expect(spec.containers.filter(mountsSecrets)).toEqual([]);
  });
});

describe('security', () => {
  test('the pod runs as non-root uid 999 with a matching fsGroup and RuntimeDefault seccomp', () => {
    expect(podSpec(objectsOf()).securityContext).toMatchObject({
      runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('runAsUser sets the uid, gid and fsGroup', () => {
    expect(podSpec(objectsOf({ runAsUser: 26 })).securityContext).toMatchObject({ runAsUser: 26, runAsGroup: 26, fsGroup: 26 });
  });

  test('every container drops all capabilities and cannot escalate or write its root filesystem', () => {
    const contexts = allContainers(objectsOf()).map((c) => c.securityContext);
    // Each StatefulSet: the certificate init container, bootstrap, postgres and the settings agent.
    expect(allContainers(objectsOf()).map((c) => c.name))
      .toEqual(['certificate', 'bootstrap', 'postgres', 'settings-agent', 'certificate', 'bootstrap', 'postgres', 'settings-agent']);
    expect(contexts.length).toBe(8);
    for (const context of contexts) {
      expect(context).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    }
  });

  test('every container has CPU and memory requests and limits', () => {
    for (const container of allContainers(objectsOf())) {
      expect(Object.keys(container.resources.requests).sort()).toEqual(['cpu', 'memory']);
      expect(Object.keys(container.resources.limits).sort()).toEqual(['cpu', 'memory']);
    }
  });

  test('resources default to 250m/1 CPU and 1Gi memory', () => {
    expect(postgresContainer(objectsOf()).resources).toEqual({ requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } });
  });

  test('the pod and the ServiceAccount do not mount a token', () => {
    const objects = objectsOf();
    expect(podSpec(objects).automountServiceAccountToken).toBe(false);
    expect(findObject(objects, 'ServiceAccount', 'db').automountServiceAccountToken).toBe(false);
    expect(podSpec(objects).serviceAccountName).toBe('db');
  });
});

describe('probes and shutdown', () => {
  const probes = (container: any) => [container.startupProbe, container.readinessProbe, container.livenessProbe];

  test('startup, readiness and liveness probes run pg_isready over the socket', () => {
    for (const probe of probes(postgresContainer(objectsOf()))) {
      expect(probe.exec.command[0]).toBe('pg_isready');
      expect(probe.exec.command).toContain('--host=/var/run/postgresql');
      expect(probe.exec.command).toContain('--port=5432');
    }
  });

  test('probes use no password and no psql', () => {
    for (const probe of probes(postgresContainer(objectsOf()))) {
      expect(probe.exec.command.join(' ')).not.toMatch(/psql|password|PGPASS/i);
    }
  });

  test('the socket directory is mounted in the postgres container', () => {
    expect(postgresContainer(objectsOf()).volumeMounts).toContainEqual({ name: 'socket', mountPath: '/var/run/postgresql' });
  });

  test('preStop stops PostgreSQL with pg_ctl in fast mode: a replica at once, the primary after its replicas (test/rollout-order.test.ts)', () => {
    const replica: string[] = podSpec(objectsOf(), 'replica').containers[0].lifecycle.preStop.exec.command;
    expect(replica.slice(0, 2)).toEqual(['pg_ctl', 'stop']);
    expect(replica).toContain('--mode=fast');
    const primary: string[] = postgresContainer(objectsOf()).lifecycle.preStop.exec.command;
    expect(primary[2]).toMatch(/^exec pg_ctl stop --pgdata="\$pgdata" --mode=fast --wait --timeout=/m);
  });

  test.each([10, 60, 300])('the preStop timeout is below a grace period of %p s', (seconds) => {
    const objects = objectsOf({ terminationGracePeriod: Duration.seconds(seconds) });
    const timeout = podSpec(objects, 'replica').containers[0].lifecycle.preStop.exec.command.find((arg: string) => arg.startsWith('--timeout='));
    expect(podSpec(objects).terminationGracePeriodSeconds).toBe(seconds);
    expect(Number(timeout.slice('--timeout='.length))).toBeGreaterThan(0);
    expect(Number(timeout.slice('--timeout='.length))).toBeLessThan(seconds);
    // The primary's hook leaves the shutdown at least 5 s of the grace period.
    const script: string = postgresContainer(objects).lifecycle.preStop.exec.command[2];
    expect(script).toContain(`\ngrace=${seconds}\n`);
    expect(script).toContain('timeout=$((grace - SECONDS - 5))');
    expect(Number(/\nwait_limit=(\d+)\n/.exec(script)![1])).toBeLessThan(seconds - 5);
  });
});

describe('volumes', () => {
  test('PVCs are retained by default', () => {
    expect(statefulSet(objectsOf(), 'primary').spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
  });

  test('PVCs are deleted when asked', () => {
    const policy = statefulSet(objectsOf({ volumeRetention: VolumeRetention.DELETE }), 'replica').spec.persistentVolumeClaimRetentionPolicy;
    expect(policy).toEqual({ whenDeleted: 'Delete', whenScaled: 'Delete' });
  });

  test('without walSize there is only the data volume', () => {
    const claims = statefulSet(objectsOf(), 'primary').spec.volumeClaimTemplates;
    expect(claims.map((c: any) => c.metadata.name)).toEqual(['data']);
    expect(claims[0].spec.resources.requests.storage).toBe('10Gi');
    expect(postgresContainer(objectsOf()).volumeMounts.map((m: any) => m.name)).not.toContain('wal');
  });

  test('walSize adds a wal volume of that size', () => {
    const objects = objectsOf({ storage: { walSize: '5Gi' } });
    const claims = statefulSet(objects, 'replica').spec.volumeClaimTemplates;
    expect(claims.map((c: any) => c.metadata.name)).toEqual(['data', 'wal']);
    expect(claims[1].spec.resources.requests.storage).toBe('5Gi');
    expect(postgresContainer(objects).volumeMounts).toContainEqual({ name: 'wal', mountPath: '/var/lib/postgresql/wal' });
  });

  test('the wal volume takes the data StorageClass unless it has its own', () => {
    const storageClasses = (props: Props) => statefulSet(objectsOf(props), 'primary').spec.volumeClaimTemplates
      .map((c: any) => c.spec.storageClassName);
    expect(storageClasses({ storage: { storageClassName: 'standard', walSize: '5Gi' } })).toEqual(['standard', 'standard']);
    expect(storageClasses({ storage: { storageClassName: 'standard', walSize: '5Gi', walStorageClassName: 'fast' } }))
      .toEqual(['standard', 'fast']);
  });

  test('the bootstrap gets a WAL directory only with a wal volume', () => {
    const walDir = (props: Props) => podSpec(objectsOf(props)).initContainers.find((c: any) => c.name === 'bootstrap').env
      .find((e: any) => e.name === 'PG_WALDIR').value;
    expect(walDir({})).toBe('');
    expect(walDir({ storage: { walSize: '5Gi' } })).toBe('/var/lib/postgresql/wal/pg_wal');
  });
});

describe('config checksum', () => {
  test('is identical for identical props', () => {
    expect(checksum(objectsOf({ settings: { maxConnections: 200 } }))).toBe(checksum(objectsOf({ settings: { maxConnections: 200 } })));
  });

  test('is the same on the primary and the replicas', () => {
    const objects = objectsOf();
    expect(checksum(objects, 'replica')).toBe(checksum(objects, 'primary'));
  });

  test('changes when a setting changes', () => {
    expect(checksum(objectsOf({ settings: { maxConnections: 200 } }))).not.toBe(checksum(objectsOf({ settings: { maxConnections: 201 } })));
  });

  test('stays when only pg_hba.conf changes (the allowed networks): the settings agent reloads it', () => {
    const [wide, narrow] = [objectsOf({ allowedCidrs: ['10.0.0.0/8'] }), objectsOf({ allowedCidrs: ['10.0.0.0/16'] })];
    expect(pgHbaConf(narrow)).not.toBe(pgHbaConf(wide));
    expect(checksum(narrow)).toBe(checksum(wide));
  });

  test('is a sha256 hex digest', () => {
    expect(checksum(objectsOf())).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('topology spread', () => {
  const constraints = (props: Props) => podSpec(objectsOf(props)).topologySpreadConstraints;

  test('prefers different nodes by default', () => {
    expect(constraints({})).toEqual([{
      maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: SELECTOR_ALL },
    }]);
  });

  test('requires different nodes with PodSpread.REQUIRED', () => {
    expect(constraints({ spread: PodSpread.REQUIRED })[0].whenUnsatisfiable).toBe('DoNotSchedule');
  });
});

describe('schema validation', () => {
  const variations: Array<[string, Props, string | undefined]> = [
    ['a default cluster', {}, undefined],
    ['a single instance', { instances: 1 }, undefined],
    ['a fully configured cluster', {
      instances: 4,
      port: 6543,
      databases: [{ name: 'orders', owner: { secretName: 'orders-owner' } }],
      synchronousReplication: SynchronousReplication.any(2),
      allowedCidrs: ['10.0.0.0/8', 'fd00::/8'],
      resources: { cpuRequest: '500m', cpuLimit: '2', memoryRequest: '2Gi', memoryLimit: '4Gi' },
      storage: { size: '50Gi', storageClassName: 'standard', walSize: '10Gi', walStorageClassName: 'fast' },
      volumeRetention: VolumeRetention.DELETE,
      spread: PodSpread.REQUIRED,
      terminationGracePeriod: Duration.minutes(2),
      labels: { team: 'payments' },
      partOf: 'shop',
      extraParameters: { 'log_min_duration_statement': '250', 'pg_stat_statements.max': '10000' },
      settings: { sharedPreloadLibraries: ['pg_stat_statements'], hotStandbyFeedback: true },
    }, 'prod'],
  ];
  const versions: KubeVersion[] = ['v1.27.0', 'v1.36.0'];
  const cases = variations.flatMap(([what, props, namespace]) => versions.map((version) => [what, version, props, namespace] as const));

  test.each(cases)('%s validates strictly against Kubernetes %s', (_what, version, props, namespace) => {
    expect(validateManifests(synth(props, { namespace }).objects, version)).toEqual([]);
  });
});

describe('roles added by other constructs', () => {
  /** A cluster and the objects of its chart, after `extend` had the chance to add roles. */
  function synthExtended(extend: (cluster: PostgresStatefulCluster) => void, props: Props = {}): any[] {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
    extend(cluster);
    return synthObjects(chart);
  }
  const secretNames = (objects: any[]) =>
    podSpec(objects).volumes.find((v: any) => v.name === 'secrets').projected.sources.map((s: any) => s.secret.name);

  test('a role added after the cluster was built reaches the script, the Secret mounts and the checksum', () => {
    const plain = synthExtended(() => undefined);
    const extended = synthExtended((cluster) => cluster.addRole({ credentials: { secretName: 'monitoring' }, memberOf: ['pg_monitor'] }));
    expect(bootstrapScript(extended)).toMatch(/\\set role_name `cat "\$CREDENTIALS_DIR\/role-monitoring-[0-9a-f]{8}\/username"`/);
    expect(bootstrapScript(extended)).toContain('GRANT pg_monitor TO :"role_name";');
    expect(secretNames(extended)).toEqual(['pg-superuser', 'pg-replication', 'monitoring']);
    expect(checksum(extended)).not.toBe(checksum(plain));
  });

  test('the same Secret added twice is one role with both memberships', () => {
    const objects = synthExtended((cluster) => {
      cluster.addRole({ credentials: { secretName: 'monitoring' }, memberOf: ['pg_monitor'] });
      cluster.addRole({ credentials: { secretName: 'monitoring' }, memberOf: ['pg_read_all_data', 'pg_monitor'] });
    });
    expect(secretNames(objects)).toEqual(['pg-superuser', 'pg-replication', 'monitoring']);
    expect(bootstrapScript(objects).match(/GRANT pg_monitor/g)).toHaveLength(1);
    expect(bootstrapScript(objects)).toContain('GRANT pg_read_all_data TO :"role_name";');
  });

  test('a password lookup installs the function in template1, postgres and every database', () => {
    let query = '';
    const objects = synthExtended((cluster) => { query = cluster._addPasswordLookup({ secretName: 'pooler-auth' }); },
      { databases: [{ name: 'orders', owner: { secretName: 'orders-owner' } }] });
    expect(query).toBe('SELECT usename, passwd FROM pgbouncer.get_auth($1)');
    const script = bootstrapScript(objects);
    expect(script.match(/^\\connect (\w+)$/gm)).toEqual(['\\connect template1', '\\connect postgres', '\\connect orders']);
    expect(script).toContain('SECURITY DEFINER SET search_path = pg_catalog');
    expect(script).toContain('AND NOT usesuper');
    expect(script).toContain('REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;');
  });

  test('a role with a membership that is not a plain role name is refused', () => {
    expect(() => synthExtended((cluster) => cluster.addRole({ credentials: { secretName: 'm' }, memberOf: ['pg_monitor; DROP'] })))
      .toThrow(/^test\/Db: addRole\(role\)\.memberOf "pg_monitor; DROP" is not a plain role name; use lower-case letters/);
  });

  test('roles from props are provisioned like added ones', () => {
    const objects = objectsOf({ roles: [{ credentials: { secretName: 'reporting' }, memberOf: ['pg_read_all_data'] }] });
    expect(secretNames(objects)).toEqual(['pg-superuser', 'pg-replication', 'reporting']);
    expect(bootstrapScript(objects)).toContain('GRANT pg_read_all_data TO :"role_name";');
  });
});
