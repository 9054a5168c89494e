import { Chart, Lazy } from 'cdk8s';
import { IConstruct } from 'constructs';
import { propError } from './errors';
import { k8s } from './kube';
import { ComponentLabels } from './labels';
import { validateCidr, validateDnsLabel, validateLabels } from './names';
import { UserMetadata } from './user-metadata';
import { objectMeta } from './workload';

/**
 * Pods (or a network) on the other end of a connection: by namespace and pod labels, or by CIDR.
 * Namespace and pod selectors combine (pods with these labels in these namespaces).
 */
export interface NetworkPeer {
  /**
   * A namespace by name (its `kubernetes.io/metadata.name` label).
   * @default - the namespace of the NetworkPolicy, unless `namespaceSelector` is given
   */
  readonly namespace?: string;
  /**
   * Namespaces by their labels; `{}` is every namespace.
   * @default - the namespace of the NetworkPolicy, unless `namespace` is given
   */
  readonly namespaceSelector?: { [key: string]: string };
  /**
   * Pods by their labels; `{}` is every pod.
   * @default - every pod of the selected namespaces
   */
  readonly podSelector?: { [key: string]: string };
  /**
   * A network in CIDR notation, instead of pods (clients outside the cluster).
   * @default - pods, not a network
   */
  readonly cidr?: string;
}

/** Who may reach a component's pods, beyond the library's own components wired to it. */
export interface NetworkPolicyOptions {
  /**
   * Render a NetworkPolicy that admits only the clients below (and the library's components
   * that connect here) and lets the pods open only the connections they need, plus DNS.
   * Policies take effect only where the cluster's network plugin enforces them.
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * Who may connect to the database port (PostgreSQL, PgBouncer, Pgpool-II).
   * @default - every pod in the chart's namespace
   */
  readonly clients?: NetworkPeer[];
  /**
   * Who may scrape an exporter's metrics port.
   * @default - every pod in the namespace `monitoring`
   */
  readonly metricsClients?: NetworkPeer[];
  /**
   * The DNS resolvers the pods may query on port 53: with NodeLocal DNSCache, its address
   * (`{ cidr: '169.254.20.10/32' }`) beside or instead of the cluster DNS.
   * @default - the cluster DNS: pods labelled `k8s-app: kube-dns` in `kube-system` (CoreDNS in kubeadm, EKS, GKE, AKS)
   */
  readonly dnsResolvers?: NetworkPeer[];
}

/** What a component's NetworkPolicy is made of. */
export interface NetworkAccessSpec {
  readonly name: string;
  readonly labels: ComponentLabels;
  readonly user: UserMetadata;
  /** The pods the policy applies to. */
  readonly podSelector: { [key: string]: string };
  /** The ports clients connect to, in the pods. */
  readonly daemonPorts: number[];
  /** The sidecars' ports, which metrics clients scrape. */
  readonly metricsPorts: () => number[];
  /** The connections the pods open, besides DNS. */
  readonly egress: Connection[];
  /** Ports open to one peer only, not to every client: Patroni's REST API to the other members. */
  readonly peerIngress?: Connection[];
}

/** The cluster DNS, where pods resolve Service names unless dnsResolvers says otherwise. */
const CLUSTER_DNS: NetworkPeer = { namespace: 'kube-system', podSelector: { 'k8s-app': 'kube-dns' } };

const DNS_PORTS: k8s.NetworkPolicyPort[] = [{ protocol: 'UDP', port: k8s.IntOrString.fromNumber(53) }, { protocol: 'TCP', port: k8s.IntOrString.fromNumber(53) }];

/** A connection a component's pods open: to these pods or this network, on this TCP port. */
export interface Connection {
  readonly peer: NetworkPeer;
  readonly port: number;
}

const tcpPorts = (numbers: number[]): k8s.NetworkPolicyPort[] => numbers.map((port) => ({ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) }));

/** The resolvers the pods may query, validated: the cluster DNS unless `networkPolicy.dnsResolvers` names others. */
export function dnsResolvers(scope: IConstruct, given: NetworkPeer[] | undefined): k8s.NetworkPolicyPeer[] {
  const prop = 'networkPolicy.dnsResolvers';
  if (given?.length === 0) {
    throw propError(scope, prop, given, 'leaves the pods no DNS, and they reach every peer by name', 'list the resolvers, or leave it unset for the cluster DNS');
  }
  return (given ?? [CLUSTER_DNS]).map((peer, index) => networkPolicyPeer(scope, `${prop}[${index}]`, peer));
}

/**
 * The egress rules of a NetworkPolicy: one rule per peer with every port the pods open to it
 * (an S3 endpoint and the API server both on 0.0.0.0/0:443 are one rule, not two), then DNS.
 * @param prop the prop that names the peers, for errors
 * @param resolvers the DNS resolvers (`dnsResolvers`)
 */
export function egressRules(scope: IConstruct, prop: string, connections: Connection[],
  resolvers: k8s.NetworkPolicyPeer[]): k8s.NetworkPolicyEgressRule[] {
  const portsByPeer = new Map<string, { to: k8s.NetworkPolicyPeer; ports: number[] }>();
  for (const { peer, port } of connections) {
    const to = networkPolicyPeer(scope, prop, peer);
    const key = JSON.stringify(to);
    const rule = portsByPeer.get(key) ?? { to, ports: [] };
    if (!rule.ports.includes(port)) rule.ports.push(port);
    portsByPeer.set(key, rule);
  }
  return [...[...portsByPeer.values()].map(({ to, ports }) => ({ to: [to], ports: tcpPorts(ports) })), { to: resolvers, ports: DNS_PORTS }];
}

/** A peer in the NetworkPolicy form, validated. */
export function networkPolicyPeer(scope: IConstruct, prop: string, peer: NetworkPeer): k8s.NetworkPolicyPeer {
  const selectors = [peer.namespace, peer.namespaceSelector, peer.podSelector].filter((s) => s !== undefined).length;
  if (peer.cidr !== undefined) {
    if (selectors > 0) {
      throw propError(scope, `${prop}.cidr`, peer.cidr, 'cannot be combined with namespace or pod selectors', 'give the network and the pods as two peers');
    }
    validateCidr(scope, `${prop}.cidr`, peer.cidr);
    return { ipBlock: { cidr: peer.cidr } };
  }
  if (selectors === 0) {
    throw propError(scope, prop, peer, 'selects nothing', 'set namespace, namespaceSelector, podSelector or cidr ({ podSelector: {} } is every pod of the namespace)');
  }
  if (peer.namespace !== undefined && peer.namespaceSelector !== undefined) {
    throw propError(scope, `${prop}.namespaceSelector`, peer.namespaceSelector, 'cannot be combined with namespace', 'use one of them');
  }
  if (peer.namespace !== undefined) validateDnsLabel(scope, `${prop}.namespace`, peer.namespace);
  if (peer.namespaceSelector !== undefined) validateLabels(scope, `${prop}.namespaceSelector`, peer.namespaceSelector);
  if (peer.podSelector !== undefined) validateLabels(scope, `${prop}.podSelector`, peer.podSelector);
  const namespaceLabels = peer.namespace !== undefined ? { 'kubernetes.io/metadata.name': peer.namespace } : peer.namespaceSelector;
  return {
    ...(namespaceLabels !== undefined ? { namespaceSelector: labelSelector(namespaceLabels) } : {}),
    ...(peer.podSelector !== undefined ? { podSelector: labelSelector(peer.podSelector) } : {}),
  };
}

/** The pods of a component, as a peer of other components' policies. */
export function componentPeer(scope: IConstruct, podSelector: { [key: string]: string }): NetworkPeer {
  const namespace = Chart.of(scope).namespace;
  return { ...(namespace ? { namespace } : {}), podSelector };
}

const labelSelector = (labels: { [key: string]: string }): k8s.LabelSelector => ({ matchLabels: { ...labels } });

/**
 * A component's NetworkPolicy: clients in on the daemon's ports, metrics clients in on the
 * sidecars' ports, and out only to what the component connects to and the DNS resolvers. Components add their
 * own clients (a pooler in front of a balancer) while the app is built; the rules render at synth.
 */
export class NetworkAccess {
  private readonly clients: k8s.NetworkPolicyPeer[];
  private readonly metricsClients: k8s.NetworkPolicyPeer[];
  private readonly components: k8s.NetworkPolicyPeer[] = [];

  constructor(private readonly scope: IConstruct, options: NetworkPolicyOptions | undefined, private readonly spec: NetworkAccessSpec) {
    const peers = (prop: string, given: NetworkPeer[] | undefined, fallback: NetworkPeer) =>
      (given ?? [fallback]).map((peer, index) => networkPolicyPeer(scope, `networkPolicy.${prop}[${index}]`, peer));
    this.clients = peers('clients', options?.clients, { podSelector: {} });
    this.metricsClients = peers('metricsClients', options?.metricsClients, { namespace: 'monitoring' });
    const resolvers = dnsResolvers(scope, options?.dnsResolvers);
    if (options?.enabled === false) return;

    const egress = egressRules(scope, 'backend', spec.egress, resolvers);
    new k8s.KubeNetworkPolicy(scope, 'NetworkPolicy', {
      metadata: objectMeta(scope, spec.name, spec.labels, spec.user),
      spec: Lazy.any({ produce: () => this.policySpec(egress) }),
    });
  }

  /**
   * Admits more clients to the daemon's ports.
   * @param prop the prop or method that names them, for errors
   */
  public allowClients(prop: string, peers: NetworkPeer[]): void {
    peers.forEach((peer, index) => this.components.push(networkPolicyPeer(this.scope, `${prop}[${index}]`, peer)));
  }

  /** The policy at synth, when every component in front has added its pods. */
  private policySpec(egress: k8s.NetworkPolicyEgressRule[]): k8s.NetworkPolicySpec {
    const spec = this.spec;
    const metricsPorts = spec.metricsPorts();
    return {
      podSelector: labelSelector(spec.podSelector),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { from: [...this.clients, ...this.components], ports: tcpPorts(spec.daemonPorts) },
        ...(metricsPorts.length > 0 ? [{ from: this.metricsClients, ports: tcpPorts(metricsPorts) }] : []),
        ...(spec.peerIngress ?? []).map(({ peer, port }) => ({ from: [networkPolicyPeer(this.scope, 'peer', peer)], ports: tcpPorts([port]) })),
      ],
      egress,
    };
  }
}
