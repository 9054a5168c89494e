import { Chart } from 'cdk8s';
import { BackupRepository, MajorUpgradeTransfer, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { KUBE_VERSIONS, validateManifests } from './support/kube-schema';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { postgresVersion } from '../lib/core/postgres-versions';

type Props = Partial<PostgresStatefulClusterProps>;

const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const UPGRADE: Props = { postgresVersion: 17, majorUpgrade: { fromVersion: 15 } };

function synth(props: Props = {}): any[] {
  const chart = testChart();
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, instances: 3, ...props });
  return synthObjects(chart as Chart);
}

function expectPropError(props: Props, expected: ExpectedPropError): void {
  expectPropErrorMessage(thrownMessage(() => synth(props), JSON.stringify(props)), 'test/Db', expected);
}

const pod = (objects: any[], role: 'primary' | 'replica') => findObject(objects, 'StatefulSet', `db-${role}`).spec.template.spec;
const initNames = (objects: any[], role: 'primary' | 'replica') => pod(objects, role).initContainers.map((c: any) => c.name);
const init = (objects: any[], role: 'primary' | 'replica', name: string) => pod(objects, role).initContainers.find((c: any) => c.name === name);
const env = (container: any) => Object.fromEntries(container.env.map((v: any) => [v.name, v.value ?? v.valueFrom]));
const scripts = (objects: any[]) => findObject(objects, 'ConfigMap', 'db-scripts').data;

describe('majorUpgrade is refused at synth', () => {
  test('a downgrade', () => {
    expectPropError({ postgresVersion: 15, majorUpgrade: { fromVersion: 17 } },
      { prop: 'majorUpgrade.fromVersion', value: '17', fix: /keep postgresVersion 17, or restore a logical dump/ });
  });

  test('a from-version equal to the target', () => {
    expectPropError({ postgresVersion: 17, majorUpgrade: { fromVersion: 17 } },
      { prop: 'majorUpgrade.fromVersion', value: '17', fix: /remove majorUpgrade once the upgrade has rolled out/ });
  });

  test.each([13, 19, 15.5])('a major outside the table: %p', (fromVersion) => {
    expectPropError({ postgresVersion: 17, majorUpgrade: { fromVersion } },
      { prop: 'majorUpgrade.fromVersion', value: String(fromVersion), fix: /give one of 14, 15, 16, 17, 18/ });
  });

  test('a transfer that is not a MajorUpgradeTransfer', () => {
    expectPropError({ postgresVersion: 17, majorUpgrade: { fromVersion: 15, transfer: 'rsync' as MajorUpgradeTransfer } },
      { prop: 'majorUpgrade.transfer', value: '"rsync"', fix: /MajorUpgradeTransfer\.COPY \("copy"\)/ });
  });

  test('with a separate WAL volume', () => {
    expectPropError({ ...UPGRADE, storage: { walSize: '1Gi' } }, { prop: 'majorUpgrade', value: '"fromVersion":15', fix: /logical replication/ });
  });
});

describe('majorUpgrade renders', () => {
  test('no upgrade steps, volume or script without it', () => {
    const objects = synth({ postgresVersion: 17 });
    expect(initNames(objects, 'primary')).toEqual(['certificate', 'bootstrap']);
    expect(initNames(objects, 'replica')).toEqual(['certificate', 'bootstrap']);
    expect(pod(objects, 'primary').volumes.map((v: any) => v.name)).not.toContain('old-binaries');
    expect(Object.keys(scripts(objects))).toEqual(['bootstrap.sh', 'settings-agent.sh']);
    expect(env(init(objects, 'primary', 'bootstrap')).MAJOR_UPGRADE_FROM).toBe('');
  });

  test('the primary copies the old binaries from the old image, then upgrades in the new image', () => {
    const objects = synth(UPGRADE);
    for (const version of KUBE_VERSIONS) expect(validateManifests(objects, version)).toEqual([]);
    expect(initNames(objects, 'primary')).toEqual(['certificate', 'old-binaries', 'major-upgrade', 'bootstrap']);
    const copy = init(objects, 'primary', 'old-binaries');
    const upgrade = init(objects, 'primary', 'major-upgrade');
    const bootstrap = init(objects, 'primary', 'bootstrap');
    expect(copy.image).toBe(postgresVersion(15).image.image);
    expect(upgrade.image).toBe(bootstrap.image);
    expect(bootstrap.image).toMatch(/^postgres:17\./);
    expect(copy.volumeMounts).toEqual([{ name: 'old-binaries', mountPath: '/opt/postgresql-old' }]);
    expect(upgrade.volumeMounts).toContainEqual({ name: 'old-binaries', mountPath: '/opt/postgresql-old', readOnly: true });
    // The upgrade step sees what bootstrap sees: the data, the config, the Secrets, the certificate.
    for (const mount of bootstrap.volumeMounts) expect(upgrade.volumeMounts).toContainEqual(mount);
    expect(upgrade.command).toEqual(['/opt/cdk8s-postgres/major-upgrade.sh']);
    expect(env(upgrade)).toMatchObject({
      POSTGRES_ROLE: 'primary', FROM_MAJOR: '15', TO_MAJOR: '17', TRANSFER: 'copy', OLD_BINDIR: '/opt/postgresql-old/bin',
      REPLICATION_SLOTS: 'db_replica_0 db_replica_1', PGDATA: '/var/lib/postgresql/data/pgdata',
    });
    expect(env(bootstrap).MAJOR_UPGRADE_FROM).toBe('15');
    expect(pod(objects, 'primary').volumes).toContainEqual({ name: 'old-binaries', emptyDir: { sizeLimit: '512Mi' } });
    expect(Object.keys(scripts(objects)).sort()).toEqual(['bootstrap.sh', 'major-upgrade.sh', 'settings-agent.sh']);
  });

  test('a replica waits for the primary and is cloned again: no old binaries', () => {
    const objects = synth(UPGRADE);
    expect(initNames(objects, 'replica')).toEqual(['certificate', 'major-upgrade', 'bootstrap']);
    const upgrade = init(objects, 'replica', 'major-upgrade');
    expect(env(upgrade)).toMatchObject({ POSTGRES_ROLE: 'replica', FROM_MAJOR: '15', TO_MAJOR: '17', PRIMARY_HOST: 'db-primary-0.db-headless' });
    expect(env(upgrade).OLD_BINDIR).toBeUndefined();
    expect(pod(objects, 'replica').volumes.map((v: any) => v.name)).not.toContain('old-binaries');
  });

  test('the transfer method and a custom old image', () => {
    const objects = synth({ postgresVersion: 18, majorUpgrade: { fromVersion: 14, fromImage: 'example/pg:14-bookworm', transfer: MajorUpgradeTransfer.LINK } });
    expect(init(objects, 'primary', 'old-binaries').image).toBe('example/pg:14-bookworm');
    expect(env(init(objects, 'primary', 'major-upgrade'))).toMatchObject({ TRANSFER: 'link', FROM_MAJOR: '14', TO_MAJOR: '18' });
  });

  test('the old image per major is the table\'s default for that major', () => {
    for (const fromVersion of [14, 15, 16]) {
      const objects = synth({ postgresVersion: 17, majorUpgrade: { fromVersion } });
      expect(init(objects, 'primary', 'old-binaries').image).toMatch(new RegExp(`^postgres:${fromVersion}\\.`));
    }
  });

  test('major-upgrade.sh and bootstrap.sh are shellcheck-clean', () => {
    const files = scripts(synth(UPGRADE));
    expect(shellcheck(files['major-upgrade.sh'])).toBe('');
    expect(shellcheck(files['bootstrap.sh'])).toBe('');
  });
});

describe('majorUpgrade with backup', () => {
  const BACKUP: Props = {
    ...UPGRADE, tls: { issuer: { name: 'ca' } }, image: 'example/pg-pgbackrest:17',
    backup: { repositories: [BackupRepository.volume(), BackupRepository.s3({ bucket: 'backups', endpoint: 's3.example.com', region: 'r1', credentials: { secretName: 's3' } })] },
  };
  const config = (objects: any[]) => findObject(objects, 'ConfigMap', 'db-pgbackrest').data;

  test('a stanza-upgrade Job per repository, named after the new major, run as the backup jobs are: the repository local, the instances remote', () => {
    const objects = synth(BACKUP);
    for (const version of KUBE_VERSIONS) expect(validateManifests(objects, version)).toEqual([]);
    const jobs = objects.filter((o) => o.kind === 'Job');
    expect(jobs.map((job) => job.metadata.name)).toEqual(['db-upgrade-repo1-17', 'db-upgrade-repo2-17']);
    const cronJob = findObject(objects, 'CronJob', 'db-backup-repo1-full').spec.jobTemplate.spec.template.spec;
    const [volume, s3] = jobs.map((job) => job.spec.template.spec);
    expect(volume.containers[0].command).toEqual(['/etc/pgbackrest/stanza-upgrade.sh', '1', '17']);
    expect(s3.containers[0].command).toEqual(['/etc/pgbackrest/stanza-upgrade.sh', '2', '17']);
    // The volume repository's Job mounts its claim on the repository host's node, as its CronJobs do.
    expect(volume.affinity).toEqual(cronJob.affinity);
    expect(volume.containers[0].volumeMounts).toEqual(cronJob.containers[0].volumeMounts);
    expect(volume.volumes.find((v: any) => v.name === 'pgbackrest-config').configMap.items.map((i: any) => i.key))
      .toEqual(['backup-repo1.conf', 'stanza-upgrade.sh']);
    expect(s3.affinity).toBeUndefined();
    expect(s3.containers[0].env.map((e: any) => e.name)).toEqual(expect.arrayContaining(['PGBACKREST_REPO2_S3_KEY']));
    expect(jobs[0].spec).toMatchObject({ backoffLimit: 2, activeDeadlineSeconds: 86400 });
    expect(jobs[0].spec.template.metadata.labels).toEqual(findObject(objects, 'CronJob', 'db-backup-repo1-full').spec.jobTemplate.spec.template.metadata.labels);
  });

  test('stanza-upgrade.sh: stanza-upgrade until the stanza is on the new major, then check and a full backup; shellcheck-clean', () => {
    const script = config(synth(BACKUP))['stanza-upgrade.sh'];
    expect(shellcheck(script)).toBe('');
    expect(script).toContain('config="/etc/pgbackrest/backup-repo$repository.conf"');
    expect(script).toContain('pgbackrest --config="$config" --stanza=db stanza-upgrade || pgbackrest --config="$config" --stanza=db stanza-create');
    expect(script.indexOf('stanza=db check')).toBeGreaterThan(script.indexOf('stanza-upgrade ||'));
    expect(script).toContain('exec pgbackrest --config="$config" --stanza=db --repo="$repository" backup --type=full');
    expect(script).toContain('  1 | 2) ;;');
  });

  test('no Job and no script once majorUpgrade is removed', () => {
    const objects = synth({ ...BACKUP, majorUpgrade: undefined });
    expect(objects.filter((o) => o.kind === 'Job')).toEqual([]);
    expect(Object.keys(config(objects))).not.toContain('stanza-upgrade.sh');
  });

  test('in the HA mode too', () => {
    const objects = synth({ ...BACKUP, highAvailability: {} });
    expect(objects.filter((o) => o.kind === 'Job').map((job) => job.metadata.name)).toEqual(['db-upgrade-repo1-17', 'db-upgrade-repo2-17']);
  });
});
