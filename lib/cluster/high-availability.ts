import { Duration } from 'cdk8s';
import { IConstruct } from 'constructs';
import { FAILOVER_TIMINGS, FailoverProfile, ProbeTiming } from './failover-profile';
import { PostgresCredentials, ResolvedCredentials, resolveCredentials } from '../core/credentials';
import { propError } from '../core/errors';
import { validateCidr } from '../core/names';
import { requireEnum, requireInteger, validatePort, wholeSeconds } from '../core/validation';

/** Where Patroni reaches the Kubernetes API server, for the cluster's NetworkPolicy. */
export interface ApiServerAccess {
  /**
   * Addresses of the API server as pods reach it (`kubectl get endpoints kubernetes`): a
   * NetworkPolicy matches the endpoint addresses, not the `kubernetes` Service's ClusterIP.
   * @default ['0.0.0.0/0', '::/0']
   */
  readonly cidrs?: string[];
  /**
   * Ports of those endpoints: 6443 on kubeadm clusters, 443 on most managed ones.
   * @default [443, 6443]
   */
  readonly ports?: number[];
}

/**
 * Automatic failover by Patroni in every pod, with Kubernetes as its store (ConfigMaps): one
 * StatefulSet whose pods elect a leader; the leader's pod is labelled `role: primary` and
 * replicas `role: replica`, which the read-write and read-only Services select. The image must
 * hold PostgreSQL 15 and Patroni 3.1 or later.
 */
export interface HighAvailability {
  /**
   * ttl, loopWait, retryTimeout and the Patroni container's readiness and liveness probes,
   * chosen together; ttl, loopWait and retryTimeout set here override the profile's.
   * @default FailoverProfile.DEFAULT
   */
  readonly failoverProfile?: FailoverProfile;
  /**
   * Lifetime of the leader lock: a replica takes over this long after the leader stopped
   * renewing it. Patroni needs ttl >= loopWait + 2 x retryTimeout.
   * @default - the failoverProfile's: 30 s (DEFAULT), 20 s (FAST)
   */
  readonly ttl?: Duration;
  /**
   * Pause between two runs of Patroni's HA loop.
   * @default - the failoverProfile's: 10 s (DEFAULT), 2 s (FAST)
   */
  readonly loopWait?: Duration;
  /**
   * How long Patroni retries the API server and PostgreSQL before it demotes the leader.
   * @default - the failoverProfile's: 10 s (DEFAULT), 9 s (FAST)
   */
  readonly retryTimeout?: Duration;
  /**
   * A replica further behind the leader than this many bytes of WAL is never promoted.
   * @default 1048576
   */
  readonly maximumLagOnFailover?: number;
  /**
   * How long a leader whose PostgreSQL crashed may take to start again before a replica is
   * promoted instead.
   * @default Duration.seconds(300)
   */
  readonly primaryStartTimeout?: Duration;
  /**
   * How long the leader keeps the replication slot of a member that left (scaled away, or its
   * pod gone), so a member back within it finds the WAL it needs; 0 drops it as soon as the
   * member is gone. Patroni 4.0 and later (`member_slots_ttl`); Patroni 3 always drops it then.
   * @default Duration.minutes(30), Patroni's own
   */
  readonly memberSlotsTtl?: Duration;
  /**
   * Synchronous replication managed by Patroni: commits wait for one replica, and only that
   * synchronous standby may be promoted, so a failover loses no acknowledged commit.
   * @default false
   */
  readonly synchronousMode?: boolean;
  /**
   * With synchronousMode, also block commits while no replica is there to confirm them,
   * instead of falling back to asynchronous replication.
   * @default false
   */
  readonly synchronousModeStrict?: boolean;
  /**
   * Port of Patroni's REST API, which its members and the probes call.
   * @default 8008
   */
  readonly restApiPort?: number;
  /**
   * The Secret whose username and password Patroni's REST API demands (HTTP basic auth) for its
   * unsafe endpoints: restart, reinitialize, failover, switchover, reload, config changes. The
   * health checks (`GET /readiness`, `/liveness`, `/health`, ...) need none. The members and
   * patronictl in the pods use it too; create it before the pods start.
   * @default - `<name>-patroni-api`, keys `username` and `password`
   */
  readonly restApiSecret?: PostgresCredentials;
  /**
   * The API server's addresses and ports, allowed as egress by the NetworkPolicy.
   * @default - any address on ports 443 and 6443
   */
  readonly apiServer?: ApiServerAccess;
}

/** HighAvailability resolved: seconds, bytes and the NetworkPolicy's API server egress. */
export interface HighAvailabilityModel {
  readonly ttlSeconds: number;
  readonly loopWaitSeconds: number;
  readonly retryTimeoutSeconds: number;
  /** The Patroni container's probes, the profile's. */
  readonly readinessProbe: ProbeTiming;
  readonly livenessProbe: ProbeTiming;
  readonly maximumLagOnFailover: number;
  readonly primaryStartTimeoutSeconds: number;
  /** Set only when the props set it: Patroni 3 has no such setting. */
  readonly memberSlotsTtlSeconds?: number;
  readonly synchronousMode: boolean;
  readonly synchronousModeStrict: boolean;
  readonly restApiPort: number;
  readonly restApiCredentials: ResolvedCredentials;
  readonly apiServerCidrs: string[];
  readonly apiServerPorts: number[];
}

/** What of the cluster HighAvailability is checked against. */
export interface HighAvailabilityContext {
  readonly name: string;
  readonly port: number;
  /** The Secrets of the superuser and replication roles, by prop. */
  readonly roleSecrets: { readonly [prop: string]: string };
}

/** Validates HighAvailability against the rules Patroni checks at start-up, and resolves its defaults. */
export function resolveHighAvailability(scope: IConstruct, ha: HighAvailability,
  { name, port, roleSecrets }: HighAvailabilityContext): HighAvailabilityModel {
  const seconds = (prop: keyof HighAvailability, value: Duration | undefined, fallback: number, min: number, max: number) =>
    requireInteger(scope, `highAvailability.${prop}`, wholeSeconds(scope, `highAvailability.${prop}`, value) ?? fallback, min, max);
  const failoverProfile = requireEnum(scope, 'highAvailability.failoverProfile', ha.failoverProfile, { FailoverProfile }) ?? FailoverProfile.DEFAULT;
  const profile = FAILOVER_TIMINGS[failoverProfile];
  const ttlSeconds = seconds('ttl', ha.ttl, profile.ttlSeconds, 20, 3600);
  const loopWaitSeconds = seconds('loopWait', ha.loopWait, profile.loopWaitSeconds, 1, 3600);
  const retryTimeoutSeconds = seconds('retryTimeout', ha.retryTimeout, profile.retryTimeoutSeconds, 3, 3600);
  if (loopWaitSeconds + 2 * retryTimeoutSeconds > ttlSeconds) {
    // Name where each value came from: a value of the profile surprises when only one is set.
    const source = (value: number, set: Duration | undefined) => (set ? `${value}s` : `${value}s from FailoverProfile.${failoverProfileName(failoverProfile)}`);
    throw propError(scope, 'highAvailability.ttl', source(ttlSeconds, ha.ttl),
      `is shorter than loopWait + 2 x retryTimeout (${source(loopWaitSeconds, ha.loopWait)} + 2 x ${source(retryTimeoutSeconds, ha.retryTimeout)}), `
      + 'so a leader could lose its lock while it still retries',
      `set ttl to ${loopWaitSeconds + 2 * retryTimeoutSeconds}s or more, or shorten loopWait or retryTimeout`);
  }
  const synchronousMode = ha.synchronousMode ?? false;
  if (ha.synchronousModeStrict && !synchronousMode) {
    throw propError(scope, 'highAvailability.synchronousModeStrict', true, 'needs synchronousMode', 'set highAvailability.synchronousMode to true too');
  }
  const restApiPort = validatePort(scope, 'highAvailability.restApiPort', ha.restApiPort ?? 8008);
  if (restApiPort === port) {
    throw propError(scope, 'highAvailability.restApiPort', restApiPort, 'is PostgreSQL\'s port too', 'choose another port, such as 8008');
  }
  const restApiCredentials = resolveCredentials(scope, 'highAvailability.restApiSecret', ha.restApiSecret ?? { secretName: `${name}-patroni-api` });
  // Basic auth sends the password with every unsafe call: a role's password would travel with it.
  const shared = Object.entries(roleSecrets).find(([, secretName]) => secretName === restApiCredentials.secretName);
  if (shared) {
    throw propError(scope, 'highAvailability.restApiSecret.secretName', restApiCredentials.secretName,
      `is also ${shared[0]}: the role's password would be the REST API's, sent with every unsafe call`,
      'give the REST API a Secret of its own');
  }
  const apiServerCidrs = ha.apiServer?.cidrs ?? ['0.0.0.0/0', '::/0'];
  const apiServerPorts = ha.apiServer?.ports ?? [443, 6443];
  for (const [what, list] of [['cidrs', apiServerCidrs], ['ports', apiServerPorts]] as const) {
    if (list.length === 0) {
      throw propError(scope, `highAvailability.apiServer.${what}`, list, 'leaves Patroni no way to the API server, so no pod could ever lead',
        `list the API server's ${what}, or leave it unset`);
    }
  }
  apiServerCidrs.forEach((cidr) => validateCidr(scope, 'highAvailability.apiServer.cidrs', cidr));
  apiServerPorts.forEach((apiPort, index) => validatePort(scope, `highAvailability.apiServer.ports[${index}]`, apiPort));
  return {
    ttlSeconds,
    loopWaitSeconds,
    retryTimeoutSeconds,
    readinessProbe: profile.readiness,
    livenessProbe: profile.liveness,
    maximumLagOnFailover: requireInteger(scope, 'highAvailability.maximumLagOnFailover', ha.maximumLagOnFailover ?? 1048576, 0),
    primaryStartTimeoutSeconds: seconds('primaryStartTimeout', ha.primaryStartTimeout, 300, 0, 86400),
    ...(ha.memberSlotsTtl ? { memberSlotsTtlSeconds: seconds('memberSlotsTtl', ha.memberSlotsTtl, 1800, 0, 7 * 86400) } : {}),
    synchronousMode,
    synchronousModeStrict: ha.synchronousModeStrict ?? false,
    restApiPort,
    restApiCredentials,
    apiServerCidrs,
    apiServerPorts,
  };
}

function failoverProfileName(profile: FailoverProfile): string {
  return Object.entries(FailoverProfile).find(([, value]) => value === profile)![0];
}
