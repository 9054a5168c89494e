import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../../lib';
import { CLUSTER_FILES, CLUSTER_PATHS } from '../../lib/cluster/cluster-layout';
import { findObject } from '../support/synth';
import { LocalInstance, SecretStore, localCluster } from './support/cluster-harness';
import { DAEMONS } from './support/daemons';
import { Login, psql, requirePostgres, run, scratchDir } from './support/postgres-bin';
import { TestCa } from './support/test-ca';

// Each password carries a marker no log line has by chance, and the characters SQL, conninfo
// and passfiles quote: a leak may show them escaped ('' for '), so the markers are searched too.
const SECRETS: SecretStore = {
  'loud-superuser': { username: 'dbadmin', password: "Qx7-superuser-marker:su'per\\pass" },
  'loud-replication': { username: 'replicator', password: 'Qx7-replication-marker:re"pl' },
  'loud-owner': { username: 'shop_app', password: "Qx7-owner-marker'app" },
  'loud-monitoring': { username: 'monitoring', password: 'Qx7-monitoring-marker' },
  'loud-lookup': { username: 'pooler_auth', password: 'Qx7-lookup-marker\\x' },
};
const NEEDLES = [...new Set(Object.values(SECRETS).flatMap(({ password }) => [password, ...password.split(/['"\\]/).filter((part) => part.length >= 8)]))];
const superuser = (port: number): Login => ({ port, user: 'dbadmin', password: SECRETS['loud-superuser'].password });

// Everything PostgreSQL 15 and its contrib modules can log a statement by, at its loudest.
const LOUD: Pick<PostgresStatefulClusterProps, 'extraParameters' | 'settings'> = {
  settings: { sharedPreloadLibraries: ['pg_stat_statements', 'auto_explain'] },
  extraParameters: {
    'log_statement': 'all',
    'log_min_duration_statement': '0',
    'log_min_duration_sample': '0',
    'log_statement_sample_rate': '1',
    'log_transaction_sample_rate': '1',
    'log_duration': 'on',
    'log_min_error_statement': 'debug5',
    'log_min_messages': 'debug5',
    'log_error_verbosity': 'verbose',
    'debug_print_parse': 'on',
    'debug_print_rewritten': 'on',
    'debug_print_plan': 'on',
    'log_parser_stats': 'on',
    'log_planner_stats': 'on',
    'log_executor_stats': 'on',
    'log_connections': 'on',
    'log_disconnections': 'on',
    'log_lock_waits': 'on',
    'pg_stat_statements.track': 'all',
    'pg_stat_statements.track_utility': 'on',
    'auto_explain.log_min_duration': '0',
    'auto_explain.log_nested_statements': 'on',
  },
};

/** A cluster with every kind of role provisioning sets a password for, in the plain or the HA mode. */
function synth(highAvailability: boolean): any[] {
  const chart = new Chart(Testing.app(), 'loud', { namespace: 'shop' });
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: highAvailability ? 3 : 1,
    superuserSecret: { secretName: 'loud-superuser' },
    replicationSecret: { secretName: 'loud-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'loud-owner' } }],
    tls: { secretName: 'loud-tls' },
    // The HA mode's provision.sh and the checks log in as the superuser over loopback TCP.
    superuserNetworkAccess: true,
    ...(highAvailability ? { highAvailability: {} } : LOUD),
  });
  cluster.addRole({ credentials: { secretName: 'loud-monitoring' }, memberOf: ['pg_monitor'] });
  cluster._addPasswordLookup({ secretName: 'loud-lookup' });
  return chart.toJson();
}

/** Every file under `dir`, but the Secrets and the passfiles, which hold passwords by design. */
function filesUnder(dir: string, skip: readonly string[]): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (skip.includes(path)) return [];
    return statSync(path).isDirectory() ? filesUnder(path, skip) : [path];
  });
}

describe('no password reaches a log, whatever the logging settings', () => {
  let scratch: string;
  let primary: LocalInstance;
  /** What the scripts wrote to stderr (and psql to stdout), by run. */
  const outputs: { [run: string]: string } = {};

  beforeAll(async () => {
    requirePostgres();
    scratch = scratchDir('cdk8s-postgres-secrecy');
    SECRETS['loud-tls'] = new TestCa(scratch, 'test-ca').issue('db', { dnsNames: ['db-rw.shop.svc'] });
    [primary] = await localCluster(synth(false), 'db', scratch, SECRETS);

    // First start: initdb, then provisioning creates every role with its password.
    outputs['first bootstrap'] = primary.bootstrap();
    await primary.start();

    // The HA mode's provision.sh, as Patroni's callback runs it on the leader: against the same
    // loud server, with the same Secrets (role directories are named after the Secrets).
    const script = join(scratch, CLUSTER_FILES.provisionScript);
    writeFileSync(script, findObject(synth(true), 'ConfigMap', 'db-scripts').data[CLUSTER_FILES.provisionScript], { mode: 0o755 });
    const provision = run('bash', [script, 'on_role_change', 'primary', 'db'], {
      CREDENTIALS_DIR: primary.localize(CLUSTER_PATHS.secretsDir), PGHOST: '127.0.0.1', PGPORT: String(primary.port), TMPDIR: join(primary.root, 'tmp'),
    });
    outputs['provision.sh'] = provision.stdout + provision.stderr;
    if (provision.status !== 0) throw new Error(`provision.sh exited ${provision.status}:\n${provision.stderr}`);

    // A restart sets every password again.
    primary.stop();
    outputs['restart bootstrap'] = primary.bootstrap();
    await primary.start();
    psql(superuser(primary.port), 'CREATE EXTENSION pg_stat_statements');
    outputs.pg_stat_statements = psql(superuser(primary.port), 'SELECT query FROM pg_stat_statements');

    // A provisioning statement that fails: ALTER ROLE ... PASSWORD in a read-only transaction.
    primary.stop();
    appendFileSync(join(primary.localize(CLUSTER_PATHS.configDir), CLUSTER_FILES.postgresqlConf), 'default_transaction_read_only = on\n');
    outputs['failing bootstrap'] = (() => {
      try {
        primary.bootstrap();
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    })();
  }, 180_000);

  afterAll(() => {
    primary?.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the failing run failed at setting a password', () => {
    expect(outputs['failing bootstrap']).toContain('cannot execute ALTER ROLE in a read-only transaction');
  });

  test('the server logged every session at its loudest, and pg_stat_statements kept every statement', () => {
    const log = readFileSync(primary.logFile, 'utf8');
    expect(outputs['first bootstrap']).toContain('connection authorized: user=dbadmin');
    expect(log).toContain('statement: SELECT pg_is_in_recovery()');
    expect(outputs.pg_stat_statements).toContain('SELECT pg_is_in_recovery()');
  });

  test('no password in any file the daemons and scripts wrote, nor in their output', () => {
    const skip = [primary.localize(CLUSTER_PATHS.secretsDir), primary.localize(CLUSTER_PATHS.authDir)];
    const files = filesUnder(scratch, skip).filter((file) => !file.endsWith(CLUSTER_FILES.provisionScript));
    const texts: [string, string][] = [
      ...files.map((file): [string, string] => [file, readFileSync(file).toString('latin1')]),
      ...Object.entries(outputs),
    ];
    const leaks = texts.flatMap(([source, text]) => NEEDLES.filter((needle) => text.includes(needle)).map((needle) => `${source}: ${needle}`));
    const logLines = texts.filter(([source]) => !source.startsWith('/') || source.endsWith('.log'))
      .reduce((count, [, text]) => count + text.split('\n').length, 0);
    console.log(`log-secrecy: ${files.length} files and ${Object.keys(outputs).length} outputs scanned, ${logLines} log lines`);
    expect(leaks).toEqual([]);
    expect(logLines).toBeGreaterThan(1000);
  });
});
