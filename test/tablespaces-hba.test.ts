/**
 * Tablespaces on volumes of their own, and the props' pg_hba.conf rules and pg_ident.conf maps:
 * what they render in both modes, and what synthesis refuses.
 */
import { Chart, Testing, Yaml } from 'cdk8s';
import { parse } from 'yaml';
import {
  BackupRepository, ChangeImpact, Ensure, HbaConnection, HbaMethod, HbaRule, PostgresStatefulCluster, PostgresStatefulClusterProps,
} from '../lib';
import { KUBE_VERSIONS, validateManifests } from './support/kube-schema';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { postgresVersion } from '../lib/core/postgres-versions';
import { PostgresTesting } from '../lib/testing/testing';

type Props = Partial<PostgresStatefulClusterProps>;
const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const CA_SIGNED = { tls: { secretName: 'db-tls' } };

function objectsOf(props: Props = {}): any[] {
  const chart = testChart();
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
  return synthObjects(chart as Chart);
}
const statefulSet = (objects: any[], name: string) => findObject(objects, 'StatefulSet', name);
const config = (objects: any[]) => findObject(objects, 'ConfigMap', 'db-config').data;
const scripts = (objects: any[]) => findObject(objects, 'ConfigMap', 'db-scripts').data;
const containers = (sts: any) => [...sts.spec.template.spec.initContainers, ...sts.spec.template.spec.containers];
const mountsOf = (container: any, name: string) => (container.volumeMounts ?? []).filter((m: any) => m.name === name);
const hbaLines = (text: string) => text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')).map((line) => line.trim().split(/\s+/));

function expectRefused(props: Props, prop: string, value: string, fix: RegExp): void {
  const message = thrownMessage(() => objectsOf(props), prop);
  expectPropErrorMessage(message, 'test/Db', { prop, value, fix });
}

const TABLESPACES: Props = {
  storage: { size: '10Gi', storageClassName: 'fast' },
  tablespaces: [
    { name: 'archive_2024', size: '50Gi', storageClassName: 'cheap', owner: { secretName: 'archive-owner' } },
    { name: 'hot', size: '5Gi' },
  ],
};

describe('tablespaces', () => {
  test.each([
    ['plain mode', {}, ['db-primary', 'db-replica']],
    ['HA mode', { highAvailability: {} }, ['db']],
  ])('%s: a claim template per tablespace on every instance StatefulSet, of its StorageClass or the data volume\'s', (_mode, extra, names) => {
    const objects = objectsOf({ ...TABLESPACES, ...extra });
    for (const name of names) {
      const claims = statefulSet(objects, name).spec.volumeClaimTemplates;
      expect(claims.map((c: any) => [c.metadata.name, c.spec.resources.requests.storage, c.spec.storageClassName]))
        .toEqual([['data', '10Gi', 'fast'], ['tablespace-archive-2024', '50Gi', 'cheap'], ['tablespace-hot', '5Gi', 'fast']]);
      // Mounted at the same path in every pod: replicas replay CREATE TABLESPACE at the primary's LOCATION.
      const postgres = containers(statefulSet(objects, name)).find((c: any) => c.name === 'postgres');
      expect(mountsOf(postgres, 'tablespace-hot')).toEqual([{ name: 'tablespace-hot', mountPath: '/var/lib/postgresql/tablespaces/hot' }]);
    }
  });

  test('the plain mode\'s bootstrap mounts them, makes their directories on every instance and empties them before a clone or a rebuild', () => {
    const objects = objectsOf(TABLESPACES);
    for (const name of ['db-primary', 'db-replica']) {
      const bootstrap = containers(statefulSet(objects, name)).find((c: any) => c.name === 'bootstrap');
      expect(mountsOf(bootstrap, 'tablespace-archive-2024')).toHaveLength(1);
    }
    const script: string = scripts(objects)['bootstrap.sh'];
    expect(script).toContain("tablespace_dirs=('/var/lib/postgresql/tablespaces/archive_2024/data' '/var/lib/postgresql/tablespaces/hot/data')");
    expect(script).toMatch(/write_passfile "\$PGPASSFILE" replication\nmake_tablespace_dirs\n/);
    expect(script).toMatch(/--no-password >&2\n {2}empty_tablespace_dirs\n {2}log "cloning/);
    // primaryRecovery's rebuild from a replica too: a primary that lost its data volume may keep its tablespaces' volumes.
    expect(script).toMatch(/at WAL position \$target"\n {2}empty_tablespace_dirs\n {2}pg_basebackup/);
    expect(shellcheck(script)).toBe('');
    // Without tablespaces nothing of them is rendered, so the scripts (and the pods' checksum) stay as they were.
    expect(scripts(objectsOf())['bootstrap.sh']).not.toContain('tablespace');
  });

  test('the provisioning SQL creates each tablespace at its LOCATION, owned by its Secret\'s role or the superuser, before the databases', () => {
    const objects = objectsOf({ ...TABLESPACES, databases: [{ name: 'orders', owner: { secretName: 'orders-owner' } }] });
    const script: string = scripts(objects)['bootstrap.sh'];
    expect(script).toMatch(/\\set owner `cat "\$CREDENTIALS_DIR\/role-archive-owner-[0-9a-f]{8}\/username"`\nSELECT format\('CREATE TABLESPACE archive_2024 OWNER %I LOCATION %L', :'owner', '\/var\/lib\/postgresql\/tablespaces\/archive_2024\/data'\) WHERE NOT EXISTS \(SELECT FROM pg_tablespace WHERE spcname = 'archive_2024'\) \\gexec\nALTER TABLESPACE archive_2024 OWNER TO :"owner";/);
    expect(script).toContain("SELECT current_user AS owner \\gset\nSELECT format('CREATE TABLESPACE hot OWNER %I");
    expect(script.indexOf('CREATE TABLESPACE hot')).toBeLessThan(script.indexOf('CREATE DATABASE'));
    // The owner's role is provisioned from its Secret, like a database owner's.
    const primarySecrets = statefulSet(objects, 'db-primary').spec.template.spec.volumes.find((v: any) => v.name === 'secrets');
    expect(primarySecrets.projected.sources.map((s: any) => s.secret.name)).toContain('archive-owner');
  });

  test('ensure: absent drops the tablespace only when DROP TABLESPACE accepts (empty): a refusal is logged, provisioning goes on', () => {
    const script: string = scripts(objectsOf({ tablespaces: [{ name: 'old', size: '1Gi', ensure: Ensure.ABSENT }] }))['bootstrap.sh'];
    expect(script).toContain([
      '\\set ON_ERROR_STOP 0',
      "SELECT 'DROP TABLESPACE old' WHERE EXISTS (SELECT FROM pg_tablespace WHERE spcname = 'old') \\gexec",
      '\\set ON_ERROR_STOP 1',
      '\\if :ERROR',
    ].join('\n'));
    expect(script).not.toContain('CREATE TABLESPACE');
  });

  test('the HA mode: patroni-start.sh makes the directories before Patroni starts, provision.sh creates the tablespaces', () => {
    const files = scripts(objectsOf({ ...TABLESPACES, highAvailability: {} }));
    expect(files['patroni-start.sh']).toMatch(/make_tablespace_dirs\n[\s\S]*exec patroni/);
    expect(shellcheck(files['patroni-start.sh'])).toBe('');
    expect(files['provision.sh']).toContain("SELECT format('CREATE TABLESPACE hot OWNER %I LOCATION %L', :'owner', '/var/lib/postgresql/tablespaces/hot/data')");
    expect(scripts(objectsOf({ highAvailability: {} }))['patroni-start.sh']).not.toContain('tablespace');
  });

  test('pgBackRest\'s server sidecar reads the tablespaces (read-only) and restore.sh runs where they are mounted', () => {
    // The plain mode's default image has no pgBackRest; the HA mode's has.
    const image = postgresVersion().highAvailabilityImage.image;
    const objects = objectsOf({ ...TABLESPACES, ...CA_SIGNED, image, backup: { repositories: [BackupRepository.volume()], restore: {} } });
    const primary = statefulSet(objects, 'db-primary');
    const sidecar = containers(primary).find((c: any) => c.name === 'pgbackrest');
    expect(mountsOf(sidecar, 'tablespace-hot')).toEqual([{ name: 'tablespace-hot', mountPath: '/var/lib/postgresql/tablespaces/hot', readOnly: true }]);
    const bootstrap = containers(primary).find((c: any) => c.name === 'bootstrap');
    expect(bootstrap.env.find((e: any) => e.name === 'RESTORE_SCRIPT').value).not.toBe('');
    expect(mountsOf(bootstrap, 'tablespace-hot')).toHaveLength(1);
  });

  test('the manifests pass the API server\'s schemas', () => {
    for (const version of KUBE_VERSIONS) {
      expect(validateManifests(objectsOf({ ...TABLESPACES, ...CA_SIGNED }), version)).toEqual([]);
      expect(validateManifests(objectsOf({ ...TABLESPACES, highAvailability: {} }), version)).toEqual([]);
    }
  });

  test.each([
    [{ tablespaces: [{ name: 'pg_fast', size: '1Gi' }] }, 'tablespaces[0].name', '"pg_fast"', /without the "pg_" prefix/],
    [{ tablespaces: [{ name: 'Fast', size: '1Gi' }] }, 'tablespaces[0].name', '"Fast"', /lower-case letters/],
    [{ tablespaces: [{ name: 'a'.repeat(49), size: '1Gi' }] }, 'tablespaces[0].name', `"${'a'.repeat(49)}"`, /lower-case letters/],
    [{ tablespaces: [{ name: 'x', size: '1Gi' }, { name: 'x', size: '2Gi' }] }, 'tablespaces[1].name', '"x"', /each tablespace once/],
    [{ tablespaces: [{ name: 'x', size: '1 GB' }] }, 'tablespaces[0].size', '"1 GB"', /"2Gi"/],
    [{ tablespaces: [{ name: 'x', size: '1Gi', storageClassName: 'Fast_SSD' }] }, 'tablespaces[0].storageClassName', '"Fast_SSD"', /StorageClass/],
    [{ tablespaces: [{ name: 'x', size: '1Gi', ensure: 'gone' as Ensure }] }, 'tablespaces[0].ensure', '"gone"', /Ensure.ABSENT/],
  ])('refused: %j', (props, prop, value, fix) => expectRefused(props as Props, prop, value, fix));

  test('adding or removing a tablespace on a live cluster is reported as a refused volume claim template change, with the way out', () => {
    const yaml = (props: Props) => {
      const chart = new Chart(Testing.app(), 'ledger', { namespace: 'ledger' });
      new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
      return Yaml.stringify(...PostgresTesting.synth(chart));
    };
    const without = yaml({});
    const withTablespace = yaml({ tablespaces: [{ name: 'hot', size: '5Gi' }] });
    for (const [before, after, note] of [[without, withTablespace, /new volume claim template/], [withTablespace, without, /volume claim template removed/]] as const) {
      const report = ChangeImpact.compare(before, after);
      const claims = report.components.flatMap((c) => c.storage).filter((s) => s.claim === 'tablespace-hot');
      expect(claims.map((s) => s.workload).sort()).toEqual(['StatefulSet/db-primary', 'StatefulSet/db-replica']);
      claims.forEach((s) => expect(s.note).toMatch(note));
      expect(report.exitCode).not.toBe(0);
    }
  });
});

const CERT_RULES: Props = {
  ...CA_SIGNED,
  allowedCidrs: ['10.0.0.0/8'],
  hbaRules: [
    { connection: HbaConnection.HOSTSSL, databases: ['orders'], users: ['+reporting'], address: '10.1.0.0/16', method: HbaMethod.CERT, identMap: 'clients' },
    { connection: HbaConnection.HOSTSSL, users: ['batch'], address: 'all', method: HbaMethod.REJECT },
    { connection: HbaConnection.LOCAL, users: ['app'], method: HbaMethod.PEER, identMap: 'clients' },
    { connection: HbaConnection.HOSTNOSSL, address: '0.0.0.0/0', method: HbaMethod.REJECT },
  ],
  identMaps: [
    { mapName: 'clients', systemUsername: 'reports.example.com', databaseUsername: 'reporter' },
    { mapName: 'clients', systemUsername: '/^(.*)\\.apps\\.example\\.com$', databaseUsername: '\\1' },
  ],
};

describe('hbaRules and identMaps', () => {
  test('socket rules before the library\'s socket line; TCP rules after the superuser\'s rejection and the replicas\' lines, before allowedCidrs\'', () => {
    expect(hbaLines(config(objectsOf(CERT_RULES))['pg_hba.conf'])).toEqual([
      ['local', 'all', 'app', 'peer', 'map=clients'],
      ['local', 'all', 'all', 'scram-sha-256'],
      ['host', 'all', '@/etc/postgresql-superuser/username', 'all', 'reject'],
      ['hostssl', 'replication', '+replication_clients', '10.0.0.0/8', 'scram-sha-256'],
      ['hostssl', 'orders', '+reporting', '10.1.0.0/16', 'cert', 'map=clients'],
      ['hostssl', 'all', 'batch', 'all', 'reject'],
      ['hostnossl', 'all', 'all', '0.0.0.0/0', 'reject'],
      ['hostssl', 'all', 'all', '10.0.0.0/8', 'scram-sha-256'],
    ]);
  });

  test('pg_ident.conf in the Config ConfigMap and ident_file; a cert rule verifies client certificates against the tls Secret\'s CA', () => {
    const objects = objectsOf(CERT_RULES);
    expect(hbaLines(config(objects)['pg_ident.conf'])).toEqual([
      ['clients', 'reports.example.com', 'reporter'],
      ['clients', '/^(.*)\\.apps\\.example\\.com$', '\\1'],
    ]);
    const conf: string = config(objects)['postgresql.conf'];
    expect(conf).toContain("ident_file = '/etc/postgresql/pg_ident.conf'");
    expect(conf).toContain("ssl_ca_file = '/etc/postgresql-tls/ca.crt'");
    // Without maps and cert rules the files are as before.
    const plain = objectsOf(CA_SIGNED);
    expect(config(plain)['pg_ident.conf']).toBeUndefined();
    expect(config(plain)['postgresql.conf']).not.toMatch(/ident_file|ssl_ca_file/);
  });

  test('the settings agent reloads on a change of the maps; only the first map (ident_file, read at start) rolls the pods', () => {
    const agent: string = scripts(objectsOf(CERT_RULES))['settings-agent.sh'];
    expect(agent).toContain('hba=$(cat -- "$hba_file" "$CONFIG_DIR/pg_ident.conf")');
    const checksum = (props: Props) => statefulSet(objectsOf(props), 'db-primary').spec.template.metadata.annotations['checksum/config'];
    const oneMap = { ...CERT_RULES, identMaps: CERT_RULES.identMaps!.slice(0, 1) };
    expect(checksum(oneMap)).toBe(checksum(CERT_RULES));
    expect(checksum({ ...CERT_RULES, hbaRules: CERT_RULES.hbaRules!.slice(1) })).toBe(checksum(CERT_RULES));
    expect(checksum(CA_SIGNED)).not.toBe(checksum(CERT_RULES));
  });

  test('the HA mode: Patroni gets the rules in postgresql.pg_hba and the maps in postgresql.pg_ident (it writes and reloads them), no ident_file', () => {
    const objects = objectsOf({ ...CERT_RULES, highAvailability: {} });
    const patroni = parse(findObject(objects, 'ConfigMap', 'db-patroni').data['patroni.yml'], { version: '1.1' });
    expect(patroni.postgresql.pg_ident.map((line: string) => line.split(/\s+/))).toEqual([
      ['clients', 'reports.example.com', 'reporter'], ['clients', '/^(.*)\\.apps\\.example\\.com$', '\\1'],
    ]);
    expect(patroni.postgresql.pg_hba).toContain('hostssl orders       +reporting             10.1.0.0/16          cert map=clients');
    expect(patroni.postgresql.parameters.ident_file).toBeUndefined();
    expect(patroni.postgresql.parameters.ssl_ca_file).toBe('/etc/postgresql-tls/ca.crt');
    const checksum = (props: Props) => statefulSet(objectsOf(props), 'db').spec.template.metadata.annotations['checksum/config'];
    expect(checksum({ ...CERT_RULES, highAvailability: {}, identMaps: CERT_RULES.identMaps!.slice(0, 1) }))
      .toBe(checksum({ ...CERT_RULES, highAvailability: {} }));
    for (const version of KUBE_VERSIONS) expect(validateManifests(objects, version)).toEqual([]);
  });

  const rule = (overrides: Partial<HbaRule>): Props => ({
    ...CA_SIGNED,
    hbaRules: [{ connection: HbaConnection.HOSTSSL, address: '10.0.0.0/8', method: HbaMethod.SCRAM_SHA_256, ...overrides }],
  });
  test.each([
    [rule({ connection: HbaConnection.HOST }), 'hbaRules[0].connection', '"host"', /HbaConnection.HOSTSSL, or set allowUnencrypted: true/],
    [rule({ connection: HbaConnection.HOSTNOSSL }), 'hbaRules[0].connection', '"hostnossl"', /HbaMethod.REJECT/],
    [rule({ allowUnencrypted: true }), 'hbaRules[0].allowUnencrypted', 'true', /drop allowUnencrypted/],
    [rule({ method: 'trust' as HbaMethod }), 'hbaRules[0].method', '"trust"', /HbaMethod.SCRAM_SHA_256/],
    [rule({ method: 'md5' as HbaMethod }), 'hbaRules[0].method', '"md5"', /HbaMethod.SCRAM_SHA_256/],
    [rule({ method: 'password' as HbaMethod }), 'hbaRules[0].method', '"password"', /HbaMethod.CERT/],
    [rule({ method: HbaMethod.PEER }), 'hbaRules[0].method', '"peer"', /HbaConnection.LOCAL/],
    [rule({ connection: HbaConnection.LOCAL, address: undefined, method: HbaMethod.CERT }), 'hbaRules[0].method', '"cert"', /HbaConnection.HOSTSSL/],
    [{ ...rule({ method: HbaMethod.CERT }), tls: {} }, 'hbaRules[0].method', '"cert"', /tls.secretName or tls.issuer/],
    [{ ...rule({}), tls: { disabled: true } }, 'hbaRules[0].connection', '"hostssl"', /drop tls.disabled/],
    [rule({ method: HbaMethod.CERT, identMap: 'nope' }), 'hbaRules[0].identMap', '"nope"', /add its lines to identMaps/],
    [rule({ identMap: 'clients' }), 'hbaRules[0].identMap', '"clients"', /drop identMap/],
    [rule({ connection: HbaConnection.LOCAL }), 'hbaRules[0].address', '"10.0.0.0/8"', /drop address/],
    [rule({ address: undefined }), 'hbaRules[0].address', '(unset)', /"all"/],
    [rule({ address: '10.0.0.0/33' }), 'hbaRules[0].address', '"10.0.0.0/33"', /"10.0.0.0\/8"/],
    [rule({ databases: ['replication'] }), 'hbaRules[0].databases[0]', '"replication"', /replication connections are the library's/],
    [rule({ users: ['bad name'] }), 'hbaRules[0].users[0]', '"bad name"', /"\+group"/],
    [rule({ users: [] }), 'hbaRules[0].users', '[]', /leave it unset for all/],
    [{ identMaps: [{ mapName: 'm', systemUsername: 'a b', databaseUsername: 'x' }] }, 'identMaps[0].systemUsername', '"a b"', /without spaces/],
    [{ identMaps: [{ mapName: 'm', systemUsername: '/^a{1,3}$', databaseUsername: 'x' }] }, 'identMaps[0].systemUsername', '"/^a{1,3}$"', /commas/],
    [{ identMaps: [{ mapName: 'm', systemUsername: '/(', databaseUsername: 'x' }] }, 'identMaps[0].systemUsername', '"/("', /fix the expression/],
    [{ identMaps: [{ mapName: 'm', systemUsername: 'cn', databaseUsername: '\\1' }] }, 'identMaps[0].databaseUsername', '"\\\\1"', /start systemUsername with "\/"/],
    [{ identMaps: [{ mapName: 'M-1', systemUsername: 'cn', databaseUsername: 'x' }] }, 'identMaps[0].mapName', '"M-1"', /lower-case/],
    [{ extraParameters: { ident_file: '/tmp/x' } }, 'extraParameters.ident_file', '"/tmp/x"', /identMaps/],
  ])('refused: %j', (props, prop, value, fix) => expectRefused(props as Props, prop, value, fix));
});
