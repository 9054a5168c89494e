import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { renderPgBouncerIni } from './pgbouncer-ini';
import { PGBOUNCER_LISTEN_PORT, PoolerModel, resolvePoolerModel } from './pgbouncer-model';
import { PgBouncerPoolerProps } from './pgbouncer-props';
import { POOLER_FILES } from './pooler-layout';
import { poolerPodSpec } from './pooler-pod';
import { renderDrainScript, renderStartScript, renderUserlistScript } from './pooler-scripts';
import { PostgresCredentials, refuseSuperuserLogins, requireOwnSecret, ResolvedCredentials } from '../core/credentials';
import { EndpointRole, IPostgresEndpoint } from '../core/endpoint';
import { propError } from '../core/errors';
import { k8s } from '../core/kube';
import { ExporterKind, IMonitorable, MonitoringProfile } from '../core/monitoring';
import { serviceHost } from '../core/names';
import { PasswordLookup } from '../core/password-lookup';
import { proxyMonitoringProfile, renderProxyDeployment } from '../core/proxy-deployment';
import { Sidecar, SidecarSet } from '../core/sidecars';
import { CertificateAuthority } from '../core/tls';
import { validateUniqueNames } from '../core/unique-names';

/** The startup parameter Go's lib/pq, which the exporters use, sends at every login. */
const EXPORTER_STARTUP_PARAMETER = 'extra_float_digits';

/**
 * PgBouncer in front of a PostgreSQL cluster: a Deployment of poolers behind a Service, so
 * hundreds of clients share a few server connections.
 *
 * Clients log in with SCRAM: their passwords are looked up in the backend through `authUser`
 * (a backend that can, such as a PostgresStatefulCluster, installs the lookup function when the
 * pooler binds to it), or come from the Secrets of `users`. The userlist is built at pod start in an in-memory volume.
 */
export class PgBouncerPooler extends Construct implements IMonitorable {
  /** Name of the Deployment, the Service and the rest. */
  public readonly name: string;
  /** DNS name of the pooler's Service. */
  public readonly host: string;
  /** Whether the pooler takes TLS connections: unless `tls.disabled`. */
  public readonly encrypted: boolean;
  /** With a tls Secret, its CA, which clients verify the pooler's certificate with; none for a self-signed certificate. */
  public readonly certificateAuthority?: CertificateAuthority;
  /** The host names the pooler's certificate must name: its Service in short and qualified forms. */
  public readonly certificateDnsNames: string[];
  /** Port of the pooler's Service. */
  public readonly port: number;
  /** The cluster the pools connect to. */
  public readonly backend: IPostgresEndpoint;
  /**
   * Server connections all pods may open to the backend: replicas x, in each database, a pool of
   * pool size for each user and for the roles auth_query looks up (authQueryRoles), the auth
   * user's own pool (auth_query runs through it), and reserve_pool_size for each of these pools;
   * capped by maxDbConnections and maxUserConnections.
   */
  public readonly serverConnectionDemand: number;

  private readonly model: PoolerModel;
  private readonly sidecars = new SidecarSet(this);
  /** Roles granted stats access after the pooler was built (exporters'), which reach the renderers at synth. */
  private readonly statsUserSecrets: ResolvedCredentials[] = [];

  /**
   * @param scope the chart or construct to add the pooler to
   * @param id the construct id; also the default name, in kebab-case
   * @param props the pooler's props; `backend` and `authUser` or `users` are required
   */
  constructor(scope: Construct, id: string, props: PgBouncerPoolerProps) {
    super(scope, id);
    const model = resolvePoolerModel(this, id, props);
    refuseSuperuserLogins(this, props.backend.superuserCredentials,
      [{ prop: 'authUser', credentials: props.authUser }, ...(props.users ?? []).map((credentials, i) => ({ prop: `users[${i}]`, credentials }))], 'pooler');
    const withReplicas = props.backend.replicas > 0;
    const binding = props.backend.bind(this, {
      // The default auth_query calls the backend's lookup function; an explicit one is the user's.
      passwordLookupUser: props.authQuery === undefined ? model.authUser : undefined,
      connectionDemands: model.demandLines.map(({ purpose, byRole }) => ({
        consumer: this.node.path,
        purpose,
        // Without replicas the read-only Service is the primary's.
        primary: byRole[EndpointRole.READ_WRITE] + (withReplicas ? 0 : byRole[EndpointRole.READ_ONLY]),
        replica: withReplicas ? byRole[EndpointRole.READ_ONLY] : 0,
      })),
    });
    if (binding.passwordLookup === PasswordLookup.UNAVAILABLE && model.authUser && props.authQuery === undefined) {
      throw propError(this, 'authUser', props.authUser?.secretName,
        `looks passwords up with a function that its backend ${props.backend.node.path} cannot install`,
        `list the clients' Secrets in users instead, or ${binding.passwordLookupAlternative ?? 'set authQuery to a lookup the backend answers'}`);
    }
    this.model = model;
    validateUniqueNames(this);
    this.name = model.name;
    this.port = model.servicePort;
    this.backend = props.backend;
    this.serverConnectionDemand = model.serverConnectionDemand;
    this.host = serviceHost(model.name, Chart.of(this).namespace);
    this.certificateDnsNames = [...model.certificateDnsNames];
    this.encrypted = model.tls !== undefined;
    this.certificateAuthority = model.tls?.authority;

    // Rendered at synth: an exporter added later joins stats_users and the userlist.
    const files = (): { [file: string]: string } => ({
      [POOLER_FILES.pgbouncerIni]: renderPgBouncerIni(model, this.statsUserSecrets),
      [POOLER_FILES.userlistScript]: renderUserlistScript(model, this.statsUserSecrets),
      [POOLER_FILES.drainScript]: renderDrainScript(model),
      [POOLER_FILES.startScript]: renderStartScript(model),
    });
    renderProxyDeployment(this, {
      name: model.name,
      replicas: model.replicas,
      labels: model.componentLabels,
      user: model.user,
      files,
      servicePorts: [{ name: 'postgres', port: model.servicePort, targetPort: k8s.IntOrString.fromString('pgbouncer'), protocol: 'TCP' }],
      podSpec: () => poolerPodSpec(model, this.statsUserSecrets),
      sidecars: this.sidecars,
      daemonPorts: [PGBOUNCER_LISTEN_PORT],
      backend: props.backend,
      networkPolicy: props.networkPolicy,
      tls: model.tls,
      certificateDnsNames: model.certificateDnsNames,
    });
  }

  public get monitoringProfile(): MonitoringProfile {
    return proxyMonitoringProfile(this, this.model.componentLabels, {
      kind: ExporterKind.PGBOUNCER,
      daemonPort: PGBOUNCER_LISTEN_PORT,
      tlsRequired: this.model.tls?.required ?? false,
      connectionLimit: this.model.maxClientConn,
      clientWaitLimitSeconds: this.model.queryWaitTimeoutSeconds,
    });
  }

  /**
   * Runs a container beside PgBouncer in every pod; its Service port goes on the pooler's Service.
   * @param sidecar the container, its Service port and pod annotations
   */
  public addSidecar(sidecar: Sidecar): void {
    this.sidecars.add(sidecar);
  }

  /**
   * Adds the role of these credentials to the userlist and to stats_users, so it may read SHOW
   * POOLS, STATS and the like on the admin console, but not pause, kill or reload anything.
   * Exporters send extra_float_digits at login, so it must stay in ignoreStartupParameters.
   * @param credentials the exporter's own Secret, used for nothing else in the pooler
   */
  public grantMetricsAccess(credentials: PostgresCredentials): void {
    const model = this.model;
    const resolved = requireOwnSecret(this, 'grantMetricsAccess(credentials)', credentials,
      [model.authUser, ...model.users, ...this.statsUserSecrets, this.backend.superuserCredentials], 'pooler');
    if (!model.ignoreStartupParameters.includes(EXPORTER_STARTUP_PARAMETER)) {
      throw propError(this, 'ignoreStartupParameters', model.ignoreStartupParameters,
        `lacks ${EXPORTER_STARTUP_PARAMETER}, which exporters send at login, so PgBouncer would refuse them`,
        `add "${EXPORTER_STARTUP_PARAMETER}"`);
    }
    this.statsUserSecrets.push(resolved);
  }
}
