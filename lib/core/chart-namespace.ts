import { Chart, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import { propError } from './errors';
import { k8s } from './kube';
import { validateDnsLabel } from './names';
import { resolveUserMetadata } from './user-metadata';
import { requireEnum } from './validation';

/** A Pod Security Standards profile, which the Namespace's admission enforces. */
export enum PodSecurityLevel {
  /** Hardened pods only: every pod the library renders meets it. */
  RESTRICTED = 'restricted',
  /** Known privilege escalations refused; for namespaces shared with pods that need more. */
  BASELINE = 'baseline',
  /** No restriction. */
  PRIVILEGED = 'privileged',
}

/** Props of {@link ChartNamespace}. */
export interface ChartNamespaceProps {
  /**
   * The Pod Security Standards profile enforced on the namespace's pods, also audited and warned.
   * @default PodSecurityLevel.RESTRICTED
   */
  readonly podSecurity?: PodSecurityLevel;
  /**
   * Extra labels on the Namespace.
   * @default - none
   */
  readonly labels?: { [key: string]: string };
  /**
   * Annotations on the Namespace.
   * @default - none
   */
  readonly annotations?: { [key: string]: string };
}

/**
 * The Namespace the chart deploys to, for apps that create their namespaces themselves: named
 * after the chart's namespace, with Pod Security admission labels, and written first in the
 * chart's YAML so `kubectl apply` creates it before the objects in it.
 */
export class ChartNamespace extends Construct {
  /** Name of the Namespace: the chart's namespace. */
  public readonly name: string;

  /**
   * @param scope a construct in the chart whose namespace to render
   * @param id the construct id
   * @param props Pod Security profile, labels and annotations
   */
  constructor(scope: Construct, id: string, props: ChartNamespaceProps = {}) {
    super(scope, id);
    const chart = Chart.of(this);
    if (chart.namespace === undefined) {
      throw propError(this, 'chart namespace', undefined, 'leaves no Namespace to render',
        'give the chart a namespace (new Chart(app, id, { namespace: "orders" }))');
    }
    validateDnsLabel(this, 'chart namespace', chart.namespace);
    this.name = chart.namespace;
    const user = resolveUserMetadata(this, { labels: props.labels, annotations: props.annotations });
    const level = requireEnum(this, 'podSecurity', props.podSecurity ?? PodSecurityLevel.RESTRICTED, { PodSecurityLevel });
    const podSecurity = Object.fromEntries(['enforce', 'audit', 'warn'].map((mode) => [`pod-security.kubernetes.io/${mode}`, level]));
    const taken = Object.keys(user.labels).find((key) => key.startsWith('pod-security.kubernetes.io/'));
    if (taken !== undefined) {
      throw propError(this, 'labels key', taken, 'is a Pod Security admission label, which podSecurity sets', 'drop it and set podSecurity');
    }
    const namespace = new k8s.KubeNamespace(this, 'Resource', {
      metadata: {
        name: this.name,
        labels: { ...user.labels, ...podSecurity },
        ...(Object.keys(user.annotations).length > 0 ? { annotations: user.annotations } : {}),
      },
    });
    // cdk8s gives every object the chart's namespace; a Namespace is cluster-scoped.
    namespace.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
    // Every object of the chart depends on the Namespace, so it comes first in the YAML.
    chart.node.addDependency(this);
  }
}
