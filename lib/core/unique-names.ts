import { ApiObject } from 'cdk8s';
import { IConstruct } from 'constructs';
import { addLibraryValidation } from './validation-clock';

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

/** An object's claim, with the checking construct that renders the object (none for a user's own object). */
interface ClaimEntry {
  readonly object: ApiObject;
  readonly owner?: IConstruct;
  readonly claim: Claim;
}

/**
 * One app's objects by what they claim, filled as objects are found and never rebuilt. cdk8s
 * validates the whole app once per chart, so a check that walked every object on every pass
 * would make synthesis quadratic in the number of charts; this one costs, per pass, a walk of
 * the user's own constructs (down to the library's) and what is new since the last pass.
 */
class NameIndex {
  /** The library constructs that check their objects' names, with what each was last told. */
  private readonly scopes = new Map<IConstruct, ScopeState>();
  private readonly indexed = new WeakSet<ApiObject>();
  private readonly byKey = new Map<string, ClaimEntry[]>();
  /** Claim keys in the order first seen, so errors come in tree order. */
  private readonly keyOrder = new Map<string, number>();
  /** Keys claimed more than once: the only ones a pass looks at. */
  private readonly clashing = new Set<string>();
  /**
   * A checking construct's number of children when its subtree was indexed. The library renders a
   * construct's objects when it is built, so its subtree changes only if a user adds to it
   * directly (an escape hatch), which changes this number.
   */
  private readonly indexedChildren = new WeakMap<IConstruct, number>();
  private pass = 0;
  /** How many scopes the current pass knew when it began. */
  private scopesKnown = 0;
  /** The scopes told of errors in the current pass. */
  private erring: ScopeState[] = [];

  public register(scope: IConstruct): ScopeState {
    const state: ScopeState = { rank: this.scopes.size, servedPass: -1, errors: [] };
    this.scopes.set(scope, state);
    return state;
  }

  /** A scope's errors; a scope asking twice, or one added since, starts a new pass. */
  public errorsOf(scope: IConstruct, state: ScopeState): string[] {
    if (state.servedPass === this.pass || state.rank >= this.scopesKnown) this.newPass(scope.node.root);
    state.servedPass = this.pass;
    return state.errors;
  }

  private newPass(root: IConstruct): void {
    this.pass += 1;
    this.scopesKnown = this.scopes.size;
    this.indexTree(root);
    for (const state of this.erring) state.errors = [];
    this.erring = [...this.errors()].map(([scope, errors]) => Object.assign(this.scopes.get(scope)!, { errors }));
  }

  /** Indexes new objects: the user's constructs are walked, a checking construct's subtree once. */
  private indexTree(node: IConstruct): void {
    for (const child of node.node.children) {
      if (this.scopes.has(child)) {
        const children = child.node.children.length;
        if (this.indexedChildren.get(child) === children) continue;
        this.indexedChildren.set(child, children);
        for (const object of child.node.findAll()) if (ApiObject.isApiObject(object)) this.add(object);
      } else if (ApiObject.isApiObject(child)) {
        this.add(child);
      } else {
        this.indexTree(child);
      }
    }
  }

  private add(object: ApiObject): void {
    if (this.indexed.has(object)) return;
    this.indexed.add(object);
    // An object belongs to its nearest checking ancestor; a user's own objects belong to none.
    let owner = object.node.scope;
    while (owner && !this.scopes.has(owner)) owner = owner.node.scope;
    for (const claim of claimsOf(object)) {
      const same = this.byKey.get(claim.key);
      if (same) {
        same.push({ object, owner, claim });
        this.clashing.add(claim.key);
      } else {
        this.byKey.set(claim.key, [{ object, owner, claim }]);
        this.keyOrder.set(claim.key, this.keyOrder.size);
      }
    }
  }

  /** For each checking construct, its objects whose claims another construct's object has too. */
  private errors(): Map<IConstruct, string[]> {
    const errors = new Map<IConstruct, string[]>();
    const keys = [...this.clashing].sort((a, b) => this.keyOrder.get(a)! - this.keyOrder.get(b)!);
    for (const key of keys) {
      // A user may take an object out of the tree again (tryRemoveChild).
      const same = this.byKey.get(key)!.filter(({ object }) => inTree(object));
      for (const { object: mine, owner, claim } of same) {
        const other = same.find((entry) => entry.owner !== owner);
        if (!owner || !other) continue;
        errors.set(owner, [...(errors.get(owner) ?? []), claim.clash(owner, mine, other.object, other.owner ?? other.object)]);
      }
    }
    return errors;
  }
}

/** Whether each construct from the object up is still its parent's child. */
function inTree(construct: IConstruct): boolean {
  for (let node = construct; node.node.scope; node = node.node.scope) {
    if (node.node.scope.node.tryFindChild(node.node.id) !== node) return false;
  }
  return true;
}

/** What a checking construct was last told, so asking costs no lookup. */
interface ScopeState {
  readonly rank: number;
  servedPass: number;
  errors: string[];
}

const indexes = new WeakMap<IConstruct, NameIndex>();

/**
 * Fails synthesis when an object of `scope` has the kind, namespace and name of an object of
 * another construct anywhere in the app: Kubernetes would keep only one of them.
 */
export function validateUniqueNames(scope: IConstruct): void {
  const root = scope.node.root;
  const index = indexes.get(root) ?? new NameIndex();
  indexes.set(root, index);
  const state = index.register(scope);
  addLibraryValidation(scope, () => index.errorsOf(scope, state));
}
