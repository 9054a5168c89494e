import { rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { DAEMONS } from './support/daemons';
import { requirePostgres, giveToDaemonUser, run, scratchDir } from './support/postgres-bin';
import { postgresVersion } from '../../lib/core/postgres-versions';
import { checkSettingValue, gucSyntax } from '../../lib/core/setting-values';

/**
 * The library reads an extraParameters value as PostgreSQL 15 does: for each parameter and edge
 * value, it accepts exactly what `postgres -C` accepts, and reads the same number (in the
 * parameter's unit), boolean or enum value.
 */

const PARAMETERS = [
  'work_mem', 'shared_buffers', 'log_min_duration_statement', 'autovacuum_naptime', 'max_wal_size', 'checkpoint_completion_target',
  'autovacuum_vacuum_cost_delay', 'jit', 'log_statement', 'max_connections',
];
const VALUES = [
  '0', '-1', '1', '64', '2147483647', '2147483648', '9007199254740992', '1e308', '1e-400', 'NaN', 'Infinity', '-Infinity', 'inf', '-0', '0.5',
  '1.5', '2.5', '1e3', '0x10', '+5', '5 ', ' 7', '010', '08', '4MB', '4 MB', '4mb', '0.5MB', '1.5GB', '1kB', '100B', '1TB', '9TB', '100ms', '1.5s',
  '2min', '1h', '1d', '10us', '5 min', '5 mins', 'on', 'OFF', 'of', 'tr', 'Yes', 'n', 'true ', 'none', 'ALL', 'ddl', '', ' ', 'x', '.5', '1.',
  '0x1p3', '1e', '1e+2s', '4MBB',
];

describe('extraParameters values are read as PostgreSQL 15 reads them (postgres -C)', () => {
  let scratch: string;
  let data: string;
  beforeAll(() => {
    requirePostgres();
    scratch = scratchDir('cdk8s-postgres-parameter-values');
    data = join(scratch, 'data');
    giveToDaemonUser(scratch);
    const initdb = run(join(DAEMONS.postgresBin, 'initdb'), ['-D', data, '--auth=trust', '--username=postgres', '--no-sync']);
    if (initdb.status !== 0) throw new Error(`initdb failed: ${initdb.stderr}`);
  }, 60_000);
  afterAll(() => {
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test.each(PARAMETERS)('%s', (parameter) => {
    const version = postgresVersion(15);
    const type = version.parameterTypes[parameter];
    const syntax = gucSyntax('PostgreSQL 15');
    const scope = new Chart(Testing.app(), 'values');
    const disagreements: string[] = [];
    for (const value of VALUES) {
      const server = run(join(DAEMONS.postgresBin, 'postgres'), ['-D', data, '-c', `${parameter}=${value}`, '-C', parameter]);
      const theirs = server.status === 0 ? server.stdout.trim() : 'refused';
      let ours: string;
      try {
        checkSettingValue(scope, `extraParameters.${parameter}`, value, type, syntax);
        const number = type.kind === 'integer' || type.kind === 'real' ? syntax.number(value, type)! : undefined;
        if (number !== undefined) ours = Object.is(number, -0) ? '-0' : String(number);
        else if (type.kind === 'bool') ours = syntax.bool(value) ? 'on' : 'off';
        else ours = value.toLowerCase();
      } catch {
        ours = 'refused';
      }
      if (ours !== theirs) disagreements.push(`${JSON.stringify(value)}: library ${ours}, postgres ${theirs}`);
    }
    expect(disagreements).toEqual([]);
  }, 120_000);
});
