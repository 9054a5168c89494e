import { spawnSync } from 'child_process';
import { Chart } from 'cdk8s';
import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { KUBE_VERSIONS, validateManifests } from './support/kube-schema';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { renderPatroniUpgradeCoordinator } from '../lib/cluster/patroni-upgrade-coordinator';
import { postgresVersion } from '../lib/core/postgres-versions';

type Props = Partial<PostgresStatefulClusterProps>;

const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const UPGRADE: Props = { postgresVersion: 17, majorUpgrade: { fromVersion: 15 } };

function synth(props: Props = {}): any[] {
  const chart = testChart();
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, instances: 3, highAvailability: {}, ...props });
  return synthObjects(chart as Chart);
}

const statefulSet = (objects: any[]) => findObject(objects, 'StatefulSet', 'db');
const pod = (objects: any[]) => statefulSet(objects).spec.template.spec;
const init = (objects: any[], name: string) => pod(objects).initContainers.find((c: any) => c.name === name);
const env = (container: any) => Object.fromEntries(container.env.map((v: any) => [v.name, v.value ?? v.valueFrom]));
const scripts = (objects: any[]) => findObject(objects, 'ConfigMap', 'db-scripts').data;

describe('majorUpgrade in the HA mode renders', () => {
  test('nothing of it without the prop: a rolling update, no init step, no upgrade scripts', () => {
    const objects = synth({ postgresVersion: 17 });
    expect(statefulSet(objects).spec.updateStrategy).toEqual({ type: 'RollingUpdate' });
    expect(pod(objects).initContainers.map((c: any) => c.name)).toEqual(['certificate']);
    expect(pod(objects).volumes.map((v: any) => v.name)).not.toContain('old-binaries');
    expect(Object.keys(scripts(objects)).sort()).toEqual(['patroni-settings-agent.py', 'patroni-start.sh', 'provision.sh']);
  });

  test('every member copies the old binaries and runs patroni-upgrade.sh; the StatefulSet updates OnDelete', () => {
    const objects = synth(UPGRADE);
    for (const version of KUBE_VERSIONS) expect(validateManifests(objects, version)).toEqual([]);
    // A rolling update would start an old-major member on the new binaries, one pod at a time.
    expect(statefulSet(objects).spec.updateStrategy).toEqual({ type: 'OnDelete' });
    expect(pod(objects).initContainers.map((c: any) => c.name)).toEqual(['certificate', 'old-binaries', 'major-upgrade']);
    const copy = init(objects, 'old-binaries');
    const upgrade = init(objects, 'major-upgrade');
    const patroni = pod(objects).containers.find((c: any) => c.name === 'postgres');
    expect(copy.image).toBe(postgresVersion(15).highAvailabilityImage.image);
    expect(upgrade.image).toBe(patroni.image);
    expect(upgrade.command).toEqual(['/opt/cdk8s-postgres/patroni-upgrade.sh']);
    expect(env(upgrade)).toEqual({
      PGDATA: '/var/lib/postgresql/data/pgdata', POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } }, CREDENTIALS_DIR: '/etc/postgresql-secrets',
      CONFIG_FILE: '/var/lib/postgresql/data/pgdata.upgrade/postgresql.conf',
      POSTGRES_ROLE: 'primary', FROM_MAJOR: '15', TO_MAJOR: '17', TRANSFER: 'copy', OLD_BINDIR: '/opt/postgresql-old/bin',
      PATRONI_NAME: { fieldRef: { fieldPath: 'metadata.name' } }, PATRONI_KUBERNETES_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      PATRONI_CONFIG: '/etc/postgresql/patroni.yml', MEMBERS: 'db-0 db-1 db-2',
      COORDINATOR: '/opt/cdk8s-postgres/patroni-upgrade.py', MAJOR_UPGRADE_SCRIPT: '/opt/cdk8s-postgres/major-upgrade.sh',
    });
    // pg_upgrade starts the old server on Patroni's postgresql.conf: the certificate and the
    // superuser's name file it refers to must be there; the store's client reads patroni.yml.
    expect(upgrade.volumeMounts.map((m: any) => `${m.name}:${m.mountPath}`).sort()).toEqual([
      'config:/etc/postgresql', 'data:/var/lib/postgresql/data', 'old-binaries:/opt/postgresql-old', 'scripts:/opt/cdk8s-postgres',
      'secrets:/etc/postgresql-secrets', 'superuser-name:/etc/postgresql-superuser', 'tls:/etc/postgresql-tls', 'tmp:/tmp',
    ]);
    expect(pod(objects).volumes).toContainEqual({ name: 'old-binaries', emptyDir: { sizeLimit: '512Mi' } });
    // The store's client in the init step speaks to the API server with the pod's token, as Patroni does.
    expect(pod(objects).automountServiceAccountToken).not.toBe(false);
    expect(Object.keys(scripts(objects)).sort()).toEqual(['major-upgrade.sh', 'patroni-settings-agent.py', 'patroni-start.sh', 'patroni-upgrade.py', 'patroni-upgrade.sh', 'provision.sh']);
  });

  test('patroni-upgrade.sh is shellcheck-clean and runs major-upgrade.sh only when elected', () => {
    const script = scripts(synth(UPGRADE))['patroni-upgrade.sh'];
    expect(shellcheck(script)).toBe('');
    expect(script).toMatch(/^set -euo pipefail$/m);
    expect(script.match(/"\$MAJOR_UPGRADE_SCRIPT"/g)).toHaveLength(1);
    expect(script).toMatch(/upgrade\)\n\s+log "elected/);
  });
});

describe('majorUpgrade in the HA mode is refused at synth as in the plain mode', () => {
  const expectPropError = (props: Props, expected: ExpectedPropError) =>
    expectPropErrorMessage(thrownMessage(() => synth(props), JSON.stringify(props)), 'test/Db', expected);

  test('a downgrade', () => {
    expectPropError({ postgresVersion: 15, majorUpgrade: { fromVersion: 17 } }, { prop: 'majorUpgrade.fromVersion', value: '17', fix: /keep postgresVersion 17/ });
  });

  test('with a separate WAL volume', () => {
    expectPropError({ ...UPGRADE, storage: { walSize: '1Gi' } }, { prop: 'majorUpgrade', value: '"fromVersion":15', fix: /logical replication/ });
  });
});

/** patroni-upgrade.py's election, run by python3 with Patroni's modules stubbed (only `elect` is called). */
function elect(states: { [member: string]: object }, initialize = '7000000000000000001'): { winner?: string; refused?: string } {
  const program = `import json, sys, types
for name in ('patroni', 'patroni.config', 'patroni.dcs'):
    sys.modules[name] = types.ModuleType(name)
sys.modules['patroni.config'].Config = None
sys.modules['patroni.dcs'].get_dcs = None
source = sys.stdin.read()
namespace = {'__name__': 'coordinator'}
exec(source, namespace)
print(namespace['elect'](json.loads(sys.argv[1]), sys.argv[2]))`;
  const result = spawnSync('python3', ['-c', program, JSON.stringify(states), initialize], { input: renderPatroniUpgradeCoordinator('db'), encoding: 'utf8' });
  if (result.error) throw new Error(`python3 is not installed: ${result.error.message}`);
  if (result.status === 0) return { winner: result.stdout.trim() };
  const refused = /refused: (.*)/.exec(result.stderr)?.[1];
  if (result.status !== 1 || !refused) throw new Error(`python3 exited ${result.status}: ${result.stderr}`);
  return { refused };
}

describe('the election of the member that upgrades (patroni-upgrade.py)', () => {
  const SYSID = '7000000000000000001';
  const primary = (timeline: number, checkpoint: string) => ({ state: 'shut down', timeline, checkpoint, sysid: SYSID });
  const replica = (timeline: number, checkpoint: string) => ({ state: 'shut down in recovery', timeline, checkpoint, sysid: SYSID });

  test('the last leader, shut down as primary, ahead of its replicas', () => {
    expect(elect({ 'db-0': replica(1, '0/5000028'), 'db-1': primary(1, '0/6000028'), 'db-2': replica(1, '0/6000028') })).toEqual({ winner: 'db-1' });
  });

  test('a member with an empty volume is not weighed', () => {
    expect(elect({ 'db-0': { state: 'empty' }, 'db-1': primary(3, '0/6000028'), 'db-2': replica(3, '0/5000028') })).toEqual({ winner: 'db-1' });
  });

  test('a failover while the pods stopped: the primary of the newer timeline, whatever the older timeline\'s LSN', () => {
    expect(elect({ 'db-0': primary(1, '1/00000028'), 'db-1': primary(2, '0/FF000028'), 'db-2': replica(2, '0/FF000028') })).toEqual({ winner: 'db-1' });
  });

  test('LSNs compare as numbers, not as text', () => {
    expect(elect({ 'db-0': primary(1, '0/A000028'), 'db-1': primary(1, '0/9000028') }).winner).toBe('db-0');
    expect(elect({ 'db-0': primary(1, '9/0'), 'db-1': primary(1, '10/0') }).winner).toBe('db-1');
  });

  test('refused: a member that crashed, whose data may hold commits no clean member has', () => {
    expect(elect({ 'db-0': primary(1, '0/6000028'), 'db-1': { ...replica(1, '0/5000028'), state: 'in archive recovery' } }).refused)
      .toMatch(/db-1 was not shut down cleanly/);
    expect(elect({ 'db-0': { ...primary(1, '0/6000028'), state: 'in production' }, 'db-1': replica(1, '0/5000028') }).refused)
      .toMatch(/db-0 was not shut down cleanly: set the old postgresVersion back/);
  });

  test('refused: no primary, two primaries at one position, a replica ahead of the best primary', () => {
    expect(elect({ 'db-0': replica(1, '0/6000028'), 'db-1': replica(1, '0/5000028') }).refused).toMatch(/no member was shut down as the primary/);
    expect(elect({ 'db-0': primary(2, '0/6000028'), 'db-1': primary(2, '0/6000028') }).refused).toMatch(/db-1 and db-0 were both primaries/);
    expect(elect({ 'db-0': primary(1, '0/6000028'), 'db-1': replica(2, '0/5000028') }).refused).toMatch(/db-1 have data past db-0's shutdown checkpoint/);
  });

  test('refused: data of another system than the one the store names', () => {
    expect(elect({ 'db-0': primary(1, '0/6000028'), 'db-1': { ...replica(1, '0/5000028'), sysid: '7000000000000000002' } }).refused)
      .toMatch(/the data of db-1 is not the cluster 7000000000000000001/);
  });
});
