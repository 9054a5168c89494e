/**
 * Secure by default, proven: every pod of every example and overlay chart passes the Pod
 * Security Standards' restricted profile (v1.27), and Polaris' checks find no danger; each
 * Polaris warning that remains is listed below with its count and why it is accepted, and the
 * test checks that every finding is the case its justification describes.
 */
import { App, Testing, Yaml } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { buildExamples } from '../examples/main';
import {
  BASELINE_CAPABILITIES, BASELINE_CONTROLS, PodSecurityFinding, PodTemplate, RESTRICTED_CONTROLS, checkPodSecurity, podTemplatesOf,
} from './support/pod-security';
import { PolarisResult, loadPolaris, runPolaris, templateGo } from './support/polaris';

/** Each example chart's objects, parsed back from the YAML `cdk8s synth` writes. */
function synthExamples(): { [chart: string]: any[] } {
  const app: App = Testing.app();
  buildExamples(app);
  const charts: { [chart: string]: any[] } = {};
  for (const chart of app.charts) {
    charts[chart.node.id] = parseAllDocuments(Yaml.stringify(...chart.toJson())).map((doc) => doc.toJSON());
  }
  return charts;
}

const examples = synthExamples();
const chartIds = Object.keys(examples);
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

test('the examples include the dev, prod and team overlay charts', () => {
  expect(chartIds).toEqual(expect.arrayContaining(['orders-dev', 'orders-prod', 'orders-analytics']));
});

// =============================================================================================
// Pod Security Standards

describe('Pod Security Standards, restricted profile (v1.27)', () => {
  test.each(chartIds)('every pod of example %s passes with no finding', (chart) => {
    const pods = podTemplatesOf(examples[chart]);
    expect(pods.length).toBeGreaterThan(0);
    const findings = pods.flatMap(({ kind, name, path, template }) => checkPodSecurity(template, 'restricted')
      .map((f) => `${kind}/${name} ${path}: ${f.control} (${f.level}) at ${f.path}: ${f.message}`));
    expect(findings).toEqual([]);
  });

  test('every pod template kind of the examples is one the checks read', () => {
    const kinds = new Set(Object.values(examples).flat().filter((o) => o.spec?.template?.spec || o.spec?.jobTemplate).map((o) => o.kind));
    const read = new Set(Object.values(examples).flatMap((objects) => podTemplatesOf(objects).map((p) => p.kind)));
    expect([...kinds].sort()).toEqual([...read].sort());
  });

  // A pod that passes restricted, and one deliberately bad change per rule.
  const container = (name: string): any => ({
    name,
    image: 'example/app:1.0',
    ports: [{ containerPort: 8080 }],
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
  });
  const goodPod = (): PodTemplate & { metadata: any; spec: any } => ({
    metadata: { annotations: { 'container.apparmor.security.beta.kubernetes.io/app': 'runtime/default' } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' }, sysctls: [{ name: 'net.ipv4.ip_local_port_range', value: '1024 65535' }] },
      initContainers: [container('init')],
      containers: [container('app'), container('sidecar')],
      volumes: [
        { name: 'tmp', emptyDir: {} },
        { name: 'config', configMap: { name: 'config' } },
        { name: 'creds', projected: { sources: [{ secret: { name: 'creds' } }] } },
        { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
      ],
    },
  });

  test('the good pod passes, and each allowed value the profile names is allowed', () => {
    expect(checkPodSecurity(goodPod())).toEqual([]);
    const pod = goodPod();
    pod.spec.containers[0].securityContext.capabilities.add = ['NET_BIND_SERVICE'];
    pod.spec.containers[0].securityContext.seccompProfile = { type: 'Localhost', localhostProfile: 'profiles/app.json' };
    pod.spec.containers[0].securityContext.seLinuxOptions = { type: 'container_t', level: 's0:c1,c2' };
    pod.spec.containers[0].securityContext.procMount = 'Default';
    pod.spec.containers[0].ports[0].hostPort = 0;
    pod.metadata.annotations['container.apparmor.security.beta.kubernetes.io/sidecar'] = 'localhost/k8s-apparmor';
    pod.spec.volumes.push({ name: 'csi', csi: { driver: 'x' } }, { name: 'dapi', downwardAPI: { items: [] } },
      { name: 'eph', ephemeral: { volumeClaimTemplate: { spec: {} } } }, { name: 's', secret: { secretName: 's' } });
    expect(checkPodSecurity(pod)).toEqual([]);
  });

  test('runAsNonRoot and seccomp may be set on every container instead of the pod', () => {
    const pod = goodPod();
    delete pod.spec.securityContext.runAsNonRoot;
    delete pod.spec.securityContext.seccompProfile;
    for (const c of [...pod.spec.initContainers, ...pod.spec.containers]) {
      c.securityContext.runAsNonRoot = true;
      c.securityContext.seccompProfile = { type: 'RuntimeDefault' };
    }
    expect(checkPodSecurity(pod)).toEqual([]);
  });

  type Bad = [string, (pod: any) => void, Array<Pick<PodSecurityFinding, 'control' | 'level' | 'path'>>];
  const BAD: Bad[] = [
    ['pod hostProcess', (p) => { p.spec.securityContext.windowsOptions = { hostProcess: true }; },
      [{ control: 'HostProcess', level: 'baseline', path: 'spec.securityContext.windowsOptions.hostProcess' }]],
    ['container hostProcess', (p) => { p.spec.containers[1].securityContext.windowsOptions = { hostProcess: true }; },
      [{ control: 'HostProcess', level: 'baseline', path: 'spec.containers[1].securityContext.windowsOptions.hostProcess' }]],
    ['hostNetwork', (p) => { p.spec.hostNetwork = true; }, [{ control: 'Host Namespaces', level: 'baseline', path: 'spec.hostNetwork' }]],
    ['hostPID', (p) => { p.spec.hostPID = true; }, [{ control: 'Host Namespaces', level: 'baseline', path: 'spec.hostPID' }]],
    ['hostIPC', (p) => { p.spec.hostIPC = true; }, [{ control: 'Host Namespaces', level: 'baseline', path: 'spec.hostIPC' }]],
    ['privileged init container', (p) => { p.spec.initContainers[0].securityContext.privileged = true; },
      [{ control: 'Privileged Containers', level: 'baseline', path: 'spec.initContainers[0].securityContext.privileged' }]],
    ['privileged ephemeral container', (p) => { p.spec.ephemeralContainers = [{ ...container('debug'), securityContext: { ...container('debug').securityContext, privileged: true } }]; },
      [{ control: 'Privileged Containers', level: 'baseline', path: 'spec.ephemeralContainers[0].securityContext.privileged' }]],
    ['SYS_ADMIN added', (p) => { p.spec.containers[0].securityContext.capabilities.add = ['SYS_ADMIN']; }, [
      { control: 'Capabilities', level: 'baseline', path: 'spec.containers[0].securityContext.capabilities.add' },
      { control: 'Capabilities', level: 'restricted', path: 'spec.containers[0].securityContext.capabilities.add' },
    ]],
    ['hostPath volume', (p) => { p.spec.volumes.push({ name: 'host', hostPath: { path: '/' } }); }, [
      { control: 'HostPath Volumes', level: 'baseline', path: 'spec.volumes[4].hostPath' },
      { control: 'Volume Types', level: 'restricted', path: 'spec.volumes[4].hostPath' },
    ]],
    ['hostPort', (p) => { p.spec.containers[0].ports[0].hostPort = 8080; },
      [{ control: 'Host Ports', level: 'baseline', path: 'spec.containers[0].ports[0].hostPort' }]],
    ['AppArmor unconfined', (p) => { p.metadata.annotations['container.apparmor.security.beta.kubernetes.io/app'] = 'unconfined'; },
      [{ control: 'AppArmor', level: 'baseline', path: 'metadata.annotations["container.apparmor.security.beta.kubernetes.io/app"]' }]],
    ['SELinux type', (p) => { p.spec.securityContext.seLinuxOptions = { type: 'spc_t' }; },
      [{ control: 'SELinux', level: 'baseline', path: 'spec.securityContext.seLinuxOptions.type' }]],
    ['SELinux user and role', (p) => { p.spec.containers[0].securityContext.seLinuxOptions = { user: 'system_u', role: 'system_r' }; }, [
      { control: 'SELinux', level: 'baseline', path: 'spec.containers[0].securityContext.seLinuxOptions.user' },
      { control: 'SELinux', level: 'baseline', path: 'spec.containers[0].securityContext.seLinuxOptions.role' },
    ]],
    ['procMount Unmasked', (p) => { p.spec.containers[0].securityContext.procMount = 'Unmasked'; },
      [{ control: '/proc Mount Type', level: 'baseline', path: 'spec.containers[0].securityContext.procMount' }]],
    ['container seccomp Unconfined', (p) => { p.spec.containers[0].securityContext.seccompProfile = { type: 'Unconfined' }; }, [
      { control: 'Seccomp', level: 'baseline', path: 'spec.containers[0].securityContext.seccompProfile.type' },
      { control: 'Seccomp', level: 'restricted', path: 'spec.containers[0].securityContext.seccompProfile.type' },
    ]],
    ['legacy seccomp annotation unconfined', (p) => { p.metadata.annotations['seccomp.security.alpha.kubernetes.io/pod'] = 'unconfined'; },
      [{ control: 'Seccomp', level: 'baseline', path: 'metadata.annotations["seccomp.security.alpha.kubernetes.io/pod"]' }]],
    ['unsafe sysctl', (p) => { p.spec.securityContext.sysctls.push({ name: 'kernel.msgmax', value: '65536' }); },
      [{ control: 'Sysctls', level: 'baseline', path: 'spec.securityContext.sysctls[1].name' }]],
    ['nfs volume', (p) => { p.spec.volumes.push({ name: 'share', nfs: { server: 'nfs', path: '/' } }); },
      [{ control: 'Volume Types', level: 'restricted', path: 'spec.volumes[4].nfs' }]],
    ['allowPrivilegeEscalation unset on an init container', (p) => { delete p.spec.initContainers[0].securityContext.allowPrivilegeEscalation; },
      [{ control: 'Privilege Escalation', level: 'restricted', path: 'spec.initContainers[0].securityContext.allowPrivilegeEscalation' }]],
    ['allowPrivilegeEscalation true', (p) => { p.spec.containers[1].securityContext.allowPrivilegeEscalation = true; },
      [{ control: 'Privilege Escalation', level: 'restricted', path: 'spec.containers[1].securityContext.allowPrivilegeEscalation' }]],
    ['runAsNonRoot unset on the pod and a container', (p) => {
      delete p.spec.securityContext.runAsNonRoot;
      for (const c of [...p.spec.initContainers, p.spec.containers[0]]) c.securityContext.runAsNonRoot = true;
    }, [{ control: 'Running as Non-root', level: 'restricted', path: 'spec.containers[1].securityContext.runAsNonRoot' }]],
    ['runAsNonRoot false on a container', (p) => { p.spec.containers[0].securityContext.runAsNonRoot = false; },
      [{ control: 'Running as Non-root', level: 'restricted', path: 'spec.containers[0].securityContext.runAsNonRoot' }]],
    ['runAsNonRoot false on the pod', (p) => {
      p.spec.securityContext.runAsNonRoot = false;
      for (const c of [...p.spec.initContainers, ...p.spec.containers]) c.securityContext.runAsNonRoot = true;
    }, [{ control: 'Running as Non-root', level: 'restricted', path: 'spec.securityContext.runAsNonRoot' }]],
    ['runAsUser 0 on a container', (p) => { p.spec.containers[0].securityContext.runAsUser = 0; },
      [{ control: 'Running as Non-root user', level: 'restricted', path: 'spec.containers[0].securityContext.runAsUser' }]],
    ['runAsUser 0 on the pod', (p) => { p.spec.securityContext.runAsUser = 0; },
      [{ control: 'Running as Non-root user', level: 'restricted', path: 'spec.securityContext.runAsUser' }]],
    ['no seccomp profile on the pod or an init container', (p) => {
      delete p.spec.securityContext.seccompProfile;
      for (const c of p.spec.containers) c.securityContext.seccompProfile = { type: 'RuntimeDefault' };
    }, [{ control: 'Seccomp', level: 'restricted', path: 'spec.initContainers[0].securityContext.seccompProfile.type' }]],
    ['capabilities not dropped', (p) => { p.spec.containers[0].securityContext.capabilities.drop = ['NET_RAW']; },
      [{ control: 'Capabilities', level: 'restricted', path: 'spec.containers[0].securityContext.capabilities.drop' }]],
    ['a baseline capability added (CHOWN)', (p) => { p.spec.initContainers[0].securityContext.capabilities.add = ['CHOWN']; },
      [{ control: 'Capabilities', level: 'restricted', path: 'spec.initContainers[0].securityContext.capabilities.add' }]],
  ];

  test.each(BAD)('a pod with %s is found, by exactly the rule it breaks', (_label, mutate, expected) => {
    const pod = goodPod();
    mutate(pod);
    const found = checkPodSecurity(pod).map(({ control, level, path }) => ({ control, level, path }));
    expect(found).toEqual(expected);
    expect(checkPodSecurity(pod, 'baseline').map(({ control, level, path }) => ({ control, level, path })))
      .toEqual(expected.filter((f) => f.level === 'baseline'));
  });

  test('every control has a bad pod above', () => {
    // Each control's findings carry its name; every control must have been seen.
    const seen = new Set(BAD.flatMap(([, , expected]) => expected.map((f) => `${f.control} (${f.level})`)));
    const controls = [...BASELINE_CONTROLS.map((c) => `${c.id.replace(/ \(baseline\)$/, '')} (baseline)`),
      ...RESTRICTED_CONTROLS.map((c) => `${c.id.replace(/ \(restricted\)$/, '')} (restricted)`)];
    expect(controls.filter((c) => !seen.has(c))).toEqual([]);
    expect(BASELINE_CAPABILITIES).toContain('CHOWN');
  });
});

// =============================================================================================
// Polaris

const polaris = loadPolaris();

/**
 * Checks not evaluated, each with its reason. Every other check in test/fixtures/polaris
 * runs, Go-templated ones included (test/support/polaris.ts executes their templates).
 */
const SKIPPED: { [check: string]: string } = {
  pdbMinAvailableGreaterThanHPAMinReplicas: 'has no schema: Polaris implements it in Go (comparing a PodDisruptionBudget with a '
    + 'HorizontalPodAutoscaler), and no example renders a HorizontalPodAutoscaler (asserted below), so it has nothing to compare',
};

interface Finding extends PolarisResult { readonly chart: string }

const polarisRuns = chartIds.map((chart) => ({ chart, run: runPolaris(polaris, examples[chart], Object.keys(SKIPPED)) }));
const allResults: Finding[] = polarisRuns.flatMap(({ chart, run }) => run.results.map((r) => ({ ...r, chart })));
const findings = allResults.filter((r) => !r.passed);

const objectOf = (f: Finding) => examples[f.chart].find((o) => o.kind === f.kind && o.metadata?.name === f.name);
const templateOf = (f: Finding) => {
  const obj = objectOf(f);
  return obj.kind === 'CronJob' ? obj.spec.jobTemplate.spec.template : obj.spec.template;
};
const containerOf = (f: Finding) => {
  const spec = templateOf(f).spec;
  const [list, name] = f.container!.startsWith('init:') ? ['initContainers', f.container!.slice(5)] : ['containers', f.container!];
  return spec[list].find((c: any) => c.name === name);
};
const matches = (selector: any, labels: any) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

/** Does a NetworkPolicy of the pod's namespace select it (by Kubernetes' rules), restricting ingress and egress? */
function networkPoliciesSelecting(f: Finding): any[] {
  const obj = objectOf(f);
  const labels = templateOf(f).metadata?.labels ?? {};
  return examples[f.chart].filter((np) => np.kind === 'NetworkPolicy' && np.metadata.namespace === obj.metadata.namespace
    && !np.spec.podSelector.matchExpressions && matches(np.spec.podSelector.matchLabels, labels)
    && ['Ingress', 'Egress'].every((t) => np.spec.policyTypes?.includes(t)));
}

/** A finding in words, with where its schema failed; env entries are named. */
function describeFinding(f: Finding): string {
  const where = (f.details ?? []).map((d) => {
    const env = /^\/env\/(\d+)/.exec(d);
    return env && f.container ? `${d} (${containerOf(f).env[Number(env[1])].name})` : d;
  });
  return `${f.check}: ${f.chart} ${f.kind}/${f.name}${f.container ? ` container ${f.container}` : ''}: ${f.message}`
    + (where.length ? ` at ${where.join(', ')}` : '');
}

const PROD_CHARTS = ['orders-prod', 'orders-analytics'];

/**
 * The warnings Polaris still finds, with their total count over every example and why they
 * are accepted; `applies` checks each finding is the case the justification describes.
 */
const WARNINGS: Array<{ check: string; count: number; justification: string; applies: (f: Finding) => boolean }> = [
  {
    check: 'pullPolicyNotAlways',
    // With the certificate init container of every pod with a self-signed certificate.
    count: 164,
    justification: 'every image is pinned to a version tag (a prop with a pinned default); IfNotPresent starts pods without '
      + 'a registry round trip, so a registry outage cannot stop a database pod from restarting',
    applies: (f) => {
      const c = containerOf(f);
      return c.imagePullPolicy === 'IfNotPresent' && /^[^:]+:(?!latest$)[^:]*\d[^:]*$/.test(c.image);
    },
  },
  {
    check: 'missingNetworkPolicy',
    count: 33,
    justification: 'a NetworkPolicy does select every pod, for ingress and egress (checked here with Kubernetes\' label '
      + 'matching); Polaris\' schema takes `oneOf` the pod\'s labels, so a podSelector that matches on more than one '
      + 'label (name and instance, for a stable selector) fails it. A selector on one label would pass but select wider',
    applies: (f) => networkPoliciesSelecting(f).length > 0
      && networkPoliciesSelecting(f).every((np) => Object.keys(np.spec.podSelector.matchLabels).length > 1),
  },
  {
    check: 'readinessProbeMissing',
    count: 40,
    justification: 'only the metrics exporter sidecars, the plain mode\'s settings agents and the pgBadger report sidecars have '
      + 'no readiness probe, by design: a failing sidecar readiness probe would take the database or proxy pod out of its '
      + 'Service because its sidecar hiccups',
    applies: (f) => /(-exporter|^settings-agent|^pgbadger)$/.test(f.container ?? '') && !!templateOf(f).spec.containers.find((c: any) => c.readinessProbe),
  },
  {
    check: 'livenessProbeMissing',
    count: 22,
    justification: 'the plain mode\'s settings agent and the pgBadger report sidecar (one each per instance pod) have none: bash '
      + 'loops that sleep between runs (the agent waits at most a connection timeout, 3 s, and a query on system views per '
      + 'action; a pgBadger run ends by itself), so a probe would find nothing to restart',
    applies: (f) => ['settings-agent', 'pgbadger'].includes(f.container ?? '') && objectOf(f).kind === 'StatefulSet',
  },
  {
    check: 'priorityClassNotSet',
    count: 35,
    justification: 'PriorityClasses are cluster objects the library cannot assume exist; placement.priorityClassName sets one, '
      + 'as the prod overlays do (orders-prod, orders-analytics pass)',
    applies: (f) => !PROD_CHARTS.includes(f.chart),
  },
  {
    check: 'metadataAndInstanceMismatched',
    count: 27,
    justification: 'a cluster is two StatefulSets, <cluster>-primary and <cluster>-replica, of one instance, and its '
      + 'backups add <cluster>-repo-host and CronJobs <cluster>-backup-repo<N>-<type>: app.kubernetes.io/instance names '
      + 'the cluster, which the Services and NetworkPolicies select by',
    applies: (f) => {
      const obj = objectOf(f);
      const instance = obj.metadata.labels['app.kubernetes.io/instance'];
      return (obj.kind === 'StatefulSet' && [`${instance}-primary`, `${instance}-replica`, `${instance}-repo-host`].includes(obj.metadata.name))
        || (obj.kind === 'CronJob' && new RegExp(`^${instance}-backup-repo[1-4]-(full|diff|incr)$`).test(obj.metadata.name));
    },
  },
  {
    check: 'topologySpreadConstraint',
    count: 2,
    justification: 'the backup repository host is one pod, which has nothing to spread from',
    applies: (f) => objectOf(f).kind === 'StatefulSet' && /-repo-host$/.test(objectOf(f).metadata.name) && objectOf(f).spec.replicas === 1,
  },
  {
    check: 'automountServiceAccountToken',
    count: 2,
    justification: 'only the HA mode\'s Patroni pods mount a token: Patroni keeps the leader lock in ConfigMaps through the API '
      + 'server, with a namespaced Role of just the verbs it uses (test/high-availability.test.ts pins them); every other pod mounts none',
    applies: (f) => objectOf(f).kind === 'StatefulSet' && /\/patroni-start\.sh$/.test(templateOf(f).spec.containers[0].command[0]),
  },
  {
    check: 'deploymentMissingReplicas',
    count: 2,
    justification: 'the dev overlay asks for one replica of each proxy (balancer.replicas, pooler.replicas: 1)',
    applies: (f) => f.chart === 'orders-dev' && objectOf(f).spec.replicas === 1,
  },
  {
    check: 'missingPodDisruptionBudget',
    count: 2,
    justification: 'a PodDisruptionBudget is rendered from 2 replicas up; the dev overlay\'s single-replica proxies have '
      + 'none, as a budget on one pod either blocks node drains or allows everything',
    applies: (f) => f.chart === 'orders-dev' && objectOf(f).spec.replicas === 1,
  },
];

describe('Polaris checks (test/fixtures/polaris)', () => {
  test('every check is evaluated, or skipped with its reason', () => {
    const unevaluable = polaris.checks.filter((c) => !c.schemaTemplate).map((c) => c.id);
    expect(unevaluable.sort()).toEqual(Object.keys(SKIPPED).sort());
    expect(Object.values(examples).flat().filter((o) => o.kind === 'HorizontalPodAutoscaler')).toEqual([]);
  });

  test('the examples give every workload, pod and container check something to check', () => {
    const ran = new Set(allResults.map((r) => r.check));
    const workloadChecks = polaris.checks.filter((c) => ['Controller', 'PodSpec', 'PodTemplate', 'Container'].includes(c.target)
      && !SKIPPED[c.id]).map((c) => c.id);
    expect(workloadChecks.filter((id) => !ran.has(id))).toEqual([]);
    for (const kind of ['ConfigMap', 'PodDisruptionBudget']) {
      expect(allResults.some((r) => r.kind === kind)).toBe(true);
    }
  });

  test('no example has a danger finding', () => {
    const danger = findings.filter((f) => f.severity === 'danger').map(describeFinding);
    expect(danger).toEqual([]);
  });

  test('the warnings are exactly those of the table, with their counts', () => {
    const counts: { [check: string]: number } = {};
    for (const f of findings.filter((x) => x.severity === 'warning')) counts[f.check] = (counts[f.check] ?? 0) + 1;
    expect(counts).toEqual(Object.fromEntries(WARNINGS.map((w) => [w.check, w.count])));
  });

  test('every warning is the case its justification describes', () => {
    const unjustified = findings.filter((f) => f.severity === 'warning')
      .filter((f) => !WARNINGS.find((w) => w.check === f.check)?.applies(f))
      .map((f) => `${f.check}: ${f.chart} ${f.kind}/${f.name}${f.container ? ` container ${f.container}` : ''}`);
    expect(unjustified).toEqual([]);
  });

  test('no exemption hides a finding', () => {
    expect(polarisRuns.flatMap(({ chart, run }) => run.exempted.map((e) => ({ chart, ...e })))).toEqual([]);
  });

  afterAll(() => {
    const rows = polaris.checks.map((c) => {
      const count = findings.filter((f) => f.check === c.id).length;
      const ran = allResults.filter((r) => r.check === c.id).length;
      const why = SKIPPED[c.id] ? `skipped: ${SKIPPED[c.id]}` : WARNINGS.find((w) => w.check === c.id)?.justification
        ?? (ran ? '' : 'nothing of its target kind is rendered');
      return { check: c.id, severity: c.severity, evaluated: ran, findings: count, justification: why };
    }).sort((a, b) => b.findings - a.findings || a.check.localeCompare(b.check));
    const lines = rows.map((r) => `${r.check.padEnd(41)} ${r.severity.padEnd(8)} ${String(r.evaluated).padStart(4)} ${String(r.findings).padStart(4)}  ${r.justification}`);
    console.log(['Polaris over every example (evaluated = subjects checked, findings = failed):',
      `${'check'.padEnd(41)} ${'severity'.padEnd(8)} eval find  justification`, ...lines].join('\n'));
  });
});

// ---------------------------------------------------------------------------------------------
// Polaris: each check fires on a deliberately bad object, and a good set passes them all.

const NS = 'shop';
const LABELS = { 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/instance': 'web' };
const RBAC = 'rbac.authorization.k8s.io';

function goodContainer(name: string, probes = true): any {
  return {
    name,
    image: 'nginx:1.27.0',
    imagePullPolicy: 'Always',
    ports: [{ containerPort: 8080, name: 'http' }],
    resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '64Mi' } },
    ...(probes ? { livenessProbe: { httpGet: { path: '/', port: 'http' } }, readinessProbe: { httpGet: { path: '/', port: 'http' } } } : {}),
    securityContext: {
      allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

function goodPodSpec(): any {
  return {
    automountServiceAccountToken: false,
    serviceAccountName: 'web',
    priorityClassName: 'high',
    securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: LABELS } }],
    initContainers: [goodContainer('init', false)],
    containers: [goodContainer('web')],
    volumes: [{ name: 'tmp', emptyDir: {} }],
  };
}

/** Objects that pass every check: a Deployment with what it needs around it, a CronJob, and one of each other kind. */
function goodSet(): any[] {
  const cronLabels = { 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/component': 'cleanup' };
  const cronSpec = goodPodSpec();
  cronSpec.containers = [goodContainer('cleanup', false)];
  delete cronSpec.topologySpreadConstraints;
  return [
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: NS, labels: LABELS },
      spec: { replicas: 3, selector: { matchLabels: LABELS }, template: { metadata: { labels: LABELS }, spec: goodPodSpec() } },
    },
    {
      apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'cleanup', namespace: NS, labels: { 'app.kubernetes.io/instance': 'cleanup' } },
      spec: { schedule: '@daily', jobTemplate: { spec: { template: { metadata: { labels: cronLabels }, spec: { ...cronSpec, restartPolicy: 'Never' } } } } },
    },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: NS }, automountServiceAccountToken: false },
    { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web', namespace: NS }, spec: { maxUnavailable: 1, selector: { matchLabels: LABELS } } },
    {
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'web', namespace: NS },
      spec: {
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'web' } },
        ingress: [{ from: [{ podSelector: {} }] }], egress: [{ to: [{ podSelector: {} }] }], policyTypes: ['Ingress', 'Egress'],
      },
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-config', namespace: NS }, data: { 'nginx.conf': 'listen 8080;' } },
    {
      apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', namespace: NS },
      spec: { tls: [{ hosts: ['web.example.com'], secretName: 'web-tls' }], rules: [] },
    },
    {
      apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web', namespace: NS },
      spec: { minReplicas: 2, maxReplicas: 5, scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' } },
    },
    { apiVersion: `${RBAC}/v1`, kind: 'Role', metadata: { name: 'reader', namespace: NS }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] },
    {
      apiVersion: `${RBAC}/v1`, kind: 'RoleBinding', metadata: { name: 'reader', namespace: NS },
      roleRef: { apiGroup: RBAC, kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'web', namespace: NS }],
    },
    { apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name: 'node-reader' }, rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }] },
    {
      apiVersion: `${RBAC}/v1`, kind: 'ClusterRoleBinding', metadata: { name: 'node-reader' },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'node-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'web', namespace: NS }],
    },
  ];
}

const find = (objs: any[], kind: string, name?: string) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name));
const deployment = (objs: any[]) => find(objs, 'Deployment');
const podSpec = (objs: any[]) => deployment(objs).spec.template.spec;
const web = (objs: any[]) => podSpec(objs).containers[0];
const execRule = { apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] };

/** One deliberately bad change per check, which that check must find. */
const POLARIS_BAD: { [check: string]: (objs: any[]) => void } = {
  automountServiceAccountToken: (o) => { podSpec(o).automountServiceAccountToken = true; },
  clusterrolePodExecAttach: (o) => { find(o, 'ClusterRole').rules.push(execRule); },
  clusterrolebindingClusterAdmin: (o) => { find(o, 'ClusterRoleBinding').roleRef.name = 'cluster-admin'; },
  clusterrolebindingPodExecAttach: (o) => { find(o, 'ClusterRole').rules.push(execRule); },
  cpuLimitsMissing: (o) => { delete web(o).resources.limits.cpu; },
  cpuRequestsMissing: (o) => { delete web(o).resources.requests.cpu; },
  dangerousCapabilities: (o) => { web(o).securityContext.capabilities.add = ['SYS_ADMIN']; },
  deploymentMissingReplicas: (o) => { deployment(o).spec.replicas = 1; },
  hostIPCSet: (o) => { podSpec(o).hostIPC = true; },
  hostNetworkSet: (o) => { podSpec(o).hostNetwork = true; },
  hostPIDSet: (o) => { podSpec(o).hostPID = true; },
  hostPathSet: (o) => { podSpec(o).volumes.push({ name: 'host', hostPath: { path: '/var/run' } }); },
  hostPortSet: (o) => { web(o).ports[0].hostPort = 8080; },
  hostProcess: (o) => { web(o).securityContext.windowsOptions = { hostProcess: true }; },
  hpaMaxAvailability: (o) => { find(o, 'HorizontalPodAutoscaler').spec.maxReplicas = 2; },
  hpaMinAvailability: (o) => { find(o, 'HorizontalPodAutoscaler').spec.minReplicas = 1; },
  insecureCapabilities: (o) => { web(o).securityContext.capabilities.drop = ['NET_RAW']; },
  linuxHardening: (o) => {
    delete podSpec(o).securityContext.seccompProfile;
    delete web(o).securityContext.seccompProfile;
    web(o).securityContext.capabilities.drop = [];
  },
  livenessProbeMissing: (o) => { delete web(o).livenessProbe; },
  memoryLimitsMissing: (o) => { delete web(o).resources.limits.memory; },
  memoryRequestsMissing: (o) => { delete web(o).resources.requests.memory; },
  metadataAndInstanceMismatched: (o) => { deployment(o).metadata.labels = { ...LABELS, 'app.kubernetes.io/instance': 'web-blue' }; },
  missingNetworkPolicy: (o) => { o.splice(o.indexOf(find(o, 'NetworkPolicy')), 1); },
  missingPodDisruptionBudget: (o) => { o.splice(o.indexOf(find(o, 'PodDisruptionBudget')), 1); },
  notReadOnlyRootFilesystem: (o) => { web(o).securityContext.readOnlyRootFilesystem = false; },
  pdbDisruptionsIsZero: (o) => { find(o, 'PodDisruptionBudget').spec.maxUnavailable = 0; },
  priorityClassNotSet: (o) => { delete podSpec(o).priorityClassName; },
  privilegeEscalationAllowed: (o) => { web(o).securityContext.allowPrivilegeEscalation = true; },
  procMount: (o) => { web(o).securityContext.procMount = 'Unmasked'; },
  pullPolicyNotAlways: (o) => { web(o).imagePullPolicy = 'IfNotPresent'; },
  readinessProbeMissing: (o) => { delete web(o).readinessProbe; },
  rolePodExecAttach: (o) => { find(o, 'Role').rules.push(execRule); },
  rolebindingClusterAdminClusterRole: (o) => { find(o, 'RoleBinding').roleRef = { apiGroup: RBAC, kind: 'ClusterRole', name: 'cluster-admin' }; },
  rolebindingClusterAdminRole: (o) => { find(o, 'Role').rules.push({ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }); },
  rolebindingClusterRolePodExecAttach: (o) => {
    find(o, 'ClusterRole').rules.push(execRule);
    find(o, 'RoleBinding').roleRef = { apiGroup: RBAC, kind: 'ClusterRole', name: 'node-reader' };
  },
  rolebindingRolePodExecAttach: (o) => { find(o, 'Role').rules.push(execRule); },
  runAsPrivileged: (o) => { web(o).securityContext.privileged = true; },
  runAsRootAllowed: (o) => { web(o).securityContext.runAsNonRoot = false; },
  sensitiveConfigmapContent: (o) => { find(o, 'ConfigMap').data['db-password'] = 'hunter2'; },
  sensitiveContainerEnvVar: (o) => { web(o).env = [{ name: 'DB_PASSWORD', value: 'hunter2' }]; },
  tagNotSpecified: (o) => { web(o).image = 'nginx:latest'; },
  tlsSettingsMissing: (o) => { delete find(o, 'Ingress').spec.tls; },
  topologySpreadConstraint: (o) => { delete podSpec(o).topologySpreadConstraints; },
};

const failuresOf = (objs: any[]) => runPolaris(polaris, objs, Object.keys(SKIPPED)).results.filter((r) => !r.passed);

describe('Polaris checks find deliberately bad objects', () => {
  test('the good set passes every check, and every evaluated check runs on it', () => {
    const run = runPolaris(polaris, goodSet(), Object.keys(SKIPPED));
    expect(run.results.filter((r) => !r.passed).map((r) => `${r.check} ${r.kind}/${r.name} ${r.container ?? ''}`)).toEqual([]);
    const evaluated = polaris.checks.filter((c) => !SKIPPED[c.id]).map((c) => c.id);
    expect(evaluated.filter((id) => !run.results.some((r) => r.check === id))).toEqual([]);
  });

  test('every evaluated check has a bad object below', () => {
    expect(Object.keys(POLARIS_BAD).sort()).toEqual(polaris.checks.filter((c) => !SKIPPED[c.id]).map((c) => c.id).sort());
  });

  test.each(Object.keys(POLARIS_BAD))('%s finds its bad object', (check) => {
    const objs = goodSet();
    POLARIS_BAD[check](objs);
    expect(failuresOf(objs).map((r) => r.check)).toContain(check);
  });

  test('container checks skip init containers where the check says so, and Job-like controllers where it says so', () => {
    // The good set's init container and CronJob container have no probes, yet pass: containers.exclude and controllers.exclude.
    const objs = goodSet();
    expect(failuresOf(objs)).toEqual([]);
    podSpec(objs).initContainers[0].securityContext.privileged = true; // init containers are still checked for the rest
    expect(failuresOf(objs).map((r) => `${r.check} ${r.container}`)).toEqual(['runAsPrivileged init:init']);
  });

  test('pod-level settings count for every container (schemaTarget PodSpec)', () => {
    const objs = goodSet();
    delete web(objs).securityContext.runAsNonRoot;
    expect(failuresOf(objs)).toEqual([]);
    podSpec(objs).securityContext.runAsNonRoot = false;
    delete podSpec(objs).securityContext.runAsUser;
    expect(failuresOf(objs).map((r) => r.check)).toEqual(['runAsRootAllowed']);
  });

  test('automountServiceAccountToken unset needs a ServiceAccount that turns it off', () => {
    const objs = goodSet();
    delete podSpec(objs).automountServiceAccountToken;
    expect(failuresOf(objs)).toEqual([]);
    find(objs, 'ServiceAccount').automountServiceAccountToken = true;
    expect(failuresOf(objs).map((r) => r.check)).toEqual(['automountServiceAccountToken']);
  });

  test('missingNetworkPolicy wants a NetworkPolicy matching exactly one pod label (Polaris\' oneOf)', () => {
    const objs = goodSet();
    find(objs, 'NetworkPolicy').spec.podSelector.matchLabels = LABELS;
    expect(failuresOf(objs).map((r) => `${r.check} ${r.kind}`)).toEqual(['missingNetworkPolicy Deployment']);
    find(objs, 'NetworkPolicy').metadata.namespace = 'elsewhere';
    find(objs, 'NetworkPolicy').spec.podSelector.matchLabels = { 'app.kubernetes.io/name': 'web' };
    expect(failuresOf(objs).map((r) => `${r.check} ${r.kind}`)).toEqual(['missingNetworkPolicy Deployment', 'missingNetworkPolicy CronJob']);
  });

  test('linuxHardening passes on an AppArmor annotation alone, read through the template', () => {
    const objs = goodSet();
    POLARIS_BAD.linuxHardening(objs);
    deployment(objs).spec.template.metadata.annotations = { 'container.apparmor.security.beta.kubernetes.io/web': 'runtime/default' };
    expect(failuresOf(objs).map((r) => r.check)).not.toContain('linuxHardening');
  });

  test('an exemption annotation exempts the object, and is reported', () => {
    const objs = goodSet();
    POLARIS_BAD.pullPolicyNotAlways(objs);
    deployment(objs).metadata.annotations = { 'polaris.fairwinds.com/pullPolicyNotAlways-exempt': 'true' };
    const run = runPolaris(polaris, objs, Object.keys(SKIPPED));
    expect(run.results.filter((r) => !r.passed)).toEqual([]);
    expect(run.exempted).toEqual([
      { check: 'pullPolicyNotAlways', kind: 'Deployment', name: 'web', container: 'init:init' },
      { check: 'pullPolicyNotAlways', kind: 'Deployment', name: 'web', container: 'web' },
    ]);
  });

  test('a check without a schema must be listed as skipped', () => {
    expect(() => runPolaris(polaris, goodSet())).toThrow(/pdbMinAvailableGreaterThanHPAMinReplicas has no schema/);
  });
});

describe('the Go template subset Polaris\' checks are written in', () => {
  test('reads fields, variables, conditions, ranges and functions as Go does', () => {
    const data = { a: { b: 'x', n: 2, t: true, m: { z: '1', y: '2' } }, list: ['p', 'q'] };
    expect(templateGo('{{ .a.b }}-{{ .a.missing }}-{{ .a.missing.deeper }}', data)).toBe('x-<no value>-<no value>');
    expect(templateGo('{{ $v := .a.b }}{{ if eq $v "x" }}yes{{ else }}no{{ end }}', data)).toBe('yes');
    expect(templateGo('{{ if not .a.missing }}unset{{ end }}{{ if or (not .a.t) (eq .a.b "x") }}!{{ end }}', data)).toBe('unset!');
    expect(templateGo('{{ range $k, $v := .a.m }}{{ $k }}={{ $v }};{{ end }}', data)).toBe('y=2;z=1;');
    expect(templateGo('{{ range $i, $v := .list }}{{ $i }}{{ $v }}{{ end }}{{ range .missing }}x{{ else }}none{{ end }}', data)).toBe('0p1qnone');
    expect(templateGo('{{ $f := false }}{{ if .a.t }}{{ $f = index .a "m" "z" }}{{ end }}{{ $f }}', data)).toBe('1');
    expect(templateGo('{{ print "a/" .a.b }} {{ hasPrefix .a.b "x" }} {{ .a.n }} {{ len .list }}', data)).toBe('a/x true 2 2');
    expect(templateGo('a  \n  {{- /* comment */ -}}  \n b {{- if .a.t }} c {{ end -}} d', data)).toBe('ab c d');
    expect(templateGo('{{ if and (ne .a.b "y") (not (hasPrefix .a.b "s")) }}ok{{ else if .a.t }}no{{ end }}', data)).toBe('ok');
    expect(templateGo('{{ if eq .a.b "y" }}1{{ else if .a.t }}2{{ else }}3{{ end }}', data)).toBe('2');
    expect(templateGo('{{ (index . "a").m.z }} {{ .a.b | print "p" }} {{ range .list }}{{ $.a.b }}{{ . }}{{ end }}', { ...data, a: { m: { z: 'q' }, b: 'x' } }))
      .toBe('q px xpxq');
  });

  test('throws on what it does not implement, rather than guessing', () => {
    expect(() => templateGo('{{ with .a }}{{ end }}', {})).toThrow(/not supported/);
    expect(() => templateGo('{{ upper .a }}', {})).toThrow(/not defined/);
    expect(() => templateGo('{{ .a }}', { a: { b: 1 } })).toThrow(/map is not supported/);
    expect(() => templateGo('{{ if .a }}', {})).toThrow(/missing end/);
    expect(() => templateGo('{{ eq .a true }}', { a: 'x' })).toThrow(/incompatible types/);
  });
});

test('a copy of an example object is not changed by the checks', () => {
  const before = clone(examples[chartIds[0]]);
  runPolaris(polaris, examples[chartIds[0]], Object.keys(SKIPPED));
  checkPodSecurity(podTemplatesOf(examples[chartIds[0]])[0].template);
  expect(examples[chartIds[0]]).toEqual(before);
});
