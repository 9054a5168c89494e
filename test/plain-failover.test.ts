import { spawnSync } from 'child_process';
import { Chart, Testing } from 'cdk8s';
import { BackupRepository, PostgresStatefulCluster, PostgresStatefulClusterProps, PrimaryRecovery } from '../lib';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject } from './support/synth';
import { postgresVersion } from '../lib/core/postgres-versions';

const SECRETS = { superuserSecret: { secretName: 'db-superuser' }, replicationSecret: { secretName: 'db-replication' } };
const RECOVERY = PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA;

function synth(props: Partial<PostgresStatefulClusterProps>): any[] {
  const chart = new Chart(Testing.app(), 'test', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
  return chart.toJson();
}

const template = (objects: any[], statefulSet: string) => findObject(objects, 'StatefulSet', statefulSet).spec.template;
const bootstrapEnv = (objects: any[], statefulSet: string): { [name: string]: string } => Object.fromEntries(
  template(objects, statefulSet).spec.initContainers.find((c: any) => c.name === 'bootstrap').env
    .filter((variable: any) => 'value' in variable).map((variable: any) => [variable.name, variable.value]));
const bootstrapScript = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-scripts').data['bootstrap.sh'];

/** Runs bash functions of the rendered script (each from its `name() {` line to its closing `}`), then `call`. */
function runFunctions(script: string, names: string[], call: string): string {
  const bodies = names.map((name) => {
    const start = script.indexOf(`\n${name}() {\n`);
    expect(start).toBeGreaterThan(0);
    return script.slice(start + 1, script.indexOf('\n}\n', start) + 3);
  });
  const result = spawnSync('bash', ['-c', `set -euo pipefail\n${bodies.join('\n')}\n${call}`], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  return result.stdout;
}

describe('plain mode: whose data an instance starts on', () => {
  const objects = synth({ instances: 3 });
  const script = bootstrapScript(objects);

  test('both StatefulSets give bootstrap.sh the headless Service, which resolves to every instance pod; no replica list', () => {
    for (const statefulSet of ['db-primary', 'db-replica']) {
      expect(bootstrapEnv(objects, statefulSet)).toMatchObject({ HEADLESS_SERVICE: 'db-headless', PRIMARY_RECOVERY: '' });
    }
    expect(JSON.stringify(template(objects, 'db-primary'))).not.toContain('db-replica-');
  });

  test('primaryRecovery reaches only the primary, whose template stays independent of the replica count', () => {
    const recovering = (instances: number) => synth({ instances, primaryRecovery: RECOVERY });
    expect(bootstrapEnv(recovering(3), 'db-primary').PRIMARY_RECOVERY).toBe('from-most-advanced-replica');
    expect(template(recovering(3), 'db-replica')).toEqual(template(objects, 'db-replica'));
    expect(template(recovering(2), 'db-primary')).toEqual(template(recovering(5), 'db-primary'));
    // The slots it makes for the replicas come from the Config ConfigMap, which the kubelet refreshes in place.
    expect(script).toContain('slots=$(< "${CONFIG_FILE%/*}/replica-slots")');
    expect(findObject(objects, 'ConfigMap', 'db-config').data['replica-slots']).toBe('db_replica_0\ndb_replica_1\n');
    expect(synth({ instances: 3, primaryRecovery: PrimaryRecovery.REFUSE })).toEqual(objects);
  });

  test('a replica checks its data before it starts, the primary asks the other pods before initdb, and the script stays shellcheck-clean', () => {
    expect(shellcheck(script)).toBe('');
    expect(script).toMatch(/if \[\[ \$POSTGRES_ROLE == replica && \$\(data_major "\$PGDATA"\) == "\$\(binaries_major\)" \]\]; then\n {4}check_replica_data\n/);
    const initialize = script.slice(script.indexOf('initialize_primary() {'));
    expect(initialize.indexOf('replica=$(empty_primary_source)')).toBeGreaterThan(initialize.indexOf('"$RESTORE_SCRIPT"'));
    expect(initialize.indexOf('replica=$(empty_primary_source)')).toBeLessThan(initialize.indexOf('initdb --pgdata'));
    // A pod where nothing listens is skipped after at most 3 s; IDENTIFY_SYSTEM goes over the replication connection.
    expect(script).toContain('pg_isready --dbname="$conninfo" --timeout=3 --quiet || status=$?');
    expect(script).toContain('PGCONNECT_TIMEOUT=3 psql --dbname="$conninfo replication=true"');
  });

  test('WAL positions compare as numbers, and a timeline\'s end is read from the history, hex-encoded (bytea) or plain', () => {
    expect(runFunctions(script, ['lsn_number'], 'lsn_number 0/402F680; echo; lsn_number 1/0; echo; lsn_number A/10'))
      .toBe(`${0x402f680}\n${2 ** 32}\n${10 * 2 ** 32 + 16}`);
    const history = '1\t0/3000060\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n';
    const hex = `\\x${Buffer.from(history).toString('hex')}`;
    const ends = (text: string, timeline: number) => runFunctions(script, ['history_switch'], `history_switch '${text}' ${timeline}`);
    expect(ends(hex, 1)).toBe('0/3000060\n');
    expect(ends(hex, 2)).toBe('0/5000000\n');
    expect(ends(hex, 3)).toBe('');
    expect(ends(history, 2)).toBe('0/5000000\n');
  });

  test('the refusals name the ways out: the PVCs to delete (the WAL volume\'s too) and primaryRecovery', () => {
    expect(runFunctions(script, ['pvc_advice'], 'PG_WALDIR=""; pvc_advice db-replica-1'))
      .toBe('kubectl delete pvc --wait=false data-db-replica-1 && kubectl delete pod db-replica-1');
    expect(runFunctions(script, ['pvc_advice'], 'PG_WALDIR=/w; pvc_advice db-primary-0'))
      .toBe('kubectl delete pvc --wait=false data-db-primary-0 wal-db-primary-0 && kubectl delete pod db-primary-0');
    expect(script).toContain('set primaryRecovery to PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA');
    expect(script).toContain('Never promote a replica of the plain mode by hand');
  });
});

describe('primaryRecovery is refused where it cannot work', () => {
  const cases: [string, Partial<PostgresStatefulClusterProps>, RegExp][] = [
    ['with highAvailability', { highAvailability: {} }, /drop primaryRecovery/],
    ['with one instance', { instances: 1 }, /set instances to 2 or more, or drop primaryRecovery/],
    ['with settings.hotStandby false', { settings: { hotStandby: false } }, /set settings.hotStandby to true/],
  ];
  test.each(cases)('%s', (_, props, fix) => {
    const message = thrownMessage(() => synth({ instances: 3, primaryRecovery: RECOVERY, ...props }), 'primaryRecovery');
    expectPropErrorMessage(message, 'test/Db', { prop: 'primaryRecovery', value: '"from-most-advanced-replica"', fix });
  });

  test('with backup.restore', () => {
    const message = thrownMessage(() => synth({
      instances: 3, primaryRecovery: RECOVERY, image: postgresVersion().highAvailabilityImage.image, tls: { issuer: { name: 'ca' } },
      backup: { repositories: [BackupRepository.volume()], restore: {} },
    }), 'primaryRecovery with backup.restore');
    expectPropErrorMessage(message, 'test/Db', { prop: 'primaryRecovery', value: '"from-most-advanced-replica"', fix: /drop one of them/ });
  });

  test('a value outside the enum', () => {
    const message = thrownMessage(() => synth({ instances: 3, primaryRecovery: 'promote' as PrimaryRecovery }), 'a bad primaryRecovery');
    expectPropErrorMessage(message, 'test/Db', { prop: 'primaryRecovery', value: '"promote"', fix: /PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA/ });
  });
});
