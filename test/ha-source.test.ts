import { spawnSync } from 'child_process';
import { parse } from 'yaml';
import { CloneMethod, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { REPOSITORY_ONLY, SOURCE, STREAMING_ONLY } from './support/source-clusters';
import { findObject, synthObjects, testChart } from './support/synth';

type Props = Partial<PostgresStatefulClusterProps>;

/** An HA cluster `orders-dr` (2 members, TLS with a CA) in namespace `dr`. */
function synth(props: Props = {}): any[] {
  const chart = testChart('dr');
  new PostgresStatefulCluster(chart, 'OrdersDr', {
    name: 'orders-dr', instances: 2, superuserSecret: { secretName: 'orders-superuser' }, replicationSecret: { secretName: 'orders-dr-replication' },
    tls: { secretName: 'orders-dr-tls' }, highAvailability: {}, ...props,
  });
  return synthObjects(chart);
}

const patroniYml = (objects: any[]) => parse(findObject(objects, 'ConfigMap', 'orders-dr-patroni').data['patroni.yml'], { version: '1.1' });
const dynamicJson = (objects: any[]) => JSON.parse(findObject(objects, 'ConfigMap', 'orders-dr-patroni').data['patroni-dynamic.json']);
const scripts = (objects: any[]): { [file: string]: string } => findObject(objects, 'ConfigMap', 'orders-dr-scripts').data;
const RESTORE_COMMAND = 'pgbackrest --config=/etc/pgbackrest-source/source.conf --stanza=orders archive-get %f "%p"';

describe('HA standby cluster: Patroni\'s standby_cluster', () => {
  const objects = synth({ standby: { source: SOURCE } });

  test('bootstrap.dcs and patroni-dynamic.json carry standby_cluster: the source\'s -rw Service, its restore_command, the backup first', () => {
    const standby = {
      host: 'orders-rw.shop.svc', port: 5432, restore_command: RESTORE_COMMAND, create_replica_methods: ['source_backup', 'basebackup'],
    };
    expect(patroniYml(objects).bootstrap.dcs.standby_cluster).toEqual(standby);
    expect(dynamicJson(objects).standby_cluster).toEqual(standby);
    // The replica method runs with no connection. Patroni creates every member of a standby cluster by these methods
    // (the others then stream from the standby leader), so postgresql.create_replica_methods stays unset.
    expect(patroniYml(objects).postgresql.source_backup).toEqual({ command: '/opt/cdk8s-postgres/patroni-source.sh', no_leader: true });
    expect(patroniYml(objects).postgresql.create_replica_methods).toBeUndefined();
    expect(patroniYml(objects).bootstrap.method).toBeUndefined();
  });

  test('streaming: replication and pg_rewind as the source\'s replication role, verified against both CAs written by patroni-start.sh', () => {
    const authentication = patroniYml(objects).postgresql.authentication;
    expect(authentication.replication).toEqual({ sslmode: 'verify-full', sslrootcert: '/run/patroni/replication-ca.crt' });
    expect(authentication.rewind).toEqual(authentication.replication);
    const start = scripts(objects)['patroni-start.sh'];
    expect(start).toContain("yaml_credentials '      ' source-replication");
    expect(start).not.toMatch(/yaml_credentials '\s+' replication$/m);
    expect(start).toContain('cat -- /etc/postgresql-tls/ca.crt /etc/postgresql-source-ca/ca.crt > /run/patroni/replication-ca.crt.tmp');
    expect(shellcheck(start)).toBe('');
  });

  test('from the repository only: no host, only the backup method; from streaming only: basebackup, no patroni-source.sh method', () => {
    expect(dynamicJson(synth({ standby: { source: REPOSITORY_ONLY } })).standby_cluster)
      .toEqual({ restore_command: RESTORE_COMMAND, create_replica_methods: ['source_backup'] });
    const streaming = synth({ standby: { source: STREAMING_ONLY } });
    expect(dynamicJson(streaming).standby_cluster).toEqual({ host: 'orders-rw.shop.svc', port: 5432, create_replica_methods: ['basebackup'] });
    expect(patroniYml(streaming).postgresql.source_backup).toBeUndefined();
    // Repository only: the members replicate with the cluster's replication Secret, as without standby.
    const repositoryOnly = synth({ standby: { source: REPOSITORY_ONLY } });
    expect(scripts(repositoryOnly)['patroni-start.sh']).not.toContain('source-replication');
    expect(patroniYml(repositoryOnly).postgresql.authentication.replication.sslrootcert).toBe('/etc/postgresql-tls/ca.crt');
  });

  test('promotion is the prop\'s removal: patroni-dynamic.json loses standby_cluster, which the settings agent then removes from the store', () => {
    const promoted = synth();
    expect(dynamicJson(promoted).standby_cluster).toBeUndefined();
    const { standby_cluster: _section, ...rest } = dynamicJson(objects);
    expect(dynamicJson(promoted)).toEqual(rest);
  });

  test('patroni-source.sh restores the source\'s latest backup as a standby for --role=replica, and is shellcheck-clean', () => {
    const script = scripts(objects)['patroni-source.sh'];
    expect(script).toContain('pgbackrest --config=/etc/pgbackrest-source/source.conf --stanza=orders --repo=1 --pg1-path="$datadir" --type=standby restore');
    expect(script).not.toContain('pg_basebackup');
    expect(script).not.toContain('postgres --single');
    expect(shellcheck(script)).toBe('');
  });
});

describe('HA clone: Patroni\'s custom bootstrap', () => {
  test.each([
    ['from a backup', CloneMethod.FROM_BACKUP,
      /CONFIG_FILE=\/etc\/postgresql\/postgresql\.conf PGBACKREST_CONFIG=\/etc\/pgbackrest-source\/source\.conf \\\n {2}\/etc\/pgbackrest-source\/restore\.sh/],
    ['from the running cluster', CloneMethod.FROM_RUNNING_CLUSTER, /pg_basebackup --pgdata="\$datadir" --wal-method=stream/],
  ])('%s: bootstrap.method clone runs patroni-source.sh, which then makes the superuser role; no standby_cluster', (_what, method, copy) => {
    const objects = synth({ clone: { source: SOURCE, method } });
    const config = patroniYml(objects);
    expect(config.bootstrap.method).toBe('clone');
    expect(config.bootstrap.clone).toEqual({ command: '/opt/cdk8s-postgres/patroni-source.sh' });
    expect(config.bootstrap.dcs.standby_cluster).toBeUndefined();
    // Its own replication role, as any cluster's.
    expect(config.postgresql.authentication.replication.sslrootcert).toBe('/etc/postgresql-tls/ca.crt');
    const script = scripts(objects)['patroni-source.sh'];
    expect(script).toMatch(copy);
    // restore.sh's temporary server reads the rendered postgresql.conf, which Patroni's clone from a running cluster needs not.
    const configFiles = Object.keys(findObject(objects, 'ConfigMap', 'orders-dr-patroni').data);
    expect(configFiles.includes('postgresql.conf')).toBe(method === CloneMethod.FROM_BACKUP);
    expect(script.indexOf('postgres --single')).toBeGreaterThan(script.search(copy));
    expect(shellcheck(script)).toBe('');
  });

  test('the superuser\'s name from its Secret is quoted as a literal and an identifier for single-user mode', () => {
    const script = scripts(synth({ clone: { source: SOURCE } }))['patroni-source.sh'];
    const lines = /^name=\$\(secret superuser username\)\n[^]*?postgres --single .*$/m.exec(script)![0];
    const run = spawnSync('/bin/bash', ['--norc', '--noprofile', '-c', `secret() { printf '%s' "$NAME"; }\npostgres() { cat >&2; }\n${lines}`], {
      encoding: 'utf8', env: { PATH: '/usr/bin:/bin', NAME: 'o\'neil "x"', datadir: '/d' },
    });
    expect(run.status).toBe(0);
    // The stub prints what single-user mode would read on stderr (the script sends postgres's stdout away).
    expect(run.stderr).toBe('DO $do$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = \'o\'\'neil "x"\') '
      + 'THEN CREATE ROLE "o\'neil ""x""" SUPERUSER LOGIN; END IF; END $do$;\n');
  });
});

describe('HA standby: refusals', () => {
  test.each([
    ['the default self-signed certificates', {}, '"a self-signed certificate"'],
    ['tls disabled', { disabled: true }, '"disabled"'],
  ])('streaming with %s is refused: the members would verify each other with the source\'s CA; from the repository only it is accepted', (_what, tls, value) => {
    const message = thrownMessage(() => synth({ tls, standby: { source: SOURCE } }), `standby with tls ${JSON.stringify(tls)}`);
    expectPropErrorMessage(message, 'test/OrdersDr', { prop: 'tls', value, fix: /^ set tls to a Secret with ca\.crt/ });
    expect(dynamicJson(synth({ tls, standby: { source: REPOSITORY_ONLY } })).standby_cluster.restore_command).toBe(RESTORE_COMMAND);
    // A clone from the running source verifies the source with the source's CA alone.
    expect(patroniYml(synth({ tls, clone: { source: STREAMING_ONLY } })).bootstrap.method).toBe('clone');
  });
});
