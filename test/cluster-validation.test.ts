import { Duration } from 'cdk8s';
import * as fc from 'fast-check';
import {
  PodPlacement, PostgresStatefulCluster, PostgresStatefulClusterProps, SynchronousReplication, TaintEffect, TolerationOperator,
} from '../lib';
import { describeWorkloadProps } from './support/common-props';
import { validateManifests } from './support/kube-schema';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { synthObjects, testChart } from './support/synth';

type Props = Partial<PostgresStatefulClusterProps>;

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};

/** Synthesizes a cluster `Db` in chart `test` (path `test/Db`) and returns its objects. */
function synth(props: Props = {}): any[] {
  const chart = testChart();
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
  return synthObjects(chart);
}

/** The message of the error synthesizing these props throws; fails the test when none is thrown. */
function errorMessage(props: Props): string {
  return thrownMessage(() => synth(props), JSON.stringify(props));
}

/** Asserts the error names the construct path, the prop, the bad value and a fix. */
function expectPropError(props: Props, expected: ExpectedPropError): void {
  expectPropErrorMessage(errorMessage(props), 'test/Db', expected);
}

/** Asserts the props synthesize into objects the v1.27 API server schema accepts. */
function expectValid(props: Props): any[] {
  const objects = synth(props);
  expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  return objects;
}

const nameOfLength = (length: number) => 'd'.repeat(length);

describe('instances', () => {
  test.each([
    [0, '0'],
    [-1, '-1'],
    [1.5, '1.5'],
    [101, '101'],
  ])('rejects %p', (instances, shown) => {
    expectPropError({ instances }, { prop: 'instances', value: shown, fix: /whole number from 1 to 100/ });
  });

  test.each([1, 2, 100])('accepts %p', (instances) => {
    expectValid({ instances });
  });

  // Errors describe the bad value; JSON.stringify would print NaN as "null".
  test('names NaN as NaN, not as null', () => {
    expectPropError({ instances: NaN }, { prop: 'instances', value: 'NaN', fix: /whole number from 1 to 100/ });
  });
});

describe('name', () => {
  test.each([
    ['upper case', 'MyDb'],
    ['an underscore', 'my_db'],
    ['a leading dash', '-db'],
    ['a trailing dash', 'db-'],
    ['a dot', 'my.db'],
    ['nothing', ''],
  ])('rejects a name with %s', (_what, name) => {
    expectPropError({ name }, { prop: 'name', value: JSON.stringify(name), fix: /lower-case letters, digits and "-"/ });
  });

  test('accepts 44 characters, which make a 52-character replica StatefulSet name', () => {
    const name = nameOfLength(44);
    const objects = expectValid({ name });
    const replica = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === `${name}-replica`);
    expect(replica.metadata.name).toHaveLength(52);
  });

  test('rejects 45 characters, explaining the replica StatefulSet limit', () => {
    const name = nameOfLength(45);
    expectPropError({ name }, { prop: 'name', value: JSON.stringify(name), fix: /at most 44 characters/ });
    expect(errorMessage({ name })).toMatch(/-replica.*52/);
  });

  // The name is checked as a Service name: Service names (`<name>-rw`) must be DNS-1035
  // labels, which start with a letter, not only DNS-1123 labels: the API server rejects
  // Service "1db-rw".
  test('rejects a name starting with a digit, which Service names may not', () => {
    expectPropError({ name: '1db' }, { prop: 'name', value: '"1db"', fix: /letter/ });
  });
});

describe('resource and storage quantities', () => {
  const quantityProps: Array<[string, (value: string) => Props]> = [
    ['resources.cpuRequest', (v) => ({ resources: { cpuRequest: v } })],
    ['resources.cpuLimit', (v) => ({ resources: { cpuLimit: v } })],
    ['resources.memoryRequest', (v) => ({ resources: { memoryRequest: v } })],
    ['storage.size', (v) => ({ storage: { size: v } })],
    ['storage.walSize', (v) => ({ storage: { walSize: v } })],
  ];
  const cases = quantityProps.flatMap(([prop, make]) =>
    ['1GB', 'lots', '-1Gi', ''].map((bad) => [prop, bad, make] as const));

  test.each(cases)('rejects %s %p', (prop, bad, make) => {
    expectPropError(make(bad), { prop, value: JSON.stringify(bad), fix: /"512Mi"/ });
  });

  test.each(['1GB', 'lots', '-1Gi', ''])('rejects resources.memoryLimit %p with an explicit memoryRequest', (bad) => {
    expectPropError({ resources: { memoryRequest: '512Mi', memoryLimit: bad } }, {
      prop: 'resources.memoryLimit', value: JSON.stringify(bad), fix: /"512Mi"/,
    });
  });

  // memoryRequest defaults to the limit; a malformed memoryLimit is reported as
  // resources.memoryLimit, not as resources.memoryRequest, a prop the user did not set.
  test('names resources.memoryLimit when only a malformed memoryLimit is set', () => {
    expectPropError({ resources: { memoryLimit: 'lots' } }, { prop: 'resources.memoryLimit', value: '"lots"', fix: /"512Mi"/ });
  });

  test('rejects a CPU request above the CPU limit', () => {
    expectPropError({ resources: { cpuRequest: '2', cpuLimit: '1' } }, {
      prop: 'resources.cpuRequest', value: '"2"', fix: /lower resources\.cpuRequest or raise resources\.cpuLimit/,
    });
  });

  test('rejects a memory request above the memory limit', () => {
    expectPropError({ resources: { memoryRequest: '2Gi', memoryLimit: '1Gi' } }, {
      prop: 'resources.memoryRequest', value: '"2Gi"', fix: /raise resources\.memoryLimit/,
    });
  });

  test('rejects a memory limit below 256Mi', () => {
    expectPropError({ resources: { memoryLimit: '255Mi' } }, {
      prop: 'resources.memoryLimit', value: '"255Mi"', fix: /at least "256Mi"/,
    });
  });

  test('accepts a memory limit of exactly 256Mi', () => {
    expectValid({ resources: { memoryLimit: '256Mi' } });
  });

  test('rejects a StorageClass for the WAL volume without a WAL volume', () => {
    expectPropError({ storage: { walStorageClassName: 'fast' } }, {
      prop: 'storage.walStorageClassName', value: '"fast"', fix: /set storage\.walSize/,
    });
  });

  test('rejects a StorageClass name with upper case', () => {
    expectPropError({ storage: { storageClassName: 'Fast' } }, {
      prop: 'storage.storageClassName', value: '"Fast"', fix: /lower-case/,
    });
  });

  // StorageClass names are checked as DNS-1123 subdomains, not labels: "fast.ssd" is a valid
  // StorageClass name.
  test('accepts a StorageClass name with a dot', () => {
    expectValid({ storage: { storageClassName: 'fast.ssd' } });
  });
});

describe('PostgreSQL memory settings', () => {
  test('rejects shared_buffers equal to the memory limit', () => {
    expectPropError({ resources: { memoryLimit: '1Gi' }, settings: { sharedBuffers: '1GB' } }, {
      prop: 'settings.sharedBuffers', value: '"1GB"', fix: /lower settings\.sharedBuffers|raise resources\.memoryLimit/,
    });
  });

  test('rejects shared_buffers above the memory limit', () => {
    expectPropError({ resources: { memoryLimit: '1Gi' }, settings: { sharedBuffers: '2048MB' } }, {
      prop: 'settings.sharedBuffers', value: '"2048MB"', fix: /raise resources\.memoryLimit/,
    });
  });

  test('rejects a Kubernetes unit for shared_buffers', () => {
    expectPropError({ settings: { sharedBuffers: '256Mi' } }, {
      prop: 'settings.sharedBuffers', value: '"256Mi"', fix: /kB, MB, GB or TB/,
    });
  });

  test.each([
    ['effectiveCacheSize', 'settings.effectiveCacheSize'],
    ['workMem', 'settings.workMem'],
    ['maintenanceWorkMem', 'settings.maintenanceWorkMem'],
    ['maxSlotWalKeepSize', 'settings.maxSlotWalKeepSize'],
    ['walKeepSize', 'settings.walKeepSize'],
  ])('rejects a malformed %s', (setting, prop) => {
    expectPropError({ settings: { [setting]: '64mb' } }, { prop, value: '"64mb"', fix: /kB, MB, GB or TB/ });
  });

  // PostgreSQL keeps each in a C int of its unit and refuses to start past it (checked with postgres -C).
  const conf = (objects: any[]) => objects.find((o) => o.kind === 'ConfigMap' && o.data?.['postgresql.conf']).data['postgresql.conf'];
  test('derives no default past PostgreSQL\'s maximum from a 32Ti memory limit: shared_buffers stops at INT_MAX / 2 buffers', () => {
    const text = conf(expectValid({ resources: { memoryLimit: '32Ti' } }));
    expect(text).toContain("shared_buffers = '8589934584kB'");
    expect(text).toContain("effective_cache_size = '17179869176kB'");
    expect(text).toContain("maintenance_work_mem = '2147483647kB'");
  });

  test.each([
    ['sharedBuffers', '9TB', /from 128kB to 8589934584kB/],
    ['sharedBuffers', '64kB', /from 128kB/],
    ['effectiveCacheSize', '16TB', /to 17179869176kB/],
    ['workMem', '32kB', /from 64kB to 2147483647kB/],
    ['workMem', '2TB', /to 2147483647kB/],
    ['maxSlotWalKeepSize', '2048TB', /to 2147483647MB/],
    ['walKeepSize', '2048TB', /to 2147483647MB/],
  ])('refuses %s %s, outside what PostgreSQL accepts', (setting, value, fix) => {
    const message = errorMessage({ resources: { memoryLimit: '64Ti' }, settings: { [setting]: value } });
    expectPropErrorMessage(message, 'test/Db', { prop: `settings.${setting}`, value: JSON.stringify(value), fix });
    expect(message).toMatch(/outside the range PostgreSQL accepts/);
  });

  test('the ranges are the major\'s: PostgreSQL 17 takes a maintenanceWorkMem from 64kB, 15 from 1MB', () => {
    expect(conf(expectValid({ postgresVersion: 17, settings: { maintenanceWorkMem: '512kB' } }))).toContain("maintenance_work_mem = '512kB'");
    expectPropError({ postgresVersion: 17, settings: { maintenanceWorkMem: '32kB' } }, { prop: 'settings.maintenanceWorkMem', value: '"32kB"', fix: /from 64kB/ });
    expectPropError({ postgresVersion: 15, settings: { maintenanceWorkMem: '512kB' } }, { prop: 'settings.maintenanceWorkMem', value: '"512kB"', fix: /from 1MB/ });
  });
});

describe('connections and WAL senders', () => {
  test('rejects maxWalSenders below instances + 1', () => {
    expectPropError({ instances: 3, settings: { maxWalSenders: 3 } }, {
      prop: 'settings.maxWalSenders', value: '3', fix: /set it to 4 or more/,
    });
  });

  test('accepts maxWalSenders of instances + 1', () => {
    expectValid({ instances: 3, settings: { maxWalSenders: 4 } });
  });

  test('rejects maxReplicationSlots below instances - 1', () => {
    expectPropError({ instances: 3, settings: { maxReplicationSlots: 1 } }, {
      prop: 'settings.maxReplicationSlots', value: '1', fix: /set it to 2 or more/,
    });
  });

  test('accepts maxReplicationSlots of instances - 1', () => {
    expectValid({ instances: 3, settings: { maxReplicationSlots: 2 } });
  });

  test('rejects superuserReservedConnections equal to maxConnections', () => {
    expectPropError({ settings: { maxConnections: 10, superuserReservedConnections: 10 } }, {
      prop: 'settings.superuserReservedConnections', value: '10', fix: /smaller than settings\.maxConnections/,
    });
  });

  test.each([0, 2.5, 262144])('rejects maxConnections %p', (maxConnections) => {
    expectPropError({ settings: { maxConnections } }, {
      prop: 'settings.maxConnections', value: String(maxConnections), fix: /whole number from 1 to 262143/,
    });
  });
});

describe('extraParameters', () => {
  test('rejects a misspelt parameter name', () => {
    expectPropError({ extraParameters: { max_conections: '200' } }, {
      prop: 'extraParameters', value: '"max_conections"', fix: /check the spelling/,
    });
  });

  test.each([
    ['port', /use port/],
    ['listen_addresses', /use allowedCidrs/],
    ['synchronous_standby_names', /use synchronousReplication/],
  ])('rejects the managed parameter %s', (name, fix) => {
    expectPropError({ extraParameters: { [name]: 'x' } }, { prop: `extraParameters.${name}`, value: '"x"', fix });
  });

  // Rendered after the construct's lines, they would win: what carries security or durability is a typed prop or nothing.
  test.each([
    ['ssl_min_protocol_version', 'TLSv1', /carries|set by/, /use tls\.minimumProtocolVersion$/],
    ['ssl_max_protocol_version', 'TLSv1.2', /older|newer/, /use tls\.minimumProtocolVersion$/],
    ['ssl_ciphers', 'ALL:eNULL', /carries the TLS the construct secures/, /use tls \(tls\.minimumProtocolVersion TLS_1_3/],
    ['ssl_passphrase_command', 'cat /tmp/pw', /carries the TLS/, /use tls/],
    ['ssl_prefer_server_ciphers', 'off', /carries the TLS/, /use tls/],
    ['ssl', 'off', /set by the construct/, /use tls$/],
    ['archive_library', 'basic_archive', /silently replace the archive_command of backup/, /use backup/],
    ['archive_mode', 'off', /set by the construct/, /use backup/],
    ['archive_command', '/bin/true', /set by the construct/, /use backup/],
    ['restore_command', 'cp /x %p', /set by the construct/, /use backup \(replicas fetch from its repositories .*, and backup\.restore recovers from one\)$/],
    ['archive_cleanup_command', 'rm -rf /', /set by the construct/, /expires archived WAL/],
    ['password_encryption', 'md5', /set by the construct/, /scram-sha-256/],
    ['krb_server_keyfile', '/tmp/k', /Kerberos/, /scram-sha-256 passwords/],
    ['ident_file', '/tmp/i', /set by the construct/, /use identMaps$/],
    ['data_directory', '/tmp', /set by the construct/, /use storage$/],
    ['config_file', '/tmp/c', /set by the construct/, /extraParameters/],
    ['logging_collector', 'on', /away from stderr/, /logAnalysis/],
    ['log_destination', 'csvlog', /away from stderr/, /logAnalysis/],
    ['log_directory', '/tmp', /away from stderr/, /logAnalysis/],
    ['log_filename', 'x.log', /away from stderr/, /logAnalysis/],
    ['log_file_mode', '0644', /away from stderr/, /logAnalysis/],
    ['unix_socket_permissions', '0777', /set by the construct/, /socket path/],
    ['unix_socket_group', 'x', /set by the construct/, /socket path/],
    ['fsync', 'off', /crash/, /use settings\.synchronousCommit SynchronousCommit\.OFF/],
    ['full_page_writes', 'off', /crash/, /use settings\.synchronousCommit SynchronousCommit\.OFF/],
  ])('refuses %s = %s, naming the prop to use', (name, value, problem, fix) => {
    const message = errorMessage({ extraParameters: { [name]: value } });
    expectPropErrorMessage(message, 'test/Db', { prop: `extraParameters.${name}`, value: JSON.stringify(value), fix });
    expect(message.slice(0, message.indexOf(';'))).toMatch(problem);
  });

  test('refuses upper-case spellings of a reserved parameter too (PostgreSQL folds names)', () => {
    expectPropError({ extraParameters: { SSL_Ciphers: 'ALL' } }, { prop: 'extraParameters.SSL_Ciphers', value: '"ALL"', fix: /use tls/ });
  });

  test('points a parameter with a typed prop to that prop', () => {
    expectPropError({ extraParameters: { max_connections: '200' } }, {
      prop: 'extraParameters.max_connections', value: '"200"', fix: /use settings\.maxConnections/,
    });
  });

  test('rejects a value with a line break', () => {
    expectPropError({ extraParameters: { log_min_duration_statement: '250\nport = 1' } }, {
      prop: 'extraParameters.log_min_duration_statement', value: '"250\\nport = 1"', fix: /single-line value/,
    });
  });

  test('accepts an extension parameter with a dot', () => {
    expectValid({ extraParameters: { 'pg_stat_statements.max': '10000' } });
  });

  // The managed and typed parameters are looked up without Object.prototype's members, so
  // "constructor" or "to_string" is an unknown parameter, not a typed or managed one.
  test.each(['constructor', 'to_string'])('reports %s as unknown, not as typed or managed', (name) => {
    const message = errorMessage({ extraParameters: { [name]: '1' } });
    expect(message).toMatch(/is not a PostgreSQL 17 parameter; check the spelling/);
    expect(message).toContain(JSON.stringify(name));
  });

  // A name with a dot is an extension's parameter, but one with a line break would write a
  // broken line into postgresql.conf and PostgreSQL would refuse to start: it is refused.
  test('rejects an extension parameter name with a line break', () => {
    const name = 'pg_stat_statements.max\nport';
    expectPropError({ extraParameters: { [name]: '1' } }, { prop: 'extraParameters', value: JSON.stringify(name), fix: /./ });
  });
});

describe('synchronousReplication', () => {
  test('rejects it with a single instance', () => {
    expectPropError({ instances: 1, synchronousReplication: SynchronousReplication.any(1) }, {
      prop: 'synchronousReplication', value: '"ANY 1"', fix: /set instances to 2 or more/,
    });
  });

  test('rejects a count of 0', () => {
    expectPropError({ instances: 3, synchronousReplication: SynchronousReplication.any(0) }, {
      prop: 'synchronousReplication.count', value: '0', fix: /from 1 to 2/,
    });
  });

  test('rejects a count above the number of replicas', () => {
    expectPropError({ instances: 3, synchronousReplication: SynchronousReplication.first(3) }, {
      prop: 'synchronousReplication.count', value: '3', fix: /from 1 to 2/,
    });
  });

  test('accepts a count equal to the number of replicas', () => {
    expectValid({ instances: 3, synchronousReplication: SynchronousReplication.first(2) });
  });
});

describe('Secrets', () => {
  test.each([
    ['superuserSecret', 'Pg_Superuser'],
    ['superuserSecret', ''],
    ['replicationSecret', '-replication'],
  ] as const)('rejects %s name %p', (prop, secretName) => {
    expectPropError({ [prop]: { secretName } }, {
      prop: `${prop}.secretName`, value: JSON.stringify(secretName), fix: /name of an existing Secret/,
    });
  });

  test.each([
    ['usernameKey', 'user name'],
    ['passwordKey', 'pass/word'],
    ['passwordKey', ''],
  ] as const)('rejects %s %p', (key, value) => {
    expectPropError({ replicationSecret: { secretName: 'pg-replication', [key]: value } }, {
      prop: `replicationSecret.${key}`, value: JSON.stringify(value), fix: /letters, digits/,
    });
  });

  test('rejects a bad database owner Secret name', () => {
    expectPropError({ databases: [{ name: 'orders', owner: { secretName: 'Orders_Owner' } }] }, {
      prop: 'databases[0].owner.secretName', value: '"Orders_Owner"', fix: /name of an existing Secret/,
    });
  });
});

describe('databases', () => {
  const owner = { secretName: 'orders-owner' };

  test('rejects a name with upper case', () => {
    expectPropError({ databases: [{ name: 'Orders', owner }] }, {
      prop: 'databases[0].name', value: '"Orders"', fix: /lower-case letters, digits and "_"/,
    });
  });

  test.each(['template0', 'template1'])('rejects the existing database %s', (name) => {
    expectPropError({ databases: [{ name, owner }] }, {
      prop: 'databases[0].name', value: JSON.stringify(name), fix: /choose another database name/,
    });
  });

  test('rejects an owner for postgres, which is declared for its extensions only', () => {
    expectPropError({ databases: [{ name: 'postgres', owner }] }, {
      prop: 'databases[0].owner', value: '"orders-owner"', fix: /declare only its extensions/,
    });
  });

  test('rejects a duplicate, naming the second one', () => {
    expectPropError({ databases: [{ name: 'orders', owner }, { name: 'orders', owner }] }, {
      prop: 'databases[1].name', value: '"orders"', fix: /choose another database name/,
    });
  });
});

test('refuses the superuser\'s Secret as the replication role\'s', () => {
  expectPropError({ replicationSecret: { secretName: SECRETS.superuserSecret.secretName, usernameKey: 'user' } }, {
    prop: 'replicationSecret.secretName', value: JSON.stringify(SECRETS.superuserSecret.secretName), fix: /a Secret of its own/,
  });
});

describe('allowedCidrs', () => {
  test.each(['10.0.0.0', '10.0.0.0/33', '256.0.0.0/8', 'fd00::/129', 'everyone', ''])('rejects %p', (cidr) => {
    expectPropError({ allowedCidrs: ['10.0.0.0/8', cidr] }, {
      prop: 'allowedCidrs', value: JSON.stringify(cidr), fix: /"10\.0\.0\.0\/8"/,
    });
  });

  test('rejects an IPv6 network with a zone id, which would stop PostgreSQL at start', () => {
    expectPropError({ allowedCidrs: ['fe80::%eth0/10'] }, { prop: 'allowedCidrs', value: '"fe80::%eth0/10"', fix: /drop the "%\.\.\." part/ });
  });

  test('rejects an empty list', () => {
    expectPropError({ allowedCidrs: [] }, { prop: 'allowedCidrs', value: '[]', fix: /list at least the pod network/ });
  });

  test('accepts IPv4 and IPv6 networks', () => {
    expectValid({ allowedCidrs: ['10.0.0.0/8', '192.168.1.0/24', 'fd00::/8', '::1/128'] });
  });

  // An IPv6 network must be a well-formed address, not just hex digits, colons and dots:
  // PostgreSQL cannot load a pg_hba.conf with a malformed one and refuses to start.
  test.each(['fd00::1::2/64', ':/0'])('rejects the malformed IPv6 network %p', (cidr) => {
    expectPropError({ allowedCidrs: [cidr] }, { prop: 'allowedCidrs', value: JSON.stringify(cidr), fix: /"fd00::\/8"/ });
  });
});

describe('terminationGracePeriod', () => {
  test('rejects less than 10 seconds', () => {
    expectPropError({ terminationGracePeriod: Duration.seconds(9) }, {
      prop: 'terminationGracePeriod', value: '9', fix: /whole number from 10 to 3600/,
    });
  });

  test('accepts 10 seconds', () => {
    expectValid({ terminationGracePeriod: Duration.seconds(10) });
  });

  // cdk8s' own conversions throw errors that name neither the construct nor the prop.
  test.each([[Duration.millis(15500), '15500'], [Duration.millis(15000.5), '15000.5'], [Duration.seconds(15.0005), '15000.5']])(
    'rejects a fraction of a second with a prop error: %p', (terminationGracePeriod, shown) => {
      expectPropError({ terminationGracePeriod }, { prop: 'terminationGracePeriod', value: shown, fix: /whole number/ });
    });
});

describe('port, runAsUser and image', () => {
  test.each([0, 70000, 5432.5])('rejects port %p', (port) => {
    expectPropError({ port }, { prop: 'port', value: String(port), fix: /whole number from 1 to 65535/ });
  });

  test('rejects runAsUser 0 (root)', () => {
    expectPropError({ runAsUser: 0 }, { prop: 'runAsUser', value: '0', fix: /whole number from 1/ });
  });

  test('rejects an image reference with a space', () => {
    expectPropError({ image: 'postgres: 15' }, { prop: 'image', value: '"postgres: 15"', fix: /postgres:17\.10-bookworm/ });
  });
});

describe('partOf', () => {
  test('rejects a partOf that is not a valid label value', () => {
    expectPropError({ partOf: 'My App!' }, { prop: 'partOf', value: '"My App!"', fix: /letters, digits/ });
  });
});

describeWorkloadProps(expectPropError, expectValid);

describe('any props (property test)', () => {
  const NUM_RUNS = 300;

  /** Mostly valid values: weight 12 to 1, unset half of the time. */
  const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>) =>
    fc.option(fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: other, weight: 1 }), { nil: undefined, freq: 2 });
  const instances = fc.oneof(
    { arbitrary: fc.integer({ min: 1, max: 7 }), weight: 4 },
    { arbitrary: fc.integer({ min: -5, max: 120 }), weight: 1 },
    { arbitrary: fc.double({ min: -5, max: 120, noNaN: true }), weight: 1 },
    { arbitrary: fc.constantFrom(0.5, 2.5, Number.NaN, Number.POSITIVE_INFINITY), weight: 1 },
  );
  const name = fc.oneof({ arbitrary: fc.string(), weight: 1 }, { arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,60}$/), weight: 4 });
  const memoryLimit = fc.oneof(
    { arbitrary: fc.constantFrom('1Gi', '2Gi', '4Gi', '8Gi', '16Gi', '1.5Gi'), weight: 4 },
    { arbitrary: fc.string(), weight: 1 },
    {
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 4096 }), fc.constantFrom('', 'm', 'k', 'Ki', 'M', 'Mi', 'G', 'Gi', 'GB', 'mb', ' Mi'))
        .map(([amount, unit]) => `${amount}${unit}`), weight: 1,
    },
  );
  const maxConnections = fc.oneof(
    fc.integer({ min: -10, max: 300000 }), fc.double({ min: -10, max: 1000, noNaN: true }), fc.integer({ min: 20, max: 300 }),
  );
  const size = mostly(fc.constantFrom('1Gi', '20Gi', '500Gi', '1Ti', '1.5Gi'), fc.constantFrom('0', '-1Gi', '20GB', 'big', ''));
  const storage = fc.record({
    size,
    storageClassName: mostly(fc.constantFrom('fast-ssd', 'gp3'), fc.constantFrom('Fast SSD', '')),
    walSize: size,
  }, { requiredKeys: [] });
  const toleration = fc.oneof(
    {
      arbitrary: fc.constantFrom({ key: 'dedicated', value: 'db', effect: TaintEffect.NO_SCHEDULE },
        { key: 'node.kubernetes.io/unreachable', operator: TolerationOperator.EXISTS, effect: TaintEffect.NO_EXECUTE, tolerationSeconds: Duration.seconds(30) },
        { operator: TolerationOperator.EXISTS }), weight: 12,
    },
    {
      arbitrary: fc.constantFrom({ key: 'constructor', operator: TolerationOperator.EQUAL, value: 'a b' }, { value: 'db' },
        { key: 'k', operator: TolerationOperator.EXISTS, value: 'v' }, { key: 'k', tolerationSeconds: Duration.millis(1500) }), weight: 1,
    },
  );
  const placement = fc.record({
    nodeSelector: mostly(fc.constantFrom({ pool: 'db' }, { 'example.com/zone': 'a', 'pool': '' }), fc.constantFrom({ 'bad key': 'db' }, { pool: 'a b' })),
    tolerations: fc.option(fc.array(toleration, { maxLength: 2 }), { nil: undefined }),
    priorityClassName: mostly(fc.constant('database-critical'), fc.constant('Critical')),
  }, { requiredKeys: [] });
  const annotations = mostly(
    fc.constantFrom({ 'example.com/owner': 'payments' }, { note: 'any text: even spaces' }, {}),
    fc.constantFrom({ 'prometheus.io/scrape': 'true' }, { 'checksum/config': 'x' }, { 'a b': 'x' }),
  );
  const props = fc.record({
    instances: fc.option(instances, { nil: undefined }),
    name: fc.option(name, { nil: undefined }),
    memoryLimit: fc.option(memoryLimit, { nil: undefined }),
    maxConnections: fc.option(maxConnections, { nil: undefined }),
    storage: fc.option(storage, { nil: undefined }),
    placement: fc.option(placement, { nil: undefined }),
    annotations,
  });

  test(`synthesizes valid objects or throws a prop error, over ${NUM_RUNS} cases`, () => {
    const outcomes = { cases: 0, synthesized: 0, rejected: 0 };
    fc.assert(fc.property(props, (p) => {
      outcomes.cases++;
      let objects: any[];
      try {
        objects = synth({
          instances: p.instances,
          name: p.name,
          resources: p.memoryLimit === undefined ? undefined : { memoryLimit: p.memoryLimit },
          settings: p.maxConnections === undefined ? undefined : { maxConnections: p.maxConnections },
          storage: p.storage,
          placement: p.placement as PodPlacement | undefined,
          annotations: p.annotations as { [key: string]: string } | undefined,
        });
      } catch (error) {
        // Only a plain Error naming the construct: a TypeError or RangeError is a crash.
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).constructor).toBe(Error);
        expect((error as Error).message).toMatch(/^test\/Db: /);
        outcomes.rejected++;
        return;
      }
      expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
      outcomes.synthesized++;
    }), { numRuns: NUM_RUNS });

    expect(outcomes.cases).toBe(NUM_RUNS);
    expect(outcomes.synthesized).toBeGreaterThan(0);
    expect(outcomes.rejected).toBeGreaterThan(0);
    console.log(`cluster property test: ${outcomes.cases} cases, ${outcomes.synthesized} synthesized, ${outcomes.rejected} rejected`);
  });
});

describe('roles that keep their Secret to themselves (ownSecret)', () => {
  test('a role of the props with ownSecret refuses the Secret of a database owner added before it', () => {
    expectPropError({
      databases: [{ name: 'app', owner: { secretName: 'shared' } }],
      roles: [{ credentials: { secretName: 'shared' }, memberOf: ['pg_monitor'], ownSecret: true }],
    }, { prop: 'roles[0].credentials.secretName', value: '"shared"', fix: /give each role a Secret of its own/ });
  });

  test('a later role cannot take the Secret of a role of the props with ownSecret', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, roles: [{ credentials: { secretName: 'monitor' }, ownSecret: true }] });
    const message = thrownMessage(() => cluster.addRole({ credentials: { secretName: 'monitor' } }), 'a second role on the Secret');
    expectPropErrorMessage(message, 'test/Db', { prop: 'addRole(role).credentials.secretName', value: '"monitor"', fix: /a Secret of its own/ });
  });

  test('without ownSecret, roles may share a Secret and add memberships to one role', () => {
    expectValid({
      databases: [{ name: 'app', owner: { secretName: 'shared' } }],
      roles: [{ credentials: { secretName: 'shared' }, memberOf: ['pg_monitor'] }],
    });
  });
});
