/** How replicas are chosen to confirm commits. */
export enum SynchronousMethod {
  /** Quorum: any `count` of the listed replicas. */
  ANY = 'ANY',
  /** Priority: the first `count` listed replicas that are streaming. */
  FIRST = 'FIRST',
}

/**
 * Synchronous replication (`synchronous_standby_names`): a commit returns once `count`
 * replicas have it, so a lost primary loses no acknowledged commit.
 */
export class SynchronousReplication {
  /**
   * Commits wait for any `count` replicas (quorum commit).
   * @param count how many replicas must confirm each commit, from 1 to the replica count
   */
  public static any(count: number): SynchronousReplication {
    return new SynchronousReplication(SynchronousMethod.ANY, count);
  }

  /**
   * Commits wait for the first `count` replicas in ordinal order that are streaming.
   * @param count how many replicas must confirm each commit, from 1 to the replica count
   */
  public static first(count: number): SynchronousReplication {
    return new SynchronousReplication(SynchronousMethod.FIRST, count);
  }

  private constructor(
    /** Quorum or priority. */
    public readonly method: SynchronousMethod,
    /** How many replicas must confirm each commit. */
    public readonly count: number,
  ) {}
}

/**
 * The `synchronous_standby_names` value for replicas with these application names.
 * @param applicationNames the replicas' application names, in priority order
 */
export function synchronousStandbyNames(replication: SynchronousReplication, applicationNames: string[]): string {
  return `${replication.method} ${replication.count} (${applicationNames.map((name) => `"${name}"`).join(', ')})`;
}
