import { randomBytes } from 'crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'fs';
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
 * One pod of a synthesized PgpoolBalancer on loopback. The kubelet's part is done here (ConfigMap
 * items and Secrets written at their mount paths) and our init steps run as rendered; what the
 * Pgpool-II image's entrypoint does is done here as its script does it: in ConfigMap mode it
 * takes /config/pgpool.conf, in environment mode it appends `name = 'value'` for each
 * PGPOOL_PARAMS_ variable to its sample config; then, pool_passwd enabled, it touches
 * .pgpoolkey, pool_passwd and pcp.conf, writes a random .pgpoolkey (method scram-sha-256), and
 * registers every `<PREFIX>_USERNAME`/`_PASSWORD` pair with `pg_enc ... <password>`: the
 * harness refuses such pairs, and the PCP pair, since they put passwords on command lines.
 * Only hosts, ports and path roots are rewritten.
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
    for (const dir of ['template', 'scripts', 'config', 'secrets', 'etc', 'run']) mkdirSync(join(this.root, dir), { recursive: true });
  }

  /** Runs the init steps and what the image's entrypoint does, then starts Pgpool-II and waits for it. */
  public async start(): Promise<void> {
    const env = this.resolveEnv(this.pod.containers.find((c: any) => c.name === 'pgpool'));
    this.mountVolumes();
    this.runInit('logins');
    let conf: string;
    if (this.pod.initContainers.some((c: any) => c.name === 'config')) {
      this.runInit('config');
      conf = readFileSync(join(this.root, 'config', 'pgpool.conf'), 'utf8');
    } else {
      conf = readFileSync(SAMPLE_PGPOOL_CONF, 'utf8') + Object.entries(env)
        .filter(([name]) => name.startsWith('PGPOOL_PARAMS_'))
        .map(([name, value]) => `${name.slice('PGPOOL_PARAMS_'.length).toLowerCase()} = '${value}'\n`).join('');
    }
    this.installCertificates(conf);
    writeFileSync(join(this.root, 'etc', 'pgpool.conf'), this.rewrite(conf));
    copyFileSync(join(this.root, 'config', 'pool_hba.conf'), join(this.root, 'etc', 'pool_hba.conf'));
    this.entrypointPasswords(env);
    giveToDaemonUser(this.root);
    startDaemon('pgpool', ['-n', '-f', join(this.root, 'etc', 'pgpool.conf'), '-F', join(this.root, 'etc', 'pcp.conf'),
      '-a', join(this.root, 'etc', 'pool_hba.conf'), '-k', join(this.root, 'etc', '.pgpoolkey')], this.logFile);
    await waitFor('Pgpool-II to accept TCP connections', () => run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${this.port}`]).status === 0);
  }

  /** The pod's ConfigMap items and Secret projections, written at their mount paths as the kubelet does. */
  private mountVolumes(): void {
    const mounts = [...this.pod.initContainers, ...this.pod.containers].flatMap((c: any) => c.volumeMounts ?? []);
    const dirOf = (volume: any) => this.localize(mounts.find((m: any) => m.name === volume.name).mountPath);
    for (const volume of this.pod.volumes.filter((v: any) => v.configMap)) {
      const data = findObject(this.objects, 'ConfigMap', volume.configMap.name).data;
      for (const item of volume.configMap.items) writeFileSync(join(dirOf(volume), item.path), data[item.key]);
    }
    for (const volume of this.pod.volumes.filter((v: any) => v.projected && v.name !== 'tls' && v.name !== 'backend-ca')) {
      for (const { secret } of volume.projected.sources) {
        for (const item of secret.items) {
          const value = this.secrets[secret.name]?.[item.key];
          if (value === undefined) throw new Error(`no Secret ${secret.name} key ${item.key}`);
          mkdirSync(join(dirOf(volume), item.path, '..'), { recursive: true });
          writeFileSync(join(dirOf(volume), item.path), value, { mode: 0o440 });
        }
      }
    }
    giveToDaemonUser(this.root);
  }

  /** Runs the init container `name` as rendered, paths localized. */
  private runInit(name: string): void {
    const init = this.pod.initContainers.find((c: any) => c.name === name);
    runOk(init.command[0], init.command.slice(1).map((arg: string) => this.localize(arg)), this.resolveEnv(init));
  }

  /**
   * The entrypoint's generate_pool_passwd and generate_pcp_conf with this environment. With
   * pool_passwd disabled it would append `ssl = 'on'` (and make its own certificate); a
   * `<PREFIX>_USERNAME` or PCP pair it would pass to pg_enc or pg_md5 on the command line.
   */
  private entrypointPasswords(env: { [name: string]: string }): void {
    const etc = join(this.root, 'etc');
    for (const file of ['.pgpoolkey', 'pool_passwd', 'pcp.conf']) {
      closeSync(openSync(join(etc, file), 'a'));
      chmodSync(join(etc, file), 0o600);
    }
    if (!/^(yes|true|on)$/.test(env.PGPOOL_ENABLE_POOL_PASSWD ?? 'true')) throw new Error('the entrypoint would skip pool_passwd and force ssl = \'on\'');
    if ((env.PGPOOL_PASSWORD_ENCRYPTION_METHOD ?? 'scram-sha-256') === 'scram-sha-256') {
      writeFileSync(join(etc, '.pgpoolkey'), `${randomBytes(20).toString('base64')}\n`);
    }
    const pairs = Object.keys(env).filter((name) => /^.+_USERNAME$/.test(name) && env[name] !== '');
    if (pairs.length > 0) throw new Error(`the entrypoint would put the passwords of ${pairs.join(', ')} on pg_enc's command line`);
    if (env.PGPOOL_PCP_USER && env.PGPOOL_PCP_PASSWORD) throw new Error('the entrypoint would put the PCP password on pg_md5\'s command line');
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
      [BALANCER_PATHS.scriptsDir]: join(this.root, 'scripts'), [BALANCER_PATHS.imageEtcDir]: join(this.root, 'etc'),
    });
  }

  /** Environment values as the kubelet gives them, with paths localized. */
  private resolveEnv(container: any): { [name: string]: string } {
    return resolveEnv(container, this.secrets, this.objects, (value) => this.localize(value));
  }
}
