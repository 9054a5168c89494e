import { IConstruct } from 'constructs';
import { k8s } from '../core/kube';
import { ComponentLabels } from '../core/labels';
import { UserMetadata } from '../core/user-metadata';
import { objectMeta } from '../core/workload';

/**
 * The Role Patroni's Kubernetes store needs with ConfigMaps (`use_endpoints: false`), read from
 * Patroni's requests: its ConfigMaps are created, patched on a resourceVersion and re-read after
 * a conflict; pods are listed and watched, and each member patches its own role label. No
 * delete (only `patronictl remove` deletes), no Endpoints, nothing outside the namespace.
 */
export function patroniAccess(scope: IConstruct, name: string, serviceAccount: string, labels: ComponentLabels, user: UserMetadata): void {
  const metadata = objectMeta(scope, name, labels, user);
  new k8s.KubeRole(scope, 'PatroniRole', {
    metadata,
    rules: [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'patch'] },
    ],
  });
  new k8s.KubeRoleBinding(scope, 'PatroniRoleBinding', {
    metadata,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, ...(metadata.namespace ? { namespace: metadata.namespace } : {}) }],
  });
}
