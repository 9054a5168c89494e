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

/** The library constructs that check names, per app, and the result of the current check pass. */
const nameChecks = new WeakMap<IConstruct, { scopes: Set<IConstruct>; pass?: NameCheckPass }>();

interface NameCheckPass {
  /** Each checking scope's errors. */
  readonly errors: Map<IConstruct, string[]>;
  /** The scopes known when the pass began; any other scope means the tree has grown since. */
  readonly known: Set<IConstruct>;
  readonly served: Set<IConstruct>;
}

/**
 * What an object claims in its namespace, that no other construct's object may claim too: its
 * kind and name, and for a cert-manager Certificate the Secret it writes (two Certificates for
 * one Secret would have it reissued for each one's names in turn). Each claim says how to clash.
 */
interface Claim {
  readonly key: string;
  readonly clash: (owner: IConstruct, mine: ApiObject, other: ApiObject, otherOwner: IConstruct) => string;
}

function claimsOf(object: ApiObject): Claim[] {
  const namespace = object.metadata.namespace ?? '';
  const claims: Claim[] = [{
    key: `object/${object.kind}/${namespace}/${object.name}`,
    clash: (owner, mine, other) => `${owner.node.path}: ${mine.kind} "${mine.name}" is also rendered by ${other.node.path}; `
      + 'set the name prop of one of them to something else',
  }];
  const secretName = object.kind === 'Certificate' ? object.toJson().spec?.secretName : undefined;
  if (typeof secretName === 'string') {
    claims.push({
      key: `certificate-secret/${namespace}/${secretName}`,
      clash: (owner, _mine, _other, otherOwner) => `${owner.node.path}: tls.secretName "${secretName}" is also the Secret of the Certificate of `
        + `${otherOwner.node.path}: each component needs a certificate for its own names; give each its own tls.secretName, or leave it unset for <name>-tls`,
    });
  }
  return claims;
}

/**
 * Every checking scope's errors, from one walk of the tree per validation pass. cdk8s runs a
 * pass per chart, so anything per construct and per pass would make synthesis quadratic in the
 * number of constructs. A scope asking a second time, or a scope added since, starts a new pass.
 */
function nameErrors(scope: IConstruct): string[] {
  const checks = nameChecks.get(scope.node.root)!;
  let pass = checks.pass;
  if (!pass || pass.served.has(scope) || !pass.known.has(scope)) {
    pass = { errors: checkNames(scope.node.root, checks.scopes), known: new Set(checks.scopes), served: new Set() };
    checks.pass = pass;
  }
  pass.served.add(scope);
  return pass.errors.get(scope) ?? [];
}

/** For each checking scope, its objects whose claims (kind and name, a Certificate's Secret) another construct's object has too. */
function checkNames(root: IConstruct, scopes: Set<IConstruct>): Map<IConstruct, string[]> {
  const byKey = new Map<string, Array<{ object: ApiObject; claim: Claim }>>();
  // An object belongs to its nearest checking ancestor; a user's own objects belong to none.
  const owners = new Map<ApiObject, IConstruct | undefined>();
  for (const object of root.node.findAll()) {
    if (!(object instanceof ApiObject)) continue;
    for (const claim of claimsOf(object)) {
      const same = byKey.get(claim.key);
      if (same) same.push({ object, claim }); else byKey.set(claim.key, [{ object, claim }]);
    }
    let owner = object.node.scope;
    while (owner && !scopes.has(owner)) owner = owner.node.scope;
    owners.set(object, owner);
  }
  const errors = new Map<IConstruct, string[]>();
  for (const same of byKey.values()) {
    if (same.length < 2) continue;
    for (const { object: mine, claim } of same) {
      const owner = owners.get(mine);
      const other = same.find(({ object }) => owners.get(object) !== owner);
      if (!owner || !other) continue;
      const otherOwner = owners.get(other.object) ?? other.object;
      errors.set(owner, [...(errors.get(owner) ?? []), claim.clash(owner, mine, other.object, otherOwner)]);
    }
  }
  return errors;
}

/**
 * Fails synthesis when an object of `scope` has the kind, namespace and name of an object of
 * another construct anywhere in the app: Kubernetes would keep only one of them.
 */
export function validateUniqueNames(scope: IConstruct): void {
  const root = scope.node.root;
  if (!nameChecks.has(root)) nameChecks.set(root, { scopes: new Set() });
  nameChecks.get(root)!.scopes.add(scope);
  scope.node.addValidation({ validate: () => nameErrors(scope) });
}
