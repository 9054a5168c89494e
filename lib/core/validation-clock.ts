import { performance } from 'perf_hooks';
import { IConstruct } from 'constructs';

let spentMilliseconds = 0;

const checksByScope = new WeakMap<IConstruct, Array<() => string[]>>();

/**
 * Adds a check to the construct's one library validation, and counts the time it takes, so the
 * synthesis bench can report the library's own share of `cdk8s synth` (which runs every
 * validation once per chart: one validation per construct keeps that to one call).
 */
export function addLibraryValidation(scope: IConstruct, validate: () => string[]): void {
  const checks = checksByScope.get(scope);
  if (checks) {
    checks.push(validate);
    return;
  }
  const own = [validate];
  checksByScope.set(scope, own);
  scope.node.addValidation({
    validate: () => {
      const start = performance.now();
      try {
        return own.length === 1 ? own[0]() : own.flatMap((check) => check());
      } finally {
        spentMilliseconds += performance.now() - start;
      }
    },
  });
}

/** The time spent in the library's validations since the process started, in milliseconds. */
export function libraryValidationMilliseconds(): number {
  return spentMilliseconds;
}
