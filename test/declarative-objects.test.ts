/**
 * Declared roles, databases and extensions: what the provisioning SQL renders for them, the
 * preload libraries they add, and the refusals at synth. test/e2e/declarative-objects.e2e.test.ts
 * runs the same SQL on a live server.
 */
import { Chart } from 'cdk8s';
import { Ensure, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { findObject, synthObjects, testChart } from './support/synth';
import { CLUSTER_FILES } from '../lib/cluster/cluster-layout';

type Props = Partial<PostgresStatefulClusterProps>;

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};

function synth(props: Props, extend: (cluster: PostgresStatefulCluster) => void = () => undefined): any[] {
  const chart = testChart();
  extend(new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props }));
  return synthObjects(chart as Chart);
}
const bootstrapScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data[CLUSTER_FILES.bootstrapScript];
const postgresqlConf = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-config').data[CLUSTER_FILES.postgresqlConf];
const refusal = (props: Props, extend?: (cluster: PostgresStatefulCluster) => void) => thrownMessage(() => synth(props, extend), 'the props');

describe('roles', () => {
  test('every managed attribute is stated, so one removed from the props reverts', () => {
    const script = bootstrapScript(synth({
      roles: [
        { credentials: { secretName: 'plain' } },
        { credentials: { secretName: 'admin' }, attributes: { createDb: true, createRole: true, bypassRls: true, inherit: false, connectionLimit: 5, validUntil: '2030-01-31T12:00:00+01:00' } },
      ],
    }));
    expect(script).toContain('ALTER ROLE :"role_name" WITH LOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT CONNECTION LIMIT -1 VALID UNTIL \'infinity\' PASSWORD');
    expect(script).toContain("ALTER ROLE :\"role_name\" WITH LOGIN CREATEDB CREATEROLE BYPASSRLS NOINHERIT CONNECTION LIMIT 5 VALID UNTIL '2030-01-31T12:00:00+01:00' PASSWORD");
    // The library's own roles keep their own options.
    expect(script).toContain('ALTER ROLE :"role_name" WITH SUPERUSER LOGIN PASSWORD');
  });

  test('named roles are created before the roles of Secrets and granted after, by quoted name; a keyword stays a name', () => {
    const script = bootstrapScript(synth({
      namedRoles: [{ name: 'user', login: true, memberOf: ['readers'] }, { name: 'readers', memberOf: ['pg_read_all_data'] }],
      roles: [{ credentials: { secretName: 'app' }, memberOf: ['readers'] }],
    }));
    const create = script.indexOf('SELECT format(\'CREATE ROLE %I\', \'readers\')');
    expect(create).toBeGreaterThan(0);
    expect(script).toContain('ALTER ROLE "user" WITH LOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT CONNECTION LIMIT -1 VALID UNTIL \'infinity\' PASSWORD NULL;');
    expect(script).toContain('ALTER ROLE "readers" WITH NOLOGIN ');
    expect(script.indexOf('GRANT readers TO :"role_name";')).toBeGreaterThan(create);
    expect(script.indexOf('GRANT "readers" TO "user";')).toBeGreaterThan(script.indexOf('GRANT readers TO :"role_name";'));
  });

  test('a role declared absent is dropped last, guarded against the names the Secrets hold; without one, no table of them', () => {
    const script = bootstrapScript(synth({ namedRoles: [{ name: 'old_app', ensure: Ensure.ABSENT }], databases: [{ name: 'shop', ensure: Ensure.ABSENT }] }));
    expect(script).toContain('CREATE TEMPORARY TABLE pg_temp.secret_roles (name name);');
    expect(script.match(/INSERT INTO pg_temp.secret_roles VALUES \(:'role_name'\);/g)).toHaveLength(2);
    expect(script).toContain("IF EXISTS (SELECT FROM pg_temp.secret_roles WHERE name = 'old_app') THEN");
    expect(script).toContain("EXECUTE format('ALTER ROLE %I NOLOGIN', 'old_app');");
    expect(script.indexOf("EXECUTE format('DROP ROLE %I', 'old_app');")).toBeGreaterThan(script.indexOf("format('DROP DATABASE %I', 'shop')"));
    expect(bootstrapScript(synth({}))).not.toContain('secret_roles');
  });

  test.each([
    [{ namedRoles: [{ name: 'Readers' }] }, 'namedRoles[0].name', '"Readers"', /lower-case letters/],
    [{ namedRoles: [{ name: 'pg_readers' }] }, 'namedRoles[0].name', '"pg_readers"', /does not start with "pg_"/],
    [{ namedRoles: [{ name: 'public' }] }, 'namedRoles[0].name', '"public"', /choose a name/],
    [{ namedRoles: [{ name: 'replication_clients' }] }, 'namedRoles[0].name', '"replication_clients"', /choose another name/],
    [{ namedRoles: [{ name: 'a' }, { name: 'a' }] }, 'namedRoles[1].name', '"a"', /declare each role once/],
    [{ namedRoles: [{ name: 'a', ensure: Ensure.ABSENT, login: true }] }, 'namedRoles[0].ensure', '"absent"', /remove them/],
    [{ namedRoles: [{ name: 'a', memberOf: ['a'] }] }, 'namedRoles[0].memberOf[0]', '"a"', /remove it/],
    [{ namedRoles: [{ name: 'a', memberOf: ['b'] }, { name: 'b', ensure: Ensure.ABSENT }] }, 'namedRoles[0].memberOf', '"b"', /keep the role/],
    [{ namedRoles: [{ name: 'b', ensure: Ensure.ABSENT }], roles: [{ credentials: { secretName: 'app' }, memberOf: ['b'] }] }, 'roles[0].memberOf', '"b"', /keep the role/],
    [{ roles: [{ credentials: { secretName: 'app' }, attributes: { connectionLimit: -2 } }] }, 'roles[0].attributes.connectionLimit', '-2', /whole number -1 or more|from -1/],
    [{ roles: [{ credentials: { secretName: 'app' }, attributes: { validUntil: '2030-02-30T00:00:00Z' } }] }, 'roles[0].attributes.validUntil', '"2030-02-30T00:00:00Z"', /2027-06-30T00:00:00Z/],
    [{ roles: [{ credentials: { secretName: 'app' }, attributes: { validUntil: '2030-01-01 00:00' } }] }, 'roles[0].attributes.validUntil', '"2030-01-01 00:00"', /with an offset/],
    [{ roles: [{ credentials: { secretName: 'pg-superuser' }, attributes: { createDb: true } }] }, 'roles[0].attributes', '"createDb":true', /on a role of its own Secret/],
    [{
      roles: [{ credentials: { secretName: 'app' }, attributes: { createDb: true } }, { credentials: { secretName: 'app' }, attributes: { createDb: false } }],
    }, 'roles[1].attributes', '"createDb":false', /declare a role's attributes once/],
  ] as [Props, string, string, RegExp][])('%j is refused naming %s', (props, prop, value, fix) => {
    expectPropErrorMessage(refusal(props), 'test/Db', { prop, value, fix });
  });

  test('a role added again without attributes keeps those declared', () => {
    const script = bootstrapScript(synth({ roles: [{ credentials: { secretName: 'app' }, attributes: { createDb: true } }] },
      (cluster) => cluster.addRole({ credentials: { secretName: 'app' }, memberOf: ['pg_monitor'] })));
    expect(script).toContain('WITH LOGIN CREATEDB NOCREATEROLE');
  });
});

describe('databases', () => {
  test('creation-only options at creation, owner and connection limit at every start, a difference logged', () => {
    const script = bootstrapScript(synth({
      databases: [
        { name: 'shop', owner: { secretName: 'shop-owner' }, connectionLimit: 50 },
        { name: 'legacy', encoding: 'LATIN1', locale: 'C' },
      ],
    }));
    expect(script).toContain("SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE %I', 'shop', :'owner', 'template1')");
    expect(script).toContain("SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE %I ENCODING %L LOCALE %L', 'legacy', :'owner', 'template0', 'LATIN1', 'C')");
    expect(script).toContain("SELECT format('ALTER DATABASE %I OWNER TO %I', 'shop', :'owner') \\gexec");
    expect(script).toContain('ALTER DATABASE "shop" WITH ALLOW_CONNECTIONS true CONNECTION LIMIT 50;');
    expect(script).toContain('ALTER DATABASE "legacy" WITH ALLOW_CONNECTIONS true CONNECTION LIMIT -1;');
    // legacy has no owner: the superuser's name is read for it.
    expect(script).toMatch(/\\set owner `cat "\$CREDENTIALS_DIR\/superuser\/username"`\nSELECT format\('CREATE DATABASE %I OWNER %I TEMPLATE %I ENCODING/);
    expect(script).toContain('but the props declare encoding LATIN1, which only its creation sets');
  });

  test('a database declared absent is closed, then dropped only without sessions, and a lost race does not stop the provisioning', () => {
    const script = bootstrapScript(synth({ databases: [{ name: 'old', ensure: Ensure.ABSENT }] }));
    expect(script).toContain("EXECUTE format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', 'old');");
    expect(script).toMatch(/\\set ON_ERROR_STOP 0\nSELECT format\('DROP DATABASE %I', 'old'\) WHERE EXISTS .* AND NOT EXISTS \(SELECT FROM pg_stat_activity WHERE datname = 'old' AND pid <> pg_backend_pid\(\)\) \\gexec\n\\set ON_ERROR_STOP 1/);
    expect(script).not.toContain("CREATE DATABASE %I OWNER %I TEMPLATE %I', 'old'");
  });

  test('the password lookup goes to databases that exist, postgres once', () => {
    const script = bootstrapScript(synth({
      databases: [{ name: 'postgres', extensions: [{ name: 'pg_stat_statements' }] }, { name: 'old', ensure: Ensure.ABSENT }, { name: 'shop' }],
    }, (cluster) => cluster._addPasswordLookup({ secretName: 'pooler-auth' })));
    expect(script.match(/^\\connect .*$/gm)).toEqual(['\\connect postgres', '\\connect template1', '\\connect postgres', '\\connect shop']);
  });

  test.each([
    [{ databases: [{ name: 'template1' }] }, 'databases[0].name', '"template1"', /another database name/],
    [{ databases: [{ name: 'shop' }, { name: 'shop' }] }, 'databases[1].name', '"shop"', /another database name/],
    [{ databases: [{ name: 'postgres', connectionLimit: 3 }] }, 'databases[0].connectionLimit', '3', /declare only its extensions/],
    [{ databases: [{ name: 'postgres', ensure: Ensure.ABSENT }] }, 'databases[0].ensure', '"absent"', /declare only its extensions/],
    [{ databases: [{ name: 'old', ensure: Ensure.ABSENT, owner: { secretName: 'x' } }] }, 'databases[0].ensure', '"absent"', /remove them/],
    [{ databases: [{ name: 'shop', encoding: "UTF8'; DROP" }] }, 'databases[0].encoding', '"UTF8\'; DROP"', /"UTF8"/],
    [{ databases: [{ name: 'shop', locale: 'en US' }] }, 'databases[0].locale', '"en US"', /"en_US.UTF-8"/],
    [{ databases: [{ name: 'shop', connectionLimit: 1.5 }] }, 'databases[0].connectionLimit', '1.5', /whole number/],
  ] as [Props, string, string, RegExp][])('%j is refused naming %s', (props, prop, value, fix) => {
    expectPropErrorMessage(refusal(props), 'test/Db', { prop, value, fix });
  });
});

describe('extensions', () => {
  test('each is reconciled in its database, a failure a WARNING; version and schema only when declared', () => {
    const script = bootstrapScript(synth({
      databases: [{
        name: 'shop',
        extensions: [{ name: 'uuid-ossp', schema: 'ext', version: '1.1' }, { name: 'citext' }, { name: 'hstore', ensure: Ensure.ABSENT }],
      }],
    }));
    const shop = script.slice(script.indexOf('\\connect shop'));
    expect(shop).toContain("EXECUTE format('CREATE EXTENSION %I SCHEMA %I VERSION %L CASCADE', 'uuid-ossp', 'ext', '1.1');");
    expect(shop).toContain("EXECUTE format('ALTER EXTENSION %I UPDATE TO %L', 'uuid-ossp', '1.1');");
    expect(shop).toContain("EXECUTE format('ALTER EXTENSION %I SET SCHEMA %I', 'uuid-ossp', 'ext');");
    expect(shop).toContain("EXECUTE format('CREATE EXTENSION %I CASCADE', 'citext');");
    expect(shop).toContain("EXECUTE format('DROP EXTENSION %I', 'hstore');");
    expect(shop).toContain('RAISE WARNING \'extension "citext" in database "shop" not reconciled: %;');
    expect(shop.match(/UPDATE TO/g)).toHaveLength(1);
  });

  test('an extension that needs preloading adds its library to shared_preload_libraries once, after the declared ones', () => {
    const conf = postgresqlConf(synth({
      settings: { sharedPreloadLibraries: ['auto_explain'] },
      databases: [
        { name: 'postgres', extensions: [{ name: 'pg_stat_statements' }, { name: 'pg_cron' }] },
        { name: 'shop', extensions: [{ name: 'pg_stat_statements' }, { name: 'pgaudit', ensure: Ensure.ABSENT }] },
      ],
    }));
    expect(conf).toContain("shared_preload_libraries = 'auto_explain,pg_stat_statements,pg_cron'");
    expect(postgresqlConf(synth({}))).not.toContain('shared_preload_libraries');
  });

  test('the preload goes through the settings, as if listed in sharedPreloadLibraries, in both modes: the restart checksum reads the same parameters', () => {
    const extension = { databases: [{ name: 'postgres', extensions: [{ name: 'pg_stat_statements' }] }] };
    const listed = { settings: { sharedPreloadLibraries: ['pg_stat_statements'] } };
    expect(postgresqlConf(synth(extension))).toBe(postgresqlConf(synth(listed)));
    const patroni = (props: Props) => findObject(synth({ ...props, highAvailability: {} }), 'ConfigMap', 'db-patroni').data;
    expect(JSON.stringify(patroni(extension))).toContain('pg_stat_statements');
    expect(patroni(extension)).toEqual(patroni(listed));
  });

  test.each([
    [{ databases: [{ name: 'shop', extensions: [{ name: 'x; DROP' }] }] }, 'databases[0].extensions[0].name', '"x; DROP"', /control file/],
    [{ databases: [{ name: 'shop', extensions: [{ name: 'citext' }, { name: 'citext' }] }] }, 'databases[0].extensions[1].name', '"citext"', /declare it once/],
    [{ databases: [{ name: 'shop', extensions: [{ name: 'citext', version: "1'" }] }] }, 'databases[0].extensions[0].version', '"1\'"', /pg_available_extension_versions/],
    [{ databases: [{ name: 'shop', extensions: [{ name: 'citext', schema: 'pg_catalog' }] }] }, 'databases[0].extensions[0].schema', '"pg_catalog"', /"extensions"/],
    [{ databases: [{ name: 'shop', extensions: [{ name: 'citext', ensure: Ensure.ABSENT, version: '1.6' }] }] }, 'databases[0].extensions[0].ensure', '"absent"', /remove version/],
    [{ databases: [{ name: 'shop', extensions: [{ name: 'pg_cron' }] }] }, 'databases[0].extensions[0].name', '"pg_cron"', /extraParameters\["cron.database_name"\] to "shop"/],
  ] as [Props, string, string, RegExp][])('%j is refused naming %s', (props, prop, value, fix) => {
    expectPropErrorMessage(refusal(props), 'test/Db', { prop, value, fix });
  });

  test('pg_cron goes where cron.database_name says', () => {
    expect(() => synth({ extraParameters: { 'cron.database_name': 'shop' }, databases: [{ name: 'shop', extensions: [{ name: 'pg_cron' }] }] })).not.toThrow();
  });
});
