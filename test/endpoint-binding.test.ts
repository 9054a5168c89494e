import * as fs from 'fs';
import * as path from 'path';
import { Construct, IConstruct } from 'constructs';
import {
  ConnectionDemand, EndpointBindOptions, EndpointBinding, ExporterSidecar, ExternalPostgres, IPostgresEndpoint, NetworkPeer,
  PasswordLookup, PgBouncerPooler, PgpoolBalancer, PostgresCredentials, PostgresRole, PostgresStatefulCluster,
} from '../lib';
import { findObject, synthObjects, testChart } from './support/synth';

/**
 * A backend of the user's own, as another construct library's cluster would be: it knows only the
 * public interface, and records what the constructs in front ask of it, as a cluster does.
 */
class RecordingBackend extends Construct implements IPostgresEndpoint {
  public readonly readWriteHost = 'their-db-rw';
  public readonly readOnlyHost = 'their-db-ro';
  public readonly port = 5433;
  public readonly replicas: number;
  public readonly superuserCredentials: PostgresCredentials = { secretName: 'their-superuser' };
  public readonly encrypted = true;
  public readonly serverPods: NetworkPeer = { podSelector: { app: 'their-db' } };
  public readonly clientPeers: NetworkPeer[] = [];
  public readonly roles: Array<{ client: string; role: PostgresRole }> = [];
  public readonly lookupUsers: PostgresCredentials[] = [];
  public readonly demands: ConnectionDemand[] = [];

  constructor(scope: Construct, id: string, replicas: number, private readonly lookup = PasswordLookup.INSTALLED_BY_BACKEND) {
    super(scope, id);
    this.replicas = replicas;
  }

  public allowClients(...peers: NetworkPeer[]): void {
    this.clientPeers.push(...peers);
  }

  public bind(client: IConstruct, options: EndpointBindOptions): EndpointBinding {
    (options.roles ?? []).forEach((role) => this.roles.push({ client: client.node.path, role }));
    if (options.passwordLookupUser) this.lookupUsers.push(options.passwordLookupUser);
    this.demands.push(...(options.connectionDemands ?? []));
    return {
      rolesCreated: true,
      passwordLookup: this.lookup,
      passwordLookupAlternative: this.lookup === PasswordLookup.UNAVAILABLE ? 'ask the team that runs their-db for a lookup' : undefined,
      connectionDemandChecked: true,
    };
  }
}

const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const iniValue = (ini: string, key: string) => ini.match(new RegExp(`^${key} = (.*)$`, 'm'))?.[1];

describe("a user's own backend class", () => {
  test('a pooler asks it for the password lookup and counts its connections, as it asks a cluster', () => {
    const chart = testChart();
    const backend = new RecordingBackend(chart, 'Theirs', 1);
    const pooler = new PgBouncerPooler(chart, 'Pooler', { backend, authUser: { secretName: 'pooler-auth' } });
    expect(backend.lookupUsers).toEqual([{ secretName: 'pooler-auth', usernameKey: 'username', passwordKey: 'password' }]);
    // One pool of 20 for the role auth_query looks up and one for the auth user, on both pods.
    expect(backend.demands).toEqual([
      { consumer: 'test/Pooler', purpose: 'pooled users', primary: 40, replica: 0 },
      { consumer: 'test/Pooler', purpose: 'auth_query pool', primary: 40, replica: 0 },
    ]);
    expect(pooler.serverConnectionDemand).toBe(80);
    expect(backend.roles).toEqual([]);
    expect(backend.clientPeers).toHaveLength(1);
    const ini = findObject(synthObjects(chart), 'ConfigMap', 'pooler-config').data['pgbouncer.ini'];
    expect(ini).toContain('host=their-db-rw port=5433');
    expect(iniValue(ini, 'auth_query')).toBe('SELECT usename, passwd FROM pgbouncer.get_auth($1)');
  });

  test('a pooler with an authQuery of its own asks for no lookup', () => {
    const chart = testChart();
    const backend = new RecordingBackend(chart, 'Theirs', 0);
    new PgBouncerPooler(chart, 'Pooler', {
      backend, authUser: { secretName: 'pooler-auth' }, authQuery: 'SELECT usename, passwd FROM my_lookup($1)',
    });
    expect(backend.lookupUsers).toEqual([]);
    expect(backend.demands.map((demand) => demand.purpose)).toEqual(['pooled users', 'auth_query pool']);
  });

  test('a backend that cannot install the lookup has the pooler refuse authUser with the backend\'s alternative', () => {
    const chart = testChart();
    const backend = new RecordingBackend(chart, 'Theirs', 0, PasswordLookup.UNAVAILABLE);
    expect(() => new PgBouncerPooler(chart, 'Pooler', { backend, authUser: { secretName: 'pooler-auth' } })).toThrow(
      'test/Pooler: authUser "pooler-auth" looks passwords up with a function that its backend test/Theirs cannot install; '
      + 'list the clients\' Secrets in users instead, or ask the team that runs their-db for a lookup');
    expect(() => new PgBouncerPooler(chart, 'Users', { backend, users: [{ secretName: 'app' }] })).not.toThrow();
  });

  test('a balancer has its sr_check role and its exporter\'s role created there, and counts its connections', () => {
    const chart = testChart();
    const backend = new RecordingBackend(chart, 'Theirs', 2);
    const balancer = new PgpoolBalancer(chart, 'Balancer', {
      backend, users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'check' },
    });
    new ExporterSidecar(chart, 'Metrics', { target: balancer, credentials: { secretName: 'balancer-exporter' } });
    expect(backend.roles).toEqual([
      { client: 'test/Balancer', role: { credentials: { secretName: 'check' }, memberOf: ['pg_monitor'] } },
      {
        client: 'test/Balancer',
        role: { credentials: { secretName: 'balancer-exporter', usernameKey: 'username', passwordKey: 'password' }, ownSecret: true },
      },
    ]);
    // The exporter's SHOW commands run in a child, so it adds no line of its own.
    expect(backend.demands).toEqual([
      { consumer: 'test/Balancer', purpose: 'child pools', primary: balancer.connectionsPerBackend, replica: balancer.connectionsPerBackend },
      { consumer: 'test/Balancer', purpose: 'sr_check', primary: 2, replica: 2 },
      { consumer: 'test/Balancer', purpose: 'health check', primary: 2, replica: 2 },
    ]);
    expect(backend.lookupUsers).toEqual([]);
    expect(() => synthObjects(chart)).not.toThrow();
  });

  test('its superuser Secret is refused for an exporter in front, as a cluster\'s is', () => {
    const chart = testChart();
    const backend = new RecordingBackend(chart, 'Theirs', 0);
    const pooler = new PgBouncerPooler(chart, 'Pooler', { backend, users: [{ secretName: 'app' }] });
    expect(() => new ExporterSidecar(chart, 'Metrics', { target: pooler, credentials: { secretName: 'their-superuser' } }))
      .toThrow(/^test\/Pooler: grantMetricsAccess\(credentials\)\.secretName "their-superuser"/);
  });
});

describe('what the library\'s endpoints answer', () => {
  const ask: EndpointBindOptions = {
    roles: [{ credentials: { secretName: 'role' } }],
    passwordLookupUser: { secretName: 'auth' },
    connectionDemands: [{ consumer: 'app', primary: 3, replica: 1 }],
  };

  test('a cluster creates the roles, installs the lookup and checks the demand', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, instances: 2 });
    const client = new Construct(chart, 'Client');
    expect(cluster.bind(client, ask)).toEqual({
      rolesCreated: true, passwordLookup: PasswordLookup.INSTALLED_BY_BACKEND, connectionDemandChecked: true,
    });
    // The cluster's own settings agent comes first, then what the client asked for.
    expect(cluster._connectionDemands).toEqual([
      { consumer: 'test/Db settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: 1 },
      { consumer: 'app', primary: 3, replica: 1 },
    ]);
    const script = findObject(synthObjects(chart), 'ConfigMap', 'db-scripts').data['bootstrap.sh'];
    expect(script).toContain('GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO :"role_name";');
    expect(script).toContain('role-role-');
    expect(script).toContain('role-auth-');
  });

  test('an ExternalPostgres records nothing: roles and the lookup are its operator\'s', () => {
    const chart = testChart();
    const external = new ExternalPostgres(chart, 'Pg', { readWriteService: 'pg-rw' });
    expect(external.bind(new Construct(chart, 'Client'), ask)).toEqual({
      rolesCreated: false, passwordLookup: PasswordLookup.INSTALLED_BY_OPERATOR, connectionDemandChecked: false,
    });
  });

  test('a balancer records nothing and cannot install a lookup, and says what to do instead', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', SECRETS);
    const balancer = new PgpoolBalancer(chart, 'Balancer', {
      backend: cluster, users: [{ credentials: { secretName: 'app' } }], srCheckUser: { secretName: 'check' },
    });
    const before = cluster._connectionDemands;
    expect(balancer.bind(new Construct(chart, 'Client'), ask)).toEqual({
      rolesCreated: false,
      passwordLookup: PasswordLookup.UNAVAILABLE,
      passwordLookupAlternative: 'set authQuery with an auth user the balancer lists in its users',
      connectionDemandChecked: false,
    });
    expect(cluster._connectionDemands).toEqual(before);
  });
});

describe('rooms', () => {
  const lib = path.resolve(__dirname, '..', 'lib');
  const rooms = ['cluster', 'pooler', 'balancer', 'exporter'];

  test.each(['pooler', 'balancer', 'exporter'])('no file in lib/%s imports from another construct\'s room', (room) => {
    const crossings = fs.readdirSync(path.join(lib, room)).filter((file) => file.endsWith('.ts')).flatMap((file) => {
      const source = fs.readFileSync(path.join(lib, room, file), 'utf8');
      return [...source.matchAll(/from '\.\.\/(\w+)\//g)]
        .filter(([, target]) => target !== room && rooms.includes(target))
        .map(([statement]) => `${room}/${file}: ${statement}`);
    });
    expect(crossings).toEqual([]);
  });
});
