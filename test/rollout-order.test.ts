import { spawnSync } from 'child_process';
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { shellcheck } from './support/shellcheck';
import { findObject } from './support/synth';
import { ROLLOUT_DETECT_SECONDS } from '../lib/cluster/rollout-order';

const SECRETS = { superuserSecret: { secretName: 'db-superuser' }, replicationSecret: { secretName: 'db-replication' } };

function synth(props: Partial<PostgresStatefulClusterProps>): any[] {
  const chart = new Chart(Testing.app(), 'test', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
  return chart.toJson();
}

const postgres = (objects: any[], statefulSet: string) =>
  findObject(objects, 'StatefulSet', statefulSet).spec.template.spec.containers.find((c: any) => c.name === 'postgres');

describe('plain mode: the primary stops after its replicas', () => {
  const objects = synth({ instances: 3, terminationGracePeriod: Duration.seconds(90) });
  const primary = postgres(objects, 'db-primary');
  const replica = postgres(objects, 'db-replica');
  const hook = primary.lifecycle.preStop.exec.command;

  test('the primary\'s hook is primary-stop.sh inline, with the pod\'s paths and port; the replicas keep the plain fast stop', () => {
    expect(hook[0]).toBe('bash');
    expect(hook[1]).toBe('-c');
    expect(hook.slice(3)).toEqual(['primary-stop', '--pgdata=/var/lib/postgresql/data/pgdata', '--host=/var/run/postgresql', '--port=5432',
      '--passfile=/run/postgresql-auth/pgpass']);
    expect(replica.lifecycle.preStop.exec.command).toEqual(['pg_ctl', 'stop', '--pgdata=/var/lib/postgresql/data/pgdata', '--mode=fast', '--wait', '--timeout=85']);
  });

  test('the hook logs in as the replication role, whose name it reads from the passfile: nothing reaches the environment', () => {
    expect(primary.env).toBeUndefined();
    const script = `${hook[2].slice(0, hook[2].indexOf('# streams:'))}\nprintf '%s' "$user"\n`;
    const passfile = (line: string) => {
      const file = join(mkdtempSync(join(tmpdir(), 'passfile-')), 'pgpass');
      writeFileSync(file, `${line}\n`);
      return spawnSync('bash', ['-c', script, 'primary-stop', '--pgdata=/x', '--host=/x', '--port=1', `--passfile=${file}`], { encoding: 'utf8' });
    };
    expect(passfile('*:*:*:replicator:secret').stdout).toBe('replicator');
    expect(passfile('*:*:*:re\\:pl\\\\i:se\\:cret').stdout).toBe('re:pl\\i');
  });

  test('the script is shellcheck-clean, finds the replicas\' slots by their prefix, and keeps a third of the grace period for the shutdown', () => {
    const script = hook[2];
    expect(shellcheck(`#!/usr/bin/env bash\n${script}`)).toBe('');
    expect(script).toContain("replica_slots=\"slot_type = 'physical' AND starts_with(slot_name, 'db_replica_')\"");
    expect(script).not.toContain('db_replica_0');
    expect(script).toContain('grace=90\n');
    expect(script).toContain(`detect=${ROLLOUT_DETECT_SECONDS}\n`);
    expect(script).toContain('wait_limit=55\n');
    expect(script).toContain('exec pg_ctl stop --pgdata="$pgdata" --mode=fast --wait');
  });

  test('the primary\'s template does not depend on the replica count: scaling the replicas does not restart it', () => {
    const template = (instances: number) => findObject(synth({ instances }), 'StatefulSet', 'db-primary').spec.template;
    expect(template(2)).toEqual(template(3));
    expect(template(2)).toEqual(template(5));
  });
});

describe('HA mode: the leader hands over before its pod stops', () => {
  const variants: [string, Partial<PostgresStatefulClusterProps>, string][] = [
    ['with tls.disabled', { instances: 3, highAvailability: {}, tls: { disabled: true } } as any, "API = 'http://127.0.0.1:' + PORT"],
    ['with the default TLS', { instances: 3, highAvailability: {} }, "API = 'https://127.0.0.1:' + PORT"],
  ];
  test.each(variants)('%s: every member runs leader-handover.py inline, with its REST port and template revision', (_, props, api) => {
    const objects = synth(props);
    const container = postgres(objects, 'db');
    const hook = container.lifecycle.preStop.exec.command;
    expect([hook[0], hook[1], hook[3]]).toEqual(['python3', '-c', '--port=8008']);
    expect(hook[2]).toContain(api);
    expect(container.env).toContainEqual({ name: 'POD_TEMPLATE_REVISION', valueFrom: { fieldRef: { fieldPath: "metadata.labels['controller-revision-hash']" } } });
    // Python compiles it.
    const compiled = spawnSync('python3', ['-c', 'import sys; compile(sys.stdin.read(), "leader-handover.py", "exec")'], { input: hook[2], encoding: 'utf8' });
    expect(compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);
  });

  test('patroni-start.sh writes the revision as the pod_template member tag, and stays shellcheck-clean', () => {
    const scripts = findObject(synth({ instances: 3, highAvailability: {} }), 'ConfigMap', 'db-scripts').data;
    const start = scripts['patroni-start.sh'];
    expect(shellcheck(start)).toBe('');
    expect(start).toContain('printf \'tags:\\n  pod_template: %s\\n\' "$(yaml_value "$POD_TEMPLATE_REVISION")" > "$config_dir/tags.yml"');
  });
});
