/**
 * A repository type is one class: it checks its props and binds itself (its pgbackrest.conf
 * options, what a pod that has it local adds, its egress, whether it lives on the repository
 * host), and the rest of the backup module renders it without knowing its type. The two types
 * below exist only here, and nothing else in lib/backup knows them.
 *
 * `_bind()` is internal (jsii leaves it out of the assembly), so this is the library's own
 * extension point: a TypeScript subclass works, as these show, but a subclass written in
 * another jsii language cannot implement it, and the backup module refuses one by name. A new
 * type of the library adds, besides its file, its static factory on BackupRepository and its
 * member of RepositoryType (the public entry points; the types below cast one).
 */
import { k8s } from 'cdk8s-plus-27';
import { IConstruct } from 'constructs';
import { BackupRepository, BackupRepositoryOptions, PostgresStatefulCluster, RepositoryType } from '../lib';
import { renderBackupConf, renderInstanceConf, renderRepoHostConf, resolveBackup } from '../lib/backup';
import { RepositoryBindContext, RepositoryBinding } from '../lib/backup/backup-repository';
import { propError } from '../lib/core/errors';
import { backupCluster, synthBackup } from './e2e/support/backup-harness';
import { validateManifests } from './support/kube-schema';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { findObject, synthObjects, testChart } from './support/synth';

interface AzureLikeProps extends BackupRepositoryOptions {
  readonly account: string;
  readonly container: string;
  /** A Secret with the shared key under `azure-key`. */
  readonly keySecret: string;
}

/** pgBackRest's `repo-type=azure`, reached directly by every pod that uses it, its key from a Secret. */
class AzureLikeRepository extends BackupRepository {
  public readonly type = 'azure' as RepositoryType;

  public constructor(private readonly props: AzureLikeProps) {
    super(props);
  }

  public _bind(scope: IConstruct, context: RepositoryBindContext): RepositoryBinding {
    if (!/^[a-z0-9](-?[a-z0-9])*$/.test(this.props.container)) {
      throw propError(scope, `${context.prop}.container`, this.props.container, 'is not a container name', 'use lower-case letters, digits and single "-"');
    }
    const repo = `repo${context.index}`;
    return {
      options: [
        [`${repo}-type`, 'azure'],
        [`${repo}-path`, `/${context.clusterName}`],
        [`${repo}-azure-account`, this.props.account],
        [`${repo}-azure-container`, this.props.container],
      ],
      access: {
        volumes: [],
        mounts: [],
        env: [{ name: `PGBACKREST_REPO${context.index}_AZURE_KEY`, valueFrom: { secretKeyRef: { name: this.props.keySecret, key: 'azure-key' } } }],
      },
      egress: [{ peer: { cidr: '20.0.0.0/8' }, port: 443 }],
    };
  }
}

/** A second kind of volume: a ReadWriteOncePod claim of the repository host, served to the instances by its TLS server. */
class PodVolumeRepository extends BackupRepository {
  public readonly type = RepositoryType.VOLUME;

  public constructor(options: BackupRepositoryOptions = {}) {
    super(options);
  }

  public _bind(_scope: IConstruct, context: RepositoryBindContext): RepositoryBinding {
    const name = `pod-repo${context.index}`;
    const path = `/var/lib/pgbackrest/pod-repo${context.index}`;
    const spec: k8s.PersistentVolumeClaimSpec = { accessModes: ['ReadWriteOncePod'], resources: { requests: { storage: k8s.Quantity.fromString('5Gi') } } };
    return {
      options: [[`repo${context.index}-path`, path]],
      access: { volumes: [{ name, persistentVolumeClaim: { claimName: `${name}-${context.repoHostPod}` } }], mounts: [{ name, mountPath: path }], env: [] },
      egress: [],
      repoHost: { claims: [{ name, spec }] },
    };
  }
}

const AZURE = { account: 'shopbackups', container: 'shop-db', keySecret: 'shop-azure' };
const lines = (text: string) => text.split('\n');

describe('a repository type of its own', () => {
  const { model, objects } = synthBackup({
    repositories: [BackupRepository.volume(), new AzureLikeRepository({ ...AZURE, retentionFull: 5 }), new PodVolumeRepository()],
  });

  test('an object-store type: its options in the instances\' config and its backup jobs\' (with the retention), never on the repository host', () => {
    expect(lines(renderInstanceConf(model))).toEqual(expect.arrayContaining([
      'repo2-type=azure', 'repo2-path=/shop-db', 'repo2-azure-account=shopbackups', 'repo2-azure-container=shop-db',
    ]));
    expect(lines(renderBackupConf(model, model.repositories[1]))).toEqual(expect.arrayContaining([
      'repo2-type=azure', 'repo2-azure-container=shop-db', 'repo2-retention-full=5',
    ]));
    expect(renderRepoHostConf(model)).not.toMatch(/repo2/);
  });

  test('an object-store type: its Secret in the environment of its jobs, its egress in the jobs\' NetworkPolicy, no affinity to the repository host', () => {
    const job = findObject(objects, 'CronJob', 'shop-db-backup-repo2-full').spec.jobTemplate.spec.template.spec;
    expect(job.containers[0].env).toEqual([{ name: 'PGBACKREST_REPO2_AZURE_KEY', valueFrom: { secretKeyRef: { name: 'shop-azure', key: 'azure-key' } } }]);
    expect(job.affinity).toBeUndefined();
    expect(findObject(objects, 'NetworkPolicy', 'shop-db-backup').spec.egress).toContainEqual({ to: [{ ipBlock: { cidr: '20.0.0.0/8' } }], ports: [{ protocol: 'TCP', port: 443 }] });
  });

  test('a type on the repository host: its claim template and mount on the host, its options in the host\'s config, reached by the instances through the host', () => {
    const host = findObject(objects, 'StatefulSet', 'shop-db-repo-host').spec;
    expect(host.volumeClaimTemplates.map((t: any) => [t.metadata.name, t.spec.accessModes])).toEqual([['repo1', ['ReadWriteOnce']], ['pod-repo3', ['ReadWriteOncePod']]]);
    expect(host.template.spec.containers[0].volumeMounts).toContainEqual({ name: 'pod-repo3', mountPath: '/var/lib/pgbackrest/pod-repo3' });
    expect(lines(renderRepoHostConf(model))).toEqual(expect.arrayContaining(['repo1-path=/var/lib/pgbackrest/repo1', 'repo3-path=/var/lib/pgbackrest/pod-repo3']));
    expect(lines(renderInstanceConf(model))).toEqual(expect.arrayContaining(['repo3-host=shop-db-repo-host-0.shop-db-repo-host', 'repo3-host-type=tls']));
    const job = findObject(objects, 'CronJob', 'shop-db-backup-repo3-full').spec.jobTemplate.spec.template.spec;
    expect(job.volumes).toContainEqual({ name: 'pod-repo3', persistentVolumeClaim: { claimName: 'pod-repo3-shop-db-repo-host-0' } });
    expect(job.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
  });

  test('the objects validate against Kubernetes', () => {
    expect(validateManifests(objects, 'v1.36.0')).toEqual([]);
  });

  test('its props are checked where it binds, and the error names the prop', () => {
    const chart = testChart('shop');
    const message = thrownMessage(() => resolveBackup(chart, { repositories: [new AzureLikeRepository({ ...AZURE, container: 'Shop_DB' })] },
      backupCluster(chart, 'shop-db')), 'the options');
    expectPropErrorMessage(message, chart.node.path, { prop: 'backup.repositories[0].container', value: '"Shop_DB"', fix: /lower-case letters/ });
  });

  test('a cluster binds it like the library\'s own: the instances get its Secret and its options', () => {
    const chart = testChart('shop');
    new PostgresStatefulCluster(chart, 'Db', {
      superuserSecret: { secretName: 'pg-superuser' },
      replicationSecret: { secretName: 'pg-replication' },
      tls: { issuer: { name: 'ca' } },
      image: 'percona/percona-distribution-postgresql:15.15-1',
      backup: { repositories: [new AzureLikeRepository(AZURE)] },
    });
    const clusterObjects = synthObjects(chart);
    const postgres = findObject(clusterObjects, 'StatefulSet', 'db-primary').spec.template.spec.containers.find((c: any) => c.name === 'postgres');
    expect(postgres.env).toContainEqual({ name: 'PGBACKREST_REPO1_AZURE_KEY', valueFrom: { secretKeyRef: { name: 'shop-azure', key: 'azure-key' } } });
    expect(findObject(clusterObjects, 'ConfigMap', 'db-pgbackrest').data['instance.conf']).toContain('repo1-azure-container=shop-db');
    expect(clusterObjects.some((o) => o.metadata.name === 'db-repo-host')).toBe(false);
  });

  test('a subclass without _bind() (one written in another jsii language) is refused by name', () => {
    const chart = testChart('shop');
    const foreign = Object.create(BackupRepository.prototype, { type: { value: 'gcs' }, _options: { value: {} } });
    const message = thrownMessage(() => resolveBackup(chart, { repositories: [foreign] }, backupCluster(chart, 'shop-db')), 'the options');
    expectPropErrorMessage(message, chart.node.path, { prop: 'backup.repositories[0]', value: '"gcs"', fix: /BackupRepository\.volume\(\)/ });
  });
});
