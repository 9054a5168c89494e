/**
 * Strict Kubernetes manifest validation for tests, against the schemas in ../shared/schemas:
 * the library's own SchemaValidator, one per Kubernetes version, built on first use.
 */
import * as path from 'path';
import { SchemaValidator } from '../../lib/testing/schema-validator';

export type KubeVersion = 'v1.27.0' | 'v1.33.0';

export const SCHEMA_ROOT = path.resolve(__dirname, '../../../shared/schemas');

/** The project's own schema of what it renders for cert-manager (../shared has none). */
export const PROJECT_CRDS = path.resolve(__dirname, '../../schemas/crds');

const validators = new Map<KubeVersion, SchemaValidator>();

/** The validator of a Kubernetes version, with the shared CRDs and the project's. */
export function schemaValidator(version: KubeVersion): SchemaValidator {
  let validator = validators.get(version);
  if (!validator) {
    validator = new SchemaValidator({
      definitionsFile: path.join(SCHEMA_ROOT, 'kubernetes', version, '_definitions.json'),
      crdDirectories: [path.join(SCHEMA_ROOT, 'crds'), PROJECT_CRDS],
    });
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
