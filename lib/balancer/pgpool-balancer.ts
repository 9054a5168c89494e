import { Chart } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import { BALANCER_FILES, PCP_PORT, PGPOOL_PORT } from './balancer-layout';
import { balancerEnvironment, balancerPodSpec } from './balancer-pod';
import { renderConfigScript, renderPasswordsScript, renderPgpoolConf, renderPoolHbaConf } from './pgpool-conf';
import { BalancerModel, EXPORTER_PREFIX, PgpoolUserModel, resolveBalancerModel } from './pgpool-model';
import { PgpoolBalancerProps } from './pgpool-props';
import { PgpoolConfigMode } from './pgpool-settings';
import { ConnectionDemand } from '../core/connection-budget';
import { PostgresCredentials, refuseSuperuserLogins, requireOwnSecret } from '../core/credentials';
import { IPostgresEndpoint } from '../core/endpoint';
import { EndpointBindOptions, EndpointBinding } from '../core/endpoint-binding';
import { k8s } from '../core/kube';
import { selectorLabels } from '../core/labels';
import { ExporterKind, IMonitorable, MonitoringProfile } from '../core/monitoring';
import { serviceHost } from '../core/names';
import { componentPeer, NetworkAccess, NetworkPeer } from '../core/network-policy';
import { PasswordLookup } from '../core/password-lookup';
import { proxyMonitoringProfile, renderProxyDeployment } from '../core/proxy-deployment';
import { Sidecar, SidecarSet } from '../core/sidecars';
import { CertificateAuthority } from '../core/tls';
import { validateUniqueNames } from '../core/unique-names';

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
  /** Whether the balancer takes TLS connections: unless `tls.disabled`. */
  public readonly encrypted: boolean;
  /** With a tls Secret, its CA: a pooler in front verifies the balancer with it; none for a self-signed certificate. */
  public readonly certificateAuthority?: CertificateAuthority;
  /** The host names the balancer's certificate must name: its Service in short and qualified forms. */
  public readonly certificateDnsNames: string[];

  private readonly sidecars = new SidecarSet(this);
  private readonly network: NetworkAccess;
  /** Metrics exporters' users, granted after the balancer was built (prefixes `EXPORTER`, `EXPORTER1`, ...); they reach the renderers at synth. */
  private readonly exporterUsers: PgpoolUserModel[] = [];

  /**
   * @param scope the chart or construct to add the balancer to
   * @param id the construct id; also the default name, in kebab-case
   * @param props the balancer's props; `backend`, `users` and `srCheckUser` are required
   */
  constructor(scope: Construct, id: string, props: PgpoolBalancerProps) {
    super(scope, id);
    const model = resolveBalancerModel(this, id, props);
    refuseSuperuserLogins(this, props.backend.superuserCredentials, [
      ...props.users.map((user, i) => ({ prop: `users[${i}].credentials`, credentials: user.credentials })),
      { prop: 'srCheckUser', credentials: props.srCheckUser }, { prop: 'pcpUser', credentials: props.pcpUser },
    ], 'balancer');
    this.model = model;
    props.backend.bind(this, {
      // sr_check logs in to both Services; pg_monitor lets it read replication progress.
      roles: [{ credentials: props.srCheckUser, memberOf: ['pg_monitor'] }],
      connectionDemands: balancerDemands(this.node.path, model, props.backend.replicas > 0),
    });
    validateUniqueNames(this);
    this.name = model.name;
    this.readWriteHost = serviceHost(model.name, Chart.of(this).namespace);
    this.readOnlyHost = this.readWriteHost;
    this.superuserCredentials = props.backend.superuserCredentials;
    this.backend = props.backend;
    this.connectionsPerBackend = model.connectionsPerBackend;
    this.certificateDnsNames = [...model.certificateDnsNames];
    this.encrypted = model.tls !== undefined;
    this.certificateAuthority = model.tls?.authority;

    const files = (): { [file: string]: string } => ({
      [BALANCER_FILES.poolHbaConf]: renderPoolHbaConf(model, this.exporterUsers),
      [BALANCER_FILES.loginsScript]: renderPasswordsScript(model, this.exporterUsers),
      ...(model.configMode === PgpoolConfigMode.CONFIG_MAP
        ? { [BALANCER_FILES.pgpoolConf]: renderPgpoolConf(model), [BALANCER_FILES.configScript]: renderConfigScript(model) }
        : {}),
    });
    this.network = renderProxyDeployment(this, {
      name: model.name,
      replicas: model.replicas,
      labels: model.componentLabels,
      user: model.user,
      files,
      checksumInputs: () => ({ env: JSON.stringify(balancerEnvironment(model)) }),
      servicePorts: [
        { name: 'postgres', port: PGPOOL_PORT, targetPort: k8s.IntOrString.fromString('pgpool'), protocol: 'TCP' },
        ...(model.exposePcp ? [{ name: 'pcp', port: PCP_PORT, targetPort: k8s.IntOrString.fromString('pcp'), protocol: 'TCP' }] : []),
      ],
      podSpec: () => balancerPodSpec(model, this.exporterUsers),
      sidecars: this.sidecars,
      daemonPorts: [PGPOOL_PORT, ...(model.exposePcp ? [PCP_PORT] : [])],
      backend: props.backend,
      networkPolicy: props.networkPolicy,
      tls: model.tls,
      certificateDnsNames: model.certificateDnsNames,
    });
    // PCP listens in every pod, on localhost unless exposed, where no container port declares it.
    this.sidecars.reserveListeningPorts([PCP_PORT]);
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
    const logins = [...model.users, model.srCheckUser, ...this.exporterUsers].map((user) => user.credentials);
    const resolved = requireOwnSecret(this, 'grantMetricsAccess(credentials)', credentials,
      [...logins, model.pcpUser, this.backend.superuserCredentials], 'balancer');
    const index = this.exporterUsers.length;
    this.exporterUsers.push({ envPrefix: `${EXPORTER_PREFIX}${index === 0 ? '' : index}`, credentials: resolved });
    this.backend.bind(this, { roles: [{ credentials: resolved, ownSecret: true }] });
  }
}

/**
 * What each pod opens on each backend Service (node 1 only with replicas): every child connects
 * to all backends at session start and caches up to maxPool connections to each; the sr_check
 * worker and the backend's health check process log in once per period each, concurrently with
 * the children. An exporter's SHOW commands run in a child, within its pool.
 */
function balancerDemands(consumer: string, model: BalancerModel, withReplicas: boolean): ConnectionDemand[] {
  const srChecks = model.parameters.some((parameter) => parameter.name === 'sr_check_period' && Number(parameter.value) > 0);
  const demand = (purpose: string, connections: number) => ({ consumer, purpose, primary: connections, replica: withReplicas ? connections : 0 });
  return [
    demand('child pools', model.connectionsPerBackend),
    ...(srChecks ? [demand('sr_check', model.replicas)] : []),
    ...(model.healthChecks ? [demand('health check', model.replicas)] : []),
  ];
}
