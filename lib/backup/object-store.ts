import { IConstruct } from 'constructs';
import { BACKUP_PATHS } from './backup-layout';
import { BackupRepositoryOptions, RepositoryAccess, RepositoryOption } from './backup-repository';
import { resolveSecretKeys } from '../core/credentials';
import { propError } from '../core/errors';
import { k8s } from '../core/kube';
import { validateCidr } from '../core/names';
import { Connection } from '../core/network-policy';
import { volumeMount } from '../core/pod-volumes';
import { envFromSecret } from '../core/secret-env';
import { CertificateAuthority, resolveAuthority } from '../core/tls';
import { validatePort } from '../core/validation';

/**
 * What the object-store repositories (S3, GCS, Azure) share: pgBackRest reaches each over HTTPS
 * from every pod that uses it, with its secrets in the environment, a CA file for a private
 * store, an optional cipher and the NetworkPolicies' egress to the store.
 */

/** A Secret holding the passphrase a repository is encrypted with. */
export interface RepositoryCipher {
  /** The Secret's name. */
  readonly secretName: string;
  /**
   * The key holding the passphrase.
   * @default 'cipher-pass'
   */
  readonly key?: string;
}

/** What every object-store repository (S3, GCS, Azure) takes besides its store's own props. */
export interface ObjectStoreRepositoryOptions extends BackupRepositoryOptions {
  /**
   * The endpoint's HTTPS port.
   * @default 443
   */
  readonly port?: number;
  /**
   * The repository's path in the bucket or container.
   * @default - `/<cluster name>`
   */
  readonly path?: string;
  /**
   * The CA that signs the endpoint's certificate, for a store with a private CA.
   * @default - the image's system CAs
   */
  readonly certificateAuthority?: CertificateAuthority;
  /**
   * Encrypt the repository (aes-256-cbc) with the passphrase of this Secret. Set it when the
   * repository is created: an existing repository cannot be encrypted afterwards.
   * @default - not encrypted
   */
  readonly cipher?: RepositoryCipher;
  /**
   * Networks the endpoint is in, for the NetworkPolicies' egress rules.
   * @default - any address: ['0.0.0.0/0', '::/0']
   */
  readonly egressCidrs?: string[];
}

/** The shared props, checked, with their defaults. */
export interface ResolvedObjectStore {
  readonly index: number;
  readonly endpoint: string;
  readonly port: number;
  readonly path: string;
  readonly certificateAuthority?: { readonly secretName: string; readonly key: string };
  readonly cipher?: { readonly secretName: string; readonly key: string };
  readonly egressCidrs: string[];
}

/** An object-store repository's CA file. */
export function storageCaFile(repository: number): string {
  return `${BACKUP_PATHS.storageCaRoot}/repo${repository}/ca.crt`;
}

const HOST_NAME = /^(?=.{1,253}$)[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/;

/**
 * Checks the props every object store shares; `endpoint` is the store's, its default applied
 * (`example` is a valid one, for the error).
 */
export function resolveObjectStore(scope: IConstruct, prop: string, index: number, clusterName: string, endpoint: string,
  example: string, props: ObjectStoreRepositoryOptions): ResolvedObjectStore {
  if (typeof endpoint !== 'string' || !HOST_NAME.test(endpoint)) {
    throw propError(scope, `${prop}.endpoint`, endpoint, 'is not a host name',
      `give the host only, such as "${example}": pgBackRest always uses HTTPS, and the port is the port prop`);
  }
  const port = validatePort(scope, `${prop}.port`, props.port ?? 443);
  const path = props.path ?? `/${clusterName}`;
  if (!/^(\/[-._a-zA-Z0-9]+)+$|^\/$/.test(path)) {
    throw propError(scope, `${prop}.path`, path, 'is not an absolute path of plain names', 'write it as "/backups/my-cluster": letters, digits, "-", "_" and "."');
  }
  const certificateAuthority = resolveAuthority(scope, `${prop}.certificateAuthority`, props.certificateAuthority);
  const cipher = props.cipher && resolveSecretKeys(scope, `${prop}.cipher`, props.cipher.secretName, { key: props.cipher.key ?? 'cipher-pass' });
  const egressCidrs = props.egressCidrs ?? ['0.0.0.0/0', '::/0'];
  if (egressCidrs.length === 0) {
    throw propError(scope, `${prop}.egressCidrs`, egressCidrs, 'lets nothing reach the endpoint', 'list the networks of the endpoint, or leave it unset for any address');
  }
  egressCidrs.forEach((cidr) => validateCidr(scope, `${prop}.egressCidrs`, cidr));
  return {
    index,
    endpoint,
    port,
    path,
    ...(certificateAuthority ? { certificateAuthority } : {}),
    ...(cipher ? { cipher } : {}),
    egressCidrs: [...egressCidrs],
  };
}

/**
 * The store's `repoN-*` options: type, path, then the store's own, then port, TLS and cipher.
 * `portInEndpoint`: the store's driver takes the port in its endpoint option, not from
 * `repoN-storage-port` (GCS in pgBackRest 2.45 and 2.55.1: it connected to 443 regardless).
 */
export function objectStoreOptions(store: ResolvedObjectStore, type: string, own: RepositoryOption[], portInEndpoint = false): RepositoryOption[] {
  const repo = `repo${store.index}`;
  return [
    [`${repo}-type`, type],
    [`${repo}-path`, store.path],
    ...own,
    ...(portInEndpoint ? [] : [[`${repo}-storage-port`, store.port] as RepositoryOption]),
    [`${repo}-storage-verify-tls`, 'y'],
    ...(store.certificateAuthority ? [[`${repo}-storage-ca-file`, storageCaFile(store.index)] as RepositoryOption] : []),
    ...(store.cipher ? [[`${repo}-cipher-type`, 'aes-256-cbc'] as RepositoryOption] : []),
  ];
}

/**
 * What a pod that reaches the store adds: the CA's volume, the store's own volumes and
 * environment (keys from Secrets, named `PGBACKREST_REPO<N>_...` as pgBackRest reads them), and
 * the cipher passphrase.
 */
export function objectStoreAccess(store: ResolvedObjectStore, own: RepositoryAccess): RepositoryAccess {
  const authority = store.certificateAuthority;
  const caVolume = `pgbackrest-repo${store.index}-ca`;
  return {
    volumes: [
      ...(authority ? [{ name: caVolume, secret: { secretName: authority.secretName, defaultMode: 0o444, items: [{ key: authority.key, path: 'ca.crt' }] } }] : []),
      ...own.volumes,
    ],
    mounts: [...(authority ? [volumeMount(caVolume, `${BACKUP_PATHS.storageCaRoot}/repo${store.index}`, true)] : []), ...own.mounts],
    env: [...own.env, ...(store.cipher ? [repositoryEnv(store.index, 'CIPHER_PASS', store.cipher.secretName, store.cipher.key)] : [])],
  };
}

/** `PGBACKREST_REPO<N>_<option>` from a Secret's key: how pgBackRest takes a repository's secret without a file. */
export function repositoryEnv(index: number, option: string, secretName: string, key: string): k8s.EnvVar {
  return envFromSecret(`PGBACKREST_REPO${index}_${option}`, secretName, key);
}

/** The connections to the store: its port on each of its networks, and `extra` (such as a metadata server). */
export function objectStoreEgress(store: ResolvedObjectStore, extra: Connection[] = []): Connection[] {
  return [...store.egressCidrs.map((cidr) => ({ peer: { cidr }, port: store.port })), ...extra];
}
