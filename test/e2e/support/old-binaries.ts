import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'fs';
import { basename, join } from 'path';
import { DaemonSet, daemonSet } from './daemons';
import { giveToDaemonUser, runIn, runOkIn } from './postgres-bin';
import { oldBinDir } from '../../../lib/cluster/major-upgrade-script';

/** Where the host keeps the shared libraries its PostgreSQL links against. */
const HOST_LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib', '/lib'];

/**
 * The old major's binaries as a pod's `old-binaries` init container leaves them in its emptyDir,
 * for a major upgrade run in the daemon set `into` (the trixie root, which has only PostgreSQL 17):
 * the container's own command runs on the host, whose Debian 12 PostgreSQL 15 stands in for the
 * old image, and copies it into `volume`. The official images of two majors share one OS release,
 * so the old binaries find their libraries in the new image; Debian 13 lacks some of Debian 12's
 * (libldap-2.5, ICU 72), so those are copied from the host into `volume/compat-lib` with their own
 * missing dependencies, and each old binary becomes a wrapper that puts that directory on
 * LD_LIBRARY_PATH for the old binaries only (the real one beside it, so the share directory is
 * still found relative to it). Returns the old bin directory, the path the upgrade step is given,
 * and how long the container's copy took (the rest is this machine's, not a pod's).
 */
export function prepareOldBinaries(copyContainer: any, volume: string, into: DaemonSet): { bin: string; copyMs: number } {
  const env = Object.fromEntries(copyContainer.env.map((variable: any) => [variable.name, variable.value]));
  const major = Number(env.FROM_MAJOR);
  mkdirSync(volume, { recursive: true });
  giveToDaemonUser(volume);
  // The old image: the host's PostgreSQL of that major.
  const copyScript = copyContainer.command[2];
  const started = Date.now();
  runOkIn(daemonSet('bookworm'), copyContainer.command[0], [copyContainer.command[1], copyScript], { ...env, OLD_BINARIES_DIR: volume });
  const copyMs = Date.now() - started;
  const bin = oldBinDir(volume);
  if (into.root === undefined) return { bin, copyMs };
  const compat = join(volume, 'compat-lib');
  mkdirSync(compat, { recursive: true });
  const lib = join(volume, 'usr', 'lib', 'postgresql', String(major), 'lib');
  // JIT's LLVM is never loaded by pg_upgrade's short sessions; everything else must load.
  const objects = [...readdirSync(bin).map((file) => join(bin, file)),
    ...readdirSync(lib).filter((file) => file.endsWith('.so') && !file.startsWith('llvmjit')).map((file) => join(lib, file))];
  for (let round = 0; round < 5; round++) {
    const missing = new Set<string>();
    for (const object of [...objects, ...readdirSync(compat).map((file) => join(compat, file))]) {
      const ldd = runIn(into, '/usr/bin/env', [`LD_LIBRARY_PATH=${compat}`, 'ldd', object]);
      for (const [, soname] of ldd.stdout.matchAll(/^\s*(\S+) => not found/gm)) missing.add(soname);
    }
    if (missing.size === 0) break;
    for (const soname of missing) {
      const source = HOST_LIBRARY_DIRS.map((dir) => join(dir, soname)).find((path) => existsSync(path));
      if (!source) throw new Error(`${soname}, which PostgreSQL ${major}'s binaries need, is neither in ${into.root} nor on the host`);
      copyFileSync(source, join(compat, soname));
    }
  }
  for (const file of readdirSync(bin)) {
    const path = join(bin, file);
    renameSync(path, `${path}.real`);
    writeFileSync(path, `#!/bin/sh\nLD_LIBRARY_PATH=${compat} exec "$0.real" "$@"\n`, { mode: 0o755 });
  }
  giveToDaemonUser(volume);
  const version = runOkIn(into, join(bin, 'postgres'), ['--version']);
  if (!version.includes(`(PostgreSQL) ${major}.`)) throw new Error(`the wrapped ${basename(bin)}/postgres printed ${version}`);
  return { bin, copyMs };
}
