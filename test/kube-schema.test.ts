import { KubeVersion, validateManifest, validateManifests } from './support/kube-schema';

const VERSIONS: KubeVersion[] = ['v1.27.0', 'v1.36.0'];
const labels = { app: 'db' };

const podTemplate = () => ({
  metadata: { labels },
  spec: {
    containers: [{
      name: 'postgres',
      image: 'postgres:16',
      ports: [{ containerPort: 5432, name: 'pg' }],
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: 1073741824 } },
    }],
  },
});

const deployment = () => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'pooler', namespace: 'db' },
  spec: { replicas: 2, selector: { matchLabels: labels }, template: podTemplate() },
});

const statefulSet = () => ({
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  metadata: { name: 'db' },
  spec: {
    serviceName: 'db',
    replicas: 3,
    selector: { matchLabels: labels },
    template: podTemplate(),
    volumeClaimTemplates: [{
      metadata: { name: 'data' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } },
    }],
  },
});

const service = () => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'db' },
  spec: { selector: labels, ports: [{ port: 5432, targetPort: 'pg' }], clusterIP: 'None' },
});

const configMap = () => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'db-config', labels },
  data: { 'postgresql.conf': 'max_connections = 100\n' },
});

const pdb = () => ({
  apiVersion: 'policy/v1',
  kind: 'PodDisruptionBudget',
  metadata: { name: 'db' },
  spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
});

const serviceMonitor = () => ({
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'ServiceMonitor',
  metadata: { name: 'db', labels },
  spec: { selector: { matchLabels: labels }, endpoints: [{ port: 'metrics', interval: '30s' }] },
});

describe.each(VERSIONS)('validateManifest on Kubernetes %s', (version) => {
  test.each([
    ['Deployment', deployment],
    ['StatefulSet', statefulSet],
    ['Service', service],
    ['ConfigMap', configMap],
    ['PodDisruptionBudget', pdb],
    ['ServiceMonitor', serviceMonitor],
  ])('accepts a minimal valid %s', (_kind, make) => {
    expect(validateManifest(make(), version)).toEqual([]);
  });

  test('reports an unknown field deep inside a container with its path', () => {
    const sts: any = statefulSet();
    sts.spec.template.spec.containers[0].bogus = true;
    expect(validateManifest(sts, version)).toEqual([
      'StatefulSet/db: /spec/template/spec/containers/0/bogus: unknown field',
    ]);
  });

  test('reports unknown fields in metadata and at the top level', () => {
    const cm: any = configMap();
    cm.metadata.label = labels;
    cm.spec = {};
    expect(validateManifest(cm, version).sort()).toEqual([
      'ConfigMap/db-config: /metadata/label: unknown field',
      'ConfigMap/db-config: /spec: unknown field',
    ]);
  });

  test('reports a missing required field', () => {
    const deploy: any = deployment();
    delete deploy.spec.template.spec.containers[0].name;
    expect(validateManifest(deploy, version)).toEqual([
      'Deployment/pooler: /spec/template/spec/containers/0/name: required field missing',
    ]);
  });

  test('reports a wrong type', () => {
    const deploy: any = deployment();
    deploy.spec.replicas = '3';
    expect(validateManifest(deploy, version)).toEqual(['Deployment/pooler: /spec/replicas: must be integer']);
  });

  test('reports int32 overflow and a value matching no IntOrString branch', () => {
    const svc: any = service();
    svc.spec.ports[0].port = 2 ** 31;
    svc.spec.ports[0].targetPort = true;
    expect(validateManifest(svc, version)).toEqual([
      'Service/db: /spec/ports/0/port: must match format "int32"',
      'Service/db: /spec/ports/0/targetPort: must be string or must be integer',
    ]);
  });

  test('reports an unknown kind instead of passing it', () => {
    const errors = validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }, version);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^Widget\/w: \/: unknown apiVersion\/kind example\.com\/v1 Widget/);
  });

  test('reports a known kind under the wrong apiVersion', () => {
    const deploy = { ...deployment(), apiVersion: 'apps/v1beta1' };
    expect(validateManifest(deploy, version)[0]).toMatch(/unknown apiVersion\/kind apps\/v1beta1 Deployment/);
  });

  test('reports an object without a name', () => {
    const cm: any = configMap();
    delete cm.metadata.name;
    expect(validateManifest(cm, version)).toEqual(['ConfigMap/<no name>: /metadata/name: required field missing']);
  });

  test('reports an unknown field in a custom resource spec', () => {
    const sm: any = serviceMonitor();
    sm.spec.scrapeIntervall = '30s';
    sm.spec.endpoints[0].portt = 'metrics';
    expect(validateManifest(sm, version).sort()).toEqual([
      'ServiceMonitor/db: /spec/endpoints/0/portt: unknown field',
      'ServiceMonitor/db: /spec/scrapeIntervall: unknown field',
    ]);
  });

  test('validates custom resource metadata as ObjectMeta', () => {
    const sm: any = serviceMonitor();
    sm.metadata.labelz = {};
    expect(validateManifest(sm, version)).toEqual(['ServiceMonitor/db: /metadata/labelz: unknown field']);
  });

  test('applies Go-style inline regex flags from CRD patterns', () => {
    const rule = (strategy: string) => ({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: 'db' },
      spec: { groups: [{ name: 'db', partial_response_strategy: strategy, rules: [{ alert: 'Down', expr: 'up == 0' }] }] },
    });
    expect(validateManifest(rule('Warn'), version)).toEqual([]);
    expect(validateManifest(rule('ignore'), version)).toEqual([
      'PrometheusRule/db: /spec/groups/0/partial_response_strategy: must match pattern "^(?i)(abort|warn)?$"',
    ]);
  });

  test('reports a missing required custom resource field', () => {
    const sm: any = serviceMonitor();
    delete sm.spec.selector;
    expect(validateManifest(sm, version)).toEqual(['ServiceMonitor/db: /spec/selector: required field missing']);
  });
});

describe('validateManifests', () => {
  test('concatenates errors of every object', () => {
    const bad: any = pdb();
    bad.spec.minAvailable = '50%';
    bad.spec.maxUnavail = 1;
    expect(validateManifests([deployment(), bad, 'nope'], 'v1.36.0')).toEqual([
      'PodDisruptionBudget/db: /spec/maxUnavail: unknown field',
      '<no kind>/<no name>: /: manifest must be an object',
    ]);
  });
});
