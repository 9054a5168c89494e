// npm run bench, first part: synthesis of N full stacks (the Airflow example: cluster, balancer,
// pooler and three exporters) in one App, against a baseline that emits the same objects as bare
// cdk8s ApiObjects, the floor for the library's overhead. Each (mode, N) runs in a fresh child
// process, so its peak memory is its own; each case runs ROUNDS times (once if the first run is
// slow) and the median time is kept.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { ApiObject, App, Chart } from 'cdk8s';
import { AirflowStackChart } from '../../examples/airflow-stack';

const SIZES = [1, 10, 50, 100, 500];
const ROUNDS = 3;
/** A case whose first run takes longer runs once, to keep the bench to a few minutes. */
const REPEAT_UNDER_MS = 20_000;
const MODES = ['library', 'baseline'] as const;
type Mode = typeof MODES[number];

interface Sample {
  mode: Mode;
  n: number;
  ms: number;
  rssBeforeMiB: number;
  peakMiB: number;
  /** Heap still in use after synthesis with the App and its YAML alive, above the heap before. */
  retainedMiB: number;
  yamlBytes: number;
}

const namespace = (i: number) => `stack-${i}`;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The library: one AirflowStackChart per stack, synthesized as `cdk8s synth` does (validations, lazies, YAML). */
function synthLibrary(stacks: number[]): { app: App; yaml: string } {
  const app = new App();
  for (const i of stacks) new AirflowStackChart(app, `Stack${i}`, { namespace: namespace(i) });
  return { app, yaml: app.synthYaml() };
}

/**
 * The baseline: the same objects as bare ApiObjects. The namespace also appears inside the objects
 * (DNS names in configuration, alerts, dashboards, ServiceMonitor selectors), so each stack's objects
 * come from stack-0's rendering with the namespace substituted, as hand-written objects would have it;
 * only the two Deployments' checksum/config annotations keep stack-0's digests (same length).
 */
function synthBaseline(stacks: number[], template: string): { app: App; yaml: string } {
  const app = new App();
  for (const i of stacks) {
    const chart = new Chart(app, `Stack${i}`, { namespace: namespace(i) });
    const objects: any[] = JSON.parse(template.replaceAll(namespace(0), namespace(i)));
    objects.forEach((object, k) => new ApiObject(chart, `o${k}`, object));
  }
  return { app, yaml: app.synthYaml() };
}

const mib = (bytes: number) => bytes / 1024 / 1024;

function child(mode: Mode, n: number): void {
  const template = JSON.stringify(new AirflowStackChart(new App(), 'Template', { namespace: namespace(0) }).toJson());
  // Warm-up, the same in both modes: loads and compiles both paths, and checks that they emit the same YAML.
  for (let warmUp = 0; warmUp < 3; warmUp++) {
    if (synthLibrary([0]).yaml !== synthBaseline([0], template).yaml) throw new Error('baseline YAML differs from the library\'s for N=1');
  }
  const gc: () => void = (global as any).gc;
  gc();
  const { rss: rssBefore, heapUsed: heapBefore } = process.memoryUsage();
  const start = process.hrtime.bigint();
  const result = mode === 'library' ? synthLibrary(range(n)) : synthBaseline(range(n), template);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  gc();
  const sample: Sample = {
    mode, n, ms, rssBeforeMiB: mib(rssBefore), peakMiB, retainedMiB: mib(process.memoryUsage().heapUsed - heapBefore), yamlBytes: result.yaml.length,
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
  // Beyond N=1 (checked byte for byte in every case), the baseline is the library's output but for config digests.
  const template = JSON.stringify(new AirflowStackChart(new App(), 'Template', { namespace: namespace(0) }).toJson());
  const digestless = (yaml: string) => yaml.replace(/(checksum\/config: )[0-9a-f]{64}/g, '$1');
  const stacks = [0, 7, 42, 499];
  if (digestless(synthLibrary(stacks).yaml) !== digestless(synthBaseline(stacks, template).yaml)) {
    throw new Error('baseline YAML differs from the library\'s');
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
  const ms = (mode: Mode, n: number) => median(samples.get(`${mode}/${n}`)!.map((s) => s.ms));
  const peak = (mode: Mode, n: number) => Math.max(...samples.get(`${mode}/${n}`)!.map((s) => s.peakMiB));
  const growth = (mode: Mode, n: number) => Math.max(...samples.get(`${mode}/${n}`)!.map((s) => s.peakMiB - s.rssBeforeMiB));
  const retained = (mode: Mode, n: number) => median(samples.get(`${mode}/${n}`)!.map((s) => s.retainedMiB));
  const memory = (mode: Mode, n: number) => `${peak(mode, n).toFixed(0)} (+${growth(mode, n).toFixed(0)})`;
  const once = (mode: Mode, n: number) => (samples.get(`${mode}/${n}`)!.length < ROUNDS ? '*' : '');

  const stackKiB = samples.get('library/1')![0].yamlBytes / 1024;
  console.log(`Synthesis of N Airflow stacks in one App (${JSON.parse(template).length} objects, ${stackKiB.toFixed(0)} KiB of YAML each), `
    + 'construction + app.synthYaml():');
  console.log(`median of ${ROUNDS} fresh processes per case (${((Date.now() - began) / 1000).toFixed(0)} s in all); `
    + 'baseline: the same objects as bare ApiObjects;');
  console.log('MiB: peak RSS (+ growth above the RSS before measuring, which holds ts-node and the warm-up).');
  const header = ['N', 'library ms', 'baseline ms', 'library/baseline', 'library MiB', 'baseline MiB', 'ms per stack (lib/base)'];
  const widths = header.map((cell) => Math.max(cell.length, 10));
  console.log(pad(header, widths));
  for (const n of SIZES) {
    console.log(pad([String(n), `${ms('library', n).toFixed(0)}${once('library', n)}`, `${ms('baseline', n).toFixed(0)}${once('baseline', n)}`,
      (ms('library', n) / ms('baseline', n)).toFixed(2), memory('library', n), memory('baseline', n),
      `${(ms('library', n) / n).toFixed(1)} / ${(ms('baseline', n) / n).toFixed(1)}`], widths));
  }
  const [small, large] = [50, 500];
  if ([...samples.values()].some((runs) => runs.length < ROUNDS)) {
    console.log(`* one run: the first took over ${REPEAT_UNDER_MS / 1000} s`);
  }
  const ratio = (mode: Mode) => `time ${(ms(mode, large) / ms(mode, small)).toFixed(1)}, `
    + `retained heap ${(retained(mode, large) / retained(mode, small)).toFixed(1)} (${retained(mode, small).toFixed(0)} -> ${retained(mode, large).toFixed(0)} MiB)`;
  console.log(`N=${large} vs N=${small}, 10 if linear (retained heap: the App and its YAML, after synthesis):`);
  for (const mode of MODES) console.log(`  ${mode.padEnd(8)} ${ratio(mode)}`);
  if (ms('library', large) > 120_000) console.log(`  library N=${large} takes over 2 minutes`);
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  child(process.argv[childAt + 1] as Mode, Number(process.argv[childAt + 2]));
} else {
  main();
}
