import { IConstruct } from 'constructs';

/**
 * The one shape of every synth-time error: the construct path, the prop, the value, the problem
 * and the fix, so a user can act on it without reading the library.
 */
export function propError(scope: IConstruct, prop: string, value: unknown, problem: string, fix: string): Error {
  return new Error(`${scope.node.path}: ${prop} ${describeValue(value)} ${problem}; ${fix}`);
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return '(unset)';
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value) ?? String(value);
}
