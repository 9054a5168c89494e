/**
 * How fast the HA mode fails over: Patroni's leader lock timings and its container's probes,
 * chosen together. Failover figures: the README's "Failover profiles".
 */
export enum FailoverProfile {
  /**
   * Patroni's own defaults: ttl 30 s, loop_wait 10 s, retry_timeout 10 s; probes every 10 s.
   * The least API-server traffic and the most tolerance of a slow API server or node.
   */
  DEFAULT = 'default',
  /**
   * ttl 20 s (the least Patroni allows: Patroni 4 raises a lower one to 20), loop_wait 2 s,
   * retry_timeout 9 s; readiness every 2 s. The leader renews its lock every 2 s instead of 10
   * (five times the API-server writes); a leader that cannot renew it for 20 s instead of 30 (a
   * slow API server, a node under CPU pressure) is replaced; the probes give up after 2 s
   * (readiness) and 3 s (liveness) instead of 5.
   */
  FAST = 'fast',
}

/** One probe's timing, as the kubelet takes it. */
export interface ProbeTiming {
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly failureThreshold: number;
}

/** A profile's values. */
export interface FailoverTimings {
  readonly ttlSeconds: number;
  readonly loopWaitSeconds: number;
  readonly retryTimeoutSeconds: number;
  /** GET /readiness: a member that stops answering leaves the Services after failureThreshold x periodSeconds. */
  readonly readiness: ProbeTiming;
  /** GET /liveness: the container restarts when Patroni stops answering, or its HA loop has not run for ttl (Patroni's answer). */
  readonly liveness: ProbeTiming;
}

export const FAILOVER_TIMINGS: { readonly [profile in FailoverProfile]: FailoverTimings } = {
  [FailoverProfile.DEFAULT]: {
    ttlSeconds: 30, loopWaitSeconds: 10, retryTimeoutSeconds: 10,
    readiness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    liveness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
  },
  // A frozen leader's pod leaves -rw 6-8 s after it stops answering, well before its lock
  // expires, so new sessions stop reaching a primary about to lose its sync standby. Liveness
  // waits ttl or more: a restart sooner would cut short a leader that Patroni itself still keeps.
  [FailoverProfile.FAST]: {
    ttlSeconds: 20, loopWaitSeconds: 2, retryTimeoutSeconds: 9,
    readiness: { periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 },
    liveness: { periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 4 },
  },
};
