import { IConstruct } from 'constructs';
import { BackupRepository, RepositoryBindContext, RepositoryBinding, RepositoryType } from './backup-repository';
import {
  ObjectStoreRepositoryOptions, objectStoreAccess, objectStoreEgress, objectStoreOptions, repositoryEnv, resolveObjectStore,
} from './object-store';
import { resolveSecretKeys } from '../core/credentials';
import { propError } from '../core/errors';
import { requireEnum } from '../core/validation';

/** What an Azure Secret's key is (`repoN-azure-key-type`). */
export enum AzureKeyType {
  /** The storage account's shared key (base64). */
  SHARED = 'shared',
  /** A shared access signature token (`sv=...&sig=...`), which can be limited to the container. */
  SAS = 'sas',
}

/** How Azure requests name the account. */
export enum AzureUriStyle {
  /** `https://<account>.<endpoint>/<container>/<path>`: Azure itself. */
  HOST = 'host',
  /** `https://<endpoint>/<account>/<container>/<path>`: emulators such as Azurite. */
  PATH = 'path',
}

/** A Secret holding an Azure storage key or SAS token. */
export interface AzureCredentials {
  /** The Secret's name. */
  readonly secretName: string;
  /**
   * The key holding the shared key or SAS token.
   * @default 'azure-key'
   */
  readonly key?: string;
  /**
   * What the key holds.
   * @default AzureKeyType.SHARED
   */
  readonly keyType?: AzureKeyType;
}

/**
 * A repository in an Azure Blob Storage container, reached over HTTPS. pgBackRest (2.45 to 2.55
 * at least) authenticates to Azure only with a shared key or a SAS token, not with a managed or
 * workload identity, so the credentials are a Secret.
 */
export interface AzureRepositoryProps extends ObjectStoreRepositoryOptions {
  /** The storage account. */
  readonly account: string;
  /** The container, which must exist: pgBackRest does not create it. */
  readonly container: string;
  /** The Secret with the shared key or SAS token. */
  readonly credentials: AzureCredentials;
  /**
   * The blob service's domain (the account is prefixed in host style), without scheme, port or path.
   * @default 'blob.core.windows.net'
   */
  readonly endpoint?: string;
  /**
   * How requests name the account.
   * @default AzureUriStyle.HOST
   */
  readonly uriStyle?: AzureUriStyle;
}

const ACCOUNT = /^[a-z0-9]{3,24}$/;
const CONTAINER = /^(?=.{3,63}$)[a-z0-9](-?[a-z0-9])*$/;

/**
 * `BackupRepository.azure()`: a container every pod that uses the repository reaches directly
 * over HTTPS, with the key (and cipher passphrase) from their Secrets in the environment.
 */
export class AzureRepository extends BackupRepository {
  public readonly type = RepositoryType.AZURE;

  public constructor(private readonly props: AzureRepositoryProps) {
    super(props);
  }

  /** @internal */
  public _bind(scope: IConstruct, context: RepositoryBindContext): RepositoryBinding {
    const { prop, index, clusterName } = context;
    const props = this.props;
    if (typeof props.account !== 'string' || !ACCOUNT.test(props.account)) {
      throw propError(scope, `${prop}.account`, props.account, 'is not a storage account name', 'use 3 to 24 lower-case letters and digits');
    }
    if (typeof props.container !== 'string' || !CONTAINER.test(props.container)) {
      throw propError(scope, `${prop}.container`, props.container, 'is not a container name',
        'use 3 to 63 lower-case letters, digits and single "-", starting and ending with a letter or digit');
    }
    const store = resolveObjectStore(scope, prop, index, clusterName, props.endpoint ?? 'blob.core.windows.net', 'blob.core.windows.net', props);
    if (props.credentials === undefined) {
      throw propError(scope, `${prop}.credentials`, undefined,
        'is required: pgBackRest 2.45 to 2.55 authenticate to Azure only with a shared key or a SAS token, not with a managed or workload identity',
        'give a Secret holding the storage account\'s shared key, or a SAS token limited to the container with keyType AzureKeyType.SAS');
    }
    const credentials = resolveSecretKeys(scope, `${prop}.credentials`, props.credentials.secretName, { key: props.credentials.key ?? 'azure-key' });
    const keyType = requireEnum(scope, `${prop}.credentials.keyType`, props.credentials.keyType ?? AzureKeyType.SHARED, { AzureKeyType });
    const uriStyle = requireEnum(scope, `${prop}.uriStyle`, props.uriStyle ?? AzureUriStyle.HOST, { AzureUriStyle });
    const repo = `repo${index}`;
    // The key (and cipher passphrase) come from the environment, never the file.
    return {
      options: objectStoreOptions(store, 'azure', [
        [`${repo}-azure-account`, props.account],
        [`${repo}-azure-container`, props.container],
        [`${repo}-azure-endpoint`, store.endpoint],
        [`${repo}-azure-uri-style`, uriStyle],
        [`${repo}-azure-key-type`, keyType],
      ]),
      access: objectStoreAccess(store, { volumes: [], mounts: [], env: [repositoryEnv(index, 'AZURE_KEY', credentials.secretName, credentials.key)] }),
      egress: objectStoreEgress(store),
    };
  }
}
