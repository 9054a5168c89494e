import { CLUSTER_FILES, CLUSTER_PATHS } from './cluster-layout';
import { ClusterModel } from './cluster-model';
import { majorUpgradeInitContainers } from './major-upgrade-pod';
import { PATRONI_UPGRADE_ENVIRONMENT } from './patroni-upgrade-script';
import { k8s } from '../core/kube';

/**
 * The HA mode's init containers while `majorUpgrade` is set: the plain mode's steps for a primary
 * (every member may be the one elected, so every pod copies the old binaries), with
 * patroni-upgrade.sh as the command, which runs major-upgrade.sh only on the member elected.
 * `base` is the Patroni container's image, resources and the mounts pg_upgrade's old server
 * needs: the data, Patroni's postgresql.conf refers to the TLS files and pg_hba.conf to the
 * superuser's name file; patroni.yml and the scripts; the Secrets; /tmp.
 */
export function patroniUpgradeInitContainers(model: ClusterModel, base: k8s.Container): k8s.Container[] {
  const script = (file: string) => `${CLUSTER_PATHS.scriptsDir}/${file}`;
  const patroni: { [name in typeof PATRONI_UPGRADE_ENVIRONMENT[number] | 'PATRONI_KUBERNETES_NAMESPACE']: string | k8s.EnvVarSource } = {
    PATRONI_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
    PATRONI_KUBERNETES_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
    PATRONI_CONFIG: `${CLUSTER_PATHS.configDir}/${CLUSTER_FILES.patroniConfig}`,
    MEMBERS: model.podNames.join(' '),
    COORDINATOR: script(CLUSTER_FILES.patroniUpgradeCoordinator),
    MAJOR_UPGRADE_SCRIPT: script(CLUSTER_FILES.majorUpgradeScript),
  };
  const steps = majorUpgradeInitContainers({
    upgrade: model.majorUpgrade!,
    role: 'primary',
    base,
    script: script(CLUSTER_FILES.patroniUpgradeScript),
    environment: {
      PGDATA: CLUSTER_PATHS.pgdata,
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      CREDENTIALS_DIR: CLUSTER_PATHS.secretsDir,
      // The new cluster is verified with initdb's postgresql.conf: Patroni writes its own at the first start.
      CONFIG_FILE: `${CLUSTER_PATHS.pgdata}.upgrade/postgresql.conf`,
    },
  });
  const env = Object.entries(patroni).map(([name, value]) => (typeof value === 'string' ? { name, value } : { name, valueFrom: value }));
  const upgradeStep = script(CLUSTER_FILES.patroniUpgradeScript);
  return steps.map((step) => (step.command?.[0] === upgradeStep ? { ...step, env: [...step.env ?? [], ...env] } : step));
}
