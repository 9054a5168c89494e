import { ClusterMode, SettingChange } from './classify-setting';

/** A finding a pipeline must acknowledge before the report's exit code is 0 (`--allow`). */
export enum Acknowledgement {
  /** A cluster switches between the plain and the HA mode: new StatefulSets on new, empty volumes. Exit code 5. */
  TOPOLOGY_CHANGE = 'topology-change',
  /** The API server refuses the apply: an immutable field changed. Exit code 4. */
  REFUSED_APPLY = 'refused-apply',
  /** The plain mode's primary restarts, or an HA member that may be the leader. Exit code 3. */
  PRIMARY_RESTART = 'primary-restart',
  /** The manifests read a Secret they did not read before: create it first. Exit code 2. */
  NEW_SECRETS = 'new-secrets',
}

/** What a finding is about. */
export enum FindingCategory {
  /** The cluster's members move to other StatefulSets (highAvailability turned on or off). */
  TOPOLOGY = 'topology',
  /** An immutable field changed. */
  REFUSED_APPLY = 'refused-apply',
  /** The primary, or possibly the HA leader, restarts. */
  PRIMARY_RESTART = 'primary-restart',
  /** Pods come, go or roll. */
  POD_ROLL = 'pod-roll',
  /** A PostgreSQL settings change needing more than a reload, or a note on one. */
  SETTING = 'setting',
  /** A volume claim template's storage request. */
  STORAGE = 'storage',
  /** The connection budget (max_connections). */
  CONNECTIONS = 'connections',
  /** A Secret to create before applying. */
  NEW_SECRET = 'new-secret',
  /** A cert-manager Certificate added or changed (issuer, DNS names). */
  CERTIFICATE = 'certificate',
}

/** One thing the reviewer should know, with what to do about it. */
export interface ChangeImpactFinding {
  /** The component, as the report's section names it. */
  readonly component: string;
  /** What the finding is about. */
  readonly category: FindingCategory;
  /**
   * The acknowledgement that lets the pipeline pass despite it.
   * @default - informational: it does not change the exit code
   */
  readonly gate?: Acknowledgement;
  /**
   * The object, as `Kind/name`.
   * @default - the component as a whole
   */
  readonly objectRef?: string;
  /** What happens. */
  readonly message: string;
  /**
   * What to do instead or first.
   * @default - nothing to do
   */
  readonly fix?: string;
}

/** An object present before and after whose content differs. */
export interface ObjectChange {
  /** `Kind/name`. */
  readonly objectRef: string;
  /** The changed paths, two levels deep: `spec.replicas`, `data.postgresql.conf`. */
  readonly paths: string[];
}

/** The pods of one workload that roll, in the order Kubernetes replaces them. */
export interface PodRestart {
  /** `StatefulSet/name` or `Deployment/name`. */
  readonly workload: string;
  /** The pods, in restart order (a Deployment's pod names are generated: `name-*`). */
  readonly pods: string[];
  /** How Kubernetes rolls them. */
  readonly order: string;
  /** What changed in the pod template. */
  readonly reasons: string[];
  /** Warnings for the reviewer: `primary restart`, `may restart the leader; switch over first`. */
  readonly flags: string[];
}

/** A volume claim template's storage request before and after. */
export interface StorageChange {
  /** `StatefulSet/name`. */
  readonly workload: string;
  /** The claim template's name. */
  readonly claim: string;
  /**
   * The request before.
   * @default - the claim template is new
   */
  readonly before?: string;
  /**
   * The request after.
   * @default - the claim template was removed
   */
  readonly after?: string;
  /** What it takes. */
  readonly note: string;
}

/** The impact of the change on one component (objects sharing instance and name labels). */
export interface ComponentImpact {
  /** The section name: `instance (name)` and the namespace, or `other objects`. */
  readonly component: string;
  /**
   * How the cluster runs, when the component is a database cluster.
   * @default - not a database cluster
   */
  readonly mode?: ClusterMode;
  /** Objects added, as `Kind/name`. */
  readonly added: string[];
  /** Objects removed, as `Kind/name`. */
  readonly removed: string[];
  /** Objects present before and after whose content differs. */
  readonly changed: ObjectChange[];
  /** Workloads whose pods roll, with the pods in restart order. */
  readonly restarts: PodRestart[];
  /** PostgreSQL parameters changed, classified. */
  readonly settings: SettingChange[];
  /** Volume claim templates whose storage request changed. */
  readonly storage: StorageChange[];
  /**
   * max_connections before.
   * @default - not a cluster, or no cluster before
   */
  readonly maxConnectionsBefore?: number;
  /**
   * max_connections after.
   * @default - not a cluster, or no cluster after
   */
  readonly maxConnectionsAfter?: number;
  /** What the reviewer should know about this component. */
  readonly findings: ChangeImpactFinding[];
}

/** What applying the new manifests over the old ones will do. */
export interface ChangeImpactReport {
  /** One entry per component with changes, databases first. */
  readonly components: ComponentImpact[];
  /** Every finding of every component. */
  readonly findings: ChangeImpactFinding[];
  /** 0, or the code of the highest-priority finding not acknowledged (5 topology change, 4 refused apply, 3 primary restart, 2 new Secrets). */
  readonly exitCode: number;
  /** The report as Markdown, for a pull request comment. */
  readonly markdown: string;
  /** The report as JSON (everything but the Markdown). */
  readonly json: string;
}

/** Options of the comparison. */
export interface ChangeImpactOptions {
  /**
   * Findings acknowledged: they are reported but do not set the exit code.
   * @default - none
   */
  readonly allow?: Acknowledgement[];
  /**
   * The PostgreSQL major whose parameter contexts classify the settings changes: the cluster's `postgresVersion`.
   * @default - the library's default major
   */
  readonly postgresMajor?: number;
}
