import { ChildProcess } from 'child_process';
import { chownSync, mkdirSync, rmSync, writeFileSync } from 'fs';
import { join, posix } from 'path';
import { makePodCertificate } from './certificate-maker';
import { DAEMONS, DaemonSet } from './daemons';
import { resolveEnv } from './environment';
import { localizePaths } from './paths';
import { daemonGroup, freePort, giveToDaemonUser, RootBinds, runIn, runOkIn, startDaemonIn, waitFor } from './postgres-bin';
import { BACKUP_PATHS } from '../../../lib/backup/backup-layout';
import { CLUSTER_FILES, CLUSTER_PATHS } from '../../../lib/cluster/cluster-layout';
import { SOURCE_PATHS } from '../../../lib/cluster/source-cluster-model';
import { findObject } from '../../support/synth';

/** Secret name -> key -> value, standing in for the Secrets a cluster references. */
export type SecretStore = { [secretName: string]: { [key: string]: string } };

/**
 * Rewrites a ConfigMap file of `instance`, given as rendered, for loopback; undefined leaves it
 * to LocalInstance, which localizes its paths (and postgresql.conf's port and address).
 */
export type FileRewrite = (instance: LocalInstance, file: string, text: string) => string | undefined;

/**
 * One pod of a synthesized PostgresStatefulCluster, run on loopback from the rendered files and
 * the containers' own commands. Only roots of paths, the host and the ports are rewritten.
 */
export class LocalInstance {
  public readonly root: string;
  public readonly logFile: string;
  private readonly primaryPort: number;
  private readonly keepHostNames: boolean;
  private readonly bootstrapCommand: string[];
  private readonly bootstrapEnv: { [name: string]: string };
  private readonly postgresCommand: string[];
  private readonly probeCommand: string[];
  private readonly preStopCommand: string[];
  private readonly sidecars: ChildProcess[] = [];
  /** The daemons the pod's containers run: the worker's, or another set's (a major upgrade runs the new major's). */
  public daemons: DaemonSet = DAEMONS;
  /**
   * With tablespaces, the pod's own directory bound over their pod path in the containers' mount
   * namespaces: PostgreSQL keeps a tablespace's absolute path, the same in every pod of a cluster.
   */
  private readonly binds: RootBinds = {};

  constructor(
    scratch: string,
    public readonly podName: string,
    public readonly port: number,
    private readonly statefulSet: any,
    private readonly configMaps: { [name: string]: { [file: string]: string } },
    primaryPort: number,
    private readonly secrets: SecretStore,
    keepHostNames = false,
    private readonly rewriteFile: FileRewrite = () => undefined,
  ) {
    this.root = join(scratch, podName);
    this.logFile = join(scratch, `${podName}.log`);
    const pod = statefulSet.spec.template.spec;
    const init = pod.initContainers.find((c: any) => c.name === 'bootstrap');
    const main = pod.containers.find((c: any) => c.name === 'postgres');

    for (const dir of ['data', 'wal', 'socket', 'auth', 'tmp', 'pgbackrest-lock', 'pgbackrest-auth', 'pgbackrest-source-lock']) mkdirSync(join(this.root, dir), { recursive: true });
    for (const volume of pod.volumes) {
      if (volume.configMap) this.writeConfigMap(volume);
      if (volume.projected) this.writeSecrets(volume, secrets);
    }
    if (main.volumeMounts.some((m: any) => m.mountPath.startsWith(`${CLUSTER_PATHS.tablespacesDir}/`))) {
      mkdirSync(join(this.root, 'tablespaces'), { recursive: true });
      this.binds = { [CLUSTER_PATHS.tablespacesDir]: join(this.root, 'tablespaces') };
    }
    giveToDaemonUser(this.root);
    for (const volume of pod.volumes.filter((v: any) => v.secret)) this.writeSecretVolume(volume, secrets);
    makePodCertificate(pod, (path) => this.localize(path));

    this.primaryPort = primaryPort;
    this.keepHostNames = keepHostNames;
    this.bootstrapEnv = this.initEnv(init);
    this.bootstrapCommand = init.command.map((arg: string) => this.localize(arg));
    this.postgresCommand = main.command.map((arg: string) => this.localize(arg));
    const podPort = `--port=${main.ports[0].containerPort}`;
    this.probeCommand = main.readinessProbe.exec.command.map((arg: string) => (arg === podPort ? `--port=${port}` : this.localize(arg)));
    this.preStopCommand = main.lifecycle.preStop.exec.command.map((arg: string) => (arg === podPort ? `--port=${port}` : this.localize(arg)));
  }

  /** The instance's Unix socket directory, where the superuser logs in (pg_hba rejects it over TCP). */
  public get socketDir(): string {
    return join(this.root, 'socket');
  }

  /** The pod's DNS name, through its StatefulSet's headless Service. */
  public get host(): string {
    return `${this.podName}.${this.statefulSet.spec.serviceName}`;
  }

  /** The data directory, as PGDATA says. */
  public get pgdata(): string {
    return this.bootstrapEnv.PGDATA;
  }

  /**
   * An init container's environment: the pod name, paths localized; the primary's port becomes its
   * loopback one, and its DNS name loopback's unless the test resolves names itself; mktemp uses
   * the pod's /tmp volume.
   */
  private initEnv(container: any): { [name: string]: string } {
    const env: { [name: string]: string } = {};
    for (const variable of container.env ?? []) {
      if (variable.valueFrom?.secretKeyRef) Object.assign(env, resolveEnv({ env: [variable] }, this.secrets));
      else env[variable.name] = variable.valueFrom?.fieldRef?.fieldPath === 'metadata.name' ? this.podName : this.localize(variable.value);
    }
    return Object.assign(env, { PGPORT: String(this.primaryPort), TMPDIR: join(this.root, 'tmp') }, this.keepHostNames ? {} : { PRIMARY_HOST: '127.0.0.1' });
  }

  /** The init container `name`'s command and environment, localized as bootstrap's. */
  public initContainer(name: string): { command: string[]; env: { [name: string]: string } } {
    const container = this.statefulSet.spec.template.spec.initContainers.find((c: any) => c.name === name);
    if (!container) throw new Error(`${this.podName} has no init container ${name}`);
    return { command: container.command.map((arg: string) => this.localize(arg)), env: this.initEnv(container) };
  }

  /** Runs the init container's command; returns what it logged. */
  public bootstrap(): string {
    const result = runIn(this.daemons, this.bootstrapCommand[0], this.bootstrapCommand.slice(1), this.bootstrapEnv, undefined, this.binds);
    if (result.status !== 0) throw new Error(`bootstrap of ${this.podName} exited ${result.status}:\n${result.stderr}`);
    return result.stderr;
  }

  /** Starts the main container's command and waits until its readiness probe passes. */
  public async start(): Promise<void> {
    startDaemonIn(this.daemons, this.postgresCommand[0], this.postgresCommand.slice(1), this.logFile, this.secretEnv('postgres'), this.binds);
    await waitFor(`${this.podName} to pass its readiness probe`, () => this.ready());
  }

  /**
   * Starts the sidecar container `name`: its command and environment (Secrets from the store,
   * paths localized), logging to `<pod>-<name>.log`, and waits until its readiness probe passes.
   */
  public async startSidecar(name: string): Promise<void> {
    const container = this.statefulSet.spec.template.spec.containers.find((c: any) => c.name === name);
    const localize = (value: string) => this.localize(value);
    const command = container.command.map(localize);
    this.sidecars.push(startDaemonIn(this.daemons, command[0], command.slice(1), `${this.root}-${name}.log`, resolveEnv(container, this.secrets, [], localize),
      this.binds));
    const probe = container.readinessProbe.exec.command.map(localize);
    await waitFor(`${this.podName}: ${name} to pass its readiness probe`, () => runIn(this.daemons, probe[0], probe.slice(1)).status === 0);
  }

  /**
   * The secretKeyRef variables of container `name` (an S3 repository's keys, which archive_command
   * reads): its other variables name pod paths and ports, which start() does not pass.
   */
  private secretEnv(name: string): { [name: string]: string } {
    const container = this.statefulSet.spec.template.spec.containers.find((c: any) => c.name === name);
    return resolveEnv({ env: (container.env ?? []).filter((variable: any) => variable.valueFrom?.secretKeyRef) }, this.secrets);
  }

  /** Runs the readiness probe's command. */
  public ready(): boolean {
    return runIn(this.daemons, this.probeCommand[0], this.probeCommand.slice(1)).status === 0;
  }

  /** The postgres container's preStop hook as the kubelet runs it: its command (paths and port local) and the container's environment. */
  public get preStop(): { command: string[]; env: { [name: string]: string } } {
    const main = this.statefulSet.spec.template.spec.containers.find((c: any) => c.name === 'postgres');
    return { command: this.preStopCommand, env: resolveEnv(main, this.secrets, [], (value) => this.localize(value)) };
  }

  /** Stops PostgreSQL the way the preStop hook does. */
  public stop(): void {
    runOkIn(this.daemons, this.preStop.command[0], this.preStop.command.slice(1), this.preStop.env);
  }

  /** Stops PostgreSQL and the sidecars at once, if they run. */
  public kill(): void {
    runIn(this.daemons, 'pg_ctl', ['stop', `--pgdata=${this.pgdata}`, '--mode=immediate', '--wait']);
    for (const sidecar of this.sidecars.splice(0)) {
      if (sidecar.pid !== undefined && sidecar.exitCode === null) runIn(this.daemons, 'kill', ['-KILL', String(sidecar.pid)]);
    }
  }

  /** Loses the pod's volumes, as when a PVC is deleted. */
  public wipeVolumes(): void {
    for (const dir of ['data', 'wal']) {
      rmSync(join(this.root, dir), { recursive: true, force: true });
      mkdirSync(join(this.root, dir));
      giveToDaemonUser(join(this.root, dir));
    }
  }

  /** A path of the pod, rewritten to this instance's root. */
  public localize(value: string): string {
    const dirs: [string, string][] = [
      [CLUSTER_PATHS.configDir, 'etc'], [CLUSTER_PATHS.scriptsDir, 'scripts'], [CLUSTER_PATHS.dataVolume, 'data'],
      [CLUSTER_PATHS.walVolume, 'wal'], [CLUSTER_PATHS.socketDir, 'socket'], [CLUSTER_PATHS.authDir, 'auth'],
      [CLUSTER_PATHS.secretsDir, 'secrets'], [CLUSTER_PATHS.tlsDir, 'tls'], [posix.dirname(CLUSTER_PATHS.superuserNameFile), 'superuser'],
      [BACKUP_PATHS.configDir, 'pgbackrest'], [BACKUP_PATHS.lockDir, 'pgbackrest-lock'],
      [BACKUP_PATHS.secretsDir, 'pgbackrest-secrets'], [posix.dirname(BACKUP_PATHS.passfile), 'pgbackrest-auth'],
      [BACKUP_PATHS.storageCaRoot, 'pgbackrest-ca'], [CLUSTER_PATHS.oldBinariesDir, 'old-binaries'],
      [SOURCE_PATHS.configDir, 'pgbackrest-source'], [SOURCE_PATHS.tlsDir, 'pgbackrest-source-tls'], [SOURCE_PATHS.authorityDir, 'source-ca'],
      [SOURCE_PATHS.lockDir, 'pgbackrest-source-lock'],
    ];
    return localizePaths(value, Object.fromEntries(dirs.map(([podPath, dir]) => [podPath, join(this.root, dir)])));
  }

  /** A ConfigMap volume: its items (or every key) with their modes. */
  private writeConfigMap(volume: any): void {
    const mountPath = this.statefulSet.spec.template.spec.containers.concat(this.statefulSet.spec.template.spec.initContainers)
      .flatMap((c: any) => c.volumeMounts ?? []).find((m: any) => m.name === volume.name).mountPath;
    const dir = this.localize(mountPath);
    mkdirSync(dir, { recursive: true });
    const data = this.configMaps[volume.configMap.name];
    const items: { key: string; path: string; mode?: number }[] = volume.configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const { key, path, mode } of items) {
      writeFileSync(join(dir, path), this.localConfigFile(key, data[key]), { mode: mode ?? volume.configMap.defaultMode });
    }
  }

  /** A ConfigMap file as this instance reads it: rewritten by the test, or its paths localized (and postgresql.conf's port and address). */
  public localConfigFile(key: string, text: string): string {
    const local = this.rewriteFile(this, key, text) ?? this.localize(text);
    return key === CLUSTER_FILES.postgresqlConf
      ? local.replace(/^port = \d+$/m, `port = ${this.port}`).replace(/^listen_addresses = .*$/m, "listen_addresses = '127.0.0.1'")
      : local;
  }

  /**
   * A Secret volume as the kubelet writes it with an fsGroup: files owned by root, of the pod's
   * group, with the volume's defaultMode.
   */
  private writeSecretVolume(volume: any, secrets: SecretStore): void {
    const mount = this.statefulSet.spec.template.spec.containers.flatMap((c: any) => c.volumeMounts).find((m: any) => m.name === volume.name);
    const dir = this.localize(mount.mountPath);
    mkdirSync(dir, { recursive: true });
    for (const item of volume.secret.items) {
      const value = secrets[volume.secret.secretName]?.[item.key];
      if (value === undefined) throw new Error(`no Secret ${volume.secret.secretName} key ${item.key}`);
      const file = join(dir, item.path);
      writeFileSync(file, value, { mode: volume.secret.defaultMode });
      // Root when the tests run as root, as the kubelet does.
      chownSync(file, process.getuid!(), daemonGroup());
    }
  }

  /** Changes a Secret's value as the kubelet would in the projected volume. */
  public updateSecret(secretName: string, key: string, value: string): void {
    for (const volume of this.statefulSet.spec.template.spec.volumes.filter((v: any) => v.projected)) {
      this.writeSecrets(volume, { [secretName]: { [key]: value } });
    }
  }

  private writeSecrets(volume: any, secrets: SecretStore): void {
    const spec = this.statefulSet.spec.template.spec;
    const mount = spec.containers.concat(spec.initContainers).flatMap((c: any) => c.volumeMounts ?? []).find((m: any) => m.name === volume.name);
    const dir = this.localize(mount.mountPath);
    for (const source of volume.projected.sources) {
      for (const item of source.secret.items) {
        const value = secrets[source.secret.name]?.[item.key];
        if (value === undefined) continue;
        const file = join(dir, item.path);
        mkdirSync(join(file, '..'), { recursive: true });
        writeFileSync(file, value, { mode: 0o440 });
        giveToDaemonUser(file);
      }
    }
  }
}

/** The instances of a synthesized cluster, the primary first, each on its own loopback port. */
export async function localCluster(objects: any[], clusterName: string, scratch: string, secrets: SecretStore,
  keepHostNames = false, rewriteFile?: FileRewrite): Promise<LocalInstance[]> {
  const configMaps: { [name: string]: { [file: string]: string } } = {};
  for (const o of objects.filter((object) => object.kind === 'ConfigMap')) configMaps[o.metadata.name] = o.data;
  const primary = findObject(objects, 'StatefulSet', `${clusterName}-primary`);
  const replica = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === `${clusterName}-replica`);
  const primaryPort = await freePort();
  const instances = [new LocalInstance(scratch, `${primary.metadata.name}-0`, primaryPort, primary, configMaps, primaryPort, secrets, keepHostNames, rewriteFile)];
  for (let ordinal = 0; ordinal < (replica?.spec.replicas ?? 0); ordinal++) {
    instances.push(new LocalInstance(scratch, `${replica.metadata.name}-${ordinal}`, await freePort(), replica, configMaps, primaryPort, secrets, keepHostNames, rewriteFile));
  }
  return instances;
}

/** Bootstraps and starts the instances in order, the primary first, as the StatefulSets do. */
export async function bootCluster(instances: LocalInstance[]): Promise<void> {
  for (const instance of instances) {
    instance.bootstrap();
    await instance.start();
  }
}
