/**
 * Renders the public API reference (API.md) from the jsii assembly (.jsii), so it cannot drift
 * from lib/. Regenerate after changing the public API:
 *
 *   npm run jsii && npx ts-node scripts/api-reference.ts
 *
 * test/api-reference.test.ts fails when API.md differs from what this script renders.
 * The output depends only on the assembly's types (no dates, versions or descriptions from
 * package.json), and every list is sorted, so it is byte-for-byte reproducible.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The project root: scripts/ lives directly under it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');
/** The jsii assembly that `npm run jsii` writes. */
export const ASSEMBLY_FILE = path.join(PROJECT_ROOT, '.jsii');
/** The generated reference. */
export const API_REFERENCE_FILE = path.join(PROJECT_ROOT, 'API.md');
/** The command that regenerates API.md, for error messages. */
export const REGENERATE_COMMAND = 'npx ts-node scripts/api-reference.ts';

// The slice of the jsii assembly schema (jsii/0.10.0) this script reads.
interface Docs {
  summary?: string;
  remarks?: string;
  default?: string;
  deprecated?: string;
  returns?: string;
  see?: string;
  example?: string;
  stability?: string;
}
interface TypeRef {
  primitive?: string;
  fqn?: string;
  collection?: { kind: 'array' | 'map'; elementtype: TypeRef };
  union?: { types: TypeRef[] };
  intersection?: { types: TypeRef[] };
}
interface Parameter { name: string; type: TypeRef; optional?: boolean; variadic?: boolean; docs?: Docs }
interface Callable { name?: string; docs?: Docs; parameters?: Parameter[]; protected?: boolean; variadic?: boolean }
interface Method extends Callable {
  name: string;
  static?: boolean;
  abstract?: boolean;
  async?: boolean;
  returns?: { type: TypeRef; optional?: boolean };
}
interface Property {
  name: string;
  type: TypeRef;
  docs?: Docs;
  optional?: boolean;
  static?: boolean;
  const?: boolean;
  immutable?: boolean;
  protected?: boolean;
  abstract?: boolean;
}
interface EnumMember { name: string; docs?: Docs }
interface Type {
  fqn: string;
  name: string;
  namespace?: string;
  kind: 'class' | 'interface' | 'enum';
  docs?: Docs;
  base?: string;
  interfaces?: string[];
  abstract?: boolean;
  datatype?: boolean;
  initializer?: Callable;
  properties?: Property[];
  methods?: Method[];
  members?: EnumMember[];
}
interface Assembly { name: string; docs?: Docs; types?: { [fqn: string]: Type } }

/** Reads the assembly, failing with the command that writes it when it is missing. */
export function readAssembly(file: string = ASSEMBLY_FILE): any {
  if (!fs.existsSync(file)) {
    throw new Error(`${path.relative(PROJECT_ROOT, file) || file} not found: run \`npm run jsii\` first to compile the jsii assembly.`);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** GitHub's anchor for a heading: lower-case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

const byName = <T extends { name: string }>(a: T, b: T) => compare(a.name, b.name);
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Renders the Markdown reference of a jsii assembly. Pure and deterministic. */
export function renderApiReference(assembly: any): string {
  return new Renderer(assembly as Assembly).render();
}

type Section = 'Constructs' | 'Structs' | 'Enums' | 'Classes' | 'Interfaces';
const SECTIONS: Array<{ title: Section; intro: string }> = [
  { title: 'Constructs', intro: 'Add these to a chart: `new Construct(scope, id, props)`.' },
  { title: 'Structs', intro: 'Plain objects passed as props. Optional properties show the default that applies when they are left out.' },
  { title: 'Enums', intro: '' },
  { title: 'Classes', intro: '' },
  { title: 'Interfaces', intro: 'Contracts that constructs implement.' },
];

class Renderer {
  private readonly types: Type[];
  private readonly local: Map<string, Type>;

  constructor(private readonly assembly: Assembly) {
    this.types = Object.values(assembly.types ?? {}).sort((a, b) => compare(this.displayName(a), this.displayName(b)));
    this.local = new Map(this.types.map((t) => [t.fqn, t]));
  }

  public render(): string {
    const grouped = new Map<Section, Type[]>(SECTIONS.map((s) => [s.title, []]));
    for (const type of this.types) grouped.get(this.sectionOf(type))!.push(type);

    const out: string[] = [];
    out.push(`# API Reference: ${this.assembly.name}`);
    out.push(
      `<!-- Generated from the jsii assembly by scripts/api-reference.ts. Do not edit: run \`npm run jsii && ${REGENERATE_COMMAND}\`. -->`,
    );
    const stability = this.assembly.docs?.stability;
    out.push(
      'The public API of this package, generated from its jsii assembly. '
      + 'Types in this package link to their section; types from other packages are shown by their fully qualified name '
      + '(`cdk8s.Duration`, `constructs.Construct`).'
      + (stability ? ` Every API is *${stability}* unless marked otherwise.` : ''),
    );

    // Table of contents.
    const toc: string[] = [];
    for (const { title } of SECTIONS) {
      const types = grouped.get(title)!;
      if (types.length === 0) continue;
      toc.push(`- [${title}](#${headingAnchor(title)})`);
      for (const type of types) toc.push(`  - ${this.link(type)}`);
    }
    out.push(toc.join('\n'));

    for (const { title, intro } of SECTIONS) {
      const types = grouped.get(title)!;
      if (types.length === 0) continue;
      out.push(`## ${title}`);
      if (intro) out.push(intro);
      for (const type of types) out.push(...this.renderType(type, title));
    }
    return out.join('\n\n').replace(/[ \t]+$/gm, '') + '\n';
  }

  // ---------------------------------------------------------------------------------------------
  // Classification

  private sectionOf(type: Type): Section {
    switch (type.kind) {
      case 'enum': return 'Enums';
      case 'interface': return type.datatype ? 'Structs' : 'Interfaces';
      default: return this.isConstruct(type) ? 'Constructs' : 'Classes';
    }
  }

  /** A class whose base chain reaches constructs.Construct, or that is initialized as (scope, id, ...). */
  private isConstruct(type: Type): boolean {
    const seen = new Set<string>();
    for (let base = type.base; base && !seen.has(base); base = this.local.get(base)?.base) {
      seen.add(base);
      if (base === 'constructs.Construct') return true;
    }
    const params = type.initializer?.parameters ?? [];
    return params.length >= 2 && params[0].name === 'scope' && params[1].name === 'id';
  }

  /** The struct an initializer takes as its props: its last parameter, when it is a local struct. */
  private propsStruct(type: Type): Type | undefined {
    const params = type.initializer?.parameters ?? [];
    const last = params[params.length - 1];
    const struct = last?.type.fqn ? this.local.get(last.type.fqn) : undefined;
    return struct?.datatype ? struct : undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Types

  private renderType(type: Type, section: Section): string[] {
    const out = [`### ${this.displayName(type)}`];
    out.push(...this.docBlock(type.docs));
    switch (section) {
      case 'Constructs':
      case 'Classes':
        out.push(...this.renderClass(type));
        break;
      case 'Structs':
        out.push(...this.renderStruct(type));
        break;
      case 'Enums':
        out.push(...this.renderEnum(type));
        break;
      case 'Interfaces':
        out.push(...this.renderInterface(type));
        break;
    }
    return out;
  }

  private renderClass(type: Type): string[] {
    const out: string[] = [];
    const heritage: string[] = [];
    if (type.abstract) heritage.push('Abstract class.');
    if (type.base) heritage.push(`Extends: ${this.typeInline(type.base)}.`);
    if (type.interfaces?.length) {
      heritage.push(`Implements: ${[...type.interfaces].sort().map((i) => this.typeInline(i)).join(', ')}.`);
    }
    if (heritage.length) out.push(heritage.join(' '));

    if (type.initializer && !type.initializer.protected) {
      out.push('#### Initializer');
      out.push(codeBlock(`new ${this.displayName(type)}(${this.parametersTs(type.initializer.parameters)})`));
      out.push(...this.docBlock(type.initializer.docs));
      const props = this.propsStruct(type);
      const others = (type.initializer.parameters ?? []).filter((p) => !props || p !== last(type.initializer!.parameters!));
      const documented = others.filter((p) => hasText(p.docs));
      if (documented.length) out.push(this.parameterTable(documented));
      if (props) {
        out.push(`#### Props: ${this.link(props)}`);
        out.push(this.structTable(props));
      }
    }

    const methods = (type.methods ?? []).filter((m) => !m.protected);
    const staticMethods = methods.filter((m) => m.static).sort(byName);
    const instanceMethods = methods.filter((m) => !m.static).sort(byName);
    if (staticMethods.length) {
      out.push('#### Static methods');
      out.push(this.methodTable(staticMethods, this.displayName(type)));
    }
    if (instanceMethods.length) {
      out.push('#### Methods');
      out.push(this.methodTable(instanceMethods));
    }

    const properties = (type.properties ?? []).filter((p) => !p.protected);
    const staticProperties = properties.filter((p) => p.static).sort(byName);
    const instanceProperties = properties.filter((p) => !p.static).sort(byName);
    if (staticProperties.length) {
      out.push('#### Static properties');
      out.push(this.propertyTable(staticProperties, this.displayName(type)));
    }
    if (instanceProperties.length) {
      out.push('#### Properties');
      out.push(this.propertyTable(instanceProperties));
    }
    return out;
  }

  private renderStruct(type: Type): string[] {
    const out: string[] = [];
    const external = (type.interfaces ?? []).filter((i) => !this.local.has(i)).sort();
    const extended = (type.interfaces ?? []).filter((i) => this.local.has(i)).sort();
    if (extended.length || external.length) {
      out.push(`Extends: ${[...extended, ...external].map((i) => this.typeInline(i)).join(', ')}.`
        + (external.length ? ' Properties inherited from other packages are not listed.' : ''));
    }
    const usedBy = this.types
      .filter((t) => t.kind === 'class' && this.propsStruct(t) === type)
      .map((t) => this.link(t));
    // Props structs usually say so themselves ("Props of {@link X}").
    const said = this.docBlock(type.docs).join('\n');
    if (usedBy.length && !usedBy.every((link) => said.includes(link))) out.push(`Props of ${usedBy.join(', ')}.`);
    out.push(this.structTable(type));
    return out;
  }

  private renderEnum(type: Type): string[] {
    const rows = (type.members ?? []).map((m) => [
      code(`${this.displayName(type)}.${m.name}`),
      this.describeCell(m.docs),
    ]);
    return ['#### Members', table(['Member', 'Description'], rows)];
  }

  private renderInterface(type: Type): string[] {
    const out: string[] = [];
    if (type.interfaces?.length) {
      out.push(`Extends: ${[...type.interfaces].sort().map((i) => this.typeInline(i)).join(', ')}.`);
    }
    const implementors = this.types
      .filter((t) => t.kind === 'class' && this.implementsInterface(t, type.fqn))
      .map((t) => this.link(t));
    if (implementors.length) out.push(`Implemented by: ${implementors.join(', ')}.`);
    const methods = (type.methods ?? []).filter((m) => !m.protected).sort(byName);
    if (methods.length) {
      out.push('#### Methods');
      out.push(this.methodTable(methods));
    }
    const properties = (type.properties ?? []).filter((p) => !p.protected).sort(byName);
    if (properties.length) {
      out.push('#### Properties');
      out.push(this.propertyTable(properties));
    }
    return out;
  }

  private implementsInterface(type: Type, fqn: string, seen = new Set<string>()): boolean {
    if (seen.has(type.fqn)) return false;
    seen.add(type.fqn);
    for (const i of type.interfaces ?? []) {
      if (i === fqn) return true;
      const local = this.local.get(i);
      if (local && this.implementsInterface(local, fqn, seen)) return true;
    }
    const base = type.base ? this.local.get(type.base) : undefined;
    return base ? this.implementsInterface(base, fqn, seen) : false;
  }

  // ---------------------------------------------------------------------------------------------
  // Tables

  /** Every property of a struct, its own and those of local structs it extends; required ones first. */
  public structProperties(type: Type, seen = new Set<string>()): Property[] {
    if (seen.has(type.fqn)) return [];
    seen.add(type.fqn);
    const all = new Map<string, Property>();
    for (const parent of type.interfaces ?? []) {
      const local = this.local.get(parent);
      if (local) for (const p of this.structProperties(local, seen)) all.set(p.name, p);
    }
    for (const p of type.properties ?? []) all.set(p.name, p);
    return [...all.values()].sort((a, b) => Number(!!a.optional) - Number(!!b.optional) || compare(a.name, b.name));
  }

  private structTable(type: Type): string {
    const rows = this.structProperties(type).map((p) => [
      code(p.name),
      this.typeCell(p.type),
      defaultCell(p),
      this.describeCell(p.docs),
    ]);
    return table(['Name', 'Type', 'Default', 'Description'], rows);
  }

  private propertyTable(properties: Property[], owner?: string): string {
    const rows = properties.map((p) => {
      const notes: string[] = [];
      if (p.const) notes.push('Constant.');
      else if (!p.immutable) notes.push('Mutable.');
      if (p.optional) notes.push('May be undefined.');
      return [
        code(owner ? `${owner}.${p.name}` : p.name),
        this.typeCell(p.type),
        [this.describeCell(p.docs), ...notes].filter(Boolean).join(' '),
      ];
    });
    return table(['Name', 'Type', 'Description'], rows);
  }

  private methodTable(methods: Method[], owner?: string): string {
    const rows = methods.map((m) => {
      const signature = `${owner ? `${owner}.` : ''}${m.name}(${this.parametersTs(m.parameters)})`;
      const params = (m.parameters ?? [])
        .filter((p) => hasText(p.docs))
        .map((p) => `${code(p.name)}: ${this.describeCell(p.docs)}`);
      const notes = [
        m.abstract ? 'Abstract.' : '',
        params.length ? `Parameters: ${params.join('; ')}` : '',
        m.docs?.returns ? `Returns: ${this.inlineText(m.docs.returns)}` : '',
      ].filter(Boolean);
      const returns = m.returns ? this.typeCell(m.returns.type) + (m.returns.optional ? ' \\| `undefined`' : '') : code('void');
      return [code(signature), m.async ? `Promise of ${returns}` : returns, [this.describeCell(m.docs), ...notes].filter(Boolean).join(' ')];
    });
    return table(['Method', 'Returns', 'Description'], rows);
  }

  private parameterTable(params: Parameter[]): string {
    return table(['Parameter', 'Type', 'Description'], params.map((p) => [code(p.name), this.typeCell(p.type), this.describeCell(p.docs)]));
  }

  // ---------------------------------------------------------------------------------------------
  // Type references

  private displayName(type: Type): string {
    return type.namespace ? `${type.namespace}.${type.name}` : type.name;
  }

  private link(type: Type): string {
    const name = this.displayName(type);
    return `[${name}](#${headingAnchor(name)})`;
  }

  /** A type by fqn, as a link when it is local and a code span otherwise. */
  private typeInline(fqn: string): string {
    const local = this.local.get(fqn);
    return local ? this.link(local) : code(fqn);
  }

  /** A type for a table cell: links to local types, code spans for everything else. */
  private typeCell(ref: TypeRef): string {
    const md = this.typeRef(ref, true);
    return escapeCell(md.includes('](#') ? md : code(md));
  }

  /** A type reference as TypeScript (`markdown` false) or as Markdown with links to local types. */
  private typeRef(ref: TypeRef, markdown: boolean): string {
    if (ref.primitive) {
      switch (ref.primitive) {
        case 'date': return 'Date';
        case 'json': return '{ [key: string]: any }';
        default: return ref.primitive;
      }
    }
    if (ref.fqn) {
      const local = this.local.get(ref.fqn);
      if (!local) return ref.fqn;
      return markdown ? this.link(local) : this.displayName(local);
    }
    if (ref.collection) {
      const element = this.typeRef(ref.collection.elementtype, markdown);
      if (ref.collection.kind === 'map') return `{ [key: string]: ${element} }`;
      const compound = ref.collection.elementtype.union || ref.collection.elementtype.intersection;
      return compound ? `(${element})[]` : `${element}[]`;
    }
    if (ref.union) return ref.union.types.map((t) => this.typeRef(t, markdown)).join(' | ');
    if (ref.intersection) return ref.intersection.types.map((t) => this.typeRef(t, markdown)).join(' & ');
    return 'unknown';
  }

  private parametersTs(params: Parameter[] = []): string {
    return params
      .map((p) => `${p.variadic ? '...' : ''}${p.name}${p.optional ? '?' : ''}: ${this.typeRef(p.type, false)}${p.variadic ? '[]' : ''}`)
      .join(', ');
  }

  // ---------------------------------------------------------------------------------------------
  // Docs

  /** A type's or member's docs as Markdown paragraphs. */
  private docBlock(docs: Docs | undefined): string[] {
    if (!docs) return [];
    const out: string[] = [];
    if (docs.deprecated) out.push(`> **Deprecated:** ${this.inlineText(docs.deprecated)}`);
    else if (docs.stability && docs.stability !== this.assembly.docs?.stability) out.push(`> Stability: *${docs.stability}*`);
    const text = joinSummary(docs, '\n\n');
    if (text) out.push(this.text(text));
    if (docs.see) out.push(`See: ${this.inlineText(docs.see)}`);
    if (docs.example) out.push(`Example:\n\n${codeBlock(docs.example.trim())}`);
    return out;
  }

  /** Docs of a member or parameter, on one line for a table cell. */
  private describeCell(docs: Docs | undefined): string {
    if (!docs) return '';
    const parts: string[] = [];
    const text = joinSummary(docs, ' ');
    if (text) parts.push(this.inlineText(text));
    if (docs.deprecated) parts.push(`**Deprecated:** ${this.inlineText(docs.deprecated)}`);
    else if (docs.stability && docs.stability !== this.assembly.docs?.stability) parts.push(`*(${docs.stability})*`);
    if (docs.see) parts.push(`See: ${this.inlineText(docs.see)}`);
    return escapeCell(parts.join(' '));
  }

  /** Text that must stay on one line: paragraph breaks become <br>, line breaks spaces. */
  private inlineText(text: string): string {
    return this.text(text.trim())
      .split(/\n\s*\n/)
      .map((para) => para.replace(/\s*\n\s*/g, ' '))
      .join('<br><br>');
  }

  /** Doc text as Markdown: {@link} tags resolved, stray `<` and `>` escaped outside code. */
  private text(text: string): string {
    return mapOutsideCode(text.trim(), (prose) =>
      prose
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/\{@link(?:code|plain)?\s+([^\s|}]+)\s*(?:\|\s*)?([^}]*)\}/g, (_, target: string, label: string) =>
          this.linkTarget(target, label.trim())),
    );
  }

  private linkTarget(target: string, label: string): string {
    if (/^https?:\/\//.test(target)) return `[${label || target}](${target})`;
    const [typeName] = target.replace(/\(\)$/, '').split('.');
    const type = this.types.find((t) => t.name === typeName || t.fqn === target || this.displayName(t) === target);
    if (type) return `[${label || target}](#${headingAnchor(this.displayName(type))})`;
    return label || code(target);
  }
}

// -----------------------------------------------------------------------------------------------
// Markdown helpers

function last<T>(items: T[]): T | undefined {
  return items[items.length - 1];
}

function hasText(docs: Docs | undefined): boolean {
  return !!(docs?.summary || docs?.remarks);
}

/**
 * jsii splits a doc comment after its first sentence, which may end in `;` or `:`. Rejoin the
 * halves with a space when the summary does not end a sentence, else with `separator`.
 */
function joinSummary(docs: Docs, separator: string): string {
  const summary = docs.summary?.trim() ?? '';
  const remarks = docs.remarks?.trim() ?? '';
  if (!summary || !remarks) return summary || remarks;
  return summary + (/[.!?]$/.test(summary) ? separator : ' ') + remarks;
}

/** The Default cell of a struct property: `@default` verbatim, *required*, or a visible gap. */
function defaultCell(p: Property): string {
  if (!p.optional) return '**required**';
  const value = p.docs?.default?.trim();
  if (!value) return '*undocumented*';
  // `@default - text` is prose by jsii convention; anything else is a literal value.
  return escapeCell(value.startsWith('-') ? value.replace(/\s*\n\s*/g, ' ') : code(value.replace(/\s*\n\s*/g, ' ')));
}

/** A code span that survives backticks in its content. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = longest > 0 ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

function codeBlock(text: string, lang = 'ts'): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${lang}\n${text}\n${fence}`;
}

/** Pipes end a GFM table cell, even inside code spans; line breaks end the row. */
function escapeCell(text: string): string {
  return text.replace(/(?<!\\)\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c || ' ').join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Applies `fn` to the parts of `text` outside code spans and fenced code blocks. */
function mapOutsideCode(text: string, fn: (prose: string) => string): string {
  const pattern = /(^|\n)(```[\s\S]*?\n```)(?=\n|$)|(`+)[\s\S]*?[^`]\3(?!`)/g;
  let out = '';
  let index = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    const start = match.index + (match[1]?.length ?? 0);
    out += fn(text.slice(index, start)) + text.slice(start, pattern.lastIndex);
    index = pattern.lastIndex;
  }
  return out + fn(text.slice(index));
}

if (require.main === module) {
  const assembly = readAssembly();
  const markdown = renderApiReference(assembly);
  fs.writeFileSync(API_REFERENCE_FILE, markdown);
  const count = Object.keys(assembly.types ?? {}).length;
  process.stdout.write(`Wrote ${path.relative(process.cwd(), API_REFERENCE_FILE)} (${count} types).\n`);
}
