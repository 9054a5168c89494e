import { ChildProcess } from 'child_process';
import { createHash } from 'crypto';
import { existsSync, lstatSync, mkdirSync, readlinkSync, writeFileSync } from 'fs';
import { isAbsolute, join, posix } from 'path';
import { Document } from 'yaml';
import { DaemonSet } from './daemons';
import { FakeKubeApi } from './fake-kube-api';
import { PatroniDcs } from './patroni-harness';
import { CommandResult, giveToDaemonUser, RootBinds, runAsyncIn, startDaemonIn } from './postgres-bin';
import { TestCa } from './test-ca';
import { findObject } from '../../support/synth';

/** Where the kubelet mounts a pod's ServiceAccount token, CA and namespace, and where Patroni reads them (dcs/kubernetes.py). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** `path` inside `root` with the root's symlinks followed inside it (its /var/run is a link to /run, which mount would follow on the host). */
function pathInRoot(root: string, path: string): string {
  let resolved = '/';
  for (const part of path.split('/').filter(Boolean)) {
    const next = posix.join(resolved, part);
    const onDisk = join(root, next);
    if (existsSync(onDisk) && lstatSync(onDisk).isSymbolicLink()) {
      const link = readlinkSync(onDisk);
      resolved = pathInRoot(root, isAbsolute(link) ? link : posix.join(resolved, link));
    } else {
      resolved = next;
    }
  }
  return resolved;
}

/**
 * A pod of the StatefulSet as its controller creates it: the template's labels and annotations
 * with the controller's own labels, the pod's hostname and subdomain, an owner reference; the
 * status of a running pod on loopback.
 */
export function statefulSetPod(statefulSet: any, ordinal: number): any {
  const name = `${statefulSet.metadata.name}-${ordinal}`;
  const template = statefulSet.spec.template;
  const revision = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: statefulSet.metadata.namespace ?? 'default',
      labels: {
        ...template.metadata?.labels,
        'controller-revision-hash': `${statefulSet.metadata.name}-${revision}`,
        'statefulset.kubernetes.io/pod-name': name,
        'apps.kubernetes.io/pod-index': String(ordinal),
      },
      ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: statefulSet.metadata.name, uid: 'statefulset', controller: true, blockOwnerDeletion: true }],
    },
    spec: { ...template.spec, hostname: name, subdomain: statefulSet.spec.serviceName },
    status: { phase: 'Running', podIP: '127.0.0.1', hostIP: '127.0.0.1' },
  };
}

/**
 * Patroni's Kubernetes store as the rendered pods use it, against a FakeKubeApi: patroni.yml's
 * `kubernetes` section and the PATRONI_KUBERNETES_* variables as rendered; the StatefulSet's pods
 * registered in the API; each member finds the API as a pod does, through KUBERNETES_SERVICE_HOST
 * and _PORT (the fake's loopback address instead of the cluster's Service) and the token, CA and
 * namespace the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount, bound there in
 * the member's own mount namespace (a token per pod, for the pod's ServiceAccount). The members
 * run in a daemon root: the token's path is fixed, so only a root gives each member its own.
 */
export class KubernetesDcs implements PatroniDcs {
  /** Starts the API, with the rendered Roles, and registers the pods of the StatefulSet `name`. */
  public static async start(scratch: string, objects: any[], name: string, daemons: DaemonSet): Promise<KubernetesDcs> {
    if (daemons.root === undefined) throw new Error(`the Kubernetes store's members run in a daemon root (a token per pod at ${SERVICE_ACCOUNT_DIR}), not ${daemons.name}'s host`);
    const statefulSet = findObject(objects, 'StatefulSet', name);
    const namespace = statefulSet.metadata.namespace ?? 'default';
    const serviceAccount = statefulSet.spec.template.spec.serviceAccountName ?? 'default';
    if (statefulSet.spec.template.spec.automountServiceAccountToken === false) {
      throw new Error(`StatefulSet ${name}'s pods mount no ServiceAccount token: Patroni could not reach the API`);
    }
    const dir = join(scratch, 'kubernetes');
    mkdirSync(dir);
    giveToDaemonUser(dir);
    const ca = new TestCa(dir, 'kube');
    const api = await FakeKubeApi.start(ca, objects);
    const accounts: { [pod: string]: string } = {};
    for (let ordinal = 0; ordinal < statefulSet.spec.replicas; ordinal++) {
      const pod = api.create('pods', statefulSetPod(statefulSet, ordinal));
      const account = join(dir, 'serviceaccount', pod.metadata.name);
      mkdirSync(account, { recursive: true });
      // The kubelet's projected volume: root's files, readable by all (defaultMode 0644).
      writeFileSync(join(account, 'token'), api.issueToken(namespace, serviceAccount, pod.metadata.name), { mode: 0o644 });
      writeFileSync(join(account, 'ca.crt'), ca.certificate, { mode: 0o644 });
      writeFileSync(join(account, 'namespace'), namespace, { mode: 0o644 });
      accounts[pod.metadata.name] = account;
    }
    const mountPoint = pathInRoot(daemons.root, SERVICE_ACCOUNT_DIR);
    mkdirSync(join(daemons.root, mountPoint), { recursive: true });
    return new KubernetesDcs(api, daemons, namespace, serviceAccount, accounts, mountPoint);
  }

  private constructor(public readonly api: FakeKubeApi, public readonly daemons: DaemonSet, public readonly namespace: string,
    public readonly serviceAccount: string, private readonly accounts: { [pod: string]: string }, private readonly mountPoint: string) {}

  /** The rendered `kubernetes` section stays as it is. */
  public configure(config: Document): void {
    if (!config.has('kubernetes')) throw new Error('patroni.yml has no kubernetes section');
  }

  /** A field of the member's pod as the API stores it: name, namespace, a label or annotation, the pod's IP or ServiceAccount. */
  public fieldRef(member: string, path: string): string | undefined {
    const pod = this.api.get('pods', this.namespace, member);
    const keyed = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
    if (keyed) return pod?.metadata[keyed[1]]?.[keyed[2]];
    const fields: { [path: string]: string | undefined } = {
      'metadata.name': pod?.metadata.name, 'metadata.namespace': pod?.metadata.namespace, 'metadata.uid': pod?.metadata.uid,
      'spec.serviceAccountName': pod?.spec.serviceAccountName, 'status.podIP': pod?.status.podIP, 'status.hostIP': pod?.status.hostIP,
    };
    return fields[path];
  }

  /** The container's environment, and the API's address as the kubelet gives every pod (KUBERNETES_SERVICE_HOST and _PORT). */
  public environment(_member: string, env: { [name: string]: string }): { [name: string]: string } {
    return { ...env, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(this.api.port) };
  }

  public start(member: string, command: string[], logFile: string, env: { [name: string]: string }): ChildProcess {
    return startDaemonIn(this.daemons, command[0], command.slice(1), logFile, env, this.binds(member));
  }

  public exec(member: string, command: string[], env: { [name: string]: string }): Promise<CommandResult> {
    return runAsyncIn(this.daemons, command[0], command.slice(1), env, this.binds(member));
  }

  /** The API requests by verb, resource and status, and the last ones. */
  public describe(): string {
    const counts = new Map<string, number>();
    for (const r of this.api.requests) counts.set(`${r.verb} ${r.resource} ${r.status}`, (counts.get(`${r.verb} ${r.resource} ${r.status}`) ?? 0) + 1);
    const last = this.api.requests.slice(-10).map((r) => `${new Date(r.at).toISOString()} ${r.pod} ${r.verb} ${r.resource}/${r.name} ${r.status}`);
    return ['--- fake Kubernetes API requests', ...[...counts].map(([key, count]) => `${key}: ${count}`), ...last].join('\n');
  }

  public async stop(): Promise<void> {
    await this.api.stop();
  }

  /** The pod's ServiceAccount directory, bound where the kubelet mounts it. */
  private binds(member: string): RootBinds {
    const account = this.accounts[member];
    if (!account) throw new Error(`no pod ${member} registered in the API`);
    return { [this.mountPoint]: account };
  }
}
