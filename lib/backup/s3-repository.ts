import { IConstruct } from 'constructs';
import { BACKUP_PATHS } from './backup-layout';
import {
  BackupRepository, BackupRepositoryOptions, RepositoryAccess, RepositoryBindContext, RepositoryBinding, RepositoryOption, RepositoryType,
} from './backup-repository';
import { resolveSecretKeys } from '../core/credentials';
import { propError } from '../core/errors';
import { validateCidr } from '../core/names';
import { volumeMount } from '../core/pod-volumes';
import { envFromSecret } from '../core/secret-env';
import { CertificateAuthority, resolveAuthority } from '../core/tls';
import { requireEnum, validatePort } from '../core/validation';

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

/** A repository in an S3-compatible bucket, reached over HTTPS. */
export interface S3RepositoryProps extends BackupRepositoryOptions {
  /** The bucket. */
  readonly bucket: string;
  /** The endpoint's host name, without scheme, port or path (`s3.eu-west-1.amazonaws.com`, `minio.storage.svc`). */
  readonly endpoint: string;
  /** The region (`eu-west-1`; MinIO takes any, such as `us-east-1`). */
  readonly region: string;
  /** The Secret with the access key. */
  readonly credentials: S3Credentials;
  /**
   * The endpoint's HTTPS port.
   * @default 443
   */
  readonly port?: number;
  /**
   * How requests name the bucket.
   * @default S3UriStyle.HOST
   */
  readonly uriStyle?: S3UriStyle;
  /**
   * The repository's path in the bucket.
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

/** An S3 repository's CA file. */
export function storageCaFile(repository: number): string {
  return `${BACKUP_PATHS.storageCaRoot}/repo${repository}/ca.crt`;
}

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const HOST_NAME = /^(?=.{1,253}$)[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/;

/** The props of an S3 repository, checked, with their defaults. */
interface ResolvedS3 {
  readonly bucket: string;
  readonly endpoint: string;
  readonly region: string;
  readonly port: number;
  readonly uriStyle: S3UriStyle;
  readonly path: string;
  readonly credentials: { readonly secretName: string; readonly accessKeyIdKey: string; readonly secretAccessKeyKey: string };
  readonly certificateAuthority?: { readonly secretName: string; readonly key: string };
  readonly cipher?: { readonly secretName: string; readonly key: string };
  readonly egressCidrs: string[];
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
    const s3 = this.resolve(scope, context);
    const repo = `repo${context.index}`;
    // The keys (and cipher passphrase) come from the environment, never the file.
    const options: RepositoryOption[] = [
      [`${repo}-type`, 's3'],
      [`${repo}-path`, s3.path],
      [`${repo}-s3-bucket`, s3.bucket],
      [`${repo}-s3-endpoint`, s3.endpoint],
      [`${repo}-s3-region`, s3.region],
      [`${repo}-s3-uri-style`, s3.uriStyle],
      [`${repo}-storage-port`, s3.port],
      [`${repo}-storage-verify-tls`, 'y'],
      ...(s3.certificateAuthority ? [[`${repo}-storage-ca-file`, storageCaFile(context.index)] as RepositoryOption] : []),
      ...(s3.cipher ? [[`${repo}-cipher-type`, 'aes-256-cbc'] as RepositoryOption] : []),
    ];
    return {
      options,
      access: access(s3, context.index),
      egress: s3.egressCidrs.map((cidr) => ({ peer: { cidr }, port: s3.port })),
    };
  }

  private resolve(scope: IConstruct, { prop, clusterName }: RepositoryBindContext): ResolvedS3 {
    const props = this.props;
    if (typeof props.bucket !== 'string' || !S3_BUCKET.test(props.bucket) || props.bucket.includes('..')) {
      throw propError(scope, `${prop}.bucket`, props.bucket, 'is not an S3 bucket name', 'use 3 to 63 lower-case letters, digits, "." and "-", starting and ending with a letter or digit');
    }
    if (typeof props.endpoint !== 'string' || !HOST_NAME.test(props.endpoint)) {
      throw propError(scope, `${prop}.endpoint`, props.endpoint, 'is not a host name',
        'give the host only, such as "s3.eu-west-1.amazonaws.com": pgBackRest always uses HTTPS, and the port is the port prop');
    }
    if (typeof props.region !== 'string' || !/^[a-z0-9][-a-z0-9_.]*$/i.test(props.region)) {
      throw propError(scope, `${prop}.region`, props.region, 'is not a region name', 'give the store\'s region, such as "eu-west-1" ("us-east-1" for MinIO)');
    }
    const port = validatePort(scope, `${prop}.port`, props.port ?? 443);
    const path = props.path ?? `/${clusterName}`;
    if (!/^(\/[-._a-zA-Z0-9]+)+$|^\/$/.test(path)) {
      throw propError(scope, `${prop}.path`, path, 'is not an absolute path of plain names', 'write it as "/backups/my-cluster": letters, digits, "-", "_" and "."');
    }
    const credentials = resolveSecretKeys(scope, `${prop}.credentials`, props.credentials?.secretName, {
      accessKeyIdKey: props.credentials?.accessKeyIdKey ?? 'access-key-id',
      secretAccessKeyKey: props.credentials?.secretAccessKeyKey ?? 'secret-access-key',
    });
    const certificateAuthority = resolveAuthority(scope, `${prop}.certificateAuthority`, props.certificateAuthority);
    const cipher = props.cipher && resolveSecretKeys(scope, `${prop}.cipher`, props.cipher.secretName, { key: props.cipher.key ?? 'cipher-pass' });
    const egressCidrs = props.egressCidrs ?? ['0.0.0.0/0', '::/0'];
    if (egressCidrs.length === 0) {
      throw propError(scope, `${prop}.egressCidrs`, egressCidrs, 'lets nothing reach the endpoint', 'list the networks of the endpoint, or leave it unset for any address');
    }
    egressCidrs.forEach((cidr) => validateCidr(scope, `${prop}.egressCidrs`, cidr));
    const uriStyle = requireEnum(scope, `${prop}.uriStyle`, props.uriStyle ?? S3UriStyle.HOST, { S3UriStyle });
    return {
      bucket: props.bucket,
      endpoint: props.endpoint,
      region: props.region,
      port,
      uriStyle,
      path,
      credentials,
      ...(certificateAuthority ? { certificateAuthority } : {}),
      ...(cipher ? { cipher } : {}),
      egressCidrs: [...egressCidrs],
    };
  }
}

/** The S3 keys and cipher passphrase from their Secrets, as pgBackRest reads them, and the endpoint's CA. */
function access(s3: ResolvedS3, index: number): RepositoryAccess {
  const prefix = `PGBACKREST_REPO${index}`;
  const authority = s3.certificateAuthority;
  const caVolume = `pgbackrest-repo${index}-ca`;
  return {
    volumes: authority ? [{ name: caVolume, secret: { secretName: authority.secretName, defaultMode: 0o444, items: [{ key: authority.key, path: 'ca.crt' }] } }] : [],
    mounts: authority ? [volumeMount(caVolume, `${BACKUP_PATHS.storageCaRoot}/repo${index}`, true)] : [],
    env: [
      envFromSecret(`${prefix}_S3_KEY`, s3.credentials.secretName, s3.credentials.accessKeyIdKey),
      envFromSecret(`${prefix}_S3_KEY_SECRET`, s3.credentials.secretName, s3.credentials.secretAccessKeyKey),
      ...(s3.cipher ? [envFromSecret(`${prefix}_CIPHER_PASS`, s3.cipher.secretName, s3.cipher.key)] : []),
    ],
  };
}
