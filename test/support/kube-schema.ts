/**
 * Strict Kubernetes manifest validation for tests, against the schemas the package ships in
 * schemas/ (see the PROVENANCE.md files there): the library's own SchemaValidator, one per Kubernetes
 * version, built on first use, with every CRD in schemas/crds.
 */
import * as path from 'path';
import { SchemaValidator } from '../../lib/testing/schema-validator';

/** The oldest Kubernetes the library supports (cdk8s-plus-27) and the newest. */
export type KubeVersion = 'v1.27.0' | 'v1.36.0';

/** Every version the package ships, oldest first. */
export const KUBE_VERSIONS: readonly KubeVersion[] = ['v1.27.0', 'v1.36.0'];

export const SCHEMA_ROOT = path.resolve(__dirname, '../../schemas');

/** The CRDs the package ships: prometheus-operator's and cert-manager's Certificate. */
export const PROJECT_CRDS = path.join(SCHEMA_ROOT, 'crds');

export const definitionsFile = (version: KubeVersion) => path.join(SCHEMA_ROOT, 'kubernetes', version, '_definitions.json');

const validators = new Map<KubeVersion, SchemaValidator>();

/** The validator of a Kubernetes version, with the package's CRDs. */
export function schemaValidator(version: KubeVersion): SchemaValidator {
  let validator = validators.get(version);
  if (!validator) {
    validator = new SchemaValidator({ definitionsFile: definitionsFile(version), crdDirectories: [PROJECT_CRDS] });
    validators.set(version, validator);
  }
  return validator;
}

export function validateManifest(obj: any, version: KubeVersion): string[] {
  return schemaValidator(version).validate(obj);
}

export function validateManifests(objs: any[], version: KubeVersion): string[] {
  return schemaValidator(version).validateAll(objs);
}
