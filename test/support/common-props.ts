import { Duration } from 'cdk8s';
import { ExpectedPropError } from './prop-errors';
import { findObject } from './synth';
import { ContainerResources, PodPlacement, TaintEffect, TolerationOperator } from '../../lib';

/** The props every pod-running construct shares, and how a suite checks one of its constructs. */
interface CommonProps {
  readonly labels?: { [key: string]: string };
  readonly annotations?: { [key: string]: string };
  readonly placement?: PodPlacement;
  readonly resources?: ContainerResources;
}

/** The pod templates of the Deployments and StatefulSets among `objects`. */
const podTemplates = (objects: any[]) => objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind)).map((o) => o.spec.template);

/**
 * The label, annotation, placement and resource checks all constructs get from lib/core, as one
 * set of tests for each construct's suite: `expectPropError` and `expectValid` synthesize that
 * suite's construct (`expectValid` returns the objects, after strict schema validation).
 */
export function describeWorkloadProps(
  expectPropError: (props: CommonProps, expected: ExpectedPropError) => unknown,
  expectValid: (props: CommonProps) => any[],
): void {
  describe('annotations and placement', () => {
    const MARK = { 'placement-test': 'yes' };
    const PLACEMENT: PodPlacement = {
      nodeSelector: { 'node-pool': 'db', 'example.com/zone': 'a' },
      tolerations: [
        { key: 'dedicated', value: 'db', effect: TaintEffect.NO_SCHEDULE },
        { key: 'node.kubernetes.io/unreachable', operator: TolerationOperator.EXISTS, effect: TaintEffect.NO_EXECUTE, tolerationSeconds: Duration.seconds(30) },
      ],
      priorityClassName: 'database-critical',
    };
    /** The objects of the construct under test: those carrying its labels (a backend's do not). */
    const own = (objects: any[]) => objects.filter((o) => o.metadata.labels?.['placement-test'] === 'yes');

    test('annotations land on every object and every pod', () => {
      const annotations = { 'example.com/owner': 'payments', 'sidecar.istio.io/inject': 'false' };
      const objects = own(expectValid({ labels: MARK, annotations }));
      expect(objects.length).toBeGreaterThanOrEqual(4);
      for (const object of objects) expect({ [object.kind]: object.metadata.annotations }).toEqual({ [object.kind]: annotations });
      expect(podTemplates(objects).length).toBeGreaterThan(0);
      for (const template of podTemplates(objects)) {
        expect(template.metadata.annotations).toMatchObject(annotations);
        expect(template.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
      }
    });

    test('without annotations, objects have no annotations field', () => {
      for (const object of own(expectValid({ labels: MARK }))) expect(object.metadata.annotations).toBeUndefined();
    });

    test('placement lands in every pod spec, in the Kubernetes form', () => {
      const templates = podTemplates(own(expectValid({ labels: MARK, placement: PLACEMENT })));
      expect(templates.length).toBeGreaterThan(0);
      for (const { spec } of templates) {
        expect(spec.nodeSelector).toEqual({ 'node-pool': 'db', 'example.com/zone': 'a' });
        expect(spec.tolerations).toEqual([
          { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' },
          { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 },
        ]);
        expect(spec.priorityClassName).toBe('database-critical');
      }
    });

    test('without placement, pod specs carry no placement fields', () => {
      for (const { spec } of podTemplates(own(expectValid({ labels: MARK })))) {
        expect([spec.nodeSelector, spec.tolerations, spec.priorityClassName]).toEqual([undefined, undefined, undefined]);
      }
    });

    test('a toleration key is a value, not a map key: "constructor" is a taint key like any other', () => {
      const templates = podTemplates(own(expectValid({ labels: MARK, placement: { tolerations: [{ key: 'constructor', operator: TolerationOperator.EXISTS }] } })));
      for (const { spec } of templates) expect(spec.tolerations).toEqual([{ key: 'constructor', operator: 'Exists' }]);
    });

    test('a toleration of every taint needs EXISTS and no key', () => {
      const templates = podTemplates(own(expectValid({ labels: MARK, placement: { tolerations: [{ operator: TolerationOperator.EXISTS }] } })));
      for (const { spec } of templates) expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    });

    test.each([
      ['a reserved prometheus.io key', { 'prometheus.io/scrape': 'true' }, 'annotations key', '"prometheus.io/scrape"', /ExporterSidecar sets/],
      ['the config checksum key', { 'checksum/config': 'x' }, 'annotations key', '"checksum/config"', /drop it/],
      ['a key that is not a qualified name', { 'bad key': 'x' }, 'annotations key', '"bad key"', /DNS prefix/],
    ])('rejects %s in annotations', (_what, annotations, prop, value, fix) => {
      expectPropError({ annotations }, { prop, value, fix });
    });

    test.each([
      ['a node selector value', { nodeSelector: { pool: 'has space' } }, 'placement.nodeSelector.pool', '"has space"', /letters, digits/],
      ['a toleration without key or EXISTS', { tolerations: [{ value: 'db' }] }, 'placement.tolerations[0].operator', '"Equal"', /EXISTS/],
      ['a value with EXISTS', { tolerations: [{ key: 'k', operator: TolerationOperator.EXISTS, value: 'v' }] },
        'placement.tolerations[0].value', '"v"', /drop the value/],
      ['tolerationSeconds without NO_EXECUTE', { tolerations: [{ key: 'k', tolerationSeconds: Duration.seconds(5) }] },
        'placement.tolerations[0].tolerationSeconds', '"5s"', /NO_EXECUTE/],
      ['a fractional tolerationSeconds', { tolerations: [{ key: 'k', effect: TaintEffect.NO_EXECUTE, tolerationSeconds: Duration.millis(1500) }] },
        'placement.tolerations[0].tolerationSeconds', '"1500ms"', /whole number of seconds/],
      ['a toleration key that is not a qualified name', { tolerations: [{ key: 'a b' }] }, 'placement.tolerations[0].key', '"a b"', /DNS prefix/],
      ['a PriorityClass name', { priorityClassName: 'Critical' }, 'placement.priorityClassName', '"Critical"', /existing PriorityClass/],
    ])('rejects %s in placement', (_what, placement, prop, value, fix) => {
      expectPropError({ placement: placement as PodPlacement }, { prop, value, fix });
    });
  });

  describe('labels and resources', () => {
    test('rejects a label key that is not a qualified name', () => {
      expectPropError({ labels: { 'bad key!': 'x' } }, { prop: 'labels', value: '"bad key!"', fix: /letters, digits/ });
    });

    test('rejects a label key with a bad prefix', () => {
      expectPropError({ labels: { 'Example_Com/team': 'x' } }, { prop: 'labels', value: '"Example_Com/team"', fix: /DNS prefix/ });
    });

    test.each(['pay ments', '-payments', 'p'.repeat(64)])('rejects the label value %p', (value) => {
      expectPropError({ labels: { team: value } }, { prop: 'labels.team', value: JSON.stringify(value), fix: /letters, digits/ });
    });

    test('rejects the key "constructor", which cdk8s cannot render', () => {
      expectPropError({ labels: { constructor: 'x' } }, { prop: 'labels key', value: '"constructor"', fix: /prefixed key/ });
    });

    test('accepts prefixed label keys and an empty value', () => {
      expectValid({ labels: { 'example.com/team': 'payments', 'tier': '' } });
    });

    test('rejects a malformed memory limit', () => {
      expectPropError({ resources: { memoryLimit: 'lots' } }, { prop: 'resources.memoryLimit', value: '"lots"', fix: /"512Mi"/ });
    });

    test.each([['700m', '0.7', '1100M', '1.1G'], ['2300m', '2.3', '0.5Gi', '512Mi']])(
      'accepts a request equal to its limit in another notation: %s and %s, %s and %s', (cpuRequest, cpuLimit, memoryRequest, memoryLimit) => {
        expectValid({ resources: { cpuRequest, cpuLimit, memoryRequest, memoryLimit } });
      });

    test('rejects a CPU request above the CPU limit', () => {
      expectPropError({ resources: { cpuRequest: '2', cpuLimit: '1' } }, {
        prop: 'resources.cpuRequest', value: '"2"', fix: /raise resources\.cpuLimit/,
      });
    });
  });
}

/** The name and replica checks of the Deployment-based constructs (pooler, balancer). */
export function describeDeploymentNameAndReplicas(
  expectPropError: (props: { name?: string; replicas?: number }, expected: ExpectedPropError) => unknown,
  expectValid: (props: { name?: string; replicas?: number }) => any[],
): void {
  describe('name', () => {
    test.each([
      ['upper case', 'MyProxy'],
      ['an underscore', 'my_proxy'],
      ['a leading dash', '-proxy'],
      ['a trailing dash', 'proxy-'],
      ['a leading digit (DNS-1035)', '1proxy'],
      ['a dot', 'my.proxy'],
      ['nothing', ''],
    ])('rejects a name with %s', (_what, name) => {
      expectPropError({ name }, { prop: 'name', value: JSON.stringify(name), fix: /lower-case letters, digits and "-", starting with a letter/ });
    });

    test('rejects 64 characters', () => {
      const name = 'p'.repeat(64);
      expectPropError({ name }, { prop: 'name', value: JSON.stringify(name), fix: /at most 63 characters/ });
    });

    test('accepts 63 characters', () => {
      const objects = expectValid({ name: 'p'.repeat(63) });
      expect(findObject(objects, 'Deployment', 'p'.repeat(63)).spec.replicas).toBe(2);
    });
  });

  describe('replicas', () => {
    test.each([
      [0, '0'],
      [101, '101'],
      [1.5, '1.5'],
      [-1, '-1'],
      [Number.NaN, 'NaN'],
    ])('rejects %p', (replicas, shown) => {
      expectPropError({ replicas }, { prop: 'replicas', value: shown, fix: /whole number from 1 to 100/ });
    });

    test.each([1, 100])('accepts %p', (replicas) => {
      expectValid({ replicas });
    });
  });
}

/**
 * The objects every Deployment-based construct gets from lib/core/proxy-deployment: a budget of
 * one disruption from two replicas on, and a ServiceAccount that mounts no token.
 * `objectsOf` synthesizes the construct named `name`, whose pods carry `selector`.
 */
export function describeProxyScaffolding(name: string, selector: { [key: string]: string },
  objectsOf: (props: { replicas?: number; labels?: { [key: string]: string } }) => any[]): void {
  const own = (objects: any[]) => objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === selector['app.kubernetes.io/name']);
  const deployment = (objects: any[]) => findObject(objects, 'Deployment', name);
  const podSpec = (objects: any[]) => deployment(objects).spec.template.spec;

  describe('Deployment scaffolding', () => {
    test('has 2 replicas by default', () => {
      expect(deployment(objectsOf({})).spec.replicas).toBe(2);
    });

    test.each([1, 3, 10])('has %p replicas when asked', (replicas) => {
      expect(deployment(objectsOf({ replicas })).spec.replicas).toBe(replicas);
    });

    test('rolls out one extra pod at a time and never takes one away first', () => {
      expect(deployment(objectsOf({})).spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    });

    test('selects its pods by name, instance and component', () => {
      const spec = deployment(objectsOf({ labels: { team: 'payments' } })).spec;
      expect(spec.selector.matchLabels).toEqual(selector);
      expect(spec.template.metadata.labels).toMatchObject({ ...selector, 'team': 'payments', 'app.kubernetes.io/managed-by': 'cdk8s-postgres' });
    });
  });

  describe('PodDisruptionBudget and ServiceAccount', () => {
    test.each([2, 3])('there is a budget of one disruption with %p replicas', (replicas) => {
      const pdb = findObject(objectsOf({ replicas }), 'PodDisruptionBudget', name);
      expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: selector } });
    });

    test('there is no budget of the construct with a single replica', () => {
      expect(own(objectsOf({ replicas: 1 })).filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
    });

    test('the ServiceAccount and the pod mount no token', () => {
      const objects = objectsOf({});
      expect(findObject(objects, 'ServiceAccount', name).automountServiceAccountToken).toBe(false);
      expect(podSpec(objects).automountServiceAccountToken).toBe(false);
      expect(podSpec(objects).serviceAccountName).toBe(name);
      expect(podSpec(objects).enableServiceLinks).toBe(false);
    });
  });
}
