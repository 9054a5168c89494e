import { ChildProcess } from 'child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { LocalInstance, SecretStore, localCluster } from './cluster-harness';
import { DAEMONS, DaemonSet } from './daemons';
import { resolveEnv } from './environment';
import { localizePaths } from './paths';
import { Login, daemonGroup, freePort, giveToDaemonUser, psql, runIn, startDaemonIn, waitFor } from './postgres-bin';
import { BackupCluster, BackupModel, BackupOptions, renderBackupObjects, resolveBackup } from '../../../lib/backup';
import { BACKUP_FILES } from '../../../lib/backup/backup-layout';
import { TlsProtocolVersion } from '../../../lib/core/tls';
import { resolveUserMetadata } from '../../../lib/core/user-metadata';
import { findObject } from '../../support/synth';

/** The pod paths of the cluster side that the backup module is given (the cluster's CLUSTER_PATHS). */
const INSTANCE_PATHS = {
  dataVolume: '/var/lib/postgresql/data',
  pgdata: '/var/lib/postgresql/data/pgdata',
  walVolume: '/var/lib/postgresql/wal',
  socketDir: '/var/run/postgresql',
  configDir: '/etc/postgresql',
  tlsDir: '/etc/postgresql-tls',
} as const;

/**
 * A BackupCluster as PostgresStatefulCluster would hand it over: `instances` pods named
 * `<name>-primary-0` and `<name>-replica-<n>` through `<name>-headless`, TLS from `<name>-tls`
 * whose certificate's CN is `<name>-rw`.
 */
export function backupCluster(
  chart: Chart, name: string, options: { instances?: number; tls?: boolean; networkPolicies?: boolean; walVolume?: boolean } = {},
): BackupCluster {
  const instances = options.instances ?? 2;
  const partOf = name;
  return {
    name,
    port: 5432,
    image: 'registry.example/postgres-pgbackrest:15',
    uid: 999,
    pgdata: INSTANCE_PATHS.pgdata,
    ...(options.walVolume ? { walDir: `${INSTANCE_PATHS.walVolume}/pg_wal` } : {}),
    socketDir: INSTANCE_PATHS.socketDir,
    configFile: `${INSTANCE_PATHS.configDir}/postgresql.conf`,
    tlsDir: INSTANCE_PATHS.tlsDir,
    sidecarMounts: [
      { name: 'data', mountPath: INSTANCE_PATHS.dataVolume },
      ...(options.walVolume ? [{ name: 'wal', mountPath: INSTANCE_PATHS.walVolume }] : []),
      { name: 'socket', mountPath: INSTANCE_PATHS.socketDir },
      { name: 'tls', mountPath: INSTANCE_PATHS.tlsDir },
    ],
    dataVolumeNames: ['data', 'wal'],
    instancePodHosts: [`${name}-primary-0.${name}-headless`,
      ...Array.from({ length: instances - 1 }, (_, ordinal) => `${name}-replica-${ordinal}.${name}-headless`)],
    ...(options.tls === false ? {} : {
      tls: { secretName: `${name}-tls`, required: true, minimumProtocolVersion: TlsProtocolVersion.TLS_1_2, authority: { secretName: `${name}-tls`, key: 'ca.crt' } },
    }),
    certificateCommonName: `${name}-rw`,
    superuser: { secretName: `${name}-superuser`, usernameKey: 'username', passwordKey: 'password' },
    componentLabels: (component: string) => ({ name: 'postgresql', instance: name, component, partOf }),
    instanceSelector: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': name },
    networkPolicies: options.networkPolicies ?? true,
    user: resolveUserMetadata(chart, {}),
  };
}

/** Resolves `options` for a hand-built cluster in a fresh chart (namespace `shop`, `null` for none) and renders the backup objects. */
export function synthBackup(options: BackupOptions, clusterOptions: Parameters<typeof backupCluster>[2] = {}, name = 'shop-db',
  namespace: string | null = 'shop'): { chart: Chart; model: BackupModel; objects: any[] } {
  const chart = new Chart(Testing.app(), 'test', namespace ? { namespace } : {});
  const model = resolveBackup(chart, options, backupCluster(chart, name, clusterOptions))!;
  renderBackupObjects(chart, model);
  return { chart, model, objects: chart.toJson() };
}

/** pgBackRest's own duration of a command, from its "command end" line, in seconds. */
export function commandSeconds(log: string, command: string): string {
  const match = new RegExp(`${command} command end: completed successfully \\((\\d+)ms\\)`).exec(log);
  if (!match) throw new Error(`no successful ${command} in:\n${log}`);
  return (Number(match[1]) / 1000).toFixed(2);
}

/** A pod of the pgBackRest topology as its configs see it. */
interface LoopbackPod {
  /** The local port of the pod's pgBackRest server. */
  readonly serverPort?: number;
  /** The local port of the pod's PostgreSQL. */
  readonly postgresPort?: number;
  /** A pod path rewritten to the pod's root. */
  localize(path: string): string;
}

/**
 * The pgBackRest topology of a synthesized PostgresStatefulCluster on loopback, run from its
 * objects: the instances (LocalInstance, with their `pgbackrest` sidecar), the repository host
 * and the backup jobs (LocalPod). Each pgBackRest server gets a local port of its own; host
 * names stay, for the test to resolve to loopback (resolveHostsWith) so that certificates are
 * checked against the real names. In the pgbackrest.conf files, only roots of paths and these
 * keys are rewritten:
 *  - hosts: `tls-server-address` (to 127.0.0.1);
 *  - ports: `tls-server-port` (the pod's own server), `repoN-host-port` and `pgN-host-port` (the
 *    server of the host the index names), `pgN-port` (that host's PostgreSQL, or the pod's own);
 *  - paths of another pod, in that pod's root: `pgN-path`, `pgN-socket-path`, `pgN-host-config`
 *    and `repoN-host-config`, which the servers are handed by their clients.
 */
/**
 * Switches WAL on the server `login` reaches and waits until the segment is archived, so the
 * repositories hold every commit so far; returns the segment.
 */
export async function archiveEverything(login: Login): Promise<string> {
  const segment = psql(login, 'SELECT pg_walfile_name(pg_switch_wal())');
  await waitFor(`segment ${segment} to be archived`, () => psql(login, 'SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver') >= segment, 60_000);
  return segment;
}

export class LocalBackupTopology {
  /** The topology of the cluster `clusterName` in `objects`, with a local port for every server its configs name. */
  public static async create(scratch: string, objects: any[], clusterName: string, secrets: SecretStore): Promise<LocalBackupTopology> {
    const configs = Object.values<string>(findObject(objects, 'ConfigMap', `${clusterName}-pgbackrest`).data).join('\n');
    const serverPorts: { [host: string]: number } = {};
    for (const [, host] of configs.matchAll(/^(?:repo|pg)\d+-host=(.+)$/gm)) serverPorts[host] ??= await freePort();
    return new LocalBackupTopology(scratch, objects, clusterName, secrets, serverPorts);
  }

  /** The running pods by host name: the repository host and the backed-up cluster's instances. */
  private readonly pods: { [host: string]: LoopbackPod } = {};

  private constructor(private readonly scratch: string, private readonly objects: any[], private readonly clusterName: string,
    private readonly secrets: SecretStore, private readonly serverPorts: { [host: string]: number }) {}

  /** The host names of the pgBackRest servers, which must resolve to loopback. */
  public get hosts(): string[] {
    return Object.keys(this.serverPorts);
  }

  /** The repository host's pod, from StatefulSet `<name>-repo-host`. */
  public repoHost(): LocalPod {
    const statefulSet = findObject(this.objects, 'StatefulSet', `${this.clusterName}-repo-host`);
    const podName = `${statefulSet.metadata.name}-0`;
    const claims = Object.fromEntries(statefulSet.spec.volumeClaimTemplates.map((template: any) => [template.metadata.name, `${template.metadata.name}-${podName}`]));
    const host = `${podName}.${statefulSet.spec.serviceName}`;
    const pod = new LocalPod(this.scratch, podName, statefulSet.spec.template.spec, claims, this.objects, this.secrets,
      this.serverPorts[host], (own, text) => this.rewriteConf(text, own));
    this.pods[host] = pod;
    return pod;
  }

  /**
   * The pod of CronJob (or Job) `jobName`, in `<scratch>/<podName>`, with `secrets` (the topology's by
   * default), from `objects` (the topology's by default; another synthesis of the same cluster).
   */
  public job(jobName: string, podName = jobName, secrets = this.secrets, objects = this.objects): LocalPod {
    const job = objects.find((o) => o.kind === 'Job' && o.metadata.name === jobName);
    const spec = (job ?? findObject(objects, 'CronJob', jobName).spec.jobTemplate).spec.template.spec;
    return new LocalPod(this.scratch, podName, spec, {}, objects, secrets, undefined, (own, text) => this.rewriteConf(text, own));
  }

  /** The backed-up cluster's instances, not yet bootstrapped, the primary first. */
  public instances(): Promise<LocalInstance[]> {
    return this.instancesOf(this.objects);
  }

  /**
   * The instances of `objects` (another synthesis of the cluster, such as one with backup.restore
   * set) in the same pods' directories, so over the same volumes; they replace the running ones.
   */
  public async instancesOf(objects: any[]): Promise<LocalInstance[]> {
    const instances = await this.localCluster(objects, this.scratch);
    for (const instance of instances) this.pods[instance.host] = this.instancePod(instance);
    return instances;
  }

  /** The primary of the cluster in `objects` (another synthesis, created from a backup), in `<scratch>/<dir>`. */
  public async primaryOf(objects: any[], dir: string): Promise<LocalInstance> {
    return (await this.localCluster(objects, join(this.scratch, dir)))[0];
  }

  private localCluster(objects: any[], scratch: string): Promise<LocalInstance[]> {
    return localCluster(objects, this.clusterName, scratch, this.secrets, true,
      (instance, file, text) => (file === BACKUP_FILES.instanceConf ? this.rewriteConf(text, this.instancePod(instance)) : undefined));
  }

  /**
   * A pgbackrest.conf of another cluster's instance that reads this topology's repository (a clone's
   * or standby's source.conf): its own paths and port, this topology's servers.
   */
  public foreignConf(instance: Pick<LocalInstance, 'localize' | 'host' | 'port'>, text: string): string {
    return this.rewriteConf(text, this.instancePod(instance));
  }

  private instancePod(instance: Pick<LocalInstance, 'localize' | 'host' | 'port'>): LoopbackPod {
    return { localize: (path) => instance.localize(path), serverPort: this.serverPorts[instance.host], postgresPort: instance.port };
  }

  /** A pgbackrest.conf for loopback, read by `own` (see the class). */
  private rewriteConf(text: string, own: LoopbackPod): string {
    const hosts = new Map([...text.matchAll(/^((?:repo|pg)\d+)-host=(.+)$/gm)].map(([, prefix, host]) => [prefix, host]));
    const port = (pod: LoopbackPod, kind: 'serverPort' | 'postgresPort', line: string) => {
      if (pod[kind] === undefined) throw new Error(`no local ${kind} for "${line}"`);
      return pod[kind];
    };
    return text.split('\n').map((line) => {
      if (line.startsWith('tls-server-address=')) return 'tls-server-address=127.0.0.1';
      if (line.startsWith('tls-server-port=')) return `tls-server-port=${port(own, 'serverPort', line)}`;
      const option = /^((?:repo|pg)\d+)-(path|socket-path|host-config|host-port|port)=/.exec(line);
      if (!option) return own.localize(line);
      const [, prefix, key] = option;
      const host = hosts.get(prefix);
      const pod = host === undefined ? own : this.pods[host];
      if (!pod) throw new Error(`no running pod ${host} for "${line}"`);
      if (key === 'host-port') return `${prefix}-host-port=${port(pod, 'serverPort', line)}`;
      if (key === 'port') return `${prefix}-port=${port(pod, 'postgresPort', line)}`;
      return pod.localize(line);
    }).join('\n');
  }
}

/**
 * A pod of the backup objects (the repository host, a backup job) on loopback, from its pod spec:
 * each volume a directory, written as the kubelet would: ConfigMap items with their modes
 * (pgbackrest.conf files through `rewriteConf`), Secrets root-owned, of the pod's group, with the
 * volume's mode, emptyDirs; a PersistentVolumeClaim is `<scratch>/<claim>`, shared by every pod
 * that mounts it. The pod's container is its first.
 */
export class LocalPod implements LoopbackPod {
  public readonly root: string;
  private readonly roots: { [podPath: string]: string } = {};
  private readonly container: any;
  private daemon?: ChildProcess;
  /** The daemons the pod's container runs: the worker's, or another set's (after a major upgrade, the new image's). */
  public daemons: DaemonSet = DAEMONS;

  /** `claims` names the PersistentVolumeClaims of a StatefulSet's volumeClaimTemplates, by volume. */
  constructor(scratch: string, public readonly podName: string, spec: any, claims: { [volume: string]: string }, objects: any[],
    private readonly secrets: SecretStore, public readonly serverPort: number | undefined, rewriteConf: (own: LoopbackPod, text: string) => string) {
    this.root = join(scratch, podName);
    this.container = spec.containers[0];
    const volumes = new Map<string, any>(spec.volumes.map((volume: any) => [volume.name, volume]));
    for (const mount of this.container.volumeMounts) {
      const claim = volumes.get(mount.name)?.persistentVolumeClaim?.claimName ?? claims[mount.name];
      const dir = claim ? join(scratch, claim) : join(this.root, mount.name);
      this.roots[mount.mountPath] = dir;
      // A claim's volume is made once and keeps its files' owners (fsGroupChangePolicy: OnRootMismatch).
      if (!existsSync(dir)) {
        mkdirSync(dir, { recursive: true });
        giveToDaemonUser(dir);
      }
    }
    const mounted = (volume: any) => this.roots[this.container.volumeMounts.find((m: any) => m.name === volume.name).mountPath];
    for (const volume of spec.volumes.filter((v: any) => v.configMap)) {
      const data = findObject(objects, 'ConfigMap', volume.configMap.name).data;
      for (const item of volume.configMap.items) {
        const text = item.key.endsWith('.conf') ? rewriteConf(this, data[item.key]) : this.localize(data[item.key]);
        writeFileSync(join(mounted(volume), item.path), text, { mode: item.mode ?? volume.configMap.defaultMode });
      }
    }
    giveToDaemonUser(this.root);
    for (const volume of spec.volumes.filter((v: any) => v.secret)) {
      for (const item of volume.secret.items) {
        const value = secrets[volume.secret.secretName]?.[item.key];
        if (value === undefined) throw new Error(`no Secret ${volume.secret.secretName} key ${item.key}`);
        const file = join(mounted(volume), item.path);
        writeFileSync(file, value, { mode: volume.secret.defaultMode });
        chownSync(file, process.getuid!(), daemonGroup());
      }
    }
  }

  /** A pod path rewritten to this pod's root. */
  public localize(value: string): string {
    return localizePaths(value, this.roots);
  }

  /** Starts the container (a server), logging to `<pod>.log`, and waits until its readiness probe passes. */
  public async start(): Promise<void> {
    const [command, ...args] = this.command(this.container.command);
    this.daemon = startDaemonIn(this.daemons, command, args, `${this.root}.log`, this.env());
    const [probe, ...probeArgs] = this.command(this.container.readinessProbe.exec.command);
    await waitFor(`${this.podName} to pass its readiness probe`, () => runIn(this.daemons, probe, probeArgs).status === 0);
  }

  /** Runs the container to its end; returns its output, stdout then stderr, and its exit status. */
  public run(): { status: number | null; output: string } {
    const [command, ...args] = this.command(this.container.command);
    const result = runIn(this.daemons, command, args, this.env());
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  /**
   * Starts the container (a job that runs for a while, such as one waiting for the cluster), logging
   * to `<pod>.log`; resolves with its exit status and output when it ends, without blocking the test.
   */
  public runInBackground(): Promise<{ status: number | null; output: string }> {
    const [command, ...args] = this.command(this.container.command);
    const log = `${this.root}.log`;
    this.daemon = startDaemonIn(this.daemons, command, args, log, this.env());
    return new Promise((resolve) => this.daemon!.on('exit', (status) => resolve({ status, output: readFileSync(log, 'utf8') })));
  }

  /** Runs `command` in the container, as kubectl exec would: its environment, pod paths in the arguments localized; throws when it fails. */
  public exec(command: string, args: string[]): string {
    const result = runIn(this.daemons, command, this.command(args), this.env());
    if (result.status !== 0) throw new Error(`${command} in ${this.podName} exited ${result.status}:\n${result.stdout}${result.stderr}`);
    return `${result.stdout}${result.stderr}`;
  }

  /** Runs the container to its end; throws with its output when it fails. */
  public runOk(): string {
    const { status, output } = this.run();
    if (status !== 0) throw new Error(`${this.podName} exited ${status}:\n${output}`);
    return output;
  }

  /** Stops the server at once, if it runs. */
  public kill(): void {
    if (this.daemon?.pid !== undefined && this.daemon.exitCode === null) runIn(this.daemons, 'kill', ['-KILL', String(this.daemon.pid)]);
  }

  private command(command: string[]): string[] {
    return command.map((arg) => this.localize(arg));
  }

  private env(): { [name: string]: string } {
    return resolveEnv(this.container, this.secrets, [], (value) => this.localize(value));
  }
}
