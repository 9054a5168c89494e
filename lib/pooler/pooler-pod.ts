import { PGBOUNCER_LISTEN_PORT, PoolerModel } from './pgbouncer-model';
import { AUTH_USER_SECRET_DIR, POOLER_FILES, POOLER_PATHS, statsUserSecretDir, userSecretDir } from './pooler-layout';
import { DRAIN_ENVIRONMENT, USERLIST_ENVIRONMENT } from './pooler-scripts';
import { certificateVolume, CertificateVolume } from '../core/certificate-volume';
import { ResolvedCredentials } from '../core/credentials';
import { k8s } from '../core/kube';
import { selectorLabels } from '../core/labels';
import { restrictedContainer, restrictedPod } from '../core/pod-baseline';
import { PodVolume } from '../core/pod-volumes';
import { resourceRequirements } from '../core/resources';
import { literalEnv } from '../core/secret-env';
import { secretFiles, secretProjection } from '../core/secret-files';
import { TLS_FILES } from '../core/tls';

/** A pooler pod's volumes, each declared once and mounted through its object. */
interface PoolerVolumes {
  /** The ConfigMap: pgbouncer.ini and the scripts. */
  readonly config: PodVolume;
  /** The userlist's Secrets (init container only). */
  readonly secrets: PodVolume;
  /** userlist.txt and the included ini files, written by the init container. */
  readonly auth: PodVolume;
  /** The pidfile, the Unix socket and the drain marker. */
  readonly run: PodVolume;
  /** The certificate PgBouncer shows its clients, unless TLS is disabled. */
  readonly tls?: CertificateVolume;
  /** The CA that signs the backend's certificate, when it has one. */
  readonly serverAuthority?: PodVolume;
}

function poolerVolumes(model: PoolerModel, statsUserSecrets: readonly ResolvedCredentials[]): PoolerVolumes {
  const authority = model.serverAuthority;
  return {
    config: PodVolume.configMap('config', `${model.name}-config`),
    secrets: PodVolume.projected('secrets', [
      ...(model.authUser ? [secretProjection(AUTH_USER_SECRET_DIR, model.authUser)] : []),
      ...model.users.map((user, index) => secretProjection(userSecretDir(index), user)),
      ...statsUserSecrets.map((user, index) => secretProjection(statsUserSecretDir(index), user)),
    ]),
    auth: PodVolume.memory('auth', '1Mi'),
    run: PodVolume.memory('run', '1Mi'),
    ...(model.tls ? {
      tls: certificateVolume(model.tls, {
        volumeName: 'tls', secretKeys: [TLS_FILES.certificate, TLS_FILES.key], secretMode: 0o440,
        commonName: model.name, dnsNames: model.certificateDnsNames, resources: resourceRequirements(model.resources),
      }),
    } : {}),
    ...(authority ? {
      serverAuthority: PodVolume.projected('server-ca', [secretFiles(authority.secretName, [{ key: authority.key, path: TLS_FILES.authority }])]),
    } : {}),
  };
}

/**
 * The pooler's pod on the restricted baseline: an init container writes the userlist from the
 * Secrets (the props' users and the stats users added later), and PgBouncer runs from the
 * ConfigMap with a drain hook.
 * @param statsUserSecrets the stats users granted after the pooler was built, such as an exporter's
 */
export function poolerPodSpec(model: PoolerModel, statsUserSecrets: readonly ResolvedCredentials[]): k8s.PodSpec {
  const volumes = poolerVolumes(model, statsUserSecrets);
  const resources = resourceRequirements(model.resources);
  const tcp = { tcpSocket: { port: k8s.IntOrString.fromString('pgbouncer') } };
  const config = (file: string) => `${POOLER_PATHS.configDir}/${file}`;
  return {
    ...restrictedPod({ serviceAccountName: model.name, uid: model.uid }, {
      placement: model.user.placement,
      spread: { selector: selectorLabels(model.componentLabels), spread: model.spread },
      terminationGracePeriodSeconds: model.terminationGracePeriodSeconds,
    }),
    initContainers: [...volumes.tls?.initContainers ?? [], restrictedContainer({
      name: 'userlist',
      image: model.image,
      command: ['/bin/sh', config(POOLER_FILES.userlistScript)],
      env: literalEnv(USERLIST_ENVIRONMENT, { CREDENTIALS_DIR: POOLER_PATHS.secretsDir, AUTH_DIR: POOLER_PATHS.authDir }),
      resources,
      volumeMounts: [
        volumes.config.readOnlyMount(POOLER_PATHS.configDir),
        volumes.secrets.readOnlyMount(POOLER_PATHS.secretsDir),
        volumes.auth.mount(POOLER_PATHS.authDir),
      ],
    })],
    containers: [restrictedContainer({
      name: 'pgbouncer',
      image: model.image,
      command: ['/bin/sh', config(POOLER_FILES.startScript), config(POOLER_FILES.pgbouncerIni)],
      env: literalEnv(DRAIN_ENVIRONMENT, { PGBOUNCER_RUN_DIR: POOLER_PATHS.runDir, DRAIN_DELAY_SECONDS: String(model.drainDelaySeconds) }),
      ports: [{ name: 'pgbouncer', containerPort: PGBOUNCER_LISTEN_PORT, protocol: 'TCP' }],
      resources,
      // TCP checks never log in, so they take no client slot; readiness only asks whether the
      // pod is draining, and fails from the first moment of the preStop hook.
      startupProbe: { ...tcp, periodSeconds: 2, failureThreshold: 30 },
      livenessProbe: { ...tcp, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
      readinessProbe: { exec: { command: ['test', '!', '-e', POOLER_PATHS.drainMarker] }, periodSeconds: 2, failureThreshold: 1 },
      lifecycle: { preStop: { exec: { command: ['/bin/sh', config(POOLER_FILES.drainScript)] } } },
      volumeMounts: [
        volumes.config.readOnlyMount(POOLER_PATHS.configDir),
        volumes.auth.readOnlyMount(POOLER_PATHS.authDir),
        volumes.run.mount(POOLER_PATHS.runDir),
        ...(volumes.tls ? [volumes.tls.volume.readOnlyMount(POOLER_PATHS.clientTlsDir)] : []),
        ...(volumes.serverAuthority ? [volumes.serverAuthority.readOnlyMount(POOLER_PATHS.serverTlsDir)] : []),
      ],
    })],
    volumes: [volumes.config, volumes.secrets, volumes.auth, volumes.run, volumes.tls?.volume, volumes.serverAuthority]
      .flatMap((volume) => (volume ? [volume.volume] : [])),
  };
}
