import { Duration } from 'cdk8s';
import { IConstruct } from 'constructs';
import { NodeAffinity, PodAffinityRules, resolveNodeAffinity, resolvePodAffinity } from './affinity';
import { propError } from './errors';
import { k8s } from './kube';
import { validateDnsSubdomain, validateLabels, validateLabelValue, validateQualifiedName } from './names';
import { PodSpread, ResolvedSpread, resolveTopologySpread, TopologySpread } from './scheduling';
import { requireEnum, wholeSeconds } from './validation';

/** How a toleration matches a taint's value. */
export enum TolerationOperator {
  /** The taint's value must equal the toleration's. */
  EQUAL = 'Equal',
  /** Any value; with no key, every taint. */
  EXISTS = 'Exists',
}

/** What a taint does to pods that do not tolerate it. */
export enum TaintEffect {
  /** New pods are not scheduled on the node. */
  NO_SCHEDULE = 'NoSchedule',
  /** The scheduler avoids the node. */
  PREFER_NO_SCHEDULE = 'PreferNoSchedule',
  /** Running pods are evicted too. */
  NO_EXECUTE = 'NoExecute',
}

/** A taint the pods tolerate. */
export interface PodToleration {
  /**
   * The taint's key.
   * @default - every key; needs `operator: EXISTS`
   */
  readonly key?: string;
  /**
   * How the value matches.
   * @default TolerationOperator.EQUAL
   */
  readonly operator?: TolerationOperator;
  /**
   * The taint's value, for `EQUAL`.
   * @default - the empty value
   */
  readonly value?: string;
  /**
   * The effect tolerated.
   * @default - every effect
   */
  readonly effect?: TaintEffect;
  /**
   * How long a pod stays on a node that gets a `NO_EXECUTE` taint.
   * @default - forever
   */
  readonly tolerationSeconds?: Duration;
}

/** Which nodes a workload's pods may run on, and how they rank against other pods. */
export interface PodPlacement {
  /**
   * Node labels a node must carry (`{ 'node-pool': 'db' }`).
   * @default - any node
   */
  readonly nodeSelector?: { [key: string]: string };
  /**
   * Taints the pods tolerate, such as a dedicated node pool's.
   * @default - none
   */
  readonly tolerations?: PodToleration[];
  /**
   * PriorityClass of the pods, so a database is not preempted by batch work.
   * @default - the cluster's default priority
   */
  readonly priorityClassName?: string;
  /**
   * Node affinity: nodes the pods must or should run on, by expressions over node labels
   * (every pod of the construct, its jobs included, as nodeSelector).
   * @default - none
   */
  readonly nodeAffinity?: NodeAffinity;
  /**
   * Pods the workload's pods (instances, pooler or balancer pods; not jobs) must or should run near.
   * @default - none
   */
  readonly podAffinity?: PodAffinityRules;
  /**
   * Pods the workload's pods (instances, pooler or balancer pods; not jobs) must or should run away from.
   * @default - none
   */
  readonly podAntiAffinity?: PodAffinityRules;
  /**
   * Spread the workload's pods over the zones (`topology.kubernetes.io/zone`) with maxSkew 1,
   * besides the construct's spread over nodes. Not on by default: where nodes lack the zone
   * label (kubeadm, kind, bare metal), REQUIRED leaves pods Pending, and even PREFERRED makes the
   * scheduler score no node for spreading, which silently cancels the spread over nodes. Where
   * every node has a zone (managed clouds), set PREFERRED; REQUIRED only with room in every zone.
   * @default - no spread over zones
   */
  readonly zoneSpread?: PodSpread;
  /**
   * More topology spread constraints of the workload's pods, such as over racks or regions.
   * @default - none
   */
  readonly topologySpread?: TopologySpread[];
}

/**
 * A placement, validated: the node fields every pod of the construct gets, and what only the
 * workload's replicated pods get (pod affinity terms, spreads), written in terms of its pods.
 */
export interface ResolvedPlacement {
  /** nodeSelector, tolerations, priorityClassName and node affinity. */
  readonly nodes: Pick<k8s.PodSpec, 'nodeSelector' | 'tolerations' | 'priorityClassName'> & { readonly nodeAffinity?: k8s.NodeAffinity };
  readonly podAffinity?: k8s.PodAffinity;
  readonly podAntiAffinity?: k8s.PodAntiAffinity;
  readonly zoneSpread?: PodSpread;
  readonly topologySpread: ResolvedSpread[];
}

/** A placement, validated; empty when nothing is placed. */
export function placementSpec(scope: IConstruct, placement: PodPlacement = {}): ResolvedPlacement {
  const { nodeSelector = {}, tolerations = [], priorityClassName } = placement;
  validateLabels(scope, 'placement.nodeSelector', nodeSelector);
  if (priorityClassName !== undefined) validateDnsSubdomain(scope, 'placement.priorityClassName', priorityClassName, 'PriorityClass');
  const nodeAffinity = resolveNodeAffinity(scope, 'placement.nodeAffinity', placement.nodeAffinity);
  const podAffinity = resolvePodAffinity(scope, 'placement.podAffinity', placement.podAffinity);
  const podAntiAffinity = resolvePodAffinity(scope, 'placement.podAntiAffinity', placement.podAntiAffinity);
  const zoneSpread = requireEnum(scope, 'placement.zoneSpread', placement.zoneSpread, { PodSpread });
  return {
    nodes: nodeFields(scope, { nodeSelector, tolerations, priorityClassName }, nodeAffinity),
    ...(podAffinity ? { podAffinity } : {}),
    ...(podAntiAffinity ? { podAntiAffinity } : {}),
    ...(zoneSpread !== undefined ? { zoneSpread } : {}),
    topologySpread: resolveTopologySpread(scope, 'placement.topologySpread', placement.topologySpread ?? [], zoneSpread),
  };
}

type NodeSelection = Pick<PodPlacement, 'priorityClassName'> & { nodeSelector: { [key: string]: string }; tolerations: PodToleration[] };

function nodeFields(scope: IConstruct, placement: NodeSelection,
  nodeAffinity: k8s.NodeAffinity | undefined): ResolvedPlacement['nodes'] {
  const { nodeSelector, tolerations, priorityClassName } = placement;
  return {
    // A fresh object: cdk8s cannot serialize one without a prototype, as a generated map may be.
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector: { ...nodeSelector } } : {}),
    ...(tolerations.length > 0
      ? { tolerations: tolerations.map((toleration, index) => resolveToleration(scope, `placement.tolerations[${index}]`, toleration)) } : {}),
    ...(priorityClassName !== undefined ? { priorityClassName } : {}),
    ...(nodeAffinity ? { nodeAffinity } : {}),
  };
}

function resolveToleration(scope: IConstruct, prop: string, toleration: PodToleration): k8s.Toleration {
  const operator = requireEnum(scope, `${prop}.operator`, toleration.operator ?? TolerationOperator.EQUAL, { TolerationOperator });
  requireEnum(scope, `${prop}.effect`, toleration.effect, { TaintEffect });
  if (toleration.key !== undefined) validateQualifiedName(scope, `${prop}.key`, toleration.key);
  if (toleration.key === undefined && operator !== TolerationOperator.EXISTS) {
    throw propError(scope, `${prop}.operator`, operator, 'needs a key: only EXISTS may match every taint',
      'set the taint\'s key, or operator: TolerationOperator.EXISTS');
  }
  if (toleration.value !== undefined) {
    if (operator === TolerationOperator.EXISTS) {
      throw propError(scope, `${prop}.value`, toleration.value, 'is ignored by operator EXISTS', 'drop the value, or use TolerationOperator.EQUAL');
    }
    validateLabelValue(scope, `${prop}.value`, toleration.value);
  }
  const seconds = wholeSeconds(scope, `${prop}.tolerationSeconds`, toleration.tolerationSeconds);
  if (seconds !== undefined && toleration.effect !== TaintEffect.NO_EXECUTE) {
    throw propError(scope, `${prop}.tolerationSeconds`, `${seconds}s`, 'only applies to the NO_EXECUTE effect',
      'set effect: TaintEffect.NO_EXECUTE, or drop tolerationSeconds');
  }
  return {
    ...(toleration.key !== undefined ? { key: toleration.key } : {}),
    operator,
    ...(toleration.value !== undefined ? { value: toleration.value } : {}),
    ...(toleration.effect !== undefined ? { effect: toleration.effect } : {}),
    ...(seconds !== undefined ? { tolerationSeconds: seconds } : {}),
  };
}
