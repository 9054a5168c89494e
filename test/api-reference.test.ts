/**
 * API.md is generated from the jsii assembly by scripts/api-reference.ts. These tests fail when
 * it is stale or when the public API is not fully documented.
 */
import * as fs from 'fs';
import * as path from 'path';
import { renderApiReference } from '../scripts/api-reference';

const ROOT = path.resolve(__dirname, '..');
const ASSEMBLY_FILE = path.join(ROOT, '.jsii');
const API_FILE = path.join(ROOT, 'API.md');
const REGENERATE = 'npx ts-node scripts/api-reference.ts';

let cachedAssembly: any;
function assembly(): any {
  if (cachedAssembly) return cachedAssembly;
  if (!fs.existsSync(ASSEMBLY_FILE)) {
    throw new Error('.jsii not found: run `npm run jsii` to compile the jsii assembly, then run this test again.');
  }
  cachedAssembly = JSON.parse(fs.readFileSync(ASSEMBLY_FILE, 'utf8'));
  return cachedAssembly;
}

function apiMd(): string {
  if (!fs.existsSync(API_FILE)) {
    throw new Error(`API.md not found: run \`${REGENERATE}\` (after \`npm run jsii\`) and commit it.`);
  }
  return fs.readFileSync(API_FILE, 'utf8');
}

function types(): any[] {
  return Object.values(assembly().types ?? {});
}

function structs(): any[] {
  return types().filter((t) => t.kind === 'interface' && t.datatype);
}

const where = (type: any, member?: any) => {
  const loc = member?.locationInModule ?? type.locationInModule;
  const at = loc ? ` (${loc.filename}:${loc.line})` : '';
  return `${type.name}${member ? `.${member.name}` : ''}${at}`;
};

const displayName = (type: any) => (type.namespace ? `${type.namespace}.${type.name}` : type.name);

/** The lines of the `### Name` section of API.md, up to the next type or top-level section. */
function section(markdown: string, heading: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`### ${heading}`);
  if (start < 0) return [];
  const end = lines.findIndex((line, i) => i > start && /^#{2,3} /.test(line));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Cells of a Markdown table row, split on unescaped pipes, escapes removed. */
function cells(row: string): string[] {
  return row.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** The table row of struct property `name` in the struct's section. */
function propertyRow(markdown: string, struct: any, name: string): string[] | undefined {
  const row = section(markdown, displayName(struct)).find((line) => line.startsWith(`| \`${name}\` |`));
  return row ? cells(row) : undefined;
}

/** GitHub's heading anchors, with -1, -2... for repeated headings. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let inCode = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    const match = !inCode && /^#{1,6} (.*)$/.exec(line);
    if (!match) continue;
    const text = match[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
    const slug = text.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count ? `${slug}-${count}` : slug);
  }
  return result;
}

describe('API.md', () => {
  test('is up to date with the jsii assembly', () => {
    const expected = renderApiReference(assembly());
    const actual = apiMd();
    if (actual !== expected) {
      const a = actual.split('\n');
      const e = expected.split('\n');
      let line = 0;
      while (line < Math.max(a.length, e.length) && a[line] === e[line]) line++;
      throw new Error(
        `API.md is out of date with the jsii assembly: run \`${REGENERATE}\` (after \`npm run jsii\`) and commit API.md.\n`
        + `First difference at line ${line + 1}:\n`
        + `  API.md:    ${JSON.stringify(a[line])}\n`
        + `  generated: ${JSON.stringify(e[line])}`,
      );
    }
  });

  test('rendering is deterministic and independent of the order of types in the assembly', () => {
    const original = assembly();
    const reversed = { ...original, types: Object.fromEntries(Object.entries(original.types ?? {}).reverse()) };
    expect(renderApiReference(reversed)).toBe(renderApiReference(original));
    expect(renderApiReference(original)).not.toMatch(/\d{4}-\d{2}-\d{2}/);
  });

  test('has a section for every type in the assembly', () => {
    const markdown = apiMd();
    const missing = types().filter((t) => !markdown.split('\n').includes(`### ${displayName(t)}`)).map((t) => where(t));
    expect(missing).toEqual([]);
  });

  test('lists every property of every struct, with its type', () => {
    const markdown = apiMd();
    const missing: string[] = [];
    for (const struct of structs()) {
      for (const prop of struct.properties ?? []) {
        const row = propertyRow(markdown, struct, prop.name);
        if (!row || row.length !== 4 || row[1] === '') missing.push(where(struct, prop));
      }
    }
    expect(missing).toEqual([]);
  });

  test('every struct property has a default or is marked required', () => {
    const markdown = apiMd();
    const problems: string[] = [];
    for (const struct of structs()) {
      for (const prop of struct.properties ?? []) {
        const row = propertyRow(markdown, struct, prop.name);
        const defaultCell = row?.[2] ?? '';
        const documented = prop.docs?.default?.trim();
        if (!prop.optional) {
          if (defaultCell !== '**required**') problems.push(`${where(struct, prop)}: required but not marked required`);
        } else if (!documented) {
          problems.push(`${where(struct, prop)}: optional without a @default tag`);
        } else if (!defaultCell.includes(documented.replace(/\s*\n\s*/g, ' '))) {
          problems.push(`${where(struct, prop)}: Default column does not show @default ${JSON.stringify(documented)}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  test('every type, struct property and enum member has a description', () => {
    const missing: string[] = [];
    for (const type of types()) {
      if (!type.docs?.summary) missing.push(where(type));
      for (const member of [...(type.datatype ? type.properties ?? [] : []), ...(type.members ?? [])]) {
        if (!member.docs?.summary) missing.push(where(type, member));
      }
    }
    expect(missing).toEqual([]);
  });

  test('every link to a section of the document resolves', () => {
    const markdown = apiMd();
    const targets = anchors(markdown);
    const links = [...markdown.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(0);
    expect(links.filter((anchor) => !targets.has(anchor))).toEqual([]);
  });
});
