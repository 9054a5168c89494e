import { Chart } from 'cdk8s';
import { IConstruct } from 'constructs';
import { BackupOptions, BackupSchedule, BackupType } from './backup-props';
import { BackupRepository, RepositoryBinding } from './backup-repository';
import { cronMaxIntervalSeconds } from './cron-interval';
import { ResolvedCredentials } from '../core/credentials';
import { propError } from '../core/errors';
import { ComponentLabels } from '../core/labels';
import { NetworkPeer } from '../core/network-policy';
import { ResolvedResources, resolveResources } from '../core/resources';
import { ResolvedTls } from '../core/tls';
import { UserMetadata } from '../core/user-metadata';
import { requireInteger, validateImage, validatePort, wholeSeconds } from '../core/validation';

/**
 * What the backup module needs from the cluster it backs up. The cluster builds it from its
 * own model; the unit tests build it by hand.
 */
export interface BackupCluster {
  /** The cluster's name: the stanza, and the prefix of every object. */
  readonly name: string;
  /** PostgreSQL's port. */
  readonly port: number;
  /** The cluster's image: the default of the pgBackRest containers. */
  readonly image: string;
  /** The uid (and gid) the cluster's pods run as; the pgBackRest pods run as it too, to share files. */
  readonly uid: number;
  /** The data directory in the instance pods. */
  readonly pgdata: string;
  /** PostgreSQL's socket directory in the instance pods. */
  readonly socketDir: string;
  /**
   * The separate WAL directory in the instance pods, when the cluster has a WAL volume.
   * @default - pg_wal inside the data directory
   */
  readonly walDir?: string;
  /** postgresql.conf in the instance pods, which a restored cluster recovers with. */
  readonly configFile: string;
  /** Where the instance pods mount the cluster's TLS Secret (tls.crt, tls.key, ca.crt). */
  readonly tlsDir: string;
  /**
   * The instance pods' volume mounts the server sidecar shares: the data (and WAL) volumes,
   * the socket directory and the TLS Secret. Data and WAL are mounted read-only in the sidecar.
   */
  readonly sidecarMounts: Array<{ readonly name: string; readonly mountPath: string }>;
  /** The names of the instance volumes among `sidecarMounts` that are written by PostgreSQL only (data, WAL). */
  readonly dataVolumeNames: string[];
  /** Every instance pod's DNS name through the headless Service, the first primary first: `<name>-primary-0.<name>-headless`. */
  readonly instancePodHosts: string[];
  /** The cluster's resolved `tls`; backups refuse to resolve without it. */
  readonly tls?: ResolvedTls;
  /**
   * The CN of the certificate in the tls Secret. pgBackRest's servers authorize clients by
   * it (`tls-server-auth`), so the cluster's Certificate must set it and allow client auth.
   */
  readonly certificateCommonName: string;
  /** The superuser's Secret: the server sidecar logs in to PostgreSQL (over the socket) as it. */
  readonly superuser: ResolvedCredentials;
  /** The cluster's labels for a component; the backup module uses only `partOf`. */
  readonly componentLabels: (component: string) => ComponentLabels;
  /** The instance pods, as a NetworkPolicy peer's pod selector. */
  readonly instanceSelector: { [key: string]: string };
  /** Whether the cluster renders NetworkPolicies (the backup pods then get their own). */
  readonly networkPolicies: boolean;
  /** The cluster's `networkPolicy.dnsResolvers`, which the backup pods query too. */
  readonly dnsResolvers?: NetworkPeer[];
  /** The user's labels, annotations and placement. */
  readonly user: UserMetadata;
  /**
   * The major the cluster is upgraded to while its `majorUpgrade` is set: the stanza is upgraded
   * to it (and a full backup taken) by a Job per repository.
   * @default - no upgrade under way
   */
  readonly majorUpgradeTo?: number;
  /**
   * While the cluster is a standby cluster: no instance is a primary to back up, so its backup
   * CronJobs are rendered suspended until the promotion.
   * @default false
   */
  readonly standby?: boolean;
}

/** One scheduled backup: a CronJob. */
export interface ScheduleModel {
  readonly type: BackupType;
  readonly cron: string;
  /** The CronJob's name: `<name>-backup-repo<N>-<type>`. */
  readonly cronJobName: string;
  /** The longest time between two runs, which the backup age alert allows. */
  readonly maxIntervalSeconds: number;
}

/**
 * A repository, bound: its 1-based index (pgBackRest's `repoN`), retention and schedules, which
 * every type has, and what its type contributes, which the renderers use without knowing it.
 */
export interface RepositoryModel extends RepositoryBinding {
  readonly index: number;
  readonly retentionFull: number;
  readonly schedules: ScheduleModel[];
  /**
   * Without a scheduled full backup, the full backup CronJob rendered suspended, so that every
   * repository has one to create on-demand backup Jobs from; its schedule is the default full one,
   * valid should someone resume it.
   * @default - a full backup is scheduled
   */
  readonly suspendedFull?: { readonly cronJobName: string; readonly cron: string };
}

/** A validated restore: where from and to which point. */
export interface RestoreModel {
  readonly repository: number;
  /** The target time as pgBackRest 2.45 parses it for backup set selection: `YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM`. */
  readonly targetTime?: string;
  readonly targetTimeline?: string;
}

/** Everything the backup renderers need, resolved and validated once. */
export interface BackupModel {
  readonly cluster: BackupCluster;
  /** The pgBackRest stanza: the cluster's name. */
  readonly stanza: string;
  readonly namespace?: string;
  readonly repositories: RepositoryModel[];
  readonly restore?: RestoreModel;
  /** Whether the backup jobs copy the files from a replica (`backup-standby=y`). */
  readonly fromStandby: boolean;
  /** The cluster's TLS Secret, which pgBackRest's servers and clients present to each other. */
  readonly tlsSecretName: string;
  readonly serverPort: number;
  /** Other clusters' pods the repository host admits (clones and standby clusters). */
  readonly repositoryClients: NetworkPeer[];
  readonly archiveTimeoutSeconds: number;
  readonly ioTimeoutSeconds: number;
  readonly image: string;
  readonly resources: ResolvedResources;
  readonly objectNames: {
    readonly config: string;
    readonly repoHost: string;
    readonly serviceAccount: string;
    readonly backupPolicy: string;
  };
  /** The repository host pod's DNS name through its headless Service, when a repository lives on the host. */
  readonly repoHostPodHost?: string;
  readonly repoHostLabels: ComponentLabels;
  readonly backupLabels: ComponentLabels;
}

const DEFAULT_SCHEDULE: BackupSchedule = { full: '0 1 * * 0', incremental: '0 1 * * 1-6' };
const SCHEDULE_FIELDS: Array<{ readonly name: string; readonly min: number; readonly max: number; readonly names?: string[] }> = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];
const TYPE_PROPS: Array<{ readonly prop: keyof BackupSchedule; readonly type: BackupType }> = [
  { prop: 'full', type: BackupType.FULL },
  { prop: 'differential', type: BackupType.DIFFERENTIAL },
  { prop: 'incremental', type: BackupType.INCREMENTAL },
];
/** `-backup-repoN-full`: the longest suffix of a CronJob name. */
const CRON_JOB_SUFFIX_LENGTH = '-backup-repo1-full'.length;
/** A CronJob's Jobs get an 11-character suffix, and a Job's name is a pod label value (63 at most). */
const MAX_CRON_JOB_NAME_LENGTH = 52;
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}(?::?\d{2})?)$/;

/**
 * Validates the `backup` prop of a cluster and resolves every default; undefined without
 * backups. Throws, naming the prop, for anything pgBackRest or Kubernetes would refuse later.
 */
export function resolveBackup(scope: IConstruct, options: BackupOptions | undefined, cluster: BackupCluster): BackupModel | undefined {
  if (options === undefined) return undefined;
  const tls = cluster.tls;
  if (tls?.secretName === undefined) {
    throw propError(scope, 'tls', tls ? 'a self-signed certificate' : 'disabled',
      'must name a Secret when backup is: pgBackRest\'s servers and clients authenticate each other with the cluster\'s certificate, signed by a CA they share',
      `set tls (a Secret with tls.crt, tls.key and ca.crt, whose certificate has CN "${cluster.certificateCommonName}" and allows server and client auth), or drop backup`);
  }
  const name = cluster.name;
  if (name.length + CRON_JOB_SUFFIX_LENGTH > MAX_CRON_JOB_NAME_LENGTH) {
    throw propError(scope, 'name', name, `is too long for the backup CronJobs "<name>-backup-repo<N>-<type>", which may have at most ${MAX_CRON_JOB_NAME_LENGTH} characters`,
      `use a name of at most ${MAX_CRON_JOB_NAME_LENGTH - CRON_JOB_SUFFIX_LENGTH} characters`);
  }
  const repositories = options.repositories ?? [];
  if (!Array.isArray(repositories) || repositories.length < 1 || repositories.length > 4) {
    throw propError(scope, 'backup.repositories', `${Array.isArray(repositories) ? repositories.length : 0} repositories`,
      'must list one to four repositories', 'give BackupRepository.volume(), .s3(), .gcs() or .azure() repositories, at most four');
  }
  const repoHost = `${name}-repo-host`;
  const resolved = repositories.map((repository, offset) => resolveRepository(scope, repository, offset + 1, name, `${repoHost}-0`));
  const serverPort = validatePort(scope, 'backup.serverPort', options.serverPort ?? 8432);
  if (serverPort === cluster.port) {
    throw propError(scope, 'backup.serverPort', serverPort, 'is PostgreSQL\'s port', 'choose another port, such as 8432');
  }
  const archiveTimeoutSeconds = requireInteger(scope, 'backup.archiveTimeout',
    wholeSeconds(scope, 'backup.archiveTimeout', options.archiveTimeout) ?? 60, 0, 86400);
  const ioTimeoutSeconds = requireInteger(scope, 'backup.ioTimeout', wholeSeconds(scope, 'backup.ioTimeout', options.ioTimeout) ?? 10, 1, 3600);
  const image = validateImage(scope, options.image ?? cluster.image, cluster.image);
  const resources = resolveResources(scope, options.resources, { cpuRequest: '100m', cpuLimit: '1', memoryLimit: '256Mi' });
  const restore = resolveRestore(scope, options, resolved.length);
  const fromStandby = options.fromStandby ?? false;
  if (typeof fromStandby !== 'boolean') throw propError(scope, 'backup.fromStandby', fromStandby, 'is not a boolean', 'set true or false');
  if (fromStandby && cluster.instancePodHosts.length < 2) {
    throw propError(scope, 'backup.fromStandby', fromStandby, `needs a replica to copy from, and the cluster has ${cluster.instancePodHosts.length} instance`,
      'set instances to 2 or more, or leave fromStandby unset to back up the primary');
  }
  const partOf = cluster.componentLabels('database').partOf;
  const hasRepoHost = resolved.some((repository) => repository.repoHost);
  return {
    cluster,
    stanza: name,
    namespace: Chart.of(scope).namespace,
    repositories: resolved,
    ...(restore ? { restore } : {}),
    fromStandby,
    tlsSecretName: tls.secretName,
    serverPort,
    repositoryClients: [...options.repositoryClients ?? []],
    archiveTimeoutSeconds,
    ioTimeoutSeconds,
    image,
    resources,
    objectNames: { config: `${name}-pgbackrest`, repoHost, serviceAccount: `${name}-pgbackrest`, backupPolicy: `${name}-backup` },
    ...(hasRepoHost ? { repoHostPodHost: `${repoHost}-0.${repoHost}` } : {}),
    repoHostLabels: { name: 'pgbackrest', instance: name, component: 'repo-host', partOf },
    backupLabels: { name: 'pgbackrest', instance: name, component: 'backup', partOf },
  };
}

function resolveRepository(scope: IConstruct, repository: BackupRepository, index: number, clusterName: string,
  repoHostPod: string): RepositoryModel {
  const prop = `backup.repositories[${index - 1}]`;
  if (!(repository instanceof BackupRepository)) {
    throw propError(scope, prop, repository, 'is not a BackupRepository', 'make it with BackupRepository.volume(), .s3(), .gcs() or .azure()');
  }
  if (typeof repository._bind !== 'function') {
    throw propError(scope, prop, repository.type, 'is a BackupRepository without the internal _bind() of the library\'s types (a subclass of another language)',
      'make it with BackupRepository.volume(), .s3(), .gcs() or .azure()');
  }
  const common = repository._options ?? {};
  const retentionFull = requireInteger(scope, `${prop}.retentionFull`, common.retentionFull ?? 2, 1, 9999999);
  const schedules = resolveSchedules(scope, `${prop}.schedule`, common.schedule ?? DEFAULT_SCHEDULE, index, clusterName);
  const suspendedFull = schedules.some((schedule) => schedule.type === BackupType.FULL)
    ? undefined : { cronJobName: cronJobName(clusterName, index, BackupType.FULL), cron: DEFAULT_SCHEDULE.full! };
  return { index, retentionFull, schedules, suspendedFull, ...repository._bind(scope, { prop, index, clusterName, repoHostPod }) };
}

const cronJobName = (clusterName: string, index: number, type: BackupType) => `${clusterName}-backup-repo${index}-${type}`;

function resolveSchedules(scope: IConstruct, prop: string, schedule: BackupSchedule, index: number, clusterName: string): ScheduleModel[] {
  const schedules: ScheduleModel[] = [];
  for (const { prop: typeProp, type } of TYPE_PROPS) {
    const cron = schedule[typeProp];
    if (cron === undefined) continue;
    validateCron(scope, `${prop}.${typeProp}`, cron);
    const same = schedules.find((other) => other.cron.trim().split(/\s+/).join(' ') === cron.trim().split(/\s+/).join(' '));
    if (same) {
      throw propError(scope, `${prop}.${typeProp}`, cron, `is also the ${same.type} schedule of the repository, and two backups of one repository must not run at once`,
        'give each backup type of a repository its own time');
    }
    const maxIntervalSeconds = cronMaxIntervalSeconds(cron);
    if (maxIntervalSeconds === undefined) {
      throw propError(scope, `${prop}.${typeProp}`, cron, 'matches no day of the calendar, so its CronJob would never run',
        'pick a day of month that each month named has, such as "0 1 28 2 *" rather than "0 1 30 2 *"');
    }
    schedules.push({ type, cron: cron.trim().split(/\s+/).join(' '), cronJobName: cronJobName(clusterName, index, type), maxIntervalSeconds });
  }
  return schedules;
}

/** Throws unless `cron` is a five-field cron schedule with values in range. */
export function validateCron(scope: IConstruct, prop: string, cron: string): void {
  const fail = (problem: string): Error => propError(scope, prop, cron, problem,
    'write five fields: minute hour day-of-month month day-of-week, such as "0 1 * * 0" (Sundays at 01:00)');
  if (typeof cron !== 'string') throw fail('is not a string');
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) throw fail(`has ${cron.trim() === '' ? 0 : fields.length} fields, not 5`);
  fields.forEach((field, position) => {
    const spec = SCHEDULE_FIELDS[position];
    const value = (text: string): number => {
      const named = spec.names?.indexOf(text.toLowerCase()) ?? -1;
      if (named >= 0) return named + (spec.name === 'month' ? 1 : 0);
      if (!/^\d{1,2}$/.test(text)) throw fail(`has "${text}" in its ${spec.name} field`);
      const number = Number(text);
      if (number < spec.min || number > spec.max) throw fail(`has ${number} in its ${spec.name} field, outside ${spec.min}-${spec.max}`);
      return number;
    };
    for (const item of field.split(',')) {
      const [range, step, extra] = item.split('/');
      if (extra !== undefined || (step !== undefined && !/^\d{1,2}$/.test(step)) || step === '0') throw fail(`has a bad step in "${item}"`);
      if (range === '*' || (range === '?' && position >= 2)) continue;
      const [from, to, more] = range.split('-');
      if (more !== undefined) throw fail(`has a bad range "${range}"`);
      const low = value(from);
      if (to !== undefined && value(to) < low) throw fail(`has a backwards range "${range}"`);
    }
  });
}

function resolveRestore(scope: IConstruct, options: BackupOptions, repositories: number): RestoreModel | undefined {
  const restore = options.restore;
  if (restore === undefined) return undefined;
  const repository = requireInteger(scope, 'backup.restore.repository', restore.repository ?? 1, 1, repositories);
  if (restore.targetTime === undefined) {
    if (restore.targetTimeline !== undefined) {
      throw propError(scope, 'backup.restore.targetTimeline', restore.targetTimeline, 'is set without targetTime',
        'set backup.restore.targetTime too, or drop targetTimeline (a restore to the latest point follows the latest timeline)');
    }
    return { repository };
  }
  const targetTimeline = restore.targetTimeline ?? 'current';
  if (!/^(current|latest|[1-9][0-9]{0,8})$/.test(targetTimeline)) {
    throw propError(scope, 'backup.restore.targetTimeline', targetTimeline, 'is not a timeline', 'use "current", "latest" or a timeline number such as "2"');
  }
  return { repository, targetTime: normalizeTargetTime(scope, 'backup.restore.targetTime', restore.targetTime), targetTimeline };
}

/**
 * An ISO 8601 time with a zone, in the form pgBackRest 2.45 parses to pick a backup set
 * (`YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM`; it refuses `T` and `Z`) and PostgreSQL reads too.
 */
export function normalizeTargetTime(scope: IConstruct, prop: string, time: string): string {
  const fix = 'write an ISO 8601 time with a zone, such as "2025-03-01T12:00:00Z" or "2025-03-01 13:00:00+01:00"';
  const match = typeof time === 'string' ? ISO_TIME.exec(time) : null;
  if (!match) throw propError(scope, prop, time, 'is not an ISO 8601 time with a time zone', fix);
  const [, year, month, day, hour, minute, second, fraction = '', zone] = match;
  const offset = zone === 'Z' ? '+00:00' : `${zone.slice(0, 3)}:${zone.slice(3).replace(':', '') || '00'}`;
  const offsetMinutes = (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)));
  const valid = date.getUTCFullYear() === Number(year) && date.getUTCMonth() === Number(month) - 1 && date.getUTCDate() === Number(day)
    && date.getUTCHours() === Number(hour) && date.getUTCMinutes() === Number(minute) && date.getUTCSeconds() === Number(second)
    && Number(offset.slice(4, 6)) < 60 && offsetMinutes >= -12 * 60 && offsetMinutes <= 14 * 60;
  if (!valid) throw propError(scope, prop, time, 'is not a real time (a date, hour or zone offset out of range)', fix);
  return `${year}-${month}-${day} ${hour}:${minute}:${second}${fraction}${offset}`;
}

