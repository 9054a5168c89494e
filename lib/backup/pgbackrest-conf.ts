import { BACKUP_FILES, BACKUP_PATHS } from './backup-layout';
import { BackupModel, RepositoryModel } from './backup-model';
import { RepositoryOption } from './backup-repository';
import { TLS_FILES } from '../core/tls';

/**
 * pgbackrest.conf of each role, pure functions of the model. Every role gets its own file in
 * the ConfigMap `<name>-pgbackrest`, and every command names it with `--config`, so neither
 * the image's /etc/pgbackrest.conf nor a conf.d directory is ever read.
 */

type Line = RepositoryOption;

/**
 * The instances' config: archive-push and archive-get (every repository), restore, and the server
 * sidecar. A repository on the repository host is reached through the host's TLS server; any
 * other is local, with its own options.
 */
export function renderInstanceConf(model: BackupModel): string {
  const cluster = model.cluster;
  const tls = (file: string) => `${cluster.tlsDir}/${file}`;
  return render(model.stanza, 'instance', 'archive-push (archive_command), archive-get and restore in the instance pods, and their server sidecar', [
    ...common(model.ioTimeoutSeconds),
    ...model.repositories.flatMap((repository): Line[] => (repository.repoHost ? [
      [`repo${repository.index}-host`, model.repoHostPodHost!],
      [`repo${repository.index}-host-type`, 'tls'],
      [`repo${repository.index}-host-port`, model.serverPort],
      [`repo${repository.index}-host-config`, `${BACKUP_PATHS.configDir}/${BACKUP_FILES.repoHostConf}`],
      [`repo${repository.index}-host-cert-file`, tls(TLS_FILES.certificate)],
      [`repo${repository.index}-host-key-file`, tls(TLS_FILES.key)],
      [`repo${repository.index}-host-ca-file`, tls(TLS_FILES.authority)],
    ] : repository.options)),
    ...server(model, cluster.tlsDir),
  ], [
    ['pg1-path', cluster.pgdata],
    ['pg1-port', cluster.port],
    ['pg1-socket-path', cluster.socketDir],
  ]);
}

/** The repository host's config: its TLS server over the repositories that live on it (the volume repositories). */
export function renderRepoHostConf(model: BackupModel): string {
  return render(model.stanza, 'repo-host', 'the repository host\'s TLS server, which serves the volume repositories to the instances', [
    ...common(model.ioTimeoutSeconds),
    ...model.repositories.filter((repository) => repository.repoHost).flatMap((repository) => repository.options),
    ...server(model, BACKUP_PATHS.tlsDir),
  ], []);
}

/**
 * A backup job's config for one repository: the repository local (the repository host's volume,
 * mounted in the job's pod, or S3 directly) and every instance remote, through its server
 * sidecar; pgBackRest finds the primary among them.
 */
export function renderBackupConf(model: BackupModel, repository: RepositoryModel): string {
  const cluster = model.cluster;
  const tls = (file: string) => `${BACKUP_PATHS.tlsDir}/${file}`;
  return render(model.stanza, `backup-repo${repository.index}`, `the backup CronJobs of repository ${repository.index}`, [
    ...common(model.ioTimeoutSeconds),
    // A CronJob's backup should not wait for the next scheduled checkpoint.
    ['start-fast', 'y'],
    // The primary starts and stops the backup; the files come from a replica pgBackRest finds among the instances.
    ...(model.fromStandby ? [['backup-standby', 'y'] as Line] : []),
    ...repository.options,
    [`repo${repository.index}-retention-full`, repository.retentionFull],
  ], cluster.instancePodHosts.flatMap((host, offset): Line[] => {
    const pg = `pg${offset + 1}`;
    return [
      [`${pg}-host`, host],
      [`${pg}-host-type`, 'tls'],
      [`${pg}-host-port`, model.serverPort],
      [`${pg}-host-config`, `${BACKUP_PATHS.configDir}/${BACKUP_FILES.instanceConf}`],
      [`${pg}-host-cert-file`, tls(TLS_FILES.certificate)],
      [`${pg}-host-key-file`, tls(TLS_FILES.key)],
      [`${pg}-host-ca-file`, tls(TLS_FILES.authority)],
      [`${pg}-path`, cluster.pgdata],
      [`${pg}-port`, cluster.port],
      [`${pg}-socket-path`, cluster.socketDir],
    ];
  }));
}

/**
 * A clone's or standby's config for its source (`source.conf`), read by its restore and
 * archive-get only: the source's repository and stanza, never this cluster's own, so nothing of
 * this cluster is ever archived there.
 */
export function renderSourceConf(source: { readonly name: string; readonly repository: { readonly options: Line[] } }, cluster: {
  readonly name: string; readonly pgdata: string; readonly port: number; readonly socketDir: string; readonly lockDir: string;
  readonly ioTimeoutSeconds: number;
}): string {
  const reader = `cluster "${cluster.name}"`;
  return render(source.name, `source, read by ${reader}`, `the restore and archive-get (restore_command) of ${reader}, which copies or follows this one`, [
    ...common(cluster.ioTimeoutSeconds, cluster.lockDir),
    ...source.repository.options,
  ], [
    ['pg1-path', cluster.pgdata],
    ['pg1-port', cluster.port],
    ['pg1-socket-path', cluster.socketDir],
  ]);
}

function common(ioTimeoutSeconds: number, lockPath: string = BACKUP_PATHS.lockDir): Line[] {
  return [
    // The root filesystem is read-only: locks go to an emptyDir, logs to the console only.
    ['lock-path', lockPath],
    ['log-level-console', 'info'],
    ['log-level-file', 'off'],
    ['io-timeout', ioTimeoutSeconds],
  ];
}

function server(model: BackupModel, tlsDir: string): Line[] {
  return [
    ['tls-server-address', '*'],
    ['tls-server-port', model.serverPort],
    ['tls-server-cert-file', `${tlsDir}/${TLS_FILES.certificate}`],
    ['tls-server-key-file', `${tlsDir}/${TLS_FILES.key}`],
    ['tls-server-ca-file', `${tlsDir}/${TLS_FILES.authority}`],
    // Only clients with the cluster's certificate, and only for the cluster's stanza.
    ['tls-server-auth', `${model.cluster.certificateCommonName}=${model.stanza}`],
  ];
}

function render(stanzaName: string, role: string, what: string, global: Line[], stanza: Line[]): string {
  const line = ([key, value]: Line) => `${key}=${value}`;
  return [
    `# pgbackrest.conf (${role}) of cluster "${stanzaName}", rendered by cdk8s-postgres: change the construct's props, not this file.`,
    `# Read by ${what}.`,
    '[global]',
    ...global.map(line),
    ...(stanza.length > 0 ? ['', `[${stanzaName}]`, ...stanza.map(line)] : []),
    '',
  ].join('\n');
}
