import { randomBytes, randomUUID } from 'crypto';
import { IncomingMessage, ServerResponse } from 'http';
import { createServer, Server } from 'https';
import { TestCa } from './test-ca';

/**
 * The core (v1) resources the fake serves, with their kinds: what Patroni 4.0's Kubernetes store
 * touches (patroni/dcs/kubernetes.py): pods, its ConfigMaps or, with `use_endpoints`, Endpoints
 * and the `<scope>-config` Service.
 */
const KINDS: { readonly [resource: string]: string } = { pods: 'Pod', configmaps: 'ConfigMap', endpoints: 'Endpoints', services: 'Service' };

/** The patch types the fake applies; Patroni sends strategic merge patches of metadata only. */
const PATCH_TYPES = ['application/strategic-merge-patch+json', 'application/merge-patch+json'];

/** One API request as the fake saw and answered it. */
export interface KubeRequest {
  /** When it arrived (Date.now()). */
  readonly at: number;
  /** The ServiceAccount it authenticated as (`namespace/name`), and the pod its token was issued for. */
  readonly user?: string;
  readonly pod?: string;
  /** The RBAC verb: get, list, watch, create, update, patch, delete, deletecollection. */
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;
  /** The object's name; empty for collections and create. */
  readonly name: string;
  readonly status: number;
  /** For PATCH, the content type sent. */
  readonly contentType?: string;
}

/** One write the store made, as watches see it: the object before and after (undefined when absent). */
interface Change {
  readonly at: number;
  readonly resourceVersion: number;
  readonly resource: string;
  readonly namespace: string;
  readonly before?: any;
  readonly after?: any;
}

interface Watcher {
  /** The pod whose token opened it. */
  readonly pod: string;
  readonly resource: string;
  readonly namespace: string;
  readonly selector: LabelSelector;
  readonly response: ServerResponse;
  /** The events written so far, in order: each waits for the one before. */
  delivered: Promise<void>;
}

/** A Role's rule, as rendered. */
interface PolicyRule {
  readonly apiGroups?: string[];
  readonly resources?: string[];
  readonly verbs: string[];
  readonly resourceNames?: string[];
  readonly nonResourceURLs?: string[];
}

/** One (verb, resource, name) a Role grants; name '' when the rule names no resources. */
export interface Grant {
  readonly role: string;
  readonly verb: string;
  readonly resource: string;
  readonly name: string;
}

class ApiError extends Error {
  constructor(public readonly code: number, public readonly reason: string, message: string) {
    super(message);
  }
}

/** An equality-based label selector (`k=v,k2=v2`), the only form Patroni sends; anything else is refused. */
class LabelSelector {
  public static parse(text: string | null): LabelSelector {
    const terms: [string, string][] = [];
    for (const term of (text ?? '').split(',').filter((t) => t !== '')) {
      const match = /^([A-Za-z0-9._/-]+)==?([A-Za-z0-9._-]*)$/.exec(term);
      if (!match) throw new ApiError(400, 'BadRequest', `label selector term ${JSON.stringify(term)}: the fake API implements only key=value`);
      terms.push([match[1], match[2]]);
    }
    return new LabelSelector(terms);
  }

  private constructor(private readonly terms: [string, string][]) {}

  public matches(object: any): boolean {
    const labels = object?.metadata?.labels ?? {};
    return this.terms.every(([key, value]) => labels[key] === value);
  }
}

/** Strategic merge and JSON merge patches agree on maps (merged, null deletes a key); lists are not implemented. */
function mergePatch(target: any, patch: any, path: string): any {
  if (Array.isArray(patch)) throw new ApiError(415, 'UnsupportedMediaType', `${path}: the fake API does not merge lists in patches`);
  if (patch === null || typeof patch !== 'object') return patch;
  const result = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value, `${path}.${key}`);
  }
  return result;
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value));

/**
 * A Kubernetes API server for the e2e tests, on 127.0.0.1 over HTTPS with a test CA: the subset
 * of the core v1 API Patroni 4.0's Kubernetes store uses, with an API server's semantics where
 * Patroni depends on them. Every write bumps one resourceVersion counter; a PATCH or PUT whose
 * body names another resourceVersion than the object's is refused with 409 Conflict (the leader
 * lock is a compare-and-swap on it) and a create of an existing object too; a patch that changes
 * nothing keeps the version. Lists return the collection's resourceVersion; a watch from a
 * resourceVersion replays the changes after it and then streams them as newline-separated JSON
 * events on a chunked response (ADDED, MODIFIED, DELETED, also when a label change moves an
 * object in or out of the selector).
 *
 * Bearer tokens are issued per pod for its ServiceAccount, as the kubelet mounts them; every
 * request is authorized against the Roles bound to that ServiceAccount, as rendered, and refused
 * with 403 otherwise (unauthenticated: 401). Every request is recorded, so a test can tell which
 * permissions Patroni used and which grants it never needed. What Patroni does not send is
 * refused rather than approximated: field selectors, set-based label selectors, JSON patches,
 * lists in merge patches, cluster-scoped and non-core paths.
 */
export class FakeKubeApi {
  /** Starts the server with the CA's certificate for 127.0.0.1; `objects` are the rendered manifests (Roles and RoleBindings are read). */
  public static async start(ca: TestCa, objects: any[]): Promise<FakeKubeApi> {
    const certificate = ca.issue('kube-apiserver', { dnsNames: ['kubernetes.default.svc'], ipAddresses: ['127.0.0.1'] });
    const api = new FakeKubeApi(objects, certificate['tls.key'], certificate['tls.crt']);
    await new Promise<void>((resolve, reject) => {
      api.server.once('error', reject);
      api.server.listen(0, '127.0.0.1', () => resolve());
    });
    return api;
  }

  public readonly requests: KubeRequest[] = [];
  private readonly server: Server;
  private readonly store = new Map<string, any>();
  private readonly changes: Change[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly tokens = new Map<string, { serviceAccount: string; pod: string }>();
  private readonly roles: { name: string; namespace: string; rules: PolicyRule[] }[];
  private readonly bindings: any[];
  private resourceVersion = 1;
  private watchLagMs = 0;
  /** Pods cut off from the API, with the requests they sent since, left unanswered. */
  private readonly isolated = new Map<string, IncomingMessage[]>();

  private constructor(objects: any[], key: string, cert: string) {
    this.roles = objects.filter((o) => o.kind === 'Role').map((o) => ({ name: o.metadata.name, namespace: o.metadata.namespace ?? 'default', rules: o.rules ?? [] }));
    this.bindings = objects.filter((o) => o.kind === 'RoleBinding');
    for (const binding of this.bindings) {
      if (binding.roleRef.kind !== 'Role') throw new Error(`RoleBinding ${binding.metadata.name} refers to a ${binding.roleRef.kind}: the fake API grants only Roles`);
    }
    this.server = createServer({ key, cert }, (request, response) => this.handle(request, response));
    // Patroni keeps its connections in a pool between loops, as it would with an API server.
    this.server.keepAliveTimeout = 120_000;
  }

  public get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the fake Kubernetes API does not listen');
    return address.port;
  }

  /** A bearer token for `pod`, authenticating as the ServiceAccount `namespace/name`, as the kubelet mounts it. */
  public issueToken(namespace: string, serviceAccount: string, pod: string): string {
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, { serviceAccount: `${namespace}/${serviceAccount}`, pod });
    return token;
  }

  /** A write by a controller or an administrator, not authorized nor recorded: the StatefulSet creating its pods, say. */
  public create(resource: string, object: any): any {
    return clone(this.write(resource, object.metadata.namespace ?? 'default', object.metadata.name, undefined, object, true));
  }

  /** A patch by an administrator (`kubectl annotate`, say): not authorized nor recorded, no resourceVersion precondition. */
  public patch(resource: string, namespace: string, name: string, patch: any): any {
    const existing = this.store.get(this.key(resource, namespace, name));
    if (!existing) throw new Error(`no ${resource} ${namespace}/${name}`);
    return clone(this.write(resource, namespace, name, undefined, mergePatch(clone(existing), patch, resource), false));
  }

  /**
   * From now on the watches receive each change `ms` later (in order), as from an API server
   * whose watch cache lags; 0 ends the lag for the changes that follow.
   */
  public lagWatches(ms: number): void {
    this.watchLagMs = ms;
  }

  /**
   * Cuts a pod off from the API, as a network partition would: its open connections break (its
   * watches end) and what it sends from now on gets no answer until reconnect().
   */
  public isolate(pod: string): void {
    this.isolated.set(pod, []);
    for (const watcher of [...this.watchers].filter((w) => w.pod === pod)) watcher.response.destroy();
  }

  /** Ends a pod's isolation: the requests it sent meanwhile fail (their connections break), the next ones are served. */
  public reconnect(pod: string): void {
    for (const request of this.isolated.get(pod) ?? []) request.socket.destroy();
    this.isolated.delete(pod);
  }

  /** The object now, or undefined. */
  public get(resource: string, namespace: string, name: string): any {
    const object = this.store.get(this.key(resource, namespace, name));
    return object && clone(object);
  }

  /** The objects of a resource in a namespace now. */
  public list(resource: string, namespace: string): any[] {
    return this.selected(resource, namespace, LabelSelector.parse('')).map(clone);
  }

  /**
   * The writes made to one object, oldest first, with their time: [Date.now(), object after] (undefined once deleted).
   * A test reads when a label changed from it.
   */
  public history(resource: string, namespace: string, name: string): { at: number; object?: any }[] {
    return this.changes.filter((c) => c.resource === resource && c.namespace === namespace && (c.after ?? c.before).metadata.name === name)
      .map((c) => ({ at: c.at, object: c.after && clone(c.after) }));
  }

  /** Every (verb, resource, name) the Roles bound to the ServiceAccount grant in its namespace. */
  public grants(namespace: string, serviceAccount: string): Grant[] {
    return this.rolesOf(namespace, `${namespace}/${serviceAccount}`).flatMap((role) => role.rules.flatMap((rule) =>
      (rule.resources ?? []).flatMap((resource) => rule.verbs.flatMap((verb) =>
        (rule.resourceNames?.length ? rule.resourceNames : ['']).map((name) => ({ role: role.name, verb, resource, name }))))));
  }

  /** The grants no request of the ServiceAccount was allowed by: a request by name counts for a grant of its name or of all names. */
  public unusedGrants(namespace: string, serviceAccount: string): Grant[] {
    const used = this.requests.filter((r) => r.user === `${namespace}/${serviceAccount}` && r.status !== 403 && r.status !== 401);
    return this.grants(namespace, serviceAccount).filter((grant) => !used.some((r) => r.verb === grant.verb && r.resource === grant.resource
      && r.namespace === namespace && (grant.name === '' || grant.name === r.name)));
  }

  /** Ends the watches and stops listening. */
  public async stop(): Promise<void> {
    for (const watcher of this.watchers) watcher.response.end();
    this.watchers.clear();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const identity = this.tokens.get(/^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '');
      const held = identity && this.isolated.get(identity.pod);
      if (held) return held.push(request);
      const url = new URL(request.url ?? '/', 'https://127.0.0.1');
      const match = /^\/api\/v1\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname);
      const watch = ['true', 'True', '1'].includes(url.searchParams.get('watch') ?? '');
      const name = match?.[3] ? decodeURIComponent(match[3]) : '';
      const verb = this.verbOf(request.method ?? 'GET', name !== '', watch);
      const record = (status: number) => this.requests.push({
        at: Date.now(), user: identity?.serviceAccount, pod: identity?.pod, verb, resource: match?.[2] ?? url.pathname,
        namespace: match?.[1] ?? '', name, status, contentType: request.method === 'PATCH' ? request.headers['content-type'] : undefined,
      });
      try {
        if (!identity) throw new ApiError(401, 'Unauthorized', 'no valid bearer token');
        if (!match) throw new ApiError(403, 'Forbidden', `${request.method} ${url.pathname}: the fake API serves only namespaced core v1 resources`);
        const [, namespace, resource] = match;
        this.authorize(identity.serviceAccount, verb, resource, namespace, name);
        if (!(resource in KINDS)) throw new ApiError(404, 'NotFound', `the server could not find the requested resource ${resource}`);
        if (url.searchParams.has('fieldSelector')) throw new ApiError(400, 'BadRequest', 'the fake API does not implement field selectors');
        if (verb === 'watch') {
          record(200);
          const selector = LabelSelector.parse(url.searchParams.get('labelSelector'));
          return this.watch(identity.pod, resource, namespace, selector, url.searchParams.get('resourceVersion'), response);
        }
        const result = this.serve(verb, resource, namespace, name, url, body, String(request.headers['content-type'] ?? ''));
        record(result.status);
        this.reply(response, result.status, result.body);
      } catch (error) {
        // A fault of the fake itself is a 500, which the test sees among the requests.
        const failure = error instanceof ApiError ? error : new ApiError(500, 'InternalError', String(error));
        record(failure.code);
        const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: failure.message, reason: failure.reason, code: failure.code };
        this.reply(response, failure.code, status);
      }
    });
  }

  private verbOf(method: string, named: boolean, watch: boolean): string {
    if (method === 'GET') return watch ? 'watch' : named ? 'get' : 'list';
    if (method === 'DELETE') return named ? 'delete' : 'deletecollection';
    return { POST: 'create', PUT: 'update', PATCH: 'patch' }[method] ?? method.toLowerCase();
  }

  private rolesOf(namespace: string, serviceAccount: string) {
    const bound = this.bindings.filter((b) => (b.metadata.namespace ?? 'default') === namespace && (b.subjects ?? []).some((s: any) =>
      s.kind === 'ServiceAccount' && `${s.namespace ?? namespace}/${s.name}` === serviceAccount));
    return this.roles.filter((role) => role.namespace === namespace && bound.some((b) => b.roleRef.name === role.name));
  }

  /** RBAC as the API server decides it: a rule allows when its groups, resources, verbs and names (none: all; create and collections: never by name) match. */
  private authorize(serviceAccount: string, verb: string, resource: string, namespace: string, name: string): void {
    const has = (list: string[] | undefined, value: string) => (list ?? []).includes(value) || (list ?? []).includes('*');
    const allowed = this.rolesOf(namespace, serviceAccount).some((role) => role.rules.some((rule) => has(rule.apiGroups, '') && has(rule.resources, resource)
      && has(rule.verbs, verb) && (!rule.resourceNames?.length || (name !== '' && rule.resourceNames.includes(name)))));
    if (!allowed) {
      const [saNamespace, saName] = serviceAccount.split('/');
      throw new ApiError(403, 'Forbidden', `${resource}${name ? ` "${name}"` : ''} is forbidden: User "system:serviceaccount:${saNamespace}:${saName}" `
        + `cannot ${verb} resource "${resource}" in API group "" in the namespace "${namespace}"`);
    }
  }

  private serve(verb: string, resource: string, namespace: string, name: string, url: URL, text: string,
    contentType: string): { status: number; body: any } {
    const existing = this.store.get(this.key(resource, namespace, name));
    const missing = () => new ApiError(404, 'NotFound', `${resource} "${name}" not found`);
    const parse = () => {
      try {
        return JSON.parse(text);
      } catch {
        throw new ApiError(400, 'BadRequest', `the request body is no JSON: ${text.slice(0, 80)}`);
      }
    };
    switch (verb) {
      case 'get':
        if (!existing) throw missing();
        return { status: 200, body: existing };
      case 'list': {
        const selector = LabelSelector.parse(url.searchParams.get('labelSelector'));
        const items = this.selected(resource, namespace, selector);
        return { status: 200, body: { kind: `${this.kindOf(resource)}List`, apiVersion: 'v1', metadata: { resourceVersion: String(this.resourceVersion) }, items } };
      }
      case 'create': {
        const object = parse();
        if (object.metadata?.resourceVersion) throw new ApiError(400, 'BadRequest', 'resourceVersion should not be set on objects to be created');
        return { status: 201, body: this.write(resource, namespace, object.metadata?.name, undefined, object, true) };
      }
      case 'update': {
        if (!existing) throw missing();
        const object = parse();
        return { status: 200, body: this.write(resource, namespace, name, object.metadata?.resourceVersion, object, false) };
      }
      case 'patch': {
        if (!existing) throw missing();
        if (!PATCH_TYPES.includes(contentType.split(';')[0].trim())) {
          throw new ApiError(415, 'UnsupportedMediaType', `the fake API applies only ${PATCH_TYPES.join(', ')}, not ${contentType}`);
        }
        const patch = parse();
        const patched = mergePatch(clone(existing), patch, resource);
        patched.metadata.resourceVersion = existing.metadata.resourceVersion;
        return { status: 200, body: this.write(resource, namespace, name, patch.metadata?.resourceVersion, patched, false) };
      }
      case 'delete':
        if (!existing) throw missing();
        this.record(resource, namespace, existing, undefined);
        return { status: 200, body: existing };
      case 'deletecollection': {
        const selector = LabelSelector.parse(url.searchParams.get('labelSelector'));
        for (const object of this.selected(resource, namespace, selector)) this.record(resource, namespace, object, undefined);
        return { status: 200, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' } };
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `${verb} is not served`);
    }
  }

  /**
   * Creates (`creating`) or replaces an object after the API server's checks: names and
   * namespaces agree, a create finds no object, a given resourceVersion is the current one.
   * Server-set metadata is kept; a write that changes nothing keeps the version.
   */
  private write(resource: string, namespace: string, name: string | undefined, precondition: string | undefined, object: any,
    creating: boolean): any {
    if (!name) throw new ApiError(422, 'Invalid', 'metadata.name: Required value');
    if (object.metadata?.namespace !== undefined && object.metadata.namespace !== namespace) {
      throw new ApiError(400, 'BadRequest', `the namespace of the object (${object.metadata.namespace}) does not match the namespace on the request (${namespace})`);
    }
    if (object.metadata?.name !== undefined && object.metadata.name !== name) {
      throw new ApiError(400, 'BadRequest', `the name of the object (${object.metadata.name}) does not match the name on the URL (${name})`);
    }
    const existing = this.store.get(this.key(resource, namespace, name));
    if (creating && existing) throw new ApiError(409, 'AlreadyExists', `${resource} "${name}" already exists`);
    if (precondition !== undefined && existing && precondition !== existing.metadata.resourceVersion) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; `
        + 'please apply your changes to the latest version and try again');
    }
    const next = clone(object);
    next.apiVersion = 'v1';
    next.kind = this.kindOf(resource);
    next.metadata = {
      ...next.metadata, name, namespace,
      uid: existing?.metadata.uid ?? randomUUID(),
      creationTimestamp: existing?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      resourceVersion: existing?.metadata.resourceVersion,
    };
    if (existing && JSON.stringify(existing) === JSON.stringify(next)) return existing;
    next.metadata.resourceVersion = String(++this.resourceVersion);
    this.record(resource, namespace, existing, next);
    return next;
  }

  /** Stores a change (`after` undefined: deleted) and sends it to the watches it concerns. */
  private record(resource: string, namespace: string, before: any, after: any): void {
    const key = this.key(resource, namespace, (after ?? before).metadata.name);
    if (after) {
      this.store.set(key, after);
    } else {
      this.store.delete(key);
      after = undefined;
      before = { ...before, metadata: { ...before.metadata, resourceVersion: String(++this.resourceVersion) } };
    }
    const change = { resourceVersion: this.resourceVersion, resource, namespace, before, after, at: Date.now() };
    this.changes.push(change);
    for (const watcher of this.watchers) this.send(watcher, change);
  }

  private watch(pod: string, resource: string, namespace: string, selector: LabelSelector, from: string | null, response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    response.flushHeaders();
    const watcher: Watcher = { pod, resource, namespace, selector, response, delivered: Promise.resolve() };
    if (from === null || from === '' || from === '0') {
      // No version: the current objects first, as synthetic ADDED events.
      for (const object of this.selected(resource, namespace, selector)) response.write(`${JSON.stringify({ type: 'ADDED', object })}\n`);
    } else {
      for (const change of this.changes.filter((c) => c.resourceVersion > Number(from))) this.send(watcher, change);
    }
    this.watchers.add(watcher);
    response.on('close', () => this.watchers.delete(watcher));
  }

  /** An event for the watcher, if the change concerns it: a label change that moves the object across its selector is ADDED or DELETED. */
  private send(watcher: Watcher, change: Change): void {
    if (watcher.resource !== change.resource || watcher.namespace !== change.namespace) return;
    const before = change.before !== undefined && watcher.selector.matches(change.before);
    const after = change.after !== undefined && watcher.selector.matches(change.after);
    const type = before && after ? 'MODIFIED' : after ? 'ADDED' : before ? 'DELETED' : undefined;
    if (!type) return;
    const line = `${JSON.stringify({ type, object: change.after ?? change.before })}\n`;
    if (this.watchLagMs === 0) {
      watcher.delivered = watcher.delivered.then(() => this.deliver(watcher, line));
      return;
    }
    const due = Date.now() + this.watchLagMs;
    watcher.delivered = watcher.delivered.then(() => new Promise<void>((resolve) => setTimeout(() => {
      this.deliver(watcher, line);
      resolve();
    }, Math.max(0, due - Date.now()))));
  }

  /** The stored objects of a resource in a namespace that the selector matches. */
  private selected(resource: string, namespace: string, selector: LabelSelector): any[] {
    return [...this.store.values()].filter((o) => o.kind === this.kindOf(resource) && o.metadata.namespace === namespace && selector.matches(o));
  }

  /** Writes an event unless the watch has ended meanwhile. */
  private deliver(watcher: Watcher, line: string): void {
    if (!watcher.response.writableEnded && !watcher.response.destroyed) watcher.response.write(line);
  }

  private kindOf(resource: string): string {
    return KINDS[resource];
  }

  private key(resource: string, namespace: string, name: string): string {
    return `${resource}/${namespace}/${name}`;
  }

  private reply(response: ServerResponse, status: number, body: any): void {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  }
}
