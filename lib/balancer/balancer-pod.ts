import { BALANCER_FILES, BALANCER_PATHS, CREDENTIAL_DIRS, PCP_PORT, PGPOOL_PORT } from './balancer-layout';
import { pgpoolParamsEnvironment } from './pgpool-conf';
import { BalancerModel, PgpoolUserModel } from './pgpool-model';
import { PgpoolConfigMode } from './pgpool-settings';
import { certificateVolume } from '../core/certificate-volume';
import { k8s } from '../core/kube';
import { selectorLabels } from '../core/labels';
import { restrictedContainer, restrictedPod } from '../core/pod-baseline';
import { PodVolume } from '../core/pod-volumes';
import { resourceRequirements } from '../core/resources';
import { envFromCredentials } from '../core/secret-env';
import { secretFiles, secretProjection } from '../core/secret-files';
import { TLS_FILES } from '../core/tls';

/**
 * The image's environment: in environment mode the parameters. pool_passwd stays on, or the
 * entrypoint would append `ssl = 'on'` and make a certificate of its own; with no
 * `<PREFIX>_USERNAME` variables it registers nobody, so the logins init step's files stand.
 */
export function balancerEnvironment(model: BalancerModel): k8s.EnvVar[] {
  const srCheck = model.srCheckUser.credentials;
  return [
    { name: 'PGPOOL_ENABLE_POOL_PASSWD', value: 'true' },
    ...(model.configMode === PgpoolConfigMode.ENVIRONMENT ? [
      ...pgpoolParamsEnvironment(model),
      envFromCredentials('PGPOOL_PARAMS_SR_CHECK_USER', srCheck, 'username'),
      ...(model.healthChecks ? [envFromCredentials('PGPOOL_PARAMS_HEALTH_CHECK_USER', srCheck, 'username')] : []),
    ] : []),
  ];
}

/** Every login's Secret, for the logins init step: `<dir>/username` and `<dir>/password`. */
function credentialSources(model: BalancerModel, exporterUsers: readonly PgpoolUserModel[]): k8s.VolumeProjection[] {
  return [
    secretProjection(CREDENTIAL_DIRS.srCheck, model.srCheckUser.credentials),
    ...[...model.users, ...exporterUsers].map((user) => secretProjection(CREDENTIAL_DIRS.login(user.envPrefix), user.credentials)),
    ...(model.pcpUser ? [secretProjection(CREDENTIAL_DIRS.pcp, model.pcpUser)] : []),
  ];
}

/** A balancer pod's volumes, each declared once and mounted through its object. */
function balancerVolumes(model: BalancerModel, exporterUsers: readonly PgpoolUserModel[]) {
  const configMapMode = model.configMode === PgpoolConfigMode.CONFIG_MAP;
  // Each volume holds only the files its containers read.
  const configFiles = (name: string, files: string[]) =>
    PodVolume.configMap(name, `${model.name}-config`, { files: files.map((file) => ({ key: file, path: file })) });
  const authority = model.serverAuthority;
  const srCheck = model.srCheckUser.credentials;
  return {
    /** Where the image reads pgpool.conf and pool_hba.conf: written by the init step, or the ConfigMap's pool_hba.conf. */
    config: configMapMode ? PodVolume.memory('config', '1Mi') : configFiles('config', [BALANCER_FILES.poolHbaConf]),
    /** The ConfigMap's files that the init step completes (ConfigMap mode). */
    template: configMapMode ? configFiles('template', [BALANCER_FILES.pgpoolConf, BALANCER_FILES.poolHbaConf, BALANCER_FILES.configScript]) : undefined,
    /** The logins init step, which every mode runs. */
    scripts: configFiles('scripts', [BALANCER_FILES.loginsScript]),
    /** The logins' Secrets (the logins init step only). */
    secrets: PodVolume.projected('secrets', credentialSources(model, exporterUsers)),
    /** The sr_check user's name, at the same path (ConfigMap mode, the config init step only). */
    srCheckName: configMapMode ? PodVolume.projected('srcheck-name', [
      secretFiles(srCheck.secretName, [{ key: srCheck.usernameKey, path: `${CREDENTIAL_DIRS.srCheck}/username` }]),
    ]) : undefined,
    tls: model.tls ? certificateVolume(model.tls, {
      volumeName: 'tls', secretKeys: [TLS_FILES.certificate, TLS_FILES.key], secretMode: 0o440,
      commonName: model.name, dnsNames: model.certificateDnsNames, resources: resourceRequirements(model.resources),
    }) : undefined,
    backendAuthority: authority
      ? PodVolume.projected('backend-ca', [secretFiles(authority.secretName, [{ key: authority.key, path: TLS_FILES.authority }])]) : undefined,
    /** The image's config directory, seeded with its own files, where the logins init step writes pool_passwd and pcp.conf. */
    etc: PodVolume.memory('etc', '16Mi'),
    run: PodVolume.memory('run', '1Mi'),
    tmp: PodVolume.memory('tmp', '64Mi'),
  };
}

/**
 * The balancer's pod on the restricted baseline: init steps seed the image's config directory,
 * write pool_passwd (and pcp.conf) there from the Secrets, and (ConfigMap mode) complete
 * pgpool.conf; then Pgpool-II runs with the environment its image reads.
 * @param exporterUsers the exporters' users, granted after the balancer was built
 */
export function balancerPodSpec(model: BalancerModel, exporterUsers: readonly PgpoolUserModel[]): k8s.PodSpec {
  const volumes = balancerVolumes(model, exporterUsers);
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
      // Pgpool-II reads pool_passwd and pcp.conf next to the image's sample config: with a
      // read-only root filesystem that directory is an emptyDir, seeded with the image's own files.
      initContainer('seed-etc', ['cp', '-R', `${BALANCER_PATHS.imageEtcDir}/.`, '/seed/'], [volumes.etc.mount('/seed')]),
      initContainer('logins', ['/bin/sh', `${BALANCER_PATHS.scriptsDir}/${BALANCER_FILES.loginsScript}`], [
        volumes.scripts.readOnlyMount(BALANCER_PATHS.scriptsDir),
        volumes.secrets.readOnlyMount(BALANCER_PATHS.secretsDir),
        volumes.etc.mount(BALANCER_PATHS.imageEtcDir),
      ], [
        { name: 'CREDENTIALS_DIR', value: BALANCER_PATHS.secretsDir },
        { name: 'ETC_DIR', value: BALANCER_PATHS.imageEtcDir },
      ]),
      ...(volumes.template && volumes.srCheckName ? [initContainer('config', ['/bin/sh', `${BALANCER_PATHS.templateDir}/${BALANCER_FILES.configScript}`], [
        volumes.template.readOnlyMount(BALANCER_PATHS.templateDir),
        volumes.config.mount(BALANCER_PATHS.configDir),
        volumes.srCheckName.readOnlyMount(BALANCER_PATHS.secretsDir),
      ], [
        { name: 'TEMPLATE_DIR', value: BALANCER_PATHS.templateDir },
        { name: 'CONFIG_DIR', value: BALANCER_PATHS.configDir },
        { name: 'CREDENTIALS_DIR', value: BALANCER_PATHS.secretsDir },
      ])] : []),
    ],
    containers: [restrictedContainer({
      name: 'pgpool',
      image: model.image,
      env: balancerEnvironment(model),
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
    volumes: [volumes.config, volumes.template, volumes.scripts, volumes.secrets, volumes.srCheckName, volumes.tls?.volume, volumes.backendAuthority,
      volumes.etc, volumes.run, volumes.tmp].flatMap((volume) => (volume ? [volume.volume] : [])),
  };
}
