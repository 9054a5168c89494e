import { createHash } from 'crypto';

/**
 * A digest of rendered files for a pod-template annotation: when a config changes the pod
 * template changes, and Kubernetes rolls the pods.
 */
export function configChecksum(files: { [fileName: string]: string }): string {
  const hash = createHash('sha256');
  for (const name of Object.keys(files).sort()) {
    hash.update(name).update('\0').update(files[name]).update('\0');
  }
  return hash.digest('hex');
}
