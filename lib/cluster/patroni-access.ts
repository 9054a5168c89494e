import { IConstruct } from 'constructs';
import { k8s } from '../core/kube';
import { ComponentLabels } from '../core/labels';
import { UserMetadata } from '../core/user-metadata';
import { objectMeta } from '../core/workload';

/** Whose objects Patroni touches: its scope (the cluster's name) and the members' pods. */
export interface PatroniObjects {
  readonly scope: string;
  /** The StatefulSet's pods, `<name>-0` to `<name>-<instances - 1>`: Patroni names each member after its pod. */
  readonly podNames: string[];
}

/** The keys of Patroni's ConfigMaps (below). */
const PATRONI_KEYS = ['config', 'leader', 'failover', 'sync'] as const;

/**
 * The ConfigMaps Patroni's Kubernetes store keeps with `use_endpoints: false`, named
 * `<scope>-<key>` (Kubernetes.client_path in Patroni's dcs/kubernetes.py): the dynamic config and
 * initialize key, the leader lock (with the status and failsafe annotations), a pending manual
 * failover or switchover, and the synchronous standby.
 */
export function patroniConfigMapNames(scope: string): string[] {
  return PATRONI_KEYS.map((key) => patroniConfigMapName(scope, key));
}

/** One of Patroni's ConfigMaps by its key. */
export function patroniConfigMapName(scope: string, key: typeof PATRONI_KEYS[number]): string {
  return `${scope}-${key}`;
}

/**
 * The Role Patroni's Kubernetes store needs with ConfigMaps, read from Patroni's requests (and
 * checked against them by test/e2e/ha-kubernetes.e2e.test.ts): its ConfigMaps are created and
 * patched on a resourceVersion, and only the leader's is read by name, again after a conflict
 * (the rest comes from its watches); pods are listed and watched, and each member patches its
 * own pod's role label and status. get and patch are limited to those ConfigMaps and pods by
 * name, so a member cannot relabel another workload's pod into the cluster's Services or
 * rewrite another ConfigMap. RBAC cannot limit create by name (the object does not exist at
 * authorization), nor list and watch, which Patroni does by label selector: those three stay namespace-wide, so a member can still read
 * every ConfigMap and pod of the namespace and create ConfigMaps. No delete (only `patronictl
 * remove` deletes), no Endpoints, nothing outside the namespace. A pod beyond `instances` (a
 * manual `kubectl scale`) cannot label itself and never serves: scale with the instances prop.
 */
export function patroniAccess(scope: IConstruct, name: string, serviceAccount: string, labels: ComponentLabels, user: UserMetadata,
  objects: PatroniObjects): void {
  const metadata = objectMeta(scope, name, labels, user);
  new k8s.KubeRole(scope, 'PatroniRole', {
    metadata,
    rules: [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['patch'], resourceNames: patroniConfigMapNames(objects.scope) },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: [patroniConfigMapName(objects.scope, 'leader')] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['patch'], resourceNames: [...objects.podNames] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
    ],
  });
  new k8s.KubeRoleBinding(scope, 'PatroniRoleBinding', {
    metadata,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, ...(metadata.namespace ? { namespace: metadata.namespace } : {}) }],
  });
}
