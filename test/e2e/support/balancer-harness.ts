import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { makePodCertificate } from './certificate-maker';
import { SecretStore } from './cluster-harness';
import { resolveEnv } from './environment';
import { localizePaths } from './paths';
import { freePort, giveToDaemonUser, run, runOk, startDaemon, waitFor } from './postgres-bin';
import { BALANCER_PATHS } from '../../../lib/balancer/balancer-layout';
import { findObject } from '../../support/synth';

/** Debian's Pgpool-II sample configuration: what the image's environment mode starts from. */
const SAMPLE_PGPOOL_CONF = '/etc/pgpool2/pgpool.conf';

/**
 * One pod of a synthesized PgpoolBalancer on loopback. Our init step runs as rendered; what the
 * Pgpool-II image's entrypoint does is done here as it documents it: in ConfigMap mode it takes
 * /config/pgpool.conf, in environment mode it appends `name = 'value'` for each PGPOOL_PARAMS_
 * variable to its sample config; then `pg_enc -m -k <key>` makes a pool_passwd entry for each
 * `<PREFIX>_USERNAME`/`_PASSWORD` pair. Only hosts, ports and path roots are rewritten.
 */
export class LocalBalancer {
  /** Lays out the balancer `name` of `objects`; `backendPorts` maps backend Service hosts to local ports. */
  public static async create(
    scratch: string, objects: any[], name: string, backendPorts: { [host: string]: number }, secrets: SecretStore,
  ): Promise<LocalBalancer> {
    return new LocalBalancer(scratch, objects, name, await freePort(), await freePort(), backendPorts, secrets);
  }

  public readonly root: string;
  public readonly logFile: string;
  private readonly pod: any;

  private constructor(scratch: string, private readonly objects: any[], name: string, public readonly port: number,
    public readonly pcpPort: number, private readonly backendPorts: { [host: string]: number }, private readonly secrets: SecretStore) {
    this.root = join(scratch, name);
    this.logFile = join(scratch, `${name}.log`);
    this.pod = findObject(objects, 'Deployment', name).spec.template.spec;
    for (const dir of ['template', 'config', 'secrets', 'etc', 'run']) mkdirSync(join(this.root, dir), { recursive: true });
  }

  /** Runs the init steps and what the image's entrypoint does, then starts Pgpool-II and waits for it. */
  public async start(): Promise<void> {
    const configMap = findObject(this.objects, 'ConfigMap', this.pod.volumes.find((v: any) => v.configMap).configMap.name).data;
    const main = this.pod.containers.find((c: any) => c.name === 'pgpool');
    const env = this.resolveEnv(main);
    const configInit = this.pod.initContainers.find((c: any) => c.name === 'config');
    let conf: string;
    if (configInit) {
      for (const [file, text] of Object.entries<string>(configMap)) writeFileSync(join(this.root, 'template', file), text);
      const secretSource = this.pod.volumes.find((v: any) => v.name === 'secrets').projected.sources[0].secret;
      mkdirSync(join(this.root, 'secrets', 'srcheck'));
      writeFileSync(join(this.root, 'secrets', secretSource.items[0].path), this.secrets[secretSource.name][secretSource.items[0].key]);
      giveToDaemonUser(this.root);
      runOk(configInit.command[0], configInit.command.slice(1).map((arg: string) => this.localize(arg)), this.resolveEnv(configInit));
      conf = readFileSync(join(this.root, 'config', 'pgpool.conf'), 'utf8');
    } else {
      conf = readFileSync(SAMPLE_PGPOOL_CONF, 'utf8') + Object.entries(env)
        .filter(([name]) => name.startsWith('PGPOOL_PARAMS_'))
        .map(([name, value]) => `${name.slice('PGPOOL_PARAMS_'.length).toLowerCase()} = '${value}'\n`).join('');
      writeFileSync(join(this.root, 'config', 'pool_hba.conf'), configMap['pool_hba.conf']);
    }
    this.installCertificates(conf);
    writeFileSync(join(this.root, 'etc', 'pgpool.conf'), this.rewrite(conf));
    copyFileSync(join(this.root, 'config', 'pool_hba.conf'), join(this.root, 'etc', 'pool_hba.conf'));
    writeFileSync(join(this.root, 'etc', '.pgpoolkey'), 'cdk8s-postgres-e2e-key\n', { mode: 0o600 });
    writeFileSync(join(this.root, 'etc', 'pool_passwd'), '', { mode: 0o600 });
    writeFileSync(join(this.root, 'etc', 'pcp.conf'), '', { mode: 0o600 });
    giveToDaemonUser(this.root);
    for (const name of Object.keys(env).filter((key) => /^[A-Z0-9]+_USERNAME$/.test(key))) {
      const prefix = name.slice(0, -'_USERNAME'.length);
      runOk('pg_enc', ['-m', '-k', join(this.root, 'etc', '.pgpoolkey'), '-f', join(this.root, 'etc', 'pgpool.conf'),
        '-u', env[name], env[`${prefix}_PASSWORD`]]);
    }
    startDaemon('pgpool', ['-n', '-f', join(this.root, 'etc', 'pgpool.conf'), '-F', join(this.root, 'etc', 'pcp.conf'),
      '-a', join(this.root, 'etc', 'pool_hba.conf'), '-k', join(this.root, 'etc', '.pgpoolkey')], this.logFile);
    await waitFor('Pgpool-II to accept TCP connections', () => run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${this.port}`]).status === 0);
  }

  /**
   * The certificate volumes at their mount paths (Secrets as the kubelet writes them, or the
   * certificate init container's output), and the image's TLS step, which must not run: with
   * tls.key and tls.crt in /config/tls, or with a last `ssl = on` line, its entrypoint puts a
   * certificate of its own in place of the construct's.
   */
  private installCertificates(conf: string): void {
    const mounts = this.pod.containers.flatMap((c: any) => c.volumeMounts ?? []);
    for (const volume of this.pod.volumes.filter((v: any) => ['tls', 'backend-ca'].includes(v.name) && (v.secret || v.projected))) {
      const dir = this.localize(mounts.find((m: any) => m.name === volume.name).mountPath);
      mkdirSync(dir, { recursive: true });
      const sources = volume.projected?.sources ?? [{ secret: { name: volume.secret.secretName, items: volume.secret.items } }];
      for (const { secret } of sources) {
        for (const item of secret.items) {
          const value = this.secrets[secret.name]?.[item.key];
          if (value === undefined) throw new Error(`no Secret ${secret.name} key ${item.key}`);
          writeFileSync(join(dir, item.path), value, { mode: 0o440 });
        }
      }
    }
    giveToDaemonUser(this.root);
    makePodCertificate(this.pod, (path) => this.localize(path));
    const lastSsl = conf.split('\n').filter((line) => /^ssl\s*=/.test(line)).pop();
    if (existsSync(join(this.root, 'config', 'tls')) || /^ssl\s*=\s*'?on'?/.test(lastSsl ?? '')) {
      throw new Error(`the image's entrypoint would replace the balancer's certificate (${lastSsl})`);
    }
  }

  /** Stops Pgpool-II and its children at once, if it runs. */
  public kill(): void {
    // SIGQUIT is Pgpool-II's immediate shutdown: the main process ends its children too.
    run('sh', ['-c', `kill -QUIT "$(cat ${join(this.root, 'run', 'pgpool.pid')})" 2>/dev/null || true`]);
  }

  /** The log so far. */
  public log(): string {
    return readFileSync(this.logFile, 'utf8');
  }

  private rewrite(conf: string): string {
    return this.localize(conf)
      .replace(/^backend_port\d = '?\d+'?$/gm, '')
      .replace(/^listen_addresses = .*$/gm, "listen_addresses = '127.0.0.1'")
      .replace(/^pcp_listen_addresses = '\*'$/gm, "pcp_listen_addresses = '127.0.0.1'")
      .replace(/^port = .*$/gm, `port = ${this.port}`)
      .replace(/^pcp_port = .*$/gm, `pcp_port = ${this.pcpPort}`)
      .replace(/^(backend_hostname\d) = '?([^'\n]+)'?$/gm, (_, key: string, host: string) => {
        if (!(host in this.backendPorts)) throw new Error(`no local port for backend host ${host}`);
        return `${key} = '127.0.0.1'\n${key.replace('hostname', 'port')} = ${this.backendPorts[host]}`;
      });
  }

  private localize(value: string): string {
    return localizePaths(value, {
      [BALANCER_PATHS.templateDir]: join(this.root, 'template'), [BALANCER_PATHS.secretsDir]: join(this.root, 'secrets'),
      [BALANCER_PATHS.runDir]: join(this.root, 'run'), [BALANCER_PATHS.configDir]: join(this.root, 'config'),
      [BALANCER_PATHS.certificateDir]: join(this.root, 'tls'), [BALANCER_PATHS.backendAuthorityDir]: join(this.root, 'backend-ca'),
    });
  }

  /** Environment values as the kubelet gives them, with paths localized. */
  private resolveEnv(container: any): { [name: string]: string } {
    return resolveEnv(container, this.secrets, this.objects, (value) => this.localize(value));
  }
}
