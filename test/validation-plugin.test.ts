import { spawnSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { KubernetesSchemaValidation } from '../lib/testing/validation-plugin';
import { SCHEMA_ROOT } from './support/kube-schema';

// The CLI exports its plugin API as 'cdk8s-cli/plugins' only; the types live under lib/.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ValidationContext } = require('cdk8s-cli/plugins') as typeof import('cdk8s-cli/lib/plugins/validation');

const DEFINITIONS = path.join(SCHEMA_ROOT, 'kubernetes', 'v1.27.0', '_definitions.json');

const SERVICE = (name: string, extra: object = {}) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name },
  spec: { ports: [{ port: 5432, ...extra }] },
});

describe('KubernetesSchemaValidation, the cdk8s validation plugin', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(path.join(tmpdir(), 'plugin-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = async (objects: object[], properties: object = { definitions: DEFINITIONS }) => {
    const manifest = path.join(dir, 'chart.k8s.yaml');
    writeFileSync(manifest, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
    const context = new ValidationContext([manifest], 'cdk8s-postgres', '0.0.0', { 'db-rw': { path: 'chart/Db/ReadWrite' } }, false);
    await new KubernetesSchemaValidation(properties as any).validate(context as any);
    return context.report;
  };

  test('passes objects that validate', async () => {
    const report = await run([SERVICE('db-rw'), SERVICE('db-ro')]);
    expect(report.success).toBe(true);
    expect(report.toJson().summary.metadata).toEqual({ release: 'v1.27.0', objects: '2', invalid: '0' });
  });

  test('fails an unknown field, naming the object, the field and the construct path', async () => {
    const report = await run([SERVICE('db-ro'), SERVICE('db-rw', { targetPortt: 5432 })]);
    expect(report.success).toBe(false);
    const [violation, ...others] = report.toJson().violations;
    expect(others).toEqual([]);
    expect(violation.ruleName).toBe('Service/db-rw does not validate against Kubernetes v1.27.0');
    expect(violation.recommendation).toBe('Service/db-rw: /spec/ports/0/targetPortt: unknown field');
    expect(violation.violatingConstructs[0].constructPath).toBe('chart/Db/ReadWrite');
  });

  test('validates custom resources against the CRDs it is given, and refuses kinds it does not know', async () => {
    const monitor = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor', metadata: { name: 'm' }, spec: { selector: {}, podMetricsEndpoints: [{ port: 'metrics' }] } };
    expect((await run([monitor], { definitions: DEFINITIONS, crds: [path.join(SCHEMA_ROOT, 'crds')] })).success).toBe(true);
    const report = await run([monitor]);
    expect(report.success).toBe(false);
    expect(report.toJson().violations[0].recommendation).toContain('unknown apiVersion/kind monitoring.coreos.com/v1 PodMonitor');
  });

  test('without definitions, says which property to set', () => {
    expect(() => new KubernetesSchemaValidation({} as any)).toThrow(/properties.definitions is unset/);
  });

  test('fails a real `cdk8s synth` of an app with an invalid object, with the construct path', () => {
    const app = path.join(dir, 'app.ts');
    writeFileSync(app, [
      `import { App, Chart, JsonPatch } from '${require.resolve('cdk8s')}';`,
      `import { PostgresStatefulCluster } from '${path.resolve(__dirname, '../lib')}';`,
      'const app = new App();',
      "const chart = new Chart(app, 'bad');",
      "const db = new PostgresStatefulCluster(chart, 'Db', { superuserSecret: { secretName: 's' }, replicationSecret: { secretName: 'r' } });",
      "(db.node.findChild('ReadWrite') as any).addJsonPatch(JsonPatch.replace('/spec/ports/0/port', 'five-four-three-two'));",
      'app.synth();',
    ].join('\n'));
    writeFileSync(path.join(dir, 'cdk8s.yaml'), [
      'language: typescript',
      `app: ${path.resolve(__dirname, '../node_modules/.bin/ts-node')} --transpile-only ${app}`,
      'output: out',
      'validations:',
      `  - package: ${path.resolve(__dirname, '../lib/testing/validation-plugin.ts')}`,
      '    class: KubernetesSchemaValidation',
      '    version: 0.0.0',
      '    properties:',
      `      definitions: ${DEFINITIONS}`,
    ].join('\n'));
    const cli = path.resolve(__dirname, '../node_modules/.bin/cdk8s');
    const result = spawnSync(cli, ['synth', '--no-check-upgrade'], {
      cwd: dir, encoding: 'utf8', timeout: 120_000,
      // The CLI requires the plugin's .ts source through ts-node's hook.
      env: { ...process.env, TS_NODE_PROJECT: path.resolve(__dirname, '../tsconfig.json'), NODE_OPTIONS: `--require ${require.resolve('ts-node/register/transpile-only')}` },
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status).not.toBe(0);
    expect(output).toContain('Service/db-rw does not validate against Kubernetes v1.27.0');
    expect(output).toContain('Construct Path: bad/Db/ReadWrite');
  }, 120_000);
});
