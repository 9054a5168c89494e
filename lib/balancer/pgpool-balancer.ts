import { Chart, Lazy } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { Construct, IConstruct } from 'constructs';
import { PostgresCredentials, ResolvedCredentials, requireOwnSecret } from '../core/credentials';
import { IPostgresEndpoint } from '../core/endpoint';
import { EndpointBindOptions, EndpointBinding } from '../core/endpoint-binding';
import { PasswordLookup } from '../core/password-lookup';
import { ExporterKind, IMonitorable, MonitoringProfile } from '../core/monitoring';
import { Sidecar, SidecarSet } from '../core/sidecars';
import { selectorLabels } from '../core/labels';
import { serviceHost } from '../core/names';
import { componentPeer, NetworkAccess, NetworkPeer } from '../core/network-policy';
import { resourceRequirements } from '../core/resources';
import { spreadOverNodes } from '../core/scheduling';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from '../core/security';
import { proxyMonitoringProfile, renderProxyDeployment } from '../core/proxy-deployment';
import { validateUniqueNames } from '../core/unique-names';
import { volumeMount } from '../core/workload';
import { CertificateAuthority, ResolvedTls, TLS_FILES } from '../core/tls';
import { BALANCER_FILES, BALANCER_PATHS, PCP_PORT, PGPOOL_PORT } from './balancer-layout';
import { pgpoolParamsEnvironment, renderConfigScript, renderPgpoolConf, renderPoolHbaConf } from './pgpool-conf';
import { BalancerModel, EXPORTER_PREFIX, resolveBalancerModel } from './pgpool-model';
import { PgpoolBalancerProps } from './pgpool-props';
import { PgpoolConfigMode } from './pgpool-settings';

/**
 * Pgpool-II in front of a cluster's primary and replica Services, as the Pgpool-II project's
 * guide for Kubernetes runs it: load balancing and connection pooling only, failover left to
 * Kubernetes. Writes go to the primary, reads spread over both Services by weight.
 *
 * It is itself an endpoint: a PgBouncerPooler can pool connections to it.
 */
export class PgpoolBalancer extends Construct implements IPostgresEndpoint, IMonitorable {
  /** Name of the Deployment, the Service and the rest. */
  public readonly name: string;
  /** The balancer's Service, for writes and reads alike. */
  public readonly readWriteHost: string;
  public readonly readOnlyHost: string;
  public readonly port: number = PGPOOL_PORT;
  /** 0: behind the one Service, Pgpool-II does the read balancing itself. */
  public readonly replicas: number = 0;
  public readonly superuserCredentials?: PostgresCredentials;
  /** The cluster Pgpool-II balances over. */
  public readonly backend: IPostgresEndpoint;
  /** Connections all pods may open to each backend Service: replicas x numInitChildren x maxPool. */
  public readonly connectionsPerBackend: number;

  private readonly model: BalancerModel;
  /** The balancer's pods, for the NetworkPolicies of the clients in front. */
  public readonly serverPods: NetworkPeer;
  /** With `tls`, the CA in the tls Secret: a pooler in front verifies the balancer with it. */
  public readonly certificateAuthority?: CertificateAuthority;
  /** The host names the balancer's certificate must name: its Service in short and qualified forms. */
  public readonly certificateDnsNames: string[];

  private readonly sidecars = new SidecarSet(this);
  private readonly network: NetworkAccess;

  /**
   * @param scope the chart or construct to add the balancer to
   * @param id the construct id; also the default name, in kebab-case
   * @param props the balancer's props; `backend`, `users` and `srCheckUser` are required
   */
  constructor(scope: Construct, id: string, props: PgpoolBalancerProps) {
    super(scope, id);
    const model = resolveBalancerModel(this, id, props);
    this.model = model;
    props.backend.bind(this, {
      // sr_check logs in to both Services; pg_monitor lets it read replication progress.
      roles: [{ credentials: props.srCheckUser, memberOf: ['pg_monitor'] }],
      // Each child may cache maxPool connections to each backend Service (node 1 only with replicas).
      connectionDemand: {
        consumer: this.node.path,
        primary: model.connectionsPerBackend,
        replica: props.backend.replicas > 0 ? model.connectionsPerBackend : 0,
      },
    });
    validateUniqueNames(this);
    this.name = model.name;
    this.readWriteHost = serviceHost(model.name, Chart.of(this).namespace);
    this.readOnlyHost = this.readWriteHost;
    this.superuserCredentials = props.backend.superuserCredentials;
    this.backend = props.backend;
    this.connectionsPerBackend = model.connectionsPerBackend;
    this.certificateDnsNames = [...model.certificateDnsNames];
    this.certificateAuthority = model.tls?.authority;

    const imageSettings = {
      [BALANCER_FILES.passwordEncryptionMethod]: model.passwordEncryption,
      [BALANCER_FILES.skipPasswordEncryption]: 'false',
    };
    const files = (): { [file: string]: string } => (model.configMode === PgpoolConfigMode.CONFIG_MAP
      ? {
        [BALANCER_FILES.pgpoolConf]: renderPgpoolConf(model),
        [BALANCER_FILES.poolHbaConf]: renderPoolHbaConf(model),
        [BALANCER_FILES.configScript]: renderConfigScript(model),
        ...imageSettings,
      }
      : { [BALANCER_FILES.poolHbaConf]: renderPoolHbaConf(model), ...imageSettings });
    this.network = renderProxyDeployment(this, {
      name: model.name,
      replicas: model.replicas,
      labels: model.componentLabels,
      user: model.user,
      files,
      checksumInputs: () => ({ env: JSON.stringify(this.environment()) }),
      servicePorts: [
        { name: 'postgres', port: PGPOOL_PORT, targetPort: k8s.IntOrString.fromString('pgpool'), protocol: 'TCP' },
        ...(model.exposePcp ? [{ name: 'pcp', port: PCP_PORT, targetPort: k8s.IntOrString.fromString('pcp'), protocol: 'TCP' }] : []),
      ],
      podSpec: this.podSpec(),
      sidecars: this.sidecars,
      daemonPorts: [PGPOOL_PORT, ...(model.exposePcp ? [PCP_PORT] : [])],
      backend: props.backend,
      networkPolicy: props.networkPolicy,
      tls: model.tls,
      certificateDnsNames: model.certificateDnsNames,
    });
    this.serverPods = componentPeer(this, selectorLabels(model.componentLabels));
  }

  /**
   * Admits these clients to Pgpool-II's ports in the balancer's NetworkPolicy; a pooler in
   * front calls it for its own pods.
   * @param peers the clients' pods or networks
   */
  public allowClients(...peers: NetworkPeer[]): void {
    this.network.allowClients('allowClients(peers)', peers);
  }

  /**
   * Records nothing of what a pooler in front asks: the balancer creates no roles (its logins
   * are its own `users`, in pool_passwd), checks no connection budget, and installs no password
   * lookup function (it has no databases of its own, and does not ask its backend for one).
   * @param _client the construct in front
   * @param _options what it asks for
   */
  public bind(_client: IConstruct, _options: EndpointBindOptions): EndpointBinding {
    return {
      rolesCreated: false,
      passwordLookup: PasswordLookup.UNAVAILABLE,
      passwordLookupAlternative: 'set authQuery with an auth user the balancer lists in its users',
      connectionDemandChecked: false,
    };
  }

  public get monitoringProfile(): MonitoringProfile {
    return proxyMonitoringProfile(this, this.model.componentLabels, {
      kind: ExporterKind.PGPOOL, daemonPort: PGPOOL_PORT, tlsRequired: this.model.tls?.required ?? false, connectionLimit: this.model.numInitChildren,
    });
  }

  /**
   * Runs a container beside Pgpool-II in every pod; its Service port goes on the balancer's Service.
   * @param sidecar the container, its Service port and pod annotations
   */
  public addSidecar(sidecar: Sidecar): void {
    this.sidecars.add(sidecar);
  }

  /**
   * Adds the role of these credentials to pool_passwd, so it may log in and run Pgpool-II's SHOW
   * commands. Pgpool-II logs it in to the backends too: the balancer binds it to its backend,
   * which creates it there if it creates roles (a PostgresStatefulCluster does), with no
   * privilege beyond LOGIN.
   * @param credentials the exporter's own Secret, used for nothing else in the balancer
   */
  public grantMetricsAccess(credentials: PostgresCredentials): void {
    const model = this.model;
    const logins = [...model.users, model.srCheckUser, ...model.exporterUsers].map((user) => user.credentials);
    const resolved = requireOwnSecret(this, 'grantMetricsAccess(credentials)', credentials,
      [...logins, model.pcpUser, this.backend.superuserCredentials], 'balancer');
    const index = model.exporterUsers.length;
    model.exporterUsers.push({ envPrefix: `${EXPORTER_PREFIX}${index === 0 ? '' : index}`, credentials: resolved });
    this.backend.bind(this, { roles: [{ credentials: resolved, ownSecret: true }] });
  }

  /** The image's environment: pool_passwd and pcp.conf inputs, and in environment mode the parameters. */
  private environment(): k8s.EnvVar[] {
    const model = this.model;
    const fromSecret = (name: string, credentials: ResolvedCredentials, key: 'usernameKey' | 'passwordKey'): k8s.EnvVar =>
      ({ name, valueFrom: { secretKeyRef: { name: credentials.secretName, key: credentials[key] } } });
    const userEnv = (prefix: string, credentials: ResolvedCredentials) =>
      [fromSecret(`${prefix}_USERNAME`, credentials, 'usernameKey'), fromSecret(`${prefix}_PASSWORD`, credentials, 'passwordKey')];
    const fromConfig = (name: string, key: string): k8s.EnvVar => ({ name, valueFrom: { configMapKeyRef: { name: `${model.name}-config`, key } } });
    const environmentMode = model.configMode === PgpoolConfigMode.ENVIRONMENT;
    return [
      { name: 'PGPOOL_ENABLE_POOL_PASSWD', value: 'true' },
      fromConfig('PGPOOL_PASSWORD_ENCRYPTION_METHOD', BALANCER_FILES.passwordEncryptionMethod),
      fromConfig('PGPOOL_SKIP_PASSWORD_ENCRYPTION', BALANCER_FILES.skipPasswordEncryption),
      ...[...model.users, model.srCheckUser, ...model.exporterUsers].flatMap((user) => userEnv(user.envPrefix, user.credentials)),
      ...(model.pcpUser ? [fromSecret('PGPOOL_PCP_USER', model.pcpUser, 'usernameKey'), fromSecret('PGPOOL_PCP_PASSWORD', model.pcpUser, 'passwordKey')] : []),
      ...(environmentMode ? [
        ...pgpoolParamsEnvironment(model),
        fromSecret('PGPOOL_PARAMS_SR_CHECK_USER', model.srCheckUser.credentials, 'usernameKey'),
        ...(model.healthChecks ? [fromSecret('PGPOOL_PARAMS_HEALTH_CHECK_USER', model.srCheckUser.credentials, 'usernameKey')] : []),
      ] : []),
    ];
  }

  /**
   * The files the image's entrypoint copies from /config/tls when tls.key and tls.crt are there,
   * and root.crt, which it always makes ssl_ca_cert: the backend's CA, or without one the
   * balancer's own (a missing root.crt turns Pgpool-II's TLS off altogether, for clients too).
   * Pgpool-II checks that the backend's certificate is signed by that CA, but not its host name.
   */
  private tlsSources(tls: ResolvedTls): k8s.VolumeProjection[] {
    const backendCa = this.model.serverAuthority;
    const rootCertificate = { key: (backendCa ?? tls.authority).key, path: BALANCER_FILES.backendAuthority };
    const certificate = [TLS_FILES.certificate, TLS_FILES.key].map((file) => ({ key: file, path: file }));
    return backendCa
      ? [{ secret: { name: tls.secretName, items: certificate } }, { secret: { name: backendCa.secretName, items: [rootCertificate] } }]
      : [{ secret: { name: tls.secretName, items: [...certificate, rootCertificate] } }];
  }

  private podSpec(): k8s.PodSpec {
    const model = this.model;
    const resources = resourceRequirements(model.resources);
    const configMapMode = model.configMode === PgpoolConfigMode.CONFIG_MAP;
    // Only the files, not the image settings that share the ConfigMap for configMapKeyRef.
    const configFiles = (files: string[]) =>
      ({ name: `${model.name}-config`, defaultMode: 0o444, items: files.map((file) => ({ key: file, path: file })) });
    const tcp = { tcpSocket: { port: k8s.IntOrString.fromString('pgpool') } };
    const emptyDir = (name: string, sizeLimit: string) => ({ name, emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString(sizeLimit) } });
    const initContainer = (name: string, command: string[], volumeMounts: k8s.VolumeMount[], env: k8s.EnvVar[] = []): k8s.Container => ({
      name, image: model.image, imagePullPolicy: 'IfNotPresent', command, env, resources,
      securityContext: restrictedContainerSecurityContext(), volumeMounts,
    });
    return {
      serviceAccountName: model.name,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: restrictedPodSecurityContext(model.uid, model.uid),
      terminationGracePeriodSeconds: 30,
      topologySpreadConstraints: spreadOverNodes(selectorLabels(model.componentLabels), model.spread),
      initContainers: [
        // The image writes pool_passwd and pcp.conf next to its sample config: with a read-only
        // root filesystem that directory is an emptyDir, seeded with the image's own files.
        initContainer('seed-etc', ['cp', '-R', `${BALANCER_PATHS.imageEtcDir}/.`, '/seed/'], [volumeMount('etc', '/seed')]),
        ...(configMapMode ? [initContainer('config', ['/bin/sh', `${BALANCER_PATHS.templateDir}/${BALANCER_FILES.configScript}`], [
          volumeMount('template', BALANCER_PATHS.templateDir, true),
          volumeMount('config', BALANCER_PATHS.configDir),
          volumeMount('secrets', BALANCER_PATHS.secretsDir, true),
        ], [
          { name: 'TEMPLATE_DIR', value: BALANCER_PATHS.templateDir },
          { name: 'CONFIG_DIR', value: BALANCER_PATHS.configDir },
          { name: 'CREDENTIALS_DIR', value: BALANCER_PATHS.secretsDir },
        ])] : []),
      ],
      containers: [{
        name: 'pgpool',
        image: model.image,
        imagePullPolicy: 'IfNotPresent',
        env: Lazy.any({ produce: () => this.environment() }),
        ports: [
          { name: 'pgpool', containerPort: PGPOOL_PORT, protocol: 'TCP' },
          { name: 'pcp', containerPort: PCP_PORT, protocol: 'TCP' },
        ],
        resources,
        securityContext: restrictedContainerSecurityContext(),
        // TCP checks log in to nothing; Pgpool-II's children take a connection only on login.
        startupProbe: { ...tcp, periodSeconds: 2, failureThreshold: 60 },
        readinessProbe: { ...tcp, periodSeconds: 5, failureThreshold: 2 },
        livenessProbe: { ...tcp, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
        // Services forget the pod before Pgpool-II's smart shutdown starts.
        lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
        volumeMounts: [
          volumeMount('config', BALANCER_PATHS.configDir, !configMapMode),
          ...(model.tls ? [volumeMount('tls', BALANCER_PATHS.tlsDir, true)] : []),
          volumeMount('etc', BALANCER_PATHS.imageEtcDir),
          volumeMount('image-tls', BALANCER_PATHS.imageTlsDir),
          volumeMount('run', BALANCER_PATHS.runDir),
          volumeMount('tmp', '/tmp'),
        ],
      }],
      volumes: [
        configMapMode
          ? emptyDir('config', '1Mi')
          : { name: 'config', configMap: configFiles([BALANCER_FILES.poolHbaConf]) },
        ...(configMapMode ? [
          { name: 'template', configMap: configFiles([BALANCER_FILES.pgpoolConf, BALANCER_FILES.poolHbaConf, BALANCER_FILES.configScript]) },
          { name: 'secrets', projected: { defaultMode: 0o440, sources: [{ secret: {
            name: model.srCheckUser.credentials.secretName, items: [{ key: model.srCheckUser.credentials.usernameKey, path: 'srcheck/username' }],
          } }] } },
        ] : []),
        ...(model.tls ? [{ name: 'tls', projected: { defaultMode: 0o440, sources: this.tlsSources(model.tls) } }] : []),
        emptyDir('etc', '16Mi'),
        emptyDir('image-tls', '1Mi'),
        emptyDir('run', '1Mi'),
        emptyDir('tmp', '64Mi'),
      ],
    };
  }
}
