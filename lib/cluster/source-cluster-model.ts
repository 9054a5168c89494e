import { Chart } from 'cdk8s';
import { IConstruct } from 'constructs';
import { PostgresStatefulClusterProps } from './cluster-props';
import { PrimaryRecovery } from './primary-recovery';
import { CloneMethod, CloneOptions, SourceCluster, SourceRepository, StandbyOptions } from './source-cluster';
import { BACKUP_FILES, BACKUP_PATHS } from '../backup/backup-layout';
import { normalizeTargetTime } from '../backup/backup-model';
import { BackupOptions } from '../backup/backup-props';
import { BackupRepository, RepositoryAccess, RepositoryOption, RepositoryType } from '../backup/backup-repository';
import { ResolvedCredentials, resolveCredentials, resolveSecretName } from '../core/credentials';
import { propError } from '../core/errors';
import { selectorLabels } from '../core/labels';
import { serviceHost, validateDnsLabel, validateDnsSubdomain, validateServiceName } from '../core/names';
import { Connection } from '../core/network-policy';
import { resolveAuthority, TLS_FILES } from '../core/tls';
import { requireEnum, requireInteger, validatePort } from '../core/validation';

/**
 * Where a clone's or standby's pods find the source: its pgBackRest config and clone script (the
 * ConfigMap `<name>-source`), the client certificate of a volume repository's host, and the
 * source's CA. The end-to-end tests rewrite exactly these roots.
 */
export const SOURCE_PATHS = {
  /** The ConfigMap `<name>-source`: `source.conf` and, for a clone from a backup, `restore.sh`. */
  configDir: '/etc/pgbackrest-source',
  /** A volume repository's client certificate Secret (tls.crt, tls.key, ca.crt). */
  tlsDir: '/etc/pgbackrest-source-tls',
  /** The source's CA, which its server certificate is verified against: `ca.crt`. */
  authorityDir: '/etc/postgresql-source-ca',
  /** pgBackRest's lock path for the source's commands: the pods' /tmp, since the own backups' lock volume may not exist. */
  lockDir: '/tmp/pgbackrest-source',
} as const;

/** File names in the ConfigMap `<name>-source`. */
export const SOURCE_FILES = {
  /** pgbackrest.conf with the source's repository and stanza: restore and archive-get only. */
  conf: 'source.conf',
  /** restore.sh rendered for the source's stanza and repository: a clone from a backup. */
  restoreScript: 'restore.sh',
} as const;

/** The secrets volume's directory of the source's replication role. */
export const SOURCE_REPLICATION_SECRET_DIR = 'source-replication';

/**
 * The key of an S3 source repository in source.conf: beyond the four of the cluster's own
 * repositories, so its keys from the environment (PGBACKREST_REPO5_S3_KEY) never meet theirs; a
 * volume repository keeps its index, which the source's repository host serves it under.
 */
export const SOURCE_S3_KEY = 5;

/** The source's repository, resolved: its pgBackRest key, its options in source.conf, and what the pods add to reach it. */
export interface SourceRepositoryModel {
  readonly type: RepositoryType;
  /** pgBackRest's `repoN` key in source.conf. */
  readonly key: number;
  readonly options: RepositoryOption[];
  readonly access: RepositoryAccess;
  readonly egress: Connection[];
  /** A volume repository: the client certificate's Secret. */
  readonly tlsSecretName?: string;
}

/** The source's primary over the network. */
export interface SourceStreamingModel {
  readonly host: string;
  /** The source's instance pods, which a NetworkPolicy lets the cluster reach. */
  readonly egress: Connection[];
  readonly port: number;
  readonly replication: ResolvedCredentials;
  readonly authority: { readonly secretName: string; readonly key: string };
}

/** A source cluster, validated. */
export interface SourceModel {
  /** The source's name: its stanza. */
  readonly name: string;
  readonly namespace?: string;
  readonly repository?: SourceRepositoryModel;
  readonly streaming?: SourceStreamingModel;
}

/** A validated clone. */
export interface CloneModel {
  readonly source: SourceModel;
  readonly method: CloneMethod;
  /** FROM_BACKUP to a point in time: pgBackRest's form, as backup.restore's. */
  readonly targetTime?: string;
  readonly targetTimeline?: string;
}

/** A validated standby. */
export interface StandbyModel {
  readonly source: SourceModel;
}

/** What the rest of the cluster's props bring to the checks of clone and standby. */
export interface SourceContext {
  readonly clusterName: string;
  readonly backup?: BackupOptions;
  /** Whether the image is the plain mode's default, which has no pgBackRest. */
  readonly defaultImage: boolean;
  readonly majorUpgrade: boolean;
  readonly rebuildsPrimary: boolean;
}

/** Validates `clone` and `standby`, each present only when set. */
export function resolveSources(scope: IConstruct, props: PostgresStatefulClusterProps,
  cluster: { readonly clusterName: string; readonly highAvailability: boolean; readonly majorUpgrade: unknown },
): { clone?: CloneModel; standby?: StandbyModel } {
  const context: SourceContext = {
    clusterName: cluster.clusterName,
    backup: props.backup,
    defaultImage: props.image === undefined && !cluster.highAvailability,
    majorUpgrade: cluster.majorUpgrade !== undefined,
    rebuildsPrimary: props.primaryRecovery === PrimaryRecovery.FROM_MOST_ADVANCED_REPLICA,
  };
  const clone = resolveClone(scope, props.clone, props.standby, context);
  const standby = resolveStandby(scope, props.standby, context);
  return { ...(clone ? { clone } : {}), ...(standby ? { standby } : {}) };
}

/** Validates `clone`; undefined without it. */
export function resolveClone(scope: IConstruct, clone: CloneOptions | undefined, standby: StandbyOptions | undefined,
  context: SourceContext): CloneModel | undefined {
  if (clone === undefined) return undefined;
  if (standby !== undefined) {
    throw propError(scope, 'clone', clone.source?.name, 'is set with standby, which already copies the source at the standby\'s first start',
      'drop clone (a standby is created from its source), or drop standby for a cluster that writes at once');
  }
  if (context.backup?.restore !== undefined) {
    throw propError(scope, 'backup.restore', context.backup.restore, 'is set with clone: a new cluster is created from one place',
      'drop backup.restore to clone another cluster, or drop clone to restore this cluster\'s own backup');
  }
  const source = resolveSource(scope, 'clone.source', clone.source, context);
  const fallback = source.repository ? CloneMethod.FROM_BACKUP : CloneMethod.FROM_RUNNING_CLUSTER;
  const method = requireEnum(scope, 'clone.method', clone.method ?? fallback, { CloneMethod });
  if (method === CloneMethod.FROM_BACKUP && !source.repository) {
    throw propError(scope, 'clone.method', method, 'needs the source\'s repository', 'set clone.source.repository, or use CloneMethod.FROM_RUNNING_CLUSTER');
  }
  if (method === CloneMethod.FROM_RUNNING_CLUSTER) {
    if (!source.streaming) {
      throw propError(scope, 'clone.method', method, 'needs the source\'s primary over the network', 'set clone.source.streaming, or use CloneMethod.FROM_BACKUP');
    }
    if (clone.targetTime !== undefined || clone.targetTimeline !== undefined) {
      throw propError(scope, clone.targetTime !== undefined ? 'clone.targetTime' : 'clone.targetTimeline', clone.targetTime ?? clone.targetTimeline,
        'is set with CloneMethod.FROM_RUNNING_CLUSTER, which copies the source as it is now', 'drop it, or clone from the source\'s backup (CloneMethod.FROM_BACKUP)');
    }
    return { source, method };
  }
  if (clone.targetTime === undefined) {
    if (clone.targetTimeline !== undefined) {
      throw propError(scope, 'clone.targetTimeline', clone.targetTimeline, 'is set without targetTime',
        'set clone.targetTime too, or drop targetTimeline (a clone to the latest point follows the latest timeline)');
    }
    return { source, method };
  }
  const targetTimeline = clone.targetTimeline ?? 'current';
  if (!/^(current|latest|[1-9][0-9]{0,8})$/.test(targetTimeline)) {
    throw propError(scope, 'clone.targetTimeline', targetTimeline, 'is not a timeline', 'use "current", "latest" or a timeline number such as "2"');
  }
  return { source, method, targetTime: normalizeTargetTime(scope, 'clone.targetTime', clone.targetTime), targetTimeline };
}

/** Validates `standby`; undefined without it. */
export function resolveStandby(scope: IConstruct, standby: StandbyOptions | undefined, context: SourceContext): StandbyModel | undefined {
  if (standby === undefined) return undefined;
  if (context.backup?.restore !== undefined) {
    throw propError(scope, 'backup.restore', context.backup.restore, 'is set with standby, which is created from its source',
      'drop backup.restore');
  }
  if (context.majorUpgrade) {
    throw propError(scope, 'majorUpgrade', 'set', 'cannot run on a standby cluster, which replays its source\'s WAL of the source\'s major',
      'upgrade the source (the standby follows only the same major: create it again from the upgraded source), or promote this cluster first');
  }
  if (context.rebuildsPrimary) {
    throw propError(scope, 'primaryRecovery', 'from-most-advanced-replica', 'would promote a rebuilt standby leader and end the standby',
      'drop primaryRecovery: a standby leader whose volume was lost copies its source again');
  }
  const source = resolveSource(scope, 'standby.source', standby.source, context);
  if (!source.repository && !source.streaming) {
    throw propError(scope, 'standby.source', source.name, 'has neither repository nor streaming, so the standby has nothing to follow',
      'set standby.source.repository (WAL from the source\'s archive), standby.source.streaming (from its primary), or both');
  }
  return { source };
}

/** The checks a source of either kind passes, and its model. */
function resolveSource(scope: IConstruct, prop: string, source: SourceCluster | undefined, context: SourceContext): SourceModel {
  if (source === undefined || typeof source !== 'object') {
    throw propError(scope, prop, source, 'is not a source cluster', `give ${prop} the source's name and its repository and/or streaming`);
  }
  validateServiceName(scope, `${prop}.name`, source.name);
  if (source.namespace !== undefined) validateDnsLabel(scope, `${prop}.namespace`, source.namespace);
  const namespace = Chart.of(scope).namespace;
  const sameNamespace = source.namespace === undefined || source.namespace === namespace;
  if (source.name === context.clusterName && sameNamespace) {
    throw propError(scope, `${prop}.name`, source.name, 'is this cluster\'s own name in its own namespace: the source would be the cluster itself',
      'name the other cluster (and its namespace when it runs elsewhere), or restore this cluster\'s own backup with backup.restore');
  }
  if (!source.repository && !source.streaming) {
    throw propError(scope, prop, source.name, 'has neither repository nor streaming', `set ${prop}.repository, ${prop}.streaming, or both`);
  }
  if (source.repository && context.defaultImage) {
    throw propError(scope, 'image', undefined, `is the default image, which has no pgBackRest, and ${prop}.repository runs pgBackRest in the instance pods`,
      'set image to one with PostgreSQL, bash and pgBackRest 2.45 or later');
  }
  const suffix = source.namespace !== undefined && source.namespace !== namespace ? source.namespace : undefined;
  const repository = source.repository && resolveSourceRepository(scope, `${prop}.repository`, source.repository, source.name, suffix);
  if (repository && source.name === context.clusterName) refuseSharedStanza(scope, `${prop}.repository`, repository, source.name, context);
  const streamingPort = source.streaming && validatePort(scope, `${prop}.streaming.port`, source.streaming.port ?? 5432);
  const streaming = source.streaming && {
    host: source.streaming.host ?? serviceHost(`${source.name}-rw`, suffix),
    port: streamingPort!,
    egress: [{ peer: { ...(suffix ? { namespace: suffix } : {}), podSelector: sourcePods(source.name, 'postgresql', 'database') }, port: streamingPort! }],
    replication: resolveCredentials(scope, `${prop}.streaming.replicationSecret`, source.streaming.replicationSecret),
    authority: resolveAuthority(scope, `${prop}.streaming.certificateAuthority`, source.streaming.certificateAuthority)!,
  };
  if (streaming) {
    validateDnsSubdomain(scope, `${prop}.streaming.host`, streaming.host, 'host');
    if (!streaming.authority) {
      throw propError(scope, `${prop}.streaming.certificateAuthority`, undefined, 'is required: the source is always reached over TLS, verified for its host name',
        'name a Secret of this namespace holding the source\'s CA (a copy of its tls Secret\'s ca.crt)');
    }
  }
  return { name: source.name, ...(suffix ? { namespace: suffix } : {}), ...(repository ? { repository } : {}), ...(streaming ? { streaming } : {}) };
}

function resolveSourceRepository(scope: IConstruct, prop: string, source: SourceRepository, sourceName: string,
  namespace: string | undefined): SourceRepositoryModel {
  const repository = source.repository;
  if (!(repository instanceof BackupRepository) || typeof repository._bind !== 'function') {
    throw propError(scope, `${prop}.repository`, repository, 'is not a BackupRepository of the library', 'make it with BackupRepository.volume() or BackupRepository.s3(), as the source declares it');
  }
  const index = requireInteger(scope, `${prop}.index`, source.index ?? 1, 1, 4);
  const repoHostName = `${sourceName}-repo-host`;
  if (repository.type !== RepositoryType.VOLUME) {
    const volumeOnly = (['repoHost', 'serverPort', 'tlsSecretName'] as const).find((key) => source[key] !== undefined);
    if (volumeOnly) {
      throw propError(scope, `${prop}.${volumeOnly}`, source[volumeOnly], `is for a volume repository, and the source's is ${repository.type}`,
        `drop ${prop}.${volumeOnly}: the pods reach the bucket directly`);
    }
    const binding = repository._bind(scope, { prop: `${prop}.repository`, index: SOURCE_S3_KEY, clusterName: sourceName, repoHostPod: `${repoHostName}-0` });
    return { type: repository.type, key: SOURCE_S3_KEY, options: binding.options, access: binding.access, egress: binding.egress };
  }
  // Validates the volume's props; its claims are the source's business.
  repository._bind(scope, { prop: `${prop}.repository`, index, clusterName: sourceName, repoHostPod: `${repoHostName}-0` });
  if (source.tlsSecretName === undefined) {
    throw propError(scope, `${prop}.tlsSecretName`, undefined, 'is required for a volume repository: the source\'s repository host admits only clients with a certificate of its CN',
      `name a kubernetes.io/tls Secret of this namespace whose certificate has CN "${sourceName}-rw" and is signed by the source's CA: a copy of the source's tls Secret`);
  }
  const tlsSecretName = resolveSecretName(scope, `${prop}.tlsSecretName`, source.tlsSecretName);
  const host = source.repoHost ?? `${repoHostName}-0.${serviceHost(repoHostName, namespace)}`;
  validateDnsSubdomain(scope, `${prop}.repoHost`, host, 'host');
  const port = validatePort(scope, `${prop}.serverPort`, source.serverPort ?? 8432);
  const tls = (file: string) => `${SOURCE_PATHS.tlsDir}/${file}`;
  const repo = `repo${index}`;
  return {
    type: repository.type,
    key: index,
    options: [
      [`${repo}-host`, host],
      [`${repo}-host-type`, 'tls'],
      [`${repo}-host-port`, port],
      // The remote reads the source's own repository host config, where the repository's path is.
      [`${repo}-host-config`, `${BACKUP_PATHS.configDir}/${BACKUP_FILES.repoHostConf}`],
      [`${repo}-host-cert-file`, tls(TLS_FILES.certificate)],
      [`${repo}-host-key-file`, tls(TLS_FILES.key)],
      [`${repo}-host-ca-file`, tls(TLS_FILES.authority)],
    ],
    access: { volumes: [], mounts: [], env: [] },
    egress: [{ peer: { ...(namespace ? { namespace } : {}), podSelector: sourcePods(sourceName, 'pgbackrest', 'repo-host') }, port }],
    tlsSecretName,
  };
}

/**
 * A source of the cluster's own name (in another namespace) shares its stanza: an own S3
 * repository at the source's bucket, endpoint and path would archive into the source's history.
 */
function refuseSharedStanza(scope: IConstruct, prop: string, source: SourceRepositoryModel, name: string, context: SourceContext): void {
  if (source.type !== RepositoryType.S3) return;
  const location = (options: RepositoryOption[], key: number) => ['path', 's3-bucket', 's3-endpoint']
    .map((option) => options.find(([optionName]) => optionName === `repo${key}-${option}`)?.[1]).join('|');
  const sourceLocation = location(source.options, source.key);
  (context.backup?.repositories ?? []).forEach((repository, offset) => {
    if (!(repository instanceof BackupRepository) || repository.type !== RepositoryType.S3) return;
    const own = repository._bind(scope, { prop: `backup.repositories[${offset}]`, index: offset + 1, clusterName: name, repoHostPod: `${name}-repo-host-0` });
    if (location(own.options, offset + 1) === sourceLocation) {
      throw propError(scope, `backup.repositories[${offset}]`, sourceLocation.split('|').join(' '),
        `is the bucket and path of ${prop}, and the source has this cluster's name, hence its stanza: this cluster would archive into the source's history`,
        'give this cluster another name, or its repository another path');
    }
  });
}

/** The source's pods of a component, by the labels the library gives them. */
function sourcePods(sourceName: string, name: string, component: string): { [key: string]: string } {
  return selectorLabels({ name, instance: sourceName, component, partOf: sourceName }, component !== 'database');
}
