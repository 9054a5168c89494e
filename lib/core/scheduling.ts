import { IConstruct } from 'constructs';
import { requireTopologyKey } from './affinity';
import { propError } from './errors';
import { k8s } from './kube';
import { validateLabels } from './names';
import { requireEnum, requireInteger } from './validation';

/** Whether the scheduler must or should spread the pods of one workload over nodes (or zones, or another topology). */
export enum PodSpread {
  /** Prefer different nodes (domains); still schedule when there are fewer than pods. */
  PREFERRED = 'ScheduleAnyway',
  /** Never put two of the pods on one node (more than maxSkew above the emptiest domain); a pod stays Pending without room. */
  REQUIRED = 'DoNotSchedule',
}

/** The node label of a node's zone, set by every cloud provider's node controller. */
export const ZONE_TOPOLOGY_KEY = 'topology.kubernetes.io/zone';
const HOSTNAME_TOPOLOGY_KEY = 'kubernetes.io/hostname';

/** A topology spread constraint of the workload's pods. */
export interface TopologySpread {
  /** The node label whose values are the domains to spread over, such as `topology.kubernetes.io/zone`. */
  readonly topologyKey: string;
  /**
   * How many more matching pods one domain may have than the emptiest.
   * @default 1
   */
  readonly maxSkew?: number;
  /**
   * Whether a pod that would break maxSkew waits (REQUIRED) or is scheduled anyway (PREFERRED).
   * @default PodSpread.PREFERRED
   */
  readonly whenUnsatisfiable?: PodSpread;
  /**
   * With REQUIRED only: the number of domains the scheduler assumes at least, so that pods
   * wait rather than crowd fewer domains (a zone with no node yet counts as empty).
   * @default - the domains that have eligible nodes
   */
  readonly minDomains?: number;
  /**
   * Labels of the pods counted.
   * @default - the workload's own pods
   */
  readonly matchLabels?: { [key: string]: string };
}

/** A spread constraint, validated; its labels are the workload's own when `matchLabels` is unset. */
export type ResolvedSpread = Omit<k8s.TopologySpreadConstraint, 'labelSelector'> & { readonly matchLabels?: { [key: string]: string } };

/**
 * The placement's spread constraints, checked as the API server checks them (maxSkew at least 1,
 * minDomains only with DoNotSchedule, no two with the same key and action), and refused over
 * nodes, which the construct's `spread` owns, and over zones with `zoneSpread`.
 */
export function resolveTopologySpread(scope: IConstruct, prop: string, given: TopologySpread[], zoneSpread: PodSpread | undefined): ResolvedSpread[] {
  const seen = new Set<string>();
  return given.map((spread, index) => {
    const where = `${prop}[${index}]`;
    const topologyKey = requireTopologyKey(scope, `${where}.topologyKey`, spread.topologyKey);
    if (topologyKey === HOSTNAME_TOPOLOGY_KEY) {
      throw propError(scope, `${where}.topologyKey`, topologyKey, 'is the construct\'s own spread over nodes', 'use the construct\'s spread prop');
    }
    if (topologyKey === ZONE_TOPOLOGY_KEY && zoneSpread !== undefined) {
      throw propError(scope, `${where}.topologyKey`, topologyKey, 'is already spread over by placement.zoneSpread', 'drop one of the two');
    }
    const whenUnsatisfiable = requireEnum(scope, `${where}.whenUnsatisfiable`, spread.whenUnsatisfiable ?? PodSpread.PREFERRED, { PodSpread });
    const pair = `${topologyKey} ${whenUnsatisfiable}`;
    if (seen.has(pair)) {
      throw propError(scope, `${where}.topologyKey`, topologyKey, `repeats an earlier constraint with ${whenUnsatisfiable}, which the API server refuses`,
        'merge the two constraints');
    }
    seen.add(pair);
    const maxSkew = requireInteger(scope, `${where}.maxSkew`, spread.maxSkew ?? 1, 1);
    if (spread.minDomains !== undefined) {
      requireInteger(scope, `${where}.minDomains`, spread.minDomains, 1);
      if (whenUnsatisfiable !== PodSpread.REQUIRED) {
        throw propError(scope, `${where}.minDomains`, spread.minDomains, 'applies only to constraints the scheduler enforces',
          'set whenUnsatisfiable: PodSpread.REQUIRED, or drop minDomains');
      }
    }
    if (spread.matchLabels !== undefined) {
      validateLabels(scope, `${where}.matchLabels`, spread.matchLabels);
      if (Object.keys(spread.matchLabels).length === 0) {
        throw propError(scope, `${where}.matchLabels`, spread.matchLabels, 'counts every pod of the namespace', 'name the pods\' labels, or leave it unset for the workload\'s own pods');
      }
    }
    return {
      maxSkew, topologyKey, whenUnsatisfiable,
      ...(spread.minDomains !== undefined ? { minDomains: spread.minDomains } : {}),
      ...(spread.matchLabels !== undefined ? { matchLabels: { ...spread.matchLabels } } : {}),
    };
  });
}

/**
 * The constraints of a workload's pods, which these labels select: one node per pod as far as
 * `spread` insists, then the zones with `zoneSpread`, then the placement's own.
 */
export function spreadConstraints(selector: { [key: string]: string }, spread: PodSpread, zoneSpread: PodSpread | undefined,
  own: ResolvedSpread[] = []): k8s.TopologySpreadConstraint[] {
  const constraint = ({ matchLabels, ...rest }: ResolvedSpread): k8s.TopologySpreadConstraint =>
    ({ ...rest, labelSelector: { matchLabels: { ...matchLabels ?? selector } } });
  return [
    constraint({ maxSkew: 1, topologyKey: HOSTNAME_TOPOLOGY_KEY, whenUnsatisfiable: spread }),
    ...(zoneSpread !== undefined ? [constraint({ maxSkew: 1, topologyKey: ZONE_TOPOLOGY_KEY, whenUnsatisfiable: zoneSpread })] : []),
    ...own.map(constraint),
  ];
}
