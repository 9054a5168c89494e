import { Chart, Lazy } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { configChecksum } from '../core/checksum';
import { ConnectionDemand, budgetTable, describeOverbooking, totals } from '../core/connection-budget';
import { PostgresCredentials } from '../core/credentials';
import { IPostgresEndpoint } from '../core/endpoint';
import { componentPeer, NetworkAccess, NetworkPeer } from '../core/network-policy';
import { ExporterKind, IMonitorable, MonitoringProfile } from '../core/monitoring';
import { Sidecar, SidecarSet } from '../core/sidecars';
import { metadataLabels, selectorLabels } from '../core/labels';
import { objectMeta, oneAtATimeDisruptionBudget, secretProjection, tokenlessServiceAccount, validateUniqueNames, volumeMount } from '../core/workload';
import { resourceRequirements } from '../core/resources';
import { spreadOverNodes } from '../core/scheduling';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from '../core/security';
import { CertificateAuthority, renderCertificate, TLS_FILES } from '../core/tls';
import { BOOTSTRAP_ENVIRONMENT, renderBootstrapScript } from './bootstrap-script';
import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { ClusterModel, resolveClusterModel } from './cluster-model';
import { MemoryCheck, PostgresRole, PostgresStatefulClusterProps } from './cluster-props';
import { renderPgHbaConf } from './pg-hba-conf';
import { renderPostgresqlConf } from './postgresql-conf';
import { PASSWORD_LOOKUP_QUERY, Provisioning, REPLICATION_SECRET_DIR } from './provisioning';

type Role = 'primary' | 'replica';

/**
 * A primary/replica PostgreSQL cluster on StatefulSets, without an operator.
 *
 * The primary StatefulSet (`<name>-primary`, one pod) bootstraps with initdb; the replica
 * StatefulSet (`<name>-replica`, `instances - 1` pods) clones from the primary with
 * pg_basebackup and streams through a slot per pod. Two StatefulSets give primary and replica
 * pods their own labels, so `<name>-rw` reaches only the primary and `<name>-ro` only replicas.
 * Failover is not automatic: if the primary's volume is lost, restore it from a backup.
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
  public readonly superuserCredentials: PostgresCredentials;
  /** `max_connections`. */
  public readonly maxConnections: number;
  /** `superuser_reserved_connections`. */
  public readonly superuserReservedConnections: number;

  private readonly model: ClusterModel;
  private readonly provisioning: Provisioning;
  private readonly demands: ConnectionDemand[] = [];
  /** Every instance's pods, for the NetworkPolicies of clients. */
  public readonly serverPods: NetworkPeer;
  /** With `tls`, the CA in the tls Secret: poolers and balancers in front verify with it. */
  public readonly certificateAuthority?: CertificateAuthority;
  /**
   * The host names the server certificate must name: the Services in their short and qualified
   * forms, and every pod through the headless Service (replicas verify the primary's pod name).
   */
  public readonly certificateDnsNames: string[];

  private readonly sidecars = new SidecarSet(this);
  private readonly network: NetworkAccess;
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
    validateUniqueNames(this);
    this.node.addValidation({ validate: () => this.validateConnectionBudget() });
    this.node.addValidation({ validate: () => this.validateMemory() });
    this.provisioning = new Provisioning(this, model.superuser, model.replication, model.databases);
    (props.roles ?? []).forEach((role, index) => this.provision(role, `roles[${index}]`));
    this.name = model.name;
    this.instances = model.instances;
    this.readWriteHost = model.readWriteHost;
    this.readOnlyHost = model.readOnlyHost;
    this.port = model.port;
    this.replicas = model.replicas;
    this.superuserCredentials = model.superuser;
    this.maxConnections = model.maxConnections;
    this.superuserReservedConnections = model.superuserReservedConnections;
    this.certificateDnsNames = [...model.certificateDnsNames];
    if (model.tls) {
      this.certificateAuthority = model.tls.authority;
      renderCertificate(this, model.name, model.tls, model.certificateDnsNames, model.componentLabels('database'), model.user);
    }

    // Rendered at synth, after every construct of the app had its chance to add a role.
    const config = () => ({
      [CLUSTER_FILES.postgresqlConf]: renderPostgresqlConf(model),
      [CLUSTER_FILES.pgHbaConf]: renderPgHbaConf(model, this.monitored),
    });
    const scripts = () => ({ [CLUSTER_FILES.bootstrapScript]: renderBootstrapScript(model, this.provisioning) });
    const checksum = Lazy.any({ produce: () => configChecksum({ ...config(), ...scripts() }) });

    tokenlessServiceAccount(this, model.objectNames.serviceAccount, model.componentLabels('database'), model.user);
    new k8s.KubeConfigMap(this, 'Config', { metadata: this.metadata(model.objectNames.config, 'database'), data: Lazy.any({ produce: config }) });
    new k8s.KubeConfigMap(this, 'Scripts', { metadata: this.metadata(model.objectNames.scripts, 'database'), data: Lazy.any({ produce: scripts }) });

    this.service('Headless', model.objectNames.headless, undefined, true);
    this.service('ReadWrite', model.objectNames.readWrite, 'primary', false);
    this.statefulSet('Primary', 'primary', 1, checksum);
    if (model.replicas > 0) {
      this.service('ReadOnly', model.objectNames.readOnly, 'replica', false);
      this.statefulSet('Replica', 'replica', model.replicas, checksum);
    }
    if (model.instances >= 2) {
      // One budget over all instances: a drain never takes the primary and a replica at once.
      oneAtATimeDisruptionBudget(this, model.objectNames.disruptionBudget, model.componentLabels('database'), model.user, false);
    }

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
      egress: [{ peer: this.serverPods, port: model.port }],
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

  /** The connection demands recorded so far, for tests and reports. */
  public get connectionDemands(): ConnectionDemand[] {
    return this.demands.map((demand) => ({ ...demand }));
  }

  /**
   * The connection budget as text: the limit, who asks for how many connections and the totals;
   * `examples/main.ts` writes it beside the manifests.
   */
  public connectionBudgetReport(): string {
    const available = this.maxConnections - this.superuserReservedConnections;
    return `${this.node.path} (${this.name}): max_connections ${this.maxConnections} - superuser_reserved_connections `
      + `${this.superuserReservedConnections} = ${available} per instance\n${budgetTable(this.demands, this.replicas)}\n`;
  }

  private validateConnectionBudget(): string[] {
    const available = this.maxConnections - this.superuserReservedConnections;
    const table = describeOverbooking(this.demands, available, this.replicas);
    if (!table) return [];
    const { primary, replica } = totals(this.demands, this.replicas);
    const needed = Math.max(primary, replica);
    return [`${this.node.path}: settings.maxConnections ${this.maxConnections} leaves ${available} connections for ordinary roles `
      + `(superuser_reserved_connections ${this.superuserReservedConnections}), fewer than its consumers may open:\n${table}\n`
      + `; raise settings.maxConnections to ${needed + this.superuserReservedConnections} or more, `
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
    this.provisioning.addRole(role.credentials, role.memberOf ?? [], { credentials: `${prop}.credentials`, memberOf: `${prop}.memberOf` },
      role.ownSecret ?? false);
  }

  /**
   * Lets a pooler's auth user look up other roles' password hashes (never a superuser's)
   * through a SECURITY DEFINER function installed in every database; returns the query
   * (PgBouncer's `auth_query`) that calls it.
   * @param authUser the Secret of the role the pooler logs in as to run the query
   */
  public addPasswordLookup(authUser: PostgresCredentials): string {
    this.provisioning.addPasswordLookup(authUser, 'addPasswordLookup(authUser)');
    return PASSWORD_LOOKUP_QUERY;
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
      podNamePattern: `(${model.objectNames.primary}|${model.objectNames.replica})-[0-9]+`,
      connectionLimit: model.maxConnections,
      replicationSlots: model.replicaApplicationNames,
      maxSlotWalKeepBytes: model.maxSlotWalKeepBytes,
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
   * sidecar exporter connects from) to the postgres database, and counts its one connection on
   * every instance.
   * @param credentials the exporter's own Secret, used for nothing else in the cluster
   */
  public grantMetricsAccess(credentials: PostgresCredentials): void {
    const prop = 'grantMetricsAccess(credentials)';
    this.provisioning.addRole(credentials, ['pg_monitor'], { credentials: prop }, true);
    this.monitored = true;
    this.addConnectionDemand({ consumer: `${this.node.path} metrics exporter`, primary: 1, replica: this.replicas > 0 ? 1 : 0 });
  }

  private metadata(name: string, component: string): k8s.ObjectMeta {
    return objectMeta(this, name, this.model.componentLabels(component), this.model.user);
  }

  /** A Service over the pods of one role, or of all roles when `role` is undefined. */
  private service(id: string, name: string, role: Role | undefined, headless: boolean): void {
    const labels = this.model.componentLabels(role ?? 'database');
    const postgresPort = { name: 'postgres', port: this.model.port, targetPort: k8s.IntOrString.fromString('postgres'), protocol: 'TCP' };
    new k8s.KubeService(this, id, {
      metadata: this.metadata(name, role ?? 'database'),
      spec: {
        ...(headless ? { clusterIp: 'None', publishNotReadyAddresses: true } : { type: 'ClusterIP' }),
        selector: selectorLabels(labels, role !== undefined),
        // The headless Service spans every instance, so it also carries the sidecars' ports.
        ports: headless ? this.sidecars.servicePorts([postgresPort]) : [postgresPort],
      },
    });
  }

  private statefulSet(id: string, role: Role, replicas: number, checksum: string): void {
    const model = this.model;
    const labels = model.componentLabels(role);
    const name = role === 'primary' ? model.objectNames.primary : model.objectNames.replica;
    const claim = (claimName: string, size: string, storageClassName?: string): k8s.KubePersistentVolumeClaimProps => ({
      // volumeClaimTemplates cannot change on a live StatefulSet: only the fixed selector labels.
      metadata: { name: claimName, labels: selectorLabels(labels) },
      spec: {
        accessModes: ['ReadWriteOnce'],
        ...(storageClassName ? { storageClassName } : {}),
        resources: { requests: { storage: k8s.Quantity.fromString(size) } },
      },
    });
    const claims = [claim('data', model.storage.size, model.storage.storageClassName)];
    if (model.storage.walSize) {
      claims.push(claim('wal', model.storage.walSize, model.storage.walStorageClassName ?? model.storage.storageClassName));
    }

    new k8s.KubeStatefulSet(this, id, {
      metadata: this.metadata(name, role),
      spec: {
        serviceName: model.objectNames.headless,
        replicas,
        podManagementPolicy: 'OrderedReady',
        updateStrategy: { type: 'RollingUpdate' },
        selector: { matchLabels: selectorLabels(labels) },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: model.volumeRetention, whenScaled: model.volumeRetention },
        volumeClaimTemplates: claims.map((props) => ({ metadata: props.metadata, spec: props.spec })),
        template: {
          metadata: {
            labels: metadataLabels(labels, model.user.labels),
            annotations: this.sidecars.podAnnotations({ ...model.user.annotations, 'checksum/config': checksum }),
          },
          spec: this.sidecars.podSpec({ ...this.podSpec(role), ...model.user.placement }),
        },
      },
    });
  }

  private podSpec(role: Role): k8s.PodSpec {
    const model = this.model;
    const resources = resourceRequirements(model.resources);
    const configFile = `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.postgresqlConf}`;
    const environment: { [name in typeof BOOTSTRAP_ENVIRONMENT[number]]: string | k8s.EnvVarSource } = {
      PGDATA: CLUSTER_PATHS.pgdata,
      PG_WALDIR: model.storage.walSize ? CLUSTER_PATHS.walDir : '',
      POSTGRES_ROLE: role,
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      PRIMARY_HOST: model.primaryPodHost,
      PGPORT: String(model.port),
      PGPASSFILE: CLUSTER_PATHS.passfile,
      CREDENTIALS_DIR: CLUSTER_PATHS.secretsDir,
      CONFIG_FILE: configFile,
      TLS_CA_FILE: model.tls ? `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.authority}` : '',
    };
    const env = BOOTSTRAP_ENVIRONMENT.map((envName) => {
      const value = environment[envName];
      return typeof value === 'string' ? { name: envName, value } : { name: envName, valueFrom: value };
    });
    const dataMounts = [volumeMount('data', CLUSTER_PATHS.dataVolume), ...(model.storage.walSize ? [volumeMount('wal', CLUSTER_PATHS.walVolume)] : [])];
    const pgIsReady = { exec: { command: ['pg_isready', `--host=${CLUSTER_PATHS.socketDir}`, `--port=${model.port}`, '--quiet'] } };
    const probe = (periodSeconds: number, failureThreshold: number): k8s.Probe => ({ ...pgIsReady, periodSeconds, timeoutSeconds: 5, failureThreshold });
    const tlsMounts = model.tls ? [volumeMount('tls', CLUSTER_PATHS.tlsDir, true)] : [];
    // Only the primary provisions roles; a replica needs just the replication role's Secret.
    const secretSources = Lazy.any({
      produce: () => this.provisioning.roles.filter((provisioned) => role === 'primary' || provisioned.secretDir === REPLICATION_SECRET_DIR)
        .map((provisioned) => secretProjection(provisioned.secretDir, provisioned.credentials)),
    });

    return {
      serviceAccountName: model.objectNames.serviceAccount,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: restrictedPodSecurityContext(model.uid, model.uid),
      terminationGracePeriodSeconds: model.terminationGracePeriodSeconds,
      topologySpreadConstraints: spreadOverNodes(selectorLabels(model.componentLabels('database'), false), model.spread),
      initContainers: [{
        name: 'bootstrap',
        image: model.image,
        imagePullPolicy: 'IfNotPresent',
        command: [`${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.bootstrapScript}`],
        env,
        resources,
        securityContext: restrictedContainerSecurityContext(),
        volumeMounts: [
          ...dataMounts,
          volumeMount('config', CLUSTER_PATHS.configDir, true),
          volumeMount('scripts', CLUSTER_PATHS.scriptsDir, true),
          volumeMount('secrets', CLUSTER_PATHS.secretsDir, true),
          ...tlsMounts,
          volumeMount('auth', CLUSTER_PATHS.authDir),
          volumeMount('tmp', '/tmp'),
        ],
      }],
      containers: [{
        name: 'postgres',
        image: model.image,
        imagePullPolicy: 'IfNotPresent',
        command: ['postgres', '-D', CLUSTER_PATHS.pgdata, '-c', `config_file=${configFile}`],
        ports: [{ name: 'postgres', containerPort: model.port, protocol: 'TCP' }],
        resources,
        securityContext: restrictedContainerSecurityContext(),
        // pg_isready over the socket: no login, so a probe never takes a connection slot.
        startupProbe: probe(10, 360),
        readinessProbe: probe(10, 3),
        livenessProbe: probe(10, 6),
        lifecycle: {
          // SIGTERM would be a smart shutdown that waits for every client; fast rolls back
          // open transactions and checkpoints within the grace period.
          preStop: { exec: { command: ['pg_ctl', 'stop', `--pgdata=${CLUSTER_PATHS.pgdata}`, '--mode=fast', '--wait', `--timeout=${model.terminationGracePeriodSeconds - 5}`] } },
        },
        volumeMounts: [
          ...dataMounts,
          volumeMount('config', CLUSTER_PATHS.configDir, true),
          volumeMount('auth', CLUSTER_PATHS.authDir, true),
          ...tlsMounts,
          volumeMount('socket', CLUSTER_PATHS.socketDir),
          volumeMount('shm', '/dev/shm'),
          volumeMount('tmp', '/tmp'),
        ],
      }],
      volumes: [
        { name: 'config', configMap: { name: model.objectNames.config, defaultMode: 0o444 } },
        { name: 'scripts', configMap: { name: model.objectNames.scripts, defaultMode: 0o555 } },
        { name: 'secrets', projected: { defaultMode: 0o440, sources: secretSources } },
        // PostgreSQL takes a key file owned by root only if no more than its group may read it.
        ...(model.tls ? [{ name: 'tls', secret: { secretName: model.tls.secretName, defaultMode: 0o640, items: Object.values(TLS_FILES).map((file) => ({ key: file, path: file })) } }] : []),
        { name: 'auth', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
        { name: 'socket', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
        // Parallel queries share memory through /dev/shm, which a container caps at 64Mi.
        { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString(`${Math.floor(model.resources.memoryLimitBytes / 4 / 2 ** 20)}Mi`) } },
        { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('256Mi') } },
      ],
    };
  }
}
