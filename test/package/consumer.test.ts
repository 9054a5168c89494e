/**
 * The package as a user gets it. `npm pack` (its prepack compiles dist/lib and .jsii with jsii)
 * runs on a copy of this working tree, so the tree other tests read is never rebuilt under
 * them; then fresh projects outside the repository install the tarball with `npm install
 * --omit=dev` next to the peers at the floors package.json declares, and nothing else from here:
 * - a runtime project (peers and tarball only): a CommonJS app and an ES module app synthesize a
 *   stack, the CommonJS one also validates it with the package's own schemas;
 * - a TypeScript project (plus the app's own tools: typescript, ts-node, cdk8s-cli, jest, ts-jest):
 *   `tsc --noEmit`, the app run by ts-node, `cdk8s synth` with the validation plugin configured
 *   as the README shows and no properties, and a jest snapshot test with the testing helpers.
 * Installs share the user's npm cache and prefer it (`npm ci` has filled it with the same
 * versions, which are read from this repository's node_modules). Every failure fails the test.
 * CONSUMER_KEEP=1 keeps the temporary directory for a look.
 */
import { spawnSync } from 'child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

const REPO = path.resolve(__dirname, '../..');
const MANIFEST = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const INSTALL_TIMEOUT = 600_000;

/** `cdk8s@2.70.106` for the peer range `^2.70.106`: the consumers install the declared floor. */
const PEERS = Object.entries<string>(MANIFEST.peerDependencies).map(([name, range]) => {
  const floor = /^\^(\d+\.\d+\.\d+)$/.exec(range)?.[1];
  if (!floor) throw new Error(`peerDependencies.${name} is ${range}; this test installs the floor of a ^x.y.z range`);
  return { name, floor };
});

/** The tools a TypeScript app brings itself, at the versions this repository runs. */
const TOOLS = ['typescript', 'ts-node', '@types/node', 'cdk8s-cli', 'jest', 'ts-jest', '@types/jest']
  .map((name) => `${name}@${JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')).version}`);

/** The stack every app synthesizes, and what it must contain. */
const EXPECTED_KINDS = {
  shop: {
    Certificate: 3, ConfigMap: 6, Deployment: 2, NetworkPolicy: 3, PodDisruptionBudget: 3, PodMonitor: 1,
    PrometheusRule: 3, Service: 5, ServiceAccount: 3, ServiceMonitor: 2, StatefulSet: 2,
  },
  legacy: { ConfigMap: 1, Deployment: 1, NetworkPolicy: 1, PodDisruptionBudget: 1, Service: 1, ServiceAccount: 1 },
};
const EXPECTED_OBJECTS = Object.values(EXPECTED_KINDS).flatMap((kinds) => Object.values(kinds)).reduce((a, b) => a + b, 0);
const RELEASES = ['v1.27.0', 'v1.36.0'];
const BUNDLED = ['ajv', 'pg', 'yaml'];

/**
 * A cluster with TLS from a cert-manager ClusterIssuer, Pgpool-II and PgBouncer in front, an
 * exporter beside each daemon; and PgBouncer in front of a cluster run elsewhere. The same
 * source serves CommonJS, ES modules and TypeScript (`ts` adds the type annotations).
 */
function buildStackSource(ts: boolean): string {
  const t = (annotation: string) => (ts ? annotation : '');
  return `
${ts ? 'export ' : ''}function buildStack(app${t(': App')})${t(': { shop: Chart; legacy: Chart }')} {
  const shop = new Chart(app, 'shop', { namespace: 'shop' });
  const tls${t(': TlsOptions')} = { issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } };
  const appUser = { secretName: 'shop-app' };
  const db = new PostgresStatefulCluster(shop, 'ShopDb', {
    instances: 3,
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    databases: [{ name: 'shop', owner: appUser }],
    tls,
  });
  const balancer = new PgpoolBalancer(shop, 'ShopPgpool', {
    backend: db,
    users: [{ credentials: appUser, envPrefix: 'SHOP' }],
    srCheckUser: { secretName: 'shop-pgpool-srcheck' },
    numInitChildren: 16,
    tls,
  });
  const backend${t(': IPostgresEndpoint')} = balancer;
  const pooler = new PgBouncerPooler(shop, 'ShopPgbouncer', { backend, users: [appUser], defaultPoolSize: 8, tls });
  new ExporterSidecar(shop, 'ShopDbMetrics', {
    target: db, credentials: { secretName: 'shop-db-exporter' }, scrapeObject: ScrapeObject.POD_MONITOR, alerts: true, dashboard: true,
  });
  new ExporterSidecar(shop, 'ShopPgpoolMetrics', {
    target: balancer, credentials: { secretName: 'shop-pgpool-exporter' }, scrapeObject: ScrapeObject.SERVICE_MONITOR, alerts: true,
  });
  new ExporterSidecar(shop, 'ShopPgbouncerMetrics', {
    target: pooler, credentials: { secretName: 'shop-pgbouncer-exporter' }, scrapeObject: ScrapeObject.SERVICE_MONITOR, alerts: true,
  });

  const legacy = new Chart(app, 'legacy', { namespace: 'legacy' });
  const legacyDb = new ExternalPostgres(legacy, 'LegacyDb', { readWriteService: 'legacy-rw', readOnlyService: 'legacy-ro', replicas: 1 });
  new PgBouncerPooler(legacy, 'LegacyPgbouncer', { backend: legacyDb, users: [{ secretName: 'legacy-app' }] });
  return { shop, legacy };
}
`;
}
const LIBRARY_NAMES = 'ExporterSidecar, ExternalPostgres, IssuerKind, PgBouncerPooler, PgpoolBalancer, PostgresStatefulCluster, ScrapeObject';

const CJS_APP = `'use strict';
const path = require('path');
const { App, Chart } = require('cdk8s');
const library = require('cdk8s-postgres');
const { ${LIBRARY_NAMES}, SchemaValidator } = library;
const loaded = (name) => Object.keys(require.cache).filter((file) => file.includes(\`\${path.sep}node_modules\${path.sep}\${name}\${path.sep}\`));
const ajvOnRequire = loaded('ajv').length;
const pgOnRequire = loaded('pg').length;
${buildStackSource(false)}
const app = new App();
const { shop, legacy } = buildStack(app);
app.synth();
// The package's own schemas, through its bundled ajv.
const schemas = path.join(path.dirname(require.resolve('cdk8s-postgres/package.json')), 'schemas');
const objects = [...shop.toJson(), ...legacy.toJson()];
const problems = ${JSON.stringify(RELEASES)}.flatMap((release) => new SchemaValidator({
  definitionsFile: path.join(schemas, 'kubernetes', release, '_definitions.json'),
  crdDirectories: [path.join(schemas, 'crds')],
}).validateAll(objects));
console.log(JSON.stringify({ ajvOnRequire, pgOnRequire, ajvFiles: loaded('ajv'), yamlFiles: loaded('yaml'), validated: objects.length, problems }));
`;

const ESM_APP = `import { App, Chart } from 'cdk8s';
import { ${LIBRARY_NAMES} } from 'cdk8s-postgres';
${buildStackSource(false)}
const app = new App();
buildStack(app);
app.synth();
`;

const TS_STACK = `import { App, Chart } from 'cdk8s';
import { ${LIBRARY_NAMES}, IPostgresEndpoint, TlsOptions } from 'cdk8s-postgres';
${buildStackSource(true)}`;

const TS_MAIN = `import { App } from 'cdk8s';
import { buildStack } from './stack';

const app = new App();
buildStack(app);
app.synth();
`;

const TS_TEST = `import * as path from 'path';
import { App } from 'cdk8s';
import { PostgresTesting, SchemaValidator } from 'cdk8s-postgres';
import { buildStack } from './stack';

const schemas = path.join(path.dirname(require.resolve('cdk8s-postgres/package.json')), 'schemas');
const validators = ${JSON.stringify(RELEASES)}.map((release) => new SchemaValidator({
  definitionsFile: path.join(schemas, 'kubernetes', release, '_definitions.json'),
  crdDirectories: [path.join(schemas, 'crds')],
}));

const charts = buildStack(new App());
for (const [name, chart] of Object.entries(charts)) {
  test(name, () => {
    const objects = PostgresTesting.synth(chart);
    for (const validator of validators) expect(validator.validateAll(objects)).toEqual([]);
    expect(PostgresTesting.findObjects(objects, 'Deployment').length).toBeGreaterThan(0);
    expect(PostgresTesting.synthYaml(chart)).toMatchSnapshot();
  });
}
`;

// What a new cdk8s TypeScript project has (cdk8s init typescript-app): CommonJS, strict, no skipLibCheck.
const TS_CONFIG = {
  compilerOptions: {
    target: 'ES2022', module: 'commonjs', lib: ['es2022'], strict: true, esModuleInterop: true,
    noUnusedLocals: true, noImplicitReturns: true, types: ['node', 'jest'],
  },
  include: ['*.ts'],
};

// The plugin as the README configures it, with no properties: it must bring its own schemas.
const CDK8S_YAML = `language: typescript
app: npx ts-node main.ts
output: dist
validations:
  - package: ./node_modules/cdk8s-postgres/dist/lib/testing/validation-plugin.js
    class: KubernetesSchemaValidation
    version: 0.0.0
`;

/** The environment of a user's shell: none of the npm run or jest variables of this process. */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_(package|lifecycle)_|npm_command$|npm_config_(local_prefix|call)$|INIT_CWD$|JEST_|TS_NODE_|NODE_ENV$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, npm_config_update_notifier: 'false', ...extra };
}

const timings: string[] = [];

/** Runs a program; throws with its output unless it exits with 0. */
function run(cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, env: userEnv(env), encoding: 'utf8', timeout: INSTALL_TIMEOUT, maxBuffer: 64 * 1024 * 1024 });
  timings.push(`${((Date.now() - started) / 1000).toFixed(1)} s  ${path.basename(cwd)}: ${path.basename(command)} ${args.join(' ')}`.slice(0, 160));
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} in ${cwd} exited with ${result.status ?? result.signal}${result.error ? ` (${result.error.message})` : ''}\n`
      + `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return result.stdout;
}

const bin = (project: string, name: string) => path.join(project, 'node_modules', '.bin', name);

function npmInstall(project: string, packages: string[]): void {
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: path.basename(project), version: '0.0.0', private: true }, null, 2));
  run(project, 'npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...packages]);
}

/** Kind -> count per chart, from the `<chart>.k8s.yaml` files of an output directory. */
function kindsIn(outdir: string): { [chart: string]: { [kind: string]: number } } {
  const charts: { [chart: string]: { [kind: string]: number } } = {};
  for (const file of readdirSync(outdir).filter((f) => f.endsWith('.k8s.yaml')).sort()) {
    const kinds: { [kind: string]: number } = {};
    for (const doc of parseAllDocuments(readFileSync(path.join(outdir, file), 'utf8'))) {
      const object = doc.toJS();
      if (object) kinds[object.kind] = (kinds[object.kind] ?? 0) + 1;
    }
    charts[file.replace(/\.k8s\.yaml$/, '')] = Object.fromEntries(Object.entries(kinds).sort(([a], [b]) => a.localeCompare(b)));
  }
  return charts;
}

describe('the packed package, used from outside the repository', () => {
  const started = Date.now();
  let work: string;
  let tarball: string;
  let pack: {
    filename: string; size: number; unpackedSize: number; entryCount: number; bundled: string[]; files: Array<{ path: string; size: number }>;
  };

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'cdk8s-postgres-consumer-'));
    // The working tree without its build output and installs; node_modules is linked, for jsii
    // and the bundled dependencies.
    const source = path.join(work, 'source');
    const skipped = new Set(['.git', 'node_modules', 'dist', '.jsii', 'coverage', '.tmp']);
    cpSync(REPO, source, {
      recursive: true,
      filter: (file) => {
        const relative = path.relative(REPO, file);
        return !skipped.has(relative.split(path.sep)[0]) && !relative.endsWith('.tgz');
      },
    });
    symlinkSync(path.join(REPO, 'node_modules'), path.join(source, 'node_modules'), 'dir');
    const stdout = run(source, 'npm', ['pack', '--json', '--pack-destination', work]);
    // prepack's output comes first on stdout; the JSON array starts at a line of its own.
    const json = stdout.slice(stdout.search(/^\[$/m));
    [pack] = JSON.parse(json);
    tarball = path.join(work, pack.filename);
  }, INSTALL_TIMEOUT);

  afterAll(() => {
    console.log(`consumer test: ${((Date.now() - started) / 1000).toFixed(1)} s in all\n${timings.join('\n')}`);
    if (work && !process.env.CONSUMER_KEEP) rmSync(work, { recursive: true, force: true });
  });

  test('the tarball holds the compiled library, the assembly, the docs, the license and the schemas, and no sources or tests', () => {
    const files = pack.files.map((f) => f.path).sort();
    const own = files.filter((f) => !f.startsWith('node_modules/'));
    console.log(`tarball ${pack.filename}: ${pack.size} bytes packed, ${pack.unpackedSize} bytes unpacked, ${pack.entryCount} files `
      + `(${own.length} of the package, ${files.length - own.length} of the bundled ${pack.bundled.join(', ')})`);
    for (const required of [
      'package.json', 'README.md', 'LICENSE', 'API.md', 'CHANGELOG.md', '.jsii',
      'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/testing/validation-plugin.js',
      ...RELEASES.map((release) => `schemas/kubernetes/${release}/_definitions.json`),
      'schemas/crds/cert-manager.io/certificates.yaml',
      ...['podmonitors', 'servicemonitors', 'prometheusrules'].map((crd) => `schemas/crds/monitoring.coreos.com/${crd}.yaml`),
      ...BUNDLED.map((name) => `node_modules/${name}/package.json`),
    ]) {
      expect(files).toContain(required);
    }
    expect(pack.bundled).toEqual(expect.arrayContaining(BUNDLED));
    expect(files.filter((f) => f.startsWith('node_modules/') && !pack.bundled.includes(f.split('/')[1]))).toEqual([]);
    expect(own.filter((f) => /^(test|examples|lib|scripts|docs|\.ci)\//.test(f) || /\.tgz$|\.map$/.test(f) || /\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    expect(own.filter((f) => f.startsWith('dist/') && !f.startsWith('dist/lib/'))).toEqual([]);
    // dist/lib is exactly lib/ compiled: no file of a module that no longer exists.
    const sources = (readdirSync(path.join(REPO, 'lib'), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts')).map((f) => f.split(path.sep).join('/').replace(/\.ts$/, '')).sort();
    expect(own.filter((f) => f.startsWith('dist/lib/')).map((f) => f.slice('dist/lib/'.length)))
      .toEqual(sources.flatMap((module) => [`${module}.d.ts`, `${module}.js`]).sort());
  });

  describe('in a project with only the peers and the tarball', () => {
    let project: string;
    beforeAll(() => {
      project = path.join(work, 'runtime-app');
      mkdirSync(project);
      npmInstall(project, [...PEERS.map((p) => `${p.name}@${p.floor}`), tarball]);
    }, INSTALL_TIMEOUT);

    test('installs the peers at their floors and the bundled dependencies inside the package only', () => {
      for (const { name, floor } of PEERS) {
        expect(JSON.parse(readFileSync(path.join(project, 'node_modules', name, 'package.json'), 'utf8')).version).toBe(floor);
        // The repository's own tests run on the same versions.
        expect(MANIFEST.devDependencies[name]).toBe(floor);
      }
      for (const name of BUNDLED) {
        expect(existsSync(path.join(project, 'node_modules', name))).toBe(false);
        expect(existsSync(path.join(project, 'node_modules', 'cdk8s-postgres', 'node_modules', name, 'package.json'))).toBe(true);
      }
      const assembly = JSON.parse(readFileSync(path.join(project, 'node_modules', 'cdk8s-postgres', '.jsii'), 'utf8'));
      expect([assembly.name, assembly.version]).toEqual([MANIFEST.name, MANIFEST.version]);
      expect(Object.keys(assembly.types)).toContain('cdk8s-postgres.PostgresStatefulCluster');
    });

    test('a CommonJS app requires it without loading ajv, synthesizes the stack and validates it with the package\'s schemas', () => {
      writeFileSync(path.join(project, 'app.cjs'), CJS_APP);
      const report = JSON.parse(run(project, process.execPath, ['app.cjs'], { CDK8S_OUTDIR: 'out-cjs' }).trim().split('\n').pop()!);
      expect(kindsIn(path.join(project, 'out-cjs'))).toEqual(EXPECTED_KINDS);
      expect(report.ajvOnRequire).toBe(0);
      expect(report.pgOnRequire).toBe(0);
      expect(report.validated).toBe(EXPECTED_OBJECTS);
      expect(report.problems).toEqual([]);
      // ajv and yaml came from the package's bundle, not from anything else installed.
      const bundle = `${path.sep}node_modules${path.sep}cdk8s-postgres${path.sep}node_modules${path.sep}`;
      expect(report.ajvFiles.length).toBeGreaterThan(0);
      expect(report.ajvFiles.filter((file: string) => !file.includes(bundle))).toEqual([]);
      expect(report.yamlFiles.filter((file: string) => file.includes(`${path.sep}cdk8s-postgres${path.sep}`) && !file.includes(bundle))).toEqual([]);
    }, 120_000);

    test('the status bin runs from the package with its bundled pg: the shop stack\'s primary on a closed port is unreachable (exit code 4)', () => {
      const result = spawnSync(bin(project, 'cdk8s-postgres-status'), ['--manifests', 'out-cjs', '--endpoint', 'pod/shop-db-primary-0=127.0.0.1:1', '--json'],
        { cwd: project, env: userEnv({ CDK8S_POSTGRES_STATUS_USER: 'monitor', CDK8S_POSTGRES_STATUS_PASSWORD: 'not-printed' }), encoding: 'utf8' });
      expect([result.status, result.stderr]).toEqual([4, '']);
      expect(result.stdout).not.toContain('not-printed');
      const report = JSON.parse(result.stdout);
      expect(report.findings.filter((f: any) => f.status !== 'skipped').map((f: any) => [f.target, f.status, f.message]))
        .toEqual([['pod/shop-db-primary-0', 'unreachable', 'connect ECONNREFUSED 127.0.0.1:1']]);
      expect(report.findings.map((f: any) => f.target)).toEqual(expect.arrayContaining(['service/shop-db-rw', 'service/shop-pgbouncer', 'service/shop-pgpool']));
    }, 60_000);

    test('an ES module app imports it by name and synthesizes the stack', () => {
      writeFileSync(path.join(project, 'app.mjs'), ESM_APP);
      run(project, process.execPath, ['app.mjs'], { CDK8S_OUTDIR: 'out-esm' });
      expect(kindsIn(path.join(project, 'out-esm'))).toEqual(EXPECTED_KINDS);
    }, 120_000);
  });

  describe('in a TypeScript project with the peers, the tarball and its own tools', () => {
    let project: string;
    beforeAll(() => {
      project = path.join(work, 'typescript-app');
      mkdirSync(project);
      npmInstall(project, [...PEERS.map((p) => `${p.name}@${p.floor}`), tarball, ...TOOLS]);
      writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(TS_CONFIG, null, 2));
      writeFileSync(path.join(project, 'stack.ts'), TS_STACK);
      writeFileSync(path.join(project, 'main.ts'), TS_MAIN);
      writeFileSync(path.join(project, 'stack.test.ts'), TS_TEST);
      writeFileSync(path.join(project, 'jest.config.js'), "module.exports = { preset: 'ts-jest', testEnvironment: 'node', testMatch: ['**/*.test.ts'] };\n");
      writeFileSync(path.join(project, 'cdk8s.yaml'), CDK8S_YAML);
    }, INSTALL_TIMEOUT);

    test('type-checks against the declarations with tsc --noEmit, and runs', () => {
      run(project, bin(project, 'tsc'), ['--noEmit', '-p', '.']);
      run(project, bin(project, 'ts-node'), ['main.ts'], { CDK8S_OUTDIR: 'out-ts' });
      expect(kindsIn(path.join(project, 'out-ts'))).toEqual(EXPECTED_KINDS);
    }, 300_000);

    test('cdk8s synth validates every object with the plugin unconfigured, from the package\'s own schemas', () => {
      const stdout = run(project, bin(project, 'cdk8s'), ['synth', '--no-check-upgrade', '--validation-reports-output-file', 'validation.json']);
      expect(kindsIn(path.join(project, 'dist'))).toEqual(EXPECTED_KINDS);
      const { reports } = JSON.parse(readFileSync(path.join(project, 'validation.json'), 'utf8'));
      expect(reports).toHaveLength(1);
      const { summary, violations } = reports[0];
      expect({ status: summary.status, violations }).toEqual({ status: 'success', violations: [] });
      // The summary counts what the plugin validated, per release or in all.
      const counts = (suffix: string) => Object.entries<string>(summary.metadata).filter(([key]) => key === suffix || key.endsWith(suffix));
      expect(counts('objects').length).toBeGreaterThan(0);
      for (const [, value] of counts('objects')) expect(Number(value)).toBe(EXPECTED_OBJECTS);
      for (const [, value] of counts('invalid')) expect(Number(value)).toBe(0);
      console.log(`cdk8s synth with the plugin: ${JSON.stringify(summary.metadata)}`);
      for (const release of RELEASES) expect(Object.values(summary.metadata).join(' ')).toContain(release);
      expect(stdout).toContain('Validations ended succesfully'); // sic, the CLI's spelling
      // Nothing came from outside the package: besides installs and outputs, the project holds the app's own files.
      const outputs = ['node_modules', 'package-lock.json', 'dist', 'out-ts', 'validation.json'];
      expect(readdirSync(project).filter((f) => !outputs.includes(f)).sort())
        .toEqual(['cdk8s.yaml', 'jest.config.js', 'main.ts', 'package.json', 'stack.test.ts', 'stack.ts', 'tsconfig.json']);
    }, 300_000);

    test('the change impact bin runs from the package: the app synthesized twice (ts-node, cdk8s synth) changes nothing', () => {
      expect(run(project, bin(project, 'cdk8s-postgres-impact'), ['--before', 'out-ts', '--after', 'dist']).trim()).toBe('## Change impact\n\nNo object changes.');
    }, 60_000);

    test('a jest snapshot test with PostgresTesting and SchemaValidator writes its snapshots, then passes with --ci', () => {
      const jest = (ci: boolean, output: string) => {
        run(project, bin(project, 'jest'), [`--ci=${ci}`, '--json', `--outputFile=${output}`]);
        return JSON.parse(readFileSync(path.join(project, output), 'utf8'));
      };
      const first = jest(false, 'jest-first.json');
      expect([first.numPassedTests, first.numFailedTests, first.snapshot.added]).toEqual([2, 0, 2]);
      const second = jest(true, 'jest-second.json');
      expect([second.numPassedTests, second.numFailedTests, second.snapshot.matched, second.snapshot.unmatched, second.snapshot.added])
        .toEqual([2, 0, 2, 0, 0]);
    }, 300_000);
  });
});
