import { SecretStore } from './cluster-harness';
import { findObject } from '../../support/synth';

/**
 * A container's environment as the kubelet gives it: literal values as they are (or through
 * `literal`), secretKeyRefs from the store and configMapKeyRefs from `objects`; a missing Secret,
 * key or ConfigMap throws.
 */
export function resolveEnv(container: any, secrets: SecretStore, objects: any[] = [],
  literal: (value: string) => string = (value) => value): { [name: string]: string } {
  const env: { [name: string]: string } = {};
  for (const variable of container.env ?? []) {
    const secretRef = variable.valueFrom?.secretKeyRef;
    const configRef = variable.valueFrom?.configMapKeyRef;
    let value: string | undefined;
    if (secretRef) value = secrets[secretRef.name]?.[secretRef.key];
    else if (configRef) value = findObject(objects, 'ConfigMap', configRef.name).data?.[configRef.key];
    else value = literal(variable.value);
    if (value === undefined) throw new Error(`no value for ${variable.name} (${JSON.stringify(variable.valueFrom)})`);
    env[variable.name] = value;
  }
  return env;
}
