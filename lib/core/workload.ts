import { ApiObject, Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { IConstruct } from 'constructs';
import { ResolvedCredentials } from './credentials';
import { ComponentLabels, metadataLabels, selectorLabels } from './labels';

/** Metadata of an object of the component: its name, the chart's namespace and the labels. */
export function objectMeta(scope: IConstruct, name: string, labels: ComponentLabels, extraLabels: { [key: string]: string }): k8s.ObjectMeta {
  const namespace = Chart.of(scope).namespace;
  return { name, ...(namespace ? { namespace } : {}), labels: metadataLabels(labels, extraLabels) };
}

/** A Secret's username and password keys as files `<dir>/username` and `<dir>/password` of a projected volume. */
export function secretProjection(dir: string, credentials: ResolvedCredentials): k8s.VolumeProjection {
  return {
    secret: {
      name: credentials.secretName,
      items: [{ key: credentials.usernameKey, path: `${dir}/username` }, { key: credentials.passwordKey, path: `${dir}/password` }],
    },
  };
}

/** A ServiceAccount that mounts no API token: none of the library's pods talks to the API server. */
export function tokenlessServiceAccount(scope: IConstruct, name: string, labels: ComponentLabels, extraLabels: { [key: string]: string }): void {
  new k8s.KubeServiceAccount(scope, 'ServiceAccount', {
    metadata: objectMeta(scope, name, labels, extraLabels),
    automountServiceAccountToken: false,
  });
}

/** At most one of the pods the labels select may be evicted at a time. */
export function oneAtATimeDisruptionBudget(scope: IConstruct, name: string, labels: ComponentLabels,
  extraLabels: { [key: string]: string }, withComponent: boolean): void {
  new k8s.KubePodDisruptionBudget(scope, 'DisruptionBudget', {
    metadata: objectMeta(scope, name, labels, extraLabels),
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selectorLabels(labels, withComponent) } },
  });
}

/** A volume mount, read-only when asked. */
export function volumeMount(name: string, mountPath: string, readOnly = false): k8s.VolumeMount {
  return { name, mountPath, ...(readOnly ? { readOnly } : {}) };
}

/**
 * Fails synthesis when an object of `scope` has the kind, namespace and name of an object of
 * another construct anywhere in the app: Kubernetes would keep only one of them.
 */
export function validateUniqueNames(scope: IConstruct): void {
  scope.node.addValidation({
    validate: () => {
      const objects = scope.node.root.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject);
      const own = (object: ApiObject) => object.node.path.startsWith(`${scope.node.path}/`);
      const key = (object: ApiObject) => `${object.kind}/${object.metadata.namespace ?? ''}/${object.name}`;
      const errors: string[] = [];
      for (const mine of objects.filter(own)) {
        const other = objects.find((object) => !own(object) && key(object) === key(mine));
        if (other) {
          errors.push(`${scope.node.path}: ${mine.kind} "${mine.name}" is also rendered by ${other.node.path}; `
            + 'set the name prop of one of them to something else');
        }
      }
      return errors;
    },
  });
}
