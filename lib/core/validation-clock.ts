import { performance } from 'perf_hooks';
import { IConstruct } from 'constructs';

let spentMilliseconds = 0;

/**
 * Adds a validation to the construct and counts the time it takes, so the synthesis bench can
 * report the library's own share of `cdk8s synth` (which runs every validation once per chart).
 */
export function addLibraryValidation(scope: IConstruct, validate: () => string[]): void {
  scope.node.addValidation({
    validate: () => {
      const start = performance.now();
      try {
        return validate();
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
