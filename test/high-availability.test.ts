import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Duration } from 'cdk8s';
import { isAlias, parse, parseDocument, visit } from 'yaml';
import {
  ExporterSidecar, HighAvailability, IssuerKind, PostgresStatefulCluster, PostgresStatefulClusterProps, RequiredSecrets, SecretCreator,
  SynchronousReplication,
} from '../lib';
import { validateManifests } from './support/kube-schema';
import { mayConnect, Pod } from './support/network-policy-eval';
import { patroniPodEnvironment, requirePatroni, startPatroni as startPatroniPod, validatePatroniConfig } from './support/patroni-pod';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';

type Props = Partial<PostgresStatefulClusterProps>;

const NS = 'shop';
const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const ISSUER = { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER };
const SELECTOR_ALL = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'db' };
const DATABASE_SELECTOR = { ...SELECTOR_ALL, 'app.kubernetes.io/component': 'database' };

/** A cluster `Db` (name `db`, 3 instances) in namespace `shop`, with an ExporterSidecar when asked. */
function synth(props: Props = {}, exporter = false): any[] {
  const chart = testChart(NS);
  const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, instances: 3, ...props });
  if (exporter) new ExporterSidecar(chart, 'Metrics', { target: cluster, credentials: { secretName: 'metrics-exporter' } });
  return synthObjects(chart);
}
const ha = (highAvailability: HighAvailability = {}, props: Props = {}, exporter = false) => synth({ ...props, highAvailability }, exporter);

const patroniYml = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-patroni').data['patroni.yml'];
/** patroni.yml as Patroni's PyYAML reads it: YAML 1.1. */
const patroni = (objects: any[]) => parse(patroniYml(objects), { version: '1.1' });
const provisionScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['provision.sh'];
const startScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['patroni-start.sh'];
const podSpec = (objects: any[], name = 'db') => findObject(objects, 'StatefulSet', name).spec.template.spec;
const server = (objects: any[]) => podSpec(objects).containers.find((c: any) => c.name === 'postgres');
const mountPath = (objects: any[], volume: string) => server(objects).volumeMounts.find((m: any) => m.name === volume).mountPath;
const ofKind = (objects: any[], kind: string) => objects.filter((o) => o.kind === kind);

/** postgresql.conf's parameters, values unquoted. */
function confParameters(conf: string): { [name: string]: string } {
  return Object.fromEntries(conf.split('\n').filter((line) => /^[a-z]/.test(line)).map((line) => {
    const [, name, value] = /^(\S+) = (.*)$/.exec(line)!;
    return [name, value.startsWith("'") ? value.slice(1, -1).replace(/''/g, "'") : value];
  }));
}
/** Patroni's parameters as postgresql.conf writes them. */
const asConf = (parameters: { [name: string]: unknown }) => Object.fromEntries(Object.entries(parameters)
  .map(([name, value]) => [name, typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value)]));
const hbaLines = (text: string) => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));

/** The plain mode's postgresql.conf parameters and pg_hba.conf lines for the same props. */
function plainFiles(props: Props, exporter = false) {
  const data = findObject(synth(props, exporter), 'ConfigMap', 'db-config').data;
  const { listen_addresses: _l, port: _p, hba_file: _h, ...parameters } = confParameters(data['postgresql.conf']);
  return { parameters, pgHba: hbaLines(data['pg_hba.conf']) };
}

/** The postgres container's environment for pod `db-0`, `$(VAR)` resolved, Secrets replaced by made-up values. */
const podEnvironment = (objects: any[]) => patroniPodEnvironment(objects, 'db', NS);

/** Runs python3 with the rendered patroni.yml as its last argument, in the pod's environment. */
function withPatroniYml(objects: any[], args: string[], env = podEnvironment(objects)) {
  requirePatroni();
  const dir = mkdtempSync(join(tmpdir(), 'patroni-'));
  try {
    writeFileSync(join(dir, 'patroni.yml'), patroniYml(objects));
    const result = spawnSync('/usr/bin/python3', [...args, join(dir, 'patroni.yml')], { env, encoding: 'utf8' });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Made-up Secret values with what breaks naive YAML quoting: quotes, backslash, `: `, `#`, a leading `-` or `*`. */
const SECRET_VALUES: { [secretName: string]: { [key: string]: string } } = {
  'pg-superuser': { username: 'postgres', password: "it's: a #\\secret" },
  'pg-replication': { username: '-replicator', password: '"rep" \'li\' *ca' },
  'db-patroni-api': { username: 'patroni', password: 'api:pass word' },
};

/** patroni-start.sh of `db` with SECRET_VALUES (or exactly `files`), running python3 with `args`. */
const startPatroni = (objects: any[], args: string[], files?: { [path: string]: string }) => startPatroniPod(objects, 'db', NS, args, SECRET_VALUES, files);
const validateConfig = (objects: any[]) => validatePatroniConfig(objects, 'db', NS, SECRET_VALUES);
/** Patroni's configuration as its Config class merges the directory, as JSON. */
const effectiveConfig = (objects: any[], expression: string) => {
  const result = startPatroni(objects, ['-c', [
    'import json, sys', 'from patroni.config import Config', 'c = Config(sys.argv[1], validator=None)',
    "c.set_dynamic_configuration(c['bootstrap']['dcs'])", `print(json.dumps(${expression}))`,
  ].join('\n')]);
  if (result.status !== 0) throw new Error(result.output);
  return JSON.parse(result.stdout);
};

describe('objects of instances: 3, highAvailability: {}', () => {
  const objects = ha();

  test('a ServiceAccount, and a Role with exactly Patroni\'s ConfigMap and pod verbs bound to it in the chart namespace', () => {
    expect(findObject(objects, 'ServiceAccount', 'db')).toBeDefined();
    expect(findObject(objects, 'Role', 'db-patroni').rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['patch'], resourceNames: ['db-config', 'db-leader', 'db-failover', 'db-sync'] },
      // Patroni reads only the leader's ConfigMap by name (after a conflict on it); the others come from its watch.
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: ['db-leader'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['patch'], resourceNames: ['db-0', 'db-1', 'db-2'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
    ]);
    const binding = findObject(objects, 'RoleBinding', 'db-patroni');
    expect(binding.metadata.namespace).toBe(NS);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'db-patroni' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: podSpec(objects).serviceAccountName, namespace: NS }]);
    expect(ofKind(objects, 'ClusterRole')).toEqual([]);
  });

  test('one StatefulSet `db` of 3 Patroni pods, no init container, the token mounted (plain pods mount none)', () => {
    expect(ofKind(objects, 'StatefulSet').map((o) => [o.metadata.name, o.spec.replicas])).toEqual([['db', 3]]);
    // The only init container is the default self-signed certificate's: Patroni bootstraps itself.
    expect((podSpec(objects).initContainers ?? []).map((c: any) => c.name)).not.toContain('bootstrap');
    expect(server(objects).command).toEqual([`${mountPath(objects, 'scripts')}/patroni-start.sh`, `${mountPath(objects, 'config')}/patroni.yml`]);
    expect(podSpec(objects).automountServiceAccountToken).toBe(true);
    expect(podSpec(synth(), 'db-primary').automountServiceAccountToken).toBe(false);
  });

  test('pods carry cluster-name: db; the selector keeps the plain labels', () => {
    const { selector, template } = findObject(objects, 'StatefulSet', 'db').spec;
    expect(template.metadata.labels).toMatchObject({ ...DATABASE_SELECTOR, 'cluster-name': 'db' });
    expect(selector.matchLabels).toEqual(DATABASE_SELECTOR);
  });

  test.each([
    ['db-rw', { ...SELECTOR_ALL, role: 'primary' }],
    ['db-ro', { ...SELECTOR_ALL, role: 'replica' }],
    ['db-headless', SELECTOR_ALL],
  ])('Service %s selects %p', (name, selector) => {
    expect(findObject(objects, 'Service', name).spec.selector).toEqual(selector);
  });

  test('our ConfigMaps are db-patroni and db-scripts (Patroni owns db-config), and none carries cluster-name', () => {
    const configMaps = ofKind(objects, 'ConfigMap');
    expect(configMaps.map((o) => o.metadata.name).sort()).toEqual(['db-patroni', 'db-scripts']);
    for (const configMap of configMaps) expect(configMap.metadata.labels).not.toHaveProperty('cluster-name');
  });

  test('Patroni\'s callbacks and post_bootstrap are the mounted provision.sh', () => {
    const config = patroni(objects);
    const script = `${mountPath(objects, 'scripts')}/provision.sh`;
    expect([config.bootstrap.post_bootstrap, config.postgresql.callbacks]).toEqual([script, { on_start: script, on_role_change: script }]);
    expect(provisionScript(objects)).toMatch(/^#!\/usr\/bin\/env bash\n/);
  });
});

describe('patroni.yml', () => {
  test.each([
    ['defaults', {}, [30, 10, 10, 1048576, 300, false, false]],
    ['props', {
      ttl: Duration.minutes(1), loopWait: Duration.seconds(5), retryTimeout: Duration.seconds(20), maximumLagOnFailover: 0,
      primaryStartTimeout: Duration.minutes(2), synchronousMode: true, synchronousModeStrict: true,
    }, [60, 5, 20, 0, 120, true, true]],
  ] as const)('bootstrap.dcs follows the %s', (_what, props, values) => {
    const { postgresql: _, ...dcs } = patroni(ha(props)).bootstrap.dcs;
    const keys = ['ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'primary_start_timeout', 'synchronous_mode', 'synchronous_mode_strict'];
    expect(dcs).toEqual(Object.fromEntries(keys.map((key, i) => [key, values[i]])));
  });

  test('memberSlotsTtl reaches bootstrap.dcs as member_slots_ttl in seconds; unset, Patroni keeps its own (30 min in Patroni 4, none in 3)', () => {
    expect(patroni(ha({ memberSlotsTtl: Duration.seconds(0) })).bootstrap.dcs.member_slots_ttl).toBe(0);
    expect(patroni(ha({ memberSlotsTtl: Duration.hours(1) })).bootstrap.dcs.member_slots_ttl).toBe(3600);
    expect(patroni(ha()).bootstrap.dcs).not.toHaveProperty('member_slots_ttl');
    expect(() => ha({ memberSlotsTtl: Duration.days(8) })).toThrow(/highAvailability\.memberSlotsTtl/);
  });

  test.each([
    ['defaults', {}, false],
    ['tls, settings, extraParameters and a WAL volume', {
      tls: {}, settings: { maxConnections: 200, workMem: '16MB' }, extraParameters: { log_min_duration_statement: '250' }, storage: { walSize: '2Gi' },
    }, false],
    ['an exporter', {}, true],
  ] as Array<[string, Props, boolean]>)('parameters and pg_hba are the plain mode\'s with %s', (_what, props, exporter) => {
    const config = patroni(ha({}, props, exporter));
    // The one default that differs: Patroni refuses a wal_keep_size under 16MB, so the HA mode keeps Patroni's 128MB.
    const plain = plainFiles({ ...props, settings: { ...props.settings, walKeepSize: '128MB' } }, exporter);
    expect(asConf(config.bootstrap.dcs.postgresql.parameters)).toEqual(plain.parameters);
    expect(asConf(config.postgresql.parameters)).toEqual(plain.parameters);
    expect(config.postgresql.pg_hba).toEqual(plain.pgHba);
    expect(config.bootstrap.pg_hba).toEqual(plain.pgHba);
  });

  test('a settings or extraParameters value reaches both parameter sections', () => {
    const config = patroni(ha({}, { settings: { workMem: '16MB' }, extraParameters: { log_min_duration_statement: '250' } }));
    for (const parameters of [config.bootstrap.dcs.postgresql.parameters, config.postgresql.parameters]) {
      expect(parameters).toMatchObject({ work_mem: '16MB', log_min_duration_statement: '250' });
    }
  });

  test('pg_hba: hostssl with tls required, the exporter\'s loopback lines with an ExporterSidecar', () => {
    const lines = patroni(ha({}, { tls: {} }, true)).postgresql.pg_hba.map((line: string) => line.split(/\s+/).join(' '));
    expect(lines.filter((line: string) => line.includes('pg_monitor'))).toEqual([
      'host postgres +pg_monitor 127.0.0.1/32 scram-sha-256', 'host postgres +pg_monitor ::1/128 scram-sha-256',
    ]);
    // The superuser's reject line comes first and matches any connection type; every admitting network line is hostssl.
    expect(lines.filter((line: string) => / reject$/.test(line))).toEqual(['host all @/etc/postgresql-superuser/username all reject']);
    expect(new Set(lines.filter((line: string) => !/pg_monitor|^local| reject$/.test(line)).map((line: string) => line.split(' ')[0]))).toEqual(new Set(['hostssl']));
  });

  test('`on` stays a string for YAML 1.1 readers, PyYAML included, and there are no anchors or aliases', () => {
    const objects = ha({}, { tls: {} }, true);
    expect(patroniYml(objects)).toMatch(/^ +synchronous_commit: "on"$/m);
    expect(patroni(objects).postgresql.parameters.synchronous_commit).toBe('on');
    const pyyaml = withPatroniYml(objects, ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))'], { PATH: '/usr/bin:/bin' });
    expect(pyyaml.status).toBe(0);
    expect(JSON.parse(pyyaml.output)).toEqual(patroni(objects));
    const anchored: string[] = [];
    visit(parseDocument(patroniYml(objects)), { Node: (_key, node) => { if (isAlias(node) || node.anchor) anchored.push(String(node)); } });
    expect(anchored).toEqual([]);
  });

  test('with tls, replication and pg_rewind verify the member\'s certificate against the mounted CA', () => {
    const objects = ha({}, { tls: { issuer: ISSUER } });
    const verified = { sslmode: 'verify-full', sslrootcert: `${mountPath(objects, 'tls')}/ca.crt` };
    expect(patroni(objects).postgresql.authentication).toEqual({ superuser: {}, replication: verified, rewind: verified });
    expect(podSpec(objects).volumes.find((v: any) => v.name === 'tls').secret.items.map((i: any) => i.path)).toContain('ca.crt');
    // The host replicas connect to is named by the certificate.
    const host = podEnvironment(objects).PATRONI_POSTGRESQL_CONNECT_ADDRESS.split(':')[0];
    expect(findObject(objects, 'Certificate', 'db').spec.dnsNames).toContain(host.replace(/^[^.]+/, '*'));
    expect(patroni(ha({}, { tls: { disabled: true } })).postgresql.authentication).toEqual({ superuser: {}, replication: {}, rewind: {} });
  });

  test('a WAL volume gives initdb and pg_basebackup a waldir on it', () => {
    const objects = ha({}, { storage: { walSize: '2Gi' } });
    const config = patroni(objects);
    const waldir = { waldir: `${mountPath(objects, 'wal')}/pg_wal` };
    expect(config.bootstrap.initdb).toContainEqual(waldir);
    expect(config.postgresql.basebackup).toEqual([{ checkpoint: 'fast' }, waldir]);
    expect(JSON.stringify(patroni(ha()).bootstrap.initdb)).not.toContain('waldir');
    expect(patroni(ha()).postgresql.basebackup).toEqual([{ checkpoint: 'fast' }]);
  });

  test('kubernetes: ConfigMaps, the pods\' selector labels without component, scope db on label cluster-name', () => {
    const objects = ha();
    const config = patroni(objects);
    expect(config.scope).toBe('db');
    expect(config.kubernetes).toMatchObject({ use_endpoints: false, labels: SELECTOR_ALL, scope_label: 'cluster-name', role_label: 'role' });
    expect(findObject(objects, 'StatefulSet', 'db').spec.template.metadata.labels).toMatchObject({ ...config.kubernetes.labels, 'cluster-name': config.scope });
  });
});

describe('patroni --validate-config (Patroni 3.0.2)', () => {
  test('the pod\'s connect addresses are the member\'s DNS name through the headless Service', () => {
    const env = podEnvironment(ha());
    expect([env.PATRONI_POSTGRESQL_CONNECT_ADDRESS, env.PATRONI_RESTAPI_CONNECT_ADDRESS]).toEqual(['db-0.db-headless:5432', 'db-0.db-headless:8008']);
  });

  test.each([
    ['defaults', {}, {}, false],
    ['synchronous mode, strict', { synchronousMode: true, synchronousModeStrict: true }, {}, false],
    ['tls with an issuer', {}, { tls: { issuer: ISSUER } }, false],
    ['a WAL volume', {}, { storage: { walSize: '2Gi' } }, false],
    ['an exporter and other ports', { restApiPort: 18008 }, { port: 15432 }, true],
    ['memberSlotsTtl, which Patroni 3.0 keeps in the store unused', { memberSlotsTtl: Duration.minutes(5) }, {}, false],
  ] as Array<[string, HighAvailability, Props, boolean]>)('accepts %s', (_what, highAvailability, props, exporter) => {
    expect(validateConfig(ha(highAvailability, props, exporter))).toEqual({ status: 0, output: '' });
  });

  test('the check can fail: patroni.yml alone, without the credentials patroni-start.sh adds, is refused', () => {
    const result = withPatroniYml(ha(), ['/usr/bin/patroni', '--validate-config'], { PATH: '/usr/bin:/bin' });
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('postgresql.authentication.rewind.username');
  });

  const effectiveParameters = (objects: any[]) => JSON.parse(withPatroniYml(objects, ['-c', [
    'import json, sys', 'from patroni.config import Config', 'c = Config(sys.argv[1], validator=None)',
    "c.set_dynamic_configuration(c['bootstrap']['dcs'])", "print(json.dumps(dict(c['postgresql']['parameters'])))",
  ].join('\n')]).output);

  test('Patroni keeps a rendered wal_keep_size of 16MB or more', () => {
    expect(effectiveParameters(ha({}, { settings: { walKeepSize: '64MB' } }))).toMatchObject({ wal_keep_size: '64MB', max_connections: 100 });
  });

  // Patroni replaces a shared setting below its limits by its own default, silently: the props that would be are refused.
  test.each([
    ['defaults', {}],
    ['the smallest values Patroni keeps', { settings: { maxConnections: 25, maxWalSenders: 4, maxReplicationSlots: 4, walKeepSize: '16MB' } }],
  ] as Array<[string, Props]>)('Patroni runs with every rendered parameter: %s', (_what, props) => {
    const objects = ha({}, props);
    expect(asConf(effectiveParameters(objects))).toMatchObject(asConf(patroni(objects).bootstrap.dcs.postgresql.parameters));
  });
});

describe('REST API: authentication, TLS, credentials from files', () => {
  const TLS_PROPS: Props = { tls: { issuer: ISSUER } };

  test('patroni-start.sh is shellcheck-clean', () => {
    expect(shellcheck(startScript(ha()))).toBe('');
  });

  test('Patroni reads the REST API\'s and the roles\' credentials, exactly, from secrets.yml (0600) beside a link to patroni.yml', () => {
    const objects = ha();
    const run = startPatroni(objects, ['-c', 'import sys; print(sys.argv[1])']);
    expect(run.status).toBe(0);
    expect(run.modes).toEqual({ 'patroni.yml': 'link', 'secrets.yml': '600' });
    const login = (secret: string) => ({ username: SECRET_VALUES[secret].username, password: SECRET_VALUES[secret].password });
    const [restapi, authentication] = effectiveConfig(objects, "[c['restapi'], c['postgresql']['authentication']]");
    expect(restapi).toMatchObject({ listen: '0.0.0.0:8008', authentication: login('db-patroni-api') });
    expect(authentication).toMatchObject({ superuser: login('pg-superuser'), replication: login('pg-replication'), rewind: login('pg-replication') });
  });

  test('no password in the environment: no env var comes from a Secret, patronictl finds the in-memory directory', () => {
    const objects = ha();
    expect(server(objects).env.filter((variable: any) => variable.valueFrom?.secretKeyRef)).toEqual([]);
    expect(podEnvironment(objects).PATRONICTL_CONFIG_FILE).toBe(mountPath(objects, 'patroni'));
    expect(podSpec(objects).volumes.find((v: any) => v.name === 'patroni').emptyDir.medium).toBe('Memory');
    expect(podSpec(synth(), 'db-primary').volumes.map((v: any) => v.name)).not.toContain('patroni');
  });

  test('a Secret value with a line break stops the start before Patroni runs, naming the file but not the value', () => {
    const objects = ha();
    const sources = podSpec(objects).volumes.find((v: any) => v.name === 'secrets').projected.sources;
    const files = Object.fromEntries(sources.flatMap(({ secret }: any) => secret.items.map(({ path }: any) => [path, 'x'])));
    const run = startPatroni(objects, ['-c', 'print("patroni ran")'], { ...files, 'patroni-api/password': 'two\nlines' });
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('secret file patroni-api/password must hold one non-empty line');
    expect(run.output).not.toMatch(/patroni ran|two/);
    expect(run.modes).toEqual({});
  });

  test('the Secret defaults to <name>-patroni-api; restApiSecret names another, with its keys', () => {
    const items = (objects: any[]) => podSpec(objects).volumes.find((v: any) => v.name === 'secrets').projected.sources
      .filter(({ secret }: any) => secret.items.some(({ path }: any) => path.startsWith('patroni-api/'))).map(({ secret }: any) => secret);
    expect(items(ha())).toEqual([{ name: 'db-patroni-api', items: [{ key: 'username', path: 'patroni-api/username' }, { key: 'password', path: 'patroni-api/password' }] }]);
    expect(items(ha({ restApiSecret: { secretName: 'ops-api', usernameKey: 'user', passwordKey: 'pass' } })))
      .toEqual([{ name: 'ops-api', items: [{ key: 'user', path: 'patroni-api/username' }, { key: 'pass', path: 'patroni-api/password' }] }]);
  });

  test('RequiredSecrets lists the REST API\'s Secret for the StatefulSet, for you to create', () => {
    const chart = testChart(NS);
    new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, highAvailability: {} });
    expect(RequiredSecrets.of(chart).find((secret) => secret.secretName === 'db-patroni-api'))
      .toEqual({ namespace: NS, secretName: 'db-patroni-api', keys: ['password', 'username'], readers: ['StatefulSet/db'], createdBy: SecretCreator.USER });
  });

  test('with tls disabled: plain HTTP, probes without a scheme, no ctl section', () => {
    const objects = ha({}, { tls: { disabled: true } });
    expect(patroni(objects).restapi).toEqual({ listen: '0.0.0.0:8008' });
    expect(patroni(objects)).not.toHaveProperty('ctl');
    for (const probe of ['readinessProbe', 'livenessProbe']) expect(server(objects)[probe].httpGet).toEqual({ path: expect.any(String), port: 'patroni' });
  });

  test('with tls: HTTPS with the pods\' certificate, CA in cafile, patronictl verifies with it, probes use HTTPS', () => {
    const objects = ha({}, TLS_PROPS);
    const tls = mountPath(objects, 'tls');
    expect(patroni(objects).restapi).toEqual({ listen: '0.0.0.0:8008', certfile: `${tls}/tls.crt`, keyfile: `${tls}/tls.key`, cafile: `${tls}/ca.crt` });
    expect(patroni(objects).ctl).toEqual({ cacert: `${tls}/ca.crt` });
    expect([server(objects).readinessProbe.httpGet, server(objects).livenessProbe.httpGet]).toEqual([
      { path: '/readiness', port: 'patroni', scheme: 'HTTPS' }, { path: '/liveness', port: 'patroni', scheme: 'HTTPS' },
    ]);
    // patronictl calls a member at its api_url, `<pod>.<headless>`, which the certificate names.
    const host = podEnvironment(objects).PATRONI_RESTAPI_CONNECT_ADDRESS.split(':')[0];
    expect(findObject(objects, 'Certificate', 'db').spec.dnsNames).toContain(host.replace(/^[^.]+/, '*'));
  });

  test('with the default self-signed certificate: HTTPS without cafile, patronictl cannot verify, members only encrypt', () => {
    const objects = ha();
    const tls = mountPath(objects, 'tls');
    expect(patroni(objects).restapi).toEqual({ listen: '0.0.0.0:8008', certfile: `${tls}/tls.crt`, keyfile: `${tls}/tls.key` });
    expect(patroni(objects).ctl).toEqual({ insecure: true });
    expect(server(objects).readinessProbe.httpGet.scheme).toBe('HTTPS');
    expect(patroni(objects).postgresql.authentication).toEqual({ superuser: {}, replication: { sslmode: 'require' }, rewind: { sslmode: 'require' } });
  });
});

describe('provision.sh', () => {
  test.each([
    ['defaults', {}, false],
    ['tls and an exporter', { tls: {} }, true],
  ] as Array<[string, Props, boolean]>)('is shellcheck-clean with %s', (_what, props, exporter) => {
    expect(shellcheck(provisionScript(ha({}, props, exporter)))).toBe('');
  });

  /** Runs provision.sh with bash and a psql that records its calls, the passfile and the SQL it is given. */
  function runProvision(args: string[]) {
    const dir = mkdtempSync(join(tmpdir(), 'provision-'));
    try {
      const file = (path: string, text: string, mode = 0o644) => {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), text, { mode });
      };
      file('provision.sh', provisionScript(ha()));
      file('bin/psql', [
        '#!/bin/sh',
        'printf \'%s\\n\' "PGOPTIONS=${PGOPTIONS:-} $*" >> "$OUT/calls"',
        'cat "$PGPASSFILE" > "$OUT/passfile"',
        'case "$*" in *pg_is_in_recovery*) echo f ;; *) cat > "$OUT/sql" ;; esac', '',
      ].join('\n'), 0o755);
      file('credentials/superuser/username', 'postgres');
      file('credentials/superuser/password', 'pass:word');
      const result = spawnSync('bash', [join(dir, 'provision.sh'), ...args], {
        encoding: 'utf8',
        env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, CREDENTIALS_DIR: join(dir, 'credentials'), PGHOST: '/nonexistent', PGPORT: '5432', OUT: dir },
      });
      const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
      return { status: result.status, stderr: result.stderr, calls: read('calls').split('\n').filter(Boolean), passfile: read('passfile'), sql: read('sql') };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test.each([
    ['on_start', 'replica'],
    ['on_role_change', 'replica'],
  ])('as the callback %s with role %s it exits 0 without calling psql', (action, role) => {
    expect(runProvision([action, role, 'db'])).toMatchObject({ status: 0, calls: [] });
  });

  test.each([
    ['on_role_change primary db', ['on_role_change', 'primary', 'db']],
    ['on_start master db (Patroni 3.0\'s leader role)', ['on_start', 'master', 'db']],
    ['post_bootstrap, with one connection URL', ['postgres://postgres@%2Fvar%2Frun%2Fpostgresql:5432/postgres']],
  ])('as %s it waits for a writable server, then runs the provisioning SQL with local commits', (_what, args) => {
    const result = runProvision(args);
    expect(result.status).toBe(0);
    expect(result.calls).toHaveLength(2);
    expect(result.calls[0]).toMatch(/^PGOPTIONS= --username=postgres --dbname=postgres .*SELECT pg_is_in_recovery\(\)$/);
    expect(result.calls[1]).toMatch(/^PGOPTIONS=-c synchronous_commit=local -c log_statement=none .* --username=postgres .*--set=ON_ERROR_STOP=1$/);
    expect(result.passfile).toBe('*:*:*:postgres:pass\\:word\n');
    expect(result.calls.join('\n')).not.toContain('pass:word');
    expect(result.sql).toContain('ALTER ROLE :"role_name" WITH SUPERUSER LOGIN PASSWORD :\'role_password\';');
  });
});

describe('errors', () => {
  const expectPropError = (highAvailability: HighAvailability, expected: ExpectedPropError, props: Props = {}) => {
    const message = thrownMessage(() => synth({ ...props, highAvailability }), JSON.stringify(highAvailability));
    expectPropErrorMessage(message, 'test/Db', expected);
  };
  const seconds = Duration.seconds;

  test.each([
    ['ttl shorter than loopWait + 2 x retryTimeout', { ttl: seconds(25) },
      { prop: 'highAvailability.ttl', value: '"25s"', fix: /set ttl to 30s or more, or shorten loopWait or retryTimeout/ }],
    ['ttl below 20 s', { ttl: seconds(15), loopWait: seconds(3), retryTimeout: seconds(3) },
      { prop: 'highAvailability.ttl', value: '15', fix: /whole number from 20 to 3600/ }],
    ['a fractional-second ttl', { ttl: Duration.millis(30500) }, { prop: 'highAvailability.ttl', value: '"30500ms"', fix: /whole number of seconds/ }],
    ['synchronousModeStrict without synchronousMode', { synchronousModeStrict: true },
      { prop: 'highAvailability.synchronousModeStrict', value: 'true', fix: /set highAvailability\.synchronousMode to true/ }],
    ['restApiPort equal to port', { restApiPort: 5432 }, { prop: 'highAvailability.restApiPort', value: '5432', fix: /choose another port, such as 8008/ }],
    ['no API server cidrs', { apiServer: { cidrs: [] } }, { prop: 'highAvailability.apiServer.cidrs', value: '[]', fix: /list the API server's cidrs/ }],
    ['no API server ports', { apiServer: { ports: [] } }, { prop: 'highAvailability.apiServer.ports', value: '[]', fix: /list the API server's ports/ }],
    ['the superuser\'s Secret for the REST API', { restApiSecret: { secretName: 'pg-superuser' } },
      { prop: 'highAvailability.restApiSecret.secretName', value: '"pg-superuser"', fix: /give the REST API a Secret of its own/ }],
    ['the replication role\'s Secret for the REST API', { restApiSecret: { secretName: 'pg-replication' } },
      { prop: 'highAvailability.restApiSecret.secretName', value: '"pg-replication"', fix: /give the REST API a Secret of its own/ }],
    ['a bad REST API Secret name', { restApiSecret: { secretName: 'Ops_API' } },
      { prop: 'highAvailability.restApiSecret.secretName', value: '"Ops_API"', fix: /./ }],
    ['a bad REST API Secret key', { restApiSecret: { secretName: 'ops-api', passwordKey: 'pass/word' } },
      { prop: 'highAvailability.restApiSecret.passwordKey', value: '"pass/word"', fix: /use letters, digits/ }],
    ['a bad API server cidr', { apiServer: { cidrs: ['10.0.0.0/33'] } },
      { prop: 'highAvailability.apiServer.cidrs', value: '"10.0.0.0/33"', fix: /"10\.0\.0\.0\/8"/ }],
    ['a bad API server port', { apiServer: { ports: [443, 70000] } },
      { prop: 'highAvailability.apiServer.ports[1]', value: '70000', fix: /whole number from 1 to 65535/ }],
  ] as Array<[string, HighAvailability, ExpectedPropError]>)('refuses %s', (_what, highAvailability, expected) => {
    expectPropError(highAvailability, expected);
  });

  test.each([
    ['maxConnections below 25', { settings: { maxConnections: 20 } }, { prop: 'settings.maxConnections', value: '20', fix: /set it to 25 or more/ }],
    ['walKeepSize below 16MB', { settings: { walKeepSize: '8MB' } }, { prop: 'settings.walKeepSize', value: '"8MB"', fix: /set it to 16MB or more/ }],
    ['hotStandby off', { settings: { hotStandby: false } }, { prop: 'settings.hotStandby', value: 'false', fix: /drop settings\.hotStandby/ }],
    ['max_locks_per_transaction below 32', { extraParameters: { max_locks_per_transaction: '16' } },
      { prop: 'extraParameters.max_locks_per_transaction', value: '"16"', fix: /set it to 32 or more/ }],
    ['wal_log_hints, which Patroni sets', { extraParameters: { wal_log_hints: 'off' } },
      { prop: 'extraParameters.wal_log_hints', value: '"off"', fix: /drop extraParameters\.wal_log_hints/ }],
  ] as Array<[string, Props, ExpectedPropError]>)('refuses %s, which Patroni would silently replace', (_what, props, expected) => {
    expectPropError({}, expected, props);
  });

  test('refuses synchronousReplication with highAvailability', () => {
    expectPropError({}, { prop: 'synchronousReplication', value: '"ANY 1"', fix: /set highAvailability\.synchronousMode to true instead/ },
      { synchronousReplication: SynchronousReplication.any(1) });
  });

  test('accepts ttl equal to loopWait + 2 x retryTimeout', () => {
    expect(patroni(ha({ ttl: seconds(20), loopWait: seconds(4), retryTimeout: seconds(8) })).bootstrap.dcs)
      .toMatchObject({ ttl: 20, loop_wait: 4, retry_timeout: 8 });
  });
});

describe('NetworkPolicy', () => {
  const pod = (namespace: string, labels: { [key: string]: string }): Pod => ({ namespace, labels });
  const member = pod(NS, { ...DATABASE_SELECTOR, 'cluster-name': 'db' });
  const api = pod('web', { app: 'api' });
  const neighbour = pod(NS, { app: 'batch' });
  const otherCluster = pod(NS, { ...DATABASE_SELECTOR, 'app.kubernetes.io/instance': 'other', 'cluster-name': 'other' });
  const objects = ha({}, { networkPolicy: { clients: [{ namespace: 'web', podSelector: { app: 'api' } }, { namespace: NS }] } });

  test.each([
    ['a member reaches another member\'s REST API', member, 8008, true],
    ['a member streams from another member', member, 5432, true],
    ['a client of another namespace reaches PostgreSQL', api, 5432, true],
    ['but not the REST API', api, 8008, false],
    ['a client of the namespace does not reach the REST API', neighbour, 8008, false],
    ['nor does another cluster\'s member', otherCluster, 8008, false],
  ] as const)('%s', (_what, from, port, allowed) => {
    expect(mayConnect(objects, from, member, port)).toBe(allowed);
  });

  test('the REST port follows restApiPort, and the plain mode opens none', () => {
    const moved = ha({ restApiPort: 9008 });
    expect([mayConnect(moved, member, member, 9008), mayConnect(moved, member, member, 8008)]).toEqual([true, false]);
    expect(mayConnect(synth(), pod(NS, { ...SELECTOR_ALL, 'app.kubernetes.io/component': 'replica' }), member, 8008)).toBe(false);
  });

  const apiServerEgress = (all: any[]) => ofKind(all, 'NetworkPolicy')[0].spec.egress.filter((rule: any) => rule.to?.some((peer: any) => peer.ipBlock))
    .flatMap((rule: any) => rule.to.flatMap((peer: any) => rule.ports.map((p: any) => `${JSON.stringify(peer.ipBlock)} ${p.protocol}/${p.port}`))).sort();
  const egress = (cidr: string, port: number) => `{"cidr":"${cidr}"} TCP/${port}`;

  test.each([
    ['defaults to any address on 443 and 6443', {}, [egress('0.0.0.0/0', 443), egress('0.0.0.0/0', 6443), egress('::/0', 443), egress('::/0', 6443)]],
    ['is replaced by the given cidrs and ports', { apiServer: { cidrs: ['10.96.0.1/32', 'fd00::1/128'], ports: [6443] } },
      [egress('10.96.0.1/32', 6443), egress('fd00::1/128', 6443)]],
  ] as Array<[string, HighAvailability, string[]]>)('egress to the API server %s', (_what, highAvailability, expected) => {
    expect(apiServerEgress(ha(highAvailability))).toEqual(expected.sort());
  });

  test('the plain mode has no API server egress', () => {
    expect(apiServerEgress(synth())).toEqual([]);
  });
});

describe('strict schema validation (Kubernetes v1.27)', () => {
  test.each([
    ['tls with an issuer, an exporter and a WAL volume', {}, { tls: { issuer: ISSUER }, storage: { walSize: '2Gi' } }, true],
    ['one instance, synchronous mode, custom API server', { synchronousMode: true, apiServer: { cidrs: ['10.96.0.1/32'], ports: [443] } }, { instances: 1 }, false],
  ] as Array<[string, HighAvailability, Props, boolean]>)('%s', (_what, highAvailability, props, exporter) => {
    const objects = ha(highAvailability, props, exporter);
    expect(ofKind(objects, 'Role')).toHaveLength(1);
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });
});

describe('the plain mode is unchanged', () => {
  const objects = synth();

  test('two StatefulSets with a bootstrap init container, postgresql.conf with listen_addresses and hba_file, no Role', () => {
    expect(ofKind(objects, 'StatefulSet').map((o) => o.metadata.name).sort()).toEqual(['db-primary', 'db-replica']);
    // The certificate init container makes the default self-signed certificate first.
    expect(podSpec(objects, 'db-primary').initContainers.map((c: any) => c.name)).toEqual(['certificate', 'bootstrap']);
    const conf = confParameters(findObject(objects, 'ConfigMap', 'db-config').data['postgresql.conf']);
    expect([conf.listen_addresses, conf.port, conf.hba_file]).toEqual(['*', '5432', '/etc/postgresql/pg_hba.conf']);
    expect([...ofKind(objects, 'Role'), ...ofKind(objects, 'RoleBinding')]).toEqual([]);
    expect(findObject(objects, 'StatefulSet', 'db-primary').spec.template.metadata.labels).not.toHaveProperty('cluster-name');
  });
});
