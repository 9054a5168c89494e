import { k8s } from './kube';
import { ResolvedPlacement } from './placement';
import { PodSpread, spreadConstraints } from './scheduling';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from './security';

/** Who a pod runs as, and what it may reach beyond its own volumes. */
export interface PodIdentity {
  /** The workload's ServiceAccount. */
  readonly serviceAccountName: string;
  /** The uid every container runs as; its group owns the mounted volumes. */
  readonly uid: number;
  /**
   * The gid.
   * @default - the uid
   */
  readonly gid?: number;
  /**
   * Mount the ServiceAccount's API token: only a pod that talks to the API server (Patroni) does.
   * @default false
   */
  readonly apiServerAccess?: boolean;
}

/** Where the pod may run: the user's placement, and how its replicas spread over nodes. */
export interface PodScheduling {
  /** The user's placement: its node fields apply to every pod, its pod terms and spreads to pods with `spread`. */
  readonly placement?: ResolvedPlacement;
  /**
   * Spread the pods these labels select over nodes; the placement's pod affinity terms and
   * spreads apply to them too.
   * @default - no spread constraint and none of the placement's pod terms (a single pod, a job)
   */
  readonly spread?: { readonly selector: { [key: string]: string }; readonly spread: PodSpread };
  /**
   * terminationGracePeriodSeconds.
   * @default - Kubernetes' 30 s, unset
   */
  readonly terminationGracePeriodSeconds?: number;
}

/** Everything of a pod spec but its containers and volumes. */
export type PodBase = Omit<k8s.PodSpec, 'containers'>;

/**
 * The one place a pod of the library starts from: the restricted Pod Security Standard (a fixed
 * non-root identity, RuntimeDefault seccomp), no API token unless the pod talks to the API
 * server, no Service environment variables, then where it may run. Every workload spreads this
 * into its pod spec and adds its containers and volumes.
 */
export function restrictedPod(identity: PodIdentity, scheduling: PodScheduling = {}): PodBase {
  const placement = scheduling.placement;
  const { nodeAffinity, ...nodeSelection } = placement?.nodes ?? {};
  const podTerms = scheduling.spread ? placement : undefined;
  const affinity: k8s.Affinity = {
    ...(nodeAffinity ? { nodeAffinity } : {}),
    ...(podTerms?.podAffinity ? { podAffinity: podTerms.podAffinity } : {}),
    ...(podTerms?.podAntiAffinity ? { podAntiAffinity: podTerms.podAntiAffinity } : {}),
  };
  return {
    serviceAccountName: identity.serviceAccountName,
    automountServiceAccountToken: identity.apiServerAccess ?? false,
    enableServiceLinks: false,
    securityContext: restrictedPodSecurityContext(identity.uid, identity.gid ?? identity.uid),
    ...(scheduling.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: scheduling.terminationGracePeriodSeconds } : {}),
    ...(scheduling.spread ? {
      topologySpreadConstraints: spreadConstraints(scheduling.spread.selector, scheduling.spread.spread,
        placement?.zoneSpread, placement?.topologySpread),
    } : {}),
    ...nodeSelection,
    ...(Object.keys(affinity).length > 0 ? { affinity } : {}),
  };
}

/**
 * A container on the restricted baseline: no privilege, no capabilities, a read-only root
 * filesystem, and the image pulled only when the node lacks it. The baseline wins over what
 * the container gives: no container of the library opts out of it.
 */
export function restrictedContainer(container: k8s.Container): k8s.Container {
  return { ...container, imagePullPolicy: 'IfNotPresent', securityContext: restrictedContainerSecurityContext() };
}
