import { IConstruct } from 'constructs';
import { propError } from './errors';

/**
 * What a daemon's setting takes, as version data (PostgreSQL's pg_settings, PgBouncer's and
 * Pgpool-II's tables): a boolean, a number in `unit` within [min, max], one of `values`, or text.
 */
export type SettingType =
  | { readonly kind: 'bool' }
  | { readonly kind: 'integer' | 'real'; readonly min: number; readonly max: number; readonly unit?: string }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'string' };

/** A numeric setting's type. */
export type NumericType = Extract<SettingType, { kind: 'integer' | 'real' }>;

/** How a daemon reads a value: what differs between PostgreSQL's guc.c (which Pgpool-II copies) and PgBouncer. */
export interface SettingSyntax {
  /** The daemon, for messages (`PostgreSQL 15`). */
  readonly daemon: string;
  /** The boolean a value reads as, undefined when the daemon refuses it. */
  readonly bool: (text: string) => boolean | undefined;
  /** The words the fix suggests for a boolean. */
  readonly boolWords: string;
  /** The number a value reads as, in the setting's unit; undefined when the daemon refuses it. */
  readonly number: (text: string, type: NumericType) => number | undefined;
  /** What the fix says a number is written as. */
  readonly numberSyntax: (type: NumericType) => string;
}

/**
 * Throws unless the daemon reads `value` as a value of `type` within its range: booleans and
 * numbers as the daemon parses them, enum values case-insensitively, text without control characters.
 */
export function checkSettingValue(scope: IConstruct, prop: string, value: string, type: SettingType, syntax: SettingSyntax): void {
  const problem = (what: string) => `is not ${what} ${syntax.daemon} reads`;
  switch (type.kind) {
    case 'bool':
      if (syntax.bool(value) === undefined) throw propError(scope, prop, value, problem('a boolean'), `use ${syntax.boolWords}`);
      return;
    case 'enum':
      if (!type.values.some((allowed) => allowed.toLowerCase() === value.toLowerCase())) {
        throw propError(scope, prop, value, `is not one of the values ${syntax.daemon} accepts`, `use one of ${type.values.join(', ')}`);
      }
      return;
    case 'string':
      if (/[\u0000-\u001f\u007f]/.test(value)) throw propError(scope, prop, value, 'contains a control character', 'give printable text');
      return;
    default: {
      const range = `from ${type.min} to ${type.max}${type.unit ? ` (in ${type.unit})` : ''}`;
      const number = syntax.number(value, type);
      if (number === undefined) {
        throw propError(scope, prop, value, problem(type.kind === 'integer' ? 'a whole number' : 'a number'),
          `write ${syntax.numberSyntax(type)}, ${range}`);
      }
      if (!(number >= type.min && number <= type.max)) {
        throw propError(scope, prop, value, `is outside the range ${syntax.daemon} accepts`, `give a value ${range}`);
      }
    }
  }
}

const C_SPACE = /^[ \t\n\v\f\r]*/;

/** C's strtol(text, &end, 0): decimal, 0x hex or 0 octal; `overflow` past a 64-bit long. */
export function strtol(text: string): { value: number; end: number; overflow: boolean } {
  const match = /^([ \t\n\v\f\r]*)([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text);
  if (!match) return { value: 0, end: 0, overflow: false };
  const digits = match[3];
  const [radix, body] = /^0[xX]/.test(digits) ? [16, digits.slice(2)] : digits.length > 1 && digits[0] === '0' ? [8, digits.slice(1)] : [10, digits];
  const magnitude = [...body].reduce((sum, digit) => sum * BigInt(radix) + BigInt(parseInt(digit, radix)), BigInt(0));
  const signed = match[2] === '-' ? -magnitude : magnitude;
  const overflow = signed > BigInt('9223372036854775807') || signed < BigInt('-9223372036854775808');
  return { value: Number(signed), end: match[0].length, overflow };
}

/** C's strtod: decimal and hex floats, inf and nan; `range` when the result overflows or underflows. */
export function strtod(text: string): { value: number; end: number; range: boolean } {
  const space = C_SPACE.exec(text)![0].length;
  const rest = text.slice(space);
  const hex = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?/.exec(rest);
  if (hex && (hex[2] !== '' || (hex[3] ?? '') !== '')) {
    const mantissa = parseInt(`${hex[2]}${hex[3] ?? ''}` || '0', 16) / 16 ** (hex[3] ?? '').length;
    const value = (hex[1] === '-' ? -1 : 1) * mantissa * 2 ** Number(hex[4] ?? 0);
    return { value, end: space + hex[0].length, range: !Number.isFinite(value) };
  }
  const special = /^[+-]?(inf(inity)?|nan(\([0-9A-Za-z_]*\))?)/i.exec(rest);
  if (special) return { value: Number(special[0].replace(/inf(inity)?/i, 'Infinity').replace(/nan.*/i, 'NaN')), end: space + special[0].length, range: false };
  const decimal = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?/.exec(rest);
  if (!decimal) return { value: 0, end: 0, range: false };
  const value = Number(decimal[0]);
  const underflow = value === 0 ? /[1-9]/.test(decimal[1]) : Math.abs(value) < 2.2250738585072014e-308;
  return { value, end: space + decimal[0].length, range: !Number.isFinite(value) || underflow };
}

/** C's rint under the default rounding mode: halves go to the even neighbour. */
export function rint(value: number): number {
  const magnitude = Math.abs(value);
  const floor = Math.floor(magnitude);
  const rounded = magnitude - floor === 0.5 ? floor + (floor % 2) : Math.round(magnitude);
  return value < 0 ? -rounded : rounded;
}

/** PostgreSQL's memory and time units, largest first, in bytes and in milliseconds. */
const MEMORY_UNITS: ReadonlyArray<[string, number]> = [['TB', 2 ** 40], ['GB', 2 ** 30], ['MB', 2 ** 20], ['kB', 2 ** 10], ['B', 1]];
const TIME_UNITS: ReadonlyArray<[string, number]> = [['d', 86400000], ['h', 3600000], ['min', 60000], ['s', 1000], ['ms', 1], ['us', 0.001]];

/** A setting's unit (`8kB`, `MB`, `s`) as its table and its size there. */
function unitScale(unit: string): { table: ReadonlyArray<[string, number]>; size: number } {
  const match = /^([0-9]*)(.*)$/.exec(unit)!;
  const count = match[1] === '' ? 1 : Number(match[1]);
  const memory = MEMORY_UNITS.find(([name]) => name === match[2]);
  if (memory) return { table: MEMORY_UNITS, size: count * memory[1] };
  return { table: TIME_UNITS, size: count * TIME_UNITS.find(([name]) => name === match[2])![1] };
}

/**
 * guc.c's convert_to_base_unit: `value` in the written unit, converted to the setting's unit; a
 * fraction is rounded to the next smaller unit ("1.5MB" is 1536kB); undefined for an unknown unit.
 */
function convertToBaseUnit(value: number, written: string, unit: string): number | undefined {
  const { table, size } = unitScale(unit);
  const index = table.findIndex(([name]) => name === written);
  if (index < 0) return undefined;
  const converted = (value * table[index][1]) / size;
  if (index + 1 === table.length) return converted;
  const next = table[index + 1][1] / size;
  return rint(converted / next) * next;
}

/** guc.c's parse_int and parse_real (PostgreSQL 15 and Pgpool-II 4.3): a number, white space and an optional unit. */
function gucNumber(text: string, type: NumericType): number | undefined {
  let parsed = strtod(text);
  if (type.kind === 'integer') {
    // parse_int reads a long, and re-reads as a float at a decimal point, an exponent or an overflow.
    const long = strtol(text);
    if (!long.overflow && !/^[.eE]/.test(text.slice(long.end))) parsed = { value: long.value, end: long.end, range: false };
  }
  const { end, range } = parsed;
  let value = parsed.value;
  if (end === 0 || range || Number.isNaN(value)) return undefined;
  const rest = text.slice(end).replace(C_SPACE, '');
  const unit = /^(\S{0,3})[ \t\n\v\f\r]*$/.exec(rest);
  if (rest !== '') {
    if (!type.unit || !unit) return undefined;
    const converted = convertToBaseUnit(value, unit[1], type.unit);
    if (converted === undefined) return undefined;
    value = converted;
  }
  return type.kind === 'integer' ? rint(value) : value;
}

/** guc.c's parse_bool: true, false, yes, no and their prefixes, on, off (or of), 1 and 0, in any case. */
function gucBool(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (lower === '') return undefined;
  if (['true', 'yes'].some((word) => word.startsWith(lower)) || lower === 'on' || lower === '1') return true;
  if (['false', 'no'].some((word) => word.startsWith(lower)) || ['of', 'off', '0'].includes(lower)) return false;
  return undefined;
}

/** How PostgreSQL (and Pgpool-II, whose parser is guc.c's) reads a value. */
export function gucSyntax(daemon: string): SettingSyntax {
  return {
    daemon,
    bool: gucBool,
    boolWords: 'on or off',
    number: gucNumber,
    numberSyntax: (type) => (type.unit ? `a number, optionally with a unit (${/B$/.test(type.unit) ? 'kB, MB, GB' : 'ms, s, min, h'})` : 'a plain number'),
  };
}
