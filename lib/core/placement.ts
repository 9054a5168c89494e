import { Duration } from 'cdk8s';
import { IConstruct } from 'constructs';
import { propError } from './errors';
import { k8s } from './kube';
import { validateDnsSubdomain, validateLabels, validateLabelValue, validateQualifiedName } from './names';
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
}

/** The pod spec fields of a placement, validated; empty when nothing is placed. */
export function placementSpec(scope: IConstruct, placement: PodPlacement = {}): Pick<k8s.PodSpec, 'nodeSelector' | 'tolerations' | 'priorityClassName'> {
  const { nodeSelector = {}, tolerations = [], priorityClassName } = placement;
  validateLabels(scope, 'placement.nodeSelector', nodeSelector);
  if (priorityClassName !== undefined) validateDnsSubdomain(scope, 'placement.priorityClassName', priorityClassName, 'PriorityClass');
  return {
    // A fresh object: cdk8s cannot serialize one without a prototype, as a generated map may be.
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector: { ...nodeSelector } } : {}),
    ...(tolerations.length > 0
      ? { tolerations: tolerations.map((toleration, index) => resolveToleration(scope, `placement.tolerations[${index}]`, toleration)) } : {}),
    ...(priorityClassName !== undefined ? { priorityClassName } : {}),
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
