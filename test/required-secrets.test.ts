/**
 * RequiredSecrets: the Secrets an app's pods read, with keys, readers and who creates them,
 * found in the synthesized objects (so a user's own workloads count too).
 */
import { App, Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { AirflowStackChart } from '../examples/airflow-stack';
import { SecureStackChart } from '../examples/secure-stack';
import {
  ExternalPostgres, IssuerKind, PgBouncerPooler, PostgresStatefulCluster, RequiredSecrets, SecretCreator,
} from '../lib';

const SECRETS = { superuserSecret: { secretName: 'db-superuser' }, replicationSecret: { secretName: 'db-replication', usernameKey: 'user' } };

test('the Airflow example: every role Secret, its keys and the pods that read it, all made by the user', () => {
  const app = new App();
  new AirflowStackChart(app, 'airflow');
  const user = 'password,username';
  expect(RequiredSecrets.of(app).map((s) => [s.namespace, s.secretName, s.keys.join(','), s.createdBy, s.readers.join(',')])).toEqual([
    ['airflow-ha', 'airflow-app', user, 'you', 'Deployment/airflow-pgbouncer,Deployment/airflow-pgpool,StatefulSet/airflow-db-primary'],
    ['airflow-ha', 'airflow-db-exporter', user, 'you', 'StatefulSet/airflow-db-primary,StatefulSet/airflow-db-replica'],
    ['airflow-ha', 'airflow-db-replication', user, 'you', 'StatefulSet/airflow-db-primary,StatefulSet/airflow-db-replica'],
    // Both read it: every instance's pg_hba.conf rejects the superuser's name over TCP.
    ['airflow-ha', 'airflow-db-superuser', user, 'you', 'StatefulSet/airflow-db-primary,StatefulSet/airflow-db-replica'],
    ['airflow-ha', 'airflow-pgbouncer-exporter', user, 'you', 'Deployment/airflow-pgbouncer'],
    // The cluster creates the Pgpool-II roles from their Secrets, so its primary reads them too.
    ['airflow-ha', 'airflow-pgpool-exporter', user, 'you', 'Deployment/airflow-pgpool,StatefulSet/airflow-db-primary'],
    ['airflow-ha', 'airflow-pgpool-srcheck', user, 'you', 'Deployment/airflow-pgpool,StatefulSet/airflow-db-primary'],
  ]);
});

test('TLS Secrets of the app\'s Certificates are cert-manager\'s, named after the Certificate', () => {
  const app = new App();
  new SecureStackChart(app, 'secure-stack');
  const tls = RequiredSecrets.of(app).filter((s) => s.secretName.endsWith('-tls'));
  expect(tls.map((s) => [s.secretName, s.createdBy, s.source])).toEqual([
    ['shop-db-tls', SecretCreator.CERT_MANAGER, 'Certificate/shop-db'],
    ['shop-pgbouncer-tls', SecretCreator.CERT_MANAGER, 'Certificate/shop-pgbouncer'],
    ['shop-pgpool-tls', SecretCreator.CERT_MANAGER, 'Certificate/shop-pgpool'],
  ]);
  // PgBouncer verifies Pgpool-II with Pgpool-II's CA: it reads ca.crt of that Secret.
  expect(tls.find((s) => s.secretName === 'shop-pgpool-tls')!.readers).toEqual(['Deployment/shop-pgbouncer', 'Deployment/shop-pgpool']);
});

test('a tls.secretName without an issuer is the user\'s to make', () => {
  const chart = new Chart(new App(), 'c', { namespace: 'db' });
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, tls: { secretName: 'db-tls' } });
  const tls = RequiredSecrets.of(chart).find((s) => s.secretName === 'db-tls')!;
  expect([tls.createdBy, tls.source, tls.keys]).toEqual([SecretCreator.USER, undefined, ['ca.crt', 'tls.crt', 'tls.key']]);
});

test('a self-signed certificate (no tls prop, or tls: {}) and tls.disabled need no TLS Secret', () => {
  for (const tls of [undefined, {}, { disabled: true }]) {
    const chart = new Chart(new App(), 'c', { namespace: 'db' });
    new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...(tls ? { tls } : {}) });
    expect(RequiredSecrets.of(chart).map((s) => s.secretName)).toEqual(['db-replication', 'db-superuser']);
  }
});

test('the replicas read only the superuser Secret\'s username key, for pg_hba.conf; with superuserNetworkAccess they do not read it', () => {
  const readers = (superuserNetworkAccess: boolean) => {
    const chart = new Chart(new App(), 'c', { namespace: 'db' });
    new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, superuserNetworkAccess });
    return RequiredSecrets.of(chart).find((s) => s.secretName === 'db-superuser')!.readers;
  };
  expect(readers(false)).toEqual(['StatefulSet/db-primary', 'StatefulSet/db-replica']);
  expect(readers(true)).toEqual(['StatefulSet/db-primary']);
});

test('an operator-managed cluster\'s CA Secret is the operator\'s; its superuser Secret, which no pod reads, is not listed', () => {
  const chart = new Chart(new App(), 'c', { namespace: 'payments' });
  const pg = new ExternalPostgres(chart, 'Pg', {
    readWriteService: 'pg-rw', superuserSecret: { secretName: 'pg-superuser' }, certificateAuthority: { secretName: 'pg-ca' },
  });
  new PgBouncerPooler(chart, 'Pooler', { backend: pg, users: [{ secretName: 'app', usernameKey: 'user' }] });
  expect(RequiredSecrets.of(chart).map((s) => [s.secretName, s.keys.join(','), s.createdBy, s.source ?? ''])).toEqual([
    ['app', 'password,user', SecretCreator.USER, ''],
    ['pg-ca', 'ca.crt', SecretCreator.OPERATOR, 'c/Pg'],
  ]);
});

test('the user\'s own workloads count: envFrom and whole-Secret volumes (every key), projected items, image pull Secrets, CronJobs', () => {
  const chart = new Chart(new App(), 'c');
  const container = { name: 'app', image: 'app:1', envFrom: [{ secretRef: { name: 'app-env' } }] };
  new k8s.KubeDeployment(chart, 'Web', {
    metadata: { name: 'web' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [container],
          imagePullSecrets: [{ name: 'registry' }],
          volumes: [
            { name: 'whole', secret: { secretName: 'app-files' } },
            { name: 'some', projected: { sources: [{ secret: { name: 'app-keys', items: [{ key: 'a', path: 'a' }] } }] } },
          ],
        },
      },
    },
  });
  new k8s.KubeCronJob(chart, 'Nightly', {
    metadata: { name: 'nightly' },
    spec: { schedule: '0 1 * * *', jobTemplate: { spec: { template: { spec: { containers: [container], restartPolicy: 'Never' } } } } },
  });
  expect(RequiredSecrets.of(chart).map((s) => [s.namespace, s.secretName, s.keys.join(','), s.readers.join(',')])).toEqual([
    [undefined, 'app-env', '', 'CronJob/nightly,Deployment/web'],
    [undefined, 'app-files', '', 'Deployment/web'],
    [undefined, 'app-keys', 'a', 'Deployment/web'],
    [undefined, 'registry', '.dockerconfigjson', 'Deployment/web'],
  ]);
});

test('the report is a Markdown table with one row per Secret', () => {
  const chart = new Chart(new App(), 'c', { namespace: 'ops' });
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, tls: { issuer: { name: 'ca', kind: IssuerKind.CLUSTER_ISSUER } } });
  expect(RequiredSecrets.report(chart)).toBe([
    'Secrets the app reads (3); create those marked "you" before `kubectl apply`:',
    '',
    '| namespace | Secret | keys | created by | read by |',
    '|---|---|---|---|---|',
    '| ops | db-replication | password, user | you | StatefulSet/db-primary, StatefulSet/db-replica |',
    '| ops | db-superuser | password, username | you | StatefulSet/db-primary, StatefulSet/db-replica |',
    '| ops | db-tls | ca.crt, tls.crt, tls.key | cert-manager (Certificate/db) | StatefulSet/db-primary, StatefulSet/db-replica |',
    '',
  ].join('\n'));
});

test('a Secret the app renders itself is not one to create', () => {
  const chart = new Chart(new App(), 'c', { namespace: 'ops' });
  new PostgresStatefulCluster(chart, 'Db', SECRETS);
  new k8s.KubeSecret(chart, 'Replication', { metadata: { name: 'db-replication' }, stringData: { username: 'replicator' } });
  expect(RequiredSecrets.of(chart).map((s) => s.secretName)).toEqual(['db-superuser']);
});
