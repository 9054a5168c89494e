/**
 * The library never renders a password: every credential is a reference to a Secret the user
 * creates. Proven over every example and overlay chart:
 *   (a) no Secret object is rendered;
 *   (b) no env var with a password-like name has a literal value (listed exceptions: paths and
 *       switches, each pinned to the value it may have), and no literal env value holds secret material;
 *   (c) no command, args, probe or lifecycle exec carries a password;
 *   (d) no ConfigMap sets a password (conf keys, conninfo, userlist/passfile/pool_passwd lines, SQL,
 *       shell assignments with a literal, psql \set, JSON keys) or holds secret material;
 *   (e) no annotation carries secret material;
 * and, strongest: with every Secret name replaced by a marker, the markers appear only where
 * Kubernetes resolves Secret names (secretKeyRef.name, secret.secretName, projected secret.name),
 * or in the explicitly listed places below.
 */
import { Testing, Yaml } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { buildExamples } from '../examples/main';
import { podTemplatesOf } from './support/pod-security';

type Cdk8s = typeof import('cdk8s');

/** Each example chart's objects, parsed back from the YAML `cdk8s synth` writes. */
function synthExamples(cdk8s: Pick<Cdk8s, 'Testing' | 'Yaml'>, build: (app: any) => void): { [chart: string]: any[] } {
  const app = cdk8s.Testing.app();
  build(app);
  const charts: { [chart: string]: any[] } = {};
  for (const chart of app.charts) {
    charts[chart.node.id] = parseAllDocuments(cdk8s.Yaml.stringify(...chart.toJson())).map((doc) => doc.toJSON());
  }
  return charts;
}

const examples = synthExamples({ Testing, Yaml }, buildExamples);
const chartIds = Object.keys(examples);

const describeObject = (o: any) => `${o.kind}/${o.metadata?.name}`;

// ---------------------------------------------------------------------------------------------
// The rules

/** Names of env vars, annotation keys and ConfigMap files that suggest a credential. */
const SENSITIVE_NAME = /pass|secret|token|key/i;

/** Text that is secret material whatever its context. */
const SECRET_MATERIAL: Array<[string, RegExp]> = [
  ['PEM private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
  ['SCRAM verifier', /SCRAM-SHA-256\$\d+:/],
  ['md5 password hash', /\bmd5[0-9a-f]{32}\b/],
  ['pgpool AES password', /\bAES[A-Za-z0-9+/]{20,}={0,2}/],
  ['URI with a password', /\b[a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:[^\s/@]+@/i],
];

/** `password=x`, `PGPASSWORD=x`, `sr_check_password = 'x'`, `--password=x`: a password-like key given a literal. */
const LITERAL_ASSIGNMENT = /([A-Za-z_.-]*(?:pass(?!file)(?:word|wd)?|secret|token)[A-Za-z_.-]*)\s*=\s*(['"]?)(?![$`'"])([^\s'"$`;]+)/gi;

/** Password-like keys whose literal value is a setting, not a credential, with the values they may take. */
const NON_SECRET_SETTINGS: { [key: string]: { value: RegExp; why: string } } = {
  password_encryption: { value: /^(scram-sha-256|md5)$/, why: 'postgresql.conf (and patroni-dynamic.json): the hash method for stored passwords' },
};

/** Lines that are credentials in the formats the daemons read. */
const CREDENTIAL_LINES: Array<[string, RegExp]> = [
  ['PgBouncer userlist entry', /^\s*"[^"]+"\s+"[^"]+"\s*$/m],
  ['libpq passfile entry', /^[^\s:#]+:[^\s:]+:[^\s:]+:[^\s:]+:[^\s:]+$/m],
  ['pool_passwd plain-text entry', /^[^\s:]+:TEXT\S+$/m],
  ['SQL password literal', /\bPASSWORD\s+(E?'[^']+'|\$\w*\$)/i],
  ['psql \\set of a password from a literal', /\\set\s+\w*pass\w*\s+(?![`:])\S/i],
];

/** `"password": "x"` in JSON; a NON_SECRET_SETTINGS key with its setting's value (patroni-dynamic.json's parameters) is none. */
const JSON_CREDENTIAL = /"([A-Za-z_]*(?:password|passwd|secret|token)[A-Za-z_]*)"\s*:\s*"([^"]+)"/gi;

function jsonCredentialsIn(text: string): string[] {
  const found = [...text.matchAll(JSON_CREDENTIAL)].filter(([, key, value]) => !NON_SECRET_SETTINGS[key.toLowerCase()]?.value.test(value));
  return found.length > 0 ? ['JSON key of a credential'] : [];
}

function materialIn(text: string): string[] {
  return SECRET_MATERIAL.filter(([, re]) => re.test(text)).map(([rule]) => rule);
}

function literalAssignmentsIn(text: string): string[] {
  return [...text.matchAll(LITERAL_ASSIGNMENT)]
    .filter(([, key, , value]) => !NON_SECRET_SETTINGS[key.toLowerCase()]?.value.test(value))
    .map(([match]) => `literal password-like assignment "${match}"`);
}

/** What in a piece of rendered text looks like a credential. */
function secretsInText(text: string): string[] {
  return [
    ...materialIn(text),
    ...literalAssignmentsIn(text),
    ...CREDENTIAL_LINES.filter(([, re]) => re.test(text)).map(([rule]) => rule),
    ...jsonCredentialsIn(text),
  ];
}

/**
 * Env vars with a password-like name that may have a literal value: each is a path or a
 * switch, pinned to the value it may take.
 */
const ENV_EXCEPTIONS: { [name: string]: { value: RegExp; why: string } } = {
  PGPASSFILE: { value: /^\/[\w./-]+$/, why: 'where the bootstrap writes the libpq passfile, in an in-memory volume' },
  DATA_SOURCE_PASS_FILE: { value: /^\/[\w./-]+$/, why: 'where postgres_exporter reads its password: the mounted Secret' },
  PGPOOL_ENABLE_POOL_PASSWD: { value: /^true$/, why: 'pgpool image switch: off, its entrypoint would force ssl = \'on\' and a certificate of its own' },
};

interface Container { readonly where: string; readonly container: any }

function containersOf(objects: any[]): Container[] {
  return podTemplatesOf(objects).flatMap(({ kind, name, path, template }) =>
    (['initContainers', 'containers', 'ephemeralContainers'] as const).flatMap((list) => (template.spec[list] ?? [])
      .map((container: any) => ({ where: `${kind}/${name} ${path}.spec.${list}[${container.name}]`, container }))));
}

/** (b) env vars; the exceptions that applied are added to `used`. */
function envFindings(objects: any[], used = new Set<string>()): string[] {
  return containersOf(objects).flatMap(({ where, container }) => (container.env ?? [])
    .filter((env: any) => env.value !== undefined)
    .flatMap((env: any) => {
      const value = String(env.value);
      const out = [...materialIn(value), ...literalAssignmentsIn(value)].map((rule) => `${where} env ${env.name}: ${rule}`);
      if (SENSITIVE_NAME.test(env.name)) {
        const exception = ENV_EXCEPTIONS[env.name];
        if (exception?.value.test(value)) used.add(env.name);
        else out.push(`${where} env ${env.name}: a password-like name with the literal value "${value}"`);
      }
      return out;
    }));
}

/** Every exec argument list of a container: command + args, probes, lifecycle hooks. */
function execsOf(container: any): Array<{ what: string; argv: string[] }> {
  const execs = [{ what: 'command/args', argv: [...(container.command ?? []), ...(container.args ?? [])] }];
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    if (container[probe]?.exec) execs.push({ what: probe, argv: container[probe].exec.command ?? [] });
  }
  for (const hook of ['postStart', 'preStop']) {
    if (container.lifecycle?.[hook]?.exec) execs.push({ what: `lifecycle.${hook}`, argv: container.lifecycle[hook].exec.command ?? [] });
  }
  return execs;
}

const PASSWORD_FLAG = /^--?[\w.-]*(?:password|passwd|secret|token)[\w.-]*$/i;

/** (c) command lines. */
function execFindings(objects: any[]): string[] {
  return containersOf(objects).flatMap(({ where, container }) => execsOf(container).flatMap(({ what, argv }) => [
    ...argv.flatMap((arg) => secretsInText(String(arg)).map((rule) => `${where} ${what} "${arg}": ${rule}`)),
    ...argv.flatMap((arg, i) => PASSWORD_FLAG.test(String(arg)) && !/^--no-/.test(String(arg)) && argv[i + 1] !== undefined
      ? [`${where} ${what}: "${arg} ${argv[i + 1]}" passes a password-like flag a value`] : []),
  ]));
}

/** (d) ConfigMaps: file names, and each file's text. */
function configMapFindings(objects: any[]): string[] {
  return objects.filter((o) => o.kind === 'ConfigMap').flatMap((cm) => [
    ...Object.keys(cm.binaryData ?? {}).map((file) => `${describeObject(cm)} binaryData ${file}: cannot be scanned`),
    ...Object.entries<any>(cm.data ?? {}).flatMap(([file, text]) => [
      ...(SENSITIVE_NAME.test(file) ? [`${describeObject(cm)} data ${file}: a password-like file name`] : []),
      ...secretsInText(String(text)).map((rule) => `${describeObject(cm)} data ${file}: ${rule}`),
    ]),
  ]);
}

/** Every `annotations` map of an object, wherever it is (metadata, pod templates, alert rules). */
function* annotationsOf(node: any, path: string): Generator<[string, any]> {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* annotationsOf(node[i], `${path}[${i}]`);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'annotations' && value && typeof value === 'object') yield [`${path}.annotations`, value];
      else yield* annotationsOf(value, `${path}.${key}`);
    }
  }
}

/** (e) annotations. */
function annotationFindings(objects: any[]): string[] {
  return objects.flatMap((o) => [...annotationsOf(o, '')].flatMap(([path, annotations]) =>
    Object.entries<any>(annotations).flatMap(([key, value]) => [
      ...(SENSITIVE_NAME.test(key) && String(value).trim() !== '' ? [`${describeObject(o)} ${path}["${key}"]: a password-like annotation key`] : []),
      ...[...materialIn(String(value)), ...literalAssignmentsIn(String(value))]
        .map((rule) => `${describeObject(o)} ${path}["${key}"]: ${rule}`),
    ])));
}

// ---------------------------------------------------------------------------------------------
// (a)-(e) over every example

describe.each(chartIds)('example %s', (chart) => {
  const objects = examples[chart];

  test('(a) renders no Secret', () => {
    expect(objects.length).toBeGreaterThan(0);
    expect(objects.filter((o) => o.kind === 'Secret').map(describeObject)).toEqual([]);
  });

  test('(b) gives no env var a literal password', () => {
    expect(containersOf(objects).length).toBeGreaterThan(0);
    expect(envFindings(objects)).toEqual([]);
  });

  test('(c) puts no password on a command line', () => {
    expect(execFindings(objects)).toEqual([]);
  });

  test('(d) sets no password in a ConfigMap', () => {
    expect(objects.some((o) => o.kind === 'ConfigMap')).toBe(true);
    expect(configMapFindings(objects)).toEqual([]);
  });

  test('(e) carries no secret material in annotations', () => {
    expect(annotationFindings(objects)).toEqual([]);
  });

  test('takes every credential from a Secret reference', () => {
    // Every env var the daemons read a password or user from comes from a secretKeyRef.
    const fromSecrets = containersOf(objects).flatMap(({ container }) => (container.env ?? []).filter((e: any) => e.valueFrom?.secretKeyRef));
    const projected = podTemplatesOf(objects).flatMap(({ template }) => (template.spec.volumes ?? [])
      .flatMap((v: any) => [...(v.projected?.sources ?? []).filter((s: any) => s.secret), ...(v.secret ? [v] : [])]));
    expect(fromSecrets.length + projected.length).toBeGreaterThan(0);
  });
});

test('every env exception is still needed (the table stays true)', () => {
  const used = new Set<string>();
  for (const chart of chartIds) envFindings(examples[chart], used);
  expect(Object.keys(ENV_EXCEPTIONS).filter((name) => !used.has(name))).toEqual([]);
});

// ---------------------------------------------------------------------------------------------
// The rules find deliberately bad objects

const pod = (container: any): any => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'bad' },
  spec: { template: { metadata: {}, spec: { containers: [{ name: 'app', image: 'app:1', ...container }] } } },
});
const configMap = (data: { [file: string]: string }, extra: any = {}): any => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bad' }, data, ...extra });

describe('the scan finds deliberately bad objects', () => {
  test.each([
    ['a password env var', { name: 'DB_PASSWORD', value: 'hunter2' }],
    ['a token env var', { name: 'API_TOKEN', value: 'abc' }],
    ['a key env var', { name: 'AWS_SECRET_ACCESS_KEY', value: 'abc' }],
    ['an excepted name with another value', { name: 'PGPASSFILE', value: 'hunter2' }],
    ['a switch with another value', { name: 'PGPOOL_SKIP_PASSWORD_ENCRYPTION', value: 'true' }],
    ['a URI with a password', { name: 'DATA_SOURCE_NAME', value: 'postgresql://app:hunter2@db:5432/app' }],
    ['a conninfo with a password', { name: 'PRIMARY_CONNINFO', value: 'host=db user=app password=hunter2' }],
  ])('(b) %s', (_label, env) => {
    expect(envFindings([pod({ env: [env] })])).toHaveLength(1);
  });

  test('(b) a path or switch with its own value, and secretKeyRefs, pass', () => {
    expect(envFindings([pod({
      env: [{ name: 'PGPASSFILE', value: '/run/auth/pgpass' }, { name: 'PGPOOL_ENABLE_POOL_PASSWD', value: 'true' },
        { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 's', key: 'password' } } }, { name: 'DATA_SOURCE_URI', value: '127.0.0.1:5432/postgres' }],
    })])).toEqual([]);
  });

  test.each([
    ['a URI with a password in args', { args: ['--dsn=postgres://app:hunter2@db/app'] }],
    ['--password=', { command: ['psql', '--password=hunter2'] }],
    ['a password flag and its value', { args: ['--password', 'hunter2'] }],
    ['PGPASSWORD in a shell command', { command: ['sh', '-c', 'PGPASSWORD=hunter2 psql -h db'] }],
    ['a password in a probe', { readinessProbe: { exec: { command: ['sh', '-c', 'PGPASSWORD=hunter2 pg_isready'] } } }],
    ['a password in a preStop hook', { lifecycle: { preStop: { exec: { command: ['psql', 'password=hunter2'] } } } }],
  ])('(c) %s', (_label, container) => {
    expect(execFindings([pod(container)])).toHaveLength(1);
  });

  test('(c) file-based and prompt-free options pass', () => {
    expect(execFindings([pod({ command: ['initdb', '--pwfile=/etc/secrets/password', '--no-password'], args: ['--dbname=host=db passfile=/run/pgpass'] })])).toEqual([]);
  });

  test.each([
    ['pgpool.conf sr_check_password', { 'pgpool.conf': "sr_check_user = 'x'\nsr_check_password = 'hunter2'\n" }, 'literal password-like assignment'],
    ['pgpool.conf health_check_password unquoted', { 'pgpool.conf': 'health_check_password = hunter2\n' }, 'literal password-like assignment'],
    ['pgbouncer.ini conninfo password', { 'pgbouncer.ini': '[databases]\n* = host=db port=5432 password=hunter2\n' }, 'literal password-like assignment'],
    ['a PgBouncer userlist', { 'users.txt': '"app" "hunter2"\n' }, 'PgBouncer userlist entry'],
    ['a passfile', { clients: '*:*:*:app:hunter2\n' }, 'libpq passfile entry'],
    ['a pool_passwd plain-text entry', { 'users.conf': 'app:TEXThunter2\n' }, 'pool_passwd plain-text entry'],
    ['a pool_passwd AES entry', { 'users.conf': 'app:AESq9bLz2cZ1hW0aQ5vR8t3Yg==\n' }, 'pgpool AES password'],
    ['a SCRAM verifier', { 'users.conf': 'app:SCRAM-SHA-256$4096:c2FsdA==$a:b\n' }, 'SCRAM verifier'],
    ['an md5 hash', { 'users.conf': 'app:md5d41d8cd98f00b204e9800998ecf8427e\n' }, 'md5 password hash'],
    ['a SQL password literal', { 'init.sql': "CREATE ROLE app LOGIN PASSWORD 'hunter2';\n" }, 'SQL password literal'],
    ['a shell assignment of a literal', { 'start.sh': '#!/bin/sh\npassword=hunter2\n' }, 'literal password-like assignment'],
    ['PGPASSWORD in a script', { 'run.sh': 'PGPASSWORD="hunter2" psql\n' }, 'literal password-like assignment'],
    ['psql \\set of a literal', { 'setup.sh': "\\set role_password 'hunter2'\n" }, 'psql \\set'],
    ['a JSON credential', { 'datasource.json': '{ "secureJsonData": { "password": "hunter2" } }' }, 'JSON key of a credential'],
    ['a private key', { 'tls.conf': '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n' }, 'PEM private key'],
    ['a password-like file name', { 'db-password': 'x' }, 'a password-like file name'],
  ])('(d) %s', (_label, data, rule) => {
    expect(configMapFindings([configMap(data as any)])).toEqual(expect.arrayContaining([expect.stringContaining(rule as string)]));
  });

  test('(d) binaryData cannot be scanned, so it is refused', () => {
    expect(configMapFindings([configMap({}, { binaryData: { blob: 'AAAA' } })])).toHaveLength(1);
  });

  test('(d) what the library renders instead passes: reads from files, empty passwords, the hash method', () => {
    expect(configMapFindings([configMap({
      'pgpool.conf': "sr_check_password = ''\nhealth_check_password = ''\n",
      'postgresql.conf': "password_encryption = 'scram-sha-256'\n",
      'pgbouncer.ini': 'auth_query = SELECT usename, passwd FROM pgbouncer.get_auth($1)\nauth_file = /run/auth/userlist.txt\n',
      'bootstrap.sh': 'password=$(secret "$2" password)\nPGPASSFILE="$workdir/pgpass" psql\n\\set role_password `cat "$SECRETS_DIR/x/password"`\n'
        + "ALTER ROLE :\"role_name\" WITH LOGIN PASSWORD :'role_password';\nprintf '\"%s\" \"%s\"\\n' \"$user\" \"$password\"\n",
    })])).toEqual([]);
  });

  test.each([
    ['a token annotation', { 'example.com/api-token': 'abc' }],
    ['a URI with a password', { 'example.com/dsn': 'postgres://app:hunter2@db/app' }],
    ['a conninfo password', { 'example.com/conninfo': 'host=db password=hunter2' }],
  ])('(e) %s', (_label, annotations) => {
    const obj = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'bad', annotations } };
    expect(annotationFindings([obj])).toHaveLength(1);
    const nested = pod({});
    nested.spec.template.metadata.annotations = annotations;
    expect(annotationFindings([nested])).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Secret names appear only where Kubernetes resolves them

const MARKER = /secret-marker-\d{3}/g;

/**
 * The examples again, with every Secret name the library resolves replaced by a marker
 * (`secret-marker-001`, ...): the credentials module is wrapped in a fresh module registry, so
 * each Secret name the constructs take is marked on its way in, consistently (one Secret, one marker).
 */
function synthMarked(): { charts: { [chart: string]: any[] }; markers: Map<string, string> } {
  const markers = new Map<string, string>();
  const mark = (name: string) => {
    if (/^secret-marker-\d{3}$/.test(name)) return name;
    if (!markers.has(name)) markers.set(name, `secret-marker-${String(markers.size + 1).padStart(3, '0')}`);
    return markers.get(name)!;
  };
  let charts: { [chart: string]: any[] } = {};
  jest.isolateModules(() => {
    jest.doMock('../lib/core/credentials', () => {
      const actual = jest.requireActual('../lib/core/credentials');
      const marked = (c: any) => ({ ...c, secretName: mark(c.secretName) });
      return {
        ...actual,
        resolveCredentials: (scope: any, prop: string, c: any) => actual.resolveCredentials(scope, prop, marked(c)),
        // Every other Secret reference (a backend's CA, S3 keys, a cipher passphrase) resolves here.
        resolveSecretKeys: (scope: any, prop: string, secretName: string, keys: any) => actual.resolveSecretKeys(scope, prop, mark(secretName), keys),
        // A Secret mounted whole: a clone's or standby's copy of its source's tls Secret.
        resolveSecretName: (scope: any, prop: string, secretName: string) => actual.resolveSecretName(scope, prop, mark(secretName)),
        requireOwnSecret: (scope: any, prop: string, c: any, others: any[], component: string) =>
          actual.requireOwnSecret(scope, prop, marked(c), others.map((other) => other && marked(other)), component),
      };
    });
    // A component's own TLS Secret, named by default after it when it has an issuer.
    jest.doMock('../lib/core/tls', () => {
      const actual = jest.requireActual('../lib/core/tls');
      return {
        ...actual,
        resolveTls: (...args: any[]) => {
          const tls = actual.resolveTls(...args);
          // A self-signed certificate (the default) has no Secret to mark.
          if (tls?.secretName === undefined) return tls;
          return { ...tls, secretName: mark(tls.secretName), authority: { ...tls.authority, secretName: mark(tls.authority.secretName) } };
        },
      };
    });
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded inside the isolated registry, after the mocks above
    const cdk8s: Cdk8s = require('cdk8s');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the examples must see the mocked modules of this registry
    charts = synthExamples(cdk8s, require('../examples/main').buildExamples);
  });
  jest.dontMock('../lib/core/credentials');
  jest.dontMock('../lib/core/tls');
  return { charts, markers };
}

/** Where Kubernetes reads a Secret's name. */
const RESOLVED_BY_KUBERNETES = [
  /\.env\[\d+\]\.valueFrom\.secretKeyRef\.name$/,
  /\.envFrom\[\d+\]\.secretRef\.name$/,
  /\.volumes\[\d+\]\.secret\.secretName$/,
  /\.volumes\[\d+\]\.projected\.sources\[\d+\]\.secret\.name$/,
  // cert-manager writes the Secret its Certificate names.
  /^Certificate\/\S+ \.spec\.secretName$/,
];

/**
 * Other places a Secret's name appears, by design, each with the form it must have there. A
 * role's files are mounted at `role-<secret>-<hash>/` in the cluster's projected Secret volume
 * (one directory per Secret and key pair, named after the Secret so two roles never share one),
 * and bootstrap.sh (provision.sh in the HA mode) reads them at that path. Neither is the Secret's content.
 */
const ALLOWED_ELSEWHERE: Array<{ where: RegExp; token: RegExp; why: string }> = [
  {
    where: /^StatefulSet\/\S+ \.spec\.template\.spec\.volumes\[\d+\]\.projected\.sources\[\d+\]\.secret\.items\[\d+\]\.path$/,
    token: /\brole-secret-marker-\d{3}-[0-9a-f]{8}\//g,
    why: 'the directory a role\'s username and password files are mounted in',
  },
  {
    where: /^ConfigMap\/\S+-scripts \.data\.(bootstrap|provision)\.sh$/,
    token: /\$\{?[A-Za-z_]+\}?\/role-secret-marker-\d{3}-[0-9a-f]{8}\//g,
    why: 'bootstrap.sh and provision.sh reading those files (psql \\set from `cat`)',
  },
];

/** Every string in an object (values and keys), with its path. */
function* stringsOf(node: any, path: string): Generator<[string, string]> {
  if (typeof node === 'string') {
    yield [path, node];
  } else if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* stringsOf(node[i], `${path}[${i}]`);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      yield [`${path}{key ${key}}`, key];
      yield* stringsOf(value, `${path}.${key}`);
    }
  }
}

interface Occurrence { readonly where: string; readonly text: string }

function markerOccurrences(objects: any[]): Occurrence[] {
  return objects.flatMap((o) => [...stringsOf(o, '')].filter(([, text]) => text.match(MARKER))
    .map(([path, text]) => ({ where: `${describeObject(o)} ${path}`, text })));
}

/** Occurrences outside the resolving fields and the allowed places (in their allowed form). */
function misplacedSecretNames(objects: any[]): string[] {
  return markerOccurrences(objects).flatMap(({ where, text }) => {
    if (RESOLVED_BY_KUBERNETES.some((re) => re.test(where)) && /^secret-marker-\d{3}$/.test(text)) return [];
    const allowed = ALLOWED_ELSEWHERE.find((a) => a.where.test(where));
    if (allowed && !text.replace(allowed.token, '').match(MARKER)) return [];
    return [`${where}: ${text.length > 120 ? `${text.slice(0, 120)}...` : text}`];
  });
}

describe('Secret names appear only where Kubernetes resolves them', () => {
  const { charts, markers } = synthMarked();

  test('the marked variant is every example, with every Secret name marked', () => {
    expect(Object.keys(charts)).toEqual(chartIds);
    // The Secrets the examples' doc comments list, among others.
    expect([...markers.keys()]).toEqual(expect.arrayContaining(['orders-db-superuser', 'airflow-pgbouncer-auth', 'payments-superuser', 'shop-db-tls']));
    for (const chart of chartIds) {
      const objects = charts[chart];
      const referenced = markerOccurrences(objects).filter(({ where }) => RESOLVED_BY_KUBERNETES.some((re) => re.test(where)));
      expect(referenced.length).toBeGreaterThan(0);
      // Every name in a resolving field is a marker: no Secret reference bypassed the marking.
      const refs = objects.flatMap((o) => [...stringsOf(o, '')].filter(([path]) => RESOLVED_BY_KUBERNETES.some((re) => re.test(`${describeObject(o)} ${path}`))));
      expect(refs.filter(([, name]) => !/^secret-marker-\d{3}$/.test(name))).toEqual([]);
      // The marked variant is the same set of objects.
      expect(objects.map(describeObject)).toEqual(examples[chart].map(describeObject));
    }
  });

  test.each(chartIds)('in example %s', (chart) => {
    expect(misplacedSecretNames(charts[chart])).toEqual([]);
  });

  test('every allowed place is used (the list stays true)', () => {
    const all = chartIds.flatMap((chart) => markerOccurrences(charts[chart]));
    expect(ALLOWED_ELSEWHERE.filter((a) => !all.some(({ where }) => a.where.test(where))).map((a) => a.why)).toEqual([]);
  });

  test('a marker anywhere else is found', () => {
    const cm = configMap({ 'pgbouncer.ini': 'auth_user = secret-marker-001\n' });
    expect(misplacedSecretNames([cm])).toHaveLength(1);
    const d = pod({ env: [{ name: 'SECRET_NAME', value: 'secret-marker-002' }] });
    expect(misplacedSecretNames([d])).toHaveLength(1);
    const ok = pod({ env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'secret-marker-002', key: 'password' } } }] });
    expect(misplacedSecretNames([ok])).toEqual([]);
    const scripts = { ...configMap({ 'bootstrap.sh': 'cat "$SECRETS_DIR/role-secret-marker-003-0123abcd/password" secret-marker-003' }), metadata: { name: 'db-scripts' } };
    expect(misplacedSecretNames([scripts])).toHaveLength(1);
  });
});
