import { podSpecs, secretReads, secretsCreated } from '../required-secrets';
import { KubeObject, objectRef } from './manifests';
import { sameValue } from './object-diff';

/** The Secrets the pods of a set of objects read, as `namespace/name`, that the objects do not create (cert-manager's count as created). */
export function readSecrets(objects: KubeObject[]): Map<string, string[]> {
  const created = secretsCreated(objects);
  const reads = new Map<string, string[]>();
  for (const object of objects) {
    const namespace = object.metadata?.namespace ?? '';
    for (const spec of podSpecs(object)) {
      for (const { secretName } of secretReads(spec)) {
        const key = `${namespace}/${secretName}`;
        if (created.has(key)) continue;
        reads.set(key, [...new Set([...reads.get(key) ?? [], objectRef(object)])]);
      }
    }
  }
  return reads;
}

/** What changed in a Certificate that the user must check before applying: issuer and DNS names. */
export function certificateChange(before: KubeObject | undefined, after: KubeObject): string | undefined {
  if (after.kind !== 'Certificate') return undefined;
  const describe = (o: KubeObject) => `issuer ${o.spec?.issuerRef?.kind ?? 'Issuer'}/${o.spec?.issuerRef?.name}, dnsNames ${(o.spec?.dnsNames ?? []).join(', ')}`;
  if (!before) return `new Certificate (${describe(after)}): the issuer must exist and be ready before the pods that mount its Secret start`;
  if (sameValue(before.spec?.issuerRef, after.spec?.issuerRef) && sameValue(before.spec?.dnsNames, after.spec?.dnsNames)) return undefined;
  return `Certificate changed from (${describe(before)}) to (${describe(after)}): cert-manager reissues it; the issuer must exist, and clients verifying host names must accept the new names`;
}
