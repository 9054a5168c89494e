/**
 * The wiring of `backup` into PostgresStatefulCluster, in both modes: what the cluster's own
 * objects carry because of it (parameters, pod additions, the Certificate, the NetworkPolicy,
 * the restore hook). The backup module itself is tested alone in test/backup.test.ts.
 */
import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Duration } from 'cdk8s';
import { parse } from 'yaml';
import { BackupOptions, BackupRepository, ExporterSidecar, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { RESTORE_ENVIRONMENT } from '../lib/backup';
import { validateManifests } from './support/kube-schema';
import { mayConnect, mayReachOutside, Pod } from './support/network-policy-eval';
import { validatePatroniConfig } from './support/patroni-pod';
import { podTemplatesOf } from './support/pod-security';
import { ExpectedPropError, expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { shellcheck } from './support/shellcheck';
import { findObject, synthObjects, testChart } from './support/synth';
import { postgresVersion } from '../lib/core/postgres-versions';

type Props = Partial<PostgresStatefulClusterProps>;
type Mode = 'plain' | 'ha';

const NS = 'shop';
const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const TLS = { issuer: { name: 'ca' } };
const S3_PORT = 9000;
const S3 = {
  bucket: 'shop-backups', endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1', port: S3_PORT,
  credentials: { secretName: 'shop-s3' }, cipher: { secretName: 'shop-cipher' },
};
const repositories = () => [BackupRepository.volume(), BackupRepository.s3(S3)];
const BACKUP: BackupOptions = { repositories: repositories() };
const RESTORE: BackupOptions = { repositories: repositories(), restore: {} };
const MODES: Mode[] = ['plain', 'ha'];
/** The plain mode's default image has no pgBackRest; the HA mode's has. */
const PGBACKREST_IMAGE = postgresVersion().highAvailabilityImage.image;
/** The instance StatefulSets of each mode. */
const INSTANCE_SETS: { [mode in Mode]: string[] } = { plain: ['db-primary', 'db-replica'], ha: ['db'] };

/** A cluster `Db` (name `db`, 2 instances) in namespace `shop`, with tls and the given backup; an ExporterSidecar when asked. */
function synth(mode: Mode, props: Props = {}, exporter = false): any[] {
  const chart = testChart(NS);
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    ...SECRETS, instances: 2, tls: TLS, backup: BACKUP, ...(mode === 'ha' ? { highAvailability: {} } : { image: PGBACKREST_IMAGE }), ...props,
  });
  if (exporter) new ExporterSidecar(chart, 'Metrics', { target: cluster, credentials: { secretName: 'metrics-exporter' } });
  return synthObjects(chart);
}

const ofKind = (objects: any[], kind: string) => objects.filter((o) => o.kind === kind);
const template = (objects: any[], name: string) => findObject(objects, 'StatefulSet', name).spec.template;
const podSpec = (objects: any[], name: string) => template(objects, name).spec;
const container = (spec: any, name: string) => [...spec.initContainers ?? [], ...spec.containers].find((c: any) => c.name === name);
const postgres = (objects: any[], name: string) => container(podSpec(objects, name), 'postgres');
const bootstrap = (objects: any[], name: string) => container(podSpec(objects, name), 'bootstrap');
const envOf = (c: any, name: string) => c.env?.find((e: any) => e.name === name);
const mountOf = (c: any, volume: string) => c.volumeMounts.find((m: any) => m.name === volume);
const volumeOf = (spec: any, name: string) => spec.volumes.find((v: any) => v.name === name);

const pgbackrestFiles = (objects: any[]): { [file: string]: string } => findObject(objects, 'ConfigMap', 'db-pgbackrest').data;
/** The path a container sees a file of the pgBackRest ConfigMap at, through its mount of the config volume. */
function mountedPgbackrestFile(objects: any[], set: string, c: any, file: string): string {
  const volume = volumeOf(podSpec(objects, set), 'pgbackrest-config');
  expect(volume.configMap.name).toBe('db-pgbackrest');
  const item = volume.configMap.items.find((i: any) => i.key === file);
  expect(item).toBeDefined();
  return `${mountOf(c, 'pgbackrest-config').mountPath}/${item.path}`;
}

/** postgresql.conf's parameters, values unquoted. */
function confParameters(conf: string): { [name: string]: string } {
  return Object.fromEntries(conf.split('\n').filter((line) => /^[a-z]/.test(line)).map((line) => {
    const [, name, value] = /^(\S+) = (.*)$/.exec(line)!;
    return [name, value.startsWith("'") ? value.slice(1, -1).replace(/''/g, "'") : value];
  }));
}
const patroniYml = (objects: any[]): string => findObject(objects, 'ConfigMap', 'db-patroni').data['patroni.yml'];
/** patroni.yml as Patroni's PyYAML reads it: YAML 1.1. */
const patroni = (objects: any[]) => parse(patroniYml(objects), { version: '1.1' });
/** The value of a `key=value` line of a pgbackrest.conf. */
const confValue = (conf: string, key: string): string | undefined => conf.split('\n').find((line) => line.startsWith(`${key}=`))?.slice(key.length + 1);

describe('archive parameters', () => {
  /** The archive_command the instances must run: pgBackRest with the instance config as mounted in the postgres container, and the stanza. */
  function expectedArchiveCommand(objects: any[], set: string): string {
    const conf = mountedPgbackrestFile(objects, set, postgres(objects, set), 'instance.conf');
    // The stanza named is the one the instance config defines.
    expect(pgbackrestFiles(objects)['instance.conf']).toContain('\n[db]\n');
    return `pgbackrest --config=${conf} --stanza=db archive-push %p`;
  }

  test('plain: postgresql.conf archives every WAL segment with pgBackRest', () => {
    const objects = synth('plain');
    const conf = confParameters(findObject(objects, 'ConfigMap', 'db-config').data['postgresql.conf']);
    expect([conf.archive_mode, conf.archive_command, conf.archive_timeout]).toEqual(['on', expectedArchiveCommand(objects, 'db-primary'), '60']);
    expect(expectedArchiveCommand(objects, 'db-replica')).toBe(conf.archive_command);
  });

  test('HA: both parameter sections of patroni.yml archive every WAL segment with pgBackRest', () => {
    const objects = synth('ha');
    const config = patroni(objects);
    const expected = { archive_mode: true, archive_command: expectedArchiveCommand(objects, 'db'), archive_timeout: 60 };
    expect(config.bootstrap.dcs.postgresql.parameters).toMatchObject(expected);
    expect(config.postgresql.parameters).toMatchObject(expected);
  });

  test('plain: postgresql.conf, shared by primary and replicas, fetches WAL with pgBackRest\'s archive-get, mounted in the replicas\' postgres container', () => {
    const objects = synth('plain');
    const conf = confParameters(findObject(objects, 'ConfigMap', 'db-config').data['postgresql.conf']);
    const instanceConf = mountedPgbackrestFile(objects, 'db-replica', postgres(objects, 'db-replica'), 'instance.conf');
    expect(conf.restore_command).toBe(`pgbackrest --config=${instanceConf} --stanza=db archive-get %f "%p"`);
    // The replicas reach the repositories as the primary does: the same config, lock path and NetworkPolicy egress.
    expect(postgres(objects, 'db-replica').volumeMounts).toEqual(postgres(objects, 'db-primary').volumeMounts);
  });

  test('HA: patroni.yml gives restore_command in postgresql.recovery_conf, which Patroni writes for replicas only, and in neither parameter section', () => {
    const objects = synth('ha');
    const config = patroni(objects);
    const instanceConf = mountedPgbackrestFile(objects, 'db', postgres(objects, 'db'), 'instance.conf');
    expect(config.postgresql.recovery_conf).toEqual({ restore_command: `pgbackrest --config=${instanceConf} --stanza=db archive-get %f "%p"` });
    expect(config.postgresql.parameters.restore_command).toBeUndefined();
    expect(config.bootstrap.dcs.postgresql.parameters.restore_command).toBeUndefined();
    expect(validatePatroniConfig(objects, 'db', NS)).toEqual({ status: 0, output: '' });
  });

  test.each(MODES)('%s: without backup there is no restore_command', (mode) => {
    const objects = synth(mode, { backup: undefined });
    if (mode === 'plain') {
      expect(confParameters(findObject(objects, 'ConfigMap', 'db-config').data['postgresql.conf']).restore_command).toBeUndefined();
    } else {
      expect(patroni(objects).postgresql.recovery_conf).toBeUndefined();
      expect(patroniYml(objects)).not.toContain('restore_command');
    }
  });

  test.each(MODES)('%s: archiveTimeout reaches archive_timeout; without backup there is no archiving', (mode) => {
    const timeout = (objects: any[]) => (mode === 'plain'
      ? confParameters(findObject(objects, 'ConfigMap', 'db-config').data['postgresql.conf'])
      : patroni(objects).postgresql.parameters);
    expect(String(timeout(synth(mode, { backup: { ...BACKUP, archiveTimeout: Duration.minutes(5) } })).archive_timeout)).toBe('300');
    const none = timeout(synth(mode, { backup: undefined }));
    expect([none.archive_mode, none.archive_command, none.archive_timeout]).toEqual([undefined, undefined, undefined]);
  });

  test.each([
    ['plain', 'archive_command', /use backup /],
    ['ha', 'archive_command', /use backup /],
    ['plain', 'archive_mode', /use backup /],
    ['ha', 'archive_timeout', /use backup\.archiveTimeout/],
    ['plain', 'restore_command', /use backup \(replicas fetch/],
    ['ha', 'restore_command', /use backup \(replicas fetch/],
  ] as Array<[Mode, string, RegExp]>)('%s: extraParameters.%s is refused, naming the backup prop', (mode, parameter, fix) => {
    const value = 'cp %p /archive/%f';
    const message = thrownMessage(() => synth(mode, { extraParameters: { [parameter]: value } }), parameter);
    expectPropErrorMessage(message, 'test/Db', { prop: `extraParameters.${parameter}`, value: JSON.stringify(value), fix });
  });
});

describe('instance pods', () => {
  test.each(MODES)('%s: every instance pod has the pgBackRest server sidecar, the config and lock mounts, the S3 secrets and the checksum', (mode) => {
    const objects = synth(mode);
    const checksums: string[] = [];
    for (const set of INSTANCE_SETS[mode]) {
      const spec = podSpec(objects, set);
      expect(spec.containers.map((c: any) => c.name)).toEqual(['postgres', ...(mode === 'plain' ? ['settings-agent'] : []), 'pgbackrest']);
      const sidecar = container(spec, 'pgbackrest');
      // server.sh writes the superuser's passfile, then runs pgBackRest's server on the instance config.
      expect(sidecar.command).toEqual([mountedPgbackrestFile(objects, set, sidecar, 'server.sh')]);
      expect(pgbackrestFiles(objects)['server.sh']).toContain(`\nexec pgbackrest --config=${mountedPgbackrestFile(objects, set, sidecar, 'instance.conf')} server\n`);
      expect(volumeOf(spec, 'pgbackrest-config').configMap.items.find((i: any) => i.key === 'server.sh').mode).toBe(0o555);
      expect(sidecar.ports).toEqual([{ name: 'pgbackrest', containerPort: 8432, protocol: 'TCP' }]);

      const server = postgres(objects, set);
      expect(mountOf(server, 'pgbackrest-config')).toEqual({ name: 'pgbackrest-config', mountPath: '/etc/pgbackrest', readOnly: true });
      expect(mountOf(server, 'pgbackrest-lock').mountPath).toBe(confValue(pgbackrestFiles(objects)['instance.conf'], 'lock-path'));
      expect(volumeOf(spec, 'pgbackrest-lock').emptyDir).toBeDefined();
      // archive_command runs in the postgres container: the S3 key and the passphrase come from their Secrets.
      expect(server.env).toEqual(expect.arrayContaining([
        { name: 'PGBACKREST_REPO2_S3_KEY', valueFrom: { secretKeyRef: { name: 'shop-s3', key: 'access-key-id' } } },
        { name: 'PGBACKREST_REPO2_S3_KEY_SECRET', valueFrom: { secretKeyRef: { name: 'shop-s3', key: 'secret-access-key' } } },
        { name: 'PGBACKREST_REPO2_CIPHER_PASS', valueFrom: { secretKeyRef: { name: 'shop-cipher', key: 'cipher-pass' } } },
      ]));
      const checksum = template(objects, set).metadata.annotations['checksum/pgbackrest'];
      expect(checksum).toMatch(/^[0-9a-f]{64}$/);
      checksums.push(checksum);
    }
    // A change of the instance config rolls the instance pods.
    const changed = synth(mode, { backup: { ...BACKUP, ioTimeout: Duration.seconds(20) } });
    for (const set of INSTANCE_SETS[mode]) expect(checksums).not.toContain(template(changed, set).metadata.annotations['checksum/pgbackrest']);
  });

  test.each(MODES)('%s: without backup, the instance pods have no pgBackRest container, volume, env or annotation', (mode) => {
    const objects = synth(mode, { backup: undefined });
    for (const set of INSTANCE_SETS[mode]) {
      const spec = podSpec(objects, set);
      expect(spec.containers.map((c: any) => c.name)).toEqual(['postgres', ...(mode === 'plain' ? ['settings-agent'] : [])]);
      expect(JSON.stringify(spec)).not.toMatch(/pgbackrest|PGBACKREST/i);
      expect(template(objects, set).metadata.annotations).not.toHaveProperty('checksum/pgbackrest');
    }
  });

  test.each(MODES)('%s, with restore and an ExporterSidecar: no repeated env name, mount path, volume, container name or port; every mount has its volume', (mode) => {
    const objects = synth(mode, { backup: RESTORE }, true);
    const repeated = (values: unknown[]) => values.filter((value, index) => values.indexOf(value) !== index);
    const templates = podTemplatesOf(objects);
    expect(templates.length).toBeGreaterThanOrEqual(INSTANCE_SETS[mode].length + 1 + 4);
    for (const { kind, name, template: { spec } } of templates) {
      const where = `${kind}/${name}`;
      const owner = objects.find((o) => o.kind === kind && o.metadata.name === name);
      const volumes = [...spec.volumes ?? [], ...owner.spec.volumeClaimTemplates?.map((claim: any) => claim.metadata) ?? []].map((v: any) => v.name);
      expect({ [where]: repeated(volumes) }).toEqual({ [where]: [] });
      const containers = [...spec.initContainers ?? [], ...spec.containers];
      for (const c of containers) {
        const at = `${where} ${c.name}`;
        expect({ [at]: repeated((c.env ?? []).map((e: any) => e.name)) }).toEqual({ [at]: [] });
        expect({ [at]: repeated((c.volumeMounts ?? []).map((m: any) => m.mountPath)) }).toEqual({ [at]: [] });
        expect({ [at]: (c.volumeMounts ?? []).map((m: any) => m.name).filter((v: string) => !volumes.includes(v)) }).toEqual({ [at]: [] });
      }
      expect({ [where]: repeated(containers.map((c) => c.name)) }).toEqual({ [where]: [] });
      const ports = spec.containers.flatMap((c: any) => c.ports ?? []);
      expect({ [where]: [...repeated(ports.map((p: any) => p.containerPort)), ...repeated(ports.map((p: any) => p.name))] }).toEqual({ [where]: [] });
    }
    for (const set of INSTANCE_SETS[mode]) {
      const spec = podSpec(objects, set);
      expect(spec.containers.map((c: any) => c.name)).toEqual(['postgres', ...(mode === 'plain' ? ['settings-agent'] : []), 'pgbackrest', 'postgres-exporter']);
      expect(template(objects, set).metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'checksum/pgbackrest': expect.stringMatching(/^[0-9a-f]{64}$/) });
    }
  });
});

describe('the Certificate', () => {
  /** Whether a certificate name (maybe a one-label wildcard) covers a host. */
  const covers = (dnsName: string, host: string) => (dnsName.startsWith('*.')
    ? host.indexOf('.') > 0 && host.slice(host.indexOf('.') + 1) === dnsName.slice(2)
    : dnsName === host);

  test.each(MODES)('%s: its CN is the one the pgBackRest servers authorize, for client and server auth, and it names every host pgBackRest connects to', (mode) => {
    const objects = synth(mode);
    const spec = findObject(objects, 'Certificate', 'db').spec;
    const files = pgbackrestFiles(objects);
    for (const file of ['instance.conf', 'repo-host.conf']) {
      const auth = confValue(files[file], 'tls-server-auth');
      expect(auth).toBeDefined();
      const [cn, stanzas] = auth!.split('=');
      expect({ [file]: [spec.commonName, stanzas] }).toEqual({ [file]: [cn, 'db'] });
    }
    expect(spec.usages).toEqual(expect.arrayContaining(['client auth', 'server auth']));
    expect(spec.dnsNames).toEqual(expect.arrayContaining(['*.db-repo-host', '*.db-repo-host.shop', '*.db-repo-host.shop.svc', '*.db-repo-host.shop.svc.cluster.local']));
    // The instances verify the repository host's name, the backup jobs each instance's.
    const hosts = Object.values(files).flatMap((text) => text.split('\n')).filter((line) => /^(repo|pg)\d+-host=/.test(line)).map((line) => line.split('=')[1]);
    expect(hosts).toContain('db-repo-host-0.db-repo-host');
    expect(hosts.length).toBeGreaterThanOrEqual(1 + 2 * 2);
    for (const host of hosts) expect({ [host]: spec.dnsNames.some((name: string) => covers(name, host)) }).toEqual({ [host]: true });
  });

  test.each(MODES)('%s: without backup it has no CN and no client auth; with S3 alone, no repository host names', (mode) => {
    const plain = findObject(synth(mode, { backup: undefined }), 'Certificate', 'db').spec;
    expect(plain.commonName).toBeUndefined();
    expect(plain.usages).not.toContain('client auth');
    expect(plain.dnsNames.filter((name: string) => name.includes('repo-host'))).toEqual([]);
    const s3Only = findObject(synth(mode, { backup: { repositories: [BackupRepository.s3(S3)] } }), 'Certificate', 'db').spec;
    expect(s3Only.commonName).toBe('db-rw');
    expect(s3Only.dnsNames).toEqual(plain.dnsNames);
  });
});

describe('NetworkPolicy', () => {
  const labelsOf = (obj: any) => (obj.kind === 'CronJob' ? obj.spec.jobTemplate.spec.template : obj.spec.template).metadata.labels;
  const pod = (labels: { [key: string]: string }, namespace = NS): Pod => ({ namespace, labels });
  const client = pod({ app: 'web' });
  /**
   * The ipBlocks `from` may send to on `port` (network-policy-eval leaves ipBlocks out): the
   * networks of its NetworkPolicies' egress rules that name that port.
   */
  const egressNetworks = (objects: any[], from: Pod, port: number): string[] => ofKind(objects, 'NetworkPolicy')
    .filter((policy) => policy.metadata.namespace === from.namespace && (policy.spec.policyTypes ?? []).includes('Egress')
      && Object.entries(policy.spec.podSelector.matchLabels ?? {}).every(([key, value]) => from.labels[key] === value))
    .flatMap((policy) => policy.spec.egress ?? [])
    .filter((rule: any) => rule.ports?.some((p: any) => p.port === port && (p.protocol ?? 'TCP') === 'TCP'))
    .flatMap((rule: any) => (rule.to ?? []).filter((peer: any) => peer.ipBlock).map((peer: any) => peer.ipBlock.cidr)).sort();
  const otherNamespace = pod({ app: 'web' }, 'web');

  test.each(MODES)('%s: the backup jobs reach the instances\' pgBackRest port, ordinary clients do not', (mode) => {
    const objects = synth(mode);
    const jobs = ofKind(objects, 'CronJob');
    expect(jobs.length).toBe(4);
    expect(findObject(objects, 'NetworkPolicy', 'db')).toBeDefined();
    for (const set of INSTANCE_SETS[mode]) {
      const instance = pod(labelsOf(findObject(objects, 'StatefulSet', set)));
      for (const job of jobs) {
        expect({ [job.metadata.name]: mayConnect(objects, pod(labelsOf(job)), instance, 8432) }).toEqual({ [job.metadata.name]: true });
      }
      // Ordinary clients reach PostgreSQL, not pgBackRest.
      expect(mayConnect(objects, client, instance, 5432)).toBe(true);
      expect([mayConnect(objects, client, instance, 8432), mayConnect(objects, otherNamespace, instance, 8432)]).toEqual([false, false]);
      // Nor do the repository host or another instance.
      const repoHost = pod(labelsOf(findObject(objects, 'StatefulSet', 'db-repo-host')));
      expect(mayConnect(objects, repoHost, instance, 8432)).toBe(false);
    }
  });

  test.each(MODES)('%s: the instances reach the repository host\'s server and the S3 endpoint\'s port', (mode) => {
    const objects = synth(mode);
    const repoHost = pod(labelsOf(findObject(objects, 'StatefulSet', 'db-repo-host')));
    for (const set of INSTANCE_SETS[mode]) {
      const instance = pod(labelsOf(findObject(objects, 'StatefulSet', set)));
      expect(mayConnect(objects, instance, repoHost, 8432)).toBe(true);
      expect(egressNetworks(objects, instance, S3_PORT)).toEqual(['0.0.0.0/0', '::/0']);
      expect(mayConnect(objects, instance, repoHost, 5432)).toBe(false);
      expect([egressNetworks(objects, instance, S3_PORT + 1), mayReachOutside(objects, instance, S3_PORT + 1)]).toEqual([[], false]);
    }
    // The rules come with backup.
    const without = synth(mode, { backup: undefined });
    const instance = pod(labelsOf(findObject(without, 'StatefulSet', INSTANCE_SETS[mode][0])));
    expect([mayConnect(without, instance, repoHost, 8432), egressNetworks(without, instance, S3_PORT)]).toEqual([false, []]);
    const job = pod(labelsOf(ofKind(objects, 'CronJob')[0]));
    expect(mayConnect(without, job, instance, 8432)).toBe(false);
  });

  test.each(MODES)('%s: the cluster\'s networkPolicy.dnsResolvers reach the backup\'s policies too', (mode) => {
    const objects = synth(mode, { networkPolicy: { dnsResolvers: [{ cidr: '169.254.20.10/32' }] } });
    const policies = ofKind(objects, 'NetworkPolicy');
    expect(policies.map((policy) => policy.metadata.name)).toEqual(expect.arrayContaining(['db-backup', 'db-repo-host']));
    for (const policy of policies) {
      expect(policy.spec.egress.filter((rule: any) => rule.ports.some((port: any) => port.port === 53)).map((rule: any) => rule.to))
        .toEqual([[{ ipBlock: { cidr: '169.254.20.10/32' } }]]);
    }
  });

  test.each(MODES)('%s: an S3 endpoint on 443, where the API server also is, gives one egress rule per network, none twice', (mode) => {
    const objects = synth(mode, { backup: { repositories: [BackupRepository.volume(), BackupRepository.s3({ ...S3, port: 443 }), BackupRepository.s3({ ...S3, bucket: 'shop-copies', port: 443 })] } });
    for (const policy of ofKind(objects, 'NetworkPolicy')) {
      const destinations = policy.spec.egress.map((rule: any) => JSON.stringify(rule.to ?? 'dns'));
      expect({ [policy.metadata.name]: destinations }).toEqual({ [policy.metadata.name]: [...new Set(destinations)] });
      for (const rule of policy.spec.egress) {
        const ports = rule.ports.map((p: any) => `${p.protocol}/${p.port}`);
        expect(ports).toEqual([...new Set(ports)]);
      }
    }
    const instance = pod(labelsOf(findObject(objects, 'StatefulSet', INSTANCE_SETS[mode][0])));
    expect(egressNetworks(objects, instance, 443)).toEqual(['0.0.0.0/0', '::/0']);
    const job = pod(labelsOf(ofKind(objects, 'CronJob')[0]));
    expect(egressNetworks(objects, job, 443)).toEqual(['0.0.0.0/0', '::/0']);
  });

  test.each(MODES)('%s: a moved serverPort moves the rules', (mode) => {
    const objects = synth(mode, { backup: { ...BACKUP, serverPort: 9432 } });
    const instance = pod(labelsOf(findObject(objects, 'StatefulSet', INSTANCE_SETS[mode][0])));
    const job = pod(labelsOf(ofKind(objects, 'CronJob')[0]));
    const repoHost = pod(labelsOf(findObject(objects, 'StatefulSet', 'db-repo-host')));
    expect([mayConnect(objects, job, instance, 9432), mayConnect(objects, job, instance, 8432)]).toEqual([true, false]);
    expect([mayConnect(objects, instance, repoHost, 9432), mayConnect(objects, instance, repoHost, 8432)]).toEqual([true, false]);
  });
});

describe('restore, plain mode', () => {
  const objects = synth('plain', { backup: RESTORE });

  test('the primary\'s bootstrap runs the mounted restore.sh, with the restore environment and the pgBackRest mounts', () => {
    const init = bootstrap(objects, 'db-primary');
    const restoreScript = mountedPgbackrestFile(objects, 'db-primary', init, 'restore.sh');
    expect(envOf(init, 'RESTORE_SCRIPT')).toEqual({ name: 'RESTORE_SCRIPT', value: restoreScript });
    expect(volumeOf(podSpec(objects, 'db-primary'), 'pgbackrest-config').configMap.items.find((i: any) => i.key === 'restore.sh').mode).toBe(0o555);
    expect(pgbackrestFiles(objects)['restore.sh']).toMatch(/^#!\/usr\/bin\/env bash\n/);
    const value = (name: string) => envOf(init, name)?.value;
    // The data directory and the config file are the ones the postgres container then runs with.
    const command: string[] = postgres(objects, 'db-primary').command;
    expect(Object.fromEntries(RESTORE_ENVIRONMENT.map((name) => [name, value(name)]))).toEqual({
      PGDATA: command[command.indexOf('-D') + 1],
      PG_WALDIR: '',
      CONFIG_FILE: `${mountOf(init, 'config').mountPath}/postgresql.conf`,
      PGBACKREST_CONFIG: mountedPgbackrestFile(objects, 'db-primary', init, 'instance.conf'),
    });
    expect(command).toContain(`config_file=${value('CONFIG_FILE')}`);
    expect(init.env.map((e: any) => e.name)).toEqual(expect.arrayContaining(['PGBACKREST_REPO2_S3_KEY', 'PGBACKREST_REPO2_S3_KEY_SECRET', 'PGBACKREST_REPO2_CIPHER_PASS']));
    const names = init.env.map((e: any) => e.name);
    expect(names.length).toBe(new Set(names).size);
    expect(mountOf(init, 'pgbackrest-config')).toEqual({ name: 'pgbackrest-config', mountPath: '/etc/pgbackrest', readOnly: true });
    expect(mountOf(init, 'pgbackrest-lock')).toBeDefined();
    // pgBackRest reaches the repository host with the cluster's certificate.
    expect(mountOf(init, 'tls').mountPath).toBe(confValue(pgbackrestFiles(objects)['instance.conf'], 'repo1-host-cert-file')!.replace(/\/tls\.crt$/, ''));
  });

  test('a WAL volume: restore.sh gets the bootstrap\'s WAL directory, and the WAL volume is mounted', () => {
    const init = bootstrap(synth('plain', { backup: RESTORE, storage: { walSize: '2Gi' } }), 'db-primary');
    const walDir = envOf(init, 'PG_WALDIR').value;
    expect(walDir).not.toBe('');
    expect(init.env.filter((e: any) => e.name === 'PG_WALDIR')).toHaveLength(1);
    expect(walDir.startsWith(`${mountOf(init, 'wal').mountPath}/`)).toBe(true);
  });

  test('replicas clone: their bootstrap has RESTORE_SCRIPT empty and neither restore env nor pgBackRest mounts', () => {
    const init = bootstrap(objects, 'db-replica');
    expect(envOf(init, 'RESTORE_SCRIPT')).toEqual({ name: 'RESTORE_SCRIPT', value: '' });
    expect(envOf(init, 'PGBACKREST_CONFIG')).toBeUndefined();
    expect(mountOf(init, 'pgbackrest-config')).toBeUndefined();
  });

  test('without restore, the primary\'s bootstrap has RESTORE_SCRIPT empty', () => {
    const init = bootstrap(synth('plain'), 'db-primary');
    expect(envOf(init, 'RESTORE_SCRIPT')).toEqual({ name: 'RESTORE_SCRIPT', value: '' });
    expect(mountOf(init, 'pgbackrest-config')).toBeUndefined();
  });

  /**
   * Runs the rendered bootstrap.sh with bash as the primary's bootstrap container does on an empty
   * volume: its env, paths moved into a scratch directory, Secrets as made-up values; initdb,
   * pg_ctl and psql are fakes that record their calls, and RESTORE_SCRIPT (when the container
   * sets one) is a fake restore.sh that creates PG_VERSION and records its environment.
   */
  function runPrimaryBootstrap(rendered: any[]) {
    const dir = mkdtempSync(join(tmpdir(), 'backup-bootstrap-'));
    try {
      const file = (path: string, text: string, mode = 0o644) => {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), text, { mode });
      };
      const record = 'printf \'%s\\n\' "$(basename "$0") $*" >> "$OUT/calls"';
      file('bin/initdb', ['#!/bin/sh', record, 'echo "initdb must not run" >&2', 'exit 1', ''].join('\n'), 0o755);
      file('bin/pg_ctl', ['#!/bin/sh', record, ''].join('\n'), 0o755);
      file('bin/psql', ['#!/bin/sh', record, 'cat > "$OUT/sql"', ''].join('\n'), 0o755);
      file('restore.sh', ['#!/bin/sh', record,
        'printf \'PGDATA=%s PGBACKREST_CONFIG=%s S3_KEY=%s\\n\' "$PGDATA" "$PGBACKREST_CONFIG" "$PGBACKREST_REPO2_S3_KEY" > "$OUT/restore-env"',
        'mkdir -p "$PGDATA"', 'echo 15 > "$PGDATA/PG_VERSION"', ''].join('\n'), 0o755);
      for (const role of ['superuser', 'replication']) {
        file(`credentials/${role}/username`, role === 'superuser' ? 'postgres' : 'replicator');
        file(`credentials/${role}/password`, 'secret');
      }
      const init = bootstrap(rendered, 'db-primary');
      const env: { [name: string]: string } = {};
      for (const { name, value, valueFrom } of init.env) {
        if (value !== undefined) env[name] = value;
        else if (valueFrom.fieldRef) env[name] = 'db-primary-0';
        else env[name] = `${valueFrom.secretKeyRef.name}/${valueFrom.secretKeyRef.key}`;
      }
      Object.assign(env, {
        PATH: `${join(dir, 'bin')}:/usr/bin:/bin`,
        OUT: dir,
        PGDATA: join(dir, 'data', 'pgdata'),
        PGPASSFILE: join(dir, 'pgpass'),
        CREDENTIALS_DIR: join(dir, 'credentials'),
        CONFIG_FILE: join(dir, 'postgresql.conf'),
        ...(env.RESTORE_SCRIPT ? { RESTORE_SCRIPT: join(dir, 'restore.sh') } : {}),
      });
      mkdirSync(join(dir, 'data'));
      file('bootstrap.sh', findObject(rendered, 'ConfigMap', 'db-scripts').data['bootstrap.sh']);
      const result = spawnSync('bash', [join(dir, 'bootstrap.sh')], { env, encoding: 'utf8' });
      const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8').split(dir).join('<scratch>') : '');
      return {
        status: result.status, stderr: result.stderr, calls: read('calls').split('\n').filter(Boolean).map((call) => call.split(' ')[0]),
        restoreEnv: read('restore-env'), sql: read('sql'),
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('bootstrap.sh on an empty volume: restore.sh creates the cluster instead of initdb, then the roles are provisioned', () => {
    const run = runPrimaryBootstrap(objects);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.stringContaining('creating the cluster from a backup') });
    expect(run.calls).toEqual(['restore.sh', 'pg_ctl', 'psql', 'pg_ctl']);
    expect(run.restoreEnv).toBe('PGDATA=<scratch>/data/pgdata PGBACKREST_CONFIG=/etc/pgbackrest/instance.conf S3_KEY=shop-s3/access-key-id\n');
    expect(run.sql).not.toBe('');
  });

  test('the check can fail: without restore, the same run calls initdb (here a fake that fails)', () => {
    const run = runPrimaryBootstrap(synth('plain'));
    expect(run.status).not.toBe(0);
    expect(run.calls).toEqual(['initdb']);
  });
});

describe('restore, HA mode', () => {
  const objects = synth('ha', { backup: RESTORE });

  test('patroni.yml bootstraps with the custom method `restore`: the mounted restore.sh, keeping its recovery settings', () => {
    const server = postgres(objects, 'db');
    const config = patroni(objects);
    expect(config.bootstrap.method).toBe('restore');
    expect(config.bootstrap.restore).toEqual({ command: mountedPgbackrestFile(objects, 'db', server, 'restore.sh'), keep_existing_recovery_conf: true });
    expect(volumeOf(podSpec(objects, 'db'), 'pgbackrest-config').configMap.items.find((i: any) => i.key === 'restore.sh').mode).toBe(0o555);
    // initdb stays for Patroni's validator; post_bootstrap still provisions.
    expect(config.bootstrap.post_bootstrap).toBe(`${mountOf(server, 'scripts').mountPath}/provision.sh`);
  });

  test('the postgres container carries restore.sh\'s environment, with the mounted postgresql.conf and instance config', () => {
    const server = postgres(objects, 'db');
    const configDir = mountOf(server, 'config').mountPath;
    const value = (name: string) => envOf(server, name)?.value;
    expect(Object.fromEntries(RESTORE_ENVIRONMENT.map((name) => [name, value(name)]))).toEqual({
      PGDATA: patroni(objects).postgresql.data_dir,
      PG_WALDIR: '',
      CONFIG_FILE: `${configDir}/postgresql.conf`,
      PGBACKREST_CONFIG: mountedPgbackrestFile(objects, 'db', server, 'instance.conf'),
    });
    // The config volume is the ConfigMap db-patroni, which then holds postgresql.conf and the pg_hba.conf it names.
    expect(volumeOf(podSpec(objects, 'db'), 'config').configMap.name).toBe('db-patroni');
    const data = findObject(objects, 'ConfigMap', 'db-patroni').data;
    expect(Object.keys(data).sort()).toEqual(['patroni-dynamic.json', 'patroni.yml', 'pg_hba.conf', 'postgresql.conf']);
    const conf = confParameters(data['postgresql.conf']);
    expect(conf.hba_file).toBe(`${configDir}/pg_hba.conf`);
    expect(conf.archive_command).toBe(patroni(objects).postgresql.parameters.archive_command);
    expect(server.command).toEqual([`${mountOf(server, 'scripts').mountPath}/patroni-start.sh`, `${configDir}/patroni.yml`]);
  });

  test('a WAL volume reaches restore.sh as PG_WALDIR, on the mounted WAL volume', () => {
    const server = postgres(synth('ha', { backup: RESTORE, storage: { walSize: '2Gi' } }), 'db');
    expect(envOf(server, 'PG_WALDIR').value.startsWith(`${mountOf(server, 'wal').mountPath}/`)).toBe(true);
  });

  test('without restore: no custom bootstrap, no restore environment, and db-patroni holds patroni.yml only', () => {
    const without = synth('ha');
    const config = patroni(without);
    expect([config.bootstrap.method, config.bootstrap.restore]).toEqual([undefined, undefined]);
    // PGDATA is every member's: patroni-start.sh checks the data's major against the image's.
    expect(RESTORE_ENVIRONMENT.filter((name) => name !== 'PGDATA').map((name) => envOf(postgres(without, 'db'), name))).toEqual([undefined, undefined, undefined]);
    expect(Object.keys(findObject(without, 'ConfigMap', 'db-patroni').data).sort()).toEqual(['patroni-dynamic.json', 'patroni.yml']);
    // The postgres container still archives WAL.
    expect(envOf(postgres(without, 'db'), 'PGBACKREST_REPO2_S3_KEY')).toBeDefined();
  });

  test('a change of restore rolls the pods through restore.sh\'s checksum; postgresql.conf, read only by a restore\'s first start, is not in checksum/config', () => {
    const checksum = (all: any[], key: string) => template(all, 'db').metadata.annotations[key];
    expect(checksum(objects, 'checksum/pgbackrest')).not.toBe(checksum(synth('ha'), 'checksum/pgbackrest'));
    expect(checksum(objects, 'checksum/config')).toBe(checksum(synth('ha'), 'checksum/config'));
  });

  /** The postgres container's environment for pod `db-0`, Secrets replaced by made-up values. */
  test('Patroni 3.0.2 accepts the patroni.yml of a restore (patroni --validate-config, on what patroni-start.sh hands it)', () => {
    expect(validatePatroniConfig(objects, 'db', NS)).toEqual({ status: 0, output: '' });
  });
});

describe('errors', () => {
  // pgBackRest's servers and clients verify each other against a CA they share: a certificate each pod makes itself has none.
  test.each(MODES.flatMap((mode) => [
    [mode, 'no tls prop (self-signed)', { tls: undefined }, '"a self-signed certificate"'],
    [mode, 'tls: {} (self-signed)', { tls: {} }, '"a self-signed certificate"'],
    [mode, 'tls.disabled', { tls: { disabled: true } }, '"disabled"'],
  ] as const))('%s: backup with %s is refused, naming the CN the Secret\'s certificate needs', (mode, _what, props, value) => {
    const message = thrownMessage(() => synth(mode, props), `backup with ${JSON.stringify(props)}`);
    expectPropErrorMessage(message, 'test/Db', { prop: 'tls', value, fix: /^ set tls \(a Secret with tls\.crt, tls\.key and ca\.crt, whose certificate has CN "db-rw"/ });
    expect(message).toContain('must name a Secret when backup is');
  });

  test.each(MODES)('%s: backup with a tls Secret without an issuer is accepted', (mode) => {
    expect(() => synth(mode, { tls: { secretName: 'db-cert' } })).not.toThrow();
  });

  test('plain mode: backup with the default image, which has no pgBackRest, is refused; the HA default image has it', () => {
    const message = thrownMessage(() => synth('plain', { image: undefined }), 'backup with the default image');
    expectPropErrorMessage(message, 'test/Db', { prop: 'image', value: '(unset)', fix: new RegExp(`such as "${PGBACKREST_IMAGE}" with runAsUser 26`) });
    expect(message).toContain('has no pgBackRest');
    expect(findObject(synth('ha', { image: undefined }), 'StatefulSet', 'db').spec.template.spec.containers[0].image).toBe(PGBACKREST_IMAGE);
    expect(findObject(synth('plain', { image: undefined, backup: undefined }), 'StatefulSet', 'db-primary')).toBeDefined();
  });

  test.each(MODES)('%s: a name too long for the backup CronJobs is refused; one character less is accepted', (mode) => {
    const name = 'a'.repeat(35);
    const expected: ExpectedPropError = { prop: 'name', value: JSON.stringify(name), fix: /at most 34 characters/ };
    expectPropErrorMessage(thrownMessage(() => synth(mode, { name }), 'a 35-character name'), 'test/Db', expected);
    // The same name is fine without backups: the CronJobs set the limit.
    expect(ofKind(synth(mode, { name, backup: undefined }), 'StatefulSet').length).toBeGreaterThan(0);
    const objects = synth(mode, { name: 'a'.repeat(34) });
    expect(ofKind(objects, 'CronJob').map((o) => o.metadata.name.length)).toEqual([52, 52, 52, 52]);
  });
});

describe('strict schema validation (Kubernetes v1.27) with backup and restore', () => {
  test.each(MODES)('%s, with an exporter', (mode) => {
    const objects = synth(mode, { backup: RESTORE }, true);
    expect(ofKind(objects, 'CronJob')).toHaveLength(4);
    expect(validateManifests(objects, 'v1.27.0')).toEqual([]);
  });
});

describe('bootstrap.sh: a replica whose slot on the primary was invalidated', () => {
  /** The `lost)` branch of ensure_replica_slot. */
  const lostBranch = (objects: any[]) => /^ {4}lost\)\n([^]*?)\n {6};;$/m.exec(findObject(objects, 'ConfigMap', 'db-scripts').data['bootstrap.sh'])![1];

  test('with backup, gets its slot again and catches up from the archive; without, the bootstrap refuses, naming the claims to delete', () => {
    const archived = lostBranch(synth('plain'));
    expect(archived).toMatch(/making it again; this replica fetches the WAL the primary removed from the backup repository \(restore_command\)/);
    expect(archived).not.toMatch(/exit/);
    const without = lostBranch(synth('plain', { backup: undefined }));
    expect(without).toMatch(/so it cannot catch up: delete its PersistentVolumeClaims \(data-\$POD_NAME, and wal-\$POD_NAME with a WAL volume\)/);
    expect(without).toMatch(/\n {6}exit 1$/);
  });
});

describe('shellcheck', () => {
  test.each([
    ['plain', ['backup.sh', 'bootstrap.sh', 'restore.sh', 'server.sh', 'settings-agent.sh']],
    ['ha', ['backup.sh', 'patroni-start.sh', 'provision.sh', 'restore.sh', 'server.sh']],
  ] as Array<[Mode, string[]]>)('%s: every script of the rendered ConfigMaps is clean', (mode, expected) => {
    const scripts = ofKind(synth(mode, { backup: RESTORE }, true), 'ConfigMap')
      .flatMap((configMap) => Object.entries<string>(configMap.data).filter(([file]) => file.endsWith('.sh')));
    expect(scripts.map(([file]) => file).sort()).toEqual(expected);
    for (const [file, script] of scripts) expect({ [file]: shellcheck(script) }).toEqual({ [file]: '' });
  });
});
