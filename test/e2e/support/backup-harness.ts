import { ChildProcess } from 'child_process';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { BackupCluster, BackupModel, BackupOptions, renderBackupObjects, resolveBackup } from '../../../lib/backup';
import { BACKUP_FILES, BACKUP_PATHS } from '../../../lib/backup/backup-layout';
import { resolveUserMetadata } from '../../../lib/core/user-metadata';
import { findObject } from '../../support/synth';
import { SecretStore } from './cluster-harness';
import { localizePaths } from './paths';
import { daemonGroup, giveToDaemonUser, run, runOk, startDaemon, waitFor } from './postgres-bin';

/** The pod paths of the cluster side that the backup module is given (the cluster's CLUSTER_PATHS today). */
export const INSTANCE_PATHS = {
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
export function backupCluster(chart: Chart, name: string, options: { instances?: number; tls?: boolean; networkPolicies?: boolean; walVolume?: boolean } = {}): BackupCluster {
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
      tls: { secretName: `${name}-tls`, required: true, authority: { secretName: `${name}-tls`, key: 'ca.crt' } },
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

/**
 * A test CA, and certificates issued by it as cert-manager's CA issuer would for the cluster's
 * Certificate with backups: ECDSA P-256, the dnsNames as subjectAltNames (wildcards included),
 * the common name, and server and client auth.
 */
export class TestCa {
  public readonly certificate: string;

  constructor(private readonly dir: string, private readonly name: string) {
    runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=${name}`, '-keyout', this.file('ca.key'), '-out', this.file('ca.crt')]);
    this.certificate = readFileSync(this.file('ca.crt'), 'utf8');
  }

  /** A kubernetes.io/tls Secret's data. */
  public issue(id: string, commonName: string, dnsNames: string[]): { [key: string]: string } {
    const extensions = this.file(`${id}.ext`);
    writeFileSync(extensions, `subjectAltName=${dnsNames.map((name) => `DNS:${name}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    runOk('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${commonName}`,
      '-keyout', this.file(`${id}.key`), '-out', this.file(`${id}.csr`)]);
    runOk('openssl', ['x509', '-req', '-in', this.file(`${id}.csr`), '-CA', this.file('ca.crt'), '-CAkey', this.file('ca.key'),
      '-CAcreateserial', '-days', '1', '-extfile', extensions, '-out', this.file(`${id}.crt`)]);
    return { 'tls.crt': readFileSync(this.file(`${id}.crt`), 'utf8'), 'tls.key': readFileSync(this.file(`${id}.key`), 'utf8'), 'ca.crt': this.certificate };
  }

  private file(name: string): string {
    return join(this.dir, `${this.name}-${name}`);
  }
}

/**
 * One pod's view of the backup module on loopback: a root directory standing in for the pod's
 * filesystem, where the ConfigMap `<name>-pgbackrest` and the TLS Secret are written as the
 * kubelet would (the Secret root-owned, of the pod's group, mode 0640). Only the roots of paths
 * and, in the pgbackrest.conf files, these keys are rewritten:
 *  - hosts: `tls-server-address` (to 127.0.0.1);
 *  - ports: `tls-server-port`, `repoN-host-port`, `pgN-host-port` (each server's own port,
 *    found by the host name the key's index points at), `pgN-port` / `pg1-port` (PostgreSQL's).
 * Host names stay: the test resolves them to loopback (resolveHostsWith), so certificates are
 * checked against the real names.
 */
export class LocalBackupPod {
  public readonly root: string;
  private readonly roots: { [podPath: string]: string };

  /** `roots` maps the pod's paths to directories under the pod's root directory, which it is given. */
  constructor(scratch: string, public readonly podName: string, roots: (root: string) => { [podPath: string]: string }) {
    this.root = join(scratch, podName);
    this.roots = roots(this.root);
    mkdirSync(this.root, { recursive: true });
  }

  /** A pod path rewritten to this pod's root. */
  public localize(value: string): string {
    return localizePaths(value, this.roots);
  }

  /**
   * Writes the ConfigMap's files into the pod's config directory, paths localized to this pod
   * except in the keys that name another pod's paths (`remotes`), then rewritten by `rewrite`.
   */
  public writeConfig(files: { [file: string]: string }, rewrite: (file: string, text: string) => string, remotes: RemotePods = {}): void {
    const dir = this.localize(BACKUP_PATHS.configDir);
    mkdirSync(dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) {
      const local = file.endsWith('.conf') ? localizeConf(text, this, remotes) : this.localize(text);
      writeFileSync(join(dir, file), rewrite(file, local), { mode: file.endsWith('.sh') ? 0o555 : 0o444 });
    }
    mkdirSync(this.localize(BACKUP_PATHS.lockDir), { recursive: true });
    giveToDaemonUser(this.root);
  }

  /** Writes a TLS Secret volume at `mountPath`, as the kubelet does with an fsGroup. */
  public writeTls(mountPath: string, secret: { [key: string]: string }): void {
    const dir = this.localize(mountPath);
    mkdirSync(dir, { recursive: true });
    for (const [key, value] of Object.entries(secret)) {
      const file = join(dir, key);
      writeFileSync(file, value, { mode: 0o640 });
      chownSync(file, process.getuid!(), daemonGroup());
    }
  }

  /** Starts a command of the pod (a server) in the background, logging to `<pod>-<name>.log`. */
  public startDaemon(name: string, command: string[], env: { [name: string]: string } = {}): ChildProcess {
    return startDaemon(command[0], command.slice(1).map((arg) => this.localize(arg)), `${this.root}-${name}.log`, env);
  }

  /** Runs a command of the pod to its end; throws with its output on failure; returns stderr and stdout. */
  public runOk(command: string[], env: { [name: string]: string } = {}): string {
    const args = command.slice(1).map((arg) => this.localize(arg));
    const result = run(this.localize(command[0]), args, env);
    if (result.status !== 0) throw new Error(`${command.join(' ')} in ${this.podName} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
    return `${result.stdout}${result.stderr}`;
  }

  /** Runs a command of the pod until it succeeds (a readiness probe). */
  public async waitUntil(what: string, command: string[]): Promise<void> {
    await waitFor(`${this.podName}: ${what}`, () => run(command[0], command.slice(1).map((arg) => this.localize(arg))).status === 0);
  }
}

/** The pods whose paths a config names: the instances' (`pgN-path`, `pgN-socket-path`, `pgN-host-config`) and the repository host's (`repoN-host-config`). */
export interface RemotePods {
  readonly instance?: LocalBackupPod;
  readonly repoHost?: LocalBackupPod;
}

/** A pgbackrest.conf with each path localized to the pod that reads it: remote keys to the remote pod, the rest to `own`. */
function localizeConf(text: string, own: LocalBackupPod, remotes: RemotePods): string {
  return text.split('\n').map((line) => {
    const remote = /^pg\d+-(path|socket-path|host-config)=/.test(line) ? remotes.instance
      : /^repo\d+-host-config=/.test(line) ? remotes.repoHost : own;
    if (!remote) throw new Error(`${own.podName}: no pod given for the remote path of "${line}"`);
    return remote.localize(line);
  }).join('\n');
}

/**
 * Rewrites the host, port and path keys of a rendered pgbackrest.conf for loopback (see
 * LocalBackupPod): `serverPorts` maps each server's host name to its local port, `ownServerPort`
 * is the port of the server this config starts (if any), `postgresPort` PostgreSQL's.
 */
export function rewritePgbackrestConf(text: string, serverPorts: { [host: string]: number }, postgresPort: number, ownServerPort?: number): string {
  const hosts: { [key: string]: string } = {};
  for (const match of text.matchAll(/^((?:repo|pg)\d+)-host=(.+)$/gm)) hosts[match[1]] = match[2];
  return text
    .replace(/^tls-server-address=.*$/m, 'tls-server-address=127.0.0.1')
    .replace(/^tls-server-port=\d+$/m, () => {
      if (ownServerPort === undefined) throw new Error('a config with a server needs its local port');
      return `tls-server-port=${ownServerPort}`;
    })
    .replace(/^((?:repo|pg)\d+)-host-port=\d+$/gm, (_, key: string) => {
      const port = serverPorts[hosts[key]];
      if (port === undefined) throw new Error(`no local port for ${key}-host ${hosts[key]}`);
      return `${key}-host-port=${port}`;
    })
    .replace(/^(pg\d+)-port=\d+$/gm, (_, key: string) => `${key}-port=${postgresPort}`);
}

/** The ConfigMap `<name>-pgbackrest` of a synthesized backup. */
export function backupFiles(objects: any[], clusterName: string): { [file: string]: string } {
  return findObject(objects, 'ConfigMap', `${clusterName}-pgbackrest`).data;
}

/** The environment of a container as the kubelet gives it, secretKeyRefs from `secrets`, literals localized. */
export function containerEnv(container: any, secrets: SecretStore, localize: (value: string) => string): { [name: string]: string } {
  const env: { [name: string]: string } = {};
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    const value = ref ? secrets[ref.name]?.[ref.key] : localize(variable.value);
    if (value === undefined) throw new Error(`no value for ${variable.name}`);
    env[variable.name] = value;
  }
  return env;
}

export { BACKUP_FILES, BACKUP_PATHS };
