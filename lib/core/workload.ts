import { ApiObject, Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { IConstruct } from 'constructs';
import { ResolvedCredentials } from './credentials';
import { ComponentLabels, metadataLabels, selectorLabels } from './labels';
import { annotationsField, UserMetadata } from './user-metadata';

/** Metadata of an object of the component: its name, the chart's namespace and the labels. */
export function objectMeta(scope: IConstruct, name: string, labels: ComponentLabels, user: UserMetadata): k8s.ObjectMeta {
  const namespace = Chart.of(scope).namespace;
  return { name, ...(namespace ? { namespace } : {}), labels: metadataLabels(labels, user.labels), ...annotationsField(user.annotations) };
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
export function tokenlessServiceAccount(scope: IConstruct, name: string, labels: ComponentLabels, user: UserMetadata): void {
  new k8s.KubeServiceAccount(scope, 'ServiceAccount', {
    metadata: objectMeta(scope, name, labels, user),
    automountServiceAccountToken: false,
  });
}

/** At most one of the pods the labels select may be evicted at a time. */
export function oneAtATimeDisruptionBudget(scope: IConstruct, name: string, labels: ComponentLabels,
  user: UserMetadata, withComponent: boolean): void {
  new k8s.KubePodDisruptionBudget(scope, 'DisruptionBudget', {
    metadata: objectMeta(scope, name, labels, user),
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selectorLabels(labels, withComponent) } },
  });
}

/** A volume mount, read-only when asked. */
export function volumeMount(name: string, mountPath: string, readOnly = false): k8s.VolumeMount {
  return { name, mountPath, ...(readOnly ? { readOnly } : {}) };
}

/** The library constructs that check names, per app, and the object index of the current check pass. */
const nameChecks = new WeakMap<IConstruct, { scopes: IConstruct[]; pass?: NameIndexPass }>();

interface NameIndexPass {
  readonly index: Map<string, ApiObject[]>;
  /** The scopes known when the index was built; any other scope means the tree has grown since. */
  readonly known: Set<IConstruct>;
  readonly served: Set<IConstruct>;
}

const objectKey = (object: ApiObject) => `${object.kind}/${object.metadata.namespace ?? ''}/${object.name}`;

/**
 * The app's objects by kind, namespace and name, built once per validation pass instead of once
 * per construct (which made synthesis quadratic in the number of constructs). A scope asking a
 * second time, or a scope added after the index was built, starts a new pass.
 */
function objectIndex(scope: IConstruct): Map<string, ApiObject[]> {
  const checks = nameChecks.get(scope.node.root)!;
  let pass = checks.pass;
  if (!pass || pass.served.has(scope) || !pass.known.has(scope)) {
    const index = new Map<string, ApiObject[]>();
    for (const object of scope.node.root.node.findAll()) {
      if (object instanceof ApiObject) index.set(objectKey(object), [...(index.get(objectKey(object)) ?? []), object]);
    }
    pass = { index, known: new Set(checks.scopes), served: new Set() };
    checks.pass = pass;
  }
  pass.served.add(scope);
  return pass.index;
}

/**
 * Fails synthesis when an object of `scope` has the kind, namespace and name of an object of
 * another construct anywhere in the app: Kubernetes would keep only one of them.
 */
export function validateUniqueNames(scope: IConstruct): void {
  const root = scope.node.root;
  if (!nameChecks.has(root)) nameChecks.set(root, { scopes: [] });
  nameChecks.get(root)!.scopes.push(scope);
  scope.node.addValidation({
    validate: () => {
      const index = objectIndex(scope);
      const own = (object: ApiObject) => object.node.path.startsWith(`${scope.node.path}/`);
      const errors: string[] = [];
      for (const mine of scope.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject)) {
        const other = (index.get(objectKey(mine)) ?? []).find((object) => !own(object));
        if (other) {
          errors.push(`${scope.node.path}: ${mine.kind} "${mine.name}" is also rendered by ${other.node.path}; `
            + 'set the name prop of one of them to something else');
        }
      }
      return errors;
    },
  });
}
