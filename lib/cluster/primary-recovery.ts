import { IConstruct } from 'constructs';
import { propError } from '../core/errors';
import { requireEnum } from '../core/validation';

/**
 * What the plain mode's primary does when it starts on an empty volume while replicas hold the
 * cluster (its volume was lost): a new empty database on the read-write Service would hide their data.
 */
export enum PrimaryRecovery {
  /**
   * Refuse to start, naming the replicas that hold the cluster: nothing is created or changed
   * until you choose. A primary whose replicas do not answer (a new cluster) runs initdb.
   */
  REFUSE = 'refuse',
  /**
   * Rebuild the primary from the replica with the highest WAL position among those answering:
   * clone it with pg_basebackup, stream what it received, promote the copy onto a new timeline
   * and start it as the primary; the other replicas follow. Until a replica answers the primary
   * waits (it never runs initdb). Remove it once the primary runs again.
   */
  FROM_MOST_ADVANCED_REPLICA = 'from-most-advanced-replica',
}

/** What the cluster's other props bring to the check of primaryRecovery. */
export interface PrimaryRecoveryContext {
  readonly highAvailability: boolean;
  readonly instances: number;
  readonly restore: boolean;
  readonly hotStandby: boolean;
}

/** `primaryRecovery`, checked against the mode, the instance count and the other sources of an empty primary's data. */
export function resolvePrimaryRecovery(scope: IConstruct, value: PrimaryRecovery | undefined, context: PrimaryRecoveryContext): PrimaryRecovery {
  const recovery = requireEnum(scope, 'primaryRecovery', value ?? PrimaryRecovery.REFUSE, { PrimaryRecovery });
  if (recovery === PrimaryRecovery.REFUSE) return recovery;
  if (context.highAvailability) {
    throw propError(scope, 'primaryRecovery', recovery, 'is for the plain mode: with highAvailability Patroni elects the most advanced replica itself',
      'drop primaryRecovery');
  }
  if (context.instances < 2) {
    throw propError(scope, 'primaryRecovery', recovery, `needs replicas to rebuild the primary from, and instances is ${context.instances}`,
      'set instances to 2 or more, or drop primaryRecovery and restore the primary from a backup with backup.restore');
  }
  if (context.restore) {
    throw propError(scope, 'primaryRecovery', recovery, 'and backup.restore both say where an empty primary\'s data comes from',
      'drop one of them: primaryRecovery to rebuild it from the replicas, backup.restore to restore it from the repository');
  }
  if (!context.hotStandby) {
    throw propError(scope, 'primaryRecovery', recovery, 'needs replicas that accept connections, to find the most advanced one and clone it, '
      + 'and settings.hotStandby is false', 'set settings.hotStandby to true (the default), or drop primaryRecovery');
  }
  return recovery;
}
