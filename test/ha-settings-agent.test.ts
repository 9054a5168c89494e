import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Duration } from 'cdk8s';
import { parse } from 'yaml';
import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';

type Props = Partial<PostgresStatefulClusterProps>;

/** A cluster `Db` (3 members, HA) in namespace `shop`. */
function synth(props: Props = {}): any[] {
  const chart = testChart('shop');
  new PostgresStatefulCluster(chart, 'Db', {
    superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, instances: 3, highAvailability: {}, ...props,
  });
  return synthObjects(chart);
}

const configFile = (objects: any[], file: string): string => findObject(objects, 'ConfigMap', 'db-patroni').data[file];
const scriptFile = (objects: any[], file: string): string => findObject(objects, 'ConfigMap', 'db-scripts').data[file];
const template = (objects: any[]) => findObject(objects, 'StatefulSet', 'db').spec.template;
const BASE: Props = { settings: { workMem: '4MB', maxConnections: 100 } };

describe('HA settings agent: rendered files', () => {
  const objects = synth({ ...BASE, highAvailability: { synchronousMode: true }, tls: { secretName: 'db-tls' } });

  test('patroni-dynamic.json is bootstrap.dcs: one source for the store\'s first configuration and the one the agent keeps', () => {
    const dynamic = JSON.parse(configFile(objects, 'patroni-dynamic.json'));
    expect(dynamic).toEqual(parse(configFile(objects, 'patroni.yml'), { version: '1.1' }).bootstrap.dcs);
    expect(dynamic).toMatchObject({ ttl: 30, loop_wait: 10, synchronous_mode: true, postgresql: { parameters: { max_connections: 100, work_mem: '4MB' } } });
  });

  test('patroni-start.sh starts the agent in the background before it execs Patroni, and is shellcheck-clean', () => {
    const script = scriptFile(objects, 'patroni-start.sh');
    expect(shellcheck(script)).toBe('');
    const launch = script.indexOf('python3 /opt/cdk8s-postgres/patroni-settings-agent.py "$1" /etc/postgresql/patroni-dynamic.json "$patroni_pid"');
    expect(launch).toBeGreaterThan(0);
    expect(launch).toBeLessThan(script.indexOf('exec patroni'));
    expect(script).toMatch(/\) < \/dev\/null &\n/);
  });

  test('the agent is Python that compiles, calls the REST API over HTTPS and verifies other members against the CA', () => {
    const agent = scriptFile(objects, 'patroni-settings-agent.py');
    const compiled = spawnSync('python3', ['-c', 'import sys; compile(sys.stdin.read(), "patroni-settings-agent.py", "exec")'], { input: agent, encoding: 'utf8' });
    expect(compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);
    expect(agent).toContain("SCHEME = 'https'");
    expect(agent).toContain("AUTHORITY = '/etc/postgresql-tls/ca.crt'");
    expect(scriptFile(synth({ tls: { disabled: true } }), 'patroni-settings-agent.py')).toContain("SCHEME = 'http'");
  });

  /** The agent's config_patch(current, desired), run by python3 on the rendered script without its main loop. */
  function configPatch(current: object, desired: object): any {
    const agent = scriptFile(objects, 'patroni-settings-agent.py').replace(/\nmain\(\)\n$/, '\n');
    const program = `${agent}\nprint(json.dumps(config_patch(json.loads(sys.argv[4]), json.loads(sys.argv[5]))))\n`;
    const result = spawnSync('python3', ['-c', program, 'patroni.yml', 'patroni-dynamic.json', '1', JSON.stringify(current), JSON.stringify(desired)], {
      encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PATRONI_NAME: 'db-0', PATRONI_RESTAPI_CONNECT_ADDRESS: 'db-0.db-headless:8008' },
    });
    if (result.status !== 0) throw new Error(result.stderr);
    return JSON.parse(result.stdout);
  }

  test('the agent\'s patch: changed keys and parameters, null for a parameter the props dropped, nothing else of the store touched', () => {
    const desired = { ttl: 30, loop_wait: 10, postgresql: { use_slots: true, parameters: { max_connections: 120, work_mem: '4MB' } } };
    const current = {
      ttl: 30, loop_wait: 5, slots: { x: { type: 'physical' } },
      postgresql: { use_slots: true, parameters: { max_connections: 100, work_mem: '4MB', log_min_duration_statement: '1s' } },
    };
    expect(configPatch(current, desired)).toEqual({
      loop_wait: 10, postgresql: { parameters: { max_connections: 120, log_min_duration_statement: null } },
    });
    expect(configPatch(desired, desired)).toEqual({});
  });

  test('standby_cluster is the props\' whole: dropped, it is removed (the promotion); a key dropped from it is removed; set, it is added', () => {
    const standby = { host: 'orders-rw.shop.svc', port: 5432, restore_command: 'pgbackrest archive-get %f "%p"' };
    const base = { ttl: 30, postgresql: { parameters: {} } };
    expect(configPatch({ ...base, standby_cluster: standby }, base)).toEqual({ standby_cluster: null });
    const { restore_command: _dropped, ...streamingOnly } = standby;
    expect(configPatch({ ...base, standby_cluster: standby }, { ...base, standby_cluster: streamingOnly }))
      .toEqual({ standby_cluster: { host: 'orders-rw.shop.svc', port: 5432, restore_command: null } });
    expect(configPatch(base, { ...base, standby_cluster: standby })).toEqual({ standby_cluster: standby });
    expect(configPatch({ ...base, standby_cluster: standby }, { ...base, standby_cluster: standby })).toEqual({});
  });
});

describe('HA settings agent: a pass', () => {
  /** One pass of the agent (its script in a scratch scripts directory, with or without major-upgrade.sh beside it) after patroni.yml changed; its log. */
  function passAfterChange(upgrading: boolean): string {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'));
    try {
      const agent = scriptFile(synth({ tls: { disabled: true } }), 'patroni-settings-agent.py').replace(/\nmain\(\)\n$/, '\n');
      writeFileSync(join(dir, 'patroni-settings-agent.py'), `${agent}\nagent = Agent()\nopen(CONFIG, 'a').write('# changed')\nagent.run_once()\n`);
      if (upgrading) writeFileSync(join(dir, 'major-upgrade.sh'), '');
      writeFileSync(join(dir, 'patroni.yml'), 'scope: db\n');
      writeFileSync(join(dir, 'patroni-dynamic.json'), '{}');
      mkdirSync(join(dir, 'patroni-api'));
      writeFileSync(join(dir, 'patroni-api', 'username'), 'patroni');
      writeFileSync(join(dir, 'patroni-api', 'password'), 'api-secret');
      // Port 9 (discard): nothing answers the REST API.
      const result = spawnSync('python3', [join(dir, 'patroni-settings-agent.py'), join(dir, 'patroni.yml'), join(dir, 'patroni-dynamic.json'), '1'], {
        encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PATRONI_NAME: 'db-0', PATRONI_RESTAPI_CONNECT_ADDRESS: '127.0.0.1:9', CREDENTIALS_DIR: dir },
      });
      expect(result.status).toBe(0);
      return result.stderr;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('a changed patroni.yml is reloaded through the REST API; while majorUpgrade is set (major-upgrade.sh beside the agent) nothing is applied', () => {
    expect(passAfterChange(false)).toMatch(/settings-agent db-0: patroni\.yml changed, reload refused \(0\)/);
    const upgrading = passAfterChange(true);
    expect(upgrading).toContain('settings-agent db-0: majorUpgrade is set: settings wait until it is removed');
    expect(upgrading).not.toContain('reload');
    expect(upgrading).not.toContain('api-secret');
  });
});

describe('HA pod template checksum: what the agent applies rolls no pod', () => {
  const before = template(synth(BASE));

  test.each([
    ['a reload-only parameter', { settings: { ...BASE.settings, workMem: '8MB' } }],
    ['a parameter every member shares, which needs a restart', { settings: { ...BASE.settings, maxConnections: 200 } }],
    ['an extra parameter', { ...BASE, extraParameters: { log_min_duration_statement: '250ms' } }],
    ['the dynamic configuration', { ...BASE, highAvailability: { synchronousMode: true, maximumLagOnFailover: 2097152, primaryStartTimeout: Duration.seconds(60) } }],
    ['pg_hba (allowedCidrs)', { ...BASE, allowedCidrs: ['10.0.0.0/8'] }],
  ] as Array<[string, Props]>)('%s: same template', (_what, props) => {
    const after = synth(props);
    expect(template(after)).toEqual(before);
    expect(configFile(after, 'patroni.yml')).not.toBe(configFile(synth(BASE), 'patroni.yml'));
  });

  test('a script change (a new database for provision.sh) and a patroni.yml section only a restart applies (tls) change it', () => {
    const database = synth({ ...BASE, databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }] });
    expect(template(database).metadata.annotations['checksum/config']).not.toBe(before.metadata.annotations['checksum/config']);
    const tls = synth({ ...BASE, tls: { secretName: 'db-tls' } });
    expect(template(tls).metadata.annotations['checksum/config']).not.toBe(before.metadata.annotations['checksum/config']);
  });
});
