import { ChildProcess } from 'child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Client, ClientConfig } from 'pg';
import { SecretStore } from './cluster-harness';
import { DAEMONS, DaemonSet } from './daemons';
import { resolveEnv } from './environment';
import { localizePaths } from './paths';
import { freePort, giveToDaemonUser, run, runOk, startDaemonIn } from './postgres-bin';

/** The sidecar container `name` of a rendered pod spec; throws listing the containers present. */
export function sidecarContainer(podSpec: any, name: string): any {
  const container = podSpec.containers.find((c: any) => c.name === name);
  if (!container) throw new Error(`no container ${name} among: ${podSpec.containers.map((c: any) => c.name).join(', ')}`);
  return container;
}

/** ConfigMap name -> file -> text, as synthesized. */
export type ConfigMapStore = { [name: string]: { [file: string]: string } };

/** The ConfigMaps among synthesized objects. */
export const configMapsOf = (objects: any[]): ConfigMapStore =>
  Object.fromEntries(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data]));

/**
 * The volumes `container` mounts, each a directory under `dir` (projected Secrets written as the
 * kubelet does); returns the rewrite of pod paths to them.
 */
function mountVolumes(podSpec: any, container: any, secrets: SecretStore, dir: string, configMaps: ConfigMapStore = {}): (value: string) => string {
  const roots: { [podPath: string]: string } = {};
  for (const mount of container.volumeMounts ?? []) {
    roots[mount.mountPath] = join(dir, mount.name);
    mkdirSync(roots[mount.mountPath], { recursive: true });
    const volume = podSpec.volumes.find((v: any) => v.name === mount.name);
    if (volume.configMap) {
      const data = configMaps[volume.configMap.name];
      if (!data) throw new Error(`no ConfigMap ${volume.configMap.name} given for volume ${volume.name}`);
      for (const [file, text] of Object.entries(data)) writeFileSync(join(roots[mount.mountPath], file), text, { mode: 0o444 });
    }
    for (const { secret } of volume.projected?.sources ?? []) {
      for (const item of secret.items) {
        const value = secrets[secret.name]?.[item.key];
        if (value === undefined) throw new Error(`no Secret ${secret.name} key ${item.key}`);
        writeFileSync(join(roots[mount.mountPath], item.path), value, { mode: 0o440 });
      }
    }
  }
  giveToDaemonUser(dir);
  return (value) => localizePaths(value, roots);
}

/**
 * The passfile init container of the exporter `exporterName` run as rendered, its volumes under
 * `dir`; returns its PGPASSFILE's one entry as lib/pq reads it (escapes undone), after checking
 * the file's mode is 0600, without which lib/pq ignores it.
 */
export function runPassfileInit(podSpec: any, exporterName: string, secrets: SecretStore, dir: string): string[] {
  const init = podSpec.initContainers.find((c: any) => c.name === `${exporterName}-passfile`);
  if (!init) throw new Error(`no init container ${exporterName}-passfile`);
  const localize = mountVolumes(podSpec, init, secrets, dir);
  runOk(init.command[0], init.command.slice(1).map(localize), resolveEnv(init, secrets, [], localize));
  const passfile = localize(init.env.find((v: any) => v.name === 'PGPASSFILE').value);
  if (statSync(passfile).mode % 0o1000 !== 0o600) throw new Error(`${passfile} is not mode 0600`);
  const field = '((?:[^:\\\\]|\\\\.)*)';
  const match = new RegExp(`^${Array(5).fill(field).join(':')}\n$`).exec(readFileSync(passfile, 'utf8'));
  if (!match) throw new Error(`${passfile} is not one host:port:database:user:password line`);
  return match.slice(1).map((value) => value.replace(/\\(.)/g, '$1'));
}

/**
 * A pg client whose startup message carries extra_float_digits=2, as Go's lib/pq (which the
 * pgbouncer and pgpool2 exporters use) sends at every login. pg has no option for it.
 */
export function libPqClient(config: ClientConfig): Client {
  const client = new Client({ connectionTimeoutMillis: 5_000, query_timeout: 5_000, ...config });
  const own = client as any;
  const startupConf = own.getStartupConf.bind(client);
  own.getStartupConf = () => ({ ...startupConf(), extra_float_digits: '2' });
  client.on('error', () => undefined);
  return client;
}

/** Runs one simple-protocol query (the admin consoles know no other) on a fresh connection. */
export async function simpleQuery(config: ClientConfig, sql: string): Promise<{ fields: string[]; rows: any[] }> {
  const client = libPqClient(config);
  try {
    await client.connect();
    const result = await client.query(sql);
    return { fields: result.fields.map((field) => field.name), rows: result.rows };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The error a login or query fails with, or undefined when it succeeds. */
export async function failureOf(config: ClientConfig, sql: string): Promise<string | undefined> {
  try {
    await simpleQuery(config, sql);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** One sample of Prometheus' text exposition format. */
export interface Sample {
  readonly name: string;
  readonly labels: { [label: string]: string };
  readonly value: number;
}

/** The samples of a /metrics page; comments and blank lines are skipped. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: { [label: string]: string } = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/**
 * postgres_exporter as the rendered sidecar container runs it, beside one local instance: the
 * container's args, environment and mounted Secrets, from the store; only the host and port of
 * DATA_SOURCE_URI (the pod's loopback and PostgreSQL's port) and the listen address are rewritten.
 */
export class LocalPostgresExporter {
  /**
   * Lays out the exporter of `container` for the PostgreSQL listening on 127.0.0.1:`postgresPort`.
   * @param podPort the port PostgreSQL listens on in the pod, which DATA_SOURCE_URI must name
   * @param set whose postgres_exporter runs (the worker's, or the other set's against the worker's PostgreSQL)
   */
  public static async create(scratch: string, name: string, podSpec: any, container: any, secrets: SecretStore,
    podPort: number, postgresPort: number, configMaps: ConfigMapStore, set: DaemonSet = DAEMONS): Promise<LocalPostgresExporter> {
    if (container.command !== undefined) throw new Error(`postgres_exporter runs the image's entrypoint, not ${container.command}`);
    const localize = mountVolumes(podSpec, container, secrets, join(scratch, `${name}-volumes`), configMaps);
    const env = resolveEnv(container, secrets, [], localize);
    const podUri = `127.0.0.1:${podPort}/`;
    if (!env.DATA_SOURCE_URI?.startsWith(podUri)) throw new Error(`DATA_SOURCE_URI ${env.DATA_SOURCE_URI} is not ${podUri}...`);
    env.DATA_SOURCE_URI = `127.0.0.1:${postgresPort}/${env.DATA_SOURCE_URI.slice(podUri.length)}`;
    const port = await freePort();
    const listen = `--web.listen-address=:${container.ports[0].containerPort}`;
    if (!container.args.includes(listen)) throw new Error(`the args ${container.args} lack ${listen}`);
    const args = container.args.map((arg: string) => (arg === listen ? `--web.listen-address=127.0.0.1:${port}` : localize(arg)));
    return new LocalPostgresExporter(scratch, name, port, args, env, set);
  }

  public readonly logFile: string;
  private child?: ChildProcess;

  private constructor(scratch: string, public readonly name: string, public readonly port: number,
    private readonly args: string[], private readonly env: { [name: string]: string }, public readonly set: DaemonSet) {
    this.logFile = join(scratch, `${name}.log`);
  }

  public start(): void {
    this.child = startDaemonIn(this.set, this.set.programs.postgresExporter, this.args, this.logFile, this.env);
  }

  /** One GET of /metrics; undefined while nothing answers. */
  public async scrape(): Promise<string | undefined> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(5_000) });
      return response.ok ? await response.text() : undefined;
    } catch {
      return undefined;
    }
  }

  /** Scrapes until the page holds pg_up (the exporter has tried PostgreSQL), within `timeoutMs`. */
  public async scrapeUntilUp(timeoutMs = 15_000): Promise<Sample[]> {
    const start = Date.now();
    for (;;) {
      const text = await this.scrape();
      if (text !== undefined && /^pg_up /m.test(text)) return parseMetrics(text);
      if (Date.now() - start > timeoutMs) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for pg_up from ${this.name}; its log:\n${this.log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Stops the exporter at once, if it runs. */
  public kill(): void {
    if (this.child?.pid !== undefined && this.child.exitCode === null) run('kill', ['-KILL', String(this.child.pid)]);
  }

  public log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}
