import { BALANCER_FILES, BALANCER_PATHS, PCP_PORT, PGPOOL_PORT } from './balancer-layout';
import { pgpoolParamsEnvironment } from './pgpool-conf';
import { BalancerModel, PgpoolUserModel } from './pgpool-model';
import { PgpoolConfigMode } from './pgpool-settings';
import { certificateVolume } from '../core/certificate-volume';
import { k8s } from '../core/kube';
import { selectorLabels } from '../core/labels';
import { restrictedContainer, restrictedPod } from '../core/pod-baseline';
import { PodVolume } from '../core/pod-volumes';
import { resourceRequirements } from '../core/resources';
import { credentialsEnv, envFromConfigMap, envFromCredentials } from '../core/secret-env';
import { secretFiles } from '../core/secret-files';
import { TLS_FILES } from '../core/tls';

/**
 * The image's environment: pool_passwd and pcp.conf inputs, and in environment mode the parameters.
 * @param exporterUsers the exporters' users, granted after the balancer was built
 */
export function balancerEnvironment(model: BalancerModel, exporterUsers: readonly PgpoolUserModel[]): k8s.EnvVar[] {
  const configMap = `${model.name}-config`;
  const srCheck = model.srCheckUser.credentials;
  return [
    { name: 'PGPOOL_ENABLE_POOL_PASSWD', value: 'true' },
    envFromConfigMap('PGPOOL_PASSWORD_ENCRYPTION_METHOD', configMap, BALANCER_FILES.passwordEncryptionMethod),
    envFromConfigMap('PGPOOL_SKIP_PASSWORD_ENCRYPTION', configMap, BALANCER_FILES.skipPasswordEncryption),
    ...[...model.users, model.srCheckUser, ...exporterUsers].flatMap((user) => credentialsEnv(`${user.envPrefix}_USERNAME`, `${user.envPrefix}_PASSWORD`, user.credentials)),
    ...(model.pcpUser ? credentialsEnv('PGPOOL_PCP_USER', 'PGPOOL_PCP_PASSWORD', model.pcpUser) : []),
    ...(model.configMode === PgpoolConfigMode.ENVIRONMENT ? [
      ...pgpoolParamsEnvironment(model),
      envFromCredentials('PGPOOL_PARAMS_SR_CHECK_USER', srCheck, 'username'),
      ...(model.healthChecks ? [envFromCredentials('PGPOOL_PARAMS_HEALTH_CHECK_USER', srCheck, 'username')] : []),
    ] : []),
  ];
}

/** A balancer pod's volumes, each declared once and mounted through its object. */
function balancerVolumes(model: BalancerModel) {
  const configMapMode = model.configMode === PgpoolConfigMode.CONFIG_MAP;
  // Only the files, not the image settings that share the ConfigMap for configMapKeyRef.
  const configFiles = (name: string, files: string[]) =>
    PodVolume.configMap(name, `${model.name}-config`, { files: files.map((file) => ({ key: file, path: file })) });
  const srCheck = model.srCheckUser.credentials;
  const authority = model.serverAuthority;
  return {
    /** Where the image reads pgpool.conf and pool_hba.conf: written by the init step, or the ConfigMap's pool_hba.conf. */
    config: configMapMode ? PodVolume.memory('config', '1Mi') : configFiles('config', [BALANCER_FILES.poolHbaConf]),
    /** The ConfigMap's files that the init step completes (ConfigMap mode). */
    template: configMapMode ? configFiles('template', [BALANCER_FILES.pgpoolConf, BALANCER_FILES.poolHbaConf, BALANCER_FILES.configScript]) : undefined,
    /** The sr_check user's name (ConfigMap mode, init step only). */
    secrets: configMapMode ? PodVolume.projected('secrets', [secretFiles(srCheck.secretName, [{ key: srCheck.usernameKey, path: 'srcheck/username' }])]) : undefined,
    tls: model.tls ? certificateVolume(model.tls, {
      volumeName: 'tls', secretKeys: [TLS_FILES.certificate, TLS_FILES.key], secretMode: 0o440,
      commonName: model.name, dnsNames: model.certificateDnsNames, resources: resourceRequirements(model.resources),
    }) : undefined,
    backendAuthority: authority
      ? PodVolume.projected('backend-ca', [secretFiles(authority.secretName, [{ key: authority.key, path: TLS_FILES.authority }])]) : undefined,
    /** The image's config directory, seeded with its own files: its entrypoint writes pool_passwd and pcp.conf there. */
    etc: PodVolume.memory('etc', '16Mi'),
    run: PodVolume.memory('run', '1Mi'),
    tmp: PodVolume.memory('tmp', '64Mi'),
  };
}

/**
 * The balancer's pod on the restricted baseline: init steps seed the image's config directory
 * and (ConfigMap mode) complete pgpool.conf, then Pgpool-II runs with the environment its image reads.
 * @param exporterUsers the exporters' users, granted after the balancer was built
 */
export function balancerPodSpec(model: BalancerModel, exporterUsers: readonly PgpoolUserModel[]): k8s.PodSpec {
  const volumes = balancerVolumes(model);
  const resources = resourceRequirements(model.resources);
  const tcp = { tcpSocket: { port: k8s.IntOrString.fromString('pgpool') } };
  const initContainer = (name: string, command: string[], volumeMounts: k8s.VolumeMount[], env: k8s.EnvVar[] = []): k8s.Container =>
    restrictedContainer({ name, image: model.image, command, env, resources, volumeMounts });
  return {
    ...restrictedPod({ serviceAccountName: model.name, uid: model.uid }, {
      placement: model.user.placement,
      spread: { selector: selectorLabels(model.componentLabels), spread: model.spread },
      terminationGracePeriodSeconds: 30,
    }),
    initContainers: [
      ...volumes.tls?.initContainers ?? [],
      // The image writes pool_passwd and pcp.conf next to its sample config: with a read-only
      // root filesystem that directory is an emptyDir, seeded with the image's own files.
      initContainer('seed-etc', ['cp', '-R', `${BALANCER_PATHS.imageEtcDir}/.`, '/seed/'], [volumes.etc.mount('/seed')]),
      ...(volumes.template && volumes.secrets ? [initContainer('config', ['/bin/sh', `${BALANCER_PATHS.templateDir}/${BALANCER_FILES.configScript}`], [
        volumes.template.readOnlyMount(BALANCER_PATHS.templateDir),
        volumes.config.mount(BALANCER_PATHS.configDir),
        volumes.secrets.readOnlyMount(BALANCER_PATHS.secretsDir),
      ], [
        { name: 'TEMPLATE_DIR', value: BALANCER_PATHS.templateDir },
        { name: 'CONFIG_DIR', value: BALANCER_PATHS.configDir },
        { name: 'CREDENTIALS_DIR', value: BALANCER_PATHS.secretsDir },
      ])] : []),
    ],
    containers: [restrictedContainer({
      name: 'pgpool',
      image: model.image,
      env: balancerEnvironment(model, exporterUsers),
      ports: [
        { name: 'pgpool', containerPort: PGPOOL_PORT, protocol: 'TCP' },
        ...(model.exposePcp ? [{ name: 'pcp', containerPort: PCP_PORT, protocol: 'TCP' }] : []),
      ],
      resources,
      // TCP checks log in to nothing; Pgpool-II's children take a connection only on login.
      startupProbe: { ...tcp, periodSeconds: 2, failureThreshold: 60 },
      readinessProbe: { ...tcp, periodSeconds: 5, failureThreshold: 2 },
      livenessProbe: { ...tcp, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
      // Services forget the pod before Pgpool-II's smart shutdown starts.
      lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
      volumeMounts: [
        volumes.config.mount(BALANCER_PATHS.configDir, model.configMode !== PgpoolConfigMode.CONFIG_MAP),
        ...(volumes.tls ? [volumes.tls.volume.readOnlyMount(BALANCER_PATHS.certificateDir)] : []),
        ...(volumes.backendAuthority ? [volumes.backendAuthority.readOnlyMount(BALANCER_PATHS.backendAuthorityDir)] : []),
        volumes.etc.mount(BALANCER_PATHS.imageEtcDir),
        volumes.run.mount(BALANCER_PATHS.runDir),
        volumes.tmp.mount('/tmp'),
      ],
    })],
    volumes: [volumes.config, volumes.template, volumes.secrets, volumes.tls?.volume, volumes.backendAuthority, volumes.etc, volumes.run, volumes.tmp]
      .flatMap((volume) => (volume ? [volume.volume] : [])),
  };
}
