import { ClusterMode } from './classify-setting';
import { KubeObject, objectKey } from './manifests';

const INSTANCE = 'app.kubernetes.io/instance';
const NAME = 'app.kubernetes.io/name';

/** One object before and after (one side is missing when it was added or removed). */
export interface ObjectPair {
  readonly before?: KubeObject;
  readonly after?: KubeObject;
}

/** Objects of one component: the same instance and name labels in one namespace. */
export interface ComponentGroup {
  readonly title: string;
  readonly instance?: string;
  readonly pairs: ObjectPair[];
}

function groupKey(object: KubeObject): { key: string; title: string; instance?: string } {
  const labels = object.metadata?.labels ?? {};
  const namespace = object.metadata?.namespace;
  if (!labels[INSTANCE] || !labels[NAME]) return { key: '~other', title: 'other objects' };
  const title = `${labels[INSTANCE]} (${labels[NAME]})${namespace ? ` in ${namespace}` : ''}`;
  return { key: `${labels[INSTANCE]}|${labels[NAME]}|${namespace ?? ''}`, title, instance: labels[INSTANCE] };
}

/** Objects matched by group, kind, namespace and name, then grouped by component, in a stable order. */
export function groupComponents(before: KubeObject[], after: KubeObject[]): ComponentGroup[] {
  const pairs = new Map<string, { before?: KubeObject; after?: KubeObject }>();
  for (const object of before) pairs.set(objectKey(object), { before: object });
  for (const object of after) pairs.set(objectKey(object), { ...pairs.get(objectKey(object)), after: object });
  const groups = new Map<string, { title: string; instance?: string; pairs: ObjectPair[] }>();
  for (const pair of pairs.values()) {
    const { key, title, instance } = groupKey((pair.after ?? pair.before)!);
    if (!groups.has(key)) groups.set(key, { title, instance, pairs: [] });
    groups.get(key)!.pairs.push(pair);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, group]) => group);
}

/** The side of an object pair that exists now, or before when it was removed. */
export function current(pair: ObjectPair): KubeObject {
  return (pair.after ?? pair.before)!;
}

/** The pair of a kind and name in a group. */
export function findPair(group: ComponentGroup, kind: string, name: string): ObjectPair | undefined {
  return group.pairs.find((pair) => current(pair).kind === kind && current(pair).metadata?.name === name);
}

/** How the component runs PostgreSQL: HA with a `<instance>-patroni` ConfigMap, plain with `<instance>-primary`. */
export function clusterMode(group: ComponentGroup): ClusterMode | undefined {
  return modeOf(group, current);
}

/** How the component ran before, or runs after, judged on that side's objects alone. */
export function sideMode(group: ComponentGroup, side: 'before' | 'after'): ClusterMode | undefined {
  return modeOf(group, (pair) => pair[side]);
}

function modeOf(group: ComponentGroup, objectOf: (pair: ObjectPair) => KubeObject | undefined): ClusterMode | undefined {
  if (!group.instance) return undefined;
  const has = (kind: string, name: string) => group.pairs.some((pair) => objectOf(pair)?.kind === kind && objectOf(pair)?.metadata?.name === name);
  if (has('ConfigMap', `${group.instance}-patroni`)) return ClusterMode.HIGH_AVAILABILITY;
  if (has('StatefulSet', `${group.instance}-primary`)) return ClusterMode.PLAIN;
  return undefined;
}
