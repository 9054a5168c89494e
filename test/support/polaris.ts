/**
 * Fairwinds Polaris' checks (test/fixtures/polaris/: checks/*.yaml and default.yaml, see its PROVENANCE.md), run
 * offline over rendered objects the way `polaris audit --audit-path` runs them:
 *
 * - A check's `target` says what it validates: `Controller` (the whole workload object),
 *   `PodSpec`, `PodTemplate` (metadata and spec), `Container` (each init container and container
 *   of a workload), or `group/Kind` (`/ConfigMap`, `policy/PodDisruptionBudget`, ...) for any object
 *   of that kind. `controllers.include`/`exclude` filter by the workload's kind, and
 *   `containers.exclude: [initContainer]` leaves init containers out.
 * - `schemaTarget: PodSpec` on a Container check validates the pod spec with that container as its
 *   only container and no init containers, so pod-level settings count for every container.
 * - Every schema is a Go text/template executed on the object (with `.Polaris.PodSpec`,
 *   `.Polaris.PodTemplate` and `.Polaris.Container` for pod and container checks), then read as
 *   YAML 1.1 (Polaris' Go YAML reads `on`, `yes` as booleans): `templateGo` below implements the part of Go's text/template the checks use and throws
 *   on anything else, so a new check with other template syntax fails loudly instead of passing.
 * - `additionalSchemaStrings` (cross-object checks: a ServiceAccount, NetworkPolicy or
 *   PodDisruptionBudget that must exist) pass when at least one object of that kind in the same
 *   namespace validates; the objects given to `runPolaris` stand for the cluster, as the files do
 *   in `polaris audit --audit-path`. A templated additional schema that renders to blank is skipped.
 * - Severities and config exemptions (controller name prefix, namespace, rules) come from
 *   default.yaml; `polaris.fairwinds.com/exempt` and `polaris.fairwinds.com/<check>-exempt`
 *   annotations on the object exempt it too, as in Polaris.
 *
 * Schemas are JSON Schema draft 2019-09, validated with ajv's 2019 build. Go's RE2 patterns
 * carry `(?i)` inline, which JavaScript does not take: a leading `(?i)` (or one right after `^`)
 * becomes the `i` flag, any other inline flag throws. A bare `required:` (null, in hostPortSet) is
 * dropped, as Polaris' Go schema library ignores it; `const: null` keeps its meaning.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import { parse as parseYaml } from 'yaml';
import { POD_TEMPLATE_PATHS } from './pod-security';

export const POLARIS_ROOT = path.resolve(__dirname, '../fixtures/polaris');

export type Severity = 'danger' | 'warning' | 'ignore';

export interface PolarisCheck {
  readonly id: string;
  readonly severity: Severity;
  readonly category: string;
  readonly target: string;
  readonly schemaTarget?: string;
  readonly controllers: { readonly include?: string[]; readonly exclude?: string[] };
  readonly containers: { readonly include?: string[]; readonly exclude?: string[] };
  /** The schema as a template: `schemaString`, or `schema` serialized to JSON as Polaris does. */
  readonly schemaTemplate?: string;
  readonly additionalSchemaTemplates: { readonly [groupKind: string]: string };
  readonly failureMessage: string;
}

export interface PolarisExemption {
  readonly namespace?: string;
  readonly controllerNames?: string[];
  readonly containerNames?: string[];
  readonly rules?: string[];
}

export interface PolarisConfig {
  readonly checks: PolarisCheck[];
  readonly exemptions: PolarisExemption[];
}

export interface PolarisResult {
  readonly check: string;
  readonly severity: Severity;
  readonly passed: boolean;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  /** The container a Container check ran on, `init:` prefixed for init containers. */
  readonly container?: string;
  readonly message: string;
  /** For a failure: where the schema failed (JSON pointers into what it validated), or which other object was missing. */
  readonly details?: string[];
}

const HANDLED_TARGETS = ['Controller', 'Container', 'PodSpec', 'PodTemplate'];

const yaml = (text: string): any => parseYaml(text, { version: '1.1' });

/** The checks of a Polaris policy directory, with default.yaml's severities and exemptions. */
export function loadPolaris(root: string = POLARIS_ROOT): PolarisConfig {
  const config = yaml(fs.readFileSync(path.join(root, 'default.yaml'), 'utf8'));
  const severities: { [id: string]: Severity } = config.checks ?? {};
  const files = fs.readdirSync(path.join(root, 'checks')).filter((f) => f.endsWith('.yaml')).sort();
  const checks = files.map((file): PolarisCheck => {
    const id = file.replace(/\.yaml$/, '');
    const raw = yaml(fs.readFileSync(path.join(root, 'checks', file), 'utf8'));
    const severity = severities[id];
    if (!severity) throw new Error(`polaris check ${id} has no severity in default.yaml`);
    const additional: { [groupKind: string]: string } = { ...(raw.additionalSchemaStrings ?? {}) };
    for (const [groupKind, schema] of Object.entries(raw.additionalSchemas ?? {})) additional[groupKind] = JSON.stringify(schema);
    return {
      id,
      severity,
      category: raw.category,
      target: raw.target,
      schemaTarget: raw.schemaTarget,
      controllers: raw.controllers ?? {},
      containers: raw.containers ?? {},
      schemaTemplate: raw.schemaString ?? (raw.schema ? JSON.stringify(raw.schema) : undefined),
      additionalSchemaTemplates: additional,
      failureMessage: raw.failureMessage ?? raw.FailureMessage ?? id,
    };
  });
  for (const id of Object.keys(severities)) {
    if (!checks.some((c) => c.id === id)) throw new Error(`default.yaml gives check ${id} a severity but checks/ has no ${id}.yaml`);
  }
  return { checks, exemptions: config.exemptions ?? [] };
}

// ---------------------------------------------------------------------------------------------
// Go text/template, the subset the checks use: text, actions printing a pipeline, comments,
// `{{-`/`-}}` trimming, variables (`$x := ...`, `$x = ...`, `$`), fields (`.a.b`, `$x.a`),
// string/number/bool/nil literals, parenthesized pipelines, `|`, `if`/`else if`/`else`/`end`,
// `range` over maps (sorted keys) and lists, and the functions not, and, or, eq, ne, print,
// index, len, hasPrefix, hasSuffix. Missing map keys are Go's "no value": falsy, printed
// `<no value>`, and a field of them is again no value.

type Operand =
  | { readonly t: 'field'; readonly base: Operand | 'dot' | { readonly variable: string }; readonly fields: string[] }
  | { readonly t: 'literal'; readonly value: any }
  | { readonly t: 'ident'; readonly name: string }
  | { readonly t: 'pipe'; readonly pipe: Pipeline };

interface Pipeline {
  readonly decl: string[];
  readonly assign: boolean;
  readonly cmds: Operand[][];
}

type TNode =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'action'; readonly pipe: Pipeline }
  | { type: 'if'; readonly pipe: Pipeline; readonly then: TNode[]; readonly else: TNode[] }
  | { readonly type: 'range'; readonly pipe: Pipeline; readonly body: TNode[]; readonly else: TNode[] };

interface RawItem { text?: string; action?: string; trimLeft?: boolean; trimRight?: boolean }

function lexTemplate(src: string): RawItem[] {
  const items: RawItem[] = [];
  let i = 0;
  for (;;) {
    const start = src.indexOf('{{', i);
    if (start < 0) {
      items.push({ text: src.slice(i) });
      break;
    }
    items.push({ text: src.slice(i, start) });
    let j = start + 2;
    let trimLeft = false;
    if (src[j] === '-' && /\s/.test(src[j + 1] ?? '')) {
      trimLeft = true;
      j += 1;
    }
    let end: number;
    const afterSpace = j + (src.slice(j).length - src.slice(j).trimStart().length);
    if (src.startsWith('/*', afterSpace)) {
      const close = src.indexOf('*/', afterSpace + 2);
      if (close < 0) throw new Error('template: unclosed comment');
      end = src.indexOf('}}', close + 2);
      if (end < 0 || !/^\s*-?\s*$/.test(src.slice(close + 2, end))) throw new Error('template: comment must end with */}}');
      const trimRight = /-\s*$/.test(src.slice(close + 2, end));
      items.push({ action: '', trimLeft, trimRight });
      i = end + 2;
      continue;
    }
    let quote = '';
    for (end = j; end < src.length; end++) {
      const c = src[end];
      if (quote) {
        if (c === '\\' && quote === '"') end++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === '`' || c === '\'') {
        quote = c;
      } else if (c === '}' && src[end + 1] === '}') {
        break;
      }
    }
    if (end >= src.length) throw new Error(`template: unclosed action at ${start}`);
    let inner = src.slice(j, end);
    let trimRight = false;
    if (/\s-$/.test(inner)) {
      trimRight = true;
      inner = inner.slice(0, -1);
    }
    items.push({ action: inner.trim(), trimLeft, trimRight });
    i = end + 2;
  }
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    if (item.action === undefined) continue;
    if (item.trimLeft && items[k - 1]?.text !== undefined) items[k - 1].text = items[k - 1].text!.replace(/[ \t\r\n]+$/, '');
    if (item.trimRight && items[k + 1]?.text !== undefined) items[k + 1].text = items[k + 1].text!.replace(/^[ \t\r\n]+/, '');
  }
  return items;
}

function tokenize(action: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < action.length) {
    const c = action[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < action.length && action[j] !== '"') j += action[j] === '\\' ? 2 : 1;
      tokens.push(action.slice(i, j + 1));
      i = j + 1;
    } else if (c === '`') {
      const j = action.indexOf('`', i + 1);
      tokens.push(action.slice(i, j + 1));
      i = j + 1;
    } else if (c === '(' || c === ')' || c === '|' || c === ',') {
      tokens.push(c);
      i++;
    } else if (c === ':' && action[i + 1] === '=') {
      tokens.push(':=');
      i += 2;
    } else if (c === '=') {
      tokens.push('=');
      i++;
    } else {
      const m = /^[^\s()|,=:"`]+/.exec(action.slice(i));
      if (!m) throw new Error(`template: cannot read "${action.slice(i)}"`);
      // A field chain right after ")" belongs to the parenthesized pipeline.
      if (m[0].startsWith('.') && tokens[tokens.length - 1] === ')' && action[i - 1] === ')') tokens[tokens.length - 1] = `)${m[0]}`;
      else tokens.push(m[0]);
      i += m[0].length;
    }
  }
  return tokens;
}

function parsePipeline(tokens: string[], pos = { i: 0 }, closing?: string): Pipeline {
  let decl: string[] = [];
  let assign = false;
  // Declarations: `$x :=`, `$x =`, `$k, $v :=`.
  const declMatch = (() => {
    const names: string[] = [];
    let k = pos.i;
    while (tokens[k]?.startsWith('$') && !tokens[k].includes('.')) {
      names.push(tokens[k]);
      if (tokens[k + 1] === ',') {k += 2;} else {
        k += 1;
        break;
      }
    }
    if (names.length && (tokens[k] === ':=' || tokens[k] === '=')) return { names, op: tokens[k], next: k + 1 };
    return undefined;
  })();
  if (declMatch) {
    decl = declMatch.names;
    assign = declMatch.op === '=';
    pos.i = declMatch.next;
  }
  const cmds: Operand[][] = [[]];
  while (pos.i < tokens.length) {
    const tok = tokens[pos.i];
    if (tok === closing || tok.startsWith(')')) break;
    pos.i++;
    if (tok === '|') {
      cmds.push([]);
      continue;
    }
    cmds[cmds.length - 1].push(parseOperand(tok, tokens, pos));
  }
  if (cmds.some((c) => c.length === 0)) throw new Error(`template: empty command in "${tokens.join(' ')}"`);
  return { decl, assign, cmds };
}

function fieldsOf(chain: string): string[] {
  const fields = chain.split('.').slice(1);
  if (fields.some((f) => !/^[A-Za-z_]\w*$/.test(f))) throw new Error(`template: bad field chain ${chain}`);
  return fields;
}

function parseOperand(tok: string, tokens: string[], pos: { i: number }): Operand {
  if (tok === '(') {
    const pipe = parsePipeline(tokens, pos, ')');
    const close = tokens[pos.i++];
    if (!close?.startsWith(')')) throw new Error('template: missing )');
    const inner: Operand = { t: 'pipe', pipe };
    return close.length > 1 ? { t: 'field', base: inner, fields: fieldsOf(close.slice(1)) } : inner;
  }
  if (tok.startsWith('"')) return { t: 'literal', value: JSON.parse(tok) };
  if (tok.startsWith('`')) return { t: 'literal', value: tok.slice(1, -1) };
  if (tok === 'true' || tok === 'false') return { t: 'literal', value: tok === 'true' };
  if (tok === 'nil') return { t: 'literal', value: null };
  if (/^[-+]?\d/.test(tok)) {
    const n = Number(tok);
    if (Number.isNaN(n)) throw new Error(`template: bad number ${tok}`);
    return { t: 'literal', value: n };
  }
  if (tok === '.') return { t: 'field', base: 'dot', fields: [] };
  if (tok.startsWith('.')) return { t: 'field', base: 'dot', fields: fieldsOf(tok) };
  if (tok.startsWith('$')) {
    const [variable, ...rest] = tok.split('.');
    return { t: 'field', base: { variable }, fields: rest };
  }
  if (/^[A-Za-z_]\w*$/.test(tok)) return { t: 'ident', name: tok };
  throw new Error(`template: unexpected "${tok}"`);
}

function parseTemplate(src: string): TNode[] {
  const root: TNode[] = [];
  // Each frame: the list nodes go into, the node that opened it, whether it was opened by `else if`.
  const stack: Array<{ list: TNode[]; node?: TNode; chained: boolean }> = [{ list: root, chained: false }];
  const top = () => stack[stack.length - 1];
  for (const item of lexTemplate(src)) {
    if (item.text !== undefined) {
      if (item.text) top().list.push({ type: 'text', text: item.text });
      continue;
    }
    const action = item.action!;
    if (action === '') continue; // a comment
    const tokens = tokenize(action);
    const [keyword] = tokens;
    if (keyword === 'if' || keyword === 'range') {
      const pipe = parsePipeline(tokens.slice(1));
      const node: TNode = keyword === 'if'
        ? { type: 'if', pipe, then: [], else: [] }
        : { type: 'range', pipe, body: [], else: [] };
      top().list.push(node);
      stack.push({ list: node.type === 'if' ? node.then : (node as any).body, node, chained: false });
    } else if (keyword === 'else') {
      const frame = top();
      const node = frame.node as any;
      if (!node || frame.list === node.else) throw new Error('template: unexpected else');
      if (tokens[1] === 'if') {
        const inner: TNode = { type: 'if', pipe: parsePipeline(tokens.slice(2)), then: [], else: [] };
        node.else.push(inner);
        frame.list = node.else;
        stack.push({ list: inner.then, node: inner, chained: true });
      } else if (tokens.length === 1) {
        frame.list = node.else;
      } else {
        throw new Error(`template: unsupported "${action}"`);
      }
    } else if (keyword === 'end') {
      let frame = stack.pop();
      while (frame?.chained) frame = stack.pop();
      if (!frame?.node) throw new Error('template: unexpected end');
    } else if (['with', 'define', 'template', 'block', 'break', 'continue'].includes(keyword)) {
      throw new Error(`template: "${keyword}" is not supported here`);
    } else {
      top().list.push({ type: 'action', pipe: parsePipeline(tokens) });
    }
  }
  if (stack.length !== 1) throw new Error('template: missing end');
  return root;
}

const isMap = (v: any) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Go's truth: false, 0, "", nil and empty maps and lists are false. */
function truth(v: any): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/** Go's %v of a float64 (JSON numbers are floats in Polaris' maps): %g, shortest. */
function goFloat(n: number): string {
  if (n === 0) return '0';
  const [mantissa, expText] = n.toExponential().split('e');
  const exp = Number(expText);
  // strconv's shortest %g switches to an exponent below 1e-4 and from 1e6 ("1e+06").
  if (exp < -4 || exp >= 6) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(n);
}

function goPrint(v: any): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goFloat(v);
  if (typeof v === 'boolean') return String(v);
  throw new Error(`template: printing a ${Array.isArray(v) ? 'list' : 'map'} is not supported here`);
}

function goEq(a: any, b: any): boolean {
  if (a === undefined || a === null || b === undefined || b === null) return (a ?? null) === (b ?? null);
  if (typeof a !== typeof b || typeof a === 'object') throw new Error(`template: incompatible types for comparison: ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
  return a === b;
}

function goString(v: any, fn: string): string {
  if (typeof v !== 'string') throw new Error(`template: ${fn} wants a string, got ${JSON.stringify(v)}`);
  return v;
}

const FUNCTIONS: { [name: string]: (...args: any[]) => any } = {
  not: (v) => !truth(v),
  // and/or are evaluated lazily in evalCommand, as Go short-circuits them.
  and: () => { throw new Error('unreachable'); },
  or: () => { throw new Error('unreachable'); },
  eq: (a, ...bs) => {
    if (bs.length === 0) throw new Error('template: missing argument for comparison');
    return bs.some((b) => goEq(a, b));
  },
  ne: (a, b) => !goEq(a, b),
  print: (...args) => args.map((a, i) => (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string' ? ' ' : '') + goPrint(a)).join(''),
  index: (v, ...keys) => keys.reduce((node, key) => {
    if (node === undefined || node === null) throw new Error('template: index of untyped nil');
    if (Array.isArray(node)) {
      if (typeof key !== 'number' || key < 0 || key >= node.length) throw new Error(`template: index out of range: ${key}`);
      return node[key];
    }
    if (isMap(node)) return Object.prototype.hasOwnProperty.call(node, key) ? node[key] : undefined;
    throw new Error(`template: can't index item of type ${typeof node}`);
  }, v),
  len: (v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (isMap(v)) return Object.keys(v).length;
    throw new Error(`template: len of ${JSON.stringify(v)}`);
  },
  hasPrefix: (s, p) => goString(s, 'hasPrefix').startsWith(goString(p, 'hasPrefix')),
  hasSuffix: (s, p) => goString(s, 'hasSuffix').endsWith(goString(p, 'hasSuffix')),
};

class Scope {
  private readonly frames: Array<Map<string, any>>;

  constructor(root: any) {
    this.frames = [new Map([['$', root]])];
  }

  push(): void { this.frames.push(new Map()); }
  pop(): void { this.frames.pop(); }
  declare(name: string, value: any): void { this.frames[this.frames.length - 1].set(name, value); }

  assign(name: string, value: any): void {
    const frame = [...this.frames].reverse().find((f) => f.has(name));
    if (!frame) throw new Error(`template: undefined variable ${name}`);
    frame.set(name, value);
  }

  get(name: string): any {
    const frame = [...this.frames].reverse().find((f) => f.has(name));
    if (!frame) throw new Error(`template: undefined variable ${name}`);
    return frame.get(name);
  }
}

function field(v: any, name: string): any {
  if (v === undefined) return undefined;
  if (v === null) throw new Error(`template: nil pointer evaluating interface {}.${name}`);
  if (isMap(v)) return Object.prototype.hasOwnProperty.call(v, name) ? v[name] : undefined;
  throw new Error(`template: can't evaluate field ${name} in type ${Array.isArray(v) ? 'list' : typeof v}`);
}

function evalOperand(op: Operand, dot: any, scope: Scope): any {
  switch (op.t) {
    case 'literal': return op.value;
    case 'pipe': return evalPipeline(op.pipe, dot, scope);
    case 'ident': throw new Error(`template: ${op.name} is not a value`);
    case 'field': {
      const base = op.base === 'dot' ? dot
        : 'variable' in (op.base as any) ? scope.get((op.base as any).variable)
          : evalOperand(op.base as Operand, dot, scope);
      return op.fields.reduce(field, base);
    }
  }
}

function evalCommand(cmd: Operand[], dot: any, scope: Scope, piped: { value: any } | undefined): any {
  const [head, ...rest] = cmd;
  if (head.t === 'ident') {
    const fn = FUNCTIONS[head.name];
    if (!fn) throw new Error(`template: function "${head.name}" not defined`);
    if (head.name === 'and' || head.name === 'or') {
      const args = [...rest.map((a) => () => evalOperand(a, dot, scope)), ...(piped ? [() => piped.value] : [])];
      if (args.length === 0) throw new Error(`template: ${head.name} needs arguments`);
      let last: any;
      for (const arg of args) {
        last = arg();
        if (truth(last) === (head.name === 'or')) return last;
      }
      return last;
    }
    const args = rest.map((a) => evalOperand(a, dot, scope));
    if (piped) args.push(piped.value);
    return fn(...args);
  }
  if (rest.length > 0 || piped) throw new Error('template: can\'t give argument to non-function');
  return evalOperand(head, dot, scope);
}

function evalPipeline(pipe: Pipeline, dot: any, scope: Scope): any {
  let piped: { value: any } | undefined;
  for (const cmd of pipe.cmds) piped = { value: evalCommand(cmd, dot, scope, piped) };
  return piped!.value;
}

function execNodes(nodes: TNode[], dot: any, scope: Scope, out: string[]): void {
  for (const node of nodes) {
    switch (node.type) {
      case 'text':
        out.push(node.text);
        break;
      case 'action': {
        const value = evalPipeline(node.pipe, dot, scope);
        if (node.pipe.decl.length === 0) out.push(goPrint(value));
        else if (node.pipe.decl.length > 1) throw new Error('template: too many declarations');
        else if (node.pipe.assign) scope.assign(node.pipe.decl[0], value);
        else scope.declare(node.pipe.decl[0], value);
        break;
      }
      case 'if': {
        scope.push();
        const value = evalPipeline(node.pipe, dot, scope);
        if (node.pipe.decl.length) scope.declare(node.pipe.decl[0], value);
        execNodes(truth(value) ? node.then : node.else, dot, scope, out);
        scope.pop();
        break;
      }
      case 'range': {
        scope.push();
        const value = evalPipeline(node.pipe, dot, scope);
        let entries: Array<[any, any]>;
        if (value === undefined || value === null) entries = [];
        else if (Array.isArray(value)) entries = value.map((v, i) => [i, v]);
        else if (isMap(value)) entries = Object.keys(value).sort().map((k) => [k, value[k]]);
        else throw new Error(`template: range can't iterate over ${JSON.stringify(value)}`);
        if (entries.length === 0) execNodes(node.else, dot, scope, out);
        for (const [key, element] of entries) {
          scope.push();
          if (node.pipe.decl.length === 1) scope.declare(node.pipe.decl[0], element);
          if (node.pipe.decl.length === 2) {
            scope.declare(node.pipe.decl[0], key);
            scope.declare(node.pipe.decl[1], element);
          }
          execNodes(node.body, element, scope, out);
          scope.pop();
        }
        scope.pop();
        break;
      }
    }
  }
}

const parsedTemplates = new Map<string, TNode[]>();

/** Executes a Go text/template (the subset above) on data, as Polaris does each check's schema. */
export function templateGo(src: string, data: any): string {
  let nodes = parsedTemplates.get(src);
  if (!nodes) {
    nodes = parseTemplate(src);
    parsedTemplates.set(src, nodes);
  }
  const out: string[] = [];
  execNodes(nodes, data, new Scope(data), out);
  return out.join('');
}

// ---------------------------------------------------------------------------------------------
// JSON Schema

/** Go's RE2 patterns in JavaScript: a leading `(?i)` (or one right after `^`) becomes the i flag. */
const goRegExp = Object.assign((pattern: string, flags: string) => {
  let source = pattern;
  let f = flags;
  if (source.startsWith('(?i)')) {
    source = source.slice(4);
    f += 'i';
  } else if (source.startsWith('^(?i)')) {
    source = `^${source.slice(5)}`;
    f += 'i';
  }
  if (/\(\?[a-zA-Z]+[):]/.test(source)) throw new Error(`polaris: RE2 inline flags other than a leading (?i) in /${pattern}/`);
  return new RegExp(source, f);
}, { code: 'goRegExp' });

const ajv = new Ajv2019({ strict: false, allErrors: true, code: { regExp: goRegExp as any } });
const validators = new Map<string, ValidateFunction>();

/** Drops a bare `required:` (null), which Polaris' schema library ignores and ajv refuses. */
function dropNullRequired(schema: any, parentKey = ''): any {
  if (Array.isArray(schema)) return schema.map((s) => dropNullRequired(s));
  if (!isMap(schema) || ['const', 'enum', 'default', 'examples'].includes(parentKey)) return schema;
  return Object.fromEntries(Object.entries(schema).filter(([k, v]) => {
    if (v !== null) return true;
    if (k === 'required') return false;
    if (['const', 'default', 'examples'].includes(k)) return true;
    throw new Error(`polaris: null schema keyword ${k}`);
  }).map(([k, v]) => [k, dropNullRequired(v, k)]));
}

const DRAFT_2019 = /^https?:\/\/json-schema\.org\/draft\/2019-09\/schema#?$/;

/** A validator for a schema text (YAML or JSON), compiled once per distinct text. */
export function schemaValidator(text: string): ValidateFunction {
  let validate = validators.get(text);
  if (!validate) {
    const schema = dropNullRequired(yaml(text));
    if (!isMap(schema)) throw new Error(`polaris: schema is not an object: ${text.slice(0, 200)}`);
    if (schema.$schema !== undefined) {
      if (!DRAFT_2019.test(schema.$schema)) throw new Error(`polaris: schema draft ${schema.$schema} is not 2019-09`);
      delete schema.$schema;
    }
    validate = ajv.compile(schema);
    validators.set(text, validate);
  }
  return validate;
}

// ---------------------------------------------------------------------------------------------
// Running the checks

interface Subject {
  /** Check target: Controller, PodSpec (also for PodTemplate checks), Container, or '' for kind checks. */
  readonly target: string;
  readonly obj: any;
  readonly template?: any;
  readonly container?: any;
  readonly isInit?: boolean;
}

/** What a Go struct round trip does to a container that matters here: quantities become strings. */
function asPolarisContainer(container: any): any {
  const copy = JSON.parse(JSON.stringify(container));
  for (const key of ['limits', 'requests']) {
    for (const [name, value] of Object.entries<any>(copy.resources?.[key] ?? {})) copy.resources[key][name] = String(value);
  }
  return copy;
}

function isActionable(check: PolarisCheck, subject: Subject): boolean {
  const kind: string = subject.obj.kind;
  if (HANDLED_TARGETS.includes(subject.target)) {
    const wanted = check.target === 'PodTemplate' ? 'PodSpec' : check.target;
    if (wanted !== subject.target) return false;
  } else if (HANDLED_TARGETS.includes(check.target) || (check.target !== kind && !check.target.endsWith(`/${kind}`))) {
    return false;
  }
  if (check.controllers.include && !check.controllers.include.includes(kind)) return false;
  if (check.controllers.exclude?.includes(kind)) return false;
  if (check.target === 'Container') {
    const matches = (entry: string) => (entry === 'initContainer' && subject.isInit) || (entry === 'container' && !subject.isInit);
    if (check.containers.include && !check.containers.include.some(matches)) return false;
    if (check.containers.exclude?.some(matches)) return false;
  }
  return true;
}

function isExempt(config: PolarisConfig, check: PolarisCheck, subject: Subject): boolean {
  const meta = subject.obj.metadata ?? {};
  const annotations = meta.annotations ?? {};
  if (String(annotations['polaris.fairwinds.com/exempt']).toLowerCase() === 'true') return true;
  if (String(annotations[`polaris.fairwinds.com/${check.id}-exempt`]).toLowerCase() === 'true') return true;
  const prefixMatch = (list: string[] | undefined, value: string) => !list?.length || list.some((prefix) => value.startsWith(prefix));
  return config.exemptions.some((e) => (!e.namespace || e.namespace === meta.namespace)
    && (!e.rules?.length || e.rules.includes(check.id))
    && prefixMatch(e.controllerNames, meta.name ?? '')
    && prefixMatch(e.containerNames, subject.container?.name ?? ''));
}

const groupKindOf = (obj: any) => {
  const apiVersion: string = obj.apiVersion ?? '';
  return apiVersion.includes('/') ? `${apiVersion.split('/')[0]}/${obj.kind}` : obj.kind;
};

function runCheck(check: PolarisCheck, subject: Subject, cluster: any[]): { passes: boolean; details: string[] } {
  const data: any = JSON.parse(JSON.stringify(subject.obj));
  if (subject.template) {
    data.Polaris = { PodSpec: subject.template.spec, PodTemplate: subject.template, ...(subject.container ? { Container: subject.container } : {}) };
  }
  const schemaText = templateGo(check.schemaTemplate!, data);
  let target: any;
  if (check.schemaTarget) {
    if (check.schemaTarget !== 'PodSpec' || check.target !== 'Container') {
      throw new Error(`polaris: unknown combination of target ${check.target} and schemaTarget ${check.schemaTarget}`);
    }
    const { initContainers: _, ...spec } = subject.template.spec;
    target = { ...spec, containers: [subject.container] };
  } else if (check.target === 'PodSpec') {
    target = subject.template.spec;
  } else if (check.target === 'PodTemplate') {
    target = subject.template;
  } else if (check.target === 'Container') {
    target = subject.container;
  } else {
    target = subject.obj;
  }
  let passes = true;
  let details: string[] = [];
  if (schemaText.trim() !== '') {
    const validate = schemaValidator(schemaText);
    passes = validate(target) as boolean;
    // The deepest places the schema failed: a path that another one extends is left out.
    const paths = [...new Set((validate.errors ?? []).map((e) => e.instancePath).filter((p) => p !== ''))];
    details = paths.filter((p) => !paths.some((q) => q.startsWith(`${p}/`))).sort();
  }
  for (const [groupKind, template] of Object.entries(check.additionalSchemaTemplates)) {
    if (!passes) break;
    const text = templateGo(template, data);
    if (text.trim() === '') continue;
    const validate = schemaValidator(text);
    const namespace = subject.obj.kind === 'Namespace' ? subject.obj.metadata?.name : subject.obj.metadata?.namespace;
    passes = cluster.filter((o) => groupKindOf(o) === groupKind && (o.metadata?.namespace ?? '') === (namespace ?? ''))
      .some((o) => validate(o) as boolean);
    if (!passes) details = [`no ${groupKind} in namespace ${namespace ?? '(none)'} passes`];
  }
  return { passes, details };
}

/** The subjects Polaris checks in an object: the object, and for workloads its pod spec and containers. */
function subjectsOf(obj: any): Subject[] {
  const steps = POD_TEMPLATE_PATHS[obj.kind];
  const template = steps && (steps.length ? steps.reduce((node, step) => node?.[step], obj) : obj);
  if (!template?.spec) return [{ target: '', obj }];
  return [
    { target: 'Controller', obj },
    { target: '', obj },
    { target: 'PodSpec', obj, template },
    ...(template.spec.initContainers ?? []).map((c: any) => ({ target: 'Container', obj, template, container: asPolarisContainer(c), isInit: true })),
    ...(template.spec.containers ?? []).map((c: any) => ({ target: 'Container', obj, template, container: asPolarisContainer(c), isInit: false })),
  ];
}

export interface PolarisRun {
  readonly results: PolarisResult[];
  /** Checks that apply to some object but were exempted (by default.yaml or an annotation). */
  readonly exempted: Array<{ readonly check: string; readonly kind: string; readonly name: string; readonly container?: string }>;
}

/**
 * Runs every check with a schema over objects; `cluster` stands for what else exists (the
 * objects themselves by default). Checks without a schema throw unless listed in `skip`.
 */
export function runPolaris(config: PolarisConfig, objects: any[], skip: readonly string[] = [], cluster: any[] = objects): PolarisRun {
  const results: PolarisResult[] = [];
  const exempted: Array<{ check: string; kind: string; name: string; container?: string }> = [];
  const checks = config.checks.filter((c) => !skip.includes(c.id));
  for (const check of checks) {
    if (!check.schemaTemplate) throw new Error(`polaris check ${check.id} has no schema: list it as skipped with the reason`);
  }
  for (const obj of objects) {
    for (const subject of subjectsOf(obj)) {
      for (const check of checks) {
        if (check.severity === 'ignore' || !isActionable(check, subject)) continue;
        const container = subject.container ? `${subject.isInit ? 'init:' : ''}${subject.container.name}` : undefined;
        if (isExempt(config, check, subject)) {
          exempted.push({ check: check.id, kind: obj.kind, name: obj.metadata?.name, container });
          continue;
        }
        let outcome: { passes: boolean; details: string[] };
        try {
          outcome = runCheck(check, subject, cluster);
        } catch (e) {
          throw new Error(`polaris check ${check.id} on ${obj.kind}/${obj.metadata?.name}${container ? ` (${container})` : ''}: ${(e as Error).message}`);
        }
        results.push({
          check: check.id, severity: check.severity, passed: outcome.passes, kind: obj.kind, name: obj.metadata?.name,
          namespace: obj.metadata?.namespace, container, message: check.failureMessage,
          ...(outcome.passes ? {} : { details: outcome.details }),
        });
      }
    }
  }
  return { results, exempted };
}
