import { Duration } from 'cdk8s';
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

/**
 * A duration in whole seconds, as Kubernetes and the daemons count them; undefined when unset.
 * Throws for a fraction of a second instead of rounding it silently.
 */
export function wholeSeconds(scope: IConstruct, prop: string, duration: Duration | undefined): number | undefined {
  if (duration === undefined) return undefined;
  // Not integral: cdk8s throws its own pathless error for a fraction of a millisecond.
  const millis = duration.toMilliseconds({ integral: false });
  if (millis % 1000 !== 0) {
    throw propError(scope, prop, `${millis}ms`, 'is not a whole number of seconds', 'use a whole number of seconds, such as Duration.seconds(15)');
  }
  return millis / 1000;
}

/** Throws unless `image` looks like an image reference; `example` is the component's default. */
export function validateImage(scope: IConstruct, image: string, example: string, prop = 'image'): string {
  if (image.trim() === '' || /\s/.test(image)) {
    throw propError(scope, prop, image, 'is not an image reference', `use a reference such as "${example}"`);
  }
  return image;
}

/**
 * Throws unless `value` is one of the enum's values; returns it (undefined stays undefined, for
 * optional props). jsii enums are plain strings to TypeScript and JavaScript callers, so any
 * string can arrive where the type says an enum. The enum comes under its own name, `{ PoolMode }`,
 * so the fix can name its members.
 */
export function requireEnum<T extends string, V extends T | undefined>(scope: IConstruct, prop: string, value: V,
  named: { readonly [enumName: string]: { readonly [member: string]: T } }): V {
  const [enumName, members] = Object.entries(named)[0];
  if (value === undefined || (Object.values(members) as string[]).includes(value)) return value;
  const choices = Object.entries(members).map(([member, text]) => `${enumName}.${member} ("${text}")`);
  throw propError(scope, prop, value, `is not a ${enumName}`, `use one of ${choices.join(', ')}`);
}
