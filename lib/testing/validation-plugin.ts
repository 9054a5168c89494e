import { readFileSync } from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { SchemaValidator } from './schema-validator';

/** The properties a `cdk8s.yaml` `validations:` entry passes to the plugin. */
export interface KubernetesSchemaValidationProperties {
  /** A Kubernetes release's `_definitions.json`, relative to where `cdk8s synth` runs. */
  readonly definitions: string;
  /** Directories of CustomResourceDefinitions to validate custom resources against. */
  readonly crds?: string[];
}

/** The part of cdk8s-cli's ValidationContext the plugin uses (the CLI is not a dependency). */
interface ValidationContext {
  readonly manifests: readonly string[];
  readonly report: {
    addViolation(violation: {
      ruleName: string; recommendation: string; fix: string;
      violatingResources: Array<{ resourceName: string; locations: string[]; manifestPath: string }>;
    }): void;
    submit(status: 'success' | 'failure', metadata?: { [key: string]: string }): void;
  };
}

/**
 * A cdk8s validation plugin: every synthesized object must validate strictly against the
 * Kubernetes schema of the chosen release (and the given CRDs), or `cdk8s synth` fails with a
 * report naming each object's construct path. In `cdk8s.yaml`:
 *
 * ```yaml
 * validations:
 *   - package: ./node_modules/cdk8s-postgres/dist/lib/testing/validation-plugin.js
 *     class: KubernetesSchemaValidation
 *     version: 0.0.0
 *     properties:
 *       definitions: kubernetes-schemas/v1.27.0/_definitions.json
 * ```
 */
export class KubernetesSchemaValidation {
  private readonly validator: SchemaValidator;
  private readonly release: string;

  constructor(properties: KubernetesSchemaValidationProperties) {
    if (typeof properties?.definitions !== 'string') {
      throw new Error('KubernetesSchemaValidation: properties.definitions is unset; give the path of a Kubernetes release\'s _definitions.json');
    }
    const resolve = (file: string) => path.resolve(process.cwd(), file);
    this.validator = new SchemaValidator({ definitionsFile: resolve(properties.definitions), crdDirectories: (properties.crds ?? []).map(resolve) });
    this.release = path.basename(path.dirname(properties.definitions));
  }

  public async validate(context: ValidationContext): Promise<void> {
    let objects = 0;
    let invalid = 0;
    for (const manifestPath of context.manifests) {
      for (const document of parseAllDocuments(readFileSync(manifestPath, 'utf8'))) {
        const object = document.toJS();
        if (object === null || object === undefined) continue;
        objects += 1;
        const errors = this.validator.validate(object);
        if (errors.length === 0) continue;
        invalid += 1;
        context.report.addViolation({
          ruleName: `${object.kind}/${object.metadata?.name} does not validate against Kubernetes ${this.release}`,
          recommendation: errors.join('\n'),
          fix: 'change the props of the construct named above; an escape hatch (JSON patch) must write fields the schema knows',
          violatingResources: [{ resourceName: object.metadata?.name, locations: errors.map((error) => error.split(': ')[1]), manifestPath }],
        });
      }
    }
    context.report.submit(invalid === 0 ? 'success' : 'failure', { release: this.release, objects: String(objects), invalid: String(invalid) });
  }
}
