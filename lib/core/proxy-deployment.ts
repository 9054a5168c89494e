import { Chart, Lazy } from 'cdk8s';
import { IConstruct } from 'constructs';
import { configChecksum } from './checksum';
import { IPostgresEndpoint } from './endpoint';
import { k8s } from './kube';
import { ComponentLabels, selectorLabels } from './labels';
import { MonitoringProfile } from './monitoring';
import { deploymentPodPattern } from './names';
import { componentPeer, NetworkAccess, NetworkPolicyOptions } from './network-policy';
import { SidecarSet } from './sidecars';
import { renderCertificate, ResolvedTls } from './tls';
import { UserMetadata } from './user-metadata';
import { objectMeta, oneAtATimeDisruptionBudget, tokenlessServiceAccount } from './workload';

/** What a proxy in front of PostgreSQL (a pooler, a balancer) is made of. */
export interface ProxyDeploymentSpec {
  readonly name: string;
  readonly replicas: number;
  readonly labels: ComponentLabels;
  readonly user: UserMetadata;
  /** The ConfigMap `<name>-config`, rendered at synth so constructs added later can still change it. */
  readonly files: () => { [file: string]: string };
  /** More inputs of the pods' checksum annotation besides the files, such as their environment. */
  readonly checksumInputs?: () => { [name: string]: string };
  readonly servicePorts: k8s.ServicePort[];
  /**
   * The proxy's pod, without the sidecars: built once when the proxy
   * is, to reserve its containers' names and ports, and again at synth, when what constructs
   * added later (an exporter's user) is known.
   */
  readonly podSpec: () => k8s.PodSpec;
  readonly sidecars: SidecarSet;
  /** The ports clients connect to, in the pods. */
  readonly daemonPorts: number[];
  /** What the proxy connects to; it admits the proxy's pods. */
  readonly backend: IPostgresEndpoint;
  readonly networkPolicy?: NetworkPolicyOptions;
  /** The clients' TLS, whose Certificate names the Service. */
  readonly tls?: ResolvedTls;
  readonly certificateDnsNames: string[];
}

/**
 * A stateless proxy's objects: a ServiceAccount without token, a ConfigMap of its files, a
 * Service, a Deployment whose pods roll when a file changes, a PodDisruptionBudget from two
 * replicas on, a cert-manager Certificate when TLS asks for one, and a NetworkPolicy whose
 * clients the returned access can extend. Rollouts surge
 * one pod and keep every old one until it is ready, so capacity never drops.
 *
 * The ConfigMap's data, the Service's spec and the Deployment's spec are each produced whole at
 * synth by one typed function, so sidecars and users added later reach them.
 */
export function renderProxyDeployment(scope: IConstruct, spec: ProxyDeploymentSpec): NetworkAccess {
  const metadata = (name: string) => objectMeta(scope, name, spec.labels, spec.user);
  tokenlessServiceAccount(scope, spec.name, spec.labels, spec.user);
  spec.sidecars.reservePod(spec.podSpec());
  spec.sidecars.reserveServicePorts(spec.servicePorts);
  new k8s.KubeConfigMap(scope, 'Config', { metadata: metadata(`${spec.name}-config`), data: Lazy.any({ produce: spec.files }) });
  new k8s.KubeService(scope, 'Service', { metadata: metadata(spec.name), spec: Lazy.any({ produce: () => proxyServiceSpec(spec) }) });
  new k8s.KubeDeployment(scope, 'Deployment', { metadata: metadata(spec.name), spec: Lazy.any({ produce: () => proxyDeploymentSpec(scope, spec) }) });
  if (spec.replicas >= 2) oneAtATimeDisruptionBudget(scope, spec.name, spec.labels, spec.user, true);
  if (spec.tls) renderCertificate(scope, spec.name, spec.tls, spec.certificateDnsNames, spec.labels, spec.user);

  const podSelector = selectorLabels(spec.labels);
  spec.backend.allowClients(componentPeer(scope, podSelector));
  return new NetworkAccess(scope, spec.networkPolicy, {
    name: spec.name,
    labels: spec.labels,
    user: spec.user,
    podSelector,
    daemonPorts: spec.daemonPorts,
    metricsPorts: () => spec.sidecars.containerPorts(),
    egress: [{ peer: spec.backend.serverPods, port: spec.backend.port }],
  });
}

/** The proxy's Service at synth: its own ports, then the sidecars'. */
function proxyServiceSpec(spec: ProxyDeploymentSpec): k8s.ServiceSpec {
  return { type: 'ClusterIP', selector: selectorLabels(spec.labels), ports: spec.sidecars.withServicePorts(spec.servicePorts) };
}

/** The proxy's Deployment at synth: the pod with its sidecars, and a checksum of the files it reads then. */
function proxyDeploymentSpec(scope: IConstruct, spec: ProxyDeploymentSpec): k8s.DeploymentSpec {
  return {
    replicas: spec.replicas,
    selector: { matchLabels: selectorLabels(spec.labels) },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: k8s.IntOrString.fromNumber(0), maxSurge: k8s.IntOrString.fromNumber(1) } },
    template: {
      metadata: {
        labels: objectMeta(scope, spec.name, spec.labels, spec.user).labels,
        annotations: spec.sidecars.withAnnotations({
          ...spec.user.annotations,
          'checksum/config': configChecksum({ ...spec.files(), ...spec.checksumInputs?.() }),
        }),
      },
      spec: spec.sidecars.withContainers(spec.podSpec()),
    },
  };
}

/**
 * The monitoring profile of a proxy: its pods and its one Service carry the same selector, and
 * the pods are named after the Deployment.
 */
export function proxyMonitoringProfile(scope: IConstruct, labels: ComponentLabels,
  daemon: Pick<MonitoringProfile, 'kind' | 'daemonPort' | 'tlsRequired' | 'connectionLimit' | 'clientWaitLimitSeconds'>): MonitoringProfile {
  const selector = selectorLabels(labels);
  return {
    ...daemon,
    name: labels.instance,
    partOf: labels.partOf,
    namespace: Chart.of(scope).namespace,
    podSelector: selector,
    serviceSelector: selector,
    podNamePattern: deploymentPodPattern(labels.instance),
  };
}
