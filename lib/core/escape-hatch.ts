import { IConstruct } from 'constructs';
import { propError } from './errors';

/** Why an escape hatch may not carry a setting, and the prop (or the reason there is none) to use. */
export interface ReservedSetting {
  readonly problem: string;
  readonly use: string;
}

/** A setting the construct writes itself: a second line in the file would win over it. */
export const setByConstruct = (use: string): ReservedSetting => ({ problem: 'is set by the construct', use });

/**
 * The settings a daemon's escape hatch refuses: those the construct writes, and those that
 * carry security or durability, which only a typed prop with safe bounds may change.
 */
export class ReservedSettings {
  /**
   * @param names reserved settings by exact name
   * @param families reserved settings by pattern (every `ssl_*`), after the exact names
   */
  constructor(private readonly names: ReadonlyMap<string, ReservedSetting>,
    private readonly families: ReadonlyArray<[RegExp, ReservedSetting]> = []) {}

  /** Throws, naming the prop to use, when `setting` is reserved. */
  public check(scope: IConstruct, prop: string, setting: string, value: string): void {
    const reserved = this.names.get(setting) ?? this.families.find(([pattern]) => pattern.test(setting))?.[1];
    if (reserved) throw propError(scope, prop, value, reserved.problem, `use ${reserved.use}`);
  }
}

/** Every daemon reads its config line by line: a line break would start a setting of its own. */
export function requireSingleLine(scope: IConstruct, prop: string, value: string): void {
  if (/[\n\r\0]/.test(value)) throw propError(scope, prop, value, 'contains a line break or NUL', 'give a single-line value');
}
