import { ClusterModel } from './cluster-model';
import { ConnectionDemand } from '../core/connection-budget';

/**
 * Connections the cluster's own processes open on its instances, besides its clients': Patroni's
 * (HA mode), the settings agent's (plain mode) and pgBackRest's backups'. Read from Patroni 3.0's and pgBackRest 2.45's behaviour,
 * not measured here: Patroni keeps one connection, which its HA loop and REST API share, and a
 * leader stepping down opens one more for a CHECKPOINT; a former leader rejoining rewinds from
 * the new one as the replication role (an ordinary role). A backup connects to every instance
 * listed (pgBackRest finds the primary among them); one repository's schedules must not overlap,
 * but different repositories' backups may run at once.
 */
export function clusterConnectionDemands(path: string, model: ClusterModel): ConnectionDemand[] {
  const onReplicas = (connections: number) => (model.replicas > 0 ? connections : 0);
  const backups = (model.backup?.repositories ?? []).filter((repository) => repository.schedules.length > 0).length;
  return [
    ...(model.highAvailability ? [
      { consumer: `${path} Patroni`, purpose: 'HA loop, REST API, CHECKPOINT', primary: 2, replica: onReplicas(1), superuser: true },
      { consumer: `${path} Patroni`, purpose: 'pg_rewind', primary: 1, replica: 0 },
    ] : []),
    // The plain mode's settings agent connects for a moment per action (lib/cluster/plain-settings-agent.ts).
    ...(model.highAvailability ? [] : [{ consumer: `${path} settings agent`, purpose: 'reload, slot cleanup', primary: 1, replica: onReplicas(1) }]),
    ...(backups > 0 ? [{ consumer: `${path} pgBackRest`, purpose: 'backups', primary: backups, replica: onReplicas(backups), superuser: true }] : []),
  ];
}
