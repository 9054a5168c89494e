import { CLUSTER_PATHS } from './cluster-layout';
import { MajorUpgradeModel } from './major-upgrade';
import { COPY_OLD_BINARIES_SCRIPT, MAJOR_UPGRADE_ENVIRONMENT, oldBinDir } from './major-upgrade-script';
import { k8s } from '../core/kube';
import { restrictedContainer } from '../core/pod-baseline';
import { PodVolume } from '../core/pod-volumes';

/** The old major's binaries, copied from its image: about 50 MB for Debian's PostgreSQL. */
export const OLD_BINARIES_VOLUME = PodVolume.scratch('old-binaries', '512Mi');

/** What a pod's upgrade step is made of, in the plain mode as in the HA mode. */
export interface MajorUpgradeSteps {
  readonly upgrade: MajorUpgradeModel;
  /** A primary runs pg_upgrade (and needs the old binaries); a replica is cloned again. */
  readonly role: 'primary' | 'replica';
  /** The container the step is modelled on (the plain mode's bootstrap): image, resources and mounts. */
  readonly base: k8s.Container;
  /** Where major-upgrade.sh is mounted. */
  readonly script: string;
  /** The values of MAJOR_UPGRADE_ENVIRONMENT that come from the pod: paths, the primary's address, TLS. */
  readonly environment: { readonly [name in typeof MAJOR_UPGRADE_ENVIRONMENT[number]]?: string | k8s.EnvVarSource };
}

/**
 * The init containers that upgrade a pod's data while `majorUpgrade` is set: on a primary, one in
 * the OLD image copying its binaries into an emptyDir, then major-upgrade.sh in the new image;
 * on a replica, major-upgrade.sh alone. None once the prop is removed.
 */
export function majorUpgradeInitContainers(steps: MajorUpgradeSteps): k8s.Container[] {
  const { upgrade, role, base } = steps;
  const primary = role === 'primary';
  const fromMajor = String(upgrade.from.major);
  const environment: { [name: string]: string | k8s.EnvVarSource | undefined } = {
    ...steps.environment,
    POSTGRES_ROLE: role,
    FROM_MAJOR: fromMajor,
    TO_MAJOR: String(upgrade.to.major),
    TRANSFER: upgrade.transfer,
    OLD_BINDIR: primary ? oldBinDir(CLUSTER_PATHS.oldBinariesDir) : undefined,
  };
  const env = Object.entries(environment).filter((entry): entry is [string, string | k8s.EnvVarSource] => entry[1] !== undefined)
    .map(([name, value]) => (typeof value === 'string' ? { name, value } : { name, valueFrom: value }));
  const oldBinaries = OLD_BINARIES_VOLUME.mount(CLUSTER_PATHS.oldBinariesDir);
  const upgradeStep = restrictedContainer({
    name: 'major-upgrade',
    image: base.image,
    command: [steps.script],
    env,
    resources: base.resources,
    volumeMounts: [...base.volumeMounts ?? [], ...(primary ? [{ ...oldBinaries, readOnly: true }] : [])],
  });
  if (!primary) return [upgradeStep];
  const copy = restrictedContainer({
    name: 'old-binaries',
    image: upgrade.fromImage,
    command: ['/bin/sh', '-c', COPY_OLD_BINARIES_SCRIPT],
    env: [{ name: 'FROM_MAJOR', value: fromMajor }, { name: 'OLD_BINARIES_DIR', value: CLUSTER_PATHS.oldBinariesDir }],
    resources: base.resources,
    volumeMounts: [oldBinaries],
  });
  return [copy, upgradeStep];
}
