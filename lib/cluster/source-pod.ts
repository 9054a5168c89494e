import { Construct } from 'constructs';
import { CLUSTER_PATHS } from './cluster-layout';
import { ClusterModel, Parameter } from './cluster-model';
import { SOURCE_ENVIRONMENT, sourceMode } from './source-bootstrap-script';
import { CloneMethod } from './source-cluster';
import { SOURCE_FILES, SOURCE_PATHS, SOURCE_REPLICATION_SECRET_DIR } from './source-cluster-model';
import { renderRestoreScript } from '../backup/backup-scripts';
import { renderSourceConf } from '../backup/pgbackrest-conf';
import { k8s } from '../core/kube';
import { Connection } from '../core/network-policy';
import { PodVolume } from '../core/pod-volumes';
import { secretProjection } from '../core/secret-files';
import { TLS_FILES } from '../core/tls';
import { objectMeta } from '../core/workload';

/** What the instance pods of a clone or standby add to reach their source. */
export interface SourcePodAdditions {
  /** The ConfigMap `<name>-source`, the client certificate of a volume repository, the source's CA, an S3 repository's CA. */
  readonly volumes: k8s.Volume[];
  /** Their mounts, in the containers that run the source's commands: the bootstrap, and PostgreSQL for restore_command. */
  readonly mounts: k8s.VolumeMount[];
  /** An S3 repository's keys, as pgBackRest reads them (PGBACKREST_REPO5_*). */
  readonly env: k8s.EnvVar[];
  /** The source's replication role in the secrets volume of the pods that may lead. */
  readonly secretProjections: k8s.VolumeProjection[];
  /** The bootstrap's SOURCE_* environment (none for other clusters: the script defaults it to empty). */
  readonly bootstrapEnv: k8s.EnvVar[];
  /** The connections to the source: its repository host or bucket, its primary. */
  readonly egress: Connection[];
}

const VOLUMES = { config: 'pgbackrest-source', tls: 'pgbackrest-source-tls', authority: 'postgresql-source-ca' } as const;

/** The pod additions of a clone or standby; nothing for other clusters. */
export function sourcePodAdditions(model: ClusterModel): SourcePodAdditions {
  const source = (model.clone ?? model.standby)?.source;
  const repository = source?.repository;
  const streaming = source?.streaming;
  const cloneFromBackup = model.clone?.method === CloneMethod.FROM_BACKUP;
  const config = repository ? PodVolume.configMap(VOLUMES.config, sourceConfigMapName(model), {
    files: [
      { key: SOURCE_FILES.conf, path: SOURCE_FILES.conf },
      ...(cloneFromBackup ? [{ key: SOURCE_FILES.restoreScript, path: SOURCE_FILES.restoreScript, mode: 0o555 }] : []),
    ],
  }) : undefined;
  const tls = repository?.tlsSecretName
    ? PodVolume.secret(VOLUMES.tls, repository.tlsSecretName, [TLS_FILES.certificate, TLS_FILES.key, TLS_FILES.authority], 0o440) : undefined;
  const authority = streaming ? PodVolume.projected(VOLUMES.authority, [{
    secret: { name: streaming.authority.secretName, items: [{ key: streaming.authority.key, path: TLS_FILES.authority }] },
  }], 0o444) : undefined;
  return {
    volumes: [config, tls, authority].flatMap((volume) => (volume ? [volume.volume] : [])).concat(repository?.access.volumes ?? []),
    mounts: [
      ...(config ? [config.readOnlyMount(SOURCE_PATHS.configDir)] : []),
      ...(tls ? [tls.readOnlyMount(SOURCE_PATHS.tlsDir)] : []),
      ...(authority ? [authority.readOnlyMount(SOURCE_PATHS.authorityDir)] : []),
      ...repository?.access.mounts ?? [],
    ],
    env: repository?.access.env ?? [],
    secretProjections: streaming ? [secretProjection(SOURCE_REPLICATION_SECRET_DIR, streaming.replication)] : [],
    bootstrapEnv: !source ? [] : Object.entries<string>({
      SOURCE_MODE: sourceMode(model),
      SOURCE_HOST: streaming?.host ?? '',
      SOURCE_PORT: streaming ? String(streaming.port) : '',
      SOURCE_CA_FILE: streaming ? `${SOURCE_PATHS.authorityDir}/${TLS_FILES.authority}` : '',
      SOURCE_CONFIG: repository ? sourceConfigFile() : '',
      SOURCE_STANZA: repository ? source!.name : '',
      SOURCE_REPO: repository ? String(repository.key) : '',
      SOURCE_RESTORE_SCRIPT: cloneFromBackup ? `${SOURCE_PATHS.configDir}/${SOURCE_FILES.restoreScript}` : '',
    } satisfies { [name in typeof SOURCE_ENVIRONMENT[number]]: string }).map(([name, value]) => ({ name, value })),
    egress: [...repository?.egress ?? [], ...streaming?.egress ?? []],
  };
}

/**
 * A standby following the source's repository: every instance fetches the source's WAL with
 * archive-get under the source's stanza (the standby leader to replay it, its replicas what the
 * leader no longer has), in place of the own repositories' restore_command until promotion.
 */
export function sourceParameters(model: ClusterModel): Parameter[] {
  const source = model.standby?.source;
  if (!source?.repository) return [];
  return [{ name: 'restore_command', value: `pgbackrest --config=${sourceConfigFile()} --stanza=${source.name} archive-get %f "%p"` }];
}

/**
 * The ConfigMap `<name>-source` of a clone or standby reading its source's repository (source.conf,
 * and restore.sh for a clone from a backup); returns what the instance pods add.
 */
export function renderSourceObjects(scope: Construct, model: ClusterModel): SourcePodAdditions {
  const additions = sourcePodAdditions(model);
  const source = (model.clone ?? model.standby)?.source;
  if (!source?.repository) return additions;
  const clone = model.clone;
  const data: { [file: string]: string } = {
    [SOURCE_FILES.conf]: renderSourceConf({ name: source.name, repository: source.repository }, {
      name: model.name,
      pgdata: CLUSTER_PATHS.pgdata,
      port: model.port,
      socketDir: CLUSTER_PATHS.socketDir,
      lockDir: SOURCE_PATHS.lockDir,
      ioTimeoutSeconds: model.backup?.ioTimeoutSeconds ?? 10,
    }),
    ...(clone?.method === CloneMethod.FROM_BACKUP ? {
      [SOURCE_FILES.restoreScript]: renderRestoreScript({
        stanza: source.name,
        restore: {
          repository: source.repository.key,
          ...(clone.targetTime ? { targetTime: clone.targetTime, targetTimeline: clone.targetTimeline } : {}),
        },
      }),
    } : {}),
  };
  new k8s.KubeConfigMap(scope, 'Source', { metadata: objectMeta(scope, sourceConfigMapName(model), model.componentLabels('database'), model.user), data });
  return additions;
}

const sourceConfigMapName = (model: ClusterModel) => `${model.name}-source`;
const sourceConfigFile = () => `${SOURCE_PATHS.configDir}/${SOURCE_FILES.conf}`;
