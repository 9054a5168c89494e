/**
 * The plain mode's settings changes: the pod template's checksum covers only what needs a
 * restart (reload-only settings and pg_hba.conf roll nothing), and the settings agent sidecar
 * beside PostgreSQL in every instance pod.
 */
import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { KUBE_VERSIONS, validateManifests } from './support/kube-schema';
import { checkPodSecurity } from './support/pod-security';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { CLUSTER_FILES } from '../lib/cluster/cluster-layout';
import { SETTINGS_AGENT_CONTAINER } from '../lib/cluster/plain-settings-agent';

const BASE: PostgresStatefulClusterProps = {
  instances: 3,
  superuserSecret: { secretName: 'db-superuser' },
  replicationSecret: { secretName: 'db-replication' },
};

function synth(props: Partial<PostgresStatefulClusterProps> = {}): any[] {
  const chart = testChart('shop');
  new PostgresStatefulCluster(chart, 'Db', { ...BASE, ...props });
  return synthObjects(chart);
}

const template = (objects: any[], statefulSet: string) => findObject(objects, 'StatefulSet', statefulSet).spec.template;
const checksums = (objects: any[]) => ['db-primary', 'db-replica'].map((name) => template(objects, name).metadata.annotations['checksum/config']);
const config = (objects: any[]) => findObject(objects, 'ConfigMap', 'db-config').data;
const scripts = (objects: any[]) => findObject(objects, 'ConfigMap', 'db-scripts').data;

describe('the plain mode\'s restart checksum', () => {
  const before = synth();

  test.each([
    ['work_mem (user)', { settings: { workMem: '6MB' } }],
    ['a sighup extra parameter (log_min_duration_statement)', { extraParameters: { log_min_duration_statement: '250ms' } }],
    ['pg_hba.conf (allowedCidrs)', { allowedCidrs: ['10.1.0.0/16'] }],
  ])('a reload-only change, %s, changes the files but keeps both pod templates', (_what, props) => {
    const after = synth(props);
    expect({ ...config(after), [CLUSTER_FILES.replicaSlots]: '' }).not.toEqual({ ...config(before), [CLUSTER_FILES.replicaSlots]: '' });
    expect(template(after, 'db-primary')).toEqual(template(before, 'db-primary'));
    expect(template(after, 'db-replica')).toEqual(template(before, 'db-replica'));
  });

  test.each([
    ['shared_buffers (postmaster)', { settings: { sharedBuffers: '64MB' } }],
    ['max_connections (postmaster)', { settings: { maxConnections: 120 } }],
    ['an extension\'s parameter, whose context the catalog does not know', { extraParameters: { 'pg_stat_statements.max': '2000' } }],
  ])('a change of %s changes the checksum of both StatefulSets', (_what, props) => {
    const [primary, replica] = checksums(synth(props));
    expect(primary).not.toBe(checksums(before)[0]);
    expect(replica).not.toBe(checksums(before)[1]);
  });

  test('a script change changes the checksum: a database added changes bootstrap.sh\'s provisioning', () => {
    const after = synth({ databases: [{ name: 'shop', owner: { secretName: 'shop-owner' } }] });
    expect(scripts(after)[CLUSTER_FILES.bootstrapScript]).not.toBe(scripts(before)[CLUSTER_FILES.bootstrapScript]);
    expect(checksums(after)).not.toEqual(checksums(before));
  });

  test('scaling changes the replica-slots file, not the primary\'s template', () => {
    const after = synth({ instances: 2 });
    expect(config(before)[CLUSTER_FILES.replicaSlots]).toBe('db_replica_0\ndb_replica_1\n');
    expect(config(after)[CLUSTER_FILES.replicaSlots]).toBe('db_replica_0\n');
    expect(template(after, 'db-primary')).toEqual(template(before, 'db-primary'));
  });
});

describe('the settings agent sidecar', () => {
  const objects = synth();
  const agent = (statefulSet: string) => template(objects, statefulSet).spec.containers.find((c: any) => c.name === SETTINGS_AGENT_CONTAINER);

  test('runs in the primary and replica pods, in the cluster\'s image, restricted, with small resources', () => {
    for (const [statefulSet, role] of [['db-primary', 'primary'], ['db-replica', 'replica']]) {
      const container = agent(statefulSet);
      const postgres = template(objects, statefulSet).spec.containers.find((c: any) => c.name === 'postgres');
      expect(container.image).toBe(postgres.image);
      expect(container.command).toEqual(['/opt/cdk8s-postgres/settings-agent.sh']);
      expect(container.env).toContainEqual({ name: 'POSTGRES_ROLE', value: role });
      expect(container.securityContext).toEqual(postgres.securityContext);
      expect(container.resources).toEqual({ requests: { cpu: '5m', memory: '32Mi' }, limits: { cpu: '100m', memory: '32Mi' } });
      expect(container.volumeMounts.map((m: any) => [m.name, m.mountPath, m.readOnly ?? false])).toEqual([
        ['config', '/etc/postgresql', true],
        ['scripts', '/opt/cdk8s-postgres', true],
        ['auth', '/run/postgresql-auth', true],
        ['superuser-name', '/etc/postgresql-superuser', true],
        ['socket', '/var/run/postgresql', false],
        ['tmp', '/tmp', false],
      ]);
      // No probe: the agent must never take PostgreSQL out of its Services.
      expect(container.readinessProbe).toBeUndefined();
      expect(template(objects, statefulSet).spec.shareProcessNamespace).toBeUndefined();
      expect(checkPodSecurity(template(objects, statefulSet))).toEqual([]);
    }
  });

  test('its script is shellcheck-clean', () => {
    const script: string = scripts(objects)[CLUSTER_FILES.settingsAgentScript];
    expect(script.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(shellcheck(script)).toBe('');
  });

  test('the replication role may reload and read the files\' errors: nothing more', () => {
    const grants = scripts(objects)[CLUSTER_FILES.bootstrapScript].split('\n').filter((line: string) => line.startsWith('GRANT') && line.includes('pg_catalog'));
    expect(grants).toEqual([
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO :"role_name";',
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_show_all_file_settings() TO :"role_name";',
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO :"role_name";',
      'GRANT SELECT ON pg_catalog.pg_file_settings TO :"role_name";',
      'GRANT SELECT ON pg_catalog.pg_hba_file_rules TO :"role_name";',
    ]);
  });

  test('counts one connection on every instance in the budget', () => {
    const chart = testChart();
    const cluster = new PostgresStatefulCluster(chart, 'Db', BASE);
    expect(cluster._connectionDemands).toContainEqual({ consumer: 'test/Db settings agent', purpose: 'reload, slot cleanup', primary: 1, replica: 1 });
  });

  test('the HA mode has no settings agent', () => {
    const ha = synth({ highAvailability: {} });
    expect(template(ha, 'db').spec.containers.map((c: any) => c.name)).not.toContain(SETTINGS_AGENT_CONTAINER);
    expect(Object.keys(scripts(ha))).not.toContain(CLUSTER_FILES.settingsAgentScript);
  });

  test.each(KUBE_VERSIONS)('the manifests validate against Kubernetes %s', (version) => {
    expect(validateManifests(objects, version)).toEqual([]);
  });
});
