import { rmSync } from 'fs';
import { AdversarialCase, adversarialCases, baseline, Component, propCount } from './support/adversarial-cases';
import { AdversarialDaemons } from './support/adversarial-daemons';
import { requirePostgres, requireProgram, scratchDir } from './support/postgres-bin';
import { escapeRegExp } from '../support/prop-errors';
import { DAEMONS } from './support/daemons';

/**
 * Issue 17's adversarial suite: every prop that reaches a rendered file, fed hostile strings,
 * edge numbers, sizes, quantities and durations, and hostile map keys and values. Each case must
 * be refused at synth by a plain Error that names the prop, or render files that the real
 * daemons boot (PostgreSQL 15, PgBouncer 1.18, Pgpool-II 4.3), that Patroni, pgBackRest and
 * promtool accept and whose scripts shellcheck passes. A crash (TypeError and the like), a refusal
 * that names no prop, or a file a daemon refuses fails the suite, with every such case listed.
 */

type Outcome = 'refused' | 'booted' | 'failed';

interface Result {
  readonly testCase: AdversarialCase;
  readonly outcome: Outcome;
  readonly detail?: string;
}

/**
 * Whether a refusal names the prop: the path as a whole word, or deeper (`backup.repositories[1]`
 * naming `.bucket`), or, for an element of a string list (`allowedCidrs[0]`), the list.
 */
function namesProp(message: string, prop: string): boolean {
  const names = [prop, prop.replace(/\[\d+\]$/, '')];
  return names.some((name) => new RegExp(`(^|[\\s:])${escapeRegExp(name)}([\\s.[]|$)`).test(message));
}

/** Synthesizes a case; a refusal is judged here, the rendered objects are returned for the daemons. */
function synthesize(testCase: AdversarialCase): Result | any[] {
  try {
    return testCase.synth();
  } catch (error) {
    if (!(error instanceof Error) || error.constructor !== Error) {
      const name = error instanceof Error ? error.constructor.name : typeof error;
      return { testCase, outcome: 'failed', detail: `crashed with ${name}: ${String((error as Error)?.message ?? error).slice(0, 300)}` };
    }
    if (!namesProp(error.message, testCase.prop)) {
      return { testCase, outcome: 'failed', detail: `refused without naming ${testCase.prop}: ${error.message.slice(0, 300)}` };
    }
    return { testCase, outcome: 'refused' };
  }
}

describe('adversarial props: refused with the prop named, or booted by the real daemons', () => {
  const COMPONENTS: Component[] = ['cluster', 'ha', 'backup', 'pooler', 'balancer', 'exporter'];
  const results: Result[] = [];
  let scratch: string;
  let daemons: AdversarialDaemons;
  const started = Date.now();

  beforeAll(() => {
    requirePostgres();
    DAEMONS.require('pgbouncer');
    DAEMONS.require('pgpool');
    DAEMONS.require('patroni');
    DAEMONS.require('pgbackrest');
    requireProgram('/usr/bin/promtool', 'prometheus');
    requireProgram('/usr/bin/shellcheck', 'shellcheck');
    scratch = scratchDir('cdk8s-postgres-adversarial');
    daemons = new AdversarialDaemons(scratch, 2);
  }, 60_000);

  afterAll(() => {
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
    const count = (outcome: Outcome) => results.filter((r) => r.outcome === outcome).length;
    console.log([
      `adversarial suite: ${propCount()} props, ${results.length} cases in ${Math.round((Date.now() - started) / 1000)} s:`,
      `${count('refused')} refused at synth with the prop named, ${count('booted')} rendered and booted, ${count('failed')} failed`,
      `daemon checks run (distinct files): ${JSON.stringify(daemons?.boots ?? {})}`,
      ...results.filter((r) => r.outcome === 'failed').map((r) => `FAILED ${r.testCase.component} ${r.testCase.prop} = ${r.testCase.shown}: ${r.detail}`),
    ].join('\n'));
  });

  test.each(COMPONENTS)('the %s baseline renders and boots', async (component) => {
    const objects = synthesize(baseline(component));
    expect(Array.isArray(objects) ? [] : [(objects as Result).detail]).toEqual([]);
    expect(await daemons.check(component, objects as any[])).toEqual([]);
  }, 120_000);

  test.each(COMPONENTS)('every %s case is refused with its prop named or boots', async (component) => {
    const cases = adversarialCases().filter((c) => c.component === component);
    expect(cases.length).toBeGreaterThan(0);
    const own = await Promise.all(cases.map(async (testCase): Promise<Result> => {
      const synthesized = synthesize(testCase);
      if (!Array.isArray(synthesized)) return synthesized;
      const said = await daemons.check(component, synthesized);
      return said.length === 0 ? { testCase, outcome: 'booted' } : { testCase, outcome: 'failed', detail: said.join('; ') };
    }));
    results.push(...own);
    const failures = own.filter((r) => r.outcome === 'failed').map((r) => `${r.testCase.prop} = ${r.testCase.shown}: ${r.detail}`);
    expect(failures).toEqual([]);
  }, 600_000);
});
