import { Chart } from 'cdk8s';
import { IConstruct } from 'constructs';
import { CLUSTER_FILES, CLUSTER_PATHS, replicaSlotName } from './cluster-layout';
import { MemoryCheck, PostgresStatefulClusterProps, VolumeRetention } from './cluster-props';
import { DatabaseModel, declaredExtensionNames, resolveDatabases } from './databases';
import { extensionPreloadLibraries } from './extensions';
import { HbaRulesModel, resolveHbaRules } from './hba-rules';
import { HighAvailabilityModel, resolveHighAvailability } from './high-availability';
import { LogAnalysisModel, resolveLogAnalysis } from './log-analysis';
import { MajorUpgradeModel, resolveMajorUpgrade } from './major-upgrade';
import { NamedRoleModel, resolveNamedRoles } from './named-roles';
import { validatePatroniSource } from './patroni-source';
import { PostgresqlSettings, SynchronousCommit, WalLevel } from './postgresql-settings';
import { PrimaryRecovery, resolvePrimaryRecovery } from './primary-recovery';
import { CloneModel, resolveSources, StandbyModel } from './source-cluster-model';
import { synchronousStandbyNames } from './synchronous-replication';
import { resolveTablespaces, TablespaceModel, tablespaceMounts } from './tablespaces';
import { BackupModel, resolveBackup } from '../backup/backup-model';
import { backupCertificateDnsNames } from '../backup/backup-objects';
import { ResolvedCredentials, resolveCredentials } from '../core/credentials';
import { propError } from '../core/errors';
import { requireSingleLine, ReservedSettings, setByConstruct } from '../core/escape-hatch';
import { ComponentLabels, selectorLabels } from '../core/labels';
import {
  MAX_STATEFUL_SET_NAME_LENGTH, defaultResourceName, serviceHost, validateCidr, validateDnsSubdomain, validateLabelValue,
  validateServiceName,
} from '../core/names';
import { integerParameter, PostgresVersion, resolvePostgresVersion, unknownParameter } from '../core/postgres-versions';
import { parseQuantity, postgresMemory } from '../core/quantity';
import { ResolvedResources, resolveResources } from '../core/resources';
import { PodSpread } from '../core/scheduling';
import { checkSettingValue, gucSyntax } from '../core/setting-values';
import { ResolvedTls, resolveTls, serviceDnsNames } from '../core/tls';
import { resolveUserMetadata, UserMetadata } from '../core/user-metadata';
import { requireEnum, requireInteger, validateImage, validatePort, wholeSeconds } from '../core/validation';

/** A postgresql.conf value: numbers and booleans are written bare, strings quoted. */
export type ParameterValue = string | number | boolean;

/** One rendered postgresql.conf line. */
export interface Parameter {
  readonly name: string;
  readonly value: ParameterValue;
}

/** Everything the renderers and the construct need, resolved and validated once. */
export interface ClusterModel {
  readonly name: string;
  /** What varies by PostgreSQL major version, for the major the cluster runs. */
  readonly version: PostgresVersion;
  readonly instances: number;
  readonly replicas: number;
  readonly image: string;
  readonly uid: number;
  readonly port: number;
  readonly objectNames: {
    /** The one StatefulSet of the HA mode, whose pods Patroni names its members after. */
    readonly members: string;
    readonly primary: string;
    readonly replica: string;
    readonly headless: string;
    readonly readWrite: string;
    readonly readOnly: string;
    readonly config: string;
    readonly scripts: string;
    readonly serviceAccount: string;
    readonly disruptionBudget: string;
    /** The HA mode's Role and RoleBinding. */
    readonly patroniAccess: string;
  };
  readonly readWriteHost: string;
  readonly readOnlyHost: string;
  /** Stable DNS name of the primary pod, through the headless Service (plain mode). */
  readonly primaryPodHost: string;
  /** Names of the pods, in ordinal order: the primary's and the replicas', or the HA mode's members. */
  readonly podNames: string[];
  /** The application and slot names of the pods that may stream from a primary. */
  readonly replicaApplicationNames: string[];
  /** Patroni's settings, in the HA mode. */
  readonly highAvailability?: HighAvailabilityModel;
  /** pgBackRest's repositories, schedules and restore. */
  readonly backup?: BackupModel;
  /** A new cluster copied from another one. */
  readonly clone?: CloneModel;
  /** While set, the cluster follows another one. */
  readonly standby?: StandbyModel;
  /** While set, an upgrade of the data from an older major to `version`. */
  readonly majorUpgrade?: MajorUpgradeModel;
  /** The plain mode: what a primary with an empty volume does while replicas hold the cluster. */
  readonly primaryRecovery: PrimaryRecovery;
  readonly superuser: ResolvedCredentials;
  readonly replication: ResolvedCredentials;
  readonly databases: DatabaseModel[];
  /** Roles declared by name, without a Secret. */
  readonly namedRoles: NamedRoleModel[];
  /** postgresql.conf parameters chosen by props and defaults (paths and ports are the renderer's). */
  readonly parameters: Parameter[];
  readonly maxConnections: number;
  /** shared_buffers + max_connections x work_mem, in bytes, when it exceeds the memory limit. */
  readonly memoryOverrun?: { readonly estimateBytes: number; readonly limitBytes: number; readonly check: MemoryCheck };
  /** max_slot_wal_keep_size in bytes. */
  readonly maxSlotWalKeepBytes: number;
  readonly superuserReservedConnections: number;
  /** reserved_connections (PostgreSQL 16 and later, through extraParameters): slots only roles in pg_use_reserved_connections take. */
  readonly reservedConnections: number;
  readonly allowedCidrs: string[];
  /** Whether pg_hba admits the superuser over TCP. */
  readonly superuserNetworkAccess: boolean;
  /** The props' pg_hba.conf rules and pg_ident.conf maps. */
  readonly hba: HbaRulesModel;
  /** Tablespaces on volumes of their own. */
  readonly tablespaces: TablespaceModel[];
  readonly tls?: ResolvedTls;
  /** The names clients and replicas verify the server certificate against. */
  readonly certificateDnsNames: string[];
  readonly resources: ResolvedResources;
  readonly storage: { readonly size: string; readonly storageClassName?: string; readonly walSize?: string; readonly walStorageClassName?: string };
  readonly volumeRetention: VolumeRetention;
  readonly spread: PodSpread;
  /** pgBadger: logs to files on the data volume and the report sidecar. */
  readonly logAnalysis?: LogAnalysisModel;
  readonly terminationGracePeriodSeconds: number;
  readonly user: UserMetadata;
  readonly componentLabels: (component: string) => ComponentLabels;
}

const REPLICA_SUFFIX = '-replica';
/** The uid of the postgres user in the Docker official and Debian images, for an image of the user's. */
const CUSTOM_IMAGE_UID = 999;
const POSTGRES_MEMORY = /^([0-9]+)(kB|MB|GB|TB)$/;
/** The largest memory limit a cluster takes: twice the largest machines offered (32Ti), so a typo such as "999999Ti" is caught. */
const MAX_MEMORY_LIMIT_BYTES = 64 * 2 ** 40;
const POSTGRES_MEMORY_UNITS: { [unit: string]: number } = { kB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 };

/** A library file name: a list element PostgreSQL reads as is, with no path, quote, comma or space. */
const LIBRARY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,254}$/;
const EXTENSION_PARAMETER = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$/;

const SOCKET = setByConstruct('nothing: the probes and bootstrap rely on the socket path');
const ARCHIVING = setByConstruct('backup (WAL goes to every repository)');
const STDERR_LOGS = { problem: 'would move logs away from stderr, where the construct sends them', use: 'logAnalysis (log files for pgBadger on the data volume)' };
/** Off, writes may never reach the disk, or reach it torn: a crash of the node corrupts the data. */
const CRASH_SAFETY = {
  problem: 'may turn off crash safety: a crash of the node could corrupt the data and the replicas cloned from it',
  use: 'settings.synchronousCommit SynchronousCommit.OFF for faster commits, which loses at most the last commits, never consistency',
};

/** Parameters extraParameters refuses: the construct's own, and what carries security or durability. */
const RESERVED_PARAMETERS = new ReservedSettings(new Map(Object.entries({
  listen_addresses: setByConstruct('allowedCidrs (PostgreSQL listens on every pod address)'),
  port: setByConstruct('port'),
  hba_file: setByConstruct('allowedCidrs'),
  ident_file: setByConstruct('identMaps'),
  config_file: setByConstruct('settings or extraParameters'),
  data_directory: setByConstruct('storage'),
  password_encryption: setByConstruct('nothing: scram-sha-256 is the only method the library allows'),
  krb_server_keyfile: { problem: 'would admit Kerberos logins', use: 'nothing: clients log in with scram-sha-256 passwords' },
  synchronous_standby_names: setByConstruct('synchronousReplication'),
  primary_conninfo: setByConstruct('replicationSecret (the bootstrap writes it for each replica)'),
  primary_slot_name: setByConstruct('nothing: each replica streams through a slot named after its pod'),
  // Always the construct's: its restore and replica bootstrap rely on knowing where WAL goes.
  archive_mode: ARCHIVING,
  archive_command: ARCHIVING,
  // PostgreSQL 15 ignores archive_command when a library is set.
  archive_library: { problem: 'would silently replace the archive_command of backup', use: 'backup (WAL goes to every repository)' },
  archive_timeout: setByConstruct('backup.archiveTimeout'),
  restore_command: setByConstruct('backup (replicas fetch from its repositories the WAL their primary removed, and backup.restore recovers from one)'),
  archive_cleanup_command: setByConstruct('nothing: pgBackRest expires archived WAL by its retention'),
  ssl: setByConstruct('tls'),
  ssl_cert_file: setByConstruct('tls.secretName'),
  ssl_key_file: setByConstruct('tls.secretName'),
  ssl_ca_file: setByConstruct('hbaRules with HbaMethod.CERT (client certificates are verified against the tls Secret\'s ca.crt)'),
  ssl_min_protocol_version: setByConstruct('tls.minimumProtocolVersion'),
  ssl_max_protocol_version: { problem: 'would hold clients back from newer TLS versions', use: 'tls.minimumProtocolVersion' },
  logging_collector: STDERR_LOGS,
  log_destination: STDERR_LOGS,
  log_directory: STDERR_LOGS,
  log_filename: STDERR_LOGS,
  log_file_mode: STDERR_LOGS,
  fsync: CRASH_SAFETY,
  full_page_writes: CRASH_SAFETY,
})), [
  [/^unix_socket_/, SOCKET],
  // Ciphers, curves, passphrase commands: PostgreSQL's defaults admit only strong suites.
  [/^ssl_/, { problem: 'carries the TLS the construct secures', use: 'tls (tls.minimumProtocolVersion TLS_1_3 leaves only TLS 1.3\'s AEAD ciphers)' }],
]);

/** Names, sizes and images: who the cluster's pods are. */
type Topology = Pick<ClusterModel, 'name' | 'instances' | 'replicas' | 'port' | 'highAvailability' | 'image' | 'uid' | 'objectNames'
| 'podNames' | 'replicaApplicationNames'>;

/** The postgresql.conf parameters and what the cluster derives from them. */
type Settings = Pick<ClusterModel, 'parameters' | 'maxConnections' | 'superuserReservedConnections' | 'reservedConnections' | 'maxSlotWalKeepBytes'
| 'memoryOverrun'>;

/** Validates the props of a cluster and resolves every default. */
export function resolveClusterModel(scope: IConstruct, id: string, props: PostgresStatefulClusterProps): ClusterModel {
  // The one place the cluster's major is chosen; everything that varies by major comes from its entry.
  const version = resolvePostgresVersion(scope, 'postgresVersion', props.postgresVersion);
  const topology = resolveTopology(scope, id, props, version);
  const { name, replicas, objectNames } = topology;
  const namespace = Chart.of(scope).namespace;
  const resources = resolveResources(scope, props.resources, { cpuRequest: '250m', cpuLimit: '1', memoryLimit: '1Gi' });
  if (resources.memoryLimitBytes < 256 * 2 ** 20) {
    throw propError(scope, 'resources.memoryLimit', resources.memoryLimit, 'is below the 256Mi PostgreSQL needs to run a few sessions',
      'give at least "256Mi"');
  }
  // shared_buffers is derived from the limit and allocated at start: past any node's memory the server cannot start.
  if (resources.memoryLimitBytes > MAX_MEMORY_LIMIT_BYTES) {
    throw propError(scope, 'resources.memoryLimit', resources.memoryLimit, 'is more memory than any node has, and PostgreSQL allocates a quarter of it at start',
      'give at most "64Ti" (twice the largest machines offered today), or check the unit');
  }
  const storage = resolveStorage(scope, props);
  const tablespaces = resolveTablespaces(scope, props.tablespaces, storage.storageClassName);
  const settings = resolveSettings(scope, props, topology, resources, storage, version);
  const superuser = resolveCredentials(scope, 'superuserSecret', props.superuserSecret);
  const replication = resolveCredentials(scope, 'replicationSecret', props.replicationSecret);
  if (replication.secretName === superuser.secretName) {
    throw propError(scope, 'replicationSecret.secretName', replication.secretName,
      'is also superuserSecret: the superuser would replicate through the lines that admit only the replication role',
      'give the replication role a Secret of its own');
  }
  const databases = resolveDatabases(scope, props);
  const allowedCidrs = resolveAllowedCidrs(scope, props);
  const logAnalysis = resolveLogAnalysis(scope, props.logAnalysis, props.extraParameters ?? {});
  const graceSeconds = requireInteger(scope, 'terminationGracePeriod',
    wholeSeconds(scope, 'terminationGracePeriod', props.terminationGracePeriod) ?? 60, 10, 3600);
  const user = resolveUserMetadata(scope, props);
  // The cluster's own image makes its self-signed certificate: no other image to pull.
  const tls = resolveTls(scope, props.tls, name, version.image.image);
  const partOf = props.partOf ?? name;
  validateLabelValue(scope, 'partOf', partOf);
  const componentLabels = (component: string) => ({ name: 'postgresql', instance: name, component, partOf });
  const majorUpgrade = resolveMajorUpgrade(scope, props.majorUpgrade, {
    to: version, highAvailability: topology.highAvailability !== undefined, walVolume: storage.walSize !== undefined,
  });
  const backup = resolveClusterBackup(scope, props, {
    topology, storage, tablespaces, tls, superuser, componentLabels, user, majorUpgradeTo: majorUpgrade?.to.major,
  });
  const sources = resolveSources(scope, props, { clusterName: name, highAvailability: topology.highAvailability !== undefined, majorUpgrade });
  if (topology.highAvailability) validatePatroniSource(scope, sources.standby, tls);
  return {
    ...topology,
    version,
    readWriteHost: serviceHost(objectNames.readWrite, namespace),
    readOnlyHost: serviceHost(replicas > 0 ? objectNames.readOnly : objectNames.readWrite, namespace),
    primaryPodHost: `${objectNames.primary}-0.${objectNames.headless}`,
    ...(backup ? { backup } : {}),
    ...sources,
    ...(majorUpgrade ? { majorUpgrade } : {}),
    primaryRecovery: resolvePrimaryRecovery(scope, props.primaryRecovery, {
      highAvailability: topology.highAvailability !== undefined, instances: topology.instances,
      restore: props.backup?.restore !== undefined, hotStandby: props.settings?.hotStandby !== false,
    }),
    superuser,
    replication,
    databases,
    namedRoles: resolveNamedRoles(scope, props.namedRoles),
    ...settings,
    allowedCidrs,
    superuserNetworkAccess: props.superuserNetworkAccess ?? false,
    tablespaces, hba: resolveHbaRules(scope, props.hbaRules, props.identMaps, tls),
    ...(tls ? { tls } : {}),
    // Replicas reach the primary pod through the headless Service: `<pod>.<name>-headless`.
    certificateDnsNames: [
      ...serviceDnsNames(scope, [objectNames.readWrite, ...(replicas > 0 ? [objectNames.readOnly] : [])], [objectNames.headless]),
      ...(backup ? backupCertificateDnsNames(scope, backup) : []),
    ],
    resources,
    storage,
    volumeRetention: requireEnum(scope, 'volumeRetention', props.volumeRetention ?? VolumeRetention.RETAIN, { VolumeRetention }),
    spread: requireEnum(scope, 'spread', props.spread ?? PodSpread.PREFERRED, { PodSpread }),
    ...(logAnalysis ? { logAnalysis } : {}),
    terminationGracePeriodSeconds: graceSeconds,
    user,
    componentLabels,
  };
}

/** The cluster's name and size, its mode, image and uid, and the names of its objects and pods. */
function resolveTopology(scope: IConstruct, id: string, props: PostgresStatefulClusterProps, version: PostgresVersion): Topology {
  const name = props.name ?? defaultResourceName(id);
  const why = `, because the replica StatefulSet "<name>${REPLICA_SUFFIX}" may have at most ${MAX_STATEFUL_SET_NAME_LENGTH}`;
  validateServiceName(scope, 'name', name, MAX_STATEFUL_SET_NAME_LENGTH - REPLICA_SUFFIX.length, why);
  const instances = requireInteger(scope, 'instances', props.instances ?? 3, 1, 100);
  const replicas = instances - 1;
  const port = validatePort(scope, 'port', props.port ?? 5432);
  const roleSecrets = { superuserSecret: props.superuserSecret.secretName, replicationSecret: props.replicationSecret.secretName };
  const highAvailability = props.highAvailability ? resolveHighAvailability(scope, props.highAvailability, { name, port, roleSecrets }) : undefined;
  const defaults = highAvailability ? version.highAvailabilityImage : version.image;
  if (props.backup && props.image === undefined && !highAvailability) {
    // archive_command would fail on every segment, and WAL pile up until the volume is full.
    const withBackup = version.highAvailabilityImage;
    throw propError(scope, 'image', props.image, `defaults to "${version.image.image}", which has no pgBackRest, and backup runs it in every instance pod`,
      `set image to one with PostgreSQL ${version.major}, bash and pgBackRest 2.45 or later, such as "${withBackup.image}" with runAsUser ${withBackup.uid}`);
  }
  const uid = requireInteger(scope, 'runAsUser', props.runAsUser ?? (props.image ? CUSTOM_IMAGE_UID : defaults.uid), 1, 2 ** 31 - 1);
  const image = validateImage(scope, props.image ?? defaults.image, defaults.image);
  const objectNames = {
    members: name,
    primary: `${name}-primary`,
    replica: `${name}${REPLICA_SUFFIX}`,
    headless: `${name}-headless`,
    readWrite: `${name}-rw`,
    readOnly: `${name}-ro`,
    // Patroni keeps its own state in `<name>-config`, `-leader`, `-sync` and `-failover`.
    config: highAvailability ? `${name}-patroni` : `${name}-config`,
    scripts: `${name}-scripts`,
    serviceAccount: name,
    disruptionBudget: name,
    patroniAccess: `${name}-patroni`,
  };
  const ordinals = (statefulSet: string, count: number) => Array.from({ length: count }, (_, ordinal) => `${statefulSet}-${ordinal}`);
  const podNames = highAvailability ? ordinals(objectNames.members, instances)
    : [...ordinals(objectNames.primary, 1), ...ordinals(objectNames.replica, replicas)];
  // Patroni names a member's slot and application name after the member, as the plain mode does.
  const replicaApplicationNames = (highAvailability ? podNames : podNames.slice(1)).map(replicaSlotName);
  return {
    name, instances, replicas, port, ...(highAvailability ? { highAvailability } : {}), image, uid, objectNames, podNames, replicaApplicationNames,
  };
}

/** postgresql.conf's parameters from the typed settings, the synchronous standbys and the extra parameters, checked. */
function resolveSettings(scope: IConstruct, props: PostgresStatefulClusterProps, topology: Topology, resources: ResolvedResources,
  storage: ClusterModel['storage'], version: PostgresVersion): Settings {
  const memoryLimitBytes = resources.memoryLimitBytes;
  const walVolumeBytes = parseQuantity(scope, storage.walSize ? 'storage.walSize' : 'storage.size', storage.walSize ?? storage.size);
  const settings = props.settings ?? {};
  const maxConnections = requireParameterInteger(scope, 'settings.maxConnections', settings.maxConnections ?? 100, version, 'max_connections');
  const superuserReservedConnections = requireInteger(scope, 'settings.superuserReservedConnections', settings.superuserReservedConnections ?? 3, 0);
  if (superuserReservedConnections >= maxConnections) {
    throw propError(scope, 'settings.superuserReservedConnections', superuserReservedConnections,
      `leaves no connection for other roles out of maxConnections ${maxConnections}`,
      'make it smaller than settings.maxConnections');
  }
  const walSenders = resolveWalSenders(scope, settings, topology.instances, version);
  const sharedBuffers = settings.sharedBuffers ?? defaultMemory(version, 'shared_buffers', memoryLimitBytes / 4);
  const sharedBuffersBytes = parsePostgresMemory(scope, 'settings.sharedBuffers', sharedBuffers);
  if (sharedBuffersBytes >= memoryLimitBytes) {
    throw propError(scope, 'settings.sharedBuffers', sharedBuffers, `does not fit in the memory limit ${resources.memoryLimit}`,
      'lower settings.sharedBuffers (about 25% of the limit is usual) or raise resources.memoryLimit');
  }

  const typed: { [name: string]: ParameterValue | undefined } = {
    max_connections: maxConnections,
    superuser_reserved_connections: superuserReservedConnections,
    shared_buffers: sharedBuffers,
    effective_cache_size: settings.effectiveCacheSize ?? defaultMemory(version, 'effective_cache_size', memoryLimitBytes * 0.75),
    work_mem: settings.workMem ?? '4MB',
    maintenance_work_mem: settings.maintenanceWorkMem ?? defaultMemory(version, 'maintenance_work_mem', memoryLimitBytes / 16),
    wal_level: requireEnum(scope, 'settings.walLevel', settings.walLevel ?? WalLevel.REPLICA, { WalLevel }),
    max_wal_senders: walSenders.maxWalSenders,
    max_replication_slots: walSenders.maxReplicationSlots,
    max_slot_wal_keep_size: settings.maxSlotWalKeepSize ?? defaultMemory(version, 'max_slot_wal_keep_size', walVolumeBytes / 2),
    // Slots keep what replicas need; Patroni refuses less than its minimum and has a default of its own.
    wal_keep_size: settings.walKeepSize ?? (topology.highAvailability ? version.patroni.walKeepSize : '0MB'),
    hot_standby: settings.hotStandby ?? true,
    hot_standby_feedback: settings.hotStandbyFeedback ?? false,
    synchronous_commit: requireEnum(scope, 'settings.synchronousCommit', settings.synchronousCommit ?? SynchronousCommit.ON, { SynchronousCommit }),
    shared_preload_libraries: resolvePreloadLibraries(scope, settings.sharedPreloadLibraries,
      extensionPreloadLibraries(declaredExtensionNames(props))),
  };
  for (const memoryParameter of MEMORY_PARAMETERS) {
    checkMemoryRange(scope, version, memoryParameter, String(typed[memoryParameter]));
  }
  const maxSlotWalKeepBytes = parsePostgresMemory(scope, 'settings.maxSlotWalKeepSize', String(typed.max_slot_wal_keep_size));
  const memoryEstimateBytes = sharedBuffersBytes + maxConnections * parsePostgresMemory(scope, 'settings.workMem', String(typed.work_mem));
  const memoryCheck = requireEnum(scope, 'memoryCheck', props.memoryCheck ?? MemoryCheck.WARN, { MemoryCheck });
  const memoryOverrun = memoryEstimateBytes > memoryLimitBytes && memoryCheck !== MemoryCheck.OFF
    ? { estimateBytes: memoryEstimateBytes, limitBytes: memoryLimitBytes, check: memoryCheck } : undefined;
  typed.synchronous_standby_names = resolveSynchronousStandbyNames(scope, props, topology);

  const parameters: Parameter[] = Object.entries(typed)
    .filter((entry): entry is [string, ParameterValue] => entry[1] !== undefined)
    .map(([parameter, value]) => ({ name: parameter, value }));
  const extra = resolveExtraParameters(scope, props.extraParameters ?? {}, version);
  parameters.push(...extra);
  if (topology.highAvailability) parameters.forEach((parameter) => checkPatroniLimit(scope, parameter, props.extraParameters ?? {}, version));
  const reservedConnections = resolveReservedConnections(scope, extra, props.extraParameters ?? {}, maxConnections, superuserReservedConnections);
  return { parameters, maxConnections, superuserReservedConnections, reservedConnections, maxSlotWalKeepBytes, memoryOverrun };
}

/**
 * PostgreSQL 16's reserved_connections, which the library's own roles are not granted: they fit
 * in what both reserves leave, and the server refuses to start when the reserves take every slot.
 */
function resolveReservedConnections(scope: IConstruct, extra: Parameter[], props: { [name: string]: string },
  maxConnections: number, superuserReserved: number): number {
  const parameter = extra.find((p) => p.name === 'reserved_connections');
  if (!parameter) return 0;
  const reserved = Number(parameter.value);
  if (superuserReserved + reserved >= maxConnections) {
    const key = Object.keys(props).find((name) => name.toLowerCase() === 'reserved_connections')!;
    throw propError(scope, `extraParameters.${key}`, parameter.value,
      `with superuser_reserved_connections ${superuserReserved} leaves no connection for other roles out of maxConnections ${maxConnections}`,
      'keep both reserves below settings.maxConnections');
  }
  return reserved;
}

/** synchronous_standby_names, from synchronousReplication: the plain mode's replicas in ordinal order. */
function resolveSynchronousStandbyNames(scope: IConstruct, props: PostgresStatefulClusterProps, topology: Topology): string | undefined {
  const synchronous = props.synchronousReplication;
  if (synchronous && topology.highAvailability) {
    throw propError(scope, 'synchronousReplication', `${synchronous.method} ${synchronous.count}`,
      'is managed by Patroni in the HA mode, which names the synchronous standby itself',
      'set highAvailability.synchronousMode to true instead');
  }
  if (!synchronous) return undefined;
  requireInteger(scope, 'synchronousReplication.count', synchronous.count, 1, Math.max(1, topology.replicas));
  if (topology.replicas === 0) {
    throw propError(scope, 'synchronousReplication', `${synchronous.method} ${synchronous.count}`,
      'needs replicas, and instances is 1', 'set instances to 2 or more, or drop synchronousReplication');
  }
  return synchronousStandbyNames(synchronous, topology.replicaApplicationNames);
}

function resolveAllowedCidrs(scope: IConstruct, props: PostgresStatefulClusterProps): string[] {
  const allowedCidrs = props.allowedCidrs ?? ['0.0.0.0/0', '::/0'];
  if (allowedCidrs.length === 0) {
    throw propError(scope, 'allowedCidrs', allowedCidrs, 'admits nobody, not even the replicas', 'list at least the pod network');
  }
  for (const cidr of allowedCidrs) {
    validateCidr(scope, 'allowedCidrs', cidr);
  }
  return allowedCidrs;
}

/** What of the cluster pgBackRest sees: its paths, pods, volumes and superuser. */
interface BackupContext {
  readonly topology: Topology;
  readonly storage: ClusterModel['storage'];
  readonly tablespaces: TablespaceModel[];
  readonly tls?: ResolvedTls;
  readonly superuser: ResolvedCredentials;
  readonly componentLabels: ClusterModel['componentLabels'];
  readonly user: UserMetadata;
  readonly majorUpgradeTo?: number;
}

function resolveClusterBackup(scope: IConstruct, props: PostgresStatefulClusterProps, context: BackupContext): BackupModel | undefined {
  const { topology, storage, tls, componentLabels } = context;
  return resolveBackup(scope, props.backup, {
    name: topology.name,
    port: topology.port,
    image: topology.image,
    uid: topology.uid,
    pgdata: CLUSTER_PATHS.pgdata,
    socketDir: CLUSTER_PATHS.socketDir,
    ...(storage.walSize ? { walDir: CLUSTER_PATHS.walDir } : {}),
    configFile: `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.postgresqlConf}`,
    tlsDir: CLUSTER_PATHS.tlsDir,
    sidecarMounts: [
      { name: 'data', mountPath: CLUSTER_PATHS.dataVolume },
      ...(storage.walSize ? [{ name: 'wal', mountPath: CLUSTER_PATHS.walVolume }] : []),
      // A backup follows pg_tblspc's links to the tablespaces' volumes.
      ...tablespaceMounts(context.tablespaces).map((mount) => ({ name: mount.name, mountPath: mount.mountPath })),
      { name: 'socket', mountPath: CLUSTER_PATHS.socketDir },
      { name: 'tls', mountPath: CLUSTER_PATHS.tlsDir },
    ],
    dataVolumeNames: ['data', 'wal', ...tablespaceMounts(context.tablespaces).map((mount) => mount.name)],
    instancePodHosts: topology.podNames.map((pod) => `${pod}.${topology.objectNames.headless}`),
    ...(tls ? { tls } : {}),
    // pgBackRest's servers let in clients by their certificate's CN.
    certificateCommonName: topology.objectNames.readWrite,
    superuser: context.superuser,
    componentLabels,
    instanceSelector: selectorLabels(componentLabels('database'), false),
    networkPolicies: props.networkPolicy?.enabled !== false,
    ...(props.networkPolicy?.dnsResolvers ? { dnsResolvers: props.networkPolicy.dnsResolvers } : {}),
    user: context.user,
    ...(context.majorUpgradeTo ? { majorUpgradeTo: context.majorUpgradeTo } : {}),
    ...(props.standby ? { standby: true } : {}),
  });
}

function resolveStorage(scope: IConstruct, props: PostgresStatefulClusterProps): ClusterModel['storage'] {
  const storage = { ...props.storage, size: props.storage?.size ?? '10Gi' };
  parseQuantity(scope, 'storage.size', storage.size);
  if (storage.walSize !== undefined) parseQuantity(scope, 'storage.walSize', storage.walSize);
  if (storage.walStorageClassName !== undefined && storage.walSize === undefined) {
    throw propError(scope, 'storage.walStorageClassName', storage.walStorageClassName, 'is set without a WAL volume',
      'set storage.walSize too, or drop storage.walStorageClassName');
  }
  for (const prop of ['storageClassName', 'walStorageClassName'] as const) {
    const value = storage[prop];
    if (value !== undefined) validateDnsSubdomain(scope, `storage.${prop}`, value, 'StorageClass');
  }
  return storage;
}

function resolveWalSenders(scope: IConstruct, settings: PostgresqlSettings, instances: number, version: PostgresVersion) {
  const fallback = Math.max(10, instances + 2);
  // Each replica streams through one sender; cloning a replica takes two more (backup + WAL).
  const neededSenders = instances - 1 + 2;
  const maxWalSenders = requireParameterInteger(scope, 'settings.maxWalSenders', settings.maxWalSenders ?? fallback, version, 'max_wal_senders');
  if (maxWalSenders < neededSenders) {
    throw propError(scope, 'settings.maxWalSenders', maxWalSenders,
      `is below the ${neededSenders} that ${instances - 1} streaming replicas and one being cloned need`,
      `set it to ${neededSenders} or more, or leave it unset for ${fallback}`);
  }
  const maxReplicationSlots = requireParameterInteger(scope, 'settings.maxReplicationSlots', settings.maxReplicationSlots ?? fallback, version, 'max_replication_slots');
  if (maxReplicationSlots < instances - 1) {
    throw propError(scope, 'settings.maxReplicationSlots', maxReplicationSlots,
      `is below the ${instances - 1} slots the replicas stream through`,
      `set it to ${instances - 1} or more, or leave it unset for ${fallback}`);
  }
  return { maxWalSenders, maxReplicationSlots };
}

function resolveExtraParameters(scope: IConstruct, extra: { [name: string]: string }, version: PostgresVersion): Parameter[] {
  return Object.keys(extra).sort().map((key) => {
    const parameter = key.toLowerCase();
    const prop = `extraParameters.${key}`;
    RESERVED_PARAMETERS.check(scope, prop, parameter, extra[key]);
    if (TYPED_SETTINGS.has(camelCase(parameter))) {
      throw propError(scope, prop, extra[key], 'has a typed prop', `use settings.${camelCase(parameter)}`);
    }
    // Extensions define their own parameters, always with a dot: `pg_stat_statements.max`.
    const known = EXTENSION_PARAMETER.test(parameter) || version.parameters.has(parameter);
    if (!known) {
      const { problem, fix } = unknownParameter(version, parameter);
      throw propError(scope, 'extraParameters', key, problem, fix);
    }
    requireSingleLine(scope, prop, extra[key]);
    const type = version.parameterTypes[parameter];
    if (type) checkSettingValue(scope, prop, extra[key], type, gucSyntax(`PostgreSQL ${version.major}`));
    return { name: parameter, value: extra[key] };
  });
}

/**
 * shared_preload_libraries as one list: each a library's file name in PostgreSQL's $libdir
 * (`pg_stat_statements`, `auto_explain`, `timescaledb`), then those the declared extensions need
 * that the list lacks; that the image has them only the server can tell.
 */
function resolvePreloadLibraries(scope: IConstruct, libraries: string[] | undefined, extensionLibraries: string[]): string | undefined {
  libraries?.forEach((library, index) => {
    if (typeof library !== 'string' || !LIBRARY_NAME.test(library)) {
      throw propError(scope, `settings.sharedPreloadLibraries[${index}]`, library, 'is not a library name',
        'give the file name of a library the image installs, such as "pg_stat_statements": letters, digits, "_", "-" and ".", at most 255 characters');
    }
  });
  const all = [...new Set([...libraries ?? [], ...extensionLibraries])];
  return libraries === undefined && all.length === 0 ? undefined : all.join(',');
}

/** A typed whole-number setting, within the range the cluster's PostgreSQL takes for its parameter. */
function requireParameterInteger(scope: IConstruct, prop: string, value: number, version: PostgresVersion, parameter: string): number {
  const { min, max } = integerParameter(version, parameter);
  return requireInteger(scope, prop, value, min, max);
}

/** Checks a parameter against Patroni's limits for the cluster's major (version.patroni). */
function checkPatroniLimit(scope: IConstruct, parameter: Parameter, extra: { [name: string]: string }, version: PostgresVersion): void {
  const extraKey = Object.keys(extra).find((key) => key.toLowerCase() === parameter.name);
  const prop = extraKey !== undefined ? `extraParameters.${extraKey}` : `settings.${camelCase(parameter.name)}`;
  const value = parameter.value;
  const limits = version.patroni;
  if (limits.forced.has(parameter.name)) {
    throw propError(scope, prop, value, 'is set by Patroni in the HA mode', `drop ${prop}`);
  }
  if (parameter.name === 'hot_standby' && value !== true) {
    throw propError(scope, prop, value, 'is forced on by Patroni, whose replicas must accept read-only queries', `drop ${prop}`);
  }
  const memory = Object.prototype.hasOwnProperty.call(limits.memoryMinimumsMB, parameter.name);
  const minimum = memory ? limits.memoryMinimumsMB[parameter.name]
    : Object.prototype.hasOwnProperty.call(limits.minimums, parameter.name) ? limits.minimums[parameter.name] : undefined;
  const number = memory ? parsePostgresMemory(scope, prop, String(value)) / 2 ** 20 : Number(value);
  if (minimum !== undefined && !(number >= minimum)) {
    const unit = memory ? 'MB' : '';
    throw propError(scope, prop, value, `is below Patroni's minimum of ${minimum}${unit}, under which Patroni silently runs its own default`,
      `set it to ${minimum}${unit} or more`);
  }
}

/** The typed settings, keyed by prop name, for telling users which prop replaces a parameter. */
const TYPED_SETTING_PROPS: { [prop in keyof Required<PostgresqlSettings>]: true } = {
  maxConnections: true, superuserReservedConnections: true, sharedBuffers: true, effectiveCacheSize: true,
  workMem: true, maintenanceWorkMem: true, walLevel: true, maxWalSenders: true, maxReplicationSlots: true,
  maxSlotWalKeepSize: true, walKeepSize: true, hotStandby: true, hotStandbyFeedback: true,
  synchronousCommit: true, sharedPreloadLibraries: true,
};
const TYPED_SETTINGS = new Set(Object.keys(TYPED_SETTING_PROPS));

/** The memory parameters the typed settings set. */
const MEMORY_PARAMETERS = ['shared_buffers', 'effective_cache_size', 'work_mem', 'maintenance_work_mem', 'max_slot_wal_keep_size', 'wal_keep_size'];
const MEMORY_UNIT_BYTES: { readonly [unit: string]: number } = { 'kB': 2 ** 10, '8kB': 8 * 2 ** 10, 'MB': 2 ** 20 };

/**
 * What the cluster's major accepts for a memory parameter: an int of its unit, rounded to the
 * nearest unit, from min to max, as its catalog says (maintenance_work_mem's floor fell from 1MB
 * to 64kB in 17; shared_buffers stops at INT_MAX / 2 buffers). -1, max_slot_wal_keep_size's "no
 * limit", is no size.
 */
function memoryRange(version: PostgresVersion, parameter: string): { readonly unitBytes: number; readonly min: number; readonly max: number } {
  const type = version.parameterTypes[parameter];
  if (type?.kind !== 'integer' || type.unit === undefined || !(type.unit in MEMORY_UNIT_BYTES)) {
    throw new Error(`internal error: PostgreSQL ${version.major}'s ${parameter} is not a memory size in the catalog`);
  }
  return { unitBytes: MEMORY_UNIT_BYTES[type.unit], min: Math.max(type.min, 0), max: type.max };
}

/** A default derived from the memory limit or the volume, at most what PostgreSQL accepts (a 32Ti limit would pass it). */
function defaultMemory(version: PostgresVersion, parameter: string, bytes: number): string {
  const range = memoryRange(version, parameter);
  return postgresMemory(Math.min(bytes, range.max * range.unitBytes));
}

/** Refuses a memory setting PostgreSQL would refuse to start with. */
function checkMemoryRange(scope: IConstruct, version: PostgresVersion, parameter: string, value: string): void {
  const prop = `settings.${camelCase(parameter)}`;
  const { unitBytes, min, max } = memoryRange(version, parameter);
  const units = Math.round(parsePostgresMemory(scope, prop, value) / unitBytes);
  if (units < min || units > max) {
    throw propError(scope, prop, value, `is outside the range PostgreSQL accepts for ${parameter}`,
      `give from ${postgresMemory(min * unitBytes)} to ${postgresMemory(max * unitBytes)}`);
  }
}

function parsePostgresMemory(scope: IConstruct, prop: string, value: string): number {
  const match = POSTGRES_MEMORY.exec(value);
  if (!match) {
    throw propError(scope, prop, value, 'is not a PostgreSQL memory size', 'write a whole number with kB, MB, GB or TB, such as "256MB"');
  }
  return Number(match[1]) * POSTGRES_MEMORY_UNITS[match[2]];
}

function camelCase(parameter: string): string {
  return parameter.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}
