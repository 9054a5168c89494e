import { IConstruct } from 'constructs';
import { propError } from './errors';
import { k8s } from './kube';
import { validateDnsLabel, validateLabels, validateLabelValue, validateQualifiedName } from './names';
import { requireEnum, requireInteger } from './validation';

/** How a pod affinity term's label requirement matches a pod's label. */
export enum LabelOperator {
  /** The label's value is one of `values`. */
  IN = 'In',
  /** The label is absent, or its value is none of `values`. */
  NOT_IN = 'NotIn',
  /** The label is present, whatever its value; no `values`. */
  EXISTS = 'Exists',
  /** The label is absent; no `values`. */
  DOES_NOT_EXIST = 'DoesNotExist',
}

/** How a node affinity requirement matches a node's label. */
export enum NodeOperator {
  /** The label's value is one of `values`. */
  IN = 'In',
  /** The label is absent, or its value is none of `values`. */
  NOT_IN = 'NotIn',
  /** The label is present; no `values`. */
  EXISTS = 'Exists',
  /** The label is absent; no `values`. */
  DOES_NOT_EXIST = 'DoesNotExist',
  /** The label's value, an integer, is greater than the one value. */
  GT = 'Gt',
  /** The label's value, an integer, is less than the one value. */
  LT = 'Lt',
}

/** One requirement on a node's labels. */
export interface NodeRequirement {
  /** The node label's key, such as `node.kubernetes.io/instance-type`. */
  readonly key: string;
  /** How the label matches. */
  readonly operator: NodeOperator;
  /**
   * The values: one or more for IN and NOT_IN, exactly one integer for GT and LT, none for EXISTS and DOES_NOT_EXIST.
   * @default - none
   */
  readonly values?: string[];
}

/** Nodes whose labels meet every requirement (a node selector term). */
export interface NodeAffinityTerm {
  /** The requirements, all of which a node meets. */
  readonly matchExpressions: NodeRequirement[];
}

/** A node selector term the scheduler prefers, with its weight among the preferences. */
export interface PreferredNodeAffinityTerm extends NodeAffinityTerm {
  /** From 1 to 100: added to a node's score when it matches. */
  readonly weight: number;
}

/** Which nodes the pods must or should run on, by the nodes' labels. */
export interface NodeAffinity {
  /**
   * A node must match one of these terms for a pod to be scheduled there.
   * @default - no requirement
   */
  readonly required?: NodeAffinityTerm[];
  /**
   * Terms the scheduler favours, by weight.
   * @default - no preference
   */
  readonly preferred?: PreferredNodeAffinityTerm[];
}

/** One requirement on a pod's labels. */
export interface LabelRequirement {
  /** The pod label's key. */
  readonly key: string;
  /** How the label matches. */
  readonly operator: LabelOperator;
  /**
   * The values: one or more for IN and NOT_IN, none for EXISTS and DOES_NOT_EXIST.
   * @default - none
   */
  readonly values?: string[];
}

/** Pods, by their labels, and the topology domain (node, zone) that counts as "near" them. */
export interface PodAffinityTerm {
  /** The node label whose value is the domain: `kubernetes.io/hostname` for a node, `topology.kubernetes.io/zone` for a zone. */
  readonly topologyKey: string;
  /**
   * Labels the pods carry.
   * @default - no label: set matchExpressions
   */
  readonly matchLabels?: { [key: string]: string };
  /**
   * Requirements on the pods' labels, besides matchLabels.
   * @default - none: set matchLabels
   */
  readonly matchExpressions?: LabelRequirement[];
  /**
   * Namespaces the pods are in.
   * @default - the namespace of the pod being placed
   */
  readonly namespaces?: string[];
}

/** A pod affinity term the scheduler prefers, with its weight among the preferences. */
export interface WeightedPodAffinityTerm extends PodAffinityTerm {
  /** From 1 to 100: added to a node's score when it satisfies the term. */
  readonly weight: number;
}

/** Pods to run near (affinity) or away from (anti-affinity). */
export interface PodAffinityRules {
  /**
   * Every term must hold for a pod to be scheduled on a node.
   * @default - no requirement
   */
  readonly required?: PodAffinityTerm[];
  /**
   * Terms the scheduler favours, by weight.
   * @default - no preference
   */
  readonly preferred?: WeightedPodAffinityTerm[];
}

/** The node affinity, checked as the API server checks it. */
export function resolveNodeAffinity(scope: IConstruct, prop: string, affinity: NodeAffinity | undefined): k8s.NodeAffinity | undefined {
  if (!affinity) return undefined;
  const { required = [], preferred = [] } = affinity;
  if (affinity.required && required.length === 0) {
    throw propError(scope, `${prop}.required`, required, 'lists no term, which no node matches', 'list at least one term, or drop required');
  }
  const term = (where: string, given: NodeAffinityTerm): k8s.NodeSelectorTerm => ({
    matchExpressions: nonEmpty(scope, `${where}.matchExpressions`, given.matchExpressions)
      .map((requirement, index) => nodeRequirement(scope, `${where}.matchExpressions[${index}]`, requirement)),
  });
  return {
    ...(required.length > 0 ? {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: required.map((given, index) => term(`${prop}.required[${index}]`, given)),
      },
    } : {}),
    ...(preferred.length > 0 ? {
      preferredDuringSchedulingIgnoredDuringExecution: preferred.map((given, index) => ({
        weight: weight(scope, `${prop}.preferred[${index}].weight`, given.weight),
        preference: term(`${prop}.preferred[${index}]`, given),
      })),
    } : {}),
  };
}

/** Pod affinity or anti-affinity rules, checked as the API server checks them. */
export function resolvePodAffinity(scope: IConstruct, prop: string, rules: PodAffinityRules | undefined): k8s.PodAffinity | undefined {
  if (!rules) return undefined;
  const { required = [], preferred = [] } = rules;
  return {
    ...(required.length > 0 ? {
      requiredDuringSchedulingIgnoredDuringExecution: required.map((term, index) => podAffinityTerm(scope, `${prop}.required[${index}]`, term)),
    } : {}),
    ...(preferred.length > 0 ? {
      preferredDuringSchedulingIgnoredDuringExecution: preferred.map((term, index) => ({
        weight: weight(scope, `${prop}.preferred[${index}].weight`, term.weight),
        podAffinityTerm: podAffinityTerm(scope, `${prop}.preferred[${index}]`, term),
      })),
    } : {}),
  };
}

function podAffinityTerm(scope: IConstruct, prop: string, term: PodAffinityTerm): k8s.PodAffinityTerm {
  requireTopologyKey(scope, `${prop}.topologyKey`, term.topologyKey);
  const matchLabels = term.matchLabels ?? {};
  const matchExpressions = term.matchExpressions ?? [];
  validateLabels(scope, `${prop}.matchLabels`, matchLabels);
  if (Object.keys(matchLabels).length === 0 && matchExpressions.length === 0) {
    throw propError(scope, prop, term, 'selects no pod: a term needs labels to match',
      'set matchLabels (such as { \'app.kubernetes.io/name\': \'kafka\' }) or matchExpressions');
  }
  (term.namespaces ?? []).forEach((namespace, index) => validateDnsLabel(scope, `${prop}.namespaces[${index}]`, namespace));
  return {
    labelSelector: {
      ...(Object.keys(matchLabels).length > 0 ? { matchLabels: { ...matchLabels } } : {}),
      ...(matchExpressions.length > 0 ? {
        matchExpressions: matchExpressions.map((requirement, index) => labelRequirement(scope, `${prop}.matchExpressions[${index}]`, requirement)),
      } : {}),
    },
    ...(term.namespaces && term.namespaces.length > 0 ? { namespaces: [...term.namespaces] } : {}),
    topologyKey: term.topologyKey,
  };
}

/** A topology key: required, and a label key. */
export function requireTopologyKey(scope: IConstruct, prop: string, key: string | undefined): string {
  if (key === undefined || key === '') {
    throw propError(scope, prop, key, 'is required: it names the node label whose values are the domains',
      'set it, such as "kubernetes.io/hostname" or "topology.kubernetes.io/zone"');
  }
  validateQualifiedName(scope, prop, key);
  return key;
}

function labelRequirement(scope: IConstruct, prop: string, requirement: LabelRequirement): k8s.LabelSelectorRequirement {
  const operator = requireEnum(scope, `${prop}.operator`, requirement.operator, { LabelOperator });
  validateQualifiedName(scope, `${prop}.key`, requirement.key);
  const values = requirement.values ?? [];
  const listed = operator === LabelOperator.IN || operator === LabelOperator.NOT_IN;
  checkValueCount(scope, `${prop}.values`, values, operator, listed ? 'one or more values' : 'no values', listed ? values.length > 0 : values.length === 0);
  values.forEach((value, index) => validateLabelValue(scope, `${prop}.values[${index}]`, value));
  return { key: requirement.key, operator, ...(values.length > 0 ? { values: [...values] } : {}) };
}

function nodeRequirement(scope: IConstruct, prop: string, requirement: NodeRequirement): k8s.NodeSelectorRequirement {
  const operator = requireEnum(scope, `${prop}.operator`, requirement.operator, { NodeOperator });
  validateQualifiedName(scope, `${prop}.key`, requirement.key);
  const values = requirement.values ?? [];
  if (operator === NodeOperator.GT || operator === NodeOperator.LT) {
    checkValueCount(scope, `${prop}.values`, values, operator, 'exactly one integer value', values.length === 1 && /^-?[0-9]{1,18}$/.test(values[0]));
  } else {
    const listed = operator === NodeOperator.IN || operator === NodeOperator.NOT_IN;
    checkValueCount(scope, `${prop}.values`, values, operator, listed ? 'one or more values' : 'no values', listed ? values.length > 0 : values.length === 0);
    values.forEach((value, index) => validateLabelValue(scope, `${prop}.values[${index}]`, value));
  }
  return { key: requirement.key, operator, ...(values.length > 0 ? { values: [...values] } : {}) };
}

function checkValueCount(scope: IConstruct, prop: string, values: string[], operator: string, wanted: string, ok: boolean): void {
  if (!ok) throw propError(scope, prop, values, `does not fit operator ${operator}, which takes ${wanted}`, `give ${wanted}, or another operator`);
}

function nonEmpty<T>(scope: IConstruct, prop: string, list: T[] | undefined): T[] {
  if (!list || list.length === 0) {
    throw propError(scope, prop, list ?? [], 'is empty: a term without requirements matches no node', 'list at least one requirement');
  }
  return list;
}

function weight(scope: IConstruct, prop: string, value: number): number {
  return requireInteger(scope, prop, value, 1, 100);
}
