import { writeFileSync } from 'fs';
import { join } from 'path';
import { resolveHostsWith } from './postgres-bin';

/**
 * From now on, the daemons resolve `names` (Service and pod names) to 127.0.0.1, as cluster DNS
 * resolves them to pods, through a hosts file in `scratch` (resolveHostsWith; `undefined` ends it).
 * No `::1 localhost` line: c-ares 1.34 (PgBouncer 1.24's resolver) merges hosts entries that share
 * a name or an address, so every name on 127.0.0.1 would also get ::1, tried first, where nothing listens.
 */
export function resolveOnLoopback(scratch: string, names: readonly string[]): void {
  const hosts = join(scratch, 'hosts');
  writeFileSync(hosts, `127.0.0.1 localhost\n${names.map((name) => `127.0.0.1 ${name}`).join('\n')}\n`, { mode: 0o644 });
  resolveHostsWith(hosts);
}
