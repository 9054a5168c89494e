import * as fs from 'fs';
import * as path from 'path';
// Types only: ajv is required when the first SchemaValidator is built, so a plain
// `require('cdk8s-postgres')` never loads it.
import type Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

/** Where the schemas are: the layout of the cdk8s project's kubernetes-schemas folder. */
export interface SchemaSources {
  /** A Kubernetes release's `_definitions.json` (OpenAPI definitions carrying x-kubernetes-group-version-kind). */
  readonly definitionsFile: string;
  /**
   * Directories of CustomResourceDefinition YAML files, searched recursively, such as the prometheus-operator's.
   * @default - none: custom resources are refused as unknown kinds
   */
  readonly crdDirectories?: string[];
}

const OBJECT_META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';

interface Gvk { group: string; version: string; kind: string }

const gvkKey = ({ group, version, kind }: Gvk) => `${group}/${version}/${kind}`;

/**
 * Close every object schema that lists its properties. Maps (explicit
 * additionalProperties) and x-kubernetes-preserve-unknown-fields nodes stay
 * open, but their declared children are still closed, as in API server pruning.
 */
function closeObjects(schema: any): void {
  if (schema === null || typeof schema !== 'object') return;
  if (Array.isArray(schema)) {
    schema.forEach(closeObjects);
    return;
  }
  if (schema.properties && schema.additionalProperties === undefined
    && schema['x-kubernetes-preserve-unknown-fields'] !== true) {
    schema.additionalProperties = false;
  }
  for (const key of ['properties', 'patternProperties']) {
    Object.values(schema[key] ?? {}).forEach(closeObjects);
  }
  for (const key of ['items', 'additionalProperties', 'allOf', 'anyOf', 'oneOf', 'not']) {
    closeObjects(schema[key]);
  }
}

/**
 * A schema file or directory that cannot be used: `option` is the SchemaSources field
 * (`definitionsFile`, or `crdDirectories` with its index), `problem` says what is wrong with `file`.
 * The message is one line; the validation plugin rethrows it under its own property names.
 */
export class SchemaSourceError extends Error {
  constructor(
    public readonly option: 'definitionsFile' | 'crdDirectories',
    public readonly index: number | undefined,
    public readonly file: string,
    public readonly problem: string,
  ) {
    super(`SchemaValidator: ${option}${index === undefined ? '' : `[${index}]`}: ${problem}; ${option === 'definitionsFile'
      ? 'give the path of a Kubernetes release\'s _definitions.json'
      : 'give a directory of CustomResourceDefinition YAML files'}`);
    this.name = 'SchemaSourceError';
  }
}

/** The first line of an error's message, with its code (ENOENT) when it is a system error. */
const firstLine = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0].trim();
const cannotRead = (file: string, error: unknown) => {
  const code = (error as NodeJS.ErrnoException)?.code;
  return `cannot read ${file} (${code ?? firstLine(error)})`;
};

/** ajv (bundled with the package) loads on first use, so importing the library does not pay for it. */
function loadAjv(): typeof Ajv {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('ajv').default;
}

function loadDefinitions(file: string): { [name: string]: any } {
  const source = 'definitionsFile';
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new SchemaSourceError(source, undefined, file, cannotRead(file, error));
  }
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SchemaSourceError(source, undefined, file, `${file} is not JSON (${firstLine(error)})`);
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.definitions === null || typeof parsed.definitions !== 'object') {
    throw new SchemaSourceError(source, undefined, file, `${file} has no "definitions" object, so it is not a Kubernetes _definitions.json`);
  }
  return parsed.definitions;
}

function loadCrds(directories: string[]): Array<{ gvk: Gvk; schema: any }> {
  const crds: Array<{ gvk: Gvk; schema: any }> = [];
  directories.forEach((directory, index) => {
    const fail = (file: string, problem: string) => new SchemaSourceError('crdDirectories', index, file, problem);
    let files: string[];
    try {
      files = (fs.readdirSync(directory, { recursive: true }) as string[]).filter((f) => /\.ya?ml$/.test(f)).sort();
    } catch (error) {
      throw fail(directory, cannotRead(directory, error));
    }
    for (const name of files) {
      const file = path.join(directory, name);
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (error) {
        throw fail(file, cannotRead(file, error));
      }
      for (const doc of parseAllDocuments(text)) {
        if (doc.errors.length > 0) throw fail(file, `${file} is not YAML (${firstLine(doc.errors[0])})`);
        const crd = doc.toJS();
        if (crd?.kind !== 'CustomResourceDefinition') continue;
        if (!Array.isArray(crd.spec?.versions) || typeof crd.spec.group !== 'string' || typeof crd.spec.names?.kind !== 'string') {
          throw fail(file, `${file}: CustomResourceDefinition ${crd.metadata?.name} has no spec.group, spec.names.kind or spec.versions`);
        }
        for (const v of crd.spec.versions) {
          const schema = v.schema?.openAPIV3Schema;
          if (v.served && schema) crds.push({ gvk: { group: crd.spec.group, version: v.name, kind: crd.spec.names.kind }, schema });
        }
      }
    }
  });
  return crds;
}

// Integer bounds are checked because the API server rejects out-of-range int32
// values; int64 can only be bounded approximately with JS doubles.
const int32 = (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n <= 2 ** 31 - 1;
const int64 = (n: number) => Number.isInteger(n) && Math.abs(n) <= 2 ** 63;

/**
 * CRD patterns are Go RE2 syntax; some use inline flags such as `^(?i)(abort|warn)?$`
 * that JS rejects. Hoisting them to RegExp flags is exact for a leading group and
 * slightly lenient otherwise. `code` only matters for Ajv standalone output.
 */
const goRegExp = Object.assign((pattern: string, flags: string) => {
  let extra = '';
  const source = pattern.replace(/\(\?([ims]+)\)/g, (_m, f: string) => {
    extra += f;
    return '';
  });
  return new RegExp(source, [...new Set(flags + extra)].join(''));
}, { code: 'goRegExp' });

/**
 * Strict validation of Kubernetes objects against a release's OpenAPI definitions and CRDs.
 * The schemas are closed (unknown fields are errors at every depth) because the API server
 * silently prunes or rejects unknown fields, and a typo would otherwise pass every test.
 */
export class SchemaValidator {
  private readonly ajv: Ajv;
  /** "group/version/kind" -> Ajv schema ref (a definition or a CRD version). */
  private readonly refs = new Map<string, string>();
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly sources: SchemaSources) {
    if (typeof sources?.definitionsFile !== 'string') {
      throw new SchemaSourceError('definitionsFile', undefined, String(sources?.definitionsFile), 'is unset');
    }
    if (sources.crdDirectories !== undefined && !Array.isArray(sources.crdDirectories)) {
      throw new SchemaSourceError('crdDirectories', undefined, String(sources.crdDirectories), 'is not a list of directories');
    }
    // Loaded here, not at the top: a plain require of the library must not load ajv.
    const AjvClass = loadAjv();
    // validateSchema is off: the upstream schemas are trusted and meta-validating them costs startup time.
    const ajv = new AjvClass({ strict: false, allErrors: true, validateSchema: false, code: { regExp: goRegExp } });
    ajv.addFormat('int32', { type: 'number', validate: int32 });
    ajv.addFormat('int64', { type: 'number', validate: int64 });
    ajv.addFormat('double', { type: 'number', validate: () => true });
    // Secret.data / ConfigMap.binaryData must be standard base64 or the server rejects them.
    ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
    ajv.addFormat('date-time', true);
    ajv.addFormat('int-or-string', true);

    // Absolute ids, so refs from CRD schemas resolve to the definitions document.
    const defsId = 'https://schemas.invalid/kubernetes/definitions.json';
    const definitions = loadDefinitions(sources.definitionsFile);
    for (const [name, schema] of Object.entries<any>(definitions)) {
      closeObjects(schema);
      for (const gvk of schema['x-kubernetes-group-version-kind'] ?? []) {
        this.refs.set(gvkKey(gvk), `${defsId}#/definitions/${name}`);
      }
    }
    ajv.addSchema({ definitions }, defsId);
    for (const { gvk, schema } of loadCrds(sources.crdDirectories ?? [])) {
      closeObjects(schema);
      // CRDs declare metadata as a bare object; the API server validates it as ObjectMeta.
      if (schema.properties) schema.properties.metadata = { $ref: `${defsId}#/definitions/${OBJECT_META}` };
      const id = `https://schemas.invalid/crds/${gvkKey(gvk)}.json`;
      ajv.addSchema(schema, id);
      this.refs.set(gvkKey(gvk), id);
    }
    this.ajv = ajv;
  }

  /** The problems of one object, each as `Kind/name: /json/pointer: message`; none when it is valid. */
  public validate(obj: any): string[] {
    const kind = typeof obj?.kind === 'string' ? obj.kind : '<no kind>';
    const name = typeof obj?.metadata?.name === 'string' ? obj.metadata.name : '<no name>';
    const prefix = (line: string) => `${kind}/${name}: ${line}`;
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return [prefix('/: manifest must be an object')];
    if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') return [prefix('/: apiVersion and kind must be strings')];
    const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/', 2) : ['', obj.apiVersion];
    const validate = this.validatorFor(gvkKey({ group, version, kind }));
    if (!validate) {
      return [prefix(`/: unknown apiVersion/kind ${obj.apiVersion} ${kind} (not in ${path.basename(path.dirname(this.sources.definitionsFile))} or the loaded CRDs)`)];
    }
    const errors = validate(obj) ? [] : describe(validate.errors ?? []);
    // The schema cannot express it, but the API server refuses objects it cannot name.
    if (obj.metadata?.name === undefined && obj.metadata?.generateName === undefined) errors.push('/metadata/name: required field missing');
    return errors.map(prefix);
  }

  /** The problems of all objects. */
  public validateAll(objects: any[]): string[] {
    return objects.flatMap((obj) => this.validate(obj));
  }

  /** Compiled on first use: a Deployment pulls in ~100 definitions, most manifests need a handful of kinds. */
  private validatorFor(key: string): ValidateFunction | undefined {
    let validate = this.validators.get(key);
    if (!validate) {
      const ref = this.refs.get(key);
      validate = ref === undefined ? undefined : this.ajv.getSchema(ref);
      if (!validate) return undefined;
      this.validators.set(key, validate);
    }
    return validate;
  }
}

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const showPath = (p: string) => p || '/';

/** Turns Ajv errors into "path: message" lines, folding oneOf/anyOf branch failures into their parent. */
function describe(errors: ErrorObject[]): string[] {
  const unions = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  const branchOf = (e: ErrorObject) => unions.find((u) => u !== e
    && u.instancePath === e.instancePath && e.schemaPath.startsWith(`${u.schemaPath}/`));
  const lines: string[] = [];
  for (const e of errors) {
    if (branchOf(e)) continue;
    const p = e.params as any;
    switch (e.keyword) {
      case 'additionalProperties':
        lines.push(`${e.instancePath}/${escapePointer(p.additionalProperty)}: unknown field`);
        break;
      case 'required':
        lines.push(`${e.instancePath}/${escapePointer(p.missingProperty)}: required field missing`);
        break;
      case 'enum':
        lines.push(`${showPath(e.instancePath)}: must be one of ${p.allowedValues.map((v: unknown) => JSON.stringify(v)).join(', ')}`);
        break;
      case 'oneOf':
      case 'anyOf': {
        const options = errors.filter((b) => branchOf(b) === e).map((b) => b.message);
        lines.push(`${showPath(e.instancePath)}: ${options.length ? options.join(' or ') : e.message}`);
        break;
      }
      default:
        lines.push(`${showPath(e.instancePath)}: ${e.message}`);
    }
  }
  return [...new Set(lines)];
}
