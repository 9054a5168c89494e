import { balancerFindings, ClusterObservations, clusterFindings, poolerFindings, Thresholds } from './evaluate';
import { ExpectedStack, expectedStack } from './expected-stack';
import { forwardSpecs, portForwards } from './port-forward';
import { Endpoint, Outcome, ProbeLogin, ProbeSettings, parseEndpoint, probeInstance, probeMetric, probePoolNodes, probePools, probeRecovery } from './probes';
import { exitCodeOf, statusJson, statusTable, worstStatus } from './status-render';
import { HealthStatus, StatusCheckOptions, StatusCredentials, StatusFinding, StatusReport } from './status-types';
import { SslMode } from '../core/tls';
import { KubeObject, parseManifests, readManifests } from '../testing/change-impact/manifests';

/** Every endpoint key the manifests define: instances, Services, proxies and exporters. */
export function statusTargets(stack: ExpectedStack): string[] {
  return [
    ...stack.clusters.flatMap((c) => [
      ...c.instances.flatMap((i) => [`pod/${i.pod}`, ...(i.exporter ? [`pod/${i.pod}:metrics`] : [])]),
      ...c.services.map((s) => `service/${s.name}`),
    ]),
    ...stack.proxies.flatMap((p) => [`service/${p.name}`, ...(p.exporter ? [`service/${p.name}:metrics`] : [])]),
  ];
}

/** Checks the options against the manifests' targets, forwards ports in the kubeconfig mode, then probes and evaluates. */
async function check(objects: KubeObject[], options: StatusCheckOptions): Promise<StatusReport> {
  const stack = expectedStack(objects);
  if (stack.clusters.length === 0 && stack.proxies.length === 0) {
    throw new Error('the manifests hold no PostgresStatefulCluster, PgBouncerPooler or PgpoolBalancer; give the directory cdk8s synth wrote');
  }
  const targets = statusTargets(stack);
  const unknown = Object.keys(options.endpoints).filter((key) => !targets.includes(key));
  if (unknown.length > 0) throw new Error(`endpoints ${unknown.join(', ')} match no target of the manifests; the targets are: ${targets.join(', ')}`);
  const given = new Map(Object.entries(options.endpoints).map(([key, value]) => [key, parseEndpoint(key, value)]));
  const settings: ProbeSettings = {
    sslMode: options.sslMode ?? SslMode.PREFER, caFile: options.caFile, timeoutMs: (options.timeoutSeconds ?? 5) * 1000,
  };
  if ((settings.sslMode === SslMode.VERIFY_CA || settings.sslMode === SslMode.VERIFY_FULL) && !settings.caFile) {
    throw new Error(`sslMode ${settings.sslMode} verifies the servers' certificates: give caFile, the CA certificates (PEM)`);
  }
  const thresholds: Thresholds = {
    maxLagBytes: options.maxLagBytes ?? 16 * 1024 * 1024, maxLagSeconds: options.maxLagSeconds ?? 30,
    maxArchiveReady: options.maxArchiveReady ?? 16, maxPoolWaitSeconds: options.maxPoolWaitSeconds ?? 5,
  };
  const forwards = options.kubeContext === undefined ? undefined
    : await portForwards(forwardSpecs(objects, targets.filter((t) => !given.has(t))), options.kubeContext, options.kubectl ?? 'kubectl', settings.timeoutMs);
  try {
    const forwarded = Object.entries(forwards?.endpoints ?? {}).map(([key, value]) => [key, parseEndpoint(key, value)] as const);
    return await probeAll(stack, new Map([...forwarded, ...given]), forwards?.failures ?? {}, settings, thresholds, options);
  } finally {
    forwards?.stop();
  }
}

/** Probes every target with an endpoint; a target kubectl could not forward is unreachable with kubectl's message. */
async function probeAll(stack: ExpectedStack, endpoints: Map<string, Endpoint>, failures: { [target: string]: string }, settings: ProbeSettings,
  thresholds: Thresholds, options: StatusCheckOptions): Promise<StatusReport> {
  const login = (component: string, database: string): ProbeLogin | undefined => {
    const credentials: StatusCredentials | undefined = options.credentials?.[component] ?? options.defaultCredentials;
    return credentials && { username: credentials.username, password: credentials.password, database: credentials.database ?? database };
  };
  /** The probe of a target with an endpoint; a component without a login is unreachable. */
  const probe = async <T>(target: string, component: string, database: string,
    run: (endpoint: Endpoint, login: ProbeLogin) => Promise<Outcome<T>>): Promise<Outcome<T> | undefined> => {
    const endpoint = endpoints.get(target);
    if (!endpoint) return failures[target] === undefined ? undefined : { error: failures[target] };
    const credentials = login(component, database);
    return credentials ? run(endpoint, credentials) : { error: `no credentials for ${component}: give them by its name or as the default` };
  };
  const metric = (target: string, name: string) => {
    const endpoint = endpoints.get(target);
    if (endpoint) return probeMetric(endpoint, name, settings);
    return Promise.resolve(failures[target] === undefined ? undefined : { error: failures[target] });
  };

  const clusters = stack.clusters.map(async (cluster) => {
    const entries = <T>(keys: string[], run: (key: string) => Promise<T>) => Promise.all(keys.map(async (key) => [key, await run(key)] as const))
      .then((pairs) => Object.fromEntries(pairs));
    const pods = cluster.instances.map((i) => i.pod);
    const observed: ClusterObservations = {
      instances: await entries(pods, (pod) => probe(`pod/${pod}`, cluster.name, 'postgres', (e, l) => probeInstance(e, l, settings))),
      services: await entries(cluster.services.map((s) => s.name), (name) => probe(`service/${name}`, cluster.name, 'postgres', (e, l) => probeRecovery(e, l, settings))),
      metrics: await entries(cluster.instances.filter((i) => i.exporter).map((i) => i.pod), (pod) => metric(`pod/${pod}:metrics`, 'pg_up')),
    };
    return clusterFindings(cluster, observed, thresholds);
  });
  const proxies = stack.proxies.map(async (proxy) => {
    const target = `service/${proxy.name}`;
    if (proxy.kind === 'pooler') {
      return poolerFindings(proxy, await probe(target, proxy.name, 'pgbouncer', (e, l) => probePools(e, l, settings)), await metric(`${target}:metrics`, 'pgbouncer_up'), thresholds);
    }
    return balancerFindings(proxy, await probe(target, proxy.name, 'postgres', (e, l) => probePoolNodes(e, l, settings)), await metric(`${target}:metrics`, 'pgpool2_up'));
  });
  const findings: StatusFinding[] = (await Promise.all([...clusters, ...proxies])).flat();
  if (findings.every((f) => f.status === HealthStatus.SKIPPED)) {
    findings.push({ component: '(all)', target: '(all)', check: 'reachable', status: HealthStatus.UNREACHABLE, message: 'no endpoint given: nothing was checked' });
  }
  const status = worstStatus(findings);
  return { status, exitCode: exitCodeOf(status), findings, table: statusTable(findings), json: statusJson(findings) };
}

/**
 * Is the database healthy? Checks a running stack against its synthesized manifests: each
 * instance's role (exactly one primary), streaming and replay lag, replication slots, settings
 * waiting for a restart, WAL archiving, the -rw and -ro Services, PgBouncer's pools (waiting
 * clients), Pgpool-II's backends and the exporters. It connects to the endpoints given (local
 * ports of `kubectl port-forward`, or addresses reachable from where it runs) with the
 * credentials given, which it never prints. The `cdk8s-postgres-status` bin runs it; gate on
 * `exitCode`.
 */
export class StatusCheck {
  /**
   * Checks the stack of a multi-document YAML text.
   * @param manifestsYaml the synthesized manifests
   */
  public static async check(manifestsYaml: string, options: StatusCheckOptions): Promise<StatusReport> {
    return check(parseManifests(manifestsYaml, 'manifests'), options);
  }

  /**
   * Checks the stack of a directory of `*.yaml` files (or one YAML file), such as the `cdk8s synth` output.
   * @param manifests the directory or file
   */
  public static async checkDirectory(manifests: string, options: StatusCheckOptions): Promise<StatusReport> {
    return check(readManifests(manifests), options);
  }

  private constructor() {}
}
