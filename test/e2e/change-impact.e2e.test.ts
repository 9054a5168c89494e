/**
 * The change impact report's restart/reload verdicts (classifySettingChange) against the real
 * PostgreSQL 15: the parameter contexts it reads are the server's own, and after a reload the
 * server marks `pending_restart` exactly on the parameters the report says need a restart.
 */
import { appendFileSync } from 'fs';
import { join } from 'path';
import { DAEMONS } from './support/daemons';
import { freePort, requirePostgres, runOk, scratchDir } from './support/postgres-bin';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { classifySettingChange, ClusterMode, RestartOrder, SettingAction } from '../../lib/testing/change-impact/classify-setting';

/** Changes of each context, from values the test server starts with to new ones. */
const CHANGES: Array<{ name: string; from: string; to: string }> = [
  { name: 'max_connections', from: '100', to: '120' },
  { name: 'shared_buffers', from: '128MB', to: '160MB' },
  { name: 'max_wal_senders', from: '10', to: '12' },
  { name: 'wal_level', from: 'replica', to: 'logical' },
  { name: 'checkpoint_timeout', from: '5min', to: '10min' },
  { name: 'archive_command', from: "'/bin/true'", to: "'/bin/true %p'" },
  { name: 'log_min_duration_statement', from: '-1', to: '500' },
  { name: 'work_mem', from: '4MB', to: '8MB' },
  { name: 'statement_timeout', from: '0', to: '30000' },
  { name: 'log_connections', from: 'off', to: 'on' },
];

describe('parameter contexts and pending_restart on real PostgreSQL 15', () => {
  let dataDir: string;
  let socketDir: string;
  let port: number;
  const psql = (sql: string) => runOk(join(DAEMONS.postgresBin, 'psql'), ['-X', '-A', '-t', '-h', socketDir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql]);

  beforeAll(async () => {
    requirePostgres();
    const scratch = scratchDir('change-impact');
    dataDir = join(scratch, 'data');
    socketDir = scratch;
    port = await freePort();
    runOk(join(DAEMONS.postgresBin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync']);
    appendFileSync(join(dataDir, 'postgresql.conf'), ['', ...CHANGES.map(({ name, from }) => `${name} = ${from}`), ''].join('\n'));
    runOk(join(DAEMONS.postgresBin, 'pg_ctl'), ['-D', dataDir, '-w', '-l', join(scratch, 'log'),
      '-o', `-p ${port} -k ${socketDir} -c listen_addresses=''`, 'start']);
  }, 60_000);

  afterAll(() => {
    if (dataDir) runOk(join(DAEMONS.postgresBin, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  });

  test('the catalog has the server\'s own context for every parameter it lists', () => {
    const server = new Map(psql('SELECT name, context FROM pg_settings').trim().split('\n')
      .map((line) => line.split('|') as [string, string]).map(([name, context]) => [name.toLowerCase(), context]));
    const catalog = postgresVersion(15).contexts;
    const differing = Object.entries(catalog).filter(([name, context]) => server.get(name) !== context)
      .map(([name, context]) => `${name}: catalog ${context}, server ${server.get(name) ?? '(none)'}`);
    expect(differing).toEqual([]);
    expect(Object.keys(catalog).length).toBeGreaterThan(300);
  });

  test('after a reload, exactly the postmaster parameters are pending a restart', () => {
    appendFileSync(join(dataDir, 'postgresql.conf'), ['', ...CHANGES.map(({ name, to }) => `${name} = ${to}`), ''].join('\n'));
    runOk(join(DAEMONS.postgresBin, 'pg_ctl'), ['-D', dataDir, 'reload']);
    const pending = (): string[] => psql('SELECT name FROM pg_settings WHERE pending_restart ORDER BY name').trim().split('\n').filter(Boolean);
    // The report's own verdict for each change (plain mode: postgresql.conf).
    const verdicts = CHANGES.map(({ name, from, to }) => classifySettingChange(name, from, to, ClusterMode.PLAIN));
    expect(verdicts.filter((v) => ![SettingAction.RESTART, SettingAction.RELOAD].includes(v.action))).toEqual([]);
    const expected = verdicts.filter((v) => v.action === SettingAction.RESTART).map((v) => v.parameter).sort();
    expect(expected).toEqual(['max_connections', 'max_wal_senders', 'shared_buffers', 'wal_level']);
    // Raised standby minimums restart the primary last.
    expect(verdicts.filter((v) => v.order === RestartOrder.PRIMARY_LAST).map((v) => v.parameter).sort()).toEqual(['max_connections', 'max_wal_senders']);
    expect(pending()).toEqual(expected);
    // And the reloadable ones are in effect already.
    expect(psql("SELECT current_setting('checkpoint_timeout'), current_setting('work_mem')").trim()).toBe('10min|8MB');
  });
});
