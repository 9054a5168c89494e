/**
 * Declared roles, databases and extensions on a live PostgreSQL 15 (Debian 12's daemons, named
 * here: the SQL is the same on every major the library runs; with daemonSet('trixie') the suite
 * passes on 17.12 too). Each step re-renders the cluster with new props and runs the rendered
 * provision.sh against the running server, as Patroni's on_start callback does at every start of
 * a leader (the plain mode's bootstrap runs the same SQL): create, change, remove each kind, and
 * the refusals for what cannot be done safely.
 */
import { ChildProcess } from 'child_process';
import { mkdirSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { Ensure, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../../lib';
import { CLUSTER_FILES } from '../../lib/cluster/cluster-layout';
import { findObject } from '../support/synth';
import { SecretStore } from './support/cluster-harness';
import { daemonSet } from './support/daemons';
import { freePort, giveToDaemonUser, runIn, runOkIn, scratchDir, startDaemonIn, waitFor } from './support/postgres-bin';

const DAEMONS = daemonSet('bookworm');

/** The reporting role's name, from its Secret, is an adversarial one: quotes and a space. */
const REPORTING = 'Report "Q\'uote';
const SECRETS: SecretStore = {
  'db-superuser': { username: 'dbadmin', password: 'su-secret' },
  'db-replication': { username: 'replicator', password: 'repl-secret' },
  'shop-owner': { username: 'shop_app', password: 'app-secret' },
  'reporting': { username: REPORTING, password: 'report-secret' },
};

type Props = Partial<PostgresStatefulClusterProps>;

/** provision.sh and shared_preload_libraries of the HA mode's render of these props. */
function render(props: Props): { script: string; secretFiles: { [path: string]: string }; preload: string } {
  const chart = Testing.chart() as Chart;
  new PostgresStatefulCluster(chart, 'Db', {
    name: 'db', instances: 1, highAvailability: {}, postgresVersion: DAEMONS.postgresMajor,
    superuserSecret: { secretName: 'db-superuser' }, replicationSecret: { secretName: 'db-replication' }, ...props,
  });
  const objects = Testing.synth(chart);
  const pod = findObject(objects, 'StatefulSet', 'db').spec.template.spec;
  const secretFiles: { [path: string]: string } = {};
  for (const source of pod.volumes.find((v: any) => v.name === 'secrets').projected.sources) {
    // Patroni's REST API Secret is none of provision.sh's business.
    const secret = SECRETS[source.secret.name];
    for (const item of secret ? source.secret.items : []) secretFiles[item.path] = secret[item.key];
  }
  const patroni = Object.values(findObject(objects, 'ConfigMap', 'db-patroni').data).join('\n');
  const preload = /"?shared_preload_libraries"?: "?([^"\n,]*)"?/.exec(patroni)?.[1] ?? '';
  return { script: findObject(objects, 'ConfigMap', 'db-scripts').data[CLUSTER_FILES.provisionScript], secretFiles, preload };
}

describe(`declared roles, databases and extensions on PostgreSQL ${DAEMONS.postgresMajor}`, () => {
  let scratch: string;
  let port: number;
  let server: ChildProcess | undefined;
  let holder: ChildProcess | undefined;
  let socket: string;

  /** Runs provision.sh of these props; returns its stderr (the log), failing on a non-zero exit. */
  const provision = (props: Props): string => {
    const rendered = render(props);
    const credentials = join(scratch, 'credentials');
    rmSync(credentials, { recursive: true, force: true });
    for (const [path, value] of Object.entries(rendered.secretFiles)) {
      mkdirSync(join(credentials, path, '..'), { recursive: true });
      writeFileSync(join(credentials, path), value);
    }
    writeFileSync(join(scratch, 'provision.sh'), rendered.script);
    giveToDaemonUser(scratch);
    const result = runIn(DAEMONS, 'bash', [join(scratch, 'provision.sh')], { CREDENTIALS_DIR: credentials, PGHOST: socket, PGPORT: String(port) });
    if (result.status !== 0) throw new Error(`provision.sh exited ${result.status}:\n${result.stderr}`);
    return result.stderr;
  };
  const sql = (query: string, database = 'postgres'): string => runOkIn(DAEMONS, 'psql', ['--no-psqlrc', '--tuples-only', '--no-align',
    '--set=ON_ERROR_STOP=1', `--host=${socket}`, `--port=${port}`, '--username=dbadmin', `--dbname=${database}`, '--command', query],
  { PGPASSWORD: 'su-secret', PGTZ: 'UTC' }).trim();
  const role = (name: string) => sql(`SELECT rolcanlogin, rolcreatedb, rolcreaterole, rolinherit, rolbypassrls, rolconnlimit, rolvaliduntil
    FROM pg_roles WHERE rolname = '${name.replace(/'/g, "''")}'`);
  const warnings = (log: string) => log.split('\n').filter((line) => line.includes('WARNING'));

  const step1: Props = {
    namedRoles: [
      { name: 'readers', memberOf: ['pg_read_all_data'] },
      { name: 'legacy', login: true, attributes: { createRole: true } },
      { name: 'blocker' },
    ],
    roles: [{
      credentials: { secretName: 'reporting' }, memberOf: ['readers'],
      attributes: { createDb: true, connectionLimit: 3, validUntil: '2031-01-01T00:00:00Z', inherit: false },
    }],
    databases: [
      { name: 'postgres', extensions: [{ name: 'pg_stat_statements', version: '1.9' }] },
      {
        name: 'shop', owner: { secretName: 'shop-owner' }, connectionLimit: 20,
        extensions: [{ name: 'citext' }, { name: 'uuid-ossp', schema: 'ext' }, { name: 'no_such_extension' }],
      },
      { name: 'archive', encoding: 'LATIN1', locale: 'C' },
    ],
  };

  beforeAll(async () => {
    DAEMONS.require('postgres');
    scratch = scratchDir('declarative');
    socket = join(scratch, 'socket');
    mkdirSync(socket);
    writeFileSync(join(scratch, 'pwfile'), 'su-secret\n');
    giveToDaemonUser(scratch);
    runOkIn(DAEMONS, 'initdb', ['--pgdata', join(scratch, 'data'), '--username=dbadmin', `--pwfile=${join(scratch, 'pwfile')}`,
      '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8']);
    port = await freePort();
    // The server starts with the preload the props render: pg_stat_statements, declared in postgres.
    const preload = render(step1).preload;
    expect(preload).toBe('pg_stat_statements');
    server = startDaemonIn(DAEMONS, 'postgres', ['-D', join(scratch, 'data'), '-p', String(port), '-k', socket, '-c', 'listen_addresses=',
      '-c', `shared_preload_libraries=${preload}`], join(scratch, 'postgres.log'));
    await waitFor('PostgreSQL to accept connections', () => runIn(DAEMONS, 'pg_isready', ['--host', socket, '--port', String(port)]).status === 0);
  }, 60_000);

  afterAll(() => {
    // The session holder has ended by now unless a test failed first.
    for (const child of [holder, server]) {
      if (child?.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('create: roles with attributes and memberships, databases with their options, extensions with their schema and version', () => {
    const log = provision(step1);
    // The one failure is the extension the image lacks, logged with the database; the rest went on.
    expect(warnings(log)).toEqual([expect.stringMatching(
      /WARNING: {2}extension "no_such_extension" in database "shop" not reconciled: .*no_such_extension.*pg_available_extension_versions/)]);
    expect(role(REPORTING)).toBe('t|t|f|f|f|3|2031-01-01 00:00:00+00');
    expect(role('readers')).toBe('f|f|f|t|f|-1|infinity');
    expect(role('legacy')).toBe('t|f|t|t|f|-1|infinity');
    expect(sql(`SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
      JOIN pg_roles r ON r.oid = m.member WHERE r.rolname IN ('readers', '${REPORTING.replace(/'/g, "''")}')`)).toBe('pg_read_all_data,readers');
    expect(sql("SELECT pg_get_userbyid(datdba), datconnlimit FROM pg_database WHERE datname = 'shop'")).toBe('shop_app|20');
    expect(sql("SELECT pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = 'archive'")).toBe('LATIN1|C');
    expect(sql("SELECT string_agg(extname || '@' || extnamespace::regnamespace, ',' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'", 'shop'))
      .toBe('citext@public,uuid-ossp@ext');
    expect(sql("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")).toBe('1.9');
    // Preloaded, so its view answers (it errors out unless the module is loaded).
    expect(Number(sql('SELECT count(*) FROM pg_stat_statements'))).toBeGreaterThan(0);
    // A second run with the same props changes nothing and says nothing new.
    expect(warnings(provision(step1))).toHaveLength(1);
  });

  test('change: removed attributes revert, connection limits follow, an extension is updated and moved; creation-only options are logged', () => {
    const log = provision({
      ...step1,
      namedRoles: [{ name: 'readers', memberOf: ['pg_read_all_data'] }, { name: 'legacy' }, { name: 'blocker' }],
      roles: [{ credentials: { secretName: 'reporting' }, memberOf: ['readers'] }],
      databases: [
        { name: 'postgres', extensions: [{ name: 'pg_stat_statements', version: '1.10' }] },
        { name: 'shop', owner: { secretName: 'shop-owner' }, extensions: [{ name: 'citext' }, { name: 'uuid-ossp', schema: 'ext2' }] },
        { name: 'archive', encoding: 'UTF8', locale: 'C' },
      ],
    });
    expect(role(REPORTING)).toBe('t|f|f|t|f|-1|infinity');
    expect(role('legacy')).toBe('f|f|f|t|f|-1|infinity');
    expect(sql("SELECT datconnlimit FROM pg_database WHERE datname = 'shop'")).toBe('-1');
    expect(sql("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")).toBe('1.10');
    expect(sql("SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'uuid-ossp'", 'shop')).toBe('ext2');
    expect(warnings(log)).toEqual([expect.stringMatching(
      /WARNING: {2}database "archive" has LATIN1 but the props declare encoding UTF8, which only its creation sets: it keeps its own/)]);
    expect(sql("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'archive'")).toBe('LATIN1');
  });

  test('remove: what nothing holds is dropped; a role owning objects, a database in use and an extension in use are kept and logged', async () => {
    sql('CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO blocker; CREATE TABLE emails (address citext)', 'shop');
    holder = startDaemonIn(DAEMONS, 'psql', ['--no-psqlrc', `--host=${socket}`, `--port=${port}`, '--username=dbadmin', '--dbname=archive',
      '--command', 'SELECT pg_sleep(60)'], join(scratch, 'holder.log'), { PGPASSWORD: 'su-secret' });
    await waitFor('a session in archive', () => sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'archive'") === '1');
    const removal: Props = {
      namedRoles: [
        { name: 'readers', memberOf: ['pg_read_all_data'] },
        { name: 'legacy', ensure: Ensure.ABSENT }, { name: 'blocker', ensure: Ensure.ABSENT }, { name: 'shop_app', ensure: Ensure.ABSENT },
      ],
      roles: [{ credentials: { secretName: 'reporting' }, memberOf: ['readers'] }],
      databases: [
        { name: 'shop', owner: { secretName: 'shop-owner' }, extensions: [{ name: 'citext', ensure: Ensure.ABSENT }, { name: 'uuid-ossp', ensure: Ensure.ABSENT }] },
        { name: 'archive', ensure: Ensure.ABSENT },
      ],
    };
    const log = provision(removal);
    expect(sql("SELECT count(*) FROM pg_roles WHERE rolname = 'legacy'")).toBe('0');
    expect(sql("SELECT count(*) FROM pg_extension WHERE extname = 'uuid-ossp'", 'shop')).toBe('0');
    expect(warnings(log)).toEqual([
      expect.stringMatching(/WARNING: {2}database "archive" is declared absent but 1 sessions are connected to it: it takes no new connections and is kept/),
      expect.stringMatching(/WARNING: {2}role "blocker" is declared absent but objects depend on it in: shop\. It can no longer log in \(NOLOGIN\).*REASSIGN OWNED BY "blocker"/),
      expect.stringMatching(/WARNING: {2}role "shop_app" is declared absent but a Secret of the cluster names it: it stays/),
      expect.stringMatching(/WARNING: {2}extension "citext" in database "shop" is declared absent but objects depend on it \(.*emails.*\); it stays/),
    ]);
    expect(sql("SELECT datallowconn FROM pg_database WHERE datname = 'archive'")).toBe('f');
    expect(role('blocker')).toBe('f|f|f|t|f|-1|infinity');
    expect(sql("SELECT count(*) FROM pg_extension WHERE extname = 'citext'", 'shop')).toBe('1');

    // Once the session ends and the objects are moved, the next start drops both.
    sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'archive'");
    await waitFor('the archive session to end', () => sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'archive'") === '0');
    sql('REASSIGN OWNED BY blocker TO shop_app; DROP OWNED BY blocker', 'shop');
    expect(warnings(provision(removal))).toHaveLength(2);
    expect(sql("SELECT count(*) FROM pg_database WHERE datname = 'archive'")).toBe('0');
    expect(sql("SELECT count(*) FROM pg_roles WHERE rolname = 'blocker'")).toBe('0');
  }, 60_000);
});
