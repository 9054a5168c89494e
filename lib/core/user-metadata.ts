import { IConstruct } from 'constructs';
import { propError } from './errors';
import { validateLabels, validateMapKey } from './names';
import { NetworkPolicyOptions } from './network-policy';
import { placementSpec, PodPlacement } from './placement';
import { TlsOptions } from './tls';

/** Props every workload construct takes for its objects' metadata and its pods' nodes. */
export interface WorkloadProps {
  /**
   * Extra labels on every object and pod. Selectors never use them, so they can change freely.
   * @default - none
   */
  readonly labels?: { [key: string]: string };
  /**
   * Annotations on every object and pod (owner, cost center, a mesh's sidecar switch).
   * @default - none
   */
  readonly annotations?: { [key: string]: string };
  /**
   * Which nodes the pods may run on: node selector, tolerations, priority class.
   * @default - any node the scheduler picks
   */
  readonly placement?: PodPlacement;
  /**
   * The NetworkPolicy of the component's pods: who may connect, and where the pods may connect.
   * @default - a policy admitting every pod of the chart's namespace, and metrics scrapes from the namespace `monitoring`
   */
  readonly networkPolicy?: NetworkPolicyOptions;
  /**
   * TLS for the component's clients, with a certificate from a Secret (cert-manager's layout);
   * components in front of it verify that certificate fully.
   * @default - no TLS
   */
  readonly tls?: TlsOptions;
}

/** The user's labels, annotations and pod placement, validated. */
export interface UserMetadata {
  readonly labels: { [key: string]: string };
  readonly annotations: { [key: string]: string };
  readonly placement: ReturnType<typeof placementSpec>;
}

/** Annotations the library writes itself: a user's value would be overwritten or break scraping. */
const RESERVED_ANNOTATION = /^(checksum\/|prometheus\.io\/)/;

export function resolveUserMetadata(scope: IConstruct, props: WorkloadProps): UserMetadata {
  // Fresh objects: cdk8s cannot serialize one without a prototype, as a generated map may be.
  const labels = { ...props.labels };
  validateLabels(scope, 'labels', labels);
  const annotations = { ...props.annotations };
  for (const [key, value] of Object.entries(annotations)) {
    validateMapKey(scope, 'annotations key', key);
    if (RESERVED_ANNOTATION.test(key)) {
      throw propError(scope, 'annotations key', key, 'is written by the library (config checksums, exporter scrape settings)',
        'drop it; an ExporterSidecar sets the prometheus.io annotations');
    }
    if (typeof value !== 'string') {
      throw propError(scope, `annotations.${key}`, value, 'is not a string', 'quote the value');
    }
  }
  return { labels, annotations, placement: placementSpec(scope, props.placement) };
}

/** Annotations for an object's or a pod's metadata: absent when there are none. */
export function annotationsField(annotations: { [key: string]: string }): { annotations?: { [key: string]: string } } {
  return Object.keys(annotations).length > 0 ? { annotations } : {};
}
