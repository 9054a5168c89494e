import { existsSync, readFileSync, readdirSync } from 'fs';
import * as path from 'path';
import { Names } from 'cdk8s';
import { Construct } from 'constructs';
import { parseAllDocuments } from 'yaml';
import { SchemaSourceError, SchemaValidator } from './schema-validator';

/** The properties a `cdk8s.yaml` `validations:` entry may pass to the plugin; all are optional. */
export interface KubernetesSchemaValidationProperties {
  /**
   * Kubernetes releases to validate against, among those the package ships in
   * `schemas/kubernetes/`: `1.36`, `v1.36`, `1.36.0` and `v1.36.0` all name v1.36.0.
   * @default - the oldest and the newest shipped: v1.27.0 (the oldest the library supports) and v1.36.0
   */
  readonly kubernetesVersions?: string[];
  /**
   * A Kubernetes release's own `_definitions.json` (the cdk8s project's kubernetes-schemas layout),
   * relative to where `cdk8s synth` runs. It replaces `kubernetesVersions`.
   * @default - the shipped releases of `kubernetesVersions`
   */
  readonly definitions?: string;
  /**
   * More directories of CustomResourceDefinition YAML files (searched recursively), relative to
   * where `cdk8s synth` runs, added to the package's own `schemas/crds` (prometheus-operator's
   * PodMonitor, ServiceMonitor and PrometheusRule, cert-manager's Certificate).
   * @default - only the package's CRDs
   */
  readonly crds?: string[];
}

/** The part of cdk8s-cli's ValidationContext the plugin uses (the CLI is not a dependency). */
interface ValidationContext {
  readonly manifests: readonly string[];
  /** Construct paths by `metadata.name` (cdk8s's construct-metadata.json: the last object of a name wins). */
  readonly metadata?: { readonly [name: string]: { readonly path: string } | undefined };
  readonly report: {
    addViolation(violation: {
      ruleName: string; recommendation: string; fix: string;
      violatingResources: Array<{ resourceName: string; locations: string[]; manifestPath: string }>;
    }): void;
    submit(status: 'success' | 'failure', metadata?: { [key: string]: string }): void;
  };
}

const PLUGIN = 'KubernetesSchemaValidation';
const PROPERTIES = ['kubernetesVersions', 'definitions', 'crds'];
const RELEASE = /^v(\d+)\.(\d+)\.(\d+)$/;

/** One-line configuration errors: the CLI shows the message, and a stack trace would bury it. */
function configError(message: string): Error {
  const error = new Error(`${PLUGIN}: ${message}`);
  error.stack = error.message;
  return error;
}

/**
 * The package's own folder: the first ancestor of this file with a package.json. The layout is
 * `<package>/dist/lib/testing/validation-plugin.js` once built and `<repo>/lib/testing/*.ts` under
 * ts-node or ts-jest; either way the schemas are `<package>/schemas/`.
 */
function packageRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw configError(`cannot find the cdk8s-postgres package folder above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

/** The package's schemas folder: `kubernetes/v<x.y.z>/_definitions.json` and `crds/`. */
export function packageSchemas(): string {
  return path.join(packageRoot(), 'schemas');
}

/** The Kubernetes releases the package ships, oldest first, as `v1.27.0`. */
export function shippedKubernetesVersions(): string[] {
  const dir = path.join(packageSchemas(), 'kubernetes');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw configError(`the package's ${dir} cannot be read (${(error as NodeJS.ErrnoException).code}); reinstall cdk8s-postgres`);
  }
  const parts = (release: string) => RELEASE.exec(release)!.slice(1).map(Number);
  return names.filter((name) => RELEASE.test(name)).sort((a, b) => {
    const [x, y] = [parts(a), parts(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
}

/** `1.36`, `v1.36`, `1.36.0`, `v1.36.0` -> the shipped release, the newest patch when none is given. */
function resolveVersion(value: unknown, index: number, shipped: string[]): string {
  const match = typeof value === 'string' ? /^v?(\d+)\.(\d+)(?:\.(\d+))?$/.exec(value.trim()) : null;
  const found = match && shipped.filter((release) => {
    const [, major, minor, patch] = RELEASE.exec(release)!;
    return major === match[1] && minor === match[2] && (match[3] === undefined || patch === match[3]);
  }).pop();
  if (!found) {
    const available = shipped.map((release) => `${release.replace(/^v(\d+\.\d+)\.\d+$/, '$1')} (${release})`).join(', ');
    throw configError(`properties.kubernetesVersions[${index}]: ${JSON.stringify(value)} is not a Kubernetes version this package ships; `
      + `available: ${available}; or give properties.definitions, the path of a release's _definitions.json`);
  }
  return found;
}

function stringList(properties: any, name: string): string[] | undefined {
  const value = properties[name];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.some((item) => typeof item !== 'string' || item === '')) {
    throw configError(`properties.${name}: ${JSON.stringify(value)} is not a non-empty list of strings`);
  }
  return value;
}

interface Source { readonly label: string; readonly validator: SchemaValidator }

interface Rendered {
  readonly object: any;
  readonly manifestPath: string;
  /** The dns label of the chart that wrote the manifest (cdk8s names `<label>.k8s.yaml`, `0001-<label>.k8s.yaml`). */
  readonly chartLabel: string;
}

/**
 * A cdk8s validation plugin: every synthesized object must validate strictly (unknown fields are
 * errors) against the Kubernetes schemas of the chosen releases and the CRDs, or `cdk8s synth`
 * fails with a report naming each object, the construct that made it and each bad field.
 * With no properties it uses the schemas shipped in the package: the oldest and newest
 * Kubernetes releases (v1.27.0, v1.36.0) and the prometheus-operator and cert-manager CRDs.
 * In `cdk8s.yaml`:
 *
 * ```yaml
 * validations:
 *   - package: ./node_modules/cdk8s-postgres/dist/lib/testing/validation-plugin.js
 *     class: KubernetesSchemaValidation
 *     version: 0.0.0
 * ```
 */
export class KubernetesSchemaValidation {
  private readonly sources: Source[];

  constructor(properties: KubernetesSchemaValidationProperties = {}) {
    const props: any = properties ?? {};
    if (typeof props !== 'object' || Array.isArray(props)) {
      throw configError(`properties must be a map of ${PROPERTIES.join(', ')}, not ${JSON.stringify(props)}`);
    }
    const unknown = Object.keys(props).filter((key) => !PROPERTIES.includes(key));
    if (unknown.length > 0) {
      throw configError(`properties.${unknown[0]} is not a property of the plugin; its properties are ${PROPERTIES.join(', ')} (all optional)`);
    }
    const versions = stringList(props, 'kubernetesVersions');
    const crds = stringList(props, 'crds') ?? [];
    const definitions = props.definitions;
    if (definitions !== undefined && (typeof definitions !== 'string' || definitions === '')) {
      throw configError(`properties.definitions: ${JSON.stringify(definitions)} is not a path; give the path of a Kubernetes release's _definitions.json relative to where cdk8s synth runs`);
    }
    if (definitions !== undefined && versions !== undefined) {
      throw configError('properties.definitions replaces properties.kubernetesVersions; give one of them');
    }

    const schemas = packageSchemas();
    const cwd = process.cwd();
    const crdDirectories = [path.join(schemas, 'crds'), ...crds.map((dir) => path.resolve(cwd, dir))];
    const build = (label: string, definitionsFile: string, definitionsProperty: string | undefined): Source => {
      try {
        return { label, validator: new SchemaValidator({ definitionsFile, crdDirectories }) };
      } catch (error) {
        if (!(error instanceof SchemaSourceError)) throw error;
        if (error.option === 'definitionsFile' && definitionsProperty) {
          throw configError(`${definitionsProperty}: ${error.problem}; give the path of a Kubernetes release's _definitions.json relative to where cdk8s synth runs`);
        }
        if (error.option === 'crdDirectories' && error.index !== undefined && error.index > 0) {
          throw configError(`properties.crds[${error.index - 1}]: ${error.problem}; give a directory of CustomResourceDefinition YAML files relative to where cdk8s synth runs`);
        }
        throw configError(`the package's own schemas: ${error.problem}; reinstall cdk8s-postgres`);
      }
    };

    if (definitions !== undefined) {
      const file = path.resolve(cwd, definitions);
      const release = path.basename(path.dirname(file));
      this.sources = [build(RELEASE.test(release) ? release : definitions, file, 'properties.definitions')];
    } else {
      const shipped = shippedKubernetesVersions();
      if (shipped.length === 0) throw configError(`the package's ${path.join(schemas, 'kubernetes')} has no release; reinstall cdk8s-postgres`);
      const chosen = versions?.map((value, index) => resolveVersion(value, index, shipped))
        ?? [shipped[0], shipped[shipped.length - 1]];
      this.sources = [...new Set(chosen)].map((release) => build(release, path.join(schemas, 'kubernetes', release, '_definitions.json'), undefined));
    }
  }

  public async validate(context: ValidationContext): Promise<void> {
    const rendered: Rendered[] = [];
    const perManifest = new Map<string, { objects: number; invalid: number }>();
    for (const manifestPath of context.manifests) {
      const chartLabel = path.basename(manifestPath).replace(/^\d{4}-/, '').split('.')[0];
      const counts = { objects: 0, invalid: 0 };
      perManifest.set(manifestPath, counts);
      for (const document of parseAllDocuments(readFileSync(manifestPath, 'utf8'))) {
        const object = document.toJS();
        if (object === null || object === undefined) continue;
        counts.objects += 1;
        rendered.push({ object, manifestPath, chartLabel });
      }
    }
    const attribution = new Attribution(rendered, context.manifests.length, context.metadata ?? {});

    let invalid = 0;
    for (const item of rendered) {
      // Releases with the same problems are reported together.
      const problems = new Map<string, string[]>();
      for (const { label, validator } of this.sources) {
        const errors = validator.validate(item.object);
        if (errors.length === 0) continue;
        const key = errors.join('\n');
        problems.set(key, [...(problems.get(key) ?? []), label]);
      }
      if (problems.size === 0) continue;
      invalid += 1;
      perManifest.get(item.manifestPath)!.invalid += 1;
      const failing = [...problems.values()].flat();
      const who = attribution.of(item);
      // SchemaValidator's lines are `Kind/name: /pointer: message`; the rule names the object.
      const lines = [...problems].flatMap(([errors, labels]) => errors.split('\n')
        .map((line) => `Kubernetes ${labels.join(', ')}: ${line.slice(line.indexOf(': ') + 2)}`));
      context.report.addViolation({
        ruleName: `${who.object}${who.construct ? ` (${who.construct})` : ''} does not validate against Kubernetes ${failing.join(', ')}`,
        recommendation: [...lines, ...(who.note ? [who.note] : [])].join('\n'),
        fix: 'change the props of the construct named above; an escape hatch (JSON patch) must write fields the schema knows',
        violatingResources: [{
          resourceName: who.resourceName,
          locations: [...new Set(lines.map((line) => line.split(': ')[1]))],
          manifestPath: item.manifestPath,
        }],
      });
    }
    const summary: { [key: string]: string } = {
      kubernetes: this.sources.map((source) => source.label).join(', '),
      objects: String(rendered.length),
      invalid: String(invalid),
    };
    for (const [manifestPath, counts] of perManifest) {
      summary[path.basename(manifestPath)] = counts.invalid === 0
        ? `${counts.objects} objects valid` : `${counts.invalid} of ${counts.objects} objects invalid`;
    }
    context.report.submit(invalid === 0 ? 'success' : 'failure', summary);
  }
}

/** What a report says about who made an object. */
interface Who {
  /** `Kind namespace/name`. */
  readonly object: string;
  /** The CLI looks it up in the construct metadata: the object's name when that entry is the object's own. */
  readonly resourceName: string;
  /** `construct <path>` or `made by construct <path>`, for the rule name. */
  readonly construct?: string;
  /** Why the construct is not the CLI's "Construct Path". */
  readonly note?: string;
}

/**
 * Construct paths for objects. cdk8s's construct-metadata.json maps `metadata.name` to the path of
 * the last object of that name it synthesized (charts in app order, each chart's objects in its
 * manifest's order), so objects sharing a name (a construct's Certificate, NetworkPolicy,
 * PodDisruptionBudget and ServiceAccount all take its name; overlays repeat names in each chart)
 * would all be given that one object's path. Here:
 * - an object whose name is unique, or that is the recorded one, gets the recorded path;
 * - another object of the same chart gets the construct that made the recorded one
 *   (the recorded path's parent, above a cdk8s-plus `Resource`), stated as "made by construct";
 *   the CLI is given a resource name the metadata lacks, so it prints no wrong path;
 * - an object of another chart gets only its chart.
 */
class Attribution {
  private readonly byName = new Map<string, Rendered[]>();
  private readonly labels = new Map<string, string>();

  constructor(private readonly rendered: Rendered[], private readonly manifests: number,
    private readonly metadata: { readonly [name: string]: { readonly path: string } | undefined }) {
    for (const item of rendered) {
      const name = item.object?.metadata?.name;
      if (typeof name === 'string') this.byName.set(name, [...(this.byName.get(name) ?? []), item]);
    }
  }

  public of(item: Rendered): Who {
    const { kind, metadata } = item.object ?? {};
    const name = typeof metadata?.name === 'string' ? metadata.name : undefined;
    const object = `${typeof kind === 'string' ? kind : '<no kind>'} ${typeof metadata?.namespace === 'string' ? `${metadata.namespace}/` : ''}${name ?? '<no name>'}`;
    const recorded = name === undefined ? undefined : this.metadata[name]?.path;
    if (name === undefined || recorded === undefined) return { object, resourceName: name ?? object };
    const namesakes = this.byName.get(name)!;
    const owner = this.recordedOwner(namesakes, recorded);
    if (namesakes.length === 1 || owner === item) return { object, resourceName: name, construct: `construct ${recorded}` };
    const resourceName = `${kind}/${name}`; // a '/' is never in a metadata.name, so the CLI prints no path
    const describe = (other: Rendered) => `${other.object.kind} ${other.object.metadata?.namespace ? `${other.object.metadata.namespace}/` : ''}${name}`;
    if (owner && owner.manifestPath === item.manifestPath) {
      const segments = recorded.split('/');
      if (segments[segments.length - 1] === 'Resource') segments.pop();
      segments.pop();
      const creator = segments.join('/');
      return {
        object, resourceName, construct: `made by construct ${creator}`,
        note: `(cdk8s records one construct path per object name; ${recorded} is the path of ${describe(owner)}, `
          + 'a sibling made by the same construct, which gives its objects one name)',
      };
    }
    return {
      object, resourceName, construct: `made in chart ${item.chartLabel}`,
      note: `(cdk8s records one construct path per object name, here that of ${owner ? describe(owner) : 'an object'} at ${recorded})`,
    };
  }

  /** The object whose path cdk8s recorded: the last of that name in the recorded path's chart. */
  private recordedOwner(namesakes: Rendered[], recorded: string): Rendered | undefined {
    if (this.manifests === 1) return namesakes[namesakes.length - 1];
    const segments = recorded.split('/');
    const charts = new Set(this.rendered.map((item) => item.chartLabel));
    // The longest prefix of the path whose dns label names a manifest (charts may nest).
    for (let length = segments.length - 1; length >= 1; length--) {
      const label = this.dnsLabel(segments.slice(0, length));
      if (charts.has(label)) return namesakes.filter((item) => item.chartLabel === label).pop();
    }
    return undefined;
  }

  /** cdk8s's chart file name for a construct path, computed as cdk8s does (Names.toDnsLabel). */
  private dnsLabel(segments: string[]): string {
    const key = segments.join('/');
    let label = this.labels.get(key);
    if (label === undefined) {
      let scope = new Construct(undefined as any, '');
      for (const id of segments) scope = new Construct(scope, id);
      label = Names.toDnsLabel(scope);
      this.labels.set(key, label);
    }
    return label;
  }
}
