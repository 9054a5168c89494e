import { execFileSync, spawnSync } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';

/**
 * The daemons an e2e test runs: Debian 12's on the host (PostgreSQL 15, PgBouncer 1.18,
 * Pgpool-II 4.3, Patroni 3.0, pgBackRest 2.45, etcd 3.4), or Debian 13's in a root beside it
 * (PostgreSQL 17, PgBouncer 1.24, Pgpool-II 4.6, Patroni 4.0, pgBackRest 2.55, etcd 3.5), built
 * once by scripts/debian-trixie-root.sh. A jest worker runs the set E2E_DAEMONS names.
 */
export type DaemonSetName = 'bookworm' | 'trixie';

/** The programs the tests start, by their path inside the set's root. */
export interface DaemonPrograms {
  readonly pgbouncer: string;
  readonly pgpool: string;
  readonly patroni: string;
  readonly python: string;
  readonly pgbackrest: string;
  readonly etcd: string;
  readonly etcdctl: string;
  readonly postgresExporter: string;
}
export type DaemonProgram = 'postgres' | 'psql' | keyof DaemonPrograms;

/** Each daemon's version as its binary says it ("1.24.1"). */
export type DaemonVersions = { readonly [program in Exclude<DaemonProgram, 'psql' | 'python' | 'etcdctl'>]: string };

export interface DaemonSet {
  readonly name: DaemonSetName;
  readonly postgresMajor: number;
  /** The root the daemons run in (`chroot`); undefined for the host's own. */
  readonly root: string | undefined;
  /** PostgreSQL's bin directory (inside the root). */
  readonly postgresBin: string;
  readonly programs: DaemonPrograms & { readonly postgres: string; readonly psql: string };
  /** Read from the binaries when first asked; fails with what to install when one is missing. */
  readonly versions: DaemonVersions;
  /** Fails, with what to install, when the program is missing. */
  require(program: DaemonProgram): void;
}

/** Debian's packages, for the message when a program is missing. */
const PACKAGES: { readonly [program in Exclude<DaemonProgram, 'postgres' | 'psql'>]: string } = {
  pgbouncer: 'pgbouncer', pgpool: 'pgpool2', patroni: 'patroni', python: 'python3', pgbackrest: 'pgbackrest',
  etcd: 'etcd-server', etcdctl: 'etcd-client', postgresExporter: 'prometheus-postgres-exporter',
};

/** How each daemon prints its version, and the version's pattern in what it prints. */
const VERSION_COMMANDS: { readonly [program in keyof DaemonVersions]: string[] } = {
  postgres: ['--version'], pgbouncer: ['--version'], pgpool: ['--version'], patroni: ['--version'],
  pgbackrest: ['version'], etcd: ['--version'], postgresExporter: ['--version'],
};

const TRIXIE_SCRIPT = join(__dirname, '..', '..', '..', 'scripts', 'debian-trixie-root.sh');

/** Builds (the first time) and mounts the Debian 13 root; fails, never skips, with what to do. */
function trixieRoot(): string {
  try {
    return execFileSync('bash', [TRIXIE_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000 }).trim().split('\n').pop()!;
  } catch (error: any) {
    throw new Error('the Debian 13 root for E2E_DAEMONS=trixie could not be built: run `bash .ci/run`, or apt-get install debootstrap '
      + `and run \`bash scripts/debian-trixie-root.sh\` as root\n${error.stderr ?? error.message}`);
  }
}

function makeSet(name: DaemonSetName): DaemonSet {
  const postgresMajor = name === 'trixie' ? 17 : 15;
  const root = name === 'trixie' ? trixieRoot() : undefined;
  const postgresBin = `/usr/lib/postgresql/${postgresMajor}/bin`;
  const programs = {
    postgres: join(postgresBin, 'postgres'), psql: join(postgresBin, 'psql'),
    pgbouncer: '/usr/sbin/pgbouncer', pgpool: '/usr/sbin/pgpool', patroni: '/usr/bin/patroni', python: '/usr/bin/python3',
    pgbackrest: '/usr/bin/pgbackrest', etcd: '/usr/bin/etcd', etcdctl: '/usr/bin/etcdctl', postgresExporter: '/usr/bin/prometheus-postgres-exporter',
  };
  const where = root ? ` in ${root} (scripts/debian-trixie-root.sh installs it)` : '';
  const require = (program: DaemonProgram): void => {
    const path = programs[program];
    if (existsSync(join(root ?? '/', path))) return;
    const debianPackage = program === 'postgres' || program === 'psql' ? `postgresql-${postgresMajor}` : PACKAGES[program];
    throw new Error(`${path} is not installed${where}: run \`bash .ci/run\` or apt-get install ${debianPackage}`);
  };
  const known: { [program: string]: string } = {};
  const version = (program: keyof DaemonVersions): string => {
    if (known[program] === undefined) {
      require(program);
      const command = [programs[program], ...VERSION_COMMANDS[program]];
      // Only the version is asked: the root's daemon user runs it, as the tests run the daemon.
      const [file, ...args] = root ? ['chroot', '--userspec=postgres:postgres', root, ...command] : command;
      const result = spawnSync(file, args, { encoding: 'utf8', timeout: 30_000 });
      const output = `${result.stdout}${result.stderr}`; // Pgpool-II prints its version to stderr.
      const found = /(\d+\.\d+(?:\.\d+)?)/.exec(output);
      if (!found) throw new Error(`\`${command.join(' ')}\` printed no version: ${output}`);
      known[program] = found[1];
    }
    return known[program];
  };
  const versions = {};
  for (const program of Object.keys(VERSION_COMMANDS) as (keyof DaemonVersions)[]) {
    Object.defineProperty(versions, program, { get: () => version(program), enumerable: true });
  }
  return { name, postgresMajor, root, postgresBin, programs, versions: versions as DaemonVersions, require };
}

const sets: { [name in DaemonSetName]?: DaemonSet } = {};

/** The named set, made once per process: a test may run both (a major upgrade from 15 to 17). */
export function daemonSet(name: DaemonSetName): DaemonSet {
  return sets[name] ??= makeSet(name);
}

function selected(): DaemonSetName {
  const name = process.env.E2E_DAEMONS ?? 'bookworm';
  if (name !== 'bookworm' && name !== 'trixie') throw new Error(`E2E_DAEMONS is ${JSON.stringify(name)}: set it to bookworm (the default) or trixie`);
  return name;
}

/** The set this jest worker runs (E2E_DAEMONS: bookworm, the default, or trixie). */
export const DAEMONS: DaemonSet = daemonSet(selected());

/** Whether `version` ("1.24.1") is `least` ("1.21") or later. */
export function versionAtLeast(version: string, least: string): boolean {
  const a = version.split('.').map(Number);
  const b = least.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
