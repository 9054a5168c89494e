import { ExporterSidecar, ExternalPostgres, ExternalPostgresProps, PgBouncerPooler, PgpoolBalancer } from '../lib';
import { synthObjects, testChart } from './support/synth';

type Props = Partial<ExternalPostgresProps>;

const BASE: ExternalPostgresProps = {
  readWriteService: 'pg-rw',
  superuserSecret: { secretName: 'pg-superuser' },
};

/** An ExternalPostgres `Pg` (path `test/Pg`) in a fresh chart, optionally with a namespace. */
function external(props: Props = {}, chartNamespace?: string): ExternalPostgres {
  return new ExternalPostgres(testChart(chartNamespace), 'Pg', { ...BASE, ...props });
}

/** The message of the error these props throw; fails the test when none is thrown. */
function errorMessage(props: Props): string {
  try {
    external(props);
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(props)} to be rejected, but it was accepted`);
}

/** Asserts the error names the construct path, the prop, the bad value and a fix after `;`. */
function expectPropError(props: Props, prop: string, value: string, fix: RegExp): void {
  const message = errorMessage(props);
  expect(message).toMatch(/^test\/Pg: /);
  expect(message).toMatch(new RegExp(`: ${prop.replace(/[.[\]]/g, '\\$&')} `));
  expect(message).toContain(value);
  expect(message).toContain(';');
  expect(message.slice(message.indexOf(';') + 1)).toMatch(fix);
}

describe('hosts', () => {
  test('are the short Service names when the chart has no namespace', () => {
    const pg = external({ readOnlyService: 'pg-ro' });
    expect([pg.readWriteHost, pg.readOnlyHost]).toEqual(['pg-rw', 'pg-ro']);
  });

  test('are <service>.<namespace>.svc in the chart namespace', () => {
    const pg = external({ readOnlyService: 'pg-ro' }, 'data');
    expect([pg.readWriteHost, pg.readOnlyHost]).toEqual(['pg-rw.data.svc', 'pg-ro.data.svc']);
  });

  test('use an explicit namespace over the chart namespace', () => {
    const pg = external({ readOnlyService: 'pg-ro', namespace: 'databases' }, 'apps');
    expect([pg.readWriteHost, pg.readOnlyHost]).toEqual(['pg-rw.databases.svc', 'pg-ro.databases.svc']);
  });

  test('use an explicit namespace when the chart has none', () => {
    expect(external({ namespace: 'databases' }).readWriteHost).toBe('pg-rw.databases.svc');
  });

  test('read-only is the read-write host without a readOnlyService', () => {
    const pg = external({}, 'data');
    expect(pg.readOnlyHost).toBe(pg.readWriteHost);
  });
});

describe('replicas', () => {
  test('default to 0 without a readOnlyService', () => {
    expect(external().replicas).toBe(0);
  });

  test('default to 1 with a readOnlyService', () => {
    expect(external({ readOnlyService: 'pg-ro' }).replicas).toBe(1);
  });

  test('take an explicit count with a readOnlyService', () => {
    expect(external({ readOnlyService: 'pg-ro', replicas: 3 }).replicas).toBe(3);
  });

  test('may be 0 with a readOnlyService', () => {
    expect(external({ readOnlyService: 'pg-ro', replicas: 0 }).replicas).toBe(0);
  });

  test('are rejected above 0 without a readOnlyService', () => {
    expectPropError({ replicas: 2 }, 'replicas', '2', /set readOnlyService/);
  });

  test.each([-1, 1.5])('reject %p', (replicas) => {
    expectPropError({ readOnlyService: 'pg-ro', replicas }, 'replicas', String(replicas), /whole number 0 or more/);
  });
});

describe('port', () => {
  test('defaults to 5432', () => {
    expect(external().port).toBe(5432);
  });

  test('takes an explicit port', () => {
    expect(external({ port: 6432 }).port).toBe(6432);
  });

  test.each([0, 70000, 5432.5, -1])('rejects %p', (port) => {
    expectPropError({ port }, 'port', String(port), /whole number from 1 to 65535/);
  });
});

describe('names', () => {
  test.each(['PG-RW', 'pg_rw', '-pg', 'pg.rw', ''])('rejects the readWriteService %p', (readWriteService) => {
    expectPropError({ readWriteService }, 'readWriteService', JSON.stringify(readWriteService), /lower-case letters/);
  });

  test('rejects a readWriteService longer than 63 characters', () => {
    const readWriteService = 'p'.repeat(64);
    expectPropError({ readWriteService }, 'readWriteService', readWriteService, /at most 63 characters/);
  });

  test.each(['Pg-Ro', 'pg ro'])('rejects the readOnlyService %p', (readOnlyService) => {
    expectPropError({ readOnlyService }, 'readOnlyService', JSON.stringify(readOnlyService), /lower-case letters/);
  });

  test('rejects a bad namespace', () => {
    expectPropError({ namespace: 'Bad_NS' }, 'namespace', '"Bad_NS"', /lower-case letters/);
  });

  test('rejects a bad superuser Secret name', () => {
    expectPropError({ superuserSecret: { secretName: 'Pg_Superuser' } }, 'superuserSecret.secretName', '"Pg_Superuser"',
      /name of an existing Secret/);
  });
});

describe('credentials', () => {
  test('default to the username and password keys', () => {
    expect(external().superuserCredentials).toEqual({ secretName: 'pg-superuser', usernameKey: 'username', passwordKey: 'password' });
  });

  test('are optional: a pooler, a balancer and their exporters front a cluster whose superuser Secret the app does not name', () => {
    const chart = testChart('data');
    const pg = new ExternalPostgres(chart, 'Pg', { readWriteService: 'pg-rw', readOnlyService: 'pg-ro' });
    expect(pg.superuserCredentials).toBeUndefined();
    const balancer = new PgpoolBalancer(chart, 'Balancer', { backend: pg, users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'srcheck' } });
    const pooler = new PgBouncerPooler(chart, 'Pooler', { backend: balancer, users: [{ secretName: 'app' }] });
    new ExporterSidecar(chart, 'BalancerMetrics', { target: balancer, credentials: { secretName: 'balancer-exporter' } });
    new ExporterSidecar(chart, 'PoolerMetrics', { target: pooler, credentials: { secretName: 'pooler-exporter' } });
    const kinds = synthObjects(chart).map((o) => o.kind);
    expect(kinds.filter((kind) => kind === 'Deployment')).toHaveLength(2);
    // Nothing references a superuser Secret.
    expect(JSON.stringify(synthObjects(chart))).not.toMatch(/superuser/);
  });

  test('keep the configured keys', () => {
    const pg = external({ superuserSecret: { secretName: 'pg-superuser', usernameKey: 'user', passwordKey: 'pass' } });
    expect(pg.superuserCredentials).toEqual({ secretName: 'pg-superuser', usernameKey: 'user', passwordKey: 'pass' });
  });
});

test('renders no objects', () => {
  const chart = testChart('data');
  new ExternalPostgres(chart, 'Pg', { ...BASE, readOnlyService: 'pg-ro', replicas: 2 });
  expect(synthObjects(chart)).toEqual([]);
});
