/** What a synth-time error must say besides the construct path. */
export interface ExpectedPropError {
  /** The prop the message must name, such as `resources.cpuLimit`. */
  readonly prop: string;
  /** The bad value as the message shows it (strings JSON-quoted). */
  readonly value: string;
  /** What the part of the message after `;` (the fix) must match. */
  readonly fix: RegExp;
}

/** The message of the plain Error `action` throws; fails the test when it throws none. */
export function thrownMessage(action: () => unknown, what: string): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).constructor).toBe(Error);
    return (error as Error).message;
  }
  throw new Error(`expected ${what} to be rejected, but it synthesized`);
}

/** `text` as a regular expression that matches it literally. */
export const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Asserts the message names the construct path, the prop, the bad value and a fix after `;`. */
export function expectPropErrorMessage(message: string, path: string, expected: ExpectedPropError): void {
  expect(message.startsWith(`${path}: `)).toBe(true);
  expect(message).toMatch(new RegExp(`(^|[\\s:])${escapeRegExp(expected.prop)}(\\s|$)`));
  expect(message).toContain(expected.value);
  expect(message).toContain(';');
  expect(message.slice(message.indexOf(';') + 1)).toMatch(expected.fix);
}
