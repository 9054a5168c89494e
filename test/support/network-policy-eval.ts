/**
 * A small evaluator of Kubernetes NetworkPolicy semantics over synthesized objects, so tests can
 * ask "may this pod reach that pod on this port" instead of comparing YAML. Namespaces carry only
 * their `kubernetes.io/metadata.name` label; ipBlock peers never match pods.
 */
export interface Pod {
  readonly namespace: string;
  readonly labels: { [key: string]: string };
}

const matches = (selector: any, labels: { [key: string]: string }) =>
  Object.entries(selector?.matchLabels ?? {}).every(([key, value]) => labels[key] === value);

function peerMatches(peer: any, policyNamespace: string, pod: Pod): boolean {
  if (peer.ipBlock) return false;
  const namespaceOk = peer.namespaceSelector
    ? matches(peer.namespaceSelector, { 'kubernetes.io/metadata.name': pod.namespace })
    : pod.namespace === policyNamespace;
  return namespaceOk && (peer.podSelector ? matches(peer.podSelector, pod.labels) : true);
}

const portMatches = (ports: any[] | undefined, port: number, protocol: string) =>
  !ports || ports.some((p) => (p.protocol ?? 'TCP') === protocol && (p.port === undefined || p.port === port));

/** Whether the policies among `objects` let `pod`'s traffic out (`Egress`) or in (`Ingress`) from or to `other`. */
function allows(objects: any[], type: 'Ingress' | 'Egress', pod: Pod, other: Pod | undefined, port: number, protocol: string): boolean {
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy' && o.metadata.namespace === pod.namespace
    && matches(o.spec.podSelector, pod.labels) && (o.spec.policyTypes ?? ['Ingress']).includes(type));
  if (policies.length === 0) return true;
  return policies.some((policy) => (policy.spec[type === 'Ingress' ? 'ingress' : 'egress'] ?? []).some((rule: any) => {
    const peers = rule[type === 'Ingress' ? 'from' : 'to'];
    const peerOk = !peers || (other !== undefined && peers.some((peer: any) => peerMatches(peer, policy.metadata.namespace, other)));
    return peerOk && portMatches(rule.ports, port, protocol);
  }));
}

/** Whether `from` may open a connection to `to` on `port`: `from`'s egress rules and `to`'s ingress rules both admit it. */
export function mayConnect(objects: any[], from: Pod, to: Pod, port: number, protocol = 'TCP'): boolean {
  return allows(objects, 'Egress', from, to, port, protocol) && allows(objects, 'Ingress', to, from, port, protocol);
}

/** Whether `from` may send to a destination outside the cluster's pods (a resolver, the internet) on `port`. */
export function mayReachOutside(objects: any[], from: Pod, port: number, protocol = 'TCP'): boolean {
  return allows(objects, 'Egress', from, undefined, port, protocol);
}
