import { ChildProcess, execFileSync, spawn } from 'child_process';
import { createHash } from 'crypto';
import {
  appendFileSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, Stats, statSync,
  symlinkSync, writeFileSync,
} from 'fs';
import { request as httpRequest, RequestOptions } from 'http';
import { request as httpsRequest } from 'https';
import { join } from 'path';
import { Document, parse, parseDocument, visit } from 'yaml';
import { makePodCertificate } from './certificate-maker';
import { SecretStore } from './cluster-harness';
import { DAEMONS, DaemonSet } from './daemons';
import { resolveEnv } from './environment';
import { localizePaths } from './paths';
import { CommandResult, daemonGroup, freePort, giveToDaemonUser, run, runAsyncIn, runOkIn, startDaemon, startDaemonIn, waitFor } from './postgres-bin';
import { findObject } from '../../support/synth';

/** A member as Patroni's `GET /cluster` lists it. */
export interface MemberStatus {
  readonly name: string;
  readonly role: string;
  readonly state: string;
  readonly lag?: number | string;
}

/** Distinct free ports: freePort alone may hand out the same port twice before anything binds it. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Polls an async check until it returns a value; on timeout throws with `describe()` (state and logs). */
async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, describe: () => string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A REST API call's answer; status 0 when nothing answered. */
export interface RestResponse {
  readonly status: number;
  readonly body: string;
}

/** How to call a member's REST API: the method, a JSON body, basic auth. */
export interface RestOptions {
  readonly method?: string;
  readonly body?: object;
  readonly auth?: { readonly username: string; readonly password: string };
  /** How long to wait for the answer. */
  readonly timeoutMs?: number;
}

/** One HTTP(S) request to 127.0.0.1; HTTPS skips verification, as Patroni's members and the kubelet do. */
function restCall(https: boolean, port: number, path: string, options: RestOptions = {}): Promise<RestResponse> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const request: RequestOptions & { rejectUnauthorized?: boolean } = {
    host: '127.0.0.1', port, path, method: options.method ?? 'GET', timeout: options.timeoutMs ?? 5000,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
      ...(options.auth ? { authorization: `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}` } : {}),
    },
    ...(https ? { rejectUnauthorized: false } : {}),
  };
  return new Promise((resolve) => {
    const call = (https ? httpsRequest : httpRequest)(request, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    call.on('timeout', () => call.destroy());
    call.on('error', () => resolve({ status: 0, body: '' }));
    call.end(body);
  });
}

/** `roots` and all their descendants that exist now. */
function descendants(roots: number[]): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=']).toString().trim().split('\n').map((line) => line.trim().split(/\s+/).map(Number));
  const found = new Set(roots.filter((root) => table.some(([pid]) => pid === root)));
  for (let size = 0; size !== found.size;) {
    size = found.size;
    for (const [pid, ppid] of table) if (found.has(ppid)) found.add(pid);
  }
  return [...found];
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Whether a process is gone; a zombie, dead but not yet reaped by its parent, counts. */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function tail(file: string, lines = 40): string {
  if (!existsSync(file)) return `(no ${file})`;
  return `--- ${file}\n${readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')}`;
}

/**
 * The store the members keep their leader lock in, and what it makes of each member: LocalEtcd
 * swaps the rendered `kubernetes` section for etcd3 and drops PATRONI_KUBERNETES_* (from which
 * Patroni would build it again); KubernetesDcs (kubernetes-dcs.ts) keeps both and serves the API.
 */
export interface PatroniDcs {
  /** The daemons the members run: their root, PostgreSQL and Patroni. */
  readonly daemons: DaemonSet;
  /** Edits the member's patroni.yml (paths already localized) for this store. */
  configure(config: Document): void;
  /** A fieldRef of the member's pod (`metadata.labels['x']`), where the store has the pod; otherwise only its name and namespace are known. */
  fieldRef?(member: string, path: string): string | undefined;
  /** The member's environment from the container's, as the kubelet gives it (fieldRefs resolved, paths localized). */
  environment(member: string, env: { [name: string]: string }): { [name: string]: string };
  /** Starts the member's command as its pod would run it; output to `logFile`. */
  start(member: string, command: string[], logFile: string, env: { [name: string]: string }): ChildProcess;
  /** Runs a command beside it, as `kubectl exec` into its pod would; by default as the daemons' other commands. */
  exec?(member: string, command: string[], env: { [name: string]: string }): Promise<CommandResult>;
  /** What a timeout shows of the store. */
  describe(): string;
  stop(): void | Promise<void>;
}

/**
 * One etcd member (3.4 or 3.5, DAEMONS') on loopback: the DCS that stands in for the Kubernetes
 * API in these tests; its members run `daemons` (by default the worker's).
 */
export class LocalEtcd implements PatroniDcs {
  public static async start(scratch: string, daemons: DaemonSet = DAEMONS): Promise<LocalEtcd> {
    const [clientPort, peerPort] = await freePorts(2);
    const dataDir = join(scratch, 'etcd');
    mkdirSync(dataDir, { mode: 0o700 });
    giveToDaemonUser(dataDir);
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const logFile = join(scratch, 'etcd.log');
    const child = startDaemon(DAEMONS.programs.etcd, ['--name=e2e', `--data-dir=${dataDir}`, `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=e2e=${peer}`], logFile);
    const etcd = new LocalEtcd(child, `127.0.0.1:${clientPort}`, logFile, daemons);
    await waitFor('etcd to be healthy', () => run(DAEMONS.programs.etcdctl, [`--endpoints=${client}`, 'endpoint', 'health']).status === 0)
      .catch((error) => { etcd.stop(); throw new Error(`${error.message}\n${tail(logFile)}`); });
    return etcd;
  }

  private constructor(private readonly process: ChildProcess, public readonly host: string, public readonly logFile: string,
    public readonly daemons: DaemonSet) {}

  public configure(config: Document): void {
    config.delete('kubernetes');
    config.set('etcd3', config.createNode({ hosts: [this.host] }));
  }

  public environment(_member: string, env: { [name: string]: string }): { [name: string]: string } {
    return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('PATRONI_KUBERNETES_')));
  }

  public start(_member: string, command: string[], logFile: string, env: { [name: string]: string }): ChildProcess {
    return startDaemonIn(this.daemons, command[0], command.slice(1), logFile, env);
  }

  public describe(): string {
    return tail(this.logFile, 15);
  }

  public stop(): void {
    this.process.kill('SIGTERM');
  }
}

/** A ConfigMap file of a member as the test rewrites it (another cluster's pgbackrest.conf), or undefined to localize its paths only. */
export type MemberFileRewrite = (member: PatroniMember, file: string, text: string) => string | undefined;

/**
 * One pod of the HA StatefulSet on loopback: the container's command and environment, its
 * volumes as directories under the member's root (one per volume, named after it), and the
 * rendered patroni.yml with only the DCS section (as `dcs` makes it), hosts, ports and path
 * roots rewritten.
 */
export class PatroniMember {
  public readonly root: string;
  public readonly logFile: string;
  /** The rewritten patroni.yml, as Patroni reads it. */
  public readonly config: any;
  private readonly configDocument: Document;
  private readonly command: string[];
  /**
   * The pod's StatefulSet revision label, as the controller derives it from the pod template: a
   * member made from another template (a rollout) has another one.
   */
  public readonly templateRevision: string;
  private readonly preStopCommand: string[];
  private readonly env: { [name: string]: string };
  private readonly mounts: { [podPath: string]: string };
  private process?: ChildProcess;
  private logOffset = 0;

  constructor(scratch: string, public readonly name: string, public readonly pgPort: number, public readonly restPort: number,
    objects: any[], statefulSet: any, renderedConfig: string, secrets: SecretStore, private readonly dcs: PatroniDcs,
    private readonly rewriteFile: MemberFileRewrite = () => undefined) {
    this.root = join(scratch, name);
    this.logFile = join(scratch, `${name}.log`);
    const pod = statefulSet.spec.template.spec;
    const container = pod.containers.find((c: any) => c.name === 'postgres');
    if (!container) throw new Error(`StatefulSet ${statefulSet.metadata.name} has no container named postgres`);
    this.mounts = Object.fromEntries((container.volumeMounts ?? []).map((m: any) => [m.mountPath, join(this.root, m.name)]));

    const pgAddress = `127.0.0.1:${pgPort}`;
    const restAddress = `127.0.0.1:${restPort}`;
    this.templateRevision = `${statefulSet.metadata.name}-${createHash('sha256').update(JSON.stringify(statefulSet.spec.template)).digest('hex').slice(0, 10)}`;
    this.env = this.containerEnv(container, secrets, objects, statefulSet.metadata.namespace ?? 'default', {
      PATRONI_POSTGRESQL_LISTEN: pgAddress, PATRONI_POSTGRESQL_CONNECT_ADDRESS: pgAddress,
      PATRONI_RESTAPI_LISTEN: restAddress, PATRONI_RESTAPI_CONNECT_ADDRESS: restAddress, PGPORT: String(pgPort),
    });
    this.configDocument = this.localConfig(renderedConfig, pgAddress, restAddress);
    this.config = this.configDocument.toJS();
    for (const [section, variable] of [['postgresql', 'PATRONI_POSTGRESQL_CONNECT_ADDRESS'], ['restapi', 'PATRONI_RESTAPI_CONNECT_ADDRESS']]) {
      if (!(variable in this.env) && !parse(renderedConfig)[section]?.connect_address) {
        throw new Error(`neither ${variable} nor ${section}.connect_address is set: Patroni could not tell other members where ${name} is`);
      }
    }

    const command = [...(container.command ?? []), ...(container.args ?? [])].map((arg: string) => this.localize(arg));
    // patroni-start.sh execs `patroni` from PATH: Debian's, which runs on Debian's python3 (it has its modules), whatever python3 PATH finds.
    if (!/(^|\/)patroni-start\.sh$/.test(command[0] ?? '')) throw new Error(`the postgres container runs ${JSON.stringify(container.command)}, not patroni-start.sh`);
    const { patroni, python } = dcs.daemons.programs;
    const patroniFile = join(dcs.daemons.root ?? '/', patroni);
    if (!existsSync(patroniFile) || !/^#! ?(\S+)/.exec(readFileSync(patroniFile, 'utf8'))?.[1]?.startsWith(python)) throw new Error(`${patroni} does not run on ${python}`);
    this.command = ['bash', ...command];
    const restPortArg = `--port=${container.ports.find((p: any) => p.name === 'patroni').containerPort}`;
    this.preStopCommand = container.lifecycle.preStop.exec.command.map((arg: string) => (arg === restPortArg ? `--port=${restPort}` : this.localize(arg)));
    this.writeVolumes(pod, objects, secrets, statefulSet.metadata.name);
    // The default self-signed certificate, made as the pod's init container would.
    makePodCertificate(pod, (podPath) => this.localize(podPath));
  }

  /** The superuser's name and password, as the pod's secrets volume holds them. */
  public get superuser(): { user: string; password: string } {
    const file = (key: string) => readFileSync(join(this.env.CREDENTIALS_DIR, 'superuser', key), 'utf8');
    return { user: file('username'), password: file('password') };
  }

  /** Starts Patroni (again), as the kubelet starts the container; the volumes keep what they hold. */
  public start(): void {
    this.logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    appendFileSync(this.logFile, `=== ${new Date().toISOString()} start\n`);
    this.process = this.dcs.start(this.name, this.command, this.logFile, this.env);
  }

  /** Runs the container's preStop hook as the kubelet does before it stops the pod; resolves with its exit code and output. */
  public runPreStop(): Promise<{ status: number | null; output: string }> {
    const log = `${this.logFile}.prestop`;
    appendFileSync(log, `=== ${new Date().toISOString()} preStop\n`);
    const start = statSync(log).size;
    const child = startDaemonIn(this.dcs.daemons, this.preStopCommand[0], this.preStopCommand.slice(1), log, this.env);
    return new Promise((resolve) => child.on('exit', (status) => resolve({ status, output: readFileSync(log).subarray(start).toString('utf8') })));
  }

  /** A command in the member's container, with its environment, as `kubectl exec` runs it (patronictl, say). */
  public exec(command: string, args: string[]): Promise<CommandResult> {
    return this.dcs.exec?.(this.name, [command, ...args], this.env) ?? runAsyncIn(this.dcs.daemons, command, args, this.env);
  }

  /** Whether Patroni runs. */
  public get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  /**
   * Pod loss: every process of the member dies at once, as when its cgroup is killed. Patroni
   * and the postmaster lead their own sessions and each PostgreSQL child calls setsid, so the
   * processes are found as descendants of the two; they are all frozen first (nothing forks,
   * and no orphaned backend goes on committing through a still-living walsender), then killed.
   * Killing the postmaster alone is no pod loss: Patroni would restart it in place.
   */
  public async kill(): Promise<void> {
    const roots = [this.running ? this.process!.pid! : undefined, this.postmasterPid()].filter((pid): pid is number => pid !== undefined);
    const frozen = new Set<number>();
    for (let found = descendants(roots); found.some((pid) => !frozen.has(pid)); found = descendants(roots)) {
      for (const pid of found.filter((p) => !frozen.has(p))) {
        signal(pid, 'SIGSTOP');
        frozen.add(pid);
      }
    }
    for (const pid of frozen) signal(pid, 'SIGKILL');
    await waitFor(`${this.name}'s processes to die`, () => [...frozen].every(gone));
    if (frozen.size > 0) appendFileSync(this.logFile, `=== ${new Date().toISOString()} killed ${[...frozen].join(' ')}\n`);
  }

  /**
   * A frozen Patroni (SIGSTOP of its process alone: every thread, the REST API's included, stops;
   * PostgreSQL goes on serving), as a process stalled by its node; thaw() sends SIGCONT.
   */
  public freeze(): void {
    signal(this.patroniPid(), 'SIGSTOP');
    appendFileSync(this.logFile, `=== ${new Date().toISOString()} Patroni frozen (SIGSTOP)\n`);
  }

  public thaw(): void {
    signal(this.patroniPid(), 'SIGCONT');
    appendFileSync(this.logFile, `=== ${new Date().toISOString()} Patroni thawed (SIGCONT)\n`);
  }

  /** kill -9 of the postmaster alone (a crash of PostgreSQL, not of the pod); returns its pid. */
  public killPostmaster(): number {
    const pid = this.postmasterPid();
    if (pid === undefined) throw new Error(`${this.name} has no running postmaster to kill`);
    signal(pid, 'SIGKILL');
    appendFileSync(this.logFile, `=== ${new Date().toISOString()} killed the postmaster ${pid}\n`);
    return pid;
  }

  /** Patroni's pid: the container's command execs it (patroni-start.sh's `exec patroni`). */
  private patroniPid(): number {
    const pid = this.running ? this.process!.pid! : undefined;
    const command = pid === undefined ? '' : readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!/(^|\/)patroni(\0|$)/.test(command)) {
      throw new Error(`${this.name}: process ${pid} is not Patroni: ${command.split('\0').join(' ')}`);
    }
    return pid!;
  }

  /** The running postmaster's pid, checked against its command line: a stale postmaster.pid may name another process. */
  public postmasterPid(): number | undefined {
    const dataDir = this.config.postgresql.data_dir;
    // Either file may go between a check and the read (PostgreSQL stopping or crashing): read, and take a missing one as none.
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops Patroni as the kubelet does (SIGTERM: Patroni stops PostgreSQL), then kills whatever is left after 15 s. */
  public async stop(): Promise<void> {
    if (this.running) {
      this.process!.kill('SIGTERM');
      await waitFor(`${this.name} to stop`, () => !this.running, 15_000).catch(() => undefined);
    }
    await this.kill();
  }

  /** SQL as the superuser through the member's Unix socket. */
  public psql(sql: string, database = 'postgres'): string {
    return runOkIn(this.dcs.daemons, 'psql', ['--no-psqlrc', '--tuples-only', '--no-align', '--set=ON_ERROR_STOP=1', `--host=${this.socketDir}`,
      `--port=${this.pgPort}`, `--username=${this.superuser.user}`, `--dbname=${database}`, '--command', sql],
    { PGPASSWORD: this.superuser.password, PGCONNECT_TIMEOUT: '5' }).trim();
  }

  /** Whether the REST API serves HTTPS (patroni.yml's restapi.certfile). */
  public get restHttps(): boolean {
    return this.config.restapi.certfile !== undefined;
  }

  /** A GET of the member's REST API: the body, or undefined when it does not answer. */
  public async rest(path: string): Promise<string | undefined> {
    const response = await restCall(this.restHttps, this.restPort, path);
    return response.status === 0 ? undefined : response.body;
  }

  /** Any call of the member's REST API. */
  public restCall(path: string, options: RestOptions = {}): Promise<RestResponse> {
    return restCall(this.restHttps, this.restPort, path, options);
  }

  public log(lines = 40): string {
    return tail(this.logFile, lines);
  }

  /** What Patroni and PostgreSQL logged since the last start(). */
  public logSinceStart(): string {
    return readFileSync(this.logFile).subarray(this.logOffset).toString('utf8');
  }

  private get socketDir(): string {
    const dirs = this.config.postgresql.parameters?.unix_socket_directories;
    if (!dirs) throw new Error('patroni.yml sets no postgresql.parameters.unix_socket_directories');
    return String(dirs).split(',')[0].trim();
  }

  /** A pod path rewritten to the member's volumes. */
  public localize(value: string): string {
    return localizePaths(value, this.mounts);
  }

  /**
   * The rendered config with the DCS, hosts, ports and path roots made local; everything else as
   * rendered. Edited as a YAML document, not re-serialized from objects, so anchors and aliases
   * reach Patroni as rendered: PyYAML makes one dict of an anchored map and its aliases, which
   * Patroni's environment overrides then write through.
   */
  private localConfig(rendered: string, pgAddress: string, restAddress: string): Document {
    const doc = parseDocument(rendered);
    visit(doc, { Scalar: (_, node) => { if (typeof node.value === 'string') node.value = this.localize(node.value); } });
    for (const section of ['kubernetes', 'restapi', 'postgresql']) {
      if (!doc.has(section)) throw new Error(`patroni.yml has no ${section} section`);
    }
    this.dcs.configure(doc);
    doc.setIn(['restapi', 'listen'], restAddress);
    doc.setIn(['restapi', 'connect_address'], restAddress);
    doc.setIn(['postgresql', 'listen'], pgAddress);
    doc.setIn(['postgresql', 'connect_address'], pgAddress);
    doc.setIn(['postgresql', 'bin_dir'], this.dcs.daemons.postgresBin);
    return doc;
  }

  /**
   * The container's environment as the kubelet gives it, paths localized, as the DCS makes it,
   * with this member's own addresses and port (`local`) instead of the pod's.
   */
  private containerEnv(container: any, secrets: SecretStore, objects: any[], namespace: string,
    local: { [name: string]: string }): { [name: string]: string } {
    const fields: { [path: string]: string } = {
      'metadata.name': this.name, 'metadata.namespace': namespace, "metadata.labels['controller-revision-hash']": this.templateRevision,
    };
    const env = (container.env ?? []).map((variable: any) => {
      const path = variable.valueFrom?.fieldRef?.fieldPath;
      if (path === undefined) return variable;
      const value = this.dcs.fieldRef?.(this.name, path) ?? fields[path];
      if (value === undefined) throw new Error(`env ${variable.name}: fieldRef ${path} is not emulated`);
      return { name: variable.name, value };
    });
    const resolved = this.dcs.environment(this.name, resolveEnv({ env }, secrets, objects, (value) => this.localize(value)));
    for (const [name, value] of Object.entries(local)) if (name in resolved) resolved[name] = value;
    const unexpanded = Object.entries(resolved).find(([, value]) => value.includes('$('));
    if (unexpanded) throw new Error(`env ${unexpanded[0]}=${unexpanded[1]} needs the kubelet's $(VAR) expansion, which the harness does not emulate`);
    return resolved;
  }

  /**
   * The kubelet's refresh of the container's ConfigMap volumes from newly applied objects (a
   * settings change): each volume's files swapped at once, patroni.yml rewritten as at the start.
   */
  public refreshConfigMaps(objects: any[]): void {
    const statefulSet = objects.find((o) => o.kind === 'StatefulSet' && `${o.metadata.name}-${this.name.split('-').pop()}` === this.name);
    if (!statefulSet) throw new Error(`no StatefulSet of ${this.name} among the objects`);
    const rendered = findObject(objects, 'ConfigMap', `${statefulSet.metadata.name}-patroni`).data['patroni.yml'];
    const document = this.localConfig(rendered, this.config.postgresql.listen, this.config.restapi.listen);
    for (const volume of statefulSet.spec.template.spec.volumes ?? []) {
      const dir = join(this.root, volume.name);
      if (!volume.configMap || !Object.values(this.mounts).includes(dir)) continue;
      this.writeConfigMap(dir, volume.configMap, objects, statefulSet.metadata.name, document);
    }
  }

  /**
   * A ConfigMap volume as the kubelet lays it out and refreshes it: the files in a timestamped
   * directory, `..data` linking to it and each file linking through `..data`, so a refresh is
   * one rename of `..data` and a reader sees all the old files or all the new ones.
   */
  private writeConfigMap(dir: string, configMap: any, objects: any[], clusterName: string, patroniConfig: Document): void {
    const data = findObject(objects, 'ConfigMap', configMap.name).data ?? {};
    const items: Array<{ key: string; path: string; mode?: number }> = configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    const stamp = `..${new Date().toISOString().replace(/[-:.TZ]/g, '_')}${process.hrtime.bigint() % 1_000_000n}`;
    for (const item of items) {
      const text = configMap.name === `${clusterName}-patroni` && item.key === 'patroni.yml' ? patroniConfig.toString()
        : this.rewriteFile(this, item.key, data[item.key]) ?? this.localize(data[item.key]);
      mkdirSync(join(dir, stamp, item.path, '..'), { recursive: true });
      writeFileSync(join(dir, stamp, item.path), text, { mode: item.mode ?? configMap.defaultMode ?? 0o644 });
    }
    giveToDaemonUser(join(dir, stamp));
    const previous = lstatOrUndefined(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
    symlinkSync(stamp, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    const tops = new Set(items.map((item) => item.path.split('/')[0]));
    for (const top of tops) {
      if (!lstatOrUndefined(join(dir, top))) symlinkSync(join('..data', top), join(dir, top));
    }
    // A file the ConfigMap no longer has goes, as the kubelet removes it.
    for (const entry of readdirSync(dir)) {
      if (!tops.has(entry) && lstatSync(join(dir, entry)).isSymbolicLink() && readlinkSync(join(dir, entry)).startsWith('..data/')) rmSync(join(dir, entry));
    }
    if (previous) rmSync(join(dir, previous), { recursive: true, force: true });
  }

  /** Every volume the container mounts, as the kubelet lays them out; patroni.yml rewritten. */
  private writeVolumes(pod: any, objects: any[], secrets: SecretStore, clusterName: string): void {
    const mounted = new Set(Object.values(this.mounts));
    for (const dir of mounted) mkdirSync(dir, { recursive: true });
    for (const volume of pod.volumes ?? []) {
      const dir = join(this.root, volume.name);
      if (!mounted.has(dir)) continue;
      const write = (path: string, text: string, mode: number) => {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), text, { mode });
      };
      if (volume.configMap) this.writeConfigMap(dir, volume.configMap, objects, clusterName, this.configDocument);
      for (const source of volume.projected?.sources ?? []) {
        if (!source.secret) throw new Error(`volume ${volume.name}: only Secret projections are emulated, not ${JSON.stringify(source)}`);
        for (const item of source.secret.items) {
          const value = secrets[source.secret.name]?.[item.key];
          if (value === undefined) throw new Error(`no Secret ${source.secret.name} key ${item.key}`);
          write(item.path, value, item.mode ?? volume.projected.defaultMode ?? 0o644);
        }
      }
    }
    giveToDaemonUser(this.root);
    // A tls Secret's files: root's when the tests run as root, as the kubelet writes them, readable by the pod's group.
    for (const volume of (pod.volumes ?? []).filter((v: any) => v.secret && mounted.has(join(this.root, v.name)))) {
      for (const item of volume.secret.items) {
        const value = secrets[volume.secret.secretName]?.[item.key];
        if (value === undefined) throw new Error(`no Secret ${volume.secret.secretName} key ${item.key}`);
        const file = join(this.root, volume.name, item.path);
        writeFileSync(file, value, { mode: volume.secret.defaultMode });
        chownSync(file, process.getuid!(), daemonGroup());
      }
    }
  }
}

/** The members of a synthesized HA cluster and their DCS, on loopback. */
export class PatroniCluster {
  /**
   * Lays out one member per replica of the StatefulSet `name`, on `dcs` (by default etcd, started
   * here, with the worker's daemons), its ConfigMap files through `rewriteFile`; start() starts them.
   */
  public static async create(scratch: string, objects: any[], name: string, secrets: SecretStore, dcs?: PatroniDcs,
    rewriteFile?: MemberFileRewrite): Promise<PatroniCluster> {
    const statefulSet = findObject(objects, 'StatefulSet', name);
    const patroniConfigMap = findObject(objects, 'ConfigMap', `${name}-patroni`);
    const rendered = patroniConfigMap.data?.['patroni.yml'];
    if (!rendered) throw new Error(`ConfigMap ${name}-patroni has no patroni.yml`);
    const store = dcs ?? await LocalEtcd.start(scratch);
    try {
      const members: PatroniMember[] = [];
      for (let ordinal = 0; ordinal < statefulSet.spec.replicas; ordinal++) {
        const [pgPort, restPort] = await freePorts(2);
        members.push(new PatroniMember(scratch, `${name}-${ordinal}`, pgPort, restPort, objects, statefulSet, rendered, secrets, store, rewriteFile));
      }
      return new PatroniCluster(store, members, parse(rendered).bootstrap?.dcs?.synchronous_mode === true);
    } catch (error) {
      await store.stop();
      throw error;
    }
  }

  private lastStatus: MemberStatus[] = [];

  private constructor(public readonly dcs: PatroniDcs, public readonly members: PatroniMember[], public readonly synchronousMode: boolean) {}

  /** Starts every member at once, as a StatefulSet with Parallel pod management would. */
  public start(): void {
    for (const member of this.members) member.start();
  }

  /** Stops the members, then the DCS. */
  public async stop(): Promise<void> {
    await Promise.all(this.members.map((member) => member.stop()));
    await this.dcs.stop();
  }

  public member(name: string): PatroniMember {
    const member = this.members.find((m) => m.name === name);
    if (!member) throw new Error(`no member ${name}`);
    return member;
  }

  /** `GET /cluster` from the first running member that answers. */
  public async status(): Promise<MemberStatus[] | undefined> {
    for (const member of this.members.filter((m) => m.running)) {
      const body = await member.rest('/cluster');
      if (body === undefined) continue;
      try {
        this.lastStatus = JSON.parse(body).members ?? [];
        return this.lastStatus;
      } catch {
        // A member still starting may answer with something else.
      }
    }
    return undefined;
  }

  /** The leader's name, once one member holds the leader lock and runs. */
  public async leader(timeoutMs = 60_000): Promise<string> {
    return waitUntil('a leader', async () => (await this.status())?.find((m) => m.role === 'leader' && m.state === 'running')?.name,
      timeoutMs, () => this.describe());
  }

  /**
   * Waits until all members are listed: a running leader, the others running replicas at lag 0
   * and streaming from it, and (in synchronous mode) one of them the sync standby. Returns the
   * leader's and the sync standby's names.
   */
  public async waitHealthy(timeoutMs = 120_000): Promise<{ leader: string; syncStandby?: string }> {
    return waitUntil('a healthy cluster', async () => {
      const members = await this.status();
      if (members?.length !== this.members.length) return undefined;
      const leader = members.find((m) => m.role === 'leader' && m.state === 'running');
      const replicas = members.filter((m) => m !== leader);
      const syncStandby = members.find((m) => m.role === 'sync_standby')?.name;
      if (!leader || (this.synchronousMode && !syncStandby)) return undefined;
      if (!replicas.every((m) => ['replica', 'sync_standby'].includes(m.role) && ['running', 'streaming'].includes(m.state) && m.lag === 0)) return undefined;
      return this.streamingTo(leader.name).length === replicas.length ? { leader: leader.name, syncStandby } : undefined;
    }, timeoutMs, () => this.describe());
  }

  /** Members streaming from `leader`, by application_name (Patroni sets it to the member name). */
  public streamingTo(leader: string): string[] {
    const result = this.member(leader).psql("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1");
    return result.split('\n').filter(Boolean);
  }

  /** What a timeout shows: the last cluster status, then the tail of every log. */
  public describe(): string {
    return [`last GET /cluster: ${JSON.stringify(this.lastStatus)}`, ...this.members.map((m) => m.log()), this.dcs.describe()].join('\n');
  }
}

/**
 * Single-row INSERTs, each its own transaction, through psql on a libpq multi-host connection
 * with target_session_attrs=read-write: it opens only on a writable primary, as the -rw Service
 * routes clients. The next INSERT goes out only when psql has echoed the previous one's commit,
 * so every id is either acknowledged (with the time) or was in flight when its connection died.
 * A psql that loses its server exits; another one starts at once.
 */
export class CommitWriter {
  /** Acknowledged id -> Date.now() when psql reported its commit. */
  public readonly acknowledged = new Map<number, number>();
  /** The last id sent. */
  public sent = 0;
  private child?: ChildProcess;
  private stopping = false;

  constructor(private readonly ports: number[], private readonly login: { user: string; password: string; database: string },
    private readonly table: string, private readonly logFile: string) {}

  public start(): void {
    const conninfo = `host=${this.ports.map(() => '127.0.0.1').join(',')} port=${this.ports.join(',')} target_session_attrs=read-write connect_timeout=2`;
    // stdbuf: psql's stdout is a pipe, which stdio would otherwise buffer past the echo.
    const child = spawn('stdbuf', ['-oL', 'psql', '--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', conninfo], {
      env: { PATH: `${DAEMONS.postgresBin}:/usr/bin:/bin`, PGUSER: this.login.user, PGPASSWORD: this.login.password, PGDATABASE: this.login.database },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const ack = /^ack (\d+)$/.exec(line);
        if (!ack) continue;
        this.acknowledged.set(Number(ack[1]), Date.now());
        if (!this.stopping) this.send(child);
      }
    });
    child.stderr!.on('data', (chunk) => appendFileSync(this.logFile, `${new Date().toISOString()} ${chunk}`));
    child.stdin!.on('error', () => undefined); // EPIPE when psql has exited; the exit handler takes over.
    child.on('exit', () => setTimeout(() => {
      if (!this.stopping) this.start();
    }, 100));
    this.send(child);
  }

  /** Ends the current psql after its statement in flight, or kills it when that statement hangs for 10 s. */
  public async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.on('exit', () => resolve(clearTimeout(timer)));
      child.stdin!.end();
    });
  }

  /** Resolves with the time the first id above `id` was acknowledged. */
  public async firstAckAbove(id: number, timeoutMs: number): Promise<number> {
    return waitUntil(`a commit acknowledged after id ${id}`, async () => {
      for (const [acked, at] of this.acknowledged) if (acked > id) return at;
      return undefined;
    }, timeoutMs, () => tail(this.logFile));
  }

  private send(child: ChildProcess): void {
    const id = ++this.sent;
    child.stdin!.write(`INSERT INTO ${this.table} (id) VALUES (${id});\n\\echo ack ${id}\n`);
  }
}
