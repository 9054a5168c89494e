import { execFileSync, spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync } from 'fs';
import { join } from 'path';
import { daemonSet } from './support/daemons';
import { COPY_OLD_BINARIES_SCRIPT, oldBinDir } from '../../lib/cluster/major-upgrade-script';

/**
 * The old-binaries init step in the two layouts images put PostgreSQL in: the official images'
 * Debian one and the PGDG/Red Hat one of Percona's (the HA mode's default). An image stands in as
 * an overlay of the Debian 13 root (PostgreSQL 17), in a private mount namespace, where the Red
 * Hat layout is made by moving 17's files to /usr/pgsql-17; nothing of the root changes.
 */
describe('the old-binaries step copies PostgreSQL from either image layout', () => {
  const root = daemonSet('trixie').root!;
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync('/tmp/old-binaries-layouts-');
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** Runs the copy step in an image made from the root by `prepare` (sh, run in the image first); returns the volume. */
  function copyIn(name: string, prepare: string): { volume: string; status: number | null; output: string } {
    const dir = join(scratch, name);
    for (const sub of ['upper', 'work', 'image']) mkdirSync(join(dir, sub), { recursive: true });
    const volume = '/tmp/old-binaries-volume';
    const script = [
      `mount -t overlay overlay -o lowerdir=${root},upperdir=${dir}/upper,workdir=${dir}/work ${dir}/image`,
      `mount -t tmpfs tmpfs ${dir}/image/tmp`,
      `chroot ${dir}/image /bin/sh -c "$1"`,
      `chroot ${dir}/image env FROM_MAJOR=17 OLD_BINARIES_DIR=${volume} /bin/sh -c "$2"`,
      `chroot ${dir}/image ${oldBinDir(volume)}/postgres --version`,
      `chroot ${dir}/image readlink -f ${oldBinDir(volume)}/postgres`,
      `chroot ${dir}/image ${oldBinDir(volume)}/postgres --describe-config > /dev/null`,
      `cp -a ${dir}/image${volume} ${dir}/volume`,
    ].join(' && ');
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', prepare, COPY_OLD_BINARIES_SCRIPT],
      { encoding: 'utf8', timeout: 60_000 });
    return { volume: join(dir, 'volume'), status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  test('Debian (the official images): /usr/lib/postgresql/17 and /usr/share/postgresql/17', () => {
    const result = copyIn('debian', 'true');
    expect(result.output).toContain('postgres (PostgreSQL) 17.');
    expect(result.output).toContain('/tmp/old-binaries-volume/usr/lib/postgresql/17/bin/postgres');
    expect(result.status).toBe(0);
    expect(readlinkSync(join(result.volume, 'bin'))).toBe('usr/lib/postgresql/17/bin');
  });

  test('Red Hat (Percona\'s images): everything under /usr/pgsql-17', () => {
    // PGDG's RPM layout: bin, lib and share under one prefix; nothing left in Debian's places.
    const redHat = 'mkdir -p /usr/pgsql-17 && mv /usr/lib/postgresql/17/bin /usr/lib/postgresql/17/lib /usr/pgsql-17/'
      + ' && mv /usr/share/postgresql/17 /usr/pgsql-17/share && rm -rf /usr/lib/postgresql/17';
    const result = copyIn('red-hat', redHat);
    expect(result.output).toContain('postgres (PostgreSQL) 17.');
    expect(result.output).toContain('/tmp/old-binaries-volume/usr/pgsql-17/bin/postgres');
    expect(result.status).toBe(0);
    expect(readlinkSync(join(result.volume, 'bin'))).toBe('usr/pgsql-17/bin');
  });

  test('an image without the major fails, naming the prop to set', () => {
    const result = copyIn('none', 'rm -rf /usr/lib/postgresql/17');
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('set majorUpgrade.fromImage to the image the cluster ran before');
  });

  test('the root itself is unchanged', () => {
    expect(execFileSync('ls', [join(root, 'usr/lib/postgresql/17/bin/postgres')]).toString()).toContain('postgres');
  });
});
