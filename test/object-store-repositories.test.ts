import { Testing } from 'cdk8s';
import {
  AzureKeyType, AzureUriStyle, BackupOptions, BackupRepository, GcsKeyType, PostgresStatefulCluster, RepositoryType,
} from '../lib';
import { instancePodAdditions, renderBackupConf, renderInstanceConf, renderRepoHostConf, resolveBackup } from '../lib/backup';
import { backupCluster, synthBackup } from './e2e/support/backup-harness';
import { validateManifests } from './support/kube-schema';
import { checkPodSecurity, podTemplatesOf } from './support/pod-security';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { findObject, synthObjects, testChart } from './support/synth';

const GCS = { bucket: 'shop-backups' };
const AZURE = { account: 'shopbackups', container: 'shop-db', credentials: { secretName: 'shop-azure' } };
const lines = (text: string) => text.split('\n');
const jobSpec = (objects: any[], name: string) => findObject(objects, 'CronJob', name).spec.jobTemplate.spec.template.spec;

describe('GCS and Azure repositories: rendered options, Secrets as environment or files, egress', () => {
  // repo1: GCS with workload identity; repo2: GCS with a key file, a private CA and a cipher;
  // repo3: GCS with a token at a fake server; repo4: Azure with a SAS token, path style.
  const options: BackupOptions = {
    repositories: [
      BackupRepository.gcs(GCS),
      BackupRepository.gcs({
        ...GCS, path: '/dr/shop', credentials: { secretName: 'shop-gcs' }, certificateAuthority: { secretName: 'gcs-ca' },
        cipher: { secretName: 'shop-cipher' }, egressCidrs: ['10.30.0.0/16'], retentionFull: 4,
      }),
      BackupRepository.gcs({ ...GCS, endpoint: 'fake-gcs.storage.svc', port: 4443, credentials: { secretName: 'fake-gcs', keyType: GcsKeyType.TOKEN } }),
      BackupRepository.azure({
        ...AZURE, endpoint: 'azurite.storage.svc', port: 10000, uriStyle: AzureUriStyle.PATH,
        credentials: { secretName: 'shop-azure', key: 'sas', keyType: AzureKeyType.SAS }, egressCidrs: ['10.40.0.0/16'],
      }),
    ],
  };
  const { model, objects } = synthBackup(options);

  test('each type reports itself', () => {
    expect(options.repositories.map((repository) => repository.type))
      .toEqual([RepositoryType.GCS, RepositoryType.GCS, RepositoryType.GCS, RepositoryType.AZURE]);
  });

  test('pgBackRest\'s options in the instances\' and the backup jobs\' configs, none on the repository host (there is none), no secret in any file', () => {
    const instance = renderInstanceConf(model);
    expect(lines(instance)).toEqual(expect.arrayContaining([
      'repo1-type=gcs', 'repo1-path=/shop-db', 'repo1-gcs-bucket=shop-backups', 'repo1-gcs-endpoint=storage.googleapis.com', 'repo1-gcs-key-type=auto',
      'repo1-storage-verify-tls=y',
      'repo2-path=/dr/shop', 'repo2-gcs-key-type=service', 'repo2-gcs-key=/etc/pgbackrest-keys/repo2/key.json',
      'repo2-storage-ca-file=/etc/pgbackrest-ca/repo2/ca.crt', 'repo2-cipher-type=aes-256-cbc',
      'repo3-gcs-endpoint=fake-gcs.storage.svc:4443', 'repo3-gcs-key-type=token',
      'repo4-type=azure', 'repo4-azure-account=shopbackups', 'repo4-azure-container=shop-db', 'repo4-azure-endpoint=azurite.storage.svc',
      'repo4-azure-uri-style=path', 'repo4-azure-key-type=sas', 'repo4-storage-port=10000',
    ]));
    expect(instance).not.toMatch(/repo1-gcs-key=|repo3-gcs-key=|azure-key=|cipher-pass/);
    // pgBackRest's GCS driver takes the port in the endpoint only.
    expect(instance).not.toMatch(/repo[123]-storage-port/);
    expect(lines(renderBackupConf(model, model.repositories[1]))).toEqual(expect.arrayContaining(['repo2-gcs-key-type=service', 'repo2-retention-full=4']));
    expect(model.repoHostPodHost).toBeUndefined();
    expect(() => renderRepoHostConf(model)).not.toThrow();
    expect(objects.some((o) => o.metadata.name === 'shop-db-repo-host')).toBe(false);
  });

  test('a GCS key file is mounted from its Secret, a token and the Azure key come from the environment, named as pgBackRest reads them', () => {
    const additions = instancePodAdditions(model);
    expect(additions.postgresEnv).toEqual([
      { name: 'PGBACKREST_REPO2_CIPHER_PASS', valueFrom: { secretKeyRef: { name: 'shop-cipher', key: 'cipher-pass' } } },
      { name: 'PGBACKREST_REPO3_GCS_KEY', valueFrom: { secretKeyRef: { name: 'fake-gcs', key: 'token' } } },
      { name: 'PGBACKREST_REPO4_AZURE_KEY', valueFrom: { secretKeyRef: { name: 'shop-azure', key: 'sas' } } },
    ]);
    expect(additions.volumes).toEqual(expect.arrayContaining([
      { name: 'pgbackrest-repo2-ca', secret: { secretName: 'gcs-ca', defaultMode: 0o444, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { name: 'pgbackrest-repo2-key', secret: { secretName: 'shop-gcs', defaultMode: 0o440, items: [{ key: 'key.json', path: 'key.json' }] } },
    ]));
    expect(additions.postgresMounts).toEqual(expect.arrayContaining([
      { name: 'pgbackrest-repo2-key', mountPath: '/etc/pgbackrest-keys/repo2', readOnly: true },
    ]));
    const job = jobSpec(objects, 'shop-db-backup-repo2-full');
    expect(job.containers[0].volumeMounts).toContainEqual({ name: 'pgbackrest-repo2-key', mountPath: '/etc/pgbackrest-keys/repo2', readOnly: true });
    expect(job.containers[0].env).toEqual([{ name: 'PGBACKREST_REPO2_CIPHER_PASS', valueFrom: { secretKeyRef: { name: 'shop-cipher', key: 'cipher-pass' } } }]);
    // Workload identity: nothing from a Secret.
    expect(jobSpec(objects, 'shop-db-backup-repo1-full').containers[0].env).toBeUndefined();
  });

  test('egress: each store\'s networks on its port, and the GKE metadata server for workload identity only', () => {
    const egress = findObject(objects, 'NetworkPolicy', 'shop-db-backup').spec.egress;
    expect(egress).toEqual(expect.arrayContaining([
      { to: [{ ipBlock: { cidr: '169.254.169.254/32' } }], ports: [{ protocol: 'TCP', port: 80 }] },
      { to: [{ ipBlock: { cidr: '169.254.169.252/32' } }], ports: [{ protocol: 'TCP', port: 988 }] },
      { to: [{ ipBlock: { cidr: '10.30.0.0/16' } }], ports: [{ protocol: 'TCP', port: 443 }] },
      { to: [{ ipBlock: { cidr: '10.40.0.0/16' } }], ports: [{ protocol: 'TCP', port: 10000 }] },
    ]));
    const withKeys = synthBackup({ repositories: [BackupRepository.gcs({ ...GCS, credentials: { secretName: 'shop-gcs' } }), BackupRepository.azure(AZURE)] });
    expect(JSON.stringify(findObject(withKeys.objects, 'NetworkPolicy', 'shop-db-backup').spec.egress)).not.toMatch(/169\.254/);
  });

  test.each(['v1.27.0', 'v1.36.0'] as const)('the objects validate strictly against Kubernetes %s, and every pod is restricted', (version) => {
    expect(validateManifests(objects, version)).toEqual([]);
    expect(podTemplatesOf(objects).flatMap(({ template }) => checkPodSecurity(template))).toEqual([]);
  });

  test('a cluster with an Azure repository: the instances get its key and options, the certificate no repository host name', () => {
    const chart = testChart('shop');
    new PostgresStatefulCluster(chart, 'Db', {
      superuserSecret: { secretName: 'pg-superuser' },
      replicationSecret: { secretName: 'pg-replication' },
      tls: { issuer: { name: 'ca' } },
      image: 'percona/percona-distribution-postgresql:15.15-1',
      backup: { repositories: [BackupRepository.azure(AZURE)] },
    });
    const clusterObjects = synthObjects(chart);
    const postgres = findObject(clusterObjects, 'StatefulSet', 'db-primary').spec.template.spec.containers.find((c: any) => c.name === 'postgres');
    expect(postgres.env).toContainEqual({ name: 'PGBACKREST_REPO1_AZURE_KEY', valueFrom: { secretKeyRef: { name: 'shop-azure', key: 'azure-key' } } });
    expect(findObject(clusterObjects, 'ConfigMap', 'db-pgbackrest').data['instance.conf']).toMatch(/^repo1-azure-endpoint=blob\.core\.windows\.net$/m);
    expect(validateManifests(clusterObjects, 'v1.36.0')).toEqual([]);
  });
});

describe('backups from a standby', () => {
  test('backup.fromStandby: backup-standby=y in every backup job\'s config, not in the instances\'', () => {
    const { model } = synthBackup({ repositories: [BackupRepository.volume(), BackupRepository.azure(AZURE)], fromStandby: true });
    for (const repository of model.repositories) expect(lines(renderBackupConf(model, repository))).toContain('backup-standby=y');
    expect(renderInstanceConf(model)).not.toMatch(/backup-standby/);
    expect(renderBackupConf(synthBackup({ repositories: [BackupRepository.volume()] }).model, model.repositories[0])).not.toMatch(/backup-standby/);
  });
});

describe('refusals name the prop, the value and the fix', () => {
  const bad: Array<[string, BackupOptions, ExpectedPropError, number?]> = [
    ['an upper-case GCS bucket', { repositories: [BackupRepository.gcs({ bucket: 'Shop' })] }, { prop: 'backup.repositories[0].bucket', value: '"Shop"', fix: /lower-case/ }],
    ['a GCS bucket named goog...', { repositories: [BackupRepository.gcs({ bucket: 'google-backups' })] },
      { prop: 'backup.repositories[0].bucket', value: '"google-backups"', fix: /not starting with "goog"/ }],
    ['a GCS endpoint with a scheme', { repositories: [BackupRepository.gcs({ ...GCS, endpoint: 'https://storage.googleapis.com' })] },
      { prop: 'backup.repositories[0].endpoint', value: '"https://storage.googleapis.com"', fix: /host only, such as "storage\.googleapis\.com"/ }],
    ['a GCS key type that is not one', { repositories: [BackupRepository.gcs({ ...GCS, credentials: { secretName: 'k', keyType: 'auto' as GcsKeyType } })] },
      { prop: 'backup.repositories[0].credentials.keyType', value: '"auto"', fix: /GcsKeyType\.SERVICE/ }],
    ['a GCS Secret key with a space', { repositories: [BackupRepository.gcs({ ...GCS, credentials: { secretName: 'k', key: 'key json' } })] },
      { prop: 'backup.repositories[0].credentials.key', value: '"key json"', fix: /letters, digits/ }],
    ['an Azure account with a dash', { repositories: [BackupRepository.azure({ ...AZURE, account: 'shop-backups' })] },
      { prop: 'backup.repositories[0].account', value: '"shop-backups"', fix: /3 to 24 lower-case letters and digits/ }],
    ['an Azure container with a double dash', { repositories: [BackupRepository.azure({ ...AZURE, container: 'shop--db' })] },
      { prop: 'backup.repositories[0].container', value: '"shop--db"', fix: /single "-"/ }],
    ['an Azure repository without credentials (a managed identity)', { repositories: [BackupRepository.azure({ ...AZURE, credentials: undefined as any })] },
      { prop: 'backup.repositories[0].credentials', value: '(unset)', fix: /shared key, or a SAS token/ }],
    ['an Azure key type that is not one', { repositories: [BackupRepository.azure({ ...AZURE, credentials: { secretName: 'k', keyType: 'auto' as AzureKeyType } })] },
      { prop: 'backup.repositories[0].credentials.keyType', value: '"auto"', fix: /AzureKeyType\.SHARED/ }],
    ['an Azure URI style that is not one', { repositories: [BackupRepository.azure({ ...AZURE, uriStyle: 'virtual' as AzureUriStyle })] },
      { prop: 'backup.repositories[0].uriStyle', value: '"virtual"', fix: /AzureUriStyle\.PATH/ }],
    ['an Azure path that is relative', { repositories: [BackupRepository.azure({ ...AZURE, path: 'db' })] },
      { prop: 'backup.repositories[0].path', value: '"db"', fix: /"\/backups\/my-cluster"/ }],
    ['no egress network', { repositories: [BackupRepository.gcs({ ...GCS, egressCidrs: [] })] }, { prop: 'backup.repositories[0].egressCidrs', value: '[]', fix: /networks of the endpoint/ }],
    ['backups from a standby of a single instance', { repositories: [BackupRepository.volume()], fromStandby: true },
      { prop: 'backup.fromStandby', value: 'true', fix: /instances to 2 or more/ }, 1],
  ];
  test.each(bad.map(([what, options, expected, instances]) => [what, options, expected, instances ?? 2] as const))('%s', (_what, options, expected, instances) => {
    const chart = Testing.chart();
    const message = thrownMessage(() => resolveBackup(chart, options, backupCluster(chart, 'shop-db', { instances })), 'the options');
    expectPropErrorMessage(message, chart.node.path, expected);
  });
});
