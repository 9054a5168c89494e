import { k8s } from './kube';
import { volumeMount } from './pod-volumes';

/** What a claim asks for: a ReadWriteOnce volume of a size, of a storage class or the cluster's default. */
export function readWriteOnceClaimSpec(size: string, storageClassName?: string): k8s.PersistentVolumeClaimSpec {
  return {
    accessModes: ['ReadWriteOnce'],
    ...(storageClassName ? { storageClassName } : {}),
    resources: { requests: { storage: k8s.Quantity.fromString(size) } },
  };
}

/**
 * A StatefulSet's claim template and the volume its pods mount it as. The template carries only
 * the workload's fixed selector labels: volumeClaimTemplates cannot change on a live StatefulSet.
 */
export class ClaimTemplate {
  /** The entry of the StatefulSet's volumeClaimTemplates. */
  public readonly template: k8s.KubePersistentVolumeClaimProps;

  /**
   * @param name the claim's name, which the pods mount it by
   * @param selector the workload's selector labels
   * @param spec what the claim asks for, such as readWriteOnceClaimSpec()
   */
  constructor(public readonly name: string, selector: { [key: string]: string }, spec: k8s.PersistentVolumeClaimSpec) {
    this.template = { metadata: { name, labels: { ...selector } }, spec };
  }

  /** A mount of the claimed volume at `mountPath`. */
  public mount(mountPath: string, readOnly = false): k8s.VolumeMount {
    return volumeMount(this.name, mountPath, readOnly);
  }
}
