import { IConstruct } from 'constructs';
import { propError } from './errors';

/** Throws unless `value` is a whole number in [min, max]; returns it. */
export function requireInteger(scope: IConstruct, prop: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw propError(scope, prop, value, `must be a whole number ${range}`, `set ${prop} to a whole number ${range}`);
  }
  return value;
}

/** Throws unless `port` is a TCP port number; returns it. */
export function validatePort(scope: IConstruct, prop: string, port: number): number {
  return requireInteger(scope, prop, port, 1, 65535);
}
