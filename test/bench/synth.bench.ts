// npm run bench, first part: synthesis of N full stacks (the Airflow example: cluster, balancer,
// pooler and three exporters) in one App, against a baseline that emits the same objects as bare
// cdk8s ApiObjects, the floor for the library's overhead: one chart per stack (as teams lay out
// environments) and all stacks in one chart (cdk8s validates the whole App once per chart, so the
// layout decides how often). Each (mode, N) runs in a fresh child process, so its peak memory is
// its own; each case runs ROUNDS times (once if the first run is slow) and the median time is kept.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { ApiObject, App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { addAirflowStack, AirflowStackChart } from '../../examples/airflow-stack';
import { libraryValidationMilliseconds } from '../../lib/core/validation-clock';

const SIZES = [1, 10, 50, 100, 200, 500];
const ROUNDS = 3;
/** A case whose first run takes longer runs once, to keep the bench to a few minutes. */
const REPEAT_UNDER_MS = 20_000;
const MODES = ['library', 'baseline', 'library-1chart', 'baseline-1chart'] as const;
type Mode = typeof MODES[number];

interface Sample {
  mode: Mode;
  n: number;
  ms: number;
  /** Time spent in the library's own validations (name, connection budget and memory checks). */
  validationMs: number;
  rssBeforeMiB: number;
  peakMiB: number;
  /** Heap still in use after synthesis with the App and its YAML alive, above the heap before. */
  retainedMiB: number;
  yamlBytes: number;
}

const namespace = (i: number) => `stack-${i}`;
const prefix = (i: number) => `airflow-${i}`;
const ONE_CHART_NAMESPACE = 'stacks';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const oneChart = (mode: Mode) => mode.endsWith('-1chart');

/** The library: one AirflowStackChart per stack, or every stack in one chart under its own prefix. */
function synthLibrary(stacks: number[], inOneChart: boolean): { app: App; yaml: string } {
  const app = new App();
  if (inOneChart) {
    const chart = new Chart(app, 'Stacks', { namespace: ONE_CHART_NAMESPACE });
    for (const i of stacks) addAirflowStack(new Construct(chart, `Stack${i}`), prefix(i));
  } else {
    for (const i of stacks) new AirflowStackChart(app, `Stack${i}`, { namespace: namespace(i) });
  }
  return { app, yaml: app.synthYaml() };
}

/** Stack 0's objects, as JSON text, in the layout of the mode. */
function template(inOneChart: boolean): string {
  return JSON.stringify(synthLibraryObjects(inOneChart));
}

function synthLibraryObjects(inOneChart: boolean): any[] {
  if (!inOneChart) return new AirflowStackChart(new App(), 'Template', { namespace: namespace(0) }).toJson();
  const chart = new Chart(new App(), 'Template', { namespace: ONE_CHART_NAMESPACE });
  addAirflowStack(new Construct(chart, 'Stack0'), prefix(0));
  return chart.toJson();
}

/**
 * The baseline: the same objects as bare ApiObjects. The stack's namespace or prefix also appears
 * inside the objects (DNS names in configuration, alerts, dashboards, selectors), so each stack's
 * objects come from stack 0's rendering with it substituted, as hand-written objects would have
 * it; only the Deployments' checksum/config annotations keep stack 0's digests (same length).
 */
function synthBaseline(stacks: number[], inOneChart: boolean, stackTemplate: string): { app: App; yaml: string } {
  const app = new App();
  const shared = inOneChart ? new Chart(app, 'Stacks', { namespace: ONE_CHART_NAMESPACE }) : undefined;
  for (const i of stacks) {
    const chart = shared ?? new Chart(app, `Stack${i}`, { namespace: namespace(i) });
    // The prefix appears as `airflow-0-` in names and as `airflow_0_` in role and slot names.
    const text = inOneChart ? stackTemplate.replace(/airflow([-_])0\1/g, `airflow$1${i}$1`) : stackTemplate.replaceAll(namespace(0), namespace(i));
    const objects: any[] = JSON.parse(text);
    objects.forEach((object, k) => new ApiObject(chart, `s${i}o${k}`, object));
  }
  return { app, yaml: app.synthYaml() };
}

const mib = (bytes: number) => bytes / 1024 / 1024;

function child(mode: Mode, n: number): void {
  const inOneChart = oneChart(mode);
  const stackTemplate = template(inOneChart);
  const run = (stacks: number[]) => (mode.startsWith('library') ? synthLibrary(stacks, inOneChart) : synthBaseline(stacks, inOneChart, stackTemplate));
  // Warm-up, the same in every mode: loads and compiles the paths.
  for (let warmUp = 0; warmUp < 3; warmUp++) run([0]);
  const gc: () => void = (global as any).gc;
  gc();
  const { rss: rssBefore, heapUsed: heapBefore } = process.memoryUsage();
  const validationBefore = libraryValidationMilliseconds();
  const start = process.hrtime.bigint();
  const result = run(range(n));
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const validationMs = libraryValidationMilliseconds() - validationBefore;
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  gc();
  const sample: Sample = {
    mode, n, ms, validationMs, rssBeforeMiB: mib(rssBefore), peakMiB,
    retainedMiB: mib(process.memoryUsage().heapUsed - heapBefore), yamlBytes: result.yaml.length,
  };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
}

function runCase(mode: Mode, n: number): Sample {
  const result = spawnSync(process.execPath, ['--expose-gc', '-r', 'ts-node/register', __filename, '--child', mode, String(n)], {
    cwd: path.resolve(__dirname, '../..'),
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`${mode} N=${n} failed (${result.status ?? result.signal}):\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const pad = (cells: string[], widths: number[]) => cells.map((cell, c) => cell.padStart(widths[c])).join('  ');

function main(): void {
  // The baseline is the library's output: byte for byte for one stack; beyond, but for config
  // digests and the hashed Secret names in role directories (same lengths).
  const digestless = (yaml: string) => yaml.replace(/(checksum\/config: )[0-9a-f]{64}/g, '$1').replace(/(role-[a-z0-9-]+-)[0-9a-f]{8}\b/g, '$1');
  for (const inOneChart of [false, true]) {
    const stackTemplate = template(inOneChart);
    if (synthLibrary([0], inOneChart).yaml !== synthBaseline([0], inOneChart, stackTemplate).yaml
      || digestless(synthLibrary([0, 7, 42, 499], inOneChart).yaml) !== digestless(synthBaseline([0, 7, 42, 499], inOneChart, stackTemplate).yaml)) {
      throw new Error(`baseline YAML differs from the library's (${inOneChart ? 'one chart' : 'a chart per stack'})`);
    }
  }

  const began = Date.now();
  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of SIZES) {
      for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) {
        const key = `${mode}/${n}`;
        if (round > 0 && samples.get(key)![0].ms > REPEAT_UNDER_MS) continue;
        samples.set(key, [...(samples.get(key) ?? []), runCase(mode, n)]);
        process.stderr.write(`\r${mode} N=${n}, round ${round + 1} of ${ROUNDS} done   `);
      }
    }
  }
  process.stderr.write('\r\x1b[K');
  const runs = (mode: Mode, n: number) => samples.get(`${mode}/${n}`)!;
  const ms = (mode: Mode, n: number) => median(runs(mode, n).map((s) => s.ms));
  const validationShare = (n: number) => median(runs('library', n).map((s) => s.validationMs / s.ms));
  const peak = (mode: Mode, n: number) => Math.max(...runs(mode, n).map((s) => s.peakMiB));
  const growth = (mode: Mode, n: number) => Math.max(...runs(mode, n).map((s) => s.peakMiB - s.rssBeforeMiB));
  const retained = (mode: Mode, n: number) => median(runs(mode, n).map((s) => s.retainedMiB));
  const memory = (mode: Mode, n: number) => `${peak(mode, n).toFixed(0)} (+${growth(mode, n).toFixed(0)})`;
  const once = (mode: Mode, n: number) => (runs(mode, n).length < ROUNDS ? '*' : '');
  const time = (mode: Mode, n: number) => `${ms(mode, n).toFixed(0)}${once(mode, n)}`;

  const stackKiB = runs('library', 1)[0].yamlBytes / 1024;
  console.log(`Synthesis of N Airflow stacks in one App (${JSON.parse(template(false)).length} objects, ${stackKiB.toFixed(0)} KiB of YAML each), `
    + 'construction + app.synthYaml():');
  console.log(`median of ${ROUNDS} fresh processes per case (${((Date.now() - began) / 1000).toFixed(0)} s in all); `
    + 'baseline: the same objects as bare ApiObjects;');
  console.log('validation: the share of the library\'s time spent in its own validations (names, connection budget, memory);');
  console.log('MiB: peak RSS (+ growth above the RSS before measuring, which holds ts-node and the warm-up).');
  const header = ['N', 'library ms', 'baseline ms', 'lib/base', 'validation', 'library MiB', 'baseline MiB', '1 chart: lib ms', 'base ms', 'lib/base'];
  const widths = header.map((cell) => Math.max(cell.length, 9));
  console.log(pad(header, widths));
  for (const n of SIZES) {
    console.log(pad([String(n), time('library', n), time('baseline', n), (ms('library', n) / ms('baseline', n)).toFixed(2),
      `${(validationShare(n) * 100).toFixed(1)}%`, memory('library', n), memory('baseline', n),
      time('library-1chart', n), time('baseline-1chart', n), (ms('library-1chart', n) / ms('baseline-1chart', n)).toFixed(2)], widths));
  }
  const [small, large] = [50, 500];
  if ([...samples.values()].some((modeRuns) => modeRuns.length < ROUNDS)) {
    console.log(`* one run: the first took over ${REPEAT_UNDER_MS / 1000} s`);
  }
  const ratio = (mode: Mode) => `time ${(ms(mode, large) / ms(mode, small)).toFixed(1)}, `
    + `retained heap ${(retained(mode, large) / retained(mode, small)).toFixed(1)} (${retained(mode, small).toFixed(0)} -> ${retained(mode, large).toFixed(0)} MiB)`;
  console.log(`N=${large} vs N=${small}, 10 if linear (retained heap: the App and its YAML, after synthesis):`);
  for (const mode of MODES) console.log(`  ${mode.padEnd(15)} ${ratio(mode)}`);
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  child(process.argv[childAt + 1] as Mode, Number(process.argv[childAt + 2]));
} else {
  main();
}
