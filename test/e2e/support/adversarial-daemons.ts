import { ChildProcess, execFileSync } from 'child_process';
import { createHash } from 'crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { parse } from 'yaml';
import { Component } from './adversarial-cases';
import { SecretStore } from './cluster-harness';
import { DAEMONS } from './daemons';
import { resolveEnv } from './environment';
import { localizePaths } from './paths';
import { freePort, giveToDaemonUser, run, startDaemon } from './postgres-bin';
import { BACKUP_PATHS } from '../../../lib/backup/backup-layout';
import { BALANCER_PATHS } from '../../../lib/balancer/balancer-layout';
import { CLUSTER_PATHS } from '../../../lib/cluster/cluster-layout';
import { POOLER_PATHS } from '../../../lib/pooler/pooler-layout';
import { shellcheck } from '../../support/shellcheck';

/**
 * The real daemons, given what an adversarial case rendered: each check answers undefined when
 * the daemon read the file and ran (or shellcheck and promtool found nothing), or what the
 * program said. Checks are memoized by the files' content, so cases that render the same files
 * cost one boot; boots run at most `parallel` at a time.
 */
export class AdversarialDaemons {
  /** Every Secret name and key resolves, so a case's hostile Secret reference still finds a value. */
  private static readonly SECRETS: SecretStore = new Proxy({}, {
    get: () => new Proxy({}, { get: (_, key) => (String(key).toLowerCase().includes('user') ? 'adv_user' : 'adv-password') }),
  });

  /** How many boots each check did (distinct files), for the summary. */
  public readonly boots: { [check: string]: number } = {};
  private readonly memo = new Map<string, Promise<string | undefined>>();
  private readonly dataDirs: string[] = [];
  private readonly waiting: Array<() => void> = [];
  private readonly bootQueue: Array<() => void> = [];
  private readonly certDir: string;
  private serial = 0;
  private freeBootSlots: number;

  constructor(private readonly scratch: string, parallel: number) {
    this.freeBootSlots = parallel;
    this.certDir = join(scratch, 'certs');
    mkdirSync(this.certDir);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=adv',
      '-keyout', join(this.certDir, 'tls.key'), '-out', join(this.certDir, 'tls.crt')], { stdio: 'ignore' });
    writeFileSync(join(this.certDir, 'ca.crt'), readFileSync(join(this.certDir, 'tls.crt')));
    writeFileSync(join(this.certDir, 'root.crt'), readFileSync(join(this.certDir, 'tls.crt')));
    chmodSync(join(this.certDir, 'tls.key'), 0o600);
    const template = join(scratch, 'pgdata-template');
    const initdb = run(join(DAEMONS.postgresBin, 'initdb'), ['-D', template, '--auth=trust', '--username=postgres', '--no-sync']);
    if (initdb.status !== 0) throw new Error(`initdb failed: ${initdb.stderr}`);
    for (let i = 0; i < parallel; i++) {
      const dir = join(scratch, `pgdata-${i}`);
      const copy = run('cp', ['-a', template, dir]);
      if (copy.status !== 0) throw new Error(`cp failed: ${copy.stderr}`);
      this.dataDirs.push(dir);
    }
    giveToDaemonUser(scratch);
  }

  /** What every daemon of `component` said about its rendered files: empty when all of them booted. */
  public async check(component: Component, objects: any[]): Promise<string[]> {
    const configMaps = objects.filter((o) => o.kind === 'ConfigMap');
    const file = (name: string) => configMaps.find((o) => o.data?.[name] !== undefined)?.data[name] as string | undefined;
    const checks: Array<Promise<string | undefined>> = [];
    for (const map of configMaps) {
      for (const [name, text] of Object.entries<string>(map.data ?? {})) {
        if (name.endsWith('.sh')) checks.push(this.once('shellcheck', text, async () => this.shellcheck(name, text)));
      }
    }
    const conf = file('postgresql.conf');
    if (conf !== undefined) checks.push(this.once('postgres', conf + file('pg_hba.conf'), () => this.postgres(conf, file('pg_hba.conf') ?? '')));
    const patroni = file('patroni.yml');
    if (patroni !== undefined) {
      checks.push(this.once('patroni', patroni, async () => this.patroni(patroni)));
      checks.push(this.once('postgres', `patroni:${patroni}`, () => this.postgresOfPatroni(patroni)));
    }
    for (const map of configMaps.filter((o) => o.metadata.name.endsWith('-pgbackrest'))) {
      for (const [name, text] of Object.entries<string>(map.data ?? {})) {
        if (name.endsWith('.conf')) checks.push(this.once('pgbackrest', text, async () => this.pgbackrest(name, text)));
      }
    }
    const ini = file('pgbouncer.ini');
    if (ini !== undefined) checks.push(this.once('pgbouncer', ini, () => this.pgbouncer(ini)));
    if (component === 'balancer') {
      const all = JSON.stringify(objects.filter((o) => o.kind === 'ConfigMap' || o.kind === 'Deployment'));
      checks.push(this.once('pgpool', all, () => this.pgpool(objects)));
    }
    for (const rule of objects.filter((o) => o.kind === 'PrometheusRule')) {
      const text = JSON.stringify({ groups: rule.spec.groups });
      checks.push(this.once('promtool', text, async () => this.promtool(text)));
    }
    return (await Promise.all(checks)).filter((said): said is string => said !== undefined);
  }

  private once(check: string, content: string, action: () => Promise<string | undefined>): Promise<string | undefined> {
    const key = `${check}:${createHash('sha256').update(content).digest('hex')}`;
    if (!this.memo.has(key)) {
      this.boots[check] = (this.boots[check] ?? 0) + 1;
      this.memo.set(key, action().then((said) => (said === undefined ? undefined : `${check}: ${said}`),
        (error: Error) => `${check}: the harness failed: ${error.message}`));
    }
    return this.memo.get(key)!;
  }

  private caseDir(what: string): string {
    const dir = join(this.scratch, `${what}-${++this.serial}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private shellcheck(name: string, text: string): string | undefined {
    const found = shellcheck(text);
    if (found) return `${name}: ${found.trim().split('\n').slice(0, 3).join(' | ')}`;
    const syntax = run('bash', ['-n'], {}, text);
    return syntax.status === 0 ? undefined : `${name}: bash -n: ${syntax.stderr.trim()}`;
  }

  /** TLS files of any daemon point at one self-signed certificate. */
  private certificates(text: string): string {
    return text.replace(/\/[^\s'"=]*\/(tls\.crt|tls\.key|ca\.crt|root\.crt)\b/g, (_, file: string) => join(this.certDir, file));
  }

  /** A data directory of the pool, for one boot at a time. */
  private async dataDir(): Promise<string> {
    while (this.dataDirs.length === 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return this.dataDirs.pop()!;
  }

  private releaseDataDir(dir: string): void {
    this.dataDirs.push(dir);
    this.waiting.shift()?.();
  }

  /**
   * PostgreSQL 15 started on the rendered postgresql.conf and pg_hba.conf, until it accepts
   * connections; with archiving on, stopped at once (SIGQUIT): a fast shutdown waits for archive_command.
   */
  private async postgres(conf: string, hba: string): Promise<string | undefined> {
    const dir = this.caseDir('postgres');
    const port = await freePort();
    const localize = (text: string) => this.certificates(localizePaths(text, {
      [CLUSTER_PATHS.configDir]: dir, [CLUSTER_PATHS.socketDir]: dir, [BACKUP_PATHS.configDir]: dir,
    }));
    const local = localize(conf)
      .replace(/^port = .*$/m, `port = ${port}`)
      .replace(/^listen_addresses = .*$/m, "listen_addresses = '127.0.0.1'");
    writeFileSync(join(dir, 'postgresql.conf'), local);
    // Files a pg_hba.conf line includes (`@file`: a Secret's role name) hold one role.
    let includes = 0;
    writeFileSync(join(dir, 'pg_hba.conf'), hba.replace(/@(\/\S+)/g, () => {
      const included = join(dir, `hba-include-${++includes}`);
      writeFileSync(included, 'adv_user\n');
      return `@${included}`;
    }));
    giveToDaemonUser(dir);
    const data = await this.dataDir();
    try {
      return await this.boot(join(DAEMONS.postgresBin, 'postgres'), ['-D', data, '-c', `config_file=${join(dir, 'postgresql.conf')}`],
        join(dir, 'postgres.log'), (log) => log.includes('database system is ready to accept connections'),
        /^archive_mode = on$/m.test(local) ? 'SIGQUIT' : 'SIGINT');
    } finally {
      this.releaseDataDir(data);
    }
  }

  /**
   * PostgreSQL started on the parameters and pg_hba lines of patroni.yml, written as Patroni
   * writes postgresql.conf: `name = 'value'` with backslashes and quotes escaped.
   */
  private async postgresOfPatroni(yml: string): Promise<string | undefined> {
    const config = parse(yml);
    const parameters: { [name: string]: unknown } = { ...config.postgresql?.parameters, hba_file: `${CLUSTER_PATHS.configDir}/pg_hba.conf` };
    const quote = (value: unknown) => `'${String(value).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    const conf = ['listen_addresses = *', 'port = 5432', ...Object.entries(parameters).map(([name, value]) => `${name} = ${quote(value)}`)].join('\n');
    return this.postgres(`${conf}\n`, `${(config.postgresql?.pg_hba ?? []).join('\n')}\n`);
  }

  private patroni(yml: string): string | undefined {
    const dir = this.caseDir('patroni');
    const local = localizePaths(yml, { [CLUSTER_PATHS.dataVolume]: dir }).replace(/^( *)bin_dir: .*$/m, `$1bin_dir: ${DAEMONS.postgresBin}`);
    writeFileSync(join(dir, 'patroni.yml'), local.includes('bin_dir:') ? local : local.replace(/^postgresql:$/m, `postgresql:\n  bin_dir: ${DAEMONS.postgresBin}`));
    giveToDaemonUser(dir);
    // What the pod's environment gives Patroni: its name, addresses and role names.
    const result = run('patroni', ['--validate-config', join(dir, 'patroni.yml')], {
      PATRONI_NAME: 'db-0', PATRONI_RESTAPI_CONNECT_ADDRESS: 'db-0.db-headless:8008', PATRONI_POSTGRESQL_CONNECT_ADDRESS: 'db-0.db-headless:5432',
      PATRONI_SUPERUSER_USERNAME: 'adv_user', PATRONI_REPLICATION_USERNAME: 'adv_replicator', PATRONI_REWIND_USERNAME: 'adv_user',
    });
    return result.status === 0 ? undefined : `${result.stdout}${result.stderr}`.trim().slice(0, 500);
  }

  /**
   * pgBackRest reads the conf and checks every option of `info` before it touches a repository:
   * its option and configuration errors (codes 029 to 039) fail the check, a repository or host it
   * cannot reach does not.
   */
  private pgbackrest(name: string, text: string): string | undefined {
    const dir = this.caseDir('pgbackrest');
    const local = this.certificates(localizePaths(text, { [BACKUP_PATHS.lockDir]: dir, [BACKUP_PATHS.repositoryRoot]: dir }));
    writeFileSync(join(dir, name), local);
    giveToDaemonUser(dir);
    const stanza = /^\[([^\]]+)\]$/m.exec(local.replace(/^\[global[^\]]*\]$/gm, ''))?.[1] ?? 'db';
    // The pod's S3 keys, and S3 and repository hosts reached on a closed loopback port: no DNS, no network.
    const s3 = [...local.matchAll(/^repo(\d)-type=s3$/gm)].map((match) => match[1]);
    const hosts = [...local.matchAll(/^repo(\d)-host=/gm)].map((match) => match[1]);
    const keys = Object.fromEntries([
      ...s3.flatMap((n) => [[`PGBACKREST_REPO${n}_S3_KEY`, 'key'], [`PGBACKREST_REPO${n}_S3_KEY_SECRET`, 'secret'],
        [`PGBACKREST_REPO${n}_STORAGE_HOST`, '127.0.0.1'], [`PGBACKREST_REPO${n}_STORAGE_PORT`, '1']]),
      ...hosts.flatMap((n) => [[`PGBACKREST_REPO${n}_HOST`, '127.0.0.1'], [`PGBACKREST_REPO${n}_HOST_PORT`, '1']]),
    ]);
    const result = run('pgbackrest', [`--config=${join(dir, name)}`, `--stanza=${stanza}`, '--io-timeout=1', '--log-level-console=error', 'info'], keys);
    const said = `${result.stdout}${result.stderr}`.trim();
    return /ERROR: \[0(29|3\d)\]/.test(said) ? `${name}: ${said.slice(0, 500)}` : undefined;
  }

  /** PgBouncer 1.18 started on the rendered pgbouncer.ini, until it listens. */
  private async pgbouncer(ini: string): Promise<string | undefined> {
    const dir = this.caseDir('pgbouncer');
    const port = await freePort();
    const local = this.certificates(localizePaths(ini, {
      [POOLER_PATHS.configDir]: dir, [POOLER_PATHS.authDir]: dir, [POOLER_PATHS.runDir]: dir, [POOLER_PATHS.secretsDir]: dir,
    }))
      .replace(/^listen_addr = .*$/m, 'listen_addr = 127.0.0.1')
      .replace(/^listen_port = .*$/m, `listen_port = ${port}`);
    writeFileSync(join(dir, 'pgbouncer.ini'), local);
    // The files the init container writes: the userlist and any included auth_user line.
    const authFile = /^auth_file = (.*)$/m.exec(local)?.[1];
    if (authFile && authFile.startsWith(dir)) writeFileSync(authFile, '"adv_user" "adv-password"\n', { mode: 0o600 });
    for (const [, included] of local.matchAll(/^%include (.*)$/gm)) {
      if (included.startsWith(dir) && !existsSync(included)) writeFileSync(included, 'auth_user = adv_user\n');
    }
    giveToDaemonUser(dir);
    const listening = () => run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0;
    return this.boot('/usr/sbin/pgbouncer', [join(dir, 'pgbouncer.ini')], join(dir, 'pgbouncer.log'), listening, 'SIGINT');
  }

  /**
   * Pgpool-II 4.3 started as the balancer's pod starts it: the init step completes pgpool.conf
   * from the ConfigMap, then pgpool runs on it and pool_hba.conf, until it listens.
   */
  private async pgpool(objects: any[]): Promise<string | undefined> {
    const dir = this.caseDir('pgpool');
    const [port, pcpPort] = [await freePort(), await freePort()];
    const pod = objects.find((o) => o.kind === 'Deployment').spec.template.spec;
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === pod.volumes.find((v: any) => v.configMap).configMap.name).data;
    const localize = (text: string) => localizePaths(text, {
      [BALANCER_PATHS.templateDir]: join(dir, 'template'), [BALANCER_PATHS.secretsDir]: join(dir, 'secrets'),
      [BALANCER_PATHS.runDir]: join(dir, 'run'), [BALANCER_PATHS.configDir]: join(dir, 'config'),
    });
    for (const sub of ['template', 'secrets', 'run', 'config', 'etc']) mkdirSync(join(dir, sub), { recursive: true });
    for (const [name, text] of Object.entries<string>(configMap)) writeFileSync(join(dir, 'template', name), text);
    const secretsVolume = pod.volumes.find((v: any) => v.name === 'secrets');
    for (const source of secretsVolume?.projected?.sources ?? []) {
      for (const item of source.secret.items) {
        mkdirSync(join(dir, 'secrets', item.path, '..'), { recursive: true });
        writeFileSync(join(dir, 'secrets', item.path), AdversarialDaemons.SECRETS[source.secret.name][item.key]);
      }
    }
    giveToDaemonUser(dir);
    const init = pod.initContainers.find((c: any) => c.name === 'config');
    const env = (container: any) => resolveEnv(container, AdversarialDaemons.SECRETS, objects, localize);
    const initRun = run(init.command[0], init.command.slice(1).map(localize), env(init));
    if (initRun.status !== 0) return `the config init step exited ${initRun.status}: ${initRun.stderr.trim().slice(0, 500)}`;
    const conf = localize(readFileSync(join(dir, 'config', 'pgpool.conf'), 'utf8'))
      .replace(/^listen_addresses = .*$/gm, "listen_addresses = '127.0.0.1'")
      .replace(/^pcp_listen_addresses = .*$/gm, "pcp_listen_addresses = '127.0.0.1'")
      .replace(/^port = .*$/gm, `port = ${port}`)
      .replace(/^pcp_port = .*$/gm, `pcp_port = ${pcpPort}`)
      .replace(/^backend_hostname(\d) = .*$/gm, "backend_hostname$1 = '127.0.0.1'")
      .replace(/^backend_port(\d) = .*$/gm, 'backend_port$1 = 1024')
      + `\nunix_socket_directories = '${dir}'\npcp_socket_dir = '${dir}'\nssl_key = '${this.certDir}/tls.key'\nssl_cert = '${this.certDir}/tls.crt'\n`;
    writeFileSync(join(dir, 'etc', 'pgpool.conf'), conf);
    writeFileSync(join(dir, 'etc', 'pool_hba.conf'), readFileSync(join(dir, 'config', 'pool_hba.conf')));
    writeFileSync(join(dir, 'etc', 'pool_passwd'), '', { mode: 0o600 });
    writeFileSync(join(dir, 'etc', 'pcp.conf'), '', { mode: 0o600 });
    writeFileSync(join(dir, 'etc', '.pgpoolkey'), 'adversarial-key\n', { mode: 0o600 });
    giveToDaemonUser(dir);
    const listening = () => run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0;
    return this.boot('pgpool', ['-n', '-f', join(dir, 'etc', 'pgpool.conf'), '-F', join(dir, 'etc', 'pcp.conf'),
      '-a', join(dir, 'etc', 'pool_hba.conf'), '-k', join(dir, 'etc', '.pgpoolkey')], join(dir, 'pgpool.log'), listening, 'SIGINT');
  }

  private promtool(rules: string): string | undefined {
    const dir = this.caseDir('promtool');
    writeFileSync(join(dir, 'rules.yml'), rules);
    const result = run('promtool', ['check', 'rules', join(dir, 'rules.yml')]);
    return result.status === 0 ? undefined : `${result.stdout}${result.stderr}`.trim().slice(0, 500);
  }

  /**
   * Starts a daemon and waits until `up` holds (it booted) or it exits (it refused its
   * configuration: its log says why); then stops it with `signal` and waits for its end.
   */
  private async boot(command: string, args: string[], logFile: string, up: (log: string) => boolean,
    signal: NodeJS.Signals): Promise<string | undefined> {
    while (this.freeBootSlots === 0) await new Promise<void>((resolve) => this.bootQueue.push(resolve));
    this.freeBootSlots--;
    try {
      return await this.bootNow(command, args, logFile, up, signal);
    } finally {
      this.freeBootSlots++;
      this.bootQueue.shift()?.();
    }
  }

  private async bootNow(command: string, args: string[], logFile: string, up: (log: string) => boolean,
    signal: NodeJS.Signals): Promise<string | undefined> {
    const child: ChildProcess = startDaemon(command, args, logFile);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    const deadline = Date.now() + 20_000;
    let said: string | undefined;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        said = `exited ${child.exitCode ?? child.signalCode} before it was up: ${lastLines(log())}`;
        break;
      }
      if (up(log())) break;
      if (Date.now() > deadline) {
        said = `not up after 20 s: ${lastLines(log())}`;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    return said;
  }
}

/** The end of a daemon's log, on one line. */
function lastLines(log: string): string {
  return log.trim().split('\n').slice(-4).join(' | ').slice(0, 600);
}
