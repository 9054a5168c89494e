import { PostgresStatefulCluster } from '../lib';
import { findObject, synthObjects, testChart } from './support/synth';
import { postgresMajors, postgresVersion } from '../lib/core/postgres-versions';

// What keeps a statement's text out of PostgreSQL 15's logs and statistics, for the session that
// sets passwords: the real server's log is checked in test/e2e/log-secrecy.e2e.test.ts.
const QUIET_SESSION = [
  'log_statement=none',
  'log_min_duration_statement=-1',
  'log_min_duration_sample=-1',
  'log_transaction_sample_rate=0',
  'log_min_error_statement=panic',
  'debug_print_parse=off',
  'debug_print_rewritten=off',
  'debug_print_plan=off',
  'track_activities=off',
  'pg_stat_statements.track=none',
];

function scripts(highAvailability: boolean): { [file: string]: string } {
  const chart = testChart();
  new PostgresStatefulCluster(chart, 'Db', {
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    ...(highAvailability ? { instances: 3, highAvailability: {} } : {}),
  });
  return findObject(synthObjects(chart), 'ConfigMap', 'db-scripts').data;
}

/** The PGOPTIONS of the psql that runs the SQL setting passwords (the one fed a heredoc). */
function provisioningOptions(script: string): string[] {
  const command = script.match(/PGOPTIONS='([^']*)' psql [^\n]*(?:\\\n[^\n]*)*<<'SQL'/);
  if (!command) throw new Error('no psql run with PGOPTIONS and the provisioning SQL');
  return command[1].split(/\s*-c\s+/).filter(Boolean);
}

describe('the provisioning session keeps its statements, which carry passwords, out of every log', () => {
  test.each([
    ['bootstrap.sh (plain mode)', false, 'bootstrap.sh'],
    ['provision.sh (HA mode)', true, 'provision.sh'],
  ])('%s runs the SQL with every statement log, debug print and statistic off', (_what, highAvailability, file) => {
    const script = scripts(highAvailability)[file];
    expect(script).toContain("PASSWORD :'role_password'");
    expect(provisioningOptions(script)).toEqual(expect.arrayContaining(QUIET_SESSION));
  });

  test.each(postgresMajors())('the options name PostgreSQL %i parameters (or an extension\'s), so the server accepts them at connection start', (major) => {
    for (const option of provisioningOptions(scripts(false)['bootstrap.sh'])) {
      const name = option.split('=')[0];
      expect(postgresVersion(major).parameters.has(name) || name === 'pg_stat_statements.track').toBe(true);
    }
  });

  test('HA mode keeps its local commits beside them', () => {
    expect(provisioningOptions(scripts(true)['provision.sh'])).toContain('synchronous_commit=local');
  });
});
