import { readFileSync } from 'fs';
import { join } from 'path';
import { parse } from 'yaml';
import { BackupRepository, ChangeImpact, PostgresStatefulCluster, PostgresStatefulClusterProps, SynchronousReplication, TlsProtocolVersion } from '../lib';
import { escapeRegExp, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { findObject, synthObjects, testChart } from './support/synth';
import { POSTGRES_14_CATALOG } from '../lib/core/catalogs/postgres-14';
import { POSTGRES_15_CATALOG } from '../lib/core/catalogs/postgres-15';
import { POSTGRES_16_CATALOG } from '../lib/core/catalogs/postgres-16';
import { POSTGRES_17_CATALOG } from '../lib/core/catalogs/postgres-17';
import { POSTGRES_18_CATALOG } from '../lib/core/catalogs/postgres-18';
import { PostgresCatalog } from '../lib/core/catalogs/postgres-catalog';
import { ParameterContext } from '../lib/core/parameter-context';
import { DEFAULT_POSTGRES_MAJOR, postgresMajors, postgresVersion } from '../lib/core/postgres-versions';
import { MINOR_RELEASE_PARAMETERS, REMOVED_PARAMETERS } from '../lib/core/removed-parameters';
import { checkSettingValue, gucSyntax } from '../lib/core/setting-values';
import { classifySettingChange, ClusterMode } from '../lib/testing/change-impact/classify-setting';
import { parseArguments } from '../lib/testing/change-impact/cli';

type Props = Partial<PostgresStatefulClusterProps>;

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};
const CATALOGS: { [major: number]: PostgresCatalog } = {
  14: POSTGRES_14_CATALOG, 15: POSTGRES_15_CATALOG, 16: POSTGRES_16_CATALOG, 17: POSTGRES_17_CATALOG, 18: POSTGRES_18_CATALOG,
};
const MAJORS = postgresMajors();

function synth(props: Props = {}): any[] {
  const chart = testChart();
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
  return synthObjects(chart);
}

function errorMessage(props: Props): string {
  return thrownMessage(() => synth(props), JSON.stringify(props));
}

/** The images of the cluster's StatefulSets' containers and init containers. */
function images(objects: any[]): string[] {
  return objects.filter((o) => o.kind === 'StatefulSet').flatMap((o) => [
    ...o.spec.template.spec.containers, ...(o.spec.template.spec.initContainers ?? []),
  ].map((c: any) => c.image));
}

/** The names postgresql.conf takes in a catalog. */
function fileNames(catalog: PostgresCatalog): string[] {
  return Object.keys(catalog.settings).filter((name) => catalog.settings[name].inFile);
}

describe('postgresVersion', () => {
  test('the library supports the majors 14 to 18', () => {
    expect(MAJORS).toEqual([14, 15, 16, 17, 18]);
    expect(MAJORS).toContain(DEFAULT_POSTGRES_MAJOR);
  });

  test.each([13, 19, 15.5, Number.NaN, -1])('refuses %p, naming the supported majors', (major) => {
    const message = errorMessage({ postgresVersion: major });
    expectPropErrorMessage(message, 'test/Db', { prop: 'postgresVersion', value: String(major), fix: /give one of 14, 15, 16, 17, 18/ });
    expect(message).toContain('is not a PostgreSQL major the library supports (14, 15, 16, 17, 18)');
  });

  test.each(MAJORS)('PostgreSQL %i: both modes default to images of the same release of that major', (major) => {
    const { release } = postgresVersion(major);
    expect(release).toMatch(new RegExp(`^${major}\\.[0-9]+$`));
    const plain = images(synth({ postgresVersion: major }));
    expect(plain.length).toBeGreaterThan(1);
    for (const image of plain) expect(image).toBe(`postgres:${release}-bookworm`);
    const ha = images(synth({ postgresVersion: major, highAvailability: {} }));
    expect(ha).toContain(`percona/percona-distribution-postgresql:${release}-1`);
    // The certificate init step runs the plain image, which has openssl; the rest the HA image.
    for (const image of ha) expect([`percona/percona-distribution-postgresql:${release}-1`, `postgres:${release}-bookworm`]).toContain(image);
  });

  test('the HA mode runs Percona\'s image as its uid, the plain mode the official image as its', () => {
    const uid = (objects: any[]) => objects.find((o) => o.kind === 'StatefulSet').spec.template.spec.securityContext.runAsUser;
    expect(uid(synth({ postgresVersion: 18, highAvailability: {} }))).toBe(26);
    expect(uid(synth({ postgresVersion: 14 }))).toBe(999);
  });
});

describe('per-major catalogs', () => {
  test.each(MAJORS)('PostgreSQL %i: generated from a server of that major, with a context and a type for every parameter', (major) => {
    const version = postgresVersion(major);
    expect(version.server).toMatch(new RegExp(`^PostgreSQL ${major}\\.[0-9]+ `));
    expect(version.parameters.size).toBeGreaterThan(290);
    for (const name of version.parameters) {
      expect(name).toBe(name.toLowerCase());
      expect(version.contexts[name]).toBeDefined();
      expect(version.parameterTypes[name]).toBeDefined();
    }
    expect(Object.keys(version.contexts).sort()).toEqual(Object.keys(version.parameterTypes).sort());
    expect(version.configurationDocs).toBe(`https://www.postgresql.org/docs/${major}/runtime-config.html`);
  });

  test('each major adds parameters the one before lacks', () => {
    for (const [older, newer, added] of [[14, 15, 'recovery_prefetch'], [15, 16, 'reserved_connections'], [16, 17, 'transaction_timeout'], [17, 18, 'io_method']] as const) {
      expect(postgresVersion(older).parameters.has(added)).toBe(false);
      expect(postgresVersion(newer).parameters.has(added)).toBe(true);
    }
  });

  test('every parameter a major\'s postgresql.conf took and a later major lacks is in the removed table, at the first major without it', () => {
    const derived: { [name: string]: number } = {};
    for (const older of MAJORS) {
      for (const name of fileNames(CATALOGS[older])) {
        if (name in MINOR_RELEASE_PARAMETERS) continue;
        const gone = MAJORS.find((major) => major > older && !(name in CATALOGS[major].settings));
        if (gone !== undefined) derived[name] = gone;
      }
    }
    expect(Object.fromEntries(Object.entries(REMOVED_PARAMETERS).map(([name, entry]) => [name, entry.removedIn]))).toEqual(derived);
    for (const entry of Object.values(REMOVED_PARAMETERS)) {
      if (entry.renamedTo) expect(postgresVersion(entry.removedIn).parameters.has(entry.renamedTo)).toBe(true);
    }
  });

  test('the parameters of some releases only are in some catalogs, whatever the major, and no cluster may set them', () => {
    for (const name of Object.keys(MINOR_RELEASE_PARAMETERS)) {
      const having = MAJORS.filter((major) => CATALOGS[major].settings[name]?.inFile);
      expect(having.length).toBeGreaterThan(0);
      expect(having.length).toBeLessThan(MAJORS.length);
      for (const major of MAJORS) expect(postgresVersion(major).parameters.has(name)).toBe(false);
    }
  });
});

describe('parameters of other majors', () => {
  const removedCases = MAJORS.flatMap((major) => Object.entries(REMOVED_PARAMETERS)
    .filter(([name, entry]) => major >= entry.removedIn && !name.startsWith('ssl_'))
    .map(([name, entry]) => [major, name, entry.removedIn, entry.fix] as const));

  test.each(removedCases)('PostgreSQL %i refuses %s, removed in %i, naming what to do instead', (major, name, removedIn, fix) => {
    const message = errorMessage({ postgresVersion: major, extraParameters: { [name]: 'on' } });
    expectPropErrorMessage(message, 'test/Db', { prop: 'extraParameters', value: `"${name}"`, fix: new RegExp(escapeRegExp(fix)) });
    expect(message).toContain(`"${name}" was removed in PostgreSQL ${removedIn}; `);
  });

  test('the majors before a removal still take the parameter', () => {
    for (const [name, entry] of Object.entries(REMOVED_PARAMETERS)) {
      if (name.startsWith('ssl_')) continue;
      const last = entry.removedIn - 1;
      if (!postgresVersion(last).parameters.has(name)) continue; // trace_recovery_messages: a developer option in 15 and 16
      expect(() => synth({ postgresVersion: last, extraParameters: { [name]: postgresVersion(last).parameterTypes[name].kind === 'bool' ? 'on' : '1' } })).not.toThrow();
    }
    expect(() => synth({ postgresVersion: 15, extraParameters: { vacuum_defer_cleanup_age: '10' } })).not.toThrow();
  });

  test.each([
    [14, 'recovery_prefetch', 15], [15, 'reserved_connections', 16], [14, 'reserved_connections', 16],
    [16, 'transaction_timeout', 17], [17, 'io_method', 18],
  ])('PostgreSQL %i refuses %s, naming the major that added it', (major, name, addedIn) => {
    const message = errorMessage({ postgresVersion: major, extraParameters: { [name]: '1' } });
    expectPropErrorMessage(message, 'test/Db', { prop: 'extraParameters', value: `"${name}"`, fix: new RegExp(`set postgresVersion to ${addedIn} or later`) });
    expect(message).toContain(`is not a PostgreSQL ${major} parameter: PostgreSQL ${addedIn} added it;`);
  });

  test('a parameter only newer minor releases know is refused with why', () => {
    const message = errorMessage({ postgresVersion: 17, extraParameters: { output_plugin_libraries: 'pgoutput' } });
    expect(message).toContain('is unknown to PostgreSQL 17.10, the default images\' release (added by the minor releases of November 2026');
  });

  test('a misspelling still points at the manual of the cluster\'s major', () => {
    const message = errorMessage({ postgresVersion: 16, extraParameters: { max_conections: '1' } });
    expect(message).toContain('is not a PostgreSQL 16 parameter; check the spelling against https://www.postgresql.org/docs/16/runtime-config.html');
  });
});

/** `name = value` lines of a postgresql.conf, values unquoted. */
function confSettings(text: string): [string, string][] {
  return text.split('\n').filter((line) => /^[a-z_.]+ = /.test(line)).map((line) => {
    const [, name, value] = /^([a-z_.]+) = (.*)$/.exec(line)!;
    return [name, value.startsWith('\'') ? value.slice(1, -1).replace(/''/g, '\'') : value];
  });
}

/** The parameters patroni.yml gives PostgreSQL, the local ones and bootstrap.dcs's; YAML booleans as Patroni writes them, on or off. */
function patroniSettings(text: string): [string, string][] {
  const yml = parse(text);
  const written = (value: unknown) => (typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value));
  return [yml.postgresql.parameters, yml.bootstrap.dcs.postgresql.parameters]
    .flatMap((parameters) => Object.entries(parameters).map(([name, value]) => [name, written(value)] as [string, string]));
}

const BACKUP = { repositories: [BackupRepository.volume()] };
const TLS = { secretName: 'db-tls', minimumProtocolVersion: TlsProtocolVersion.TLS_1_3 };
const VARIANTS: [string, Props][] = [
  ['plain, defaults', {}],
  ['plain, one instance, no TLS', { instances: 1, tls: { disabled: true } }],
  ['plain, synchronous, backup, every typed setting', {
    instances: 3, synchronousReplication: SynchronousReplication.any(1), backup: BACKUP, tls: TLS, image: 'example/postgres-pgbackrest:1',
    settings: { hotStandbyFeedback: true, sharedPreloadLibraries: ['pg_stat_statements'], walKeepSize: '1GB' },
  }],
  ['HA, defaults', { highAvailability: {} }],
  ['HA, synchronous, backup', { highAvailability: { synchronousMode: true }, backup: BACKUP, tls: TLS }],
];

/** Patroni's parameters and the server version ranges it passes each for. */
const PATRONI_PARAMETERS: { [name: string]: { version_from: number; version_till?: number }[] } = parse(
  readFileSync(join(__dirname, 'fixtures', 'patroni', 'available-parameters.yml'), 'utf8')).parameters;

describe('what the library renders, on every major', () => {
  test.each(MAJORS.flatMap((major) => VARIANTS.map(([what, props]) => [major, what, props] as const)))(
    'PostgreSQL %i, %s: every rendered parameter is one of that major, with a value it takes', (major, _what, props) => {
      const version = postgresVersion(major);
      const objects = synth({ ...props, postgresVersion: major });
      const patroni = objects.find((o) => o.kind === 'ConfigMap' && o.data['patroni.yml']);
      const settings = patroni ? patroniSettings(patroni.data['patroni.yml'])
        : confSettings(findObject(objects, 'ConfigMap', 'db-config').data['postgresql.conf']);
      expect(settings.length).toBeGreaterThan(15);
      const scope = testChart();
      for (const [name, value] of settings) {
        if (name.includes('.')) continue; // an extension's, such as pg_stat_statements.track
        expect(`${name}: ${version.parameters.has(name)}`).toBe(`${name}: true`);
        expect(() => checkSettingValue(scope, name, value, version.parameterTypes[name], gucSyntax(`PostgreSQL ${major}`))).not.toThrow();
        if (patroni) {
          // Patroni validates and converts each parameter by its list for the server's version (one
          // missing there passes unchecked when the server has it, since Patroni 3.0.3; else it is dropped).
          const number = major * 10000 + Number(version.release.split('.')[1]);
          const known = (PATRONI_PARAMETERS[name] ?? [])
            .some((range) => range.version_from <= number && (range.version_till == null || number < range.version_till));
          expect(`${name}: ${known}`).toBe(`${name}: true`);
        }
      }
    });
});

describe('reserved_connections (PostgreSQL 16 and later) in the connection budget', () => {
  const budget = (reserved: string) => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', {
      ...SECRETS,
      postgresVersion: 16,
      settings: { maxConnections: 20, superuserReservedConnections: 3 },
      extraParameters: { reserved_connections: reserved },
    });
    return { chart, cluster };
  };

  test('the consumers\' roles fit in what both reserves leave', () => {
    const { chart, cluster } = budget('5');
    // 11 and the settings agent's 1 take the 12 left.
    cluster.addConnectionDemand({ consumer: 'app', primary: 11, replica: 0 });
    expect(() => synthObjects(chart)).not.toThrow();
    expect(cluster.connectionBudgetReport()).toContain('max_connections 20 - superuser_reserved_connections 3 - reserved_connections 5 = 12 per instance');
    cluster.addConnectionDemand({ consumer: 'more', primary: 1, replica: 0 });
    expect(() => synthObjects(chart)).toThrow(
      /leaves 12 connections for ordinary roles \(superuser_reserved_connections 3, reserved_connections 5\)[^]*raise settings\.maxConnections to 21 or more/);
  });

  test('reserves that take every slot are refused, as the server would refuse to start', () => {
    const message = thrownMessage(() => synthObjects(budget('17').chart), 'reserves of 20');
    expectPropErrorMessage(message, 'test/Db', { prop: 'extraParameters.reserved_connections', value: '"17"', fix: /keep both reserves below settings\.maxConnections/ });
  });
});

describe('the change impact report reads the cluster\'s major', () => {
  test('--postgres-major names a supported major, or the command line is refused', () => {
    expect(parseArguments(['--before', 'a', '--after', 'b', '--postgres-major', '16']).postgresMajor).toBe(16);
    expect(parseArguments(['--before', 'a', '--after', 'b']).postgresMajor).toBeUndefined();
    expect(() => parseArguments(['--before', 'a', '--after', 'b', '--postgres-major', '13'])).toThrow(
      'cdk8s-postgres-impact: --postgres-major "13" is not a PostgreSQL major the library supports; use one of 14, 15, 16, 17, 18');
    expect(() => ChangeImpact.compare('', '', { postgresMajor: 19 })).toThrow(/postgresMajor 19 is not a PostgreSQL major the library supports/);
  });

  test('a setting only a newer major has is classified by that major\'s context', () => {
    expect(classifySettingChange('io_method', 'worker', 'sync', ClusterMode.PLAIN, 18).context).toBe(ParameterContext.POSTMASTER);
    expect(classifySettingChange('io_method', 'worker', 'sync', ClusterMode.PLAIN, 17).context).toBeUndefined();
  });
});
