/**
 * Clones and standby clusters in the plain mode: what `clone` and `standby` render (source.conf,
 * restore.sh for the source, the bootstrap's environment and mounts, restore_command, the
 * NetworkPolicy's egress) and every refusal. The HA mode's rendering is test/ha-source.test.ts.
 */
import { BackupRepository, CloneMethod, PostgresStatefulCluster, PostgresStatefulClusterProps, PrimaryRecovery } from '../lib';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { REPOSITORY_ONLY, SOURCE, STREAMING_ONLY } from './support/source-clusters';
import { findObject, synthObjects, testChart } from './support/synth';
import { postgresVersion } from '../lib/core/postgres-versions';

type Props = Partial<PostgresStatefulClusterProps>;

const IMAGE = postgresVersion().highAvailabilityImage.image;
const S3 = { bucket: 'orders-backups', endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1', credentials: { secretName: 'orders-s3' } };

/** A plain cluster `orders-dr` (2 instances, an image with pgBackRest, TLS) in namespace `dr`. */
function synth(props: Props = {}): any[] {
  const chart = testChart('dr');
  new PostgresStatefulCluster(chart, 'Dr', {
    name: 'orders-dr', instances: 2, image: IMAGE, superuserSecret: { secretName: 'dr-superuser' }, replicationSecret: { secretName: 'orders-replication' },
    tls: { secretName: 'orders-dr-tls' }, ...props,
  });
  return synthObjects(chart);
}

const podSpec = (objects: any[], statefulSet: string) => findObject(objects, 'StatefulSet', statefulSet).spec.template.spec;
const bootstrap = (objects: any[]) => podSpec(objects, 'orders-dr-primary').initContainers.find((c: any) => c.name === 'bootstrap');
const env = (container: any) => Object.fromEntries((container.env ?? []).filter((e: any) => e.value !== undefined)
  .map((e: any) => [e.name, e.value]));
const postgresqlConf = (objects: any[]) => findObject(objects, 'ConfigMap', 'orders-dr-config').data['postgresql.conf'];
const sourceFiles = (objects: any[]) => findObject(objects, 'ConfigMap', 'orders-dr-source').data;
const bootstrapScript = (objects: any[]) => findObject(objects, 'ConfigMap', 'orders-dr-scripts').data['bootstrap.sh'];

describe('clone from a backup', () => {
  const objects = synth({ clone: { source: SOURCE, targetTime: '2026-03-01T12:00:00Z' } });

  test('source.conf reads the source\'s repository host with the client certificate it admits, under the source\'s stanza, and nothing of the clone', () => {
    const conf = sourceFiles(objects)['source.conf'];
    expect(conf).toContain('repo1-host=orders-repo-host-0.orders-repo-host.shop.svc\n');
    expect(conf).toContain('repo1-host-cert-file=/etc/pgbackrest-source-tls/tls.crt\n');
    expect(conf).toContain('repo1-host-config=/etc/pgbackrest/repo-host.conf\n');
    expect(conf).toContain('\n[orders]\npg1-path=/var/lib/postgresql/data/pgdata\n');
    expect(conf).not.toMatch(/\[orders-dr\]|^tls-server/m);
  });

  test('restore.sh is rendered for the source\'s stanza and the target, and the bootstrap runs it (FROM_BACKUP is the default with a repository)', () => {
    const restore = sourceFiles(objects)['restore.sh'];
    expect(restore).toContain('--stanza=orders --repo=1');
    expect(restore).toContain("'--target=2026-03-01 12:00:00+00:00' --target-action=promote --target-timeline=current");
    expect(env(bootstrap(objects))).toMatchObject({
      SOURCE_MODE: 'clone-from-backup', SOURCE_CONFIG: '/etc/pgbackrest-source/source.conf', SOURCE_STANZA: 'orders', SOURCE_REPO: '1',
      SOURCE_RESTORE_SCRIPT: '/etc/pgbackrest-source/restore.sh', SOURCE_HOST: 'orders-rw.shop.svc', SOURCE_PORT: '5432',
    });
    expect(shellcheck(restore)).toBe('');
    expect(shellcheck(bootstrapScript(objects))).toBe('');
  });

  test('the primary mounts source.conf, the client certificate Secret, the source\'s CA and its replication role; replicas get no source Secret', () => {
    const spec = podSpec(objects, 'orders-dr-primary');
    expect(spec.volumes).toEqual(expect.arrayContaining([
      expect.objectContaining({ name: 'pgbackrest-source', configMap: expect.objectContaining({ name: 'orders-dr-source' }) }),
      expect.objectContaining({ name: 'pgbackrest-source-tls', secret: expect.objectContaining({ secretName: 'orders-tls' }) }),
    ]));
    const secrets = (s: any) => s.volumes.find((v: any) => v.name === 'secrets').projected.sources.map((source: any) => source.secret.name);
    expect(secrets(spec)).toContain('orders-replication');
    const paths = (s: any) => s.volumes.find((v: any) => v.name === 'secrets').projected.sources.flatMap((source: any) => source.secret.items.map((i: any) => i.path));
    expect(paths(spec)).toContain('source-replication/password');
    expect(paths(podSpec(objects, 'orders-dr-replica'))).not.toContain('source-replication/password');
    expect(bootstrap(objects).volumeMounts.map((m: any) => m.mountPath)).toEqual(expect.arrayContaining(
      ['/etc/pgbackrest-source', '/etc/pgbackrest-source-tls', '/etc/postgresql-source-ca']));
  });

  test('the NetworkPolicy lets the instances reach the source\'s repository host and primary in its namespace', () => {
    const policy = findObject(objects, 'NetworkPolicy', 'orders-dr');
    const peers = policy.spec.egress.flatMap((rule: any) => (rule.to ?? []).map((to: any) => ({ to, ports: rule.ports })));
    const repoHost = peers.find((p: any) => p.to.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'repo-host');
    expect(repoHost.to.namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'shop' });
    expect(repoHost.ports).toEqual([{ port: 8432, protocol: 'TCP' }]);
  });

  test('an S3 source takes key 5 in source.conf and its keys from its Secret (PGBACKREST_REPO5_*), beside the cluster\'s own S3 repository 1', () => {
    const s3Source = { name: 'orders', repository: { repository: BackupRepository.s3(S3) } };
    const s3 = synth({ clone: { source: s3Source }, backup: { repositories: [BackupRepository.s3({ ...S3, bucket: 'dr-backups' })] } });
    const conf = sourceFiles(s3)['source.conf'];
    expect(conf).toContain('repo5-type=s3\nrepo5-path=/orders\nrepo5-s3-bucket=orders-backups\n');
    const postgres = podSpec(s3, 'orders-dr-primary').containers.find((c: any) => c.name === 'postgres');
    const names = postgres.env.map((e: any) => e.name);
    expect(names).toEqual(expect.arrayContaining(['PGBACKREST_REPO5_S3_KEY', 'PGBACKREST_REPO1_S3_KEY']));
    expect(postgres.env.find((e: any) => e.name === 'PGBACKREST_REPO5_S3_KEY').valueFrom.secretKeyRef.name).toBe('orders-s3');
    expect(sourceFiles(s3)['restore.sh']).toContain('--stanza=orders --repo=5');
  });
});

describe('the source side', () => {
  test('backup.repositoryClients: the repository host\'s NetworkPolicy admits a clone\'s or standby\'s pods of another namespace to its server', () => {
    const chart = testChart('shop');
    const dr = { namespace: 'dr', podSelector: { 'app.kubernetes.io/instance': 'orders-dr' } };
    new PostgresStatefulCluster(chart, 'Orders', {
      name: 'orders', image: IMAGE, superuserSecret: { secretName: 'orders-superuser' }, replicationSecret: { secretName: 'orders-replication' },
      tls: { secretName: 'orders-tls' }, backup: { repositories: [BackupRepository.volume()], repositoryClients: [dr] },
    });
    const policy = findObject(synthObjects(chart), 'NetworkPolicy', 'orders-repo-host');
    const from = policy.spec.ingress.flatMap((rule: any) => rule.from);
    expect(from).toContainEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'dr' } }, podSelector: { matchLabels: dr.podSelector } });
  });
});

describe('clone from the running cluster', () => {
  const objects = synth({ clone: { source: STREAMING_ONLY } });

  test('FROM_RUNNING_CLUSTER is the default without a repository: no source.conf, the bootstrap copies over verify-full TLS', () => {
    expect(objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === 'orders-dr-source')).toBe(false);
    expect(env(bootstrap(objects))).toMatchObject({ SOURCE_MODE: 'clone-from-running-cluster', SOURCE_CONFIG: '', SOURCE_CA_FILE: '/etc/postgresql-source-ca/ca.crt' });
    expect(bootstrapScript(objects)).toContain("printf 'host=%s port=%s user=%s sslmode=verify-full sslrootcert=%s'");
  });
});

describe('standby cluster', () => {
  const objects = synth({ standby: { source: SOURCE } });

  test('every instance fetches the source\'s WAL under its stanza (the own repositories\' restore_command is left out), and the leader streams from the source', () => {
    const withBackup = synth({ standby: { source: SOURCE }, backup: { repositories: [BackupRepository.volume()] } });
    for (const conf of [postgresqlConf(objects), postgresqlConf(withBackup)]) {
      expect(conf.match(/^restore_command = .*$/gm)).toEqual(["restore_command = 'pgbackrest --config=/etc/pgbackrest-source/source.conf --stanza=orders archive-get %f \"%p\"'"]);
    }
    expect(env(bootstrap(objects)).SOURCE_MODE).toBe('standby');
    expect(bootstrapScript(objects)).toContain('application_name=orders_dr_standby');
    const replica = podSpec(objects, 'orders-dr-replica');
    expect(replica.containers.find((c: any) => c.name === 'postgres').volumeMounts.map((m: any) => m.mountPath)).toContain('/etc/pgbackrest-source');
  });

  test('its own backup CronJobs are rendered suspended while a standby (no primary to back up), and run once standby is removed', () => {
    const backup = { repositories: [BackupRepository.volume()] };
    const cronJobs = (o: any[]) => o.filter((object) => object.kind === 'CronJob').map((cronJob) => [cronJob.metadata.name, cronJob.spec.suspend ?? false]);
    expect(cronJobs(synth({ standby: { source: SOURCE }, backup }))).toEqual([['orders-dr-backup-repo1-full', true], ['orders-dr-backup-repo1-incr', true]]);
    expect(cronJobs(synth({ backup }))).toEqual([['orders-dr-backup-repo1-full', false], ['orders-dr-backup-repo1-incr', false]]);
  });

  test('without standby, every plain bootstrap promotes a former standby\'s data and provisions copied data through a private trust socket', () => {
    const plain = bootstrapScript(synth());
    expect(plain).toContain('promote_former_standby\n  provision_primary');
    expect(plain).toContain("printf 'local all all trust\\n'");
    expect(plain).not.toContain('follow_source() {');
    expect(shellcheck(plain)).toBe('');
  });
});

describe('refusals name the prop, the value and the fix', () => {
  const cases: Array<[string, Props, { prop: string; value: string; fix: RegExp }]> = [
    ['clone with standby', { clone: { source: SOURCE }, standby: { source: SOURCE } }, { prop: 'clone', value: '"orders"', fix: /drop clone/ }],
    ['clone with backup.restore', { clone: { source: SOURCE }, backup: { repositories: [BackupRepository.volume()], restore: {} } },
      { prop: 'backup.restore', value: '{}', fix: /drop backup.restore to clone another cluster/ }],
    ['standby with backup.restore', { standby: { source: SOURCE }, backup: { repositories: [BackupRepository.volume()], restore: {} } },
      { prop: 'backup.restore', value: '{}', fix: /drop backup.restore/ }],
    ['a source with neither repository nor streaming', { standby: { source: { name: 'orders' } } }, { prop: 'standby.source', value: '"orders"', fix: /repository.*streaming/ }],
    ['a clone of the cluster\'s own name in its namespace', { clone: { source: { ...SOURCE, name: 'orders-dr', namespace: undefined } } },
      { prop: 'clone.source.name', value: '"orders-dr"', fix: /backup.restore/ }],
    ['FROM_BACKUP without a repository', { clone: { source: STREAMING_ONLY, method: CloneMethod.FROM_BACKUP } },
      { prop: 'clone.method', value: '"from-backup"', fix: /set clone.source.repository/ }],
    ['FROM_RUNNING_CLUSTER without streaming', { clone: { source: REPOSITORY_ONLY, method: CloneMethod.FROM_RUNNING_CLUSTER } },
      { prop: 'clone.method', value: '"from-running-cluster"', fix: /set clone.source.streaming/ }],
    ['a target time with FROM_RUNNING_CLUSTER', { clone: { source: STREAMING_ONLY, targetTime: '2026-03-01T12:00:00Z' } },
      { prop: 'clone.targetTime', value: '"2026-03-01T12:00:00Z"', fix: /FROM_BACKUP/ }],
    ['a target timeline without a target time', { clone: { source: SOURCE, targetTimeline: 'latest' } },
      { prop: 'clone.targetTimeline', value: '"latest"', fix: /set clone.targetTime/ }],
    ['a target time that is no time', { clone: { source: SOURCE, targetTime: 'yesterday' } }, { prop: 'clone.targetTime', value: '"yesterday"', fix: /ISO 8601/ }],
    ['a volume source without its client certificate', { clone: { source: { name: 'orders', repository: { repository: BackupRepository.volume() } } } },
      { prop: 'clone.source.repository.tlsSecretName', value: '(unset)', fix: /CN "orders-rw"/ }],
    ['a repository host on an S3 source', { clone: { source: { name: 'orders', repository: { repository: BackupRepository.s3(S3), repoHost: 'x' } } } },
      { prop: 'clone.source.repository.repoHost', value: '"x"', fix: /reach the bucket directly/ }],
    ['a repository index past four', { clone: { source: { ...REPOSITORY_ONLY, repository: { ...SOURCE.repository!, index: 5 } } } },
      { prop: 'clone.source.repository.index', value: '5', fix: /.+/ }],
    ['streaming without a CA', { standby: { source: { name: 'orders', streaming: { replicationSecret: { secretName: 'r' } } as any } } },
      { prop: 'standby.source.streaming.certificateAuthority', value: '(unset)', fix: /source's CA/ }],
    ['a standby rebuilt from a replica', { standby: { source: SOURCE }, primaryRecovery: PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA },
      { prop: 'primaryRecovery', value: '"from-most-advanced-replica"', fix: /drop primaryRecovery/ }],
    ['a standby under a major upgrade', { standby: { source: SOURCE }, postgresVersion: 17, majorUpgrade: { fromVersion: 16 } as any },
      { prop: 'majorUpgrade', value: '"set"', fix: /upgrade the source/ }],
    ['a source repository with the default image, which has no pgBackRest', { clone: { source: SOURCE }, image: undefined },
      { prop: 'image', value: '(unset)', fix: /pgBackRest 2.45 or later/ }],
    ['an own S3 repository at the source\'s bucket and path with the same stanza', {
      clone: { source: { name: 'orders-dr', namespace: 'shop', repository: { repository: BackupRepository.s3(S3) } } },
      backup: { repositories: [BackupRepository.s3(S3)] },
    }, { prop: 'backup.repositories[0]', value: '/orders-dr orders-backups', fix: /another name, or its repository another path/ }],
  ];

  test.each(cases)('%s', (_, props, expected) => {
    expectPropErrorMessage(thrownMessage(() => synth(props), 'the props'), 'test/Dr', expected);
  });

  test('a source of the cluster\'s own name in another namespace, and a clone with its own repository elsewhere, are accepted', () => {
    expect(() => synth({ clone: { source: { ...SOURCE, name: 'orders-dr' } } })).not.toThrow();
    expect(() => synth({
      clone: { source: { name: 'orders-dr', namespace: 'shop', repository: { repository: BackupRepository.s3(S3) } } },
      backup: { repositories: [BackupRepository.s3({ ...S3, path: '/dr' })] },
    })).not.toThrow();
  });
});
