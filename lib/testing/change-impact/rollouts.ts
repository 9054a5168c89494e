import { ClusterMode } from './classify-setting';
import { ComponentGroup, ObjectPair } from './components';
import { KubeObject, objectRef } from './manifests';
import { changedPaths } from './object-diff';
import { PodRestart } from './report-types';

export const PRIMARY_RESTART_FLAG = 'primary restart';
export const LEADER_FLAG = 'may restart the leader; switch over first';

/** What changed in a pod template, in words a reviewer reads. */
function templateReasons(before: KubeObject, after: KubeObject): string[] {
  return changedPaths(before.spec?.template, after.spec?.template, 4).map((path) => {
    if (path.startsWith('metadata.annotations.checksum/')) return `${path.slice('metadata.annotations.'.length)} annotation (a rendered config changed)`;
    if (path.startsWith('spec.containers') || path.startsWith('spec.initContainers')) return `${path} (image, command, env or resources)`;
    return path;
  });
}

function statefulSetPods(name: string, object: KubeObject): { pods: string[]; order: string } {
  const replicas = object.spec?.replicas ?? 1;
  const strategy = object.spec?.updateStrategy ?? {};
  const policy = object.spec?.podManagementPolicy ?? 'OrderedReady';
  if (strategy.type === 'OnDelete') {
    return { pods: [], order: `OnDelete: no pod restarts until you delete it (podManagementPolicy ${policy})` };
  }
  const partition = strategy.rollingUpdate?.partition ?? 0;
  const pods = Array.from({ length: replicas }, (_, i) => `${name}-${replicas - 1 - i}`).filter((_, i) => replicas - 1 - i >= partition);
  return { pods, order: `RollingUpdate: highest ordinal first, one at a time, each Ready before the next (podManagementPolicy ${policy})` };
}

function deploymentPods(name: string, object: KubeObject): { pods: string[]; order: string } {
  const replicas = object.spec?.replicas ?? 1;
  const strategy = object.spec?.strategy ?? {};
  const pods = Array.from({ length: replicas }, (_, i) => `${name}-* (${i + 1} of ${replicas})`);
  if (strategy.type === 'Recreate') return { pods, order: 'Recreate: every pod stops, then the new ones start (downtime)' };
  const surge = strategy.rollingUpdate?.maxSurge ?? '25%';
  const unavailable = strategy.rollingUpdate?.maxUnavailable ?? '25%';
  return { pods, order: `RollingUpdate: new pods before old ones go, maxSurge ${surge}, maxUnavailable ${unavailable}` };
}

function flagsOf(name: string, group: ComponentGroup, mode: ClusterMode | undefined, kind: string): string[] {
  if (kind !== 'StatefulSet' || !group.instance) return [];
  if (mode === ClusterMode.PLAIN && name === `${group.instance}-primary`) return [PRIMARY_RESTART_FLAG];
  if (mode === ClusterMode.HIGH_AVAILABILITY && name === group.instance) return [LEADER_FLAG];
  return [];
}

/** The pods a changed StatefulSet or Deployment replaces because its pod template changed. */
export function podRestart(pair: ObjectPair, group: ComponentGroup, mode: ClusterMode | undefined): PodRestart | undefined {
  const { before, after } = pair;
  if (!before || !after || !['StatefulSet', 'Deployment'].includes(after.kind)) return undefined;
  const reasons = templateReasons(before, after);
  if (reasons.length === 0) return undefined;
  const name = after.metadata.name;
  const { pods, order } = after.kind === 'StatefulSet' ? statefulSetPods(name, after) : deploymentPods(name, after);
  const simultaneous = mode === ClusterMode.PLAIN && after.kind === 'StatefulSet'
    ? '; kubectl apply rolls the primary and replica StatefulSets at the same time' : '';
  return { workload: objectRef(after), pods, order: order + simultaneous, reasons, flags: flagsOf(name, group, mode, after.kind) };
}

/** A replica count change in words: which pods come or go. */
export function scaling(pair: ObjectPair, mode: ClusterMode | undefined): string | undefined {
  const { before, after } = pair;
  if (!before || !after || !['StatefulSet', 'Deployment'].includes(after.kind)) return undefined;
  const from = before.spec?.replicas ?? 1;
  const to = after.spec?.replicas ?? 1;
  if (from === to) return undefined;
  const name = after.metadata.name;
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => `${name}-${a + i}`).join(', ');
  if (after.kind === 'Deployment') return `${from} -> ${to} pods`;
  if (to > from) {
    const slot = mode ? ': each clones from the primary through a new replication slot named after the pod' : '';
    return `${from} -> ${to} pods; new ${range(from, to)}${slot}`;
  }
  const slot = mode ? '; their replication slots stay on the primary and hold WAL until dropped' : '';
  return `${from} -> ${to} pods; removes ${range(to, from)} (their PVCs stay)${slot}`;
}
