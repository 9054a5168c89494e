import { App, Testing, Yaml } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { buildExamples } from '../examples/main';
import { validateManifests } from './support/kube-schema';
import { shellcheck } from './support/shellcheck';

/** Each example chart's YAML, by chart id, as `cdk8s synth` writes it. */
function synthExamples(): { [chart: string]: string } {
  const app: App = Testing.app();
  buildExamples(app);
  const files: { [chart: string]: string } = {};
  for (const chart of app.charts) files[chart.node.id] = Yaml.stringify(...chart.toJson());
  return files;
}

const examples = synthExamples();

describe.each(Object.keys(examples))('example %s', (chart) => {
  const yaml = examples[chart];
  // Parsed back from the YAML text, so the checks see exactly what `kubectl apply` would.
  const objects = parseAllDocuments(yaml).map((doc) => doc.toJSON());

  test('matches its snapshot', () => {
    expect(yaml).toMatchSnapshot();
  });

  test.each(['v1.27.0', 'v1.36.0'] as const)('validates strictly against Kubernetes %s', (version) => {
    expect(validateManifests(objects, version)).toEqual([]);
  });

  test('renders only shellcheck-clean scripts', () => {
    const scripts = objects.filter((o: any) => o.kind === 'ConfigMap')
      .flatMap((o: any) => Object.entries(o.data ?? {}).filter(([file]) => file.endsWith('.sh')));
    expect(scripts.length).toBeGreaterThan(0);
    for (const [file, text] of scripts) {
      expect({ file, findings: shellcheck(text as string) }).toEqual({ file, findings: '' });
    }
  });
});

test('synthesizing the examples twice gives byte-identical YAML', () => {
  expect(synthExamples()).toEqual(examples);
});
