import * as fs from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

/** One Kubernetes object as parsed from YAML. */
export type KubeObject = { [key: string]: any };

/** The objects of a multi-document YAML text; `kind: List` is flattened, empty documents skipped. */
export function parseManifests(text: string, source: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      throw new Error(`${source}: not valid YAML (${doc.errors[0].message.split('\n')[0]}); give the manifests cdk8s synth wrote`);
    }
    const value = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value) || !value.kind) {
      throw new Error(`${source}: a YAML document is not a Kubernetes object (no kind); give the manifests cdk8s synth wrote`);
    }
    objects.push(...(value.kind === 'List' || /List$/.test(value.kind) ? value.items ?? [] : [value]));
  }
  return objects;
}

/** The YAML files of a directory, recursively, sorted so the result does not depend on the file system. */
function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return yamlFiles(full);
      return /\.ya?ml$/.test(entry.name) ? [full] : [];
    });
}

/** The objects of a directory of `*.yaml` files or of one multi-document YAML file. */
export function readManifests(location: string): KubeObject[] {
  if (!fs.existsSync(location)) {
    throw new Error(`${location} does not exist; give a directory of *.k8s.yaml files or one YAML file`);
  }
  const files = fs.statSync(location).isDirectory() ? yamlFiles(location) : [location];
  return files.flatMap((file) => parseManifests(fs.readFileSync(file, 'utf8'), file));
}

/** The API group of an object: `apps` for `apps/v1`, empty for the core group `v1`. */
export function apiGroup(object: KubeObject): string {
  const apiVersion = String(object.apiVersion ?? '');
  return apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
}

/** What matches an object before and after: API group, kind, namespace and name (not the version). */
export function objectKey(object: KubeObject): string {
  return [apiGroup(object), object.kind, object.metadata?.namespace ?? '', object.metadata?.name ?? ''].join('|');
}

/** How the report names an object: `Kind/name`. */
export function objectRef(object: KubeObject): string {
  return `${object.kind}/${object.metadata?.name ?? '(unnamed)'}`;
}
