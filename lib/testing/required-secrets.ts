import { ApiObject } from 'cdk8s';
import { IConstruct } from 'constructs';
import { declaredSecretSources, SecretCreator } from '../core/secret-sources';

/** A Secret that the synthesized app reads and does not create itself. */
export interface RequiredSecret {
  /**
   * Namespace of the Secret: that of the pods reading it.
   * @default - the objects have no namespace (the one `kubectl apply` targets)
   */
  readonly namespace?: string;
  /** Name of the Secret. */
  readonly secretName: string;
  /** The keys the pods read, sorted; empty when a volume mounts the whole Secret. */
  readonly keys: string[];
  /** The objects whose pods read it, as `Kind/name`, sorted. */
  readonly readers: string[];
  /** Who creates it. */
  readonly createdBy: SecretCreator;
  /**
   * What creates it: the Certificate, or the construct path of the cluster the operator runs.
   * @default - nothing in the app: you do
   */
  readonly source?: string;
}

/** Pod specs of a workload object, wherever its kind keeps them. */
export function podSpecs(object: any): any[] {
  if (object.kind === 'Pod') return [object.spec];
  if (object.kind === 'CronJob') return [object.spec?.jobTemplate?.spec?.template?.spec];
  return [object.spec?.template?.spec];
}

/** Every (Secret, keys) a pod spec reads: env, envFrom, Secret and projected volumes, image pull Secrets. */
export function secretReads(spec: any): Array<{ secretName: string; keys: string[] }> {
  if (!spec) return [];
  const containers = [...spec.initContainers ?? [], ...spec.containers ?? []];
  const whole = (secretName: string) => ({ secretName, keys: [] });
  const items = (secretName: string, list: any[] | undefined) => (list ? { secretName, keys: list.map((item) => item.key) } : whole(secretName));
  return [
    ...containers.flatMap((c) => (c.env ?? []).filter((e: any) => e.valueFrom?.secretKeyRef)
      .map((e: any) => ({ secretName: e.valueFrom.secretKeyRef.name, keys: [e.valueFrom.secretKeyRef.key] }))),
    ...containers.flatMap((c) => (c.envFrom ?? []).filter((e: any) => e.secretRef).map((e: any) => whole(e.secretRef.name))),
    ...(spec.volumes ?? []).flatMap((v: any) => [
      ...(v.secret ? [items(v.secret.secretName, v.secret.items)] : []),
      ...(v.projected?.sources ?? []).filter((s: any) => s.secret).map((s: any) => items(s.secret.name, s.secret.items)),
    ]),
    ...(spec.imagePullSecrets ?? []).map((s: any) => ({ secretName: s.name, keys: ['.dockerconfigjson'] })),
  ];
}

/**
 * The Secrets that objects create themselves, by `namespace/name`, with what creates each:
 * `Secret/<name>` for a Secret object, `Certificate/<name>` for a cert-manager Certificate's.
 */
export function secretsCreated(objects: any[]): Map<string, string> {
  const created = new Map<string, string>();
  for (const object of objects) {
    const namespace = object.metadata?.namespace ?? '';
    if (object.kind === 'Secret' && object.apiVersion === 'v1') created.set(`${namespace}/${object.metadata?.name}`, `Secret/${object.metadata?.name}`);
    if (object.kind === 'Certificate' && String(object.apiVersion).startsWith('cert-manager.io/') && object.spec?.secretName) {
      created.set(`${namespace}/${object.spec.secretName}`, `Certificate/${object.metadata?.name}`);
    }
  }
  return created;
}

/**
 * The Secrets an app needs before `kubectl apply`: every Secret its pods read, with the keys,
 * the readers and who creates it (you, cert-manager from the app's Certificates, or the
 * operator of an `ExternalPostgres`). The library never renders a Secret, so this is the list
 * to create, or to check your secret store against. `npm run synth` writes it for the examples.
 */
export class RequiredSecrets {
  /**
   * The Secrets read by the pods of every object under the scope (an App, a Chart or a construct).
   * @param scope where to look
   */
  public static of(scope: IConstruct): RequiredSecret[] {
    const constructs = scope.node.findAll();
    const objects = constructs.filter((c): c is ApiObject => ApiObject.isApiObject(c)).map((o) => o.toJson());
    const key = (namespace: string | undefined, secretName: string) => `${namespace ?? ''}/${secretName}`;
    const sources = new Map<string, { createdBy: SecretCreator; source: string }>();
    for (const construct of constructs) {
      for (const declared of declaredSecretSources(construct)) {
        sources.set(key(declared.namespace, declared.secretName), { createdBy: declared.createdBy, source: construct.node.path });
      }
    }
    const created = secretsCreated(objects);
    for (const [id, creator] of created) {
      if (creator.startsWith('Certificate/')) sources.set(id, { createdBy: SecretCreator.CERT_MANAGER, source: creator });
    }

    const needed = new Map<string, { namespace?: string; secretName: string; keys: Set<string>; readers: Set<string> }>();
    for (const object of objects) {
      const namespace: string | undefined = object.metadata?.namespace;
      // A Secret the app renders itself is not one to create.
      for (const read of podSpecs(object).flatMap(secretReads).filter((r) => created.get(key(namespace, r.secretName))?.startsWith('Secret/') !== true)) {
        const entry = needed.get(key(namespace, read.secretName))
          ?? { ...(namespace !== undefined ? { namespace } : {}), secretName: read.secretName, keys: new Set<string>(), readers: new Set<string>() };
        read.keys.forEach((k) => entry.keys.add(k));
        entry.readers.add(`${object.kind}/${object.metadata?.name}`);
        needed.set(key(namespace, read.secretName), entry);
      }
    }
    return [...needed.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, entry]) => {
      const source = sources.get(id);
      return {
        ...(entry.namespace !== undefined ? { namespace: entry.namespace } : {}),
        secretName: entry.secretName,
        keys: [...entry.keys].sort(),
        readers: [...entry.readers].sort(),
        createdBy: source?.createdBy ?? SecretCreator.USER,
        ...(source ? { source: source.source } : {}),
      };
    });
  }

  /**
   * {@link RequiredSecrets.of} as a Markdown table, for a pipeline's output or a pull request.
   * @param scope where to look
   */
  public static report(scope: IConstruct): string {
    const rows = RequiredSecrets.of(scope).map((secret) => [
      secret.namespace ?? '', secret.secretName, secret.keys.length > 0 ? secret.keys.join(', ') : '(every key)',
      secret.source ? `${secret.createdBy} (${secret.source})` : secret.createdBy, secret.readers.join(', '),
    ]);
    return [
      `Secrets the app reads (${rows.length}); create those marked "you" before \`kubectl apply\`:`,
      '',
      '| namespace | Secret | keys | created by | read by |',
      '|---|---|---|---|---|',
      ...rows.map((row) => `| ${row.join(' | ')} |`),
      '',
    ].join('\n');
  }

  private constructor() {}
}
