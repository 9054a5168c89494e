import { apiGroup, KubeObject, objectRef } from './manifests';
import { sameValue, valueAt } from './object-diff';

/** A field the API server refuses to change, and the way to make the change instead. */
interface ImmutableField {
  readonly group: string;
  readonly kind: string;
  readonly path: string;
  /** Only when the old value is set (a Service's clusterIP is assigned by the server when empty). */
  readonly onlyWhenSet?: boolean;
  readonly fix: (name: string) => string;
}

const RECREATE_STS = (name: string) => `kubectl delete sts ${name} --cascade=orphan (the pods and PVCs stay), then apply: the new StatefulSet adopts the pods`;

const IMMUTABLE_FIELDS: ImmutableField[] = [
  { group: 'apps', kind: 'StatefulSet', path: 'spec.selector', fix: (n) => `${RECREATE_STS(n)}; better keep the selector: it follows the labels, not the construct path` },
  { group: 'apps', kind: 'StatefulSet', path: 'spec.serviceName', fix: RECREATE_STS },
  {
    group: 'apps', kind: 'StatefulSet', path: 'spec.volumeClaimTemplates',
    fix: (n) => `${RECREATE_STS(n)}; PVCs keep their data and the template does not resize existing PVCs: resize each PVC (kubectl patch pvc <claim>-${n}-<ordinal>) if its StorageClass allows expansion`,
  },
  { group: 'apps', kind: 'StatefulSet', path: 'spec.podManagementPolicy', fix: RECREATE_STS },
  { group: 'apps', kind: 'Deployment', path: 'spec.selector', fix: (n) => `kubectl delete deployment ${n}, then apply (its pods stop: plan the downtime)` },
  { group: '', kind: 'Service', path: 'spec.clusterIP', onlyWhenSet: true, fix: (n) => `kubectl delete service ${n}, then apply (clients see a new address)` },
];

/** A refused change of one object. */
export interface RefusedChange {
  readonly objectRef: string;
  readonly path: string;
  readonly fix: string;
}

/** The immutable fields that differ between two versions of an object. */
export function refusedChanges(before: KubeObject, after: KubeObject): RefusedChange[] {
  return IMMUTABLE_FIELDS
    .filter((field) => field.group === apiGroup(after) && field.kind === after.kind)
    .filter((field) => !(field.onlyWhenSet && !valueAt(before, field.path)))
    .filter((field) => !sameValue(valueAt(before, field.path), valueAt(after, field.path)))
    .map((field) => ({ objectRef: objectRef(after), path: field.path, fix: field.fix(after.metadata.name) }));
}
