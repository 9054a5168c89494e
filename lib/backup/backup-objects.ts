import { posix } from 'path';
import { Construct, IConstruct } from 'constructs';
import { BACKUP_FILES, BACKUP_PATHS, RESTORE_ENVIRONMENT } from './backup-layout';
import { BackupModel, RepositoryModel } from './backup-model';
import { BackupType } from './backup-props';
import { renderBackupScript, renderRestoreScript, renderServerScript, renderStanzaUpgradeScript, RESTORE_SCRIPT_PATH } from './backup-scripts';
import { renderBackupConf, renderInstanceConf, renderRepoHostConf } from './pgbackrest-conf';
import { configChecksum } from '../core/checksum';
import { ClaimTemplate } from '../core/claim-template';
import { k8s } from '../core/kube';
import { metadataLabels, selectorLabels } from '../core/labels';
import { Connection, dnsResolvers, egressRules, NetworkAccess } from '../core/network-policy';
import { PodBase, restrictedContainer, restrictedPod } from '../core/pod-baseline';
import { PodVolume, volumeMount } from '../core/pod-volumes';
import { resourceRequirements } from '../core/resources';
import { envFromCredentials } from '../core/secret-env';
import { secretProjection } from '../core/secret-files';
import { serviceDnsNames, TLS_FILES } from '../core/tls';
import { objectMeta, tokenlessServiceAccount } from '../core/workload';

/** A postgresql.conf parameter, in the shape of the cluster model's `Parameter`. */
export interface BackupParameter {
  readonly name: string;
  readonly value: string | number | boolean;
}

/** What the instance pods of a cluster with backups carry besides PostgreSQL. */
export interface InstancePodAdditions {
  /** Volumes to add to the pod: the pgBackRest ConfigMap, the lock-path emptyDir, what the repositories local to it add (S3 CAs). */
  readonly volumes: k8s.Volume[];
  /** Mounts of the postgres container, where archive_command runs. */
  readonly postgresMounts: k8s.VolumeMount[];
  /** Environment of the postgres container: the local repositories' secrets, such as S3 keys and cipher passphrases (secretKeyRefs). */
  readonly postgresEnv: k8s.EnvVar[];
  /** The pgBackRest TLS server, which the backup jobs reach the instance through. */
  readonly sidecars: k8s.Container[];
  /** A checksum of the instance config (and restore script): a change rolls the pods. */
  readonly podAnnotations: { [key: string]: string };
  /**
   * With `restore`: what the container that bootstraps the primary needs to run restore.sh
   * instead of initdb (its command, the RESTORE_ENVIRONMENT and S3 secrets, its mounts
   * besides the data, WAL, config and TLS mounts the bootstrap already has).
   */
  readonly restore?: {
    readonly command: string[];
    readonly env: k8s.EnvVar[];
    readonly mounts: k8s.VolumeMount[];
  };
}

/** NetworkPolicy rules the cluster's own policy needs for backups. */
export interface BackupNetworkRules {
  /** Ingress to the instances: the backup jobs to the server sidecar's port (`peerIngress`). */
  readonly ingress: Connection[];
  /** Egress from the instances: the repository host's server, S3 endpoints (`egress`). */
  readonly egress: Connection[];
}

const VOLUMES = {
  config: 'pgbackrest-config', lock: 'pgbackrest-lock', tls: 'pgbackrest-tls', secrets: 'pgbackrest-secrets', auth: 'pgbackrest-auth',
} as const;
/** pgBackRest's lock path: a small in-memory emptyDir in every pod that runs it. */
const LOCK_VOLUME = PodVolume.memory(VOLUMES.lock, '1Mi');
/** The repositories the instances reach locally: every one that does not live on the repository host. */
const instanceLocal = (model: BackupModel) => model.repositories.filter((repository) => !repository.repoHost);

/**
 * archive_mode, archive_command and archive_timeout: every WAL segment goes to every repository;
 * restore_command: a replica (only recovery reads it) fetches from them the WAL its primary no
 * longer has, with the same config and credentials as archive-push.
 */
export function backupParameters(model: BackupModel): BackupParameter[] {
  const pgbackrest = `pgbackrest --config=${BACKUP_PATHS.configDir}/${BACKUP_FILES.instanceConf} --stanza=${model.stanza}`;
  return [
    { name: 'archive_mode', value: true },
    { name: 'archive_command', value: `${pgbackrest} archive-push %p` },
    { name: 'archive_timeout', value: model.archiveTimeoutSeconds },
    { name: 'restore_command', value: `${pgbackrest} archive-get %f "%p"` },
  ];
}

/** The instance pods' volumes, mounts, environment and server sidecar. */
export function instancePodAdditions(model: BackupModel): InstancePodAdditions {
  const cluster = model.cluster;
  const instanceConf = `${BACKUP_PATHS.configDir}/${BACKUP_FILES.instanceConf}`;
  const local = instanceLocal(model);
  const config = PodVolume.configMap(VOLUMES.config, model.objectNames.config, {
    files: [
      { key: BACKUP_FILES.instanceConf, path: BACKUP_FILES.instanceConf },
      { key: BACKUP_FILES.serverScript, path: BACKUP_FILES.serverScript, mode: 0o555 },
      ...(model.restore ? [{ key: BACKUP_FILES.restoreScript, path: BACKUP_FILES.restoreScript, mode: 0o555 }] : []),
    ],
  });
  const pgbackrestMounts = [
    config.readOnlyMount(BACKUP_PATHS.configDir), LOCK_VOLUME.mount(BACKUP_PATHS.lockDir), ...local.flatMap((repository) => repository.access.mounts),
  ];
  const repositoryEnv = local.flatMap((repository) => repository.access.env);
  const secrets = PodVolume.projected(VOLUMES.secrets, [secretProjection('superuser', cluster.superuser)]);
  const auth = PodVolume.memory(VOLUMES.auth, '1Mi');
  const sidecar = restrictedContainer({
    name: 'pgbackrest',
    image: model.image,
    command: [`${BACKUP_PATHS.configDir}/${BACKUP_FILES.serverScript}`],
    ports: [{ name: 'pgbackrest', containerPort: model.serverPort, protocol: 'TCP' }],
    // The remote the server forks for a backup logs in to PostgreSQL over the socket as the
    // superuser; pgBackRest reads pg1-user from the environment, libpq the password from the
    // passfile server.sh writes.
    // The remote the server forks reads instance.conf and checks every option its command
    // requires, the local repositories' too: an S3 repository's keys (and cipher passphrase) must
    // be set, though the remote never reaches the store (the backup job writes the repository).
    env: [
      envFromCredentials('PGBACKREST_PG1_USER', cluster.superuser, 'username'),
      { name: 'CREDENTIALS_DIR', value: BACKUP_PATHS.secretsDir },
      { name: 'PGPASSFILE', value: BACKUP_PATHS.passfile },
      ...repositoryEnv,
    ],
    resources: resourceRequirements(model.resources),
    readinessProbe: serverProbe(instanceConf, 3),
    livenessProbe: serverProbe(instanceConf, 6),
    volumeMounts: [
      config.readOnlyMount(BACKUP_PATHS.configDir),
      LOCK_VOLUME.mount(BACKUP_PATHS.lockDir),
      secrets.readOnlyMount(BACKUP_PATHS.secretsDir),
      auth.mount(posix.dirname(BACKUP_PATHS.passfile)),
      ...cluster.sidecarMounts.map((mount) => volumeMount(mount.name, mount.mountPath,
        cluster.dataVolumeNames.includes(mount.name) || mount.mountPath === cluster.tlsDir)),
    ],
  });
  const files = {
    [BACKUP_FILES.instanceConf]: renderInstanceConf(model),
    [BACKUP_FILES.serverScript]: renderServerScript(model),
    ...(model.restore ? { [BACKUP_FILES.restoreScript]: renderRestoreScript(model) } : {}),
  };
  const restoreEnvironment: { [name in typeof RESTORE_ENVIRONMENT[number]]: string } = {
    PGDATA: cluster.pgdata,
    PG_WALDIR: cluster.walDir ?? '',
    CONFIG_FILE: cluster.configFile,
    PGBACKREST_CONFIG: instanceConf,
  };
  return {
    volumes: [config.volume, LOCK_VOLUME.volume, secrets.volume, auth.volume, ...local.flatMap((repository) => repository.access.volumes)],
    postgresMounts: pgbackrestMounts,
    postgresEnv: repositoryEnv,
    sidecars: [sidecar],
    podAnnotations: { 'checksum/pgbackrest': configChecksum(files) },
    ...(model.restore ? {
      restore: {
        command: [RESTORE_SCRIPT_PATH],
        env: [...RESTORE_ENVIRONMENT.map((name) => ({ name, value: restoreEnvironment[name] })), ...repositoryEnv],
        mounts: pgbackrestMounts,
      },
    } : {}),
  };
}

/** The names the cluster's certificate must add: the repository host pod's, in every form clients write. */
export function backupCertificateDnsNames(scope: IConstruct, model: BackupModel): string[] {
  return model.repoHostPodHost ? serviceDnsNames(scope, [], [model.objectNames.repoHost]) : [];
}

/** The rules the cluster's NetworkPolicy needs for the server sidecar and archive-push (the repository host, the local repositories' endpoints). */
export function backupNetworkRules(model: BackupModel): BackupNetworkRules {
  const namespace = model.namespace ? { namespace: model.namespace } : {};
  return {
    ingress: [{ peer: { ...namespace, podSelector: selectorLabels(model.backupLabels) }, port: model.serverPort }],
    egress: [
      ...(model.repoHostPodHost ? [{ peer: { ...namespace, podSelector: selectorLabels(model.repoHostLabels) }, port: model.serverPort }] : []),
      ...instanceLocal(model).flatMap((repository) => repository.egress),
    ],
  };
}

/**
 * The objects of the backups, under a child `Backup` of `scope`: the ConfigMap of configs and
 * scripts, a tokenless ServiceAccount, the repository host (StatefulSet, headless Service,
 * NetworkPolicy) when a repository lives on it (a volume repository), a CronJob per repository and
 * scheduled backup type, a suspended full one for on-demand backups where no full backup is
 * scheduled, during a major upgrade a stanza-upgrade Job per repository, and the jobs' NetworkPolicy.
 */
export function renderBackupObjects(scope: Construct, model: BackupModel): void {
  const root = new Construct(scope, 'Backup');
  const user = model.cluster.user;
  const files: { [file: string]: string } = {
    [BACKUP_FILES.instanceConf]: renderInstanceConf(model),
    ...(model.repoHostPodHost ? { [BACKUP_FILES.repoHostConf]: renderRepoHostConf(model) } : {}),
    ...Object.fromEntries(model.repositories.map((repository) => [BACKUP_FILES.backupConf(repository.index), renderBackupConf(model, repository)])),
    [BACKUP_FILES.backupScript]: renderBackupScript(model),
    [BACKUP_FILES.serverScript]: renderServerScript(model),
    ...(model.restore ? { [BACKUP_FILES.restoreScript]: renderRestoreScript(model) } : {}),
    ...(model.cluster.majorUpgradeTo ? { [BACKUP_FILES.stanzaUpgradeScript]: renderStanzaUpgradeScript(model) } : {}),
  };
  new k8s.KubeConfigMap(root, 'Config', { metadata: objectMeta(root, model.objectNames.config, model.backupLabels, user), data: files });
  tokenlessServiceAccount(root, model.objectNames.serviceAccount, model.backupLabels, user);
  if (model.repoHostPodHost) renderRepoHost(new Construct(root, 'RepoHost'), model, files[BACKUP_FILES.repoHostConf]);
  const jobs = new Construct(root, 'Jobs');
  for (const repository of model.repositories) {
    for (const schedule of repository.schedules) {
      renderCronJob(jobs, model, repository, schedule.type, schedule.cron, schedule.cronJobName, model.cluster.standby);
    }
    // Never run on its schedule; `kubectl create job --from=cronjob/<name>` runs it on demand.
    const suspended = repository.suspendedFull;
    if (suspended) renderCronJob(jobs, model, repository, BackupType.FULL, suspended.cron, suspended.cronJobName, true);
    if (model.cluster.majorUpgradeTo) renderStanzaUpgradeJob(jobs, model, repository, model.cluster.majorUpgradeTo);
  }
  if (model.cluster.networkPolicies) renderJobPolicy(jobs, model);
}

function renderRepoHost(scope: Construct, model: BackupModel, repoHostConf: string): void {
  const user = model.cluster.user;
  const labels = model.repoHostLabels;
  const name = model.objectNames.repoHost;
  const conf = `${BACKUP_PATHS.configDir}/${BACKUP_FILES.repoHostConf}`;
  const hosted = model.repositories.filter((repository) => repository.repoHost);
  const env = hosted.flatMap((repository) => repository.access.env);
  const config = configVolume(model, [BACKUP_FILES.repoHostConf]);
  const tls = tlsVolume(model);
  new k8s.KubeService(scope, 'Service', {
    metadata: objectMeta(scope, name, labels, user),
    spec: {
      clusterIp: 'None',
      publishNotReadyAddresses: true,
      selector: selectorLabels(labels),
      ports: [{ name: 'pgbackrest', port: model.serverPort, targetPort: k8s.IntOrString.fromString('pgbackrest'), protocol: 'TCP' }],
    },
  });
  new k8s.KubeStatefulSet(scope, 'StatefulSet', {
    metadata: objectMeta(scope, name, labels, user),
    spec: {
      serviceName: name,
      replicas: 1,
      selector: { matchLabels: selectorLabels(labels) },
      // Backups outlive the cluster: the claims stay when the StatefulSet goes.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      volumeClaimTemplates: hosted.flatMap((repository) => repository.repoHost!.claims.map((claim) => {
        const template = new ClaimTemplate(claim.name, selectorLabels(labels), claim.spec).template;
        return { metadata: template.metadata, spec: template.spec };
      })),
      template: {
        metadata: {
          labels: metadataLabels(labels, user.labels),
          annotations: { ...user.annotations, 'checksum/pgbackrest': configChecksum({ [BACKUP_FILES.repoHostConf]: repoHostConf }) },
        },
        spec: {
          ...podBasics(model),
          containers: [restrictedContainer({
            name: 'pgbackrest',
            image: model.image,
            command: ['pgbackrest', `--config=${conf}`, 'server'],
            ports: [{ name: 'pgbackrest', containerPort: model.serverPort, protocol: 'TCP' }],
            ...(env.length > 0 ? { env } : {}),
            resources: resourceRequirements(model.resources),
            readinessProbe: serverProbe(conf, 3),
            livenessProbe: serverProbe(conf, 6),
            volumeMounts: [
              config.readOnlyMount(BACKUP_PATHS.configDir),
              tls.readOnlyMount(BACKUP_PATHS.tlsDir),
              LOCK_VOLUME.mount(BACKUP_PATHS.lockDir),
              ...hosted.flatMap((repository) => repository.access.mounts),
            ],
          })],
          // The hosted repositories' own volumes are their claims.
          volumes: [config.volume, tls.volume, LOCK_VOLUME.volume],
        },
      },
    },
  });
  if (model.cluster.networkPolicies) {
    // Only the instances connect (archive-push, archive-get and restore), and the clones and standby
    // clusters of backup.repositoryClients; the host connects only where its repositories need to
    // (nowhere, for volume repositories).
    const namespace = model.namespace ? { namespace: model.namespace } : {};
    const clients = [{ ...namespace, podSelector: model.cluster.instanceSelector }, ...model.repositoryClients];
    new NetworkAccess(scope, { clients, ...(model.cluster.dnsResolvers ? { dnsResolvers: model.cluster.dnsResolvers } : {}) }, {
      name,
      labels,
      user,
      podSelector: selectorLabels(labels),
      daemonPorts: [model.serverPort],
      metricsPorts: () => [],
      egress: hosted.flatMap((repository) => repository.egress),
    });
  }
}

function renderCronJob(scope: Construct, model: BackupModel, repository: RepositoryModel, type: BackupType, cron: string, name: string,
  suspend = false): void {
  const labels = model.backupLabels;
  new k8s.KubeCronJob(scope, `Repo${repository.index}-${type}`, {
    metadata: objectMeta(scope, name, labels, model.cluster.user),
    spec: {
      schedule: cron,
      ...(suspend ? { suspend } : {}),
      concurrencyPolicy: 'Forbid',
      // A run missed by more than an hour (controller down, node drained) waits for the next one.
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: metadataLabels(labels, model.cluster.user.labels) },
        spec: jobSpec(model, repository, BACKUP_FILES.backupScript, type),
      },
    },
  });
}

/**
 * While a major upgrade is under way, a Job per repository `<name>-upgrade-repo<N>-<major>`
 * (a name per major, as a Job cannot be changed): stanza-upgrade.sh waits for the primary on the
 * new major, upgrades the stanza, checks archiving and takes a full backup.
 */
function renderStanzaUpgradeJob(scope: Construct, model: BackupModel, repository: RepositoryModel, major: number): void {
  new k8s.KubeJob(scope, `Repo${repository.index}-upgrade`, {
    metadata: objectMeta(scope, `${model.stanza}-upgrade-repo${repository.index}-${major}`, model.backupLabels, model.cluster.user),
    spec: {
      ...jobSpec(model, repository, BACKUP_FILES.stanzaUpgradeScript, String(major)),
      // The wait for the upgrade is the script's; a day bounds it.
      activeDeadlineSeconds: 86400,
    },
  });
}

/** A job of a repository running one of the ConfigMap's scripts with the repository's config: local to the repository, the instances remote. */
function jobSpec(model: BackupModel, repository: RepositoryModel, script: string, argument: string): k8s.JobSpec {
  const user = model.cluster.user;
  const labels = model.backupLabels;
  const access = repository.access;
  const config = configVolume(model, [BACKUP_FILES.backupConf(repository.index), script]);
  const tls = tlsVolume(model);
  const base = podBasics(model);
  return {
    backoffLimit: 2,
    template: {
      metadata: {
        labels: metadataLabels(labels, user.labels),
        ...(Object.keys(user.annotations).length > 0 ? { annotations: { ...user.annotations } } : {}),
      },
      spec: {
        ...base,
        restartPolicy: 'Never',
        // A repository on the repository host is on its claim, ReadWriteOnce: the job runs on the host's node (and the placement's nodes).
        ...(repository.repoHost ? {
          affinity: {
            ...base.affinity,
            podAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [{
                labelSelector: { matchLabels: selectorLabels(model.repoHostLabels) },
                topologyKey: 'kubernetes.io/hostname',
              }],
            },
          },
        } : {}),
        containers: [restrictedContainer({
          name: 'backup',
          image: model.image,
          command: [`${BACKUP_PATHS.configDir}/${script}`, String(repository.index), argument],
          ...(access.env.length > 0 ? { env: access.env } : {}),
          resources: resourceRequirements(model.resources),
          volumeMounts: [
            config.readOnlyMount(BACKUP_PATHS.configDir),
            tls.readOnlyMount(BACKUP_PATHS.tlsDir),
            LOCK_VOLUME.mount(BACKUP_PATHS.lockDir),
            ...access.mounts,
          ],
        })],
        volumes: [config.volume, tls.volume, LOCK_VOLUME.volume, ...access.volumes],
      },
    },
  };
}

/** The backup jobs take no connections; they reach the instances' servers, their repositories' endpoints (S3) and DNS. */
function renderJobPolicy(scope: Construct, model: BackupModel): void {
  const namespace = model.namespace ? { namespace: model.namespace } : {};
  new k8s.KubeNetworkPolicy(scope, 'NetworkPolicy', {
    metadata: objectMeta(scope, model.objectNames.backupPolicy, model.backupLabels, model.cluster.user),
    spec: {
      podSelector: { matchLabels: selectorLabels(model.backupLabels) },
      policyTypes: ['Ingress', 'Egress'],
      egress: egressRules(scope, 'backup', [
        { peer: { ...namespace, podSelector: model.cluster.instanceSelector }, port: model.serverPort },
        ...model.repositories.flatMap((repository) => repository.egress),
      ], dnsResolvers(scope, model.cluster.dnsResolvers)),
    },
  });
}

/** The backup pods' start: the pod kit's restricted baseline, as the cluster's uid, where the user places the cluster. */
function podBasics(model: BackupModel): PodBase {
  return restrictedPod({ serviceAccountName: model.objectNames.serviceAccount, uid: model.cluster.uid }, { placement: model.cluster.user.placement });
}

/** pgBackRest's aliveness check: a TLS handshake with the server, no authentication. */
function serverProbe(config: string, failureThreshold: number): k8s.Probe {
  return { exec: { command: ['pgbackrest', `--config=${config}`, 'server-ping', '127.0.0.1'] }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold };
}

/** Some files of the backup ConfigMap; scripts executable. */
function configVolume(model: BackupModel, files: string[]): PodVolume {
  return PodVolume.configMap(VOLUMES.config, model.objectNames.config, {
    files: files.map((file) => ({ key: file, path: file, ...(file.endsWith('.sh') ? { mode: 0o555 } : {}) })),
  });
}

/** The cluster's TLS Secret: root-owned, group-readable, as pgBackRest (like PostgreSQL) accepts a key. */
function tlsVolume(model: BackupModel): PodVolume {
  return PodVolume.secret(VOLUMES.tls, model.tlsSecretName, Object.values(TLS_FILES), 0o640);
}
