/**
 * Names in the public API that are reserved words in a language the bindings target (Python,
 * Java, Go, C#). jsii only warns about them, and `npm run jsii` silences that warning for the
 * Kubernetes and pgBackRest field names below; this test is the check instead: a new reserved name anywhere in
 * the API fails it, and so does an allowed one that disappears.
 *
 * The lists are jsii's own (the ones behind its reserved-word warning).
 */
import * as fs from 'fs';
import * as path from 'path';

// jsii's package exports do not include its reserved-word module, so load it by path.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a computed path into jsii, outside its package exports
const { isReservedName } = require(path.join(path.dirname(require.resolve('jsii/package.json')), 'lib', 'reserved-words.js')) as {
  isReservedName(name: string): string[] | undefined;
};

const ASSEMBLY_FILE = path.resolve(__dirname, '..', '.jsii');

/**
 * The reserved names the API keeps, as `Type.member`, with the languages that reserve them and
 * why they stay. Each is the name of the field it sets in Kubernetes or pgBackRest, and each
 * binding escapes it where needed, as it does for the same fields of cdk8s (ChartProps.namespace)
 * and cdk8s-plus-27 (`type`, `operator`, `namespace`): C# and Go capitalize property names
 * (`Namespace`, `Operator`, `Type()`), and Python and Java keep them, reserving none of the three.
 * A parameter name has no such reason: rename it (`baseProps`, not `base`).
 */
const ALLOWED: { [name: string]: { languages: string[]; reason: string } } = {
  'LabelRequirement.operator': { languages: ['C#'], reason: "a label selector requirement's operator field (In, NotIn, Exists, DoesNotExist); C# property Operator" },
  'NodeRequirement.operator': { languages: ['C#'], reason: "a node selector requirement's operator field (In, NotIn, Exists, DoesNotExist, Gt, Lt); C# property Operator" },
  'SourceCluster.namespace': { languages: ['C#'], reason: "the Kubernetes namespace of a clone's or a standby's source cluster; C# property Namespace" },
  'BackupRepository.type': { languages: ['Go'], reason: "the repository's pgBackRest repo-type (volume or s3); Go exports it as Type()" },
  'ExternalPostgresProps.namespace': { languages: ['C#'], reason: "the Kubernetes namespace of the cluster's Services; C# property Namespace" },
  'MonitoringProfile.namespace': { languages: ['C#'], reason: 'the Kubernetes namespace of the monitoring objects; C# property Namespace' },
  'NetworkPeer.namespace': { languages: ['C#'], reason: 'a NetworkPolicy peer namespace (namespaceSelector); C# property Namespace' },
  'PodToleration.operator': { languages: ['C#'], reason: "the Kubernetes toleration's operator field (Exists, Equal); C# property Operator" },
  'RequiredSecret.namespace': { languages: ['C#'], reason: 'the Kubernetes namespace of a Secret the app reads; C# property Namespace' },
};

function reservedNames(): { [name: string]: string[] } {
  if (!fs.existsSync(ASSEMBLY_FILE)) {
    throw new Error('.jsii not found: run `npm run jsii` to compile the jsii assembly, then run this test again.');
  }
  const assembly = JSON.parse(fs.readFileSync(ASSEMBLY_FILE, 'utf8'));
  const found: { [name: string]: string[] } = {};
  const check = (name: string, qualified: string) => {
    const languages = isReservedName(name);
    if (languages) found[qualified] = languages;
  };
  for (const type of Object.values<any>(assembly.types ?? {})) {
    check(type.name, type.name);
    for (const param of type.initializer?.parameters ?? []) check(param.name, `${type.name}.constructor(${param.name})`);
    for (const prop of type.properties ?? []) check(prop.name, `${type.name}.${prop.name}`);
    for (const member of type.members ?? []) check(member.name, `${type.name}.${member.name}`);
    for (const method of type.methods ?? []) {
      check(method.name, `${type.name}.${method.name}()`);
      for (const param of method.parameters ?? []) check(param.name, `${type.name}.${method.name}(${param.name})`);
    }
  }
  return found;
}

test("jsii's reserved-word lists are the ones this test relies on", () => {
  expect(isReservedName('base')).toEqual(['C#']);
  expect(isReservedName('namespace')).toEqual(['C#']);
  expect(isReservedName('type')).toEqual(['Go']);
  expect(isReservedName('default')).toEqual(expect.arrayContaining(['C#', 'Java', 'Go']));
  expect(isReservedName('lambda')).toEqual(['Python']);
  expect(isReservedName('replicas')).toBeUndefined();
});

test('the public API uses no reserved word of a target language but the allowed Kubernetes field names', () => {
  const found = reservedNames();
  const unexpected = Object.entries(found)
    .filter(([name, languages]) => JSON.stringify(ALLOWED[name]?.languages) !== JSON.stringify(languages))
    .map(([name, languages]) => `${name}: reserved in ${languages.join(', ')}`);
  if (unexpected.length) {
    throw new Error(
      `names reserved in a language of the bindings: ${unexpected.join('; ')}. Rename them `
      + '(a parameter or method always; a property only when another name fits its Kubernetes field as well), '
      + 'or, for the name of a Kubernetes field, add it to ALLOWED in test/reserved-words.test.ts with the reason '
      + 'and check the generated bindings (`npm run pacmak`).',
    );
  }
  // An allowed name that is gone from the API leaves the list: it must stay exact.
  expect(Object.keys(found).sort()).toEqual(Object.keys(ALLOWED).sort());
});
