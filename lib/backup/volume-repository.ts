import { IConstruct } from 'constructs';
import { BACKUP_PATHS } from './backup-layout';
import { BackupRepository, BackupRepositoryOptions, RepositoryBindContext, RepositoryBinding, RepositoryType } from './backup-repository';
import { readWriteOnceClaimSpec } from '../core/claim-template';
import { validateDnsSubdomain } from '../core/names';
import { volumeMount } from '../core/pod-volumes';
import { parseQuantity } from '../core/quantity';

/** A repository on a PersistentVolumeClaim of the repository host. */
export interface VolumeRepositoryProps extends BackupRepositoryOptions {
  /**
   * Size of the volume.
   * @default '20Gi'
   */
  readonly size?: string;
  /**
   * StorageClass of the volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
}

/** A volume repository's directory in the repository host and backup job pods. */
export function repositoryPath(repository: number): string {
  return `${BACKUP_PATHS.repositoryRoot}/repo${repository}`;
}

/** A bound volume repository, with its volume resolved. */
export interface VolumeRepositoryBinding extends RepositoryBinding {
  readonly volume: {
    readonly size: string;
    readonly storageClassName?: string;
    /** The repository host's volumeClaimTemplate: `repo<N>`. */
    readonly claimTemplate: string;
    /** The claim the StatefulSet makes from it, which the backup jobs mount. */
    readonly claimName: string;
  };
}

/**
 * `BackupRepository.volume()`: a posix repository on a claim of the repository host, whose TLS
 * server the instances reach it through. Its backup jobs mount the claim, so they run on the
 * host's node (the claim is ReadWriteOnce).
 */
export class VolumeRepository extends BackupRepository {
  public readonly type = RepositoryType.VOLUME;

  public constructor(private readonly props: VolumeRepositoryProps) {
    super(props);
  }

  /** @internal */
  public _bind(scope: IConstruct, context: RepositoryBindContext): VolumeRepositoryBinding {
    const { prop, index } = context;
    const size = this.props.size ?? '20Gi';
    parseQuantity(scope, `${prop}.size`, size);
    const storageClassName = this.props.storageClassName;
    if (storageClassName !== undefined) validateDnsSubdomain(scope, `${prop}.storageClassName`, storageClassName, 'StorageClass');
    // The volume is named after its claim template, as a StatefulSet names the volumes it makes.
    const claimTemplate = `repo${index}`;
    const claimName = `${claimTemplate}-${context.repoHostPod}`;
    return {
      options: [[`repo${index}-path`, repositoryPath(index)]],
      access: {
        volumes: [{ name: claimTemplate, persistentVolumeClaim: { claimName } }],
        mounts: [volumeMount(claimTemplate, repositoryPath(index))],
        env: [],
      },
      egress: [],
      repoHost: { claims: [{ name: claimTemplate, spec: readWriteOnceClaimSpec(size, storageClassName) }] },
      volume: { size, ...(storageClassName ? { storageClassName } : {}), claimTemplate, claimName },
    };
  }
}
