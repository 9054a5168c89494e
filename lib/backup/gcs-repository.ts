import { IConstruct } from 'constructs';
import { BACKUP_PATHS } from './backup-layout';
import { BackupRepository, RepositoryAccess, RepositoryBindContext, RepositoryBinding, RepositoryType } from './backup-repository';
import {
  ObjectStoreRepositoryOptions, objectStoreAccess, objectStoreEgress, objectStoreOptions, repositoryEnv, resolveObjectStore,
} from './object-store';
import { resolveSecretKeys } from '../core/credentials';
import { propError } from '../core/errors';
import { Connection } from '../core/network-policy';
import { volumeMount } from '../core/pod-volumes';
import { requireEnum } from '../core/validation';

/** What a GCS Secret's key holds (`repoN-gcs-key-type`). */
export enum GcsKeyType {
  /** A service account's JSON key file, mounted as a file. */
  SERVICE = 'service',
  /** An OAuth access token, which expires: for fake servers and short tests. */
  TOKEN = 'token',
}

/** A Secret holding a GCS service account key or token. */
export interface GcsCredentials {
  /** The Secret's name. */
  readonly secretName: string;
  /**
   * The key holding the JSON key file or the token.
   * @default - 'key.json' for a service account key, 'token' for a token
   */
  readonly key?: string;
  /**
   * What the key holds.
   * @default GcsKeyType.SERVICE
   */
  readonly keyType?: GcsKeyType;
}

/** A repository in a Google Cloud Storage bucket, reached over HTTPS. */
export interface GcsRepositoryProps extends ObjectStoreRepositoryOptions {
  /** The bucket. */
  readonly bucket: string;
  /**
   * The Secret with a service account key or token.
   * @default - workload identity (`repoN-gcs-key-type=auto`): pgBackRest asks the GKE metadata server for the token of the pod's Kubernetes ServiceAccount, `<name>` for the instances and `<name>-pgbackrest` for the backup jobs, which must be granted access to the bucket
   */
  readonly credentials?: GcsCredentials;
  /**
   * The storage API's host name, without scheme, port or path.
   * @default 'storage.googleapis.com'
   */
  readonly endpoint?: string;
}

/** A GCS repository's service account key file. */
export function gcsKeyFile(repository: number): string {
  return `${BACKUP_PATHS.storageKeyRoot}/repo${repository}/key.json`;
}

// Bucket names: 3-63 characters (up to 222 with dots, each dot-separated part at most 63).
const BUCKET = /^(?=.{3,222}$)[a-z0-9]([-_a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-_a-z0-9]{0,61}[a-z0-9])?)*$/;

/**
 * The GKE metadata server, which hands out workload identity tokens: 169.254.169.254:80, and
 * 169.254.169.252:988 where GKE Dataplane V2 enforces the NetworkPolicies.
 */
const GKE_METADATA: Connection[] = [{ peer: { cidr: '169.254.169.254/32' }, port: 80 }, { peer: { cidr: '169.254.169.252/32' }, port: 988 }];

/**
 * `BackupRepository.gcs()`: a bucket every pod that uses the repository reaches directly over
 * HTTPS, authenticated by a service account key file or token from a Secret, or by workload
 * identity.
 */
export class GcsRepository extends BackupRepository {
  public readonly type = RepositoryType.GCS;

  public constructor(private readonly props: GcsRepositoryProps) {
    super(props);
  }

  /** @internal */
  public _bind(scope: IConstruct, context: RepositoryBindContext): RepositoryBinding {
    const { prop, index, clusterName } = context;
    const props = this.props;
    if (typeof props.bucket !== 'string' || !BUCKET.test(props.bucket) || props.bucket.startsWith('goog')) {
      throw propError(scope, `${prop}.bucket`, props.bucket, 'is not a GCS bucket name',
        'use 3 to 63 lower-case letters, digits, "-" and "_" (dotted names up to 222), starting and ending with a letter or digit, not starting with "goog"');
    }
    const store = resolveObjectStore(scope, prop, index, clusterName, props.endpoint ?? 'storage.googleapis.com', 'storage.googleapis.com', props);
    const repo = `repo${index}`;
    const keyType = props.credentials
      ? requireEnum(scope, `${prop}.credentials.keyType`, props.credentials.keyType ?? GcsKeyType.SERVICE, { GcsKeyType })
      : 'auto';
    const own: RepositoryAccess = { volumes: [], mounts: [], env: [] };
    if (props.credentials) {
      const { secretName, key } = resolveSecretKeys(scope, `${prop}.credentials`, props.credentials.secretName,
        { key: props.credentials.key ?? (keyType === GcsKeyType.TOKEN ? 'token' : 'key.json') });
      if (keyType === GcsKeyType.TOKEN) {
        own.env.push(repositoryEnv(index, 'GCS_KEY', secretName, key));
      } else {
        // pgBackRest reads a service key from a file only (repoN-gcs-key is its path).
        const volume = `pgbackrest-repo${index}-key`;
        own.volumes.push({ name: volume, secret: { secretName, defaultMode: 0o440, items: [{ key, path: 'key.json' }] } });
        own.mounts.push(volumeMount(volume, `${BACKUP_PATHS.storageKeyRoot}/repo${index}`, true));
      }
    }
    return {
      options: objectStoreOptions(store, 'gcs', [
        [`${repo}-gcs-bucket`, props.bucket],
        [`${repo}-gcs-endpoint`, store.port === 443 ? store.endpoint : `${store.endpoint}:${store.port}`],
        [`${repo}-gcs-key-type`, keyType],
        ...(keyType === GcsKeyType.SERVICE ? [[`${repo}-gcs-key`, gcsKeyFile(index)] as [string, string]] : []),
      ], true),
      access: objectStoreAccess(store, own),
      egress: objectStoreEgress(store, keyType === 'auto' ? GKE_METADATA : []),
    };
  }
}
