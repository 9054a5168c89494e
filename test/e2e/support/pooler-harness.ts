import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { makePodCertificate } from './certificate-maker';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './cluster-harness';
import { localizePaths } from './paths';
import { freePort, giveToDaemonUser, run, startDaemon, waitFor } from './postgres-bin';
import { POOLER_FILES, POOLER_PATHS } from '../../../lib/pooler/pooler-layout';
import { findObject } from '../../support/synth';

/**
 * One pod of a synthesized PgBouncerPooler, run on loopback from the rendered files and the
 * containers' own commands. Only roots of paths, backend hosts and ports are rewritten.
 */
export class LocalPooler {
  /**
   * Builds the pooler's files; `backendPorts` maps the backend Service host names to local ports.
   * Host names become 127.0.0.1 unless `keepHostNames` (the test resolves them: resolveHostsWith).
   */
  public static async create(scratch: string, objects: any[], name: string, backendPorts: { [host: string]: number }, secrets: SecretStore,
    keepHostNames = false): Promise<LocalPooler> {
    return new LocalPooler(scratch, objects, name, await freePort(), backendPorts, secrets, keepHostNames);
  }

  public readonly root: string;
  public readonly logFile: string;
  public readonly port: number;
  private readonly pod: any;

  private constructor(scratch: string, objects: any[], name: string, port: number, backendPorts: { [host: string]: number }, secrets: SecretStore,
    keepHostNames: boolean) {
    this.root = join(scratch, name);
    this.logFile = join(scratch, `${name}.log`);
    this.port = port;
    this.pod = findObject(objects, 'Deployment', name).spec.template.spec;
    for (const dir of ['etc', 'auth', 'run', 'secrets', 'tls']) mkdirSync(join(this.root, dir), { recursive: true });

    const files = findObject(objects, 'ConfigMap', this.pod.volumes.find((v: any) => v.name === 'config').configMap.name).data;
    for (const [file, text] of Object.entries<string>(files)) {
      let local = this.localize(text);
      if (file === POOLER_FILES.pgbouncerIni) {
        local = local
          .replace(/^listen_addr = .*$/m, 'listen_addr = 127.0.0.1')
          .replace(/^listen_port = \d+$/m, `listen_port = ${port}`)
          .replace(/host=(\S+) port=\d+/g, (_, host: string) => {
            if (!(host in backendPorts)) throw new Error(`no local port for backend host ${host}`);
            return `host=${keepHostNames ? host : '127.0.0.1'} port=${backendPorts[host]}`;
          });
      }
      writeFileSync(join(this.root, 'etc', file), local, { mode: 0o444 });
    }
    // Every Secret volume (credentials, TLS) at its mount path, as the kubelet would.
    const mounts = [...this.pod.initContainers, ...this.pod.containers].flatMap((c: any) => c.volumeMounts ?? []);
    for (const volume of this.pod.volumes.filter((v: any) => v.projected || v.secret)) {
      const dir = this.localize(mounts.find((m: any) => m.name === volume.name).mountPath);
      const sources = volume.projected?.sources ?? [{ secret: { name: volume.secret.secretName, items: volume.secret.items } }];
      for (const source of sources) {
        for (const item of source.secret.items) {
          mkdirSync(join(dir, item.path, '..'), { recursive: true });
          writeFileSync(join(dir, item.path), secrets[source.secret.name][item.key], { mode: 0o440 });
        }
      }
    }
    giveToDaemonUser(this.root);
    makePodCertificate(this.pod, (path) => this.localize(path));
  }

  /** Runs the init container's command; returns what it logged. */
  public writeUserlist(): string {
    const init = this.container('initContainers', 'userlist');
    return this.runCommand(init.command, this.env(init));
  }

  /** Starts the main container's command, with room for many clients, and waits until it accepts TCP. */
  public async start(): Promise<void> {
    const main = this.container('containers', 'pgbouncer');
    const command = main.command.map((arg: string) => this.localize(arg));
    // A pod's open-files limit is the runtime's (usually 1048576); a shell's default is 1024.
    startDaemon('/bin/sh', ['-c', 'ulimit -n 8192 && exec "$@"', 'pgbouncer', ...command], this.logFile, this.env(main));
    await waitFor('PgBouncer to accept TCP connections', () => this.listening());
  }

  /** Whether the readiness probe's command passes. */
  public ready(): boolean {
    const probe = this.container('containers', 'pgbouncer').readinessProbe.exec.command.map((arg: string) => this.localize(arg));
    return run(probe[0], probe.slice(1)).status === 0;
  }

  /** Runs the preStop hook to its end; returns its exit status. */
  public drain(): Promise<number> {
    const main = this.container('containers', 'pgbouncer');
    const hook = main.lifecycle.preStop.exec.command.map((arg: string) => this.localize(arg));
    return new Promise((resolve) => {
      startDaemon(hook[0], hook.slice(1), join(this.root, 'drain.log'), this.env(main)).on('exit', (code) => resolve(code ?? -1));
    });
  }

  /** Whether something accepts TCP on the pooler's port (the startup and liveness probes' check). */
  public listening(): boolean {
    return run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${this.port}`]).status === 0;
  }

  /** Stops PgBouncer at once, if it runs. */
  public kill(): void {
    run('sh', ['-c', `kill -9 "$(cat ${this.localize(POOLER_PATHS.pidfile)})" 2>/dev/null || true`]);
  }

  /** A path of the pod, rewritten to this pooler's root. */
  public localize(value: string): string {
    return localizePaths(value, {
      [POOLER_PATHS.configDir]: join(this.root, 'etc'), [POOLER_PATHS.authDir]: join(this.root, 'auth'),
      [POOLER_PATHS.runDir]: join(this.root, 'run'), [POOLER_PATHS.secretsDir]: join(this.root, 'secrets'),
      [POOLER_PATHS.clientTlsDir]: join(this.root, 'tls', 'client'), [POOLER_PATHS.serverTlsDir]: join(this.root, 'tls', 'server'),
    });
  }

  private runCommand(command: string[], env: { [name: string]: string }): string {
    const result = run(command[0], command.slice(1).map((arg) => this.localize(arg)), env);
    if (result.status !== 0) throw new Error(`${command.join(' ')} exited ${result.status}:\n${result.stderr}`);
    return result.stderr;
  }

  private container(kind: 'containers' | 'initContainers', name: string): any {
    return this.pod[kind].find((c: any) => c.name === name);
  }

  private env(container: any): { [name: string]: string } {
    const env: { [name: string]: string } = {};
    for (const variable of container.env ?? []) env[variable.name] = this.localize(variable.value);
    return env;
  }
}

/**
 * Boots the pooled-cluster example's cluster (`airflow-db`), then the pooler `poolerName` of
 * `poolerObjects` in front of it, its userlist written by its init step.
 */
export async function startPooledCluster(scratch: string, clusterObjects: any[], poolerObjects: any[], poolerName: string,
  secrets: SecretStore): Promise<{ instances: LocalInstance[]; pooler: LocalPooler }> {
  const instances = await localCluster(clusterObjects, 'airflow-db', scratch, secrets);
  await bootCluster(instances);
  const pooler = await LocalPooler.create(scratch, poolerObjects, poolerName, {
    'airflow-db-rw.airflow.svc': instances[0].port,
    'airflow-db-ro.airflow.svc': instances[1].port,
  }, secrets);
  const log = pooler.writeUserlist();
  if (!/userlist: \d+ role\(s\) written/.test(log)) throw new Error(`the userlist step said: ${log}`);
  await pooler.start();
  return { instances, pooler };
}
