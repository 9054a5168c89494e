import { ClusterMode } from './classify-setting';
import { ComponentGroup, sideMode } from './components';
import { KubeObject } from './manifests';
import { Acknowledgement, ChangeImpactFinding, FindingCategory } from './report-types';

/** The members' StatefulSets on one side: `<instance>` in the HA mode, `<instance>-primary` and `-replica` in the plain one. */
function memberSets(group: ComponentGroup, side: 'before' | 'after'): KubeObject[] {
  const names = [group.instance, `${group.instance}-primary`, `${group.instance}-replica`];
  return group.pairs.map((pair) => pair[side]).filter((o): o is KubeObject => o?.kind === 'StatefulSet' && names.includes(o.metadata?.name));
}

/** The claims a StatefulSet's pods get: `<template>-<statefulset>-<ordinal>`. */
function claims(sets: KubeObject[]): string {
  return sets.flatMap((set) => (set.spec?.volumeClaimTemplates ?? []).map((t: any) => `${t.metadata?.name}-${set.metadata.name}-*`)).join(', ');
}

const refs = (sets: KubeObject[]) => sets.map((set) => `StatefulSet/${set.metadata.name}`).join(' and ');

/**
 * A cluster switching between the plain and the HA mode (highAvailability turned on or off):
 * the members are other StatefulSets, whose pods get new claims, so the apply creates an empty
 * cluster beside the old one instead of changing it.
 */
export function topologyChange(group: ComponentGroup): Omit<ChangeImpactFinding, 'component'> | undefined {
  const before = sideMode(group, 'before');
  const after = sideMode(group, 'after');
  if (before === undefined || after === undefined || before === after) return undefined;
  const old = memberSets(group, 'before');
  const next = memberSets(group, 'after');
  const turnedOn = after === ClusterMode.HIGH_AVAILABILITY;
  const config = `ConfigMap/${group.instance}-config`;
  return {
    category: FindingCategory.TOPOLOGY,
    gate: Acknowledgement.TOPOLOGY_CHANGE,
    objectRef: next.length > 0 ? `StatefulSet/${next[0].metadata.name}` : undefined,
    message: `highAvailability turned ${turnedOn ? 'on' : 'off'}: the members move from ${refs(old)} to ${refs(next)}, `
      + `whose pods start on new claims (${claims(next)}) with an empty cluster (initdb, or a restore with backup.restore); `
      + `the data stays on ${claims(old)}, and the old pods keep running until their StatefulSets are deleted or pruned`,
    fix: 'not an in-place change: keep this environment\'s mode, or migrate in a maintenance window: stop the writers, take the data out '
      + '(pg_dump, or let the last WAL reach the backup repository and set backup.restore), delete the old StatefulSets and '
      + `${config} (${turnedOn ? 'the plain mode\'s, whose name Patroni\'s configuration takes' : 'Patroni\'s, whose initialize key would '
        + 'keep a later HA cluster from bootstrapping'}), apply, load the data; acknowledge with --allow topology-change`,
  };
}
