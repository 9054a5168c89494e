import { posix } from 'path';
import { Chart, Lazy } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import { BOOTSTRAP_ENVIRONMENT, renderBootstrapScript } from './bootstrap-script';
import { clusterConnectionDemands } from './cluster-connections';
import { CLUSTER_FILES, CLUSTER_PATHS, PATRONI_ROLE_LABEL, PATRONI_SCOPE_LABEL } from './cluster-layout';
import { ClusterModel, resolveClusterModel } from './cluster-model';
import { MemoryCheck, PostgresStatefulClusterProps } from './cluster-props';
import { ProbeTiming } from './failover-profile';
import { logAnalysisContainers, renderPgBadgerReportScript } from './log-analysis-pod';
import { majorUpgradeInitContainers, OLD_BINARIES_VOLUME } from './major-upgrade-pod';
import { renderMajorUpgradeScript } from './major-upgrade-script';
import { patroniAccess } from './patroni-access';
import { renderPatroniConfig, renderPatroniDynamicConfig } from './patroni-config';
import { renderPatroniSettingsAgent } from './patroni-settings-agent';
import { PATRONI_SOURCE_SCRIPT, patroniStartSource, recoversBeforePatroni, renderPatroniSourceScript } from './patroni-source';
import { PATRONI_API_SECRET_DIR, PATRONI_START_ENVIRONMENT, renderPatroniStartScript } from './patroni-start-script';
import { renderPatroniUpgradeCoordinator } from './patroni-upgrade-coordinator';
import { patroniUpgradeInitContainers } from './patroni-upgrade-pod';
import { renderPatroniUpgradeScript } from './patroni-upgrade-script';
import { renderPgHbaConf, renderPgIdentConf } from './pg-hba-conf';
import { renderReplicaSlots, renderSettingsAgentScript, settingsAgentContainer } from './plain-settings-agent';
import { renderPostgresqlConf } from './postgresql-conf';
import { PrimaryRecovery } from './primary-recovery';
import { PROVISION_ENVIRONMENT, renderProvisionScript } from './provision-script';
import { Provisioning, ProvisioningModel, REPLICATION_SECRET_DIR } from './provisioning';
import { restartChecksum } from './restart-checksum';
import { fastStop, leaderHandoverHook, primaryStopHook } from './rollout-order';
import { renderSourceObjects, SourcePodAdditions } from './source-pod';
import { tablespaceClaims, tablespaceMounts } from './tablespaces';
import { backupNetworkRules, InstancePodAdditions, instancePodAdditions, renderBackupObjects } from '../backup/backup-objects';
import { certificateVolume, CertificateVolume } from '../core/certificate-volume';
import { ClaimTemplate, readWriteOnceClaimSpec } from '../core/claim-template';
import { ConnectionDemand, budgetTable, describeOverbooking, neededMaxConnections } from '../core/connection-budget';
import { PostgresCredentials } from '../core/credentials';
import { IPostgresEndpoint } from '../core/endpoint';
import { EndpointBindOptions, EndpointBinding, PostgresRole } from '../core/endpoint-binding';
import { k8s } from '../core/kube';
import { ComponentLabels, metadataLabels, selectorLabels } from '../core/labels';
import { ExporterKind, IMonitorable, MonitoringProfile } from '../core/monitoring';
import { componentPeer, NetworkAccess, NetworkPeer } from '../core/network-policy';
import { PASSWORD_LOOKUP_QUERY, PasswordLookup } from '../core/password-lookup';
import { restrictedContainer, restrictedPod } from '../core/pod-baseline';
import { PodVolume, volumeMount } from '../core/pod-volumes';
import { resourceRequirements } from '../core/resources';
import { secretFiles, secretProjection } from '../core/secret-files';
import { Sidecar, SidecarSet } from '../core/sidecars';
import { CertificateAuthority, renderCertificate, TLS_FILES } from '../core/tls';
import { validateUniqueNames } from '../core/unique-names';
import { addLibraryValidation } from '../core/validation-clock';
import { objectMeta, oneAtATimeDisruptionBudget, tokenlessServiceAccount } from '../core/workload';

type Role = 'primary' | 'replica';
/** The plain mode's pods are a primary or replicas; the HA mode's are members, any of which may lead. */
type PodKind = Role | 'member';

/**
 * A primary/replica PostgreSQL cluster on StatefulSets, without an operator.
 *
 * The primary StatefulSet (`<name>-primary`, one pod) bootstraps with initdb; the replica
 * StatefulSet (`<name>-replica`, `instances - 1` pods) clones from the primary with
 * pg_basebackup and streams through a slot per pod. Two StatefulSets give primary and replica
 * pods their own labels, so `<name>-rw` reaches only the primary and `<name>-ro` only replicas.
 * Failover is not automatic: a primary whose volume is lost refuses to start while its replicas
 * hold the cluster, and `primaryRecovery` rebuilds it from the most advanced one.
 *
 * With `highAvailability`, one StatefulSet `<name>` runs Patroni in every pod instead: the pods
 * elect a leader through ConfigMaps, Patroni labels the leader `role: primary` and the others
 * `role: replica`, and the Services follow those labels through a failover.
 */
export class PostgresStatefulCluster extends Construct implements IPostgresEndpoint, IMonitorable {
  /** Base name of every object. */
  public readonly name: string;
  /** Number of instances, the primary included. */
  public readonly instances: number;
  public readonly readWriteHost: string;
  public readonly readOnlyHost: string;
  public readonly port: number;
  public readonly replicas: number;
  public readonly readOnlyApplicationName?: string;
  public readonly superuserCredentials?: PostgresCredentials;
  /** `max_connections`. */
  public readonly maxConnections: number;
  /** `superuser_reserved_connections`. */
  public readonly superuserReservedConnections: number;

  private readonly model: ClusterModel;
  private readonly provisioning: Provisioning;
  private readonly demands: ConnectionDemand[] = [];
  /** reserved_connections (PostgreSQL 16 and later), which the consumers' roles cannot take either. */
  private readonly reservedConnections: number;
  /** Every instance's pods, for the NetworkPolicies of clients. */
  public readonly serverPods: NetworkPeer;
  /** Whether the cluster takes TLS connections: unless `tls.disabled`. */
  public readonly encrypted: boolean;
  /** With a tls Secret, its CA: poolers and balancers in front verify with it; none for a self-signed certificate. */
  public readonly certificateAuthority?: CertificateAuthority;
  /**
   * The host names the server certificate must name: the Services in their short and qualified
   * forms, and every pod through the headless Service (replicas verify the primary's pod name).
   */
  public readonly certificateDnsNames: string[];

  private readonly sidecars = new SidecarSet(this);
  /** With `backup`: the pgBackRest config, server sidecar and restore hook of every instance pod. */
  private readonly backupAdditions?: InstancePodAdditions;
  /** With `clone` or `standby`: what the instance pods add to reach the source. */
  private readonly sourceAdditions: SourcePodAdditions;
  private readonly network: NetworkAccess;
  /** The instance pods' volumes but the claims, declared once and mounted through the same objects. */
  private readonly volumes: ClusterVolumes;
  /** Whether an exporter reads the instances over loopback, which pg_hba.conf then admits. */
  private monitored = false;
  private memoryWarned = false;

  /**
   * @param scope the chart or construct to add the cluster to
   * @param id the construct id; also the default name, in kebab-case
   * @param props the cluster's props; only the two Secrets are required
   */
  constructor(scope: Construct, id: string, props: PostgresStatefulClusterProps) {
    super(scope, id);
    const model = resolveClusterModel(this, id, props);
    this.model = model;
    this.backupAdditions = model.backup && instancePodAdditions(model.backup);
    this.sourceAdditions = renderSourceObjects(this, model);
    this.volumes = clusterVolumes(model);
    validateUniqueNames(this);
    this.demands.push(...clusterConnectionDemands(this.node.path, model));
    addLibraryValidation(this, () => this.validateConnectionBudget());
    addLibraryValidation(this, () => this.validateMemory());
    this.provisioning = new Provisioning(this, model.superuser, model.replication, model.databases, model.namedRoles,
      model.highAvailability !== undefined).withTablespaces(model.tablespaces);
    (props.roles ?? []).forEach((role, index) => this.provision(role, `roles[${index}]`));
    this.name = model.name;
    this.instances = model.instances;
    this.readWriteHost = model.readWriteHost;
    this.readOnlyHost = model.readOnlyHost;
    this.port = model.port;
    this.replicas = model.replicas;
    // The first replica's slot name; in HA mode any member may lead, so no name stays a replica's.
    if (!model.highAvailability && model.replicas > 0) this.readOnlyApplicationName = model.replicaApplicationNames[0];
    this.superuserCredentials = model.superuser;
    this.maxConnections = model.maxConnections;
    this.superuserReservedConnections = model.superuserReservedConnections;
    this.reservedConnections = model.reservedConnections;
    this.certificateDnsNames = [...model.certificateDnsNames];
    this.encrypted = model.tls !== undefined;
    if (model.tls) {
      this.certificateAuthority = model.tls.authority;
      renderCertificate(this, model.name, model.tls, model.certificateDnsNames, model.componentLabels('database'), model.user,
        model.backup?.cluster.certificateCommonName);
    }

    const ha = model.highAvailability;
    const databaseLabels = model.componentLabels('database');
    tokenlessServiceAccount(this, model.objectNames.serviceAccount, databaseLabels, model.user);
    if (ha) {
      patroniAccess(this, model.objectNames.patroniAccess, model.objectNames.serviceAccount, databaseLabels, model.user,
        { scope: model.name, podNames: model.podNames });
    }
    // Rendered at synth, after every construct of the app had its chance to add a role or a sidecar.
    new k8s.KubeConfigMap(this, 'Config', {
      metadata: this.metadata(model.objectNames.config, 'database'), data: Lazy.any({ produce: () => this.configFiles() }),
    });
    new k8s.KubeConfigMap(this, 'Scripts', {
      metadata: this.metadata(model.objectNames.scripts, 'database'), data: Lazy.any({ produce: () => this.scriptFiles(this.provisioning.model()) }),
    });

    this.service('Headless', model.objectNames.headless, undefined, true);
    this.service('ReadWrite', model.objectNames.readWrite, 'primary', false);
    if (ha) this.statefulSet('Members', 'member', model.instances);
    else this.statefulSet('Primary', 'primary', 1);
    if (model.replicas > 0) {
      this.service('ReadOnly', model.objectNames.readOnly, 'replica', false);
      if (!ha) this.statefulSet('Replica', 'replica', model.replicas);
    }
    if (model.instances >= 2) {
      // One budget over all instances: a drain never takes the primary and a replica at once.
      oneAtATimeDisruptionBudget(this, model.objectNames.disruptionBudget, model.componentLabels('database'), model.user, false);
    }

    if (model.backup) renderBackupObjects(this, model.backup);
    const backupRules = model.backup ? backupNetworkRules(model.backup) : { ingress: [], egress: [] };
    const instances = selectorLabels(model.componentLabels('database'), false);
    this.serverPods = componentPeer(this, instances);
    this.network = new NetworkAccess(this, props.networkPolicy, {
      name: model.name,
      labels: model.componentLabels('database'),
      user: model.user,
      podSelector: instances,
      daemonPorts: [model.port],
      metricsPorts: () => this.sidecars.containerPorts(),
      // Replicas stream from the primary, and clone it at their first start.
      egress: [
        { peer: this.serverPods, port: model.port },
        // Patroni members call each other's REST API, and keep their state in the API server.
        ...(ha ? [
          { peer: this.serverPods, port: ha.restApiPort },
          ...ha.apiServerCidrs.flatMap((cidr) => ha.apiServerPorts.map((port) => ({ peer: { cidr }, port }))),
        ] : []),
        // archive-push to the repository host and S3; the backup jobs come in to pgBackRest's server.
        ...backupRules.egress, ...this.sourceAdditions.egress,
      ],
      peerIngress: [...(ha ? [{ peer: this.serverPods, port: ha.restApiPort }] : []), ...backupRules.ingress,
        // The reports hold query texts: only the clients logAnalysis.server names.
        ...(model.logAnalysis?.server?.clients ?? []).map((peer) => ({ peer, port: model.logAnalysis!.server!.port }))],
    });
    this.network.allowClients('replication', [this.serverPods]);
  }

  /**
   * Admits these clients to PostgreSQL's port in the cluster's NetworkPolicy; poolers and
   * balancers in front call it for their own pods.
   * @param peers the clients' pods or networks
   */
  public allowClients(...peers: NetworkPeer[]): void {
    this.network.allowClients('allowClients(peers)', peers);
  }

  /**
   * Records server connections another construct may open here; synthesis fails when all of
   * them do not fit in max_connections - superuser_reserved_connections, on the primary or on a
   * replica. Poolers and balancers call this for their backend.
   * @param demand who asks, and for how many connections on the primary and on each replica
   */
  public addConnectionDemand(demand: ConnectionDemand): void {
    this.demands.push({ ...demand });
  }

  /**
   * The connection demands recorded so far, for tests.
   * @internal
   */
  public get _connectionDemands(): ConnectionDemand[] {
    return this.demands.map((demand) => ({ ...demand }));
  }

  /**
   * The connection budget as text: the limit, who asks for how many connections and the totals;
   * `examples/main.ts` writes it beside the manifests.
   */
  public connectionBudgetReport(): string {
    return `${this.node.path} (${this.name}): max_connections ${this.maxConnections} - ${this.reserves(' - ')} = ${this.available()} per instance\n`
      + `${budgetTable(this.demands, this.replicas)}\n`;
  }

  /** What max_connections leaves ordinary roles. */
  private available(): number {
    return this.maxConnections - this.superuserReservedConnections - this.reservedConnections;
  }

  /** superuser_reserved_connections, and reserved_connections when set, for messages. */
  private reserves(separator: string): string {
    const reserved = this.reservedConnections > 0 ? `${separator}reserved_connections ${this.reservedConnections}` : '';
    return `superuser_reserved_connections ${this.superuserReservedConnections}${reserved}`;
  }

  private validateConnectionBudget(): string[] {
    const limits = {
      maxConnections: this.maxConnections,
      superuserReservedConnections: this.superuserReservedConnections,
      reservedConnections: this.reservedConnections,
    };
    const table = describeOverbooking(this.demands, limits, this.replicas);
    if (!table) return [];
    return [`${this.node.path}: settings.maxConnections ${this.maxConnections} leaves ${this.available()} connections for ordinary roles `
      + `(${this.reserves(', ')}), fewer than its consumers may open:\n${table}\n`
      + `; raise settings.maxConnections to ${neededMaxConnections(this.demands, limits, this.replicas)} or more, `
      + 'or lower the consumers\' pool sizes (defaultPoolSize, maxDbConnections, replicas, numInitChildren x maxPool)'];
  }

  private validateMemory(): string[] {
    const overrun = this.model.memoryOverrun;
    if (!overrun) return [];
    const mib = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)}Mi`;
    const message = `${this.node.path}: shared_buffers + max_connections x work_mem is ${mib(overrun.estimateBytes)}, over resources.memoryLimit `
      + `${mib(overrun.limitBytes)}: sessions all sorting at once would get PostgreSQL killed for memory; raise resources.memoryLimit `
      + `to ${mib(overrun.estimateBytes)} or more, or lower settings.maxConnections or settings.workMem (a pooler needs few connections), `
      + 'or set memoryCheck to MemoryCheck.OFF';
    if (overrun.check === MemoryCheck.ERROR) return [message];
    // Validations may run more than once per synthesis; one warning is enough.
    if (!this.memoryWarned) process.emitWarning(message, { code: 'CDK8S_POSTGRES_MEMORY' });
    this.memoryWarned = true;
    return [];
  }

  /**
   * Adds a login role kept in step with its Secret: created if missing and its password set at
   * every start of the primary, so rotating the Secret and restarting the primary rotates it.
   * @param role the role's Secret and memberships
   */
  public addRole(role: PostgresRole): void {
    this.provision(role, 'addRole(role)');
  }

  private provision(role: PostgresRole, prop: string): void {
    this.provisioning.addRole(role.credentials, role.memberOf ?? [],
      { credentials: `${prop}.credentials`, memberOf: `${prop}.memberOf`, attributes: `${prop}.attributes` }, role.ownSecret ?? false, role.attributes);
  }

  /**
   * Lets a pooler's auth user look up other roles' password hashes (never a superuser's)
   * through a SECURITY DEFINER function installed in every database; returns the query
   * (PgBouncer's `auth_query`) that calls it.
   * @param authUser the Secret of the role the pooler logs in as to run the query
   * @internal
   */
  public _addPasswordLookup(authUser: PostgresCredentials): string {
    this.provisioning.addPasswordLookup(authUser, 'addPasswordLookup(authUser)');
    return PASSWORD_LOOKUP_QUERY;
  }

  /**
   * Binds a pooler or a balancer in front: creates its roles (kept in step with their Secrets,
   * as `addRole()` does), installs the password lookup function for its auth user in every
   * database, and counts its connections in the budget checked at synth.
   * @param _client the construct in front
   * @param options the roles, the password lookup and the connections it asks for
   */
  public bind(_client: IConstruct, options: EndpointBindOptions): EndpointBinding {
    (options.roles ?? []).forEach((role) => this.addRole(role));
    if (options.passwordLookupUser) this._addPasswordLookup(options.passwordLookupUser);
    (options.connectionDemands ?? []).forEach((demand) => this.addConnectionDemand(demand));
    return { rolesCreated: true, passwordLookup: PasswordLookup.INSTALLED_BY_BACKEND, connectionDemandChecked: true };
  }

  public get monitoringProfile(): MonitoringProfile {
    const model = this.model;
    return {
      kind: ExporterKind.POSTGRES,
      name: model.name,
      partOf: model.componentLabels('database').partOf,
      namespace: Chart.of(this).namespace,
      daemonPort: model.port,
      tlsRequired: false,
      podSelector: selectorLabels(model.componentLabels('database'), false),
      serviceSelector: selectorLabels(model.componentLabels('database')),
      podNamePattern: model.highAvailability ? `${model.objectNames.members}-[0-9]+`
        : `(${model.objectNames.primary}|${model.objectNames.replica})-[0-9]+`,
      connectionLimit: model.maxConnections,
      replicationSlots: model.replicaApplicationNames,
      maxSlotWalKeepBytes: model.maxSlotWalKeepBytes,
      walArchiving: model.backup !== undefined,
      backupJobs: (model.backup?.repositories ?? []).flatMap((repository) => repository.schedules
        .map((schedule) => ({ cronJobName: schedule.cronJobName, maxIntervalSeconds: schedule.maxIntervalSeconds }))),
      labels: { ...model.user.labels },
      annotations: { ...model.user.annotations },
    };
  }

  /**
   * Runs a container beside PostgreSQL in every instance's pod; its Service port goes on the
   * headless Service, which spans all instances.
   * @param sidecar the container, its Service port and pod annotations
   */
  public addSidecar(sidecar: Sidecar): void {
    this.sidecars.add(sidecar);
  }

  /**
   * Makes the role of these credentials a member of pg_monitor, admits it over loopback (where a
   * sidecar exporter connects from) to the postgres database, and counts its two connections on
   * every instance.
   * @param credentials the exporter's own Secret, used for nothing else in the cluster
   */
  public grantMetricsAccess(credentials: PostgresCredentials): void {
    const prop = 'grantMetricsAccess(credentials)';
    this.provisioning.addRole(credentials, ['pg_monitor'], { credentials: prop }, true);
    this.monitored = true;
    // postgres_exporter keeps one connection for its default metrics and, from 0.14, opens one for
    // its collectors per scrape in flight (0.11 kept that one open): two while one Prometheus
    // scrapes the pod (test/e2e/exporter-versions.e2e.test.ts); a second scraper adds one.
    const connections = 2;
    const replica = this.replicas > 0 ? connections : 0;
    this.addConnectionDemand({ consumer: `${this.node.path} metrics exporter`, purpose: 'postgres_exporter', primary: connections, replica });
  }

  private metadata(name: string, component: string): k8s.ObjectMeta {
    return objectMeta(this, name, this.model.componentLabels(component), this.model.user);
  }

  /** A Service over the pods of one role, or of all roles when `role` is undefined. */
  private service(id: string, name: string, role: Role | undefined, headless: boolean): void {
    const labels = this.model.componentLabels(role ?? 'database');
    // Patroni labels the pods with their current role; the plain mode's StatefulSets have fixed ones.
    const selector = this.model.highAvailability && role
      ? { ...selectorLabels(this.model.componentLabels('database'), false), [PATRONI_ROLE_LABEL]: role }
      : selectorLabels(labels, role !== undefined);
    const postgresPort = { name: 'postgres', port: this.model.port, targetPort: k8s.IntOrString.fromString('postgres'), protocol: 'TCP' };
    // The headless Service spans every instance, so it also carries the sidecars' ports, added at synth.
    const reportServer = this.model.logAnalysis?.server;
    const ownPorts = [postgresPort, ...(headless && reportServer ? [{
      name: 'pgbadger-http', port: reportServer.port, targetPort: k8s.IntOrString.fromString('pgbadger-http'), protocol: 'TCP',
    }] : [])];
    if (headless) this.sidecars.reserveServicePorts(ownPorts);
    const spec = (): k8s.ServiceSpec => ({
      ...(headless ? { clusterIp: 'None', publishNotReadyAddresses: true } : { type: 'ClusterIP' }),
      selector,
      ports: headless ? this.sidecars.withServicePorts(ownPorts) : ownPorts,
    });
    new k8s.KubeService(this, id, { metadata: this.metadata(name, role ?? 'database'), spec: headless ? Lazy.any({ produce: spec }) : spec() });
  }

  /** The Config ConfigMap's files at synth: whether an exporter reads over loopback is known by then. */
  private configFiles(): { [file: string]: string } {
    const model = this.model;
    const plain = () => ({
      [CLUSTER_FILES.postgresqlConf]: renderPostgresqlConf(model),
      [CLUSTER_FILES.pgHbaConf]: renderPgHbaConf(model, this.monitored),
      ...(model.hba.identMaps.length > 0 ? { [CLUSTER_FILES.pgIdentConf]: renderPgIdentConf(model) } : {}),
    });
    // In the HA mode, postgresql.conf only serves restore.sh's recovery run, before Patroni starts.
    return model.highAvailability
      ? {
        [CLUSTER_FILES.patroniConfig]: renderPatroniConfig(model, this.monitored),
        [CLUSTER_FILES.patroniDynamicConfig]: renderPatroniDynamicConfig(model),
        ...(recoversBeforePatroni(model) ? plain() : {}),
      }
      : { ...plain(), [CLUSTER_FILES.replicaSlots]: renderReplicaSlots(model) };
  }

  /** The Scripts ConfigMap's files at synth, which provision every role added by then. */
  private scriptFiles(provisioning: ProvisioningModel): { [file: string]: string } {
    const upgrade: { [file: string]: string } = this.model.majorUpgrade
      ? { [CLUSTER_FILES.majorUpgradeScript]: renderMajorUpgradeScript(this.model.name), ...this.patroniUpgradeFiles() } : {};
    const logAnalysis: { [file: string]: string } = this.model.logAnalysis
      ? { [CLUSTER_FILES.pgBadgerReportScript]: renderPgBadgerReportScript() } : {};
    return { ...upgrade, ...logAnalysis, ...this.modeScriptFiles(provisioning) };
  }

  private modeScriptFiles(provisioning: ProvisioningModel): { [file: string]: string } {
    const patroniSource = this.model.highAvailability ? renderPatroniSourceScript(this.model) : undefined;
    return this.model.highAvailability ? {
      [CLUSTER_FILES.provisionScript]: renderProvisionScript(this.model, provisioning),
      [CLUSTER_FILES.patroniStartScript]: renderPatroniStartScript(this.model.name, this.model.tablespaces, patroniStartSource(this.model)),
      ...(patroniSource ? { [PATRONI_SOURCE_SCRIPT]: patroniSource } : {}),
      [CLUSTER_FILES.patroniSettingsAgent]: renderPatroniSettingsAgent(this.model),
    }
      : {
        [CLUSTER_FILES.bootstrapScript]: renderBootstrapScript(this.model, provisioning),
        [CLUSTER_FILES.settingsAgentScript]: renderSettingsAgentScript(this.model),
      };
  }

  /** A StatefulSet whose spec is rendered at synth; its containers are reserved now, so a sidecar cannot take their names or ports. */
  private statefulSet(id: string, kind: PodKind, replicas: number): void {
    const model = this.model;
    const labels = model.componentLabels(kind === 'member' ? 'database' : kind);
    const name = { primary: model.objectNames.primary, replica: model.objectNames.replica, member: model.objectNames.members }[kind];
    this.sidecars.reservePod(this.podSpec(kind, this.provisioning.model()));
    new k8s.KubeStatefulSet(this, id, {
      metadata: this.metadata(name, labels.component),
      spec: Lazy.any({ produce: () => this.statefulSetSpec(kind, replicas, this.provisioning.model()) }),
    });
  }

  /** A StatefulSet's whole spec at synth, with the roles and sidecars added by then and the checksum of the files they render to. */
  private statefulSetSpec(kind: PodKind, replicas: number, provisioning: ProvisioningModel): k8s.StatefulSetSpec {
    const model = this.model;
    const labels = model.componentLabels(kind === 'member' ? 'database' : kind);
    // Patroni finds its members by the scope label, besides the selector labels it is given.
    const podLabels = kind === 'member' ? { ...model.user.labels, [PATRONI_SCOPE_LABEL]: model.name } : model.user.labels;
    const checksum = restartChecksum(model, this.configFiles(), this.scriptFiles(provisioning));
    return {
      serviceName: model.objectNames.headless,
      replicas,
      // Patroni members coordinate through the store: none waits for another to be ready.
      podManagementPolicy: kind === 'member' ? 'Parallel' : 'OrderedReady',
      // A rolling update would start an old-major member on the new binaries; the upgrade needs every pod deleted at once.
      updateStrategy: { type: kind === 'member' && model.majorUpgrade ? 'OnDelete' : 'RollingUpdate' },
      selector: { matchLabels: selectorLabels(labels) },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: model.volumeRetention, whenScaled: model.volumeRetention },
      volumeClaimTemplates: this.claims(labels).map((claim) => ({ metadata: claim.template.metadata, spec: claim.template.spec })),
      template: {
        metadata: {
          labels: metadataLabels(labels, podLabels),
          annotations: this.sidecars.withAnnotations({ ...model.user.annotations, ...this.backupAdditions?.podAnnotations, 'checksum/config': checksum }),
        },
        spec: this.sidecars.withContainers(this.podSpec(kind, provisioning)),
      },
    };
  }

  /** The data volume's claim, the WAL volume's with storage.walSize, the tablespaces'; volumeClaimTemplates carry only the fixed selector labels. */
  private claims(labels: ComponentLabels): ClaimTemplate[] {
    const storage = this.model.storage;
    return [
      new ClaimTemplate('data', selectorLabels(labels), readWriteOnceClaimSpec(storage.size, storage.storageClassName)),
      ...(storage.walSize
        ? [new ClaimTemplate('wal', selectorLabels(labels), readWriteOnceClaimSpec(storage.walSize, storage.walStorageClassName ?? storage.storageClassName))]
        : []),
      ...tablespaceClaims(this.model.tablespaces, selectorLabels(labels)),
    ];
  }

  private podSpec(kind: PodKind, provisioning: ProvisioningModel): k8s.PodSpec {
    const model = this.model;
    const volumes = this.volumes;
    // The tablespaces are data too: the bootstrap makes their directories, restore.sh and pg_basebackup fill them.
    const dataMounts = [volumeMount('data', CLUSTER_PATHS.dataVolume), ...(model.storage.walSize ? [volumeMount('wal', CLUSTER_PATHS.walVolume)] : []),
      ...tablespaceMounts(model.tablespaces)];
    const tlsMounts = volumes.tls ? [volumes.tls.volume.readOnlyMount(CLUSTER_PATHS.tlsDir)] : [];
    const certificateMaker = volumes.tls?.initContainers ?? [];
    const server = kind === 'member' ? this.patroniContainer() : this.postgresContainer(kind);
    const backup = this.backupAdditions;
    // The plain mode's primary runs restore.sh in its init container; Patroni runs it itself.
    const restore = kind === 'primary' ? backup?.restore : undefined;
    const source = this.sourceAdditions;
    const env = distinctNames([...server.env ?? [], ...backup?.postgresEnv ?? [], ...source.env, ...(kind === 'member' ? backup?.restore?.env ?? [] : [])]);
    return {
      // Only Patroni talks to the API server.
      ...restrictedPod({ serviceAccountName: model.objectNames.serviceAccount, uid: model.uid, apiServerAccess: kind === 'member' }, {
        terminationGracePeriodSeconds: model.terminationGracePeriodSeconds,
        spread: { selector: selectorLabels(model.componentLabels('database'), false), spread: model.spread },
        placement: model.user.placement,
      }),
      initContainers: [...certificateMaker, ...(kind === 'member' ? this.memberInitContainers([...dataMounts, ...tlsMounts]) : this.plainInitContainers(kind, this.bootstrapContainer(kind, [...dataMounts, ...tlsMounts], restore)))],
      containers: [restrictedContainer({
        ...server,
        ...(env.length > 0 ? { env } : {}),
        resources: resourceRequirements(model.resources),
        volumeMounts: [
          ...dataMounts,
          volumes.config.readOnlyMount(CLUSTER_PATHS.configDir),
          ...(kind === 'member' ? [volumes.scripts.readOnlyMount(CLUSTER_PATHS.scriptsDir), volumes.secrets.readOnlyMount(CLUSTER_PATHS.secretsDir),
            volumes.patroni.mount(CLUSTER_PATHS.patroniDir)] : []),
          // Patroni rewrites the passfile; the plain mode's bootstrap writes it.
          volumes.auth.mount(CLUSTER_PATHS.authDir, kind !== 'member'),
          ...tlsMounts,
          ...(volumes.superuserName ? [volumes.superuserName.readOnlyMount(posix.dirname(CLUSTER_PATHS.superuserNameFile))] : []),
          volumes.socket.mount(CLUSTER_PATHS.socketDir),
          volumes.shm.mount('/dev/shm'),
          volumes.tmp.mount('/tmp'),
          ...backup?.postgresMounts ?? [],
          ...source.mounts,
        ],
      }), ...(kind === 'member' ? [] : [this.settingsAgent(kind)]), ...backup?.sidecars ?? [], ...this.logAnalysisContainers()],
      volumes: [
        volumes.config.volume,
        volumes.scripts.volume,
        this.secretsVolume(kind, provisioning).volume,
        ...(volumes.tls ? [volumes.tls.volume.volume] : []),
        ...(volumes.superuserName ? [volumes.superuserName.volume] : []),
        volumes.auth.volume,
        volumes.socket.volume,
        volumes.shm.volume,
        volumes.tmp.volume,
        ...(kind === 'member' ? [volumes.patroni.volume] : []),
        ...(kind !== 'replica' && model.majorUpgrade ? [OLD_BINARIES_VOLUME.volume] : []),
        ...backup?.volumes ?? [],
        ...source.volumes,
      ],
    };
  }

  /** With logAnalysis: the pgBadger sidecar on the data volume, and its reports' server. */
  private logAnalysisContainers(): k8s.Container[] {
    const logAnalysis = this.model.logAnalysis;
    if (!logAnalysis) return [];
    return logAnalysisContainers(logAnalysis, {
      data: volumeMount('data', CLUSTER_PATHS.dataVolume),
      scripts: this.volumes.scripts.readOnlyMount(CLUSTER_PATHS.scriptsDir),
      tmp: this.volumes.tmp.mount('/tmp'),
    });
  }

  /** The HA mode's scripts of a major upgrade: the step of every member and the election it runs through Patroni's store. */
  private patroniUpgradeFiles(): { [file: string]: string } {
    if (!this.model.highAvailability) return {};
    return {
      [CLUSTER_FILES.patroniUpgradeScript]: renderPatroniUpgradeScript(this.model.name),
      [CLUSTER_FILES.patroniUpgradeCoordinator]: renderPatroniUpgradeCoordinator(this.model.name),
    };
  }

  /** The HA mode's init containers after the certificate's: none but while majorUpgrade is set. */
  private memberInitContainers(mounts: k8s.VolumeMount[]): k8s.Container[] {
    const model = this.model;
    if (!model.majorUpgrade) return [];
    const volumes = this.volumes;
    return patroniUpgradeInitContainers(model, {
      name: 'base',
      image: model.image,
      resources: resourceRequirements(model.resources),
      volumeMounts: [
        ...mounts,
        volumes.config.readOnlyMount(CLUSTER_PATHS.configDir),
        volumes.scripts.readOnlyMount(CLUSTER_PATHS.scriptsDir),
        volumes.secrets.readOnlyMount(CLUSTER_PATHS.secretsDir),
        ...(volumes.superuserName ? [volumes.superuserName.readOnlyMount(posix.dirname(CLUSTER_PATHS.superuserNameFile))] : []),
        volumes.tmp.mount('/tmp'),
      ],
    });
  }

  /** The plain mode's init containers after the certificate's: while majorUpgrade is set, its steps, then bootstrap. */
  private plainInitContainers(role: Role, bootstrap: k8s.Container): k8s.Container[] {
    const model = this.model;
    if (!model.majorUpgrade) return [bootstrap];
    const bootstrapEnv = Object.fromEntries((bootstrap.env ?? []).map((variable) => [variable.name, variable.value ?? variable.valueFrom!]));
    const steps = majorUpgradeInitContainers({
      upgrade: model.majorUpgrade,
      role,
      base: bootstrap,
      script: `${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.majorUpgradeScript}`,
      environment: {
        ...Object.fromEntries(['PGDATA', 'POD_NAME', 'CREDENTIALS_DIR', 'CONFIG_FILE', 'PRIMARY_HOST', 'PGPORT', 'TLS_CA_FILE', 'TLS_ENABLED']
          .map((name) => [name, bootstrapEnv[name]])),
        ...(role === 'primary' ? { REPLICATION_SLOTS: model.replicaApplicationNames.join(' ') } : {}),
      },
    });
    return [...steps, bootstrap];
  }

  /**
   * The roles' Secrets as files: replicas of the plain mode need just the replication role's; a
   * primary or any HA member (a leader to be) provisions every role. HA members also get the
   * REST API's, for patroni-start.sh.
   */
  private secretsVolume(kind: PodKind, provisioning: ProvisioningModel): PodVolume {
    const restApi = kind === 'member' ? [secretProjection(PATRONI_API_SECRET_DIR, this.model.highAvailability!.restApiCredentials)] : [];
    return PodVolume.projected('secrets', [...provisioning.roles.filter((role) => kind !== 'replica' || role.secretDir === REPLICATION_SECRET_DIR)
      .map((role) => secretProjection(role.secretDir, role.credentials)), ...restApi, ...(kind !== 'replica' ? this.sourceAdditions.secretProjections : [])]);
  }

  /** The plain mode's init container: initdb (or a restore) on the primary, a clone on a replica, then provisioning. */
  private bootstrapContainer(role: Role, mounts: k8s.VolumeMount[], restore: InstancePodAdditions['restore']): k8s.Container {
    const model = this.model;
    const environment: { [name in typeof BOOTSTRAP_ENVIRONMENT[number]]: string | k8s.EnvVarSource } = {
      PGDATA: CLUSTER_PATHS.pgdata,
      PG_WALDIR: model.storage.walSize ? CLUSTER_PATHS.walDir : '',
      POSTGRES_ROLE: role,
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      PRIMARY_HOST: model.primaryPodHost,
      PGPORT: String(model.port),
      PGPASSFILE: CLUSTER_PATHS.passfile,
      CREDENTIALS_DIR: CLUSTER_PATHS.secretsDir,
      CONFIG_FILE: `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.postgresqlConf}`,
      TLS_CA_FILE: model.tls?.authority ? `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.authority}` : '',
      TLS_ENABLED: model.tls ? 'true' : '',
      RESTORE_SCRIPT: restore?.command[0] ?? '',
      MAJOR_UPGRADE_FROM: model.majorUpgrade ? String(model.majorUpgrade.from.major) : '',
      // Resolves to every instance pod, ready or not: an empty primary asks them whether they hold the cluster.
      HEADLESS_SERVICE: model.objectNames.headless,
      PRIMARY_RECOVERY: role === 'primary' && model.primaryRecovery !== PrimaryRecovery.REFUSE ? model.primaryRecovery : '',
    };
    const volumes = this.volumes;
    return restrictedContainer({
      name: 'bootstrap',
      image: model.image,
      command: [`${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.bootstrapScript}`],
      env: distinctNames([...environmentVariables(environment), ...this.sourceAdditions.bootstrapEnv, ...restore?.env ?? [],
        ...this.sourceAdditions.env]),
      resources: resourceRequirements(model.resources),
      volumeMounts: [
        ...mounts.filter((mount) => mount.name !== 'tls'),
        volumes.config.readOnlyMount(CLUSTER_PATHS.configDir),
        volumes.scripts.readOnlyMount(CLUSTER_PATHS.scriptsDir),
        volumes.secrets.readOnlyMount(CLUSTER_PATHS.secretsDir),
        ...mounts.filter((mount) => mount.name === 'tls'),
        // pg_hba.conf reads the superuser's name from it: a server started here without it refuses to start.
        ...(volumes.superuserName ? [volumes.superuserName.readOnlyMount(posix.dirname(CLUSTER_PATHS.superuserNameFile))] : []),
        volumes.auth.mount(CLUSTER_PATHS.authDir),
        volumes.tmp.mount('/tmp'),
        ...restore?.mounts ?? [],
        ...this.sourceAdditions.mounts,
      ],
    });
  }

  /** The plain mode's settings agent: it reloads the mounted files, and on the primary drops removed replicas' slots. */
  private settingsAgent(role: Role): k8s.Container {
    const volumes = this.volumes;
    return settingsAgentContainer(this.model, role, [
      volumes.config.readOnlyMount(CLUSTER_PATHS.configDir),
      volumes.scripts.readOnlyMount(CLUSTER_PATHS.scriptsDir),
      volumes.auth.readOnlyMount(CLUSTER_PATHS.authDir),
      // What pg_hba.conf names by @file, as every container mounting it has.
      ...(volumes.superuserName ? [volumes.superuserName.readOnlyMount(posix.dirname(CLUSTER_PATHS.superuserNameFile))] : []),
      volumes.socket.mount(CLUSTER_PATHS.socketDir),
      volumes.tmp.mount('/tmp'),
    ]);
  }

  /** The plain mode's server: postgres with the rendered postgresql.conf, probed over the socket; the primary stops after its replicas. */
  private postgresContainer(role: Role): k8s.Container {
    const model = this.model;
    const pgIsReady = { exec: { command: ['pg_isready', `--host=${CLUSTER_PATHS.socketDir}`, `--port=${model.port}`, '--quiet'] } };
    const probe = (periodSeconds: number, failureThreshold: number): k8s.Probe => ({
      ...pgIsReady, periodSeconds, timeoutSeconds: 5, failureThreshold,
    });
    return {
      name: 'postgres',
      image: model.image,
      command: ['postgres', '-D', CLUSTER_PATHS.pgdata, '-c', `config_file=${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.postgresqlConf}`],
      ports: [{ name: 'postgres', containerPort: model.port, protocol: 'TCP' }],
      // pg_isready over the socket: no login, so a probe never takes a connection slot.
      startupProbe: probe(10, 360),
      readinessProbe: probe(10, 3),
      livenessProbe: probe(10, 6),
      ...(role === 'primary' ? primaryStopHook(model) : { lifecycle: fastStop(model) }),
    };
  }

  /**
   * The HA mode's server: Patroni, which runs PostgreSQL and stops it in fast mode on SIGTERM,
   * handing the leader lock over. Names and addresses come from the environment; patroni-start.sh
   * hands Patroni the credentials from the mounted Secrets.
   */
  private patroniContainer(): k8s.Container {
    const model = this.model;
    const ha = model.highAvailability!;
    const memberAddress = (port: number) => `$(PATRONI_NAME).${model.objectNames.headless}:${port}`;
    const patroni: { [name: string]: string | k8s.EnvVarSource } = {
      PATRONI_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      PATRONI_KUBERNETES_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      PATRONI_POSTGRESQL_CONNECT_ADDRESS: memberAddress(model.port),
      PATRONI_RESTAPI_CONNECT_ADDRESS: memberAddress(ha.restApiPort),
    };
    const provision: { [name in typeof PROVISION_ENVIRONMENT[number] | typeof PATRONI_START_ENVIRONMENT[number]]: string } = {
      CREDENTIALS_DIR: CLUSTER_PATHS.secretsDir,
      PGHOST: CLUSTER_PATHS.socketDir,
      PGPORT: String(model.port),
      PATRONICTL_CONFIG_FILE: CLUSTER_PATHS.patroniDir,
      PGDATA: CLUSTER_PATHS.pgdata,
      MAJOR_UPGRADE_FROM: model.majorUpgrade ? String(model.majorUpgrade.from.major) : '',
    };
    // With TLS the REST API serves only HTTPS; the kubelet does not verify the certificate.
    const probe = (path: string, timing: ProbeTiming): k8s.Probe => ({
      httpGet: { path, port: k8s.IntOrString.fromString('patroni'), ...(model.tls ? { scheme: 'HTTPS' } : {}) },
      ...timing,
    });
    const handover = leaderHandoverHook(model);
    return {
      name: 'postgres',
      image: model.image,
      command: [`${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.patroniStartScript}`, `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.patroniConfig}`],
      env: [...environmentVariables({ ...patroni, ...provision }), ...handover.env],
      lifecycle: handover.lifecycle,
      ports: [
        { name: 'postgres', containerPort: model.port, protocol: 'TCP' },
        { name: 'patroni', containerPort: ha.restApiPort, protocol: 'TCP' },
      ],
      // 200 while the member runs with its store reachable, or holds the leader lock.
      readinessProbe: probe('/readiness', ha.readinessProbe),
      // Fails only when Patroni's HA loop has been stuck for longer than ttl, or Patroni does not answer.
      livenessProbe: probe('/liveness', ha.livenessProbe),
    };
  }
}

/** The instance pods' volumes by name; the roles' Secrets volume is made at synth (secretsVolume). */
interface ClusterVolumes {
  readonly config: PodVolume;
  readonly scripts: PodVolume;
  /** Only its mounts are used: its sources are the roles known at synth. */
  readonly secrets: PodVolume;
  readonly tls?: CertificateVolume;
  /** The superuser's name, which pg_hba.conf rejects over TCP, unless superuserNetworkAccess. */
  readonly superuserName?: PodVolume;
  readonly auth: PodVolume;
  readonly socket: PodVolume;
  readonly shm: PodVolume;
  readonly tmp: PodVolume;
  /** HA mode only: Patroni's configuration directory, credentials included. */
  readonly patroni: PodVolume;
}

function clusterVolumes(model: ClusterModel): ClusterVolumes {
  return {
    config: PodVolume.configMap('config', model.objectNames.config),
    scripts: PodVolume.configMap('scripts', model.objectNames.scripts, { defaultMode: 0o555 }),
    secrets: PodVolume.projected('secrets', []),
    // PostgreSQL takes a key file owned by root only if no more than its group may read it.
    ...(model.tls ? {
      tls: certificateVolume(model.tls, {
        volumeName: 'tls', secretKeys: Object.values(TLS_FILES), secretMode: 0o640,
        commonName: model.objectNames.readWrite, dnsNames: model.certificateDnsNames, resources: resourceRequirements(model.resources),
      }),
    } : {}),
    ...(model.superuserNetworkAccess ? {} : {
      superuserName: PodVolume.projected('superuser-name', [
        secretFiles(model.superuser.secretName, [{ key: model.superuser.usernameKey, path: posix.basename(CLUSTER_PATHS.superuserNameFile) }]),
      ]),
    }),
    auth: PodVolume.memory('auth', '1Mi'),
    socket: PodVolume.memory('socket', '1Mi'),
    // Parallel queries share memory through /dev/shm, which a container caps at 64Mi.
    shm: PodVolume.memory('shm', `${Math.floor(model.resources.memoryLimitBytes / 4 / 2 ** 20)}Mi`),
    tmp: PodVolume.scratch('tmp', '256Mi'),
    patroni: PodVolume.memory('patroni', '1Mi'),
  };
}

/** Env vars without repeats: restore.sh reads some variables the bootstrap already sets, which must be the same values. */
function distinctNames(env: k8s.EnvVar[]): k8s.EnvVar[] {
  return env.filter((variable, index) => {
    const first = env.findIndex((other) => other.name === variable.name);
    if (JSON.stringify(env[first]) !== JSON.stringify(variable)) throw new Error(`internal error: env ${variable.name} is set to two different values`);
    return first === index;
  });
}

/** Env vars from literal values and sources, in the order given: `$(NAME)` may refer to earlier ones. */
function environmentVariables(environment: { [name: string]: string | k8s.EnvVarSource }): k8s.EnvVar[] {
  return Object.entries(environment).map(([name, value]) => (typeof value === 'string' ? { name, value } : { name, valueFrom: value }));
}
