import { IConstruct } from 'constructs';
import {
  BackupRepository, RepositoryBindContext, RepositoryBinding, RepositoryType,
} from './backup-repository';
import {
  ObjectStoreRepositoryOptions, ResolvedObjectStore, objectStoreAccess, objectStoreEgress, objectStoreOptions, repositoryEnv, resolveObjectStore,
} from './object-store';
import { resolveSecretKeys } from '../core/credentials';
import { propError } from '../core/errors';
import { requireEnum } from '../core/validation';

/** How S3 requests name the bucket. */
export enum S3UriStyle {
  /** `https://<bucket>.<endpoint>/<path>`: AWS and most stores. */
  HOST = 'host',
  /** `https://<endpoint>/<bucket>/<path>`: MinIO and stores without wildcard DNS. */
  PATH = 'path',
}

/** A Secret holding an S3 access key. */
export interface S3Credentials {
  /** The Secret's name. */
  readonly secretName: string;
  /**
   * The key holding the access key id.
   * @default 'access-key-id'
   */
  readonly accessKeyIdKey?: string;
  /**
   * The key holding the secret access key.
   * @default 'secret-access-key'
   */
  readonly secretAccessKeyKey?: string;
}

/** A repository in an S3-compatible bucket, reached over HTTPS. */
export interface S3RepositoryProps extends ObjectStoreRepositoryOptions {
  /** The bucket. */
  readonly bucket: string;
  /** The endpoint's host name, without scheme, port or path (`s3.eu-west-1.amazonaws.com`, `minio.storage.svc`). */
  readonly endpoint: string;
  /** The region (`eu-west-1`; MinIO takes any, such as `us-east-1`). */
  readonly region: string;
  /** The Secret with the access key. */
  readonly credentials: S3Credentials;
  /**
   * How requests name the bucket.
   * @default S3UriStyle.HOST
   */
  readonly uriStyle?: S3UriStyle;
}

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The props of an S3 repository, checked, with their defaults. */
interface ResolvedS3 {
  readonly store: ResolvedObjectStore;
  readonly bucket: string;
  readonly region: string;
  readonly uriStyle: S3UriStyle;
  readonly credentials: { readonly secretName: string; readonly accessKeyIdKey: string; readonly secretAccessKeyKey: string };
}

/**
 * `BackupRepository.s3()`: a bucket every pod that uses the repository reaches directly over
 * HTTPS, with the keys (and cipher passphrase) from their Secrets in the environment.
 */
export class S3Repository extends BackupRepository {
  public readonly type = RepositoryType.S3;

  public constructor(private readonly props: S3RepositoryProps) {
    super(props);
  }

  /** @internal */
  public _bind(scope: IConstruct, context: RepositoryBindContext): RepositoryBinding {
    const { store, bucket, region, uriStyle, credentials } = this.resolve(scope, context);
    const repo = `repo${context.index}`;
    // The keys (and cipher passphrase) come from the environment, never the file.
    return {
      options: objectStoreOptions(store, 's3', [
        [`${repo}-s3-bucket`, bucket],
        [`${repo}-s3-endpoint`, store.endpoint],
        [`${repo}-s3-region`, region],
        [`${repo}-s3-uri-style`, uriStyle],
      ]),
      access: objectStoreAccess(store, {
        volumes: [],
        mounts: [],
        env: [
          repositoryEnv(context.index, 'S3_KEY', credentials.secretName, credentials.accessKeyIdKey),
          repositoryEnv(context.index, 'S3_KEY_SECRET', credentials.secretName, credentials.secretAccessKeyKey),
        ],
      }),
      egress: objectStoreEgress(store),
    };
  }

  private resolve(scope: IConstruct, { prop, clusterName, index }: RepositoryBindContext): ResolvedS3 {
    const props = this.props;
    if (typeof props.bucket !== 'string' || !S3_BUCKET.test(props.bucket) || props.bucket.includes('..')) {
      throw propError(scope, `${prop}.bucket`, props.bucket, 'is not an S3 bucket name', 'use 3 to 63 lower-case letters, digits, "." and "-", starting and ending with a letter or digit');
    }
    const store = resolveObjectStore(scope, prop, index, clusterName, props.endpoint, 's3.eu-west-1.amazonaws.com', props);
    if (typeof props.region !== 'string' || !/^[a-z0-9][-a-z0-9_.]*$/i.test(props.region)) {
      throw propError(scope, `${prop}.region`, props.region, 'is not a region name', 'give the store\'s region, such as "eu-west-1" ("us-east-1" for MinIO)');
    }
    const credentials = resolveSecretKeys(scope, `${prop}.credentials`, props.credentials?.secretName, {
      accessKeyIdKey: props.credentials?.accessKeyIdKey ?? 'access-key-id',
      secretAccessKeyKey: props.credentials?.secretAccessKeyKey ?? 'secret-access-key',
    });
    const uriStyle = requireEnum(scope, `${prop}.uriStyle`, props.uriStyle ?? S3UriStyle.HOST, { S3UriStyle });
    return { store, bucket: props.bucket, region: props.region, uriStyle, credentials };
  }
}
