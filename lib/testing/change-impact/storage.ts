import { ObjectPair } from './components';
import { objectRef } from './manifests';
import { StorageChange } from './report-types';
import { quantityValue } from '../../core/quantity';

function claims(object: any): { [claim: string]: string | undefined } {
  return Object.fromEntries((object?.spec?.volumeClaimTemplates ?? [])
    .map((t: any) => [t.metadata?.name, t.spec?.resources?.requests?.storage === undefined ? undefined : String(t.spec.resources.requests.storage)]));
}

function note(before: string | undefined, after: string | undefined): string {
  if (before === undefined) return 'new volume claim template: refused on an existing StatefulSet (immutable); recreate it with --cascade=orphan';
  if (after === undefined) return 'volume claim template removed: refused on an existing StatefulSet; the PVCs and their data stay';
  const from = quantityValue(before);
  const to = quantityValue(after);
  if (from !== undefined && to !== undefined && to < from) {
    return 'shrink: refused (volumeClaimTemplates are immutable) and a PVC cannot shrink: keep the size, or migrate the data to a new cluster';
  }
  return 'growth: refused through the template (immutable); resize each existing PVC if its StorageClass allows expansion, then recreate the StatefulSet with --cascade=orphan';
}

/** Each volume claim template's storage request before and after, of a StatefulSet present on both sides. */
export function storageChanges(pair: ObjectPair): StorageChange[] {
  if (pair.before?.kind !== 'StatefulSet' || !pair.after) return [];
  const before = claims(pair.before);
  const after = claims(pair.after);
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    .filter((claim) => before[claim] !== after[claim])
    .map((claim) => ({
      workload: objectRef(pair.after!), claim, before: before[claim], after: after[claim], note: note(before[claim], after[claim]),
    }));
}
