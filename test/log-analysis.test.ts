import { Duration } from 'cdk8s';
import { LogAnalysis, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { KUBE_VERSIONS, validateManifests } from './support/kube-schema';
import { checkPodSecurity, podTemplatesOf } from './support/pod-security';
import { loadPolaris, runPolaris } from './support/polaris';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { logAnalysisParameters, resolveLogAnalysis } from '../lib/cluster/log-analysis';
import { postgresMajors, postgresVersion } from '../lib/core/postgres-versions';
import { checkSettingValue, gucSyntax } from '../lib/core/setting-values';

const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const IMAGE = 'registry.example.com/pgbadger:13.1';
const LOGS: LogAnalysis = { image: IMAGE };

function synth(props: Partial<PostgresStatefulClusterProps> = {}): any[] {
  const chart = testChart('db');
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
  return synthObjects(chart);
}

const conf = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-config').data['postgresql.conf'];
const confValues = (text: string, name: string): string[] => [...text.matchAll(new RegExp(`^${name} = (.*)$`, 'gm'))].map((m) => m[1]);
const pod = (objects: any[], name = 'db-primary') => findObject(objects, 'StatefulSet', name).spec.template;
const container = (objects: any[], name: string, sts = 'db-primary') => pod(objects, sts).spec.containers.find((c: any) => c.name === name);
const checksum = (objects: any[]) => pod(objects).metadata.annotations['checksum/config'];

describe('logAnalysis (pgBadger)', () => {
  test('postgresql.conf logs to hourly files on the data volume, in the stderr format with pgBadger\'s prefix, each setting once', () => {
    const text = conf(synth({ logAnalysis: { ...LOGS, minDurationStatement: Duration.millis(0) } }));
    const expected: { [name: string]: string } = {
      logging_collector: 'on',
      log_destination: "'stderr'",
      log_directory: "'/var/lib/postgresql/data/log'",
      log_filename: "'postgresql-%Y-%m-%d_%H%M%S.log'",
      log_rotation_age: "'1h'",
      log_line_prefix: "'%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h '",
      log_min_duration_statement: "'0ms'",
      log_checkpoints: 'on',
      log_connections: 'on',
      log_disconnections: 'on',
      log_lock_waits: 'on',
      log_temp_files: '0',
      log_autovacuum_min_duration: '0',
      lc_messages: "'C'",
    };
    for (const [name, value] of Object.entries(expected)) expect({ name, values: confValues(text, name) }).toEqual({ name, values: [value] });
  });

  test.each(postgresMajors())('every setting is one PostgreSQL %i knows, with a value its catalog accepts', (major) => {
    const version = postgresVersion(major);
    const model = resolveLogAnalysis(testChart(), LOGS, {})!;
    for (const [name, value] of Object.entries(logAnalysisParameters(model))) {
      expect({ name, known: version.parameters.has(name) }).toEqual({ name, known: true });
      const text = typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value);
      expect(() => checkSettingValue(testChart(), name, text, version.parameterTypes[name], gucSyntax(`PostgreSQL ${major}`))).not.toThrow();
    }
    expect(postgresMajors()).toEqual([14, 15, 16, 17, 18]);
  });

  test('without it, logs stay on stderr as before and no sidecar runs', () => {
    const objects = synth();
    expect(confValues(conf(objects), 'logging_collector')).toEqual(['off']);
    expect(container(objects, 'pgbadger')).toBeUndefined();
    expect(findObject(objects, 'ConfigMap', 'db-scripts').data['pgbadger-report.sh']).toBeUndefined();
  });

  test('turning it on rolls the pods (logging_collector takes a restart); changing the threshold is a reload', () => {
    const off = checksum(synth());
    const on = checksum(synth({ logAnalysis: LOGS }));
    const other = checksum(synth({ logAnalysis: { ...LOGS, minDurationStatement: Duration.seconds(2) } }));
    expect(on).not.toBe(off);
    expect(other).toBe(on);
  });

  test('the HA mode hands the same settings to Patroni', () => {
    const objects = synth({ logAnalysis: LOGS, highAvailability: {} });
    const patroni = findObject(objects, 'ConfigMap', 'db-patroni').data['patroni.yml'];
    expect(patroni).toMatch(/logging_collector: true/);
    expect(patroni).toMatch(/log_directory: \/var\/lib\/postgresql\/data\/log/);
    expect(container(objects, 'pgbadger', 'db')).toBeDefined();
  });

  test('every instance gets the sidecar on its own data volume; the script is shellcheck-clean POSIX sh', () => {
    const objects = synth({ logAnalysis: LOGS, instances: 2 });
    for (const sts of ['db-primary', 'db-replica']) {
      const sidecar = container(objects, 'pgbadger', sts);
      expect(sidecar.image).toBe(IMAGE);
      expect(sidecar.command).toEqual(['/opt/cdk8s-postgres/pgbadger-report.sh']);
      expect(sidecar.volumeMounts).toEqual(expect.arrayContaining([{ name: 'data', mountPath: '/var/lib/postgresql/data' }]));
      expect(sidecar.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(sidecar.resources.limits).toEqual({ cpu: '500m', memory: '256Mi' });
      expect(sidecar.readinessProbe).toBeUndefined();
    }
    const script: string = findObject(objects, 'ConfigMap', 'db-scripts').data['pgbadger-report.sh'];
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
  });

  test('served: a BusyBox httpd sidecar on the report directory, a port on the headless Service, admitted only from the named clients', () => {
    const objects = synth({ logAnalysis: { ...LOGS, server: { clients: [{ namespace: 'dba' }], port: 8088 } } });
    const http = container(objects, 'pgbadger-http');
    expect(http.image).toBe('busybox:1.37.0');
    expect(http.command).toEqual(['httpd', '-f', '-p', '8088', '-h', '/var/lib/postgresql/data/pgbadger']);
    expect(http.volumeMounts).toEqual([{ name: 'data', mountPath: '/var/lib/postgresql/data', readOnly: true }]);
    expect(http.readinessProbe).toBeUndefined();
    const headless = findObject(objects, 'Service', 'db-headless');
    expect(headless.spec.ports.map((p: any) => [p.name, p.port])).toEqual([['postgres', 5432], ['pgbadger-http', 8088]]);
    expect(findObject(objects, 'Service', 'db-rw').spec.ports.map((p: any) => p.port)).toEqual([5432]);
    const ingress = findObject(objects, 'NetworkPolicy', 'db').spec.ingress;
    const reportRules = ingress.filter((rule: any) => rule.ports.some((p: any) => p.port === 8088));
    expect(reportRules).toEqual([{
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'dba' } } }],
      ports: [{ protocol: 'TCP', port: 8088 }],
    }]);
  });

  test('the rendered objects validate strictly, pass the restricted Pod Security Standard and raise no Polaris danger', () => {
    const objects = synth({ logAnalysis: { ...LOGS, server: { clients: [{ namespace: 'dba' }] } }, highAvailability: {} });
    for (const version of KUBE_VERSIONS) expect(validateManifests(objects, version)).toEqual([]);
    for (const template of podTemplatesOf(objects)) expect(checkPodSecurity(template.template)).toEqual([]);
    const dangers = runPolaris(loadPolaris(), objects, ['pdbMinAvailableGreaterThanHPAMinReplicas']).results
      .filter((result) => !result.passed && result.severity === 'danger').map((result) => `${result.check} ${result.name} ${result.container ?? ''}`);
    expect(dangers).toEqual([]);
  });

  test.each([
    ['a logging parameter in extraParameters', { extraParameters: { log_min_duration_statement: '0' } },
      'Db: extraParameters.log_min_duration_statement "0" is set by logAnalysis for pgBadger; use logAnalysis.minDurationStatement'],
    ['lc_messages in extraParameters', { extraParameters: { LC_MESSAGES: 'de_DE' } },
      'Db: extraParameters.LC_MESSAGES "de_DE" is set by logAnalysis for pgBadger; drop it, or drop logAnalysis'],
    ['a retention shorter than two intervals', { logAnalysis: { ...LOGS, logRetention: Duration.hours(1) } },
      'Db: logAnalysis.logRetention "3600s" is shorter than two report intervals (7200s)'],
    ['an interval under a minute', { logAnalysis: { ...LOGS, reportInterval: Duration.seconds(10) } },
      'Db: logAnalysis.reportInterval 10 must be a whole number from 60 to 604800'],
    ['a server for nobody', { logAnalysis: { ...LOGS, server: { clients: [] } } },
      'Db: logAnalysis.server.clients [] admits nobody to the reports'],
    ['an image with a space', { logAnalysis: { image: 'pg badger' } }, 'Db: logAnalysis.image "pg badger" is not an image reference'],
  ])('refuses %s', (_what, props, message) => {
    const withLogs = { logAnalysis: LOGS, ...props } as Partial<PostgresStatefulClusterProps>;
    expect(() => synth(withLogs)).toThrow(message);
  });
});
