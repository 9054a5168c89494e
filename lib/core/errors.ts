import { IConstruct } from 'constructs';

/**
 * The one shape of every synth-time error: the construct path, the prop, the value, the problem
 * and the fix, so a user can act on it without reading the library.
 */
export function propError(scope: IConstruct, prop: string, value: unknown, problem: string, fix: string): Error {
  return inputError(scope.node.path, prop, value, problem, fix);
}

/** propError's shape for input no construct owns yet, such as a list of overlays: `where` stands for the construct path. */
export function inputError(where: string, prop: string, value: unknown, problem: string, fix: string): Error {
  return new Error(`${where}: ${prop} ${describeValue(value)} ${problem}; ${fix}`);
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return '(unset)';
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value) ?? String(value);
}
