import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Duration, Testing } from 'cdk8s';
import {
  BackupOptions, BackupRepository, backupCertificateDnsNames, backupNetworkRules, backupParameters, instancePodAdditions,
  renderBackupConf, renderInstanceConf, renderRepoHostConf, renderRestoreScript, resolveBackup, S3UriStyle,
} from '../lib/backup';
import { renderBackupScript, renderServerScript } from '../lib/backup/backup-scripts';
import { backupCluster, synthBackup } from './e2e/support/backup-harness';
import { KubeVersion, validateManifests } from './support/kube-schema';
import { checkPodSecurity, podTemplatesOf } from './support/pod-security';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject } from './support/synth';

const VERSIONS: KubeVersion[] = ['v1.27.0', 'v1.36.0'];
const S3 = {
  bucket: 'shop-backups', endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1', credentials: { secretName: 'shop-s3' },
};
/** A volume repository and an encrypted S3 one with a private CA, a PITR restore from the second. */
const FULL_OPTIONS: BackupOptions = {
  repositories: [
    BackupRepository.volume({ size: '50Gi', storageClassName: 'fast', retentionFull: 3 }),
    BackupRepository.s3({
      ...S3, uriStyle: S3UriStyle.PATH, port: 9000, certificateAuthority: { secretName: 'minio-ca' }, cipher: { secretName: 'shop-cipher' },
      schedule: { full: '30 2 * * SUN', differential: '30 2 * * 3' }, egressCidrs: ['10.20.0.0/16'],
    }),
  ],
  restore: { repository: 2, targetTime: '2025-03-01T12:00:00.25Z' },
};

const lines = (text: string) => text.split('\n');

describe('resolving backup options', () => {
  test('defaults: one volume repository, weekly full and daily incremental backups, retention 2, port 8432, archive_timeout 60 s, io-timeout 10 s', () => {
    const { model } = synthBackup({ repositories: [BackupRepository.volume()] });
    expect(model.repositories).toEqual([expect.objectContaining({
      index: 1, retentionFull: 2,
      schedules: [
        { type: 'full', cron: '0 1 * * 0', cronJobName: 'shop-db-backup-repo1-full', maxIntervalSeconds: 7 * 86400 },
        { type: 'incr', cron: '0 1 * * 1-6', cronJobName: 'shop-db-backup-repo1-incr', maxIntervalSeconds: 2 * 86400 },
      ],
      volume: { size: '20Gi', claimTemplate: 'repo1', claimName: 'repo1-shop-db-repo-host-0' },
    })]);
    expect(model).toMatchObject({ serverPort: 8432, archiveTimeoutSeconds: 60, ioTimeoutSeconds: 10, image: 'registry.example/postgres-pgbackrest:15' });
    expect(model.repoHostPodHost).toBe('shop-db-repo-host-0.shop-db-repo-host');
    expect(model.restore).toBeUndefined();
  });

  test('no backup option resolves to no backups', () => {
    const chart = Testing.chart();
    expect(resolveBackup(chart, undefined, backupCluster(chart, 'db'))).toBeUndefined();
  });

  test('a target time is normalized to the form pgBackRest 2.45 picks a backup set by (it refuses "T" and "Z")', () => {
    const time = (targetTime: string) => synthBackup({ repositories: [BackupRepository.volume()], restore: { targetTime } }).model.restore;
    expect(time('2025-03-01T12:00:00Z')).toEqual({ repository: 1, targetTime: '2025-03-01 12:00:00+00:00', targetTimeline: 'current' });
    expect(time('2025-03-01 13:00:00.123456+01:00')?.targetTime).toBe('2025-03-01 13:00:00.123456+01:00');
    expect(time('2025-03-01T07:00:00-0500')?.targetTime).toBe('2025-03-01 07:00:00-05:00');
    expect(time('2025-03-01T07:00:00+05')?.targetTime).toBe('2025-03-01 07:00:00+05:00');
    expect(synthBackup({ repositories: [BackupRepository.volume()], restore: {} }).model.restore).toEqual({ repository: 1 });
  });

  const bad: Array<[string, BackupOptions, ExpectedPropError, { tls?: boolean; name?: string }?]> = [
    ['backups with tls.disabled', { repositories: [BackupRepository.volume()] }, { prop: 'tls', value: '"disabled"', fix: /set tls \(a Secret .*CN "shop-db-rw"/ }, { tls: false }],
    ['no repository', { repositories: [] }, { prop: 'backup.repositories', value: '"0 repositories"', fix: /BackupRepository\.volume\(\)/ }],
    ['five repositories', { repositories: Array.from({ length: 5 }, () => BackupRepository.volume()) },
      { prop: 'backup.repositories', value: '"5 repositories"', fix: /at most four/ }],
    ['a plain object as a repository', { repositories: [{ size: '1Gi' } as any] }, { prop: 'backup.repositories[0]', value: '{"size":"1Gi"}', fix: /\.s3\(\), \.gcs\(\) or \.azure\(\)/ }],
    ['a four-field schedule', { repositories: [BackupRepository.volume({ schedule: { full: '0 1 * *' } })] },
      { prop: 'backup.repositories[0].schedule.full', value: '"0 1 * *"', fix: /five fields/ }],
    ['an hour out of range', { repositories: [BackupRepository.volume({ schedule: { incremental: '0 24 * * *' } })] },
      { prop: 'backup.repositories[0].schedule.incremental', value: '"0 24 * * *"', fix: /minute hour day-of-month month day-of-week/ }],
    ['a word in the minutes', { repositories: [BackupRepository.volume({ schedule: { differential: 'x 1 * * *' } })] },
      { prop: 'backup.repositories[0].schedule.differential', value: '"x 1 * * *"', fix: /five fields/ }],
    ['two types at the same time', { repositories: [BackupRepository.volume({ schedule: { full: '0 1 * * *', incremental: '0  1 * * *' } })] },
      { prop: 'backup.repositories[0].schedule.incremental', value: '"0  1 * * *"', fix: /its own time/ }],
    ['a schedule on February 30th', { repositories: [BackupRepository.volume({ schedule: { full: '0 1 30 2 *' } })] },
      { prop: 'backup.repositories[0].schedule.full', value: '"0 1 30 2 *"', fix: /"0 1 28 2 \*"/ }],
    ['retention 0', { repositories: [BackupRepository.volume({ retentionFull: 0 })] }, { prop: 'backup.repositories[0].retentionFull', value: '0', fix: /whole number from 1/ }],
    ['a bad volume size', { repositories: [BackupRepository.volume({ size: '20 GB' })] }, { prop: 'backup.repositories[0].size', value: '"20 GB"', fix: /"2Gi"/ }],
    ['an endpoint with a scheme', { repositories: [BackupRepository.s3({ ...S3, endpoint: 'https://minio:9000' })] },
      { prop: 'backup.repositories[0].endpoint', value: '"https://minio:9000"', fix: /host only/ }],
    ['an upper-case bucket', { repositories: [BackupRepository.s3({ ...S3, bucket: 'Backups' })] }, { prop: 'backup.repositories[0].bucket', value: '"Backups"', fix: /lower-case/ }],
    ['a relative S3 path', { repositories: [BackupRepository.s3({ ...S3, path: 'db' })] }, { prop: 'backup.repositories[0].path', value: '"db"', fix: /"\/backups\/my-cluster"/ }],
    ['a bad credentials key', { repositories: [BackupRepository.s3({ ...S3, credentials: { secretName: 'shop-s3', accessKeyIdKey: 'a key' } })] },
      { prop: 'backup.repositories[0].credentials.accessKeyIdKey', value: '"a key"', fix: /letters, digits/ }],
    ['no egress network', { repositories: [BackupRepository.s3({ ...S3, egressCidrs: [] })] }, { prop: 'backup.repositories[0].egressCidrs', value: '[]', fix: /networks of the endpoint/ }],
    ['the server on PostgreSQL\'s port', { repositories: [BackupRepository.volume()], serverPort: 5432 }, { prop: 'backup.serverPort', value: '5432', fix: /another port/ }],
    ['a fractional archive timeout', { repositories: [BackupRepository.volume()], archiveTimeout: Duration.millis(1500) },
      { prop: 'backup.archiveTimeout', value: '"1500ms"', fix: /whole number of seconds/ }],
    ['restore from a repository that is not there', { repositories: [BackupRepository.volume()], restore: { repository: 2 } },
      { prop: 'backup.restore.repository', value: '2', fix: /from 1 to 1/ }],
    ['a target time without a zone', { repositories: [BackupRepository.volume()], restore: { targetTime: '2025-03-01T12:00:00' } },
      { prop: 'backup.restore.targetTime', value: '"2025-03-01T12:00:00"', fix: /ISO 8601 time with a zone/ }],
    ['a target time on February 30th', { repositories: [BackupRepository.volume()], restore: { targetTime: '2025-02-30 12:00:00Z' } },
      { prop: 'backup.restore.targetTime', value: '"2025-02-30 12:00:00Z"', fix: /ISO 8601/ }],
    ['a timeline without a target time', { repositories: [BackupRepository.volume()], restore: { targetTimeline: '2' } },
      { prop: 'backup.restore.targetTimeline', value: '"2"', fix: /targetTime too/ }],
    ['a bad timeline', { repositories: [BackupRepository.volume()], restore: { targetTime: '2025-03-01T12:00:00Z', targetTimeline: 'newest' } },
      { prop: 'backup.restore.targetTimeline', value: '"newest"', fix: /"current", "latest"/ }],
    ['a name too long for the CronJobs', { repositories: [BackupRepository.volume()] }, { prop: 'name', value: `"${'a'.repeat(35)}"`, fix: /at most 34/ },
      { name: 'a'.repeat(35) }],
  ];
  // Every row has all four arguments: jest takes a test function with more parameters than its row for a done-callback test.
  test.each(bad.map(([what, options, expected, cluster]) => [what, options, expected, cluster ?? {}] as const))('refuses %s, naming the prop, the value and the fix', (_what, options, expected, cluster) => {
    const chart = Testing.chart();
    const message = thrownMessage(() => resolveBackup(chart, options, backupCluster(chart, cluster.name ?? 'shop-db', { tls: cluster.tls })), 'the options');
    expectPropErrorMessage(message, chart.node.path, expected);
  });
});

describe('rendered pgbackrest.conf of each role', () => {
  const { model } = synthBackup(FULL_OPTIONS);

  test('the instances archive to the volume repository through the repository host\'s TLS server and to S3 directly; their server admits the cluster\'s certificate only', () => {
    expect(renderInstanceConf(model)).toBe(`# pgbackrest.conf (instance) of cluster "shop-db", rendered by cdk8s-postgres: change the construct's props, not this file.
# Read by archive-push (archive_command), archive-get and restore in the instance pods, and their server sidecar.
[global]
lock-path=/run/pgbackrest
log-level-console=info
log-level-file=off
io-timeout=10
repo1-host=shop-db-repo-host-0.shop-db-repo-host
repo1-host-type=tls
repo1-host-port=8432
repo1-host-config=/etc/pgbackrest/repo-host.conf
repo1-host-cert-file=/etc/postgresql-tls/tls.crt
repo1-host-key-file=/etc/postgresql-tls/tls.key
repo1-host-ca-file=/etc/postgresql-tls/ca.crt
repo2-type=s3
repo2-path=/shop-db
repo2-s3-bucket=shop-backups
repo2-s3-endpoint=s3.eu-west-1.amazonaws.com
repo2-s3-region=eu-west-1
repo2-s3-uri-style=path
repo2-storage-port=9000
repo2-storage-verify-tls=y
repo2-storage-ca-file=/etc/pgbackrest-ca/repo2/ca.crt
repo2-cipher-type=aes-256-cbc
tls-server-address=*
tls-server-port=8432
tls-server-cert-file=/etc/postgresql-tls/tls.crt
tls-server-key-file=/etc/postgresql-tls/tls.key
tls-server-ca-file=/etc/postgresql-tls/ca.crt
tls-server-auth=shop-db-rw=shop-db

[shop-db]
pg1-path=/var/lib/postgresql/data/pgdata
pg1-port=5432
pg1-socket-path=/var/run/postgresql
`);
  });

  test('the repository host serves the volume repositories only', () => {
    const conf = renderRepoHostConf(model);
    expect(lines(conf)).toEqual(expect.arrayContaining(['repo1-path=/var/lib/pgbackrest/repo1', 'tls-server-auth=shop-db-rw=shop-db',
      'tls-server-cert-file=/etc/pgbackrest-tls/tls.crt', 'lock-path=/run/pgbackrest']));
    expect(conf).not.toMatch(/repo2|\[shop-db\]/);
  });

  test('a backup job has its repository local, retention, start-fast, and every instance remote over TLS', () => {
    const volume = renderBackupConf(model, model.repositories[0]);
    expect(lines(volume)).toEqual(expect.arrayContaining(['start-fast=y', 'repo1-path=/var/lib/pgbackrest/repo1', 'repo1-retention-full=3', '[shop-db]',
      'pg1-host=shop-db-primary-0.shop-db-headless', 'pg2-host=shop-db-replica-0.shop-db-headless', 'pg1-host-type=tls', 'pg2-host-port=8432',
      'pg1-host-config=/etc/pgbackrest/instance.conf', 'pg1-host-cert-file=/etc/pgbackrest-tls/tls.crt', 'pg2-path=/var/lib/postgresql/data/pgdata',
      'pg2-socket-path=/var/run/postgresql', 'pg2-port=5432']));
    expect(volume).not.toMatch(/repo2|tls-server/);
    const s3 = renderBackupConf(model, model.repositories[1]);
    expect(lines(s3)).toEqual(expect.arrayContaining(['repo2-type=s3', 'repo2-retention-full=2', 'repo2-cipher-type=aes-256-cbc']));
    expect(s3).not.toMatch(/repo1|s3-key/);
  });

  test('no secret is ever in a config file', () => {
    for (const text of [renderInstanceConf(model), renderRepoHostConf(model), ...model.repositories.map((r) => renderBackupConf(model, r))]) {
      expect(text).not.toMatch(/s3-key|cipher-pass|password/i);
    }
  });

  test('WAL archiving and restore parameters name the instance config and the stanza', () => {
    expect(backupParameters(model)).toEqual([
      { name: 'archive_mode', value: true },
      { name: 'archive_command', value: 'pgbackrest --config=/etc/pgbackrest/instance.conf --stanza=shop-db archive-push %p' },
      { name: 'archive_timeout', value: 60 },
      { name: 'restore_command', value: 'pgbackrest --config=/etc/pgbackrest/instance.conf --stanza=shop-db archive-get %f "%p"' },
    ]);
    const fiveMinutes = synthBackup({ repositories: [BackupRepository.volume()], archiveTimeout: Duration.minutes(5) }).model;
    expect(backupParameters(fiveMinutes)[2].value).toBe(300);
  });
});

describe('scripts', () => {
  const variants: Array<[string, BackupOptions, object?]> = [
    ['restore to the latest point', { repositories: [BackupRepository.volume()], restore: {} }],
    ['restore to a time', FULL_OPTIONS],
    ['restore to a time on timeline 3 with a WAL volume', { repositories: [BackupRepository.volume()], restore: { targetTime: '2025-03-01T12:00:00Z', targetTimeline: '3' } }, { walVolume: true }],
  ];
  test.each(variants.map(([what, options, cluster]) => [what, options, cluster ?? {}] as const))('restore.sh (%s) is shellcheck-clean, strict, and acts only on an empty data directory', (_what, options, cluster) => {
    const script = renderRestoreScript(synthBackup(options, cluster).model);
    expect(script.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(script).toContain('set -euo pipefail');
    expect(script).toContain('if [[ -s "$PGDATA/PG_VERSION" ]]; then');
    expect(shellcheck(script)).toBe('');
  });

  test('restore.sh passes the target, the target action and the timeline for a time, nothing of them for the latest point', () => {
    const pitr = renderRestoreScript(synthBackup(FULL_OPTIONS).model);
    expect(pitr).toContain("--type=time '--target=2025-03-01 12:00:00.25+00:00' --target-action=promote --target-timeline=current");
    expect(pitr).toContain('export PGBACKREST_PG1_PATH="$staging"');
    expect(pitr).toContain('--stanza=shop-db --repo=2');
    const latest = renderRestoreScript(synthBackup({ repositories: [BackupRepository.volume()], restore: {} }).model);
    expect(latest).not.toMatch(/--type=|--target/);
    expect(() => renderRestoreScript(synthBackup({ repositories: [BackupRepository.volume()] }).model)).toThrow(/no backup\.restore/);
  });

  test('backup.sh is shellcheck-clean and creates the stanza before it backs up', () => {
    const script = renderBackupScript(synthBackup(FULL_OPTIONS).model);
    expect(shellcheck(script)).toBe('');
    expect(script.indexOf('stanza-create')).toBeLessThan(script.indexOf('backup --type='));
    expect(script).toContain('  1 | 2) ;;');
  });
});

describe('on-demand backups', () => {
  // A full backup is scheduled for neither repository: each gets its full CronJob suspended.
  const { objects } = synthBackup({
    repositories: [BackupRepository.volume({ schedule: { incremental: '0 1 * * *' } }), BackupRepository.s3({ ...S3, schedule: {} })],
  });
  const scheduled = synthBackup({
    repositories: [BackupRepository.volume({ schedule: { full: '0 2 * * *' } }), BackupRepository.s3({ ...S3, schedule: { full: '0 3 * * *' } })],
  }).objects;

  test.each(VERSIONS)('validate strictly against Kubernetes %s', (version) => {
    expect(validateManifests(objects, version)).toEqual([]);
  });

  test('a repository without a full schedule has its full CronJob suspended, with the Job template of a scheduled one, for kubectl create job --from', () => {
    expect(objects.filter((o) => o.kind === 'CronJob').map((o) => `${o.metadata.name} ${o.spec.schedule} ${o.spec.suspend}`).sort()).toEqual([
      'shop-db-backup-repo1-full 0 1 * * 0 true', 'shop-db-backup-repo1-incr 0 1 * * * undefined', 'shop-db-backup-repo2-full 0 1 * * 0 true',
    ]);
    for (const name of ['shop-db-backup-repo1-full', 'shop-db-backup-repo2-full']) {
      const suspended = findObject(objects, 'CronJob', name).spec;
      expect(suspended.concurrencyPolicy).toBe('Forbid');
      expect(suspended.jobTemplate).toEqual(findObject(scheduled, 'CronJob', name).spec.jobTemplate);
    }
    expect(findObject(objects, 'CronJob', 'shop-db-backup-repo2-full').spec.jobTemplate.spec.template.spec.containers[0].command)
      .toEqual(['/etc/pgbackrest/backup.sh', '2', 'full']);
    expect(scheduled.filter((o) => o.kind === 'CronJob' && o.spec.suspend !== undefined)).toEqual([]);
  });
});

describe('Kubernetes objects', () => {
  const { chart, model, objects } = synthBackup(FULL_OPTIONS);

  test.each(VERSIONS)('validate strictly against Kubernetes %s', (version) => {
    expect(validateManifests(objects, version)).toEqual([]);
    expect(validateManifests(synthBackup({ repositories: [BackupRepository.s3(S3)] }, { networkPolicies: false }, 'db', null).objects, version)).toEqual([]);
  });

  test('every pod passes the restricted Pod Security Standard', () => {
    const templates = podTemplatesOf(objects);
    expect(templates.map((t) => `${t.kind}/${t.name}`).sort()).toEqual([
      'CronJob/shop-db-backup-repo1-full', 'CronJob/shop-db-backup-repo1-incr', 'CronJob/shop-db-backup-repo2-diff', 'CronJob/shop-db-backup-repo2-full',
      'StatefulSet/shop-db-repo-host',
    ]);
    for (const { template } of templates) expect(checkPodSecurity(template)).toEqual([]);
  });

  test('the objects: one ConfigMap with a file per role and the scripts, a tokenless ServiceAccount, the repository host, the CronJobs and two NetworkPolicies', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/shop-db-pgbackrest', 'CronJob/shop-db-backup-repo1-full', 'CronJob/shop-db-backup-repo1-incr', 'CronJob/shop-db-backup-repo2-diff',
      'CronJob/shop-db-backup-repo2-full', 'NetworkPolicy/shop-db-backup', 'NetworkPolicy/shop-db-repo-host', 'Service/shop-db-repo-host',
      'ServiceAccount/shop-db-pgbackrest', 'StatefulSet/shop-db-repo-host',
    ]);
    expect(Object.keys(findObject(objects, 'ConfigMap', 'shop-db-pgbackrest').data).sort())
      .toEqual(['backup-repo1.conf', 'backup-repo2.conf', 'backup.sh', 'instance.conf', 'repo-host.conf', 'restore.sh', 'server.sh']);
    expect(findObject(objects, 'ServiceAccount', 'shop-db-pgbackrest').automountServiceAccountToken).toBe(false);
    // No object of the backups is selected by the cluster's own selectors (headless Service, PDB, NetworkPolicy).
    for (const o of objects) expect(o.metadata.labels['app.kubernetes.io/name']).toBe('pgbackrest');
  });

  test('the repository host: one pod, a retained claim per volume repository, the server on the cluster\'s certificate', () => {
    const host = findObject(objects, 'StatefulSet', 'shop-db-repo-host');
    expect(host.spec.replicas).toBe(1);
    expect(host.spec.serviceName).toBe('shop-db-repo-host');
    expect(host.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    expect(host.spec.volumeClaimTemplates).toEqual([expect.objectContaining({
      metadata: expect.objectContaining({ name: 'repo1' }),
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'fast', resources: { requests: { storage: '50Gi' } } },
    })]);
    const pod = host.spec.template.spec;
    expect(pod.containers[0].command).toEqual(['pgbackrest', '--config=/etc/pgbackrest/repo-host.conf', 'server']);
    expect(pod.containers[0].readinessProbe.exec.command).toEqual(['pgbackrest', '--config=/etc/pgbackrest/repo-host.conf', 'server-ping', '127.0.0.1']);
    expect(pod.volumes.find((v: any) => v.name === 'pgbackrest-tls').secret).toEqual({
      secretName: 'shop-db-tls', defaultMode: 0o640,
      items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }, { key: 'ca.crt', path: 'ca.crt' }],
    });
    expect(host.spec.template.metadata.annotations['checksum/pgbackrest']).toMatch(/^[0-9a-f]{64}$/);
    const service = findObject(objects, 'Service', 'shop-db-repo-host');
    expect(service.spec).toMatchObject({ clusterIP: 'None', ports: [{ port: 8432, name: 'pgbackrest' }] });
  });

  test('CronJobs: Forbid concurrency, the script with repository and type, the volume repository\'s claim on the repository host\'s node, S3 keys from the Secret', () => {
    const volume = findObject(objects, 'CronJob', 'shop-db-backup-repo1-full');
    expect(volume.spec).toMatchObject({ schedule: '0 1 * * 0', concurrencyPolicy: 'Forbid' });
    const pod = volume.spec.jobTemplate.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0].command).toEqual(['/etc/pgbackrest/backup.sh', '1', 'full']);
    expect(pod.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
    expect(pod.containers[0].resources).toEqual({ requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '256Mi' } });
    expect(pod.volumes).toEqual(expect.arrayContaining([{ name: 'repo1', persistentVolumeClaim: { claimName: 'repo1-shop-db-repo-host-0' } },
      { name: 'pgbackrest-lock', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }]));
    expect(pod.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([{
      labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'pgbackrest', 'app.kubernetes.io/instance': 'shop-db', 'app.kubernetes.io/component': 'repo-host' } },
      topologyKey: 'kubernetes.io/hostname',
    }]);
    expect(findObject(objects, 'CronJob', 'shop-db-backup-repo1-incr').spec.jobTemplate.spec.template.spec.containers[0].command)
      .toEqual(['/etc/pgbackrest/backup.sh', '1', 'incr']);

    const s3 = findObject(objects, 'CronJob', 'shop-db-backup-repo2-diff').spec.jobTemplate.spec.template.spec;
    expect(s3.affinity).toBeUndefined();
    expect(s3.containers[0].command).toEqual(['/etc/pgbackrest/backup.sh', '2', 'diff']);
    expect(s3.containers[0].env).toEqual([
      { name: 'PGBACKREST_REPO2_S3_KEY', valueFrom: { secretKeyRef: { name: 'shop-s3', key: 'access-key-id' } } },
      { name: 'PGBACKREST_REPO2_S3_KEY_SECRET', valueFrom: { secretKeyRef: { name: 'shop-s3', key: 'secret-access-key' } } },
      { name: 'PGBACKREST_REPO2_CIPHER_PASS', valueFrom: { secretKeyRef: { name: 'shop-cipher', key: 'cipher-pass' } } },
    ]);
    expect(s3.volumes).toEqual(expect.arrayContaining([{ name: 'pgbackrest-repo2-ca', secret: { secretName: 'minio-ca', defaultMode: 0o444, items: [{ key: 'ca.crt', path: 'ca.crt' }] } }]));
    expect(s3.volumes.find((v: any) => v.name === 'pgbackrest-config').configMap.items).toEqual([
      { key: 'backup-repo2.conf', path: 'backup-repo2.conf' }, { key: 'backup.sh', path: 'backup.sh', mode: 0o555 },
    ]);
  });

  test('NetworkPolicies: the repository host admits the instances only; the jobs take nothing and reach the instances\' servers, S3 and DNS', () => {
    const host = findObject(objects, 'NetworkPolicy', 'shop-db-repo-host');
    expect(host.spec.ingress).toEqual([{
      from: [{
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'shop-db' } },
      }], ports: [{ protocol: 'TCP', port: 8432 }],
    }]);
    const jobs = findObject(objects, 'NetworkPolicy', 'shop-db-backup');
    expect(jobs.spec.ingress).toBeUndefined();
    expect(jobs.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(jobs.spec.egress).toEqual([
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'shop-db' } } }], ports: [{ protocol: 'TCP', port: 8432 }] },
      { to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ protocol: 'TCP', port: 9000 }] },
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
      },
    ]);
    expect(backupNetworkRules(model)).toEqual({
      ingress: [{ peer: { namespace: 'shop', podSelector: { 'app.kubernetes.io/name': 'pgbackrest', 'app.kubernetes.io/instance': 'shop-db', 'app.kubernetes.io/component': 'backup' } }, port: 8432 }],
      egress: [
        { peer: { namespace: 'shop', podSelector: { 'app.kubernetes.io/name': 'pgbackrest', 'app.kubernetes.io/instance': 'shop-db', 'app.kubernetes.io/component': 'repo-host' } }, port: 8432 },
        { peer: { cidr: '10.20.0.0/16' }, port: 9000 },
      ],
    });
  });

  test('the cluster\'s certificate must also name the repository host pod', () => {
    expect(backupCertificateDnsNames(chart, model)).toEqual(['*.shop-db-repo-host', '*.shop-db-repo-host.shop', '*.shop-db-repo-host.shop.svc', '*.shop-db-repo-host.shop.svc.cluster.local']);
    expect(backupCertificateDnsNames(chart, synthBackup({ repositories: [BackupRepository.s3(S3)] }).model)).toEqual([]);
  });

  test('synthesis is deterministic', () => {
    expect(synthBackup(FULL_OPTIONS).objects).toEqual(objects);
  });
});

describe('instance pod additions', () => {
  const { model } = synthBackup(FULL_OPTIONS);
  const additions = instancePodAdditions(model);

  test('the server sidecar: server.sh, the port, the superuser\'s name from its Secret and its password as a file, the S3 secrets, data read-only, restricted', () => {
    const [sidecar] = additions.sidecars;
    expect(sidecar.command).toEqual(['/etc/pgbackrest/server.sh']);
    expect(sidecar.args).toBeUndefined();
    expect(sidecar.ports).toEqual([{ name: 'pgbackrest', containerPort: 8432, protocol: 'TCP' }]);
    // No PGPASSWORD: server.sh writes the superuser's passfile from the mounted Secret.
    expect(sidecar.env).toEqual([
      { name: 'PGBACKREST_PG1_USER', valueFrom: { secretKeyRef: { name: 'shop-db-superuser', key: 'username' } } },
      { name: 'CREDENTIALS_DIR', value: '/etc/pgbackrest-secrets' },
      { name: 'PGPASSFILE', value: '/run/pgbackrest-auth/pgpass' },
      // The remotes it forks for the backup jobs check instance.conf's options: repo2-type=s3 requires the keys (the e2e's stanza-create failed without them).
      ...additions.postgresEnv,
    ]);
    expect(additions.postgresEnv.map((e) => e.name)).toEqual(['PGBACKREST_REPO2_S3_KEY', 'PGBACKREST_REPO2_S3_KEY_SECRET', 'PGBACKREST_REPO2_CIPHER_PASS']);
    expect(sidecar.volumeMounts).toEqual([
      { name: 'pgbackrest-config', mountPath: '/etc/pgbackrest', readOnly: true },
      { name: 'pgbackrest-lock', mountPath: '/run/pgbackrest' },
      { name: 'pgbackrest-secrets', mountPath: '/etc/pgbackrest-secrets', readOnly: true },
      { name: 'pgbackrest-auth', mountPath: '/run/pgbackrest-auth' },
      { name: 'data', mountPath: '/var/lib/postgresql/data', readOnly: true },
      { name: 'socket', mountPath: '/var/run/postgresql' },
      { name: 'tls', mountPath: '/etc/postgresql-tls', readOnly: true },
    ]);
    expect(sidecar.securityContext?.readOnlyRootFilesystem).toBe(true);
  });

  test('the postgres container gets the config, the lock-path, the S3 CA and the S3 secrets as env from Secrets', () => {
    expect(additions.postgresMounts.map((m) => m.mountPath)).toEqual(['/etc/pgbackrest', '/run/pgbackrest', '/etc/pgbackrest-ca/repo2']);
    expect(additions.postgresEnv.map((e) => e.name)).toEqual(['PGBACKREST_REPO2_S3_KEY', 'PGBACKREST_REPO2_S3_KEY_SECRET', 'PGBACKREST_REPO2_CIPHER_PASS']);
    expect(additions.postgresEnv.every((e) => e.value === undefined && e.valueFrom?.secretKeyRef)).toBe(true);
    expect(additions.volumes.map((v) => v.name)).toEqual(['pgbackrest-config', 'pgbackrest-lock', 'pgbackrest-secrets', 'pgbackrest-auth', 'pgbackrest-repo2-ca']);
    expect(additions.volumes[0].configMap?.items).toEqual([
      { key: 'instance.conf', path: 'instance.conf' }, { key: 'server.sh', path: 'server.sh', mode: 0o555 }, { key: 'restore.sh', path: 'restore.sh', mode: 0o555 },
    ]);
    // The superuser's Secret as files, and the passfile in memory: neither is mounted in the postgres container.
    expect(additions.volumes[2]).toEqual({
      name: 'pgbackrest-secrets',
      projected: {
        defaultMode: 0o440,
        sources: [{ secret: { name: 'shop-db-superuser', items: [{ key: 'username', path: 'superuser/username' }, { key: 'password', path: 'superuser/password' }] } }],
      },
    });
    const auth = additions.volumes[3];
    expect([auth.name, auth.emptyDir?.medium, auth.emptyDir?.sizeLimit?.value]).toEqual(['pgbackrest-auth', 'Memory', '1Mi']);
    expect(additions.postgresMounts.filter((m) => ['pgbackrest-secrets', 'pgbackrest-auth'].includes(m.name))).toEqual([]);
    expect(additions.podAnnotations['checksum/pgbackrest']).toMatch(/^[0-9a-f]{64}$/);
  });

  test('server.sh is shellcheck-clean bash; run, it writes the superuser\'s passfile (0600) and execs pgBackRest\'s server on the instance config', () => {
    const script = renderServerScript(model);
    expect(script.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
    const dir = mkdtempSync(join(tmpdir(), 'pgbackrest-server-'));
    try {
      mkdirSync(join(dir, 'secrets', 'superuser'), { recursive: true });
      writeFileSync(join(dir, 'secrets', 'superuser', 'username'), 'post:gres');
      writeFileSync(join(dir, 'secrets', 'superuser', 'password'), 'se\\cret:1');
      // A stand-in pgbackrest records its arguments and whether the passfile was in place before it started.
      mkdirSync(join(dir, 'bin'));
      writeFileSync(join(dir, 'bin', 'pgbackrest'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${join(dir, 'argv')}"\ntest -f "$PGPASSFILE"\n`, { mode: 0o755 });
      const run = (secrets: string) => spawnSync('bash', [join(dir, 'server.sh')], {
        env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, CREDENTIALS_DIR: secrets, PGPASSFILE: join(dir, 'pgpass') }, encoding: 'utf8',
      });
      writeFileSync(join(dir, 'server.sh'), script);
      const result = run(join(dir, 'secrets'));
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
      expect(readFileSync(join(dir, 'argv'), 'utf8')).toBe('--config=/etc/pgbackrest/instance.conf\nserver\n');
      expect(readFileSync(join(dir, 'pgpass'), 'utf8')).toBe('*:*:*:post\\:gres:se\\\\cret\\:1\n');
      expect(statSync(join(dir, 'pgpass')).mode.toString(8).slice(-3)).toBe('600');
      // A password of two lines stops it before pgBackRest starts, naming the file and not the value.
      rmSync(join(dir, 'argv'));
      rmSync(join(dir, 'pgpass'));
      writeFileSync(join(dir, 'secrets', 'superuser', 'password'), 'two\nlines');
      const refused = run(join(dir, 'secrets'));
      expect({ status: refused.status, stderr: refused.stderr }).toEqual({ status: 1, stderr: 'server: secret file superuser/password must hold one non-empty line\n' });
      expect([existsSync(join(dir, 'argv')), existsSync(join(dir, 'pgpass'))]).toEqual([false, false]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the restore hook: restore.sh with its environment', () => {
    expect(additions.restore?.command).toEqual(['/etc/pgbackrest/restore.sh']);
    expect(additions.restore?.env.slice(0, 4)).toEqual([
      { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' }, { name: 'PG_WALDIR', value: '' },
      { name: 'CONFIG_FILE', value: '/etc/postgresql/postgresql.conf' }, { name: 'PGBACKREST_CONFIG', value: '/etc/pgbackrest/instance.conf' },
    ]);
    expect(instancePodAdditions(synthBackup({ repositories: [BackupRepository.volume()] }).model).restore).toBeUndefined();
  });

  test('a config change changes the checksum', () => {
    const other = instancePodAdditions(synthBackup({ ...FULL_OPTIONS, ioTimeout: Duration.seconds(20) }).model);
    expect(other.podAnnotations['checksum/pgbackrest']).not.toBe(additions.podAnnotations['checksum/pgbackrest']);
  });
});

test('a chart without a namespace renders objects without namespaces, and NetworkPolicy peers without namespace selectors', () => {
  const { objects } = synthBackup({ repositories: [BackupRepository.volume()] }, {}, 'db', null);
  expect(objects.every((o) => o.metadata.namespace === undefined)).toBe(true);
  expect(findObject(objects, 'NetworkPolicy', 'db-repo-host').spec.ingress[0].from).toEqual([
    { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'db' } } },
  ]);
});
