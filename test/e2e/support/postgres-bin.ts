import { execFileSync, spawn, spawnSync, SpawnSyncReturns, ChildProcess } from 'child_process';
import { existsSync, lchownSync, lstatSync, mkdtempSync, openSync, readdirSync } from 'fs';
import { createServer } from 'net';
import { join } from 'path';
import { DAEMONS, DaemonSet } from './daemons';

/** The worker's PostgreSQL server binaries (15 on the host, 17 in the trixie root). The e2e tests fail, never skip, when they are missing. */
export function requirePostgres(): void {
  DAEMONS.require('postgres');
}

/** Fails, with the package to install, when a host tool a test runs (promtool, shellcheck) is missing. */
export function requireProgram(path: string, debianPackage: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is not installed: run \`bash .ci/run\` or apt-get install ${debianPackage}`);
  }
}

interface DaemonUser { readonly uid: number; readonly gid: number }

/** Looked up once (null until then): giveToDaemonUser asks for every file it visits. */
let daemonUserIds: DaemonUser | undefined | null = null;

/** The daemons refuse to run as root: when the tests run as root, children run as `postgres`. */
function daemonUser(): DaemonUser | undefined {
  if (daemonUserIds === null) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
    daemonUserIds = process.getuid?.() === 0 ? { uid: id('-u'), gid: id('-g') } : undefined;
  }
  return daemonUserIds;
}

/** The daemon user's group id (the pods' fsGroup); the tests' own group when not root. */
export function daemonGroup(): number {
  return daemonUser()?.gid ?? process.getgid!();
}

/** A scratch directory the daemon user owns. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(`/tmp/${prefix}-`);
  giveToDaemonUser(dir);
  return dir;
}

/** chown -R to the daemon user, when the tests run as root. */
export function giveToDaemonUser(path: string): void {
  const user = daemonUser();
  if (!user) return;
  // A link is given, not followed: pg_tblspc's point at pod paths that exist only inside a pod's mount namespace.
  lchownSync(path, user.uid, user.gid);
  if (lstatSync(path).isDirectory()) {
    for (const entry of readdirSync(path)) giveToDaemonUser(join(path, entry));
  }
}

function childEnv(set: DaemonSet, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PATH: `${set.postgresBin}:/usr/sbin:/usr/bin:/sbin:/bin`, LANG: 'C.UTF-8', HOME: '/tmp', ...env };
}

/** The /etc/hosts that commands see, when a test gives Service names loopback addresses. */
let hostsFile: string | undefined;

/**
 * From now on, commands run in a private mount namespace whose /etc/hosts is `file`, so the
 * daemons resolve Kubernetes names (and check certificates against them) as in a cluster; the
 * machine's /etc/hosts is untouched. Needs root, which the namespace is entered as before the
 * command drops to the daemon user. `undefined` goes back to plain commands.
 */
export function resolveHostsWith(file: string | undefined): void {
  if (file !== undefined && !daemonUser()) throw new Error('resolving Service names on loopback needs the tests to run as root (a mount namespace)');
  hostsFile = file;
}

/**
 * Directories or files bound over paths of a daemon set's root (or, for the host's daemons, over
 * the host's own paths, which must exist), per command: `{ '/path/in/root': '/source' }`.
 */
export interface RootBinds { readonly [pathInRoot: string]: string }

/**
 * The command and arguments to spawn, with the user to spawn them as: the daemon user on the
 * host, or `chroot --userspec` into the set's root (which needs root, so no uid drop here). With
 * a hosts file or `binds`, a private mount namespace binds them onto the paths the command will
 * see (the hosts file onto /etc/hosts): two commands see different files at one path, as two pods do.
 */
function spawnTarget(set: DaemonSet, command: string, args: string[],
  binds: RootBinds = {}): { command: string; args: string[]; user: DaemonUser | undefined } {
  const user = daemonUser();
  if (set.root !== undefined) {
    if (!user) throw new Error(`running the ${set.name} daemons in ${set.root} needs the tests to run as root (chroot)`);
    const chroot = ['--userspec=postgres:postgres', set.root, command, ...args];
    const mounts = Object.entries({ ...(hostsFile ? { '/etc/hosts': hostsFile } : {}), ...binds }).flatMap(([path, source]) => [source, join(set.root!, path)]);
    if (mounts.length === 0) return { command: 'chroot', args: chroot, user: undefined };
    // Binds each (source, target) pair before `--` (a missing target is made a directory, a pod's mount point), then chroots.
    const enter = 'while [ "$1" != -- ]; do [ -e "$2" ] || mkdir -p "$2"; mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec chroot "$@"';
    return { command: 'unshare', args: ['--mount', '--', 'sh', '-c', enter, 'sh', ...mounts, '--', ...chroot], user: undefined };
  }
  if (Object.keys(binds).length > 0 && !user) throw new Error(`binding ${Object.keys(binds).join(', ')} needs the tests to run as root (a mount namespace)`);
  if (!usesNamespace(set, binds) || !user) return { command, args, user };
  const mounts = Object.entries({ ...(hostsFile ? { '/etc/hosts': hostsFile } : {}), ...binds }).flatMap(([path, source]) => [source, path]);
  // Binds each (source, target) pair before `--` (a missing target is made a directory, a pod's mount point), then drops to the daemon user.
  const enter = 'while [ "$1" != -- ]; do [ -e "$2" ] || mkdir -p "$2"; mount --bind "$1" "$2" || exit 1; shift 2; done; shift; '
    + 'exec setpriv --reuid="$DAEMON_UID" --regid="$DAEMON_GID" --clear-groups -- "$@"';
  return { command: 'unshare', args: ['--mount', '--', 'sh', '-c', enter, 'sh', ...mounts, '--', command, ...args], user: undefined };
}

/** Whether a host command runs in a private mount namespace, entered as root before the uid drop. */
function usesNamespace(set: DaemonSet, binds: RootBinds): boolean {
  return set.root === undefined && (hostsFile !== undefined || Object.keys(binds).length > 0);
}

function spawnEnv(set: DaemonSet, env: NodeJS.ProcessEnv, binds: RootBinds = {}): NodeJS.ProcessEnv {
  const user = daemonUser();
  return childEnv(set, usesNamespace(set, binds) && user ? { ...env, DAEMON_UID: String(user.uid), DAEMON_GID: String(user.gid) } : env);
}

/** Runs a command as the daemon user, with the worker's daemons (DAEMONS), and waits for it. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): SpawnSyncReturns<string> {
  return runIn(DAEMONS, command, args, env, input);
}

/** Like run, but throws with the output when the command fails. */
export function runOk(command: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): string {
  return runOkIn(DAEMONS, command, args, env, input);
}

/** Starts a long-running daemon as the daemon user; its output goes to `log`. */
export function startDaemon(command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  return startDaemonIn(DAEMONS, command, args, logFile, env);
}

/** run with the given daemon set (its root and PostgreSQL), for a test that runs both sets. */
export function runIn(set: DaemonSet, command: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string,
  binds: RootBinds = {}): SpawnSyncReturns<string> {
  const target = spawnTarget(set, command, args, binds);
  return spawnSync(target.command, target.args, { env: spawnEnv(set, env, binds), encoding: 'utf8', input, timeout: 120_000, ...target.user });
}

/** runOk with the given daemon set. */
export function runOkIn(set: DaemonSet, command: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): string {
  const result = runIn(set, command, args, env, input);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}${result.error ? ` (${result.error})` : ''}${set.root ? ` in ${set.root}` : ''}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/** A command's exit status and output. */
export interface CommandResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * runIn without blocking the event loop, for a command that talks to a server the test itself
 * runs (the fake Kubernetes API); `binds` as for startDaemonIn.
 */
export function runAsyncIn(set: DaemonSet, command: string, args: string[], env: NodeJS.ProcessEnv = {},
  binds: RootBinds = {}): Promise<CommandResult> {
  const target = spawnTarget(set, command, args, binds);
  const child = spawn(target.command, target.args, { env: spawnEnv(set, env, binds), stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, ...target.user });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk) => (output.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk) => (output.stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, ...output }));
  });
}

/** startDaemon with the given daemon set, and paths of its root bound to other files for this daemon only. */
export function startDaemonIn(set: DaemonSet, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {},
  binds: RootBinds = {}): ChildProcess {
  const out = openSync(logFile, 'a');
  const target = spawnTarget(set, command, args, binds);
  const child = spawn(target.command, target.args, { env: spawnEnv(set, env, binds), stdio: ['ignore', out, out], detached: true, ...target.user });
  child.unref();
  return child;
}

// The ports freePort() hands out: below the kernel's ephemeral range (32768 and up), where no
// outgoing connection or listen(0) lands, in a block of 2,500 per jest worker. A suite restarts its
// daemons on their ports (a pod replaced keeps its address), and a port the kernel had handed to
// another worker meanwhile made the restarted daemon fail to bind under load. Each suite starts at
// a random place in its worker's block, away from what the worker's previous suites used.
const PORTS_PER_WORKER = 2500;
const WORKER_PORTS = 10_000 + (Number(process.env.JEST_WORKER_ID ?? '1') - 1) * PORTS_PER_WORKER;
let nextPort = WORKER_PORTS + Math.floor(Math.random() * (PORTS_PER_WORKER - 500));

/** Whether a listener can bind 127.0.0.1:`port` now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port nothing listens on right now, from this jest worker's own block. */
export async function freePort(): Promise<number> {
  for (let tried = 0; tried < PORTS_PER_WORKER; tried++) {
    const port = WORKER_PORTS + ((nextPort++ - WORKER_PORTS) % PORTS_PER_WORKER);
    if (await canListen(port)) return port;
  }
  throw new Error(`freePort: every port of this jest worker's block ${WORKER_PORTS}-${WORKER_PORTS + PORTS_PER_WORKER - 1} is taken`);
}

/** Polls until `check` holds or `timeoutMs` passes; returns the milliseconds it took. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return Date.now() - start;
}

/** Connection parameters for psql: over TCP on loopback, or through the socket directory `host`. */
export interface Login {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database?: string;
  /** A Unix socket directory, as the superuser logs in (pg_hba rejects it over TCP by default). */
  readonly host?: string;
}

/** Runs SQL through psql; returns the result, or throws with psql's error. */
export function psql(login: Login, sql: string): string {
  return runOk('psql', psqlArgs(login, sql), { PGPASSWORD: login.password, PGCONNECT_TIMEOUT: '5' }).trim();
}

/** Runs SQL through psql and returns psql's whole result, failing or not. */
export function psqlResult(login: Login, sql: string): SpawnSyncReturns<string> {
  return run('psql', psqlArgs(login, sql), { PGPASSWORD: login.password, PGCONNECT_TIMEOUT: '5' });
}

function psqlArgs(login: Login, sql: string): string[] {
  return ['--no-psqlrc', '--tuples-only', '--no-align', '--set=ON_ERROR_STOP=1', `--host=${login.host ?? '127.0.0.1'}`,
    `--port=${login.port}`, `--username=${login.user}`, `--dbname=${login.database ?? 'postgres'}`, '--command', sql];
}
