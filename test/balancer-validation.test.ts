import { Duration } from 'cdk8s';
import { Construct } from 'constructs';
import * as fc from 'fast-check';
import {
  EndpointBinding, ExternalPostgres, IPostgresEndpoint, IssuerKind, PasswordLookup, PgpoolBalancer, PgpoolBalancerProps, PgpoolConfigMode,
  PostgresCredentials, PostgresStatefulCluster, MemoryCheck, TlsProtocolVersion,
} from '../lib';
import { describeDeploymentNameAndReplicas, describeWorkloadProps } from './support/common-props';
import { validateManifests } from './support/kube-schema';
import { ExpectedPropError, escapeRegExp, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { findObject, synthObjects, testChart } from './support/synth';
import { PGPOOL_43_PARAMETERS } from '../lib/balancer/pgpool-parameters';

type Props = Partial<PgpoolBalancerProps>;
type BackendKind = 'cluster' | 'external';

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};
/** A cluster with room for any pool size: this file tests the proxy, test/connection-budget.test.ts the budget. */
// A backend no consumer can overbook, for tests of the consumers themselves.
const CLUSTER = { ...SECRETS, settings: { maxConnections: 100_000 }, memoryCheck: MemoryCheck.OFF };
const USERS = [{ credentials: { secretName: 'app-user' }, envPrefix: 'APP' }];
const SR_CHECK_USER = { secretName: 'pgpool-srcheck' };
const CONFIG_MAP_FIX = /use configMode PgpoolConfigMode\.CONFIG_MAP/;

/** A hand-made endpoint, for hosts no built-in endpoint would give. */
class HandMadeEndpoint extends Construct implements IPostgresEndpoint {
  public readonly port = 5432;
  public readonly replicas = 1;
  public readonly superuserCredentials: PostgresCredentials = SECRETS.superuserSecret;
  public readonly encrypted = true;
  public readonly serverPods = { podSelector: { app: 'hand-made' } };

  constructor(scope: Construct, id: string, public readonly readWriteHost: string, public readonly readOnlyHost: string) {
    super(scope, id);
  }

  public allowClients(): void {}

  public bind(): EndpointBinding {
    return { rolesCreated: false, passwordLookup: PasswordLookup.INSTALLED_BY_OPERATOR, connectionDemandChecked: false };
  }
}

/**
 * Synthesizes a balancer `Balancer` (path `test/Balancer`) in front of a 3-instance cluster `Db`
 * (or an ExternalPostgres handle to such a cluster's Services), with one user `APP` and an
 * sr_check user unless the props say otherwise, and returns the chart's objects. With
 * `backendTls`, the cluster has the tls Secret `db-tls` (its CA), the ExternalPostgres the
 * certificateAuthority `db-ca`.
 */
describe('the backend\'s superuser Secret', () => {
  test.each([
    ['a user', { users: [...USERS, { credentials: SECRETS.superuserSecret, envPrefix: 'ADMIN' }] }, 'users[1].credentials.secretName'],
    ['the sr_check user', { srCheckUser: SECRETS.superuserSecret }, 'srCheckUser.secretName'],
    ['the PCP user', { pcpUser: SECRETS.superuserSecret }, 'pcpUser.secretName'],
  ] as const)('is refused as %s', (_what, props, prop) => {
    expectPropError(props as Props, { prop, value: '"pg-superuser"', fix: /Secret of an ordinary role/ });
  });
});

function synth(props: Props = {}, backendKind: BackendKind = 'cluster', backendTls = false): any[] {
  const chart = testChart();
  const backend: IPostgresEndpoint = backendKind === 'cluster'
    ? new PostgresStatefulCluster(chart, 'Db', { ...CLUSTER, instances: 3, ...(backendTls ? { tls: { secretName: 'db-tls' } } : {}) })
    : new ExternalPostgres(chart, 'Db', {
      readWriteService: 'db-rw', readOnlyService: 'db-ro', superuserSecret: SECRETS.superuserSecret,
      ...(backendTls ? { certificateAuthority: { secretName: 'db-ca' } } : {}),
    });
  new PgpoolBalancer(chart, 'Balancer', { backend, users: USERS, srCheckUser: SR_CHECK_USER, ...props });
  return synthObjects(chart);
}

/** The message of the error synthesizing these props throws; fails the test when none is thrown. */
function errorMessage(props: Props, backendKind: BackendKind = 'cluster', backendTls = false): string {
  return thrownMessage(() => synth(props, backendKind, backendTls), JSON.stringify(props));
}

/** Asserts the error names the construct path, the prop, the bad value and a fix; returns the message. */
function expectPropError(props: Props, expected: ExpectedPropError, backendKind: BackendKind = 'cluster', backendTls = false): string {
  const message = errorMessage(props, backendKind, backendTls);
  expectPropErrorMessage(message, 'test/Balancer', expected);
  return message;
}

/** Asserts the props synthesize into objects the v1.27 API server schema accepts. */
function expectValid(props: Props, backendKind: BackendKind = 'cluster', backendTls = false): any[] {
  const objects = synth(props, backendKind, backendTls);
  expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  return objects;
}

const pgpoolConf = (objects: any[], name = 'balancer'): string => findObject(objects, 'ConfigMap', `${name}-config`).data['pgpool.conf'];
const confLine = (conf: string, key: string) => new RegExp(`^${escapeRegExp(key)} = (.*)$`, 'm').exec(conf)?.[1];

describeDeploymentNameAndReplicas(expectPropError, expectValid);

describe('name from the construct id', () => {
  test('rejects a construct id whose kebab-case is not a DNS-1035 label', () => {
    const chart = testChart();
    const backend = new PostgresStatefulCluster(chart, 'Db', CLUSTER);
    expect(() => new PgpoolBalancer(chart, '2ndBalancer', { backend, users: USERS, srCheckUser: SR_CHECK_USER }))
      .toThrow(/^test\/2ndBalancer: name "2nd-balancer" is not a DNS-1035 label; use lower-case letters/);
  });

  test('a name whose objects would replace the cluster\'s fails synthesis, naming the balancer', () => {
    expect(() => synth({ name: 'db' }))
      .toThrow(/^test\/Balancer: ServiceAccount "db" is also rendered by test\/Db\/ServiceAccount; set the name prop/m);
  });
});

describe('image and runAsUser', () => {
  test.each(['', ' ', 'pgpool/pgpool: 4.4.3', 'pgpool/pgpool:4.4.3\n'])('rejects image %p', (image) => {
    expectPropError({ image }, { prop: 'image', value: JSON.stringify(image), fix: /"pgpool\/pgpool:4\.4\.3"/ });
  });

  test.each([
    [0, '0'],
    [1.5, '1.5'],
    [2 ** 31, '2147483648'],
  ])('rejects runAsUser %p', (runAsUser, shown) => {
    expectPropError({ runAsUser }, { prop: 'runAsUser', value: shown, fix: /whole number from 1 to 2147483647/ });
  });

  test('accepts another image and uid', () => {
    expectValid({ image: 'registry.example/pgpool:4.4.3', runAsUser: 1000 });
  });
});

describe('users and their environment prefixes', () => {
  const user = (secretName: string, envPrefix?: string) => ({ credentials: { secretName }, envPrefix });

  test('rejects an empty users list', () => {
    expectPropError({ users: [] }, { prop: 'users', value: '[]', fix: /list the roles clients use/ });
  });

  test.each([
    ['an underscore, where the image cuts the name', 'APP_USER'],
    ['lower case', 'app'],
    ['mixed case', 'App'],
    ['a leading digit', '1APP'],
    ['a dash', 'APP-1'],
    ['a space', 'APP 1'],
    ['nothing', ''],
  ])('rejects a prefix with %s', (_what, envPrefix) => {
    const message = expectPropError({ users: [user('app-user', envPrefix)] }, {
      prop: 'users[0].envPrefix', value: JSON.stringify(envPrefix), fix: /"APP" or "AIRFLOW"/,
    });
    expect(message).toMatch(/upper-case letters and digits/);
  });

  test.each(['PGPOOL', 'SRCHECK', 'POSTGRES'])('rejects the reserved prefix %p', (envPrefix) => {
    const message = expectPropError({ users: [user('app-user', 'APP'), user('other', envPrefix)] }, {
      prop: 'users[1].envPrefix', value: JSON.stringify(envPrefix), fix: /choose another prefix/,
    });
    expect(message).toMatch(/is taken/);
  });

  test('rejects a duplicate prefix, naming the second user', () => {
    expectPropError({ users: [user('app-user', 'APP'), user('reporting', 'APP')] }, {
      prop: 'users[1].envPrefix', value: '"APP"', fix: /choose another prefix/,
    });
  });

  test('rejects a prefix that takes the default of a later user', () => {
    expectPropError({ users: [user('app-user', 'USER1'), user('reporting')] }, {
      prop: 'users[1].envPrefix', value: '"USER1"', fix: /choose another prefix/,
    });
  });

  test('accepts the default prefixes USER0, USER1 and prefixes with digits', () => {
    expectValid({ users: [user('app-user'), user('reporting'), user('etl', 'ETL2')] });
  });

  test.each([
    ['users[0].credentials.secretName', { users: [user('App_User', 'APP')] }, '"App_User"', /name of an existing Secret/],
    ['users[0].credentials.passwordKey', { users: [{ credentials: { secretName: 'app-user', passwordKey: 'pass/word' }, envPrefix: 'APP' }] },
      '"pass/word"', /letters, digits/],
    ['srCheckUser.secretName', { srCheckUser: { secretName: 'SR Check' } }, '"SR Check"', /name of an existing Secret/],
    ['srCheckUser.usernameKey', { srCheckUser: { secretName: 'pgpool-srcheck', usernameKey: 'user name' } }, '"user name"', /letters, digits/],
    ['pcpUser.secretName', { pcpUser: { secretName: '-pcp' } }, '"-pcp"', /name of an existing Secret/],
  ] as const)('rejects a bad %s at the balancer, before the cluster sees it', (prop, props, value, fix) => {
    expectPropError(props as Props, { prop, value, fix });
  });

  test('rejects a bad srCheckUser at the balancer with an ExternalPostgres backend too', () => {
    expectPropError({ srCheckUser: { secretName: 'SR Check' } }, {
      prop: 'srCheckUser.secretName', value: '"SR Check"', fix: /name of an existing Secret/,
    }, 'external');
  });
});

describe('pool sizes', () => {
  test.each([
    ['numInitChildren', 0, /whole number from 1 to 10000/],
    ['numInitChildren', 10001, /whole number from 1 to 10000/],
    ['numInitChildren', 2.5, /whole number from 1 to 10000/],
    ['maxPool', 0, /whole number from 1 to 1000/],
    ['maxPool', 1001, /whole number from 1 to 1000/],
    ['maxPool', -1, /whole number from 1 to 1000/],
    ['childMaxConnections', -1, /whole number from 0 to 2147483647/],
    ['childMaxConnections', 0.5, /whole number from 0 to 2147483647/],
    ['childMaxConnections', 2 ** 31, /whole number from 0 to 2147483647/],
  ] as const)('rejects %s %p', (prop, value, fix) => {
    expectPropError({ [prop]: value }, { prop, value: String(value), fix });
  });

  test('accepts the bounds', () => {
    expectValid({ numInitChildren: 1, maxPool: 1000, childMaxConnections: 0 });
    expectValid({ numInitChildren: 10000, maxPool: 1, childMaxConnections: 2 ** 31 - 1 });
  });
});

describe('durations', () => {
  const durationProps = ['childLifeTime', 'connectionLifeTime', 'clientIdleLimit', 'srCheckPeriod', 'healthCheckPeriod'] as const;

  test.each(durationProps)('rejects %s of 1.5 seconds', (prop) => {
    expectPropError({ [prop]: Duration.millis(1500) }, { prop, value: '"1500ms"', fix: /Duration\.seconds/ });
  });

  test.each(durationProps)('rejects %s beyond Pgpool-II\'s int', (prop) => {
    expectPropError({ [prop]: Duration.seconds(2 ** 31) }, { prop, value: '2147483648', fix: /whole number from 0 to 2147483647/ });
  });

  test.each(durationProps)('accepts %s of whole seconds in other units', (prop) => {
    const conf = pgpoolConf(expectValid({ [prop]: Duration.minutes(2) }));
    const name = prop.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    expect(confLine(conf, name)).toBe('120');
  });

  test.each(durationProps)('accepts %s of 0', (prop) => {
    expectValid({ [prop]: Duration.seconds(0) });
  });
});

describe('TLS', () => {
  test.each([
    ['the cluster with its self-signed certificate', 'cluster', false],
    ['the cluster with a tls Secret', 'cluster', true],
    ['an ExternalPostgres without a CA', 'external', false],
    ['an ExternalPostgres with a CA', 'external', true],
  ] as const)('rejects tls.disabled in front of %s, which takes TLS: Pgpool-II\'s one ssl switch serves both sides', (_what, backendKind, backendTls) => {
    const message = expectPropError({ tls: { disabled: true } }, { prop: 'tls.disabled', value: 'true', fix: /^ drop tls\.disabled$/ }, backendKind, backendTls);
    expect(message).toContain('leaves the backend unreachable');
  });

  test.each(['Pgpool_TLS', '-tls', 'pgpool tls'])('rejects tls.secretName %p', (secretName) => {
    expectPropError({ tls: { secretName } }, { prop: 'tls.secretName', value: JSON.stringify(secretName), fix: /name of an existing Secret/ });
  });

  test.each(['Internal_CA', 'ca issuer', ''])('rejects tls.issuer.name %p', (name) => {
    expectPropError({ tls: { issuer: { name } } }, {
      prop: 'tls.issuer.name', value: JSON.stringify(name), fix: /name of an existing cert-manager issuer/,
    });
  });

  // Pgpool-II 4.3 has no ssl_min_protocol_version: TLS 1.3 only cannot be promised.
  test('refuses tls.minimumProtocolVersion TLS_1_3, which Pgpool-II cannot enforce, and accepts TLS_1_2', () => {
    expectPropError({ tls: { minimumProtocolVersion: TlsProtocolVersion.TLS_1_3 } }, {
      prop: 'tls.minimumProtocolVersion', value: '"TLSv1.3"', fix: /leave it unset: the image's OpenSSL sets the floor/,
    });
    expectValid({ tls: { minimumProtocolVersion: TlsProtocolVersion.TLS_1_2 } });
  });

  test('accepts tls alone, tls with a Secret and required: false, and tls with an issuer, in front of a backend with or without TLS', () => {
    for (const backendTls of [false, true]) {
      expectValid({ tls: {} }, 'cluster', backendTls);
      expectValid({ tls: { secretName: 'pgpool-tls', required: false } }, 'external', backendTls);
      expectValid({ tls: { issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } } }, 'cluster', backendTls);
    }
  });
});

describe('extraParameters', () => {
  test('rejects an unknown name', () => {
    expectPropError({ extraParameters: { num_children: '4' } }, {
      prop: 'extraParameters', value: '"num_children"', fix: /check the spelling/,
    });
  });

  // 4.4 and 4.5 are checked against 4.3's parameters (a subset of theirs), 4.6 and later against 4.6's.
  test('a parameter Pgpool-II 4.6 added is taken with pgpoolVersion 4.6 or later, and refused naming it below', () => {
    const added = { process_management_mode: 'dynamic', unix_socket_permissions: '0770' };
    for (const pgpoolVersion of ['4.6.1', '4.7']) {
      const conf = pgpoolConf(expectValid({ pgpoolVersion, extraParameters: added }));
      expect([confLine(conf, 'process_management_mode'), confLine(conf, 'unix_socket_permissions')]).toEqual(["'dynamic'", "'0770'"]);
    }
    for (const pgpoolVersion of [undefined, '4.3.5', '4.5.9']) {
      expectPropError({ pgpoolVersion, extraParameters: { process_management_mode: 'dynamic' } }, {
        prop: 'extraParameters', value: '"process_management_mode"', fix: /needs pgpoolVersion 4\.6 or later$/,
      });
    }
    expectPropError({ pgpoolVersion: '4.6.1', extraParameters: { process_management_mode: 'both' } }, {
      prop: 'extraParameters.process_management_mode', value: '"both"', fix: /static.*dynamic/,
    });
  });

  test.each(['4', 'v4.6', '4.6.1-p0', ''])('pgpoolVersion %p is refused as no version number', (pgpoolVersion) => {
    expectPropError({ pgpoolVersion, extraParameters: { process_management_mode: 'dynamic' } }, { prop: 'pgpoolVersion', value: JSON.stringify(pgpoolVersion), fix: /such as "4\.4\.3"/ });
  });

  test.each(['constructor', '__proto__', 'toString', 'PORT', 'failover_on_backend_error '])('reports %p as unknown', (name) => {
    const extraParameters: { [name: string]: string } = {};
    Object.defineProperty(extraParameters, name, { value: '1', enumerable: true });
    expectPropError({ extraParameters }, { prop: 'extraParameters', value: JSON.stringify(name), fix: /check the spelling/ });
  });

  test.each([
    ['backend_hostname0', /use backend/],
    ['backend_weight1', /use backend/],
    ['backend_data_directory0', /use backend/],
    ['backend_application_name1', /use backend/],
    ['health_check_period0', /use backend/],
    ['port', /use nothing: the Service port is 9999/],
    ['listen_addresses', /use nothing/],
    ['backend_clustering_mode', /use nothing/],
    ['failover_on_backend_error', /failover is left to Kubernetes/],
    ['sr_check_user', /use srCheckUser/],
    ['sr_check_password', /use srCheckUser/],
    ['health_check_user', /use srCheckUser/],
    ['health_check_password', /use srCheckUser/],
    ['pcp_port', /use exposePcp/],
    ['enable_pool_hba', /use allowedCidrs/],
    ['pool_passwd', /use users/],
    ['ssl_key', /use tls$/],
    ['ssl_cert', /use tls$/],
    ['ssl_ca_cert', /use the backend's tls \(or an ExternalPostgres' certificateAuthority\)$/],
    ['allow_clear_text_frontend_auth', /clear text/],
    ['pid_file_name', /use nothing/],
    ['logdir', /use nothing/],
  ])('rejects the managed parameter %s', (name, fix) => {
    const message = expectPropError({ extraParameters: { [name]: 'x' } }, { prop: `extraParameters.${name}`, value: '"x"', fix });
    expect(message).toMatch(/is set by the construct/);
  });

  test.each([
    ['ssl_ciphers', 'ALL:eNULL', /carries the TLS the construct secures/, /use tls$/],
    ['ssl_passphrase_command', 'cat /tmp/pw', /carries the TLS/, /use tls$/],
    ['ssl_prefer_server_ciphers', 'off', /carries the TLS/, /use tls$/],
    ['ssl_ecdh_curve', 'prime192v1', /carries the TLS/, /use tls$/],
    ['pcp_listen_addresses', '*', /set by the construct/, /use exposePcp$/],
    ['pcp_socket_dir', '/tmp', /set by the construct/, /use exposePcp$/],
    ['socket_dir', '/tmp', /set by the construct/, /in the pod$/],
    ['logging_collector', 'on', /away from stderr/, /kubectl logs/],
    ['log_directory', '/tmp', /away from stderr/, /kubectl logs/],
    ['log_filename', 'x.log', /away from stderr/, /kubectl logs/],
    ['log_file_mode', '0644', /away from stderr/, /kubectl logs/],
    ['log_destination', 'syslog', /away from stderr/, /kubectl logs/],
  ])('refuses %s = %s, naming the prop to use', (name, value, problem, fix) => {
    const message = expectPropError({ extraParameters: { [name]: value } }, { prop: `extraParameters.${name}`, value: JSON.stringify(value), fix });
    expect(message.slice(0, message.indexOf(';'))).toMatch(problem);
  });

  test.each([
    ['num_init_children', '64', 'numInitChildren'],
    ['max_pool', '4', 'maxPool'],
    ['load_balance_mode', 'off', 'loadBalanceMode'],
    ['connection_cache', 'off', 'connectionCache'],
    ['statement_level_load_balance', 'on', 'statementLevelLoadBalance'],
    ['disable_load_balance_on_write', 'always', 'disableLoadBalanceOnWrite'],
    ['child_life_time', '60', 'childLifeTime'],
    ['child_max_connections', '100', 'childMaxConnections'],
    ['connection_life_time', '60', 'connectionLifeTime'],
    ['client_idle_limit', '60', 'clientIdleLimit'],
    ['sr_check_period', '5', 'srCheckPeriod'],
    ['health_check_period', '5', 'healthCheckPeriod'],
    ['ssl', 'on', 'tls'],
  ])('points %s to its typed prop', (name, value, typed) => {
    expectPropError({ extraParameters: { [name]: value } }, {
      prop: `extraParameters.${name}`, value: JSON.stringify(value), fix: new RegExp(`use ${typed}$`),
    });
  });

  test.each([
    ['a line break', 'x\nport = 5432'],
    ['a carriage return', 'x\rport = 5432'],
    ['a NUL', 'x\0'],
  ])('rejects a value with %s', (_what, value) => {
    expectPropError({ extraParameters: { log_line_prefix: value } }, {
      prop: 'extraParameters.log_line_prefix', value: JSON.stringify(value), fix: /single-line value/,
    });
  });

  test('accepts Pgpool-II 4.3 parameters and renders them quoted', () => {
    const extraParameters = { log_min_messages: 'warning', health_check_timeout: '10', log_line_prefix: '%m: pid %p: ' };
    const conf = pgpoolConf(expectValid({ extraParameters }));
    expect([confLine(conf, 'log_min_messages'), confLine(conf, 'health_check_timeout'), confLine(conf, 'log_line_prefix')])
      .toEqual(["'warning'", "'10'", "'%m: pid %p: '"]);
  });

  test('accepts "=" in CONFIG_MAP mode', () => {
    expect(confLine(pgpoolConf(expectValid({ extraParameters: { log_line_prefix: 'pid=%p ' } })), 'log_line_prefix')).toBe("'pid=%p '");
  });

  // Pgpool-II 4.3's lexer (src/config/pool_config.l) reads a string as '([^'\n]|\\.)*' and only
  // strips the outer quotes: there is no way to put a quote in a value. A doubled quote
  // ('it''s') ends the string early, and Pgpool-II 4.3.5 stops with "syntax error in
  // configuration file" (checked with Debian's pgpool2 4.3.5 and pg_md5 -m -f), so a quote is
  // refused in both config modes, not only in ENVIRONMENT mode.
  test.each([PgpoolConfigMode.CONFIG_MAP, PgpoolConfigMode.ENVIRONMENT])('rejects a single quote in %s mode: Pgpool-II cannot read one', (configMode) => {
    for (const value of ["it's %p ", "a='b'"]) {
      expectPropError({ configMode, extraParameters: { log_line_prefix: value } }, {
        prop: 'extraParameters.log_line_prefix', value: JSON.stringify(value), fix: /remove the quote/,
      });
    }
  });
});

describe('environment mode', () => {
  const env = { configMode: PgpoolConfigMode.ENVIRONMENT };

  test('accepts the defaults', () => {
    expectValid(env);
  });

  test.each([
    ['an "="', 'pid=%p '],
    ['two "="', 'a=b=c '],
  ])('refuses an extraParameters value with %s, naming CONFIG_MAP as the fix', (_what, value) => {
    const message = errorMessage({ ...env, extraParameters: { log_line_prefix: value } });
    expect(message.startsWith('test/Balancer: ')).toBe(true);
    expect(message).toContain('log_line_prefix');
    expect(message).toContain(JSON.stringify(value));
    expect(message).toMatch(/PGPOOL_PARAMS_/);
    expect(message.slice(message.indexOf(';') + 1)).toMatch(CONFIG_MAP_FIX);
  });

  // The error names the prop the user set, as every other error of the construct does
  // (lib/core/errors.ts), not the pgpool.conf name ("log_line_prefix") alone.
  test('names the prop the user set, extraParameters.log_line_prefix', () => {
    expectPropError({ ...env, extraParameters: { log_line_prefix: 'pid=%p ' } }, {
      prop: 'extraParameters.log_line_prefix', value: '"pid=%p "', fix: CONFIG_MAP_FIX,
    });
  });

  test('refuses a backend host the image\'s sed would split (only a hand-made endpoint can give one)', () => {
    const chart = testChart();
    const backend = new HandMadeEndpoint(chart, 'Db', 'db=rw.apps.svc', 'db-ro.apps.svc');
    const message = thrownMessage(() => new PgpoolBalancer(chart, 'Balancer', { ...env, backend, users: USERS, srCheckUser: SR_CHECK_USER }),
      'a backend host with "="');
    expect(message.startsWith('test/Balancer: ')).toBe(true);
    expect(message).toContain('"db=rw.apps.svc"');
    expect(message.slice(message.indexOf(';') + 1)).toMatch(CONFIG_MAP_FIX);
  });

  test('a host of a built-in endpoint cannot hold "=" or a quote: ExternalPostgres refuses it first', () => {
    const chart = testChart();
    expect(() => new ExternalPostgres(chart, 'Db', { readWriteService: 'db=rw', superuserSecret: SECRETS.superuserSecret }))
      .toThrow(/^test\/Db: readWriteService "db=rw" is not a DNS-1035 label/);
  });

  test('the same values are fine in CONFIG_MAP mode', () => {
    expectValid({ configMode: PgpoolConfigMode.CONFIG_MAP, extraParameters: { log_line_prefix: 'pid=%p ' } });
  });
});

describe('allowedCidrs', () => {
  test('rejects an empty list', () => {
    expectPropError({ allowedCidrs: [] }, { prop: 'allowedCidrs', value: '[]', fix: /list the client networks/ });
  });

  test.each(['10.0.0.0', '10.0.0.0/33', 'fd00::/129', '300.0.0.0/8', 'localhost/8', '10.0.0.0/8/8', '10.0.0.0/', '10.0.0.0/ 8', '', 'all'])(
    'rejects %p', (cidr) => {
      expectPropError({ allowedCidrs: ['10.0.0.0/8', cidr] }, { prop: 'allowedCidrs', value: JSON.stringify(cidr), fix: /"10\.0\.0\.0\/8"/ });
    });

  test('accepts IPv4 and IPv6 networks', () => {
    expectValid({ allowedCidrs: ['10.0.0.0/8', '192.168.1.7/32', 'fd00::/8'] });
  });
});

describeWorkloadProps(expectPropError, expectValid);

describe('any props (property test)', () => {
  const NUM_RUNS = 300;

  /** Mostly valid values, so that both outcomes are common: weight 9 to 1. */
  const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>) =>
    fc.option(fc.oneof({ arbitrary: valid, weight: 9 }, { arbitrary: other, weight: 1 }), { nil: undefined, freq: 3 });
  const count = (min: number, max: number) => mostly(
    fc.integer({ min, max }),
    fc.oneof(fc.integer({ min: -5, max: 0 }), fc.double({ min: -5, max: max + 1, noNaN: true }),
      fc.constantFrom(0.5, max + 1, Number.NaN, Number.POSITIVE_INFINITY)),
  );
  const envPrefix = fc.option(fc.oneof(
    { arbitrary: fc.stringMatching(/^[A-Z][A-Z0-9]{0,11}$/), weight: 12 },
    { arbitrary: fc.constantFrom('APP', 'USER0', 'USER1', 'PGPOOL', 'SRCHECK', 'POSTGRES', 'APP_USER', 'app', '1APP', ''), weight: 2 },
    { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
  ), { nil: undefined, freq: 3 });
  const users = fc.oneof(
    { arbitrary: fc.array(envPrefix, { minLength: 1, maxLength: 3 }), weight: 19 },
    { arbitrary: fc.constant([] as Array<string | undefined>), weight: 1 },
  )
    .map((prefixes) => prefixes.map((prefix, index) => ({ credentials: { secretName: `user-${index}` }, envPrefix: prefix })));
  const HARMLESS = ['log_min_messages', 'log_line_prefix', 'health_check_timeout', 'log_connections', 'connect_timeout',
    'reset_query_list', 'ignore_leading_white_space', 'delay_threshold', 'relcache_expire', 'client_min_messages'];
  const parameterName = fc.oneof(
    { arbitrary: fc.constantFrom(...HARMLESS), weight: 12 },
    { arbitrary: fc.constantFrom(...PGPOOL_43_PARAMETERS), weight: 3 },
    {
      arbitrary: fc.constantFrom('backend_hostname0', 'backend_weight1', 'health_check_period1', 'num_children', 'constructor', '__proto__'),
      weight: 1,
    },
    { arbitrary: fc.stringMatching(/^[a-z_]{1,30}$/), weight: 1 },
    { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
  );
  const parameterValue = fc.oneof(
    { arbitrary: fc.constantFrom('1', '0', '30', 'on', 'off', 'warning', '%m: pid %p: ', 'ABORT;DISCARD ALL', ''), weight: 8 },
    { arbitrary: fc.constantFrom('a=b', "it's", "a='b'", 'x\ny', 'a\rb', 'nul\0', 'back\\slash'), weight: 1 },
    { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
  );
  const props = fc.record({
    replicas: count(1, 100),
    numInitChildren: count(1, 10000),
    maxPool: count(1, 1000),
    configMode: fc.option(fc.constantFrom(PgpoolConfigMode.CONFIG_MAP, PgpoolConfigMode.ENVIRONMENT), { nil: undefined }),
    users,
    extraParameters: fc.option(fc.dictionary(parameterName, parameterValue, { maxKeys: 2 }), { nil: undefined, freq: 2 }),
  });

  test(`synthesizes strictly valid objects or throws a prop error, over ${NUM_RUNS} cases`, () => {
    const outcomes = { cases: 0, synthesized: 0, rejected: 0, environment: 0 };
    fc.assert(fc.property(props, (p) => {
      outcomes.cases++;
      let objects: any[];
      try {
        objects = synth(p);
      } catch (error) {
        // Only a plain Error naming the balancer: a TypeError or RangeError is a crash.
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).constructor).toBe(Error);
        // ...or the cluster's connection budget, which names this construct in its table.
        expect((error as Error).message).toMatch(/^test\/Balancer: |^test\/Db: settings\.maxConnections \d+ leaves .*\n[^]*test\/Balancer /);
        outcomes.rejected++;
        return;
      }
      expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
      const replicas = p.replicas ?? 2;
      expect(findObject(objects, 'Deployment', 'balancer').spec.replicas).toBe(replicas);
      if (p.configMode === PgpoolConfigMode.ENVIRONMENT) outcomes.environment++;
      outcomes.synthesized++;
    }), { numRuns: NUM_RUNS });

    expect(outcomes.cases).toBe(NUM_RUNS);
    expect(outcomes.synthesized).toBeGreaterThan(0);
    expect(outcomes.rejected).toBeGreaterThan(0);
    console.log(`balancer property test: ${outcomes.cases} cases, ${outcomes.synthesized} synthesized `
      + `(${outcomes.environment} in environment mode), ${outcomes.rejected} rejected`);
  });
});
