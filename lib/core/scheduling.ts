import { k8s } from './kube';

/** Whether the scheduler must or should put the pods of one workload on different nodes. */
export enum PodSpread {
  /** Prefer different nodes; still schedule when there are fewer nodes than pods. */
  PREFERRED = 'ScheduleAnyway',
  /** Never put two of the pods on one node; a pod stays Pending without a free node. */
  REQUIRED = 'DoNotSchedule',
}

/** One node per pod of the pods these labels select, as far as `spread` insists. */
export function spreadOverNodes(selector: { [key: string]: string }, spread: PodSpread): k8s.TopologySpreadConstraint[] {
  return [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: spread, labelSelector: { matchLabels: selector } }];
}
