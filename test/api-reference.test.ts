/**
 * API.md is rendered by jsii-docgen, the jsii ecosystem's reference generator, from the jsii
 * assembly (.jsii, which `npm test` compiles first). These tests fail when API.md is stale or
 * when the public API is not fully documented.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Documentation, Language } from 'jsii-docgen';

const ROOT = path.resolve(__dirname, '..');
const ASSEMBLY_FILE = path.join(ROOT, '.jsii');
const API_FILE = path.join(ROOT, 'API.md');
const REGENERATE = 'npm run jsii && npm run docgen';

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
    throw new Error(`API.md not found: run \`${REGENERATE}\` and commit it.`);
  }
  return fs.readFileSync(API_FILE, 'utf8');
}

/**
 * What `npm run docgen` (`jsii-docgen --output API.md`) writes: the TypeScript reference of the
 * package in `root`, found with its dependencies' assemblies under `root`.
 */
async function renderDocgen(root: string = ROOT): Promise<string> {
  const docs = await Documentation.forProject(root);
  try {
    const markdown = await docs.toMarkdown({ language: Language.TYPESCRIPT, allSubmodules: true });
    return markdown.render();
  } finally {
    await docs.cleanup();
  }
}

let cachedRender: Promise<string> | undefined;
function rendered(): Promise<string> {
  cachedRender ??= renderDocgen();
  return cachedRender;
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

/** The lines of the section whose heading carries the anchor `id`, up to the next `---` rule or heading as deep. */
function section(markdown: string, id: string): string[] | undefined {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => /^#{2,6} /.test(line) && line.includes(` id="${id}"`));
  if (start < 0) return undefined;
  const depth = /^#+/.exec(lines[start])![0].length;
  const end = lines.findIndex((line, i) => i > start && (line === '---' || new RegExp(`^#{1,${depth}} `).test(line)));
  return lines.slice(start, end < 0 ? undefined : end);
}

/** A @default as jsii-docgen shows it: without the leading `- ` of a computed default, on one line. */
function shownDefault(documented: string): string {
  return documented.trim().replace(/^-\s+/, '').replace(/\s*\n\s*/g, ' ');
}

/** The anchors of the document (`<a name=... id="...">`). */
function anchors(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/<a name="[^"]*" id="([^"]+)"><\/a>/g)].map((m) => m[1]));
}

describe('API.md', () => {
  test('is what jsii-docgen renders from the current jsii assembly', async () => {
    assembly();
    const expected = await rendered();
    const actual = apiMd();
    if (actual !== expected) {
      const a = actual.split('\n');
      const e = expected.split('\n');
      let line = 0;
      while (line < Math.max(a.length, e.length) && a[line] === e[line]) line++;
      throw new Error(
        `API.md is out of date with the jsii assembly: run \`${REGENERATE}\` and commit API.md.\n`
        + `First difference at line ${line + 1}:\n`
        + `  API.md:    ${JSON.stringify(a[line])}\n`
        + `  generated: ${JSON.stringify(e[line])}`,
      );
    }
  });

  test('rendering is reproducible: the same assembly gives the same bytes, and jsii writes each API in one order', async () => {
    expect(await renderDocgen()).toBe(await rendered());
    expect(await rendered()).not.toMatch(/\d{4}-\d{2}-\d{2}/);
    // jsii-docgen lists some things (an interface's implementors) in the order of the assembly's
    // types, so API.md is reproducible because jsii writes the assembly's types sorted by fully
    // qualified name, whatever the order of lib/.
    const typeNames = Object.keys(assembly().types ?? {});
    expect(typeNames).toEqual([...typeNames].sort());
  });

  test('has a section for every type in the assembly', () => {
    const markdown = apiMd();
    const missing = types().filter((t) => !section(markdown, t.fqn)?.[0].startsWith(`### ${t.name} `)).map((t) => where(t));
    expect(missing).toEqual([]);
  });

  test('lists every property of every struct, with its type', () => {
    const markdown = apiMd();
    const missing: string[] = [];
    for (const struct of structs()) {
      for (const prop of struct.properties ?? []) {
        const lines = section(markdown, `${struct.fqn}.property.${prop.name}`);
        if (!lines?.some((line) => /^- \*Type:\* \S/.test(line))) missing.push(where(struct, prop));
      }
    }
    expect(missing).toEqual([]);
  });

  test('every struct property has a default or is marked required', () => {
    const markdown = apiMd();
    const problems: string[] = [];
    for (const struct of structs()) {
      for (const prop of struct.properties ?? []) {
        const lines = section(markdown, `${struct.fqn}.property.${prop.name}`) ?? [];
        const heading = lines[0] ?? '';
        const defaultLine = lines.find((line) => line.startsWith('- *Default:* ')) ?? '';
        const documented = prop.docs?.default?.trim();
        if (!prop.optional) {
          if (!heading.includes('<sup>Required</sup>')) problems.push(`${where(struct, prop)}: required but not marked required`);
        } else if (!documented) {
          problems.push(`${where(struct, prop)}: optional without a @default tag`);
        } else if (!heading.includes('<sup>Optional</sup>') || defaultLine !== `- *Default:* ${shownDefault(documented)}`) {
          problems.push(`${where(struct, prop)}: API.md does not show @default ${JSON.stringify(documented)}`);
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
    const links = [...markdown.matchAll(/href="#([^"]+)"/g), ...markdown.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(0);
    expect([...new Set(links.filter((anchor) => !targets.has(anchor)))]).toEqual([]);
  });
});
