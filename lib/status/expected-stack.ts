import { KubeObject } from '../testing/change-impact/manifests';

const NAME = 'app.kubernetes.io/name';
const INSTANCE = 'app.kubernetes.io/instance';

/** The role a pod must have: the plain mode's StatefulSets fix it, the HA mode's leader election does not. */
export type ExpectedRole = 'primary' | 'replica' | 'any';

/** One pod of a cluster's StatefulSets. */
export interface ExpectedInstance {
  readonly pod: string;
  readonly role: ExpectedRole;
  /** Whether a postgres_exporter sidecar serves metrics in the pod. */
  readonly exporter: boolean;
}

/** A PostgresStatefulCluster as its manifests describe it. */
export interface ExpectedCluster {
  readonly name: string;
  readonly highAvailability: boolean;
  readonly instances: ExpectedInstance[];
  /** The Services clients use, `<name>-rw` and, with replicas, `<name>-ro`. */
  readonly services: { readonly name: string; readonly role: 'primary' | 'replica' }[];
  /** Whether the manifests run pgBackRest for it, so WAL archiving must be on. */
  readonly backups: boolean;
}

/** A PgBouncerPooler or PgpoolBalancer, reached through its Service. */
export interface ExpectedProxy {
  readonly name: string;
  readonly kind: 'pooler' | 'balancer';
  readonly exporter: boolean;
}

/** What should run, read from the synthesized manifests. */
export interface ExpectedStack {
  readonly clusters: ExpectedCluster[];
  readonly proxies: ExpectedProxy[];
}

const labelled = (objects: KubeObject[], kind: string, name: string) =>
  objects.filter((o) => o.kind === kind && o.metadata?.labels?.[NAME] === name);

/** Whether a workload's pods run an exporter sidecar: a container with a port named `metrics`. */
function hasExporter(workload: KubeObject): boolean {
  return (workload.spec?.template?.spec?.containers ?? []).some((c: any) => (c.ports ?? []).some((p: any) => p.name === 'metrics'));
}

/** Clusters, poolers and balancers of a set of objects, in name order. */
export function expectedStack(objects: KubeObject[]): ExpectedStack {
  const sets = labelled(objects, 'StatefulSet', 'postgresql');
  const services = objects.filter((o) => o.kind === 'Service');
  const names = [...new Set(sets.map((set) => set.metadata.labels[INSTANCE] as string))].sort();
  const clusters = names.map((name): ExpectedCluster => {
    const own = sets.filter((set) => set.metadata.labels[INSTANCE] === name);
    const ha = own.find((set) => set.metadata.name === name);
    const pods = (set: KubeObject | undefined, role: ExpectedRole) => (set ? Array.from({ length: set.spec?.replicas ?? 1 },
      (_, ordinal) => ({ pod: `${set.metadata.name}-${ordinal}`, role, exporter: hasExporter(set) })) : []);
    const instances = ha ? pods(ha, 'any')
      : [...pods(own.find((set) => set.metadata.name === `${name}-primary`), 'primary'), ...pods(own.find((set) => set.metadata.name === `${name}-replica`), 'replica')];
    return {
      name,
      highAvailability: ha !== undefined,
      instances,
      services: (['rw', 'ro'] as const).filter((suffix) => services.some((s) => s.metadata?.name === `${name}-${suffix}`))
        .map((suffix) => ({ name: `${name}-${suffix}`, role: suffix === 'rw' ? 'primary' : 'replica' })),
      backups: objects.some((o) => o.metadata?.labels?.[NAME] === 'pgbackrest' && o.metadata.labels[INSTANCE] === name),
    };
  });
  const proxies = ([['pgbouncer', 'pooler'], ['pgpool', 'balancer']] as const).flatMap(([label, kind]) =>
    labelled(objects, 'Deployment', label).map((deployment): ExpectedProxy => ({ name: deployment.metadata.name, kind, exporter: hasExporter(deployment) })));
  return { clusters, proxies: proxies.sort((a, b) => a.name.localeCompare(b.name)) };
}
