import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { SCHEMA_ROOT, definitionsFile } from './support/kube-schema';
import { SchemaValidator } from '../lib/testing/schema-validator';
import { KubernetesSchemaValidation, packageSchemas, shippedKubernetesVersions } from '../lib/testing/validation-plugin';

// The CLI exports its plugin API as 'cdk8s-cli/plugins' only; the types live under lib/.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ValidationContext } = require('cdk8s-cli/plugins') as typeof import('cdk8s-cli/lib/plugins/validation');

const ROOT = path.resolve(__dirname, '..');
const BOTH = 'v1.27.0, v1.36.0';

const SERVICE = (name: string, extra: object = {}, spec: object = {}) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name },
  spec: { ports: [{ port: 5432, ...extra }], ...spec },
});

/** A Certificate as the library renders it, in namespace `shop`. */
const CERTIFICATE = (name: string, spec: object = {}) => ({
  apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace: 'shop' },
  spec: { secretName: `${name}-tls`, dnsNames: [name], issuerRef: { name: 'ca', kind: 'ClusterIssuer', group: 'cert-manager.io' }, ...spec },
});

const NETWORK_POLICY = (name: string, spec: object = {}) => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: 'shop' },
  spec: { podSelector: {}, policyTypes: ['Ingress'], ...spec },
});

type Metadata = { [name: string]: { path: string } };

/** The lines a thrown error prints. */
function thrown(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    return String((error as Error).message).split('\n');
  }
  throw new Error('did not throw');
}

describe('KubernetesSchemaValidation, the cdk8s validation plugin', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(path.join(tmpdir(), 'plugin-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the plugin over manifests (file name -> objects), with cdk8s's construct metadata. */
  const runManifests = async (manifests: { [file: string]: object[] }, properties?: object, metadata: Metadata = {}) => {
    const paths = Object.entries(manifests).map(([file, objects]) => {
      const manifest = path.join(dir, file);
      writeFileSync(manifest, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
      return manifest;
    });
    const context = new ValidationContext(paths, 'cdk8s-postgres', '0.0.0', metadata, false);
    await new KubernetesSchemaValidation(properties as any).validate(context as any);
    return context.report;
  };
  const run = (objects: object[], properties?: object, metadata: Metadata = { 'db-rw': { path: 'chart/Db/ReadWrite' } }) =>
    runManifests({ 'chart.k8s.yaml': objects }, properties, metadata);

  describe('with no properties', () => {
    test('uses the package\'s own schemas: the oldest and newest Kubernetes it ships', () => {
      expect(packageSchemas()).toBe(SCHEMA_ROOT);
      expect(shippedKubernetesVersions()).toEqual(['v1.27.0', 'v1.36.0']);
    });

    test('passes objects that validate in both, and says so for each manifest', async () => {
      const report = await run([SERVICE('db-rw'), SERVICE('db-ro')]);
      expect(report.success).toBe(true);
      expect(report.toJson().summary.metadata).toEqual({ 'kubernetes': BOTH, 'objects': '2', 'invalid': '0', 'chart.k8s.yaml': '2 objects valid' });
    });

    test('fails an unknown field, naming the object, the releases, the field and the construct path', async () => {
      const report = await run([SERVICE('db-ro'), SERVICE('db-rw', { targetPortt: 5432 })]);
      expect(report.success).toBe(false);
      const [violation, ...others] = report.toJson().violations;
      expect(others).toEqual([]);
      expect(violation.ruleName).toBe(`Service db-rw (construct chart/Db/ReadWrite) does not validate against Kubernetes ${BOTH}`);
      expect(violation.recommendation).toBe(`Kubernetes ${BOTH}: /spec/ports/0/targetPortt: unknown field`);
      expect(violation.violatingConstructs[0]).toMatchObject({ constructPath: 'chart/Db/ReadWrite', resourceName: 'db-rw', locations: ['/spec/ports/0/targetPortt'] });
      expect(report.toJson().summary.metadata!['chart.k8s.yaml']).toBe('1 of 2 objects invalid');
    });

    test('a field newer than 1.27 fails against 1.27 only', async () => {
      const report = await run([SERVICE('db-rw', {}, { trafficDistribution: 'PreferClose' })]);
      const [violation] = report.toJson().violations;
      expect(violation.ruleName).toBe('Service db-rw (construct chart/Db/ReadWrite) does not validate against Kubernetes v1.27.0');
      expect(violation.recommendation).toBe('Kubernetes v1.27.0: /spec/trafficDistribution: unknown field');
    });

    test('validates the custom resources the library renders against the CRDs the package ships, and refuses unknown kinds', async () => {
      const monitor = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor', metadata: { name: 'm' }, spec: { selector: {}, podMetricsEndpoints: [{ port: 'metrics' }] } };
      expect((await run([monitor, CERTIFICATE('db')])).success).toBe(true);
      const widget = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } };
      const report = await run([widget]);
      expect(report.success).toBe(false);
      expect(report.toJson().violations[0].recommendation).toContain('unknown apiVersion/kind example.com/v1 Widget');
    });
  });

  describe('properties', () => {
    test.each([
      [['1.36'], 'v1.36.0'], [['v1.36'], 'v1.36.0'], [['1.27.0'], 'v1.27.0'], [['v1.27.0'], 'v1.27.0'], [['1.36', 'v1.27.0'], 'v1.36.0, v1.27.0'],
    ])('kubernetesVersions %j validates against %s', async (kubernetesVersions, release) => {
      const report = await run([SERVICE('db-rw', {}, { trafficDistribution: 'PreferClose' })], { kubernetesVersions });
      expect(report.toJson().summary.metadata!.kubernetes).toBe(release);
      expect(report.success).toBe(!release.includes('v1.27.0'));
    });

    test('a version the package does not ship names the property, the value and the versions available', () => {
      expect(thrown(() => new KubernetesSchemaValidation({ kubernetesVersions: ['1.36', '1.30'] }))).toEqual([
        'KubernetesSchemaValidation: properties.kubernetesVersions[1]: "1.30" is not a Kubernetes version this package ships; '
        + 'available: 1.27 (v1.27.0), 1.36 (v1.36.0); or give properties.definitions, the path of a release\'s _definitions.json',
      ]);
      expect(thrown(() => new KubernetesSchemaValidation({ kubernetesVersions: '1.36' } as any))).toEqual([
        'KubernetesSchemaValidation: properties.kubernetesVersions: "1.36" is not a non-empty list of strings',
      ]);
    });

    test('definitions, a release\'s own _definitions.json, replaces the versions', async () => {
      const report = await run([SERVICE('db-rw', {}, { trafficDistribution: 'PreferClose' })], { definitions: path.relative(process.cwd(), definitionsFile('v1.36.0')) });
      expect(report.success).toBe(true);
      expect(report.toJson().summary.metadata!.kubernetes).toBe('v1.36.0');
      expect(() => new KubernetesSchemaValidation({ definitions: definitionsFile('v1.36.0'), kubernetesVersions: ['1.36'] }))
        .toThrow('KubernetesSchemaValidation: properties.definitions replaces properties.kubernetesVersions; give one of them');
    });

    test('crds adds directories of CRDs to the package\'s', async () => {
      const crds = path.join(dir, 'crds');
      mkdirSync(crds);
      writeFileSync(path.join(crds, 'widgets.yaml'), JSON.stringify({
        apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' },
        spec: {
          group: 'example.com', names: { kind: 'Widget', plural: 'widgets' }, scope: 'Namespaced',
          versions: [{
            name: 'v1', served: true, storage: true, schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec: { type: 'object', properties: { size: { type: 'integer' } } } },
              },
            },
          }],
        },
      }));
      const widget = (spec: object) => ({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec });
      expect((await run([widget({ size: 1 }), CERTIFICATE('db')], { crds: [crds] })).success).toBe(true);
      expect((await run([widget({ sise: 1 })], { crds: [crds] })).toJson().violations[0].recommendation).toBe(`Kubernetes ${BOTH}: /spec/sise: unknown field`);
    });

    test('an unknown property is named, with the properties there are', () => {
      expect(() => new KubernetesSchemaValidation({ crd: ['x'] } as any))
        .toThrow('KubernetesSchemaValidation: properties.crd is not a property of the plugin; its properties are kubernetesVersions, definitions, crds (all optional)');
    });
  });

  describe('a schema file that cannot be used is one line naming the property, not a stack trace', () => {
    test('a missing definitions file', () => {
      const lines = thrown(() => new KubernetesSchemaValidation({ definitions: '/x/_definitions.json' }));
      expect(lines).toEqual(['KubernetesSchemaValidation: properties.definitions: cannot read /x/_definitions.json (ENOENT); '
        + 'give the path of a Kubernetes release\'s _definitions.json relative to where cdk8s synth runs']);
    });

    test('a definitions file that is not JSON, or not definitions', () => {
      const file = path.join(dir, '_definitions.json');
      writeFileSync(file, '{ "definitions": ');
      expect(thrown(() => new KubernetesSchemaValidation({ definitions: file }))).toEqual([
        expect.stringMatching(new RegExp(`^KubernetesSchemaValidation: properties.definitions: ${file} is not JSON \\(.+\\); give the path of a Kubernetes release's _definitions.json relative to where cdk8s synth runs$`)),
      ]);
      writeFileSync(file, '[]');
      expect(thrown(() => new KubernetesSchemaValidation({ definitions: file }))[0])
        .toContain(`properties.definitions: ${file} has no "definitions" object, so it is not a Kubernetes _definitions.json`);
    });

    test('a missing or unparseable CRD directory', () => {
      expect(thrown(() => new KubernetesSchemaValidation({ crds: ['crds', '/no/such/dir'] }))).toEqual([
        `KubernetesSchemaValidation: properties.crds[0]: cannot read ${path.resolve('crds')} (ENOENT); give a directory of CustomResourceDefinition YAML files relative to where cdk8s synth runs`,
      ]);
      writeFileSync(path.join(dir, 'bad.yaml'), 'kind: [CustomResourceDefinition\n');
      expect(thrown(() => new KubernetesSchemaValidation({ crds: [dir] }))).toEqual([
        expect.stringMatching(new RegExp(`^KubernetesSchemaValidation: properties.crds\\[0\\]: ${path.join(dir, 'bad.yaml')} is not YAML \\(.+\\); give a directory`)),
      ]);
    });

    test('the same from SchemaValidator used directly, naming its option', () => {
      expect(thrown(() => new SchemaValidator({ definitionsFile: '/x/_definitions.json' }))).toEqual([
        'SchemaValidator: definitionsFile: cannot read /x/_definitions.json (ENOENT); give the path of a Kubernetes release\'s _definitions.json',
      ]);
      expect(thrown(() => new SchemaValidator({ definitionsFile: definitionsFile('v1.27.0'), crdDirectories: [SCHEMA_ROOT, '/no/such/dir'] }))).toEqual([
        'SchemaValidator: crdDirectories[1]: cannot read /no/such/dir (ENOENT); give a directory of CustomResourceDefinition YAML files',
      ]);
      expect(thrown(() => new SchemaValidator({} as any))).toEqual([
        'SchemaValidator: definitionsFile: is unset; give the path of a Kubernetes release\'s _definitions.json',
      ]);
    });
  });

  describe('names the construct that made each object although cdk8s records construct paths by name only', () => {
    // cdk8s's construct-metadata.json keeps the last object of each name: a construct's
    // Certificate comes before its NetworkPolicy of the same name.
    const clash = { db: { path: 'chart/Db/NetworkPolicy' } };

    test('a Certificate sharing its name with a NetworkPolicy is made by the construct that made the NetworkPolicy, not by the NetworkPolicy', async () => {
      const report = await run([CERTIFICATE('db', { dnsName: ['db'] }), NETWORK_POLICY('db')], undefined, clash);
      const [violation, ...others] = report.toJson().violations;
      expect(others).toEqual([]);
      expect(violation.ruleName).toBe(`Certificate shop/db (made by construct chart/Db) does not validate against Kubernetes ${BOTH}`);
      expect(violation.recommendation.split('\n')).toEqual([
        `Kubernetes ${BOTH}: /spec/dnsName: unknown field`,
        '(cdk8s records one construct path per object name; chart/Db/NetworkPolicy is the path of NetworkPolicy shop/db, '
        + 'a sibling made by the same construct, which gives its objects one name)',
      ]);
      // The CLI prints no construct path rather than the NetworkPolicy's.
      expect(violation.violatingConstructs[0]).toMatchObject({ resourceName: 'Certificate/db', constructPath: undefined });
    });

    test('the NetworkPolicy whose path cdk8s recorded gets its own path', async () => {
      const report = await run([CERTIFICATE('db'), NETWORK_POLICY('db', { policyTypess: [] })], undefined, clash);
      const [violation] = report.toJson().violations;
      expect(violation.ruleName).toBe(`NetworkPolicy shop/db (construct chart/Db/NetworkPolicy) does not validate against Kubernetes ${BOTH}`);
      expect(violation.violatingConstructs[0]).toMatchObject({ resourceName: 'db', constructPath: 'chart/Db/NetworkPolicy' });
    });

    test('a cdk8s-plus object\'s Resource child: the creator is above it', async () => {
      const report = await run([CERTIFICATE('db', { dnsName: ['db'] }), NETWORK_POLICY('db')], undefined, { db: { path: 'chart/Db/Policy/Resource' } });
      expect(report.toJson().violations[0].ruleName).toBe(`Certificate shop/db (made by construct chart/Db) does not validate against Kubernetes ${BOTH}`);
    });

    test('an object of one chart is not given the path of its namesake in another chart', async () => {
      // Overlays repeat names in every chart: cdk8s records the last chart's (files are listed alphabetically).
      const metadata = { 'db-rw': { path: 'prod/Db/ReadWrite' }, 'db': { path: 'MyChart/Db/NetworkPolicy' } };
      const report = await runManifests({
        'dev.k8s.yaml': [SERVICE('db-rw', { targetPortt: 1 })],
        'prod.k8s.yaml': [SERVICE('db-rw')],
        // cdk8s names the file of a chart whose id is not a DNS label as Names.toDnsLabel does.
        'mychart-c8e1a912.k8s.yaml': [NETWORK_POLICY('db', { policyTypess: [] })],
      }, undefined, metadata);
      const [dev, mine] = report.toJson().violations;
      expect(dev.ruleName).toBe(`Service db-rw (made in chart dev) does not validate against Kubernetes ${BOTH}`);
      expect(dev.recommendation).toContain('(cdk8s records one construct path per object name, here that of Service db-rw at prod/Db/ReadWrite)');
      expect(dev.violatingConstructs[0].constructPath).toBeUndefined();
      expect(mine.ruleName).toBe(`NetworkPolicy shop/db (construct MyChart/Db/NetworkPolicy) does not validate against Kubernetes ${BOTH}`);
    });
  });

  test('requiring the library does not load ajv; building a SchemaValidator does', () => {
    // A child process: jest's own module registry would not show what a plain require loads.
    const script = [
      `require(${JSON.stringify(path.join(ROOT, 'lib'))});`,
      'const loaded = () => Object.keys(require.cache).some((file) => file.includes(`${require("path").sep}ajv${require("path").sep}`));',
      'const before = loaded();',
      `new (require(${JSON.stringify(path.join(ROOT, 'lib/testing/schema-validator'))}).SchemaValidator)({ definitionsFile: ${JSON.stringify(definitionsFile('v1.27.0'))} });`,
      'console.log(JSON.stringify({ before, after: loaded() }));',
    ].join('\n');
    const result = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
      cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') },
    });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ before: false, after: true });
  }, 120_000);

  /** `cdk8s synth` of an app, with the plugin (its .ts source through ts-node) configured by `properties` lines. */
  const synth = (appLines: string[], properties: string[] = []) => {
    const app = path.join(dir, 'app.ts');
    writeFileSync(app, [
      `import { App, Chart, JsonPatch } from '${require.resolve('cdk8s')}';`,
      `import { PostgresStatefulCluster, IssuerKind } from '${path.join(ROOT, 'lib')}';`,
      'const app = new App();',
      ...appLines,
      'app.synth();',
    ].join('\n'));
    writeFileSync(path.join(dir, 'cdk8s.yaml'), [
      'language: typescript',
      `app: ${path.join(ROOT, 'node_modules/.bin/ts-node')} --transpile-only ${app}`,
      'output: out',
      'validations:',
      `  - package: ${path.join(ROOT, 'lib/testing/validation-plugin.ts')}`,
      '    class: KubernetesSchemaValidation',
      '    version: 0.0.0',
      ...properties,
    ].join('\n'));
    const result = spawnSync(path.join(ROOT, 'node_modules/.bin/cdk8s'), ['synth', '--no-check-upgrade'], {
      cwd: dir, encoding: 'utf8', timeout: 120_000,
      // The CLI requires the plugin's .ts source through ts-node's hook.
      env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'), NODE_OPTIONS: `--require ${require.resolve('ts-node/register/transpile-only')}` },
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  };

  test('a real `cdk8s synth` with the plugin unconfigured fails invalid objects, each with the construct that made it', () => {
    const { status, output } = synth([
      "const chart = new Chart(app, 'bad', { namespace: 'shop' });",
      "const db = new PostgresStatefulCluster(chart, 'Db', { name: 'db', superuserSecret: { secretName: 's' }, replicationSecret: { secretName: 'r' },",
      "  tls: { issuer: { name: 'ca', kind: IssuerKind.CLUSTER_ISSUER } } });",
      "(db.node.findChild('ReadWrite') as any).addJsonPatch(JsonPatch.replace('/spec/ports/0/port', 'five-four-three-two'));",
      "(db.node.findChild('Certificate') as any).addJsonPatch(JsonPatch.add('/spec/dnsName', ['db']));",
    ]);
    expect(status).not.toBe(0);
    expect(output).toContain(`Service shop/db-rw (construct bad/Db/ReadWrite) does not validate against Kubernetes ${BOTH}`);
    expect(output).toContain('Construct Path: bad/Db/ReadWrite');
    expect(output).toContain(`Certificate shop/db (made by construct bad/Db) does not validate against Kubernetes ${BOTH}`);
    expect(output).toContain('Resource Name: Certificate/db');
    expect(output).not.toContain('Construct Path: bad/Db/NetworkPolicy');
    expect(output).toMatch(/kubernetes\s*│ v1\.27\.0, v1\.36\.0/);
  }, 120_000);

  test('a real `cdk8s synth` with a bad property fails with that one line, no stack trace', () => {
    const { status, output } = synth(["new Chart(app, 'ok');"], ['    properties:', '      kubernetesVersions: ["1.19"]']);
    expect(status).not.toBe(0);
    const lines = output.split('\n').filter((line) => line.includes('KubernetesSchemaValidation'));
    expect(lines).toEqual([expect.stringContaining('KubernetesSchemaValidation: properties.kubernetesVersions[0]: "1.19" is not a Kubernetes version this package ships')]);
    expect(output).not.toMatch(/^\s+at /m);
  }, 120_000);
});
