import { ExpectedCluster, ExpectedInstance, ExpectedProxy } from './expected-stack';
import { InstanceState, Outcome, PoolNodeRow, PoolRow, ReplicationRow } from './probes';
import { HealthStatus, StatusFinding } from './status-types';

/** The thresholds, defaults applied. */
export interface Thresholds {
  readonly maxLagBytes: number;
  readonly maxLagSeconds: number;
  readonly maxArchiveReady: number;
  readonly maxPoolWaitSeconds: number;
}

/** What the probes got for one cluster, by target; a target without an endpoint is absent. */
export interface ClusterObservations {
  readonly instances: { readonly [pod: string]: Outcome<InstanceState> | undefined };
  readonly services: { readonly [service: string]: Outcome<boolean> | undefined };
  readonly metrics: { readonly [pod: string]: Outcome<number | null> | undefined };
}

type Finding = Omit<StatusFinding, 'component'>;

const bytes = (value: number) => (value >= 1024 * 1024 ? `${(value / 1024 / 1024).toFixed(1)} MiB` : `${value} B`);
const seconds = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} s`;
const time = (epoch: number | null) => (epoch === null ? 'never' : new Date(epoch * 1000).toISOString());
const podTarget = (pod: string) => `pod/${pod}`;

/** A target without an endpoint, or one that did not answer; undefined when the outcome has a value to check. */
function unanswered<T>(target: string, outcome: Outcome<T> | undefined): Finding | undefined {
  if (outcome === undefined) return { target, check: 'reachable', status: HealthStatus.SKIPPED, message: 'no endpoint given' };
  if ('error' in outcome) return { target, check: 'reachable', status: HealthStatus.UNREACHABLE, message: outcome.error };
  return undefined;
}

/** The standby's row in the primary's pg_stat_replication: application_name is the pod name, or its slot name (`-` as `_`). */
function replicationRow(rows: ReplicationRow[], pod: string): ReplicationRow | undefined {
  return rows.find((row) => row.applicationName === pod || row.applicationName === pod.replace(/-/g, '_'));
}

function roleFinding(instance: ExpectedInstance, state: InstanceState): Finding {
  const actual = state.inRecovery ? 'replica' : 'primary';
  const target = podTarget(instance.pod);
  if (instance.role !== 'any' && instance.role !== actual) {
    const why = actual === 'primary' ? 'a replica pod runs as a primary (promoted by hand?): two timelines may diverge'
      : 'the primary StatefulSet\'s pod runs as a standby: writers through the -rw Service fail';
    return { target, check: 'role', status: HealthStatus.CRITICAL, message: `${actual}, expected ${instance.role}: ${why}` };
  }
  return { target, check: 'role', status: HealthStatus.OK, message: actual };
}

function replicationFinding(cluster: ExpectedCluster, primary: ExpectedInstance, state: InstanceState): Finding {
  const standbys = cluster.instances.filter((i) => i !== primary);
  const missing = standbys.filter((i) => replicationRow(state.replication, i.pod)?.state !== 'streaming')
    .map((i) => `${i.pod} (${replicationRow(state.replication, i.pod)?.state ?? 'not connected'})`);
  const streaming = standbys.length - missing.length;
  if (missing.length > 0) {
    return {
      target: podTarget(primary.pod), check: 'replication', status: HealthStatus.CRITICAL,
      message: `${streaming} of ${standbys.length} standbys streaming; not streaming: ${missing.join(', ')}`,
    };
  }
  return { target: podTarget(primary.pod), check: 'replication', status: HealthStatus.OK, message: `${streaming} of ${standbys.length} standbys streaming` };
}

/** A standby's lag: the larger of its own view and the primary's, against the thresholds. */
function lagFinding(instance: ExpectedInstance, state: InstanceState, primaryRow: ReplicationRow | undefined, t: Thresholds): Finding {
  const replay = state.replay!;
  const target = podTarget(instance.pod);
  const lagBytes = Math.max(replay.lagBytes ?? 0, primaryRow?.lagBytes ?? 0);
  // Unknown when WAL waits but no commit was replayed since the standby started, and the primary has not measured one.
  const known = [replay.lagSeconds, primaryRow?.lagSeconds].filter((value): value is number => value !== null && value !== undefined);
  const lagSeconds = known.length > 0 ? Math.max(...known) : undefined;
  const figures = `replay ${bytes(lagBytes)} and ${lagSeconds === undefined ? 'unknown seconds (no commit replayed yet)' : seconds(lagSeconds)} behind`;
  if (replay.receiver !== 'streaming') {
    return { target, check: 'lag', status: HealthStatus.CRITICAL, message: `no WAL receiver streaming (${replay.receiver ?? 'none'}); ${figures}` };
  }
  const problems = [
    ...(replay.paused ? ['replay is paused (pg_wal_replay_resume() resumes it)'] : []),
    ...(lagBytes > t.maxLagBytes ? [`over ${bytes(t.maxLagBytes)}`] : []),
    ...(lagSeconds !== undefined && lagSeconds > t.maxLagSeconds ? [`over ${seconds(t.maxLagSeconds)}`] : []),
  ];
  return problems.length > 0 ? { target, check: 'lag', status: HealthStatus.WARNING, message: `${figures}: ${problems.join('; ')}` }
    : { target, check: 'lag', status: HealthStatus.OK, message: figures };
}

/**
 * Slots: a lost one is critical (its standby must be rebuilt), an unreserved one a warning; an
 * inactive one keeps WAL on the primary's volume, except on an HA standby, where Patroni keeps
 * the other members' slots inactive on purpose.
 */
function slotsFinding(instance: ExpectedInstance, state: InstanceState, highAvailability: boolean): Finding {
  const target = podTarget(instance.pod);
  const lost = state.slots.filter((s) => s.walStatus === 'lost').map((s) => s.name);
  const unreserved = state.slots.filter((s) => s.walStatus === 'unreserved').map((s) => s.name);
  const inactive = highAvailability && state.inRecovery ? [] : state.slots.filter((s) => !s.active && s.walStatus !== 'lost')
    .map((s) => `${s.name} (retains ${s.retainedBytes === null ? 'unknown' : bytes(s.retainedBytes)})`);
  if (lost.length > 0) {
    return { target, check: 'slots', status: HealthStatus.CRITICAL, message: `WAL removed under slot ${lost.join(', ')} (wal_status lost): its standby cannot catch up` };
  }
  const problems = [
    ...(inactive.length > 0 ? [`inactive: ${inactive.join(', ')}`] : []),
    ...(unreserved.length > 0 ? [`past max_slot_wal_keep_size: ${unreserved.join(', ')}`] : []),
  ];
  if (problems.length > 0) return { target, check: 'slots', status: HealthStatus.WARNING, message: problems.join('; ') };
  return { target, check: 'slots', status: HealthStatus.OK, message: `${state.slots.length} slot(s), all active` };
}

function pendingRestartFinding(instance: ExpectedInstance, state: InstanceState): Finding {
  const target = podTarget(instance.pod);
  if (state.pendingRestart.length === 0) return { target, check: 'pending-restart', status: HealthStatus.OK, message: 'none' };
  return {
    target, check: 'pending-restart', status: HealthStatus.WARNING,
    message: `changed, applied at the next restart: ${state.pendingRestart.join(', ')}`,
  };
}

/** Archiving where the archiver runs: a primary with archive_mode on, or any instance with always. */
function archivingFinding(cluster: ExpectedCluster, instance: ExpectedInstance, state: InstanceState, t: Thresholds): Finding | undefined {
  const target = podTarget(instance.pod);
  const a = state.archiver;
  if (a.mode === 'off') {
    if (state.inRecovery) return undefined;
    return cluster.backups ? { target, check: 'archiving', status: HealthStatus.CRITICAL, message: 'archive_mode is off, though the manifests configure backups' }
      : { target, check: 'archiving', status: HealthStatus.OK, message: 'archive_mode off (no backup in the manifests)' };
  }
  if (state.inRecovery && a.mode !== 'always') return undefined;
  const ready = 'value' in a.ready ? `${a.ready.value} segment(s) waiting` : `backlog not readable (${a.ready.error})`;
  const figures = `${a.archivedCount} archived, last ${a.lastArchivedWal ?? 'none'} at ${time(a.lastArchivedTime)}; ${ready}`;
  if (a.failedCount > 0 && a.lastFailedTime !== null && (a.lastArchivedTime === null || a.lastFailedTime > a.lastArchivedTime)) {
    return {
      target, check: 'archiving', status: HealthStatus.CRITICAL,
      message: `failing: ${a.failedCount} failure(s), last ${a.lastFailedWal} at ${time(a.lastFailedTime)}; ${figures}`,
    };
  }
  if ('value' in a.ready && a.ready.value > t.maxArchiveReady) {
    return { target, check: 'archiving', status: HealthStatus.WARNING, message: `behind: ${figures} (over ${t.maxArchiveReady})` };
  }
  return { target, check: 'archiving', status: HealthStatus.OK, message: figures };
}

function exporterFinding(target: string, metric: string, outcome: Outcome<number | null> | undefined): Finding {
  const missing = unanswered(target, outcome);
  if (missing) return missing;
  const value = (outcome as { value: number | null }).value;
  if (value === 1) return { target, check: 'metrics', status: HealthStatus.OK, message: `${metric} 1` };
  return {
    target, check: 'metrics', status: HealthStatus.CRITICAL,
    message: value === null ? `no ${metric} sample on /metrics` : `${metric} ${value}: the exporter cannot read its daemon`,
  };
}

/** Every finding of one cluster: per instance, then the primary count, the Services and the exporters. */
export function clusterFindings(cluster: ExpectedCluster, observed: ClusterObservations, t: Thresholds): StatusFinding[] {
  const findings: Finding[] = [];
  const states = new Map<ExpectedInstance, InstanceState>();
  for (const instance of cluster.instances) {
    const outcome = observed.instances[instance.pod];
    if (outcome && 'value' in outcome) states.set(instance, outcome.value);
  }
  const primaries = [...states].filter(([, state]) => !state.inRecovery).map(([instance]) => instance);
  const primaryState = primaries.length === 1 ? states.get(primaries[0]) : undefined;
  for (const instance of cluster.instances) {
    const state = states.get(instance);
    if (!state) {
      findings.push(unanswered(podTarget(instance.pod), observed.instances[instance.pod])!);
      continue;
    }
    findings.push(roleFinding(instance, state));
    if (!state.inRecovery && primaries.length === 1) findings.push(replicationFinding(cluster, instance, state));
    if (state.inRecovery) findings.push(lagFinding(instance, state, primaryState && replicationRow(primaryState.replication, instance.pod), t));
    findings.push(slotsFinding(instance, state, cluster.highAvailability), pendingRestartFinding(instance, state));
    const archiving = archivingFinding(cluster, instance, state, t);
    if (archiving) findings.push(archiving);
  }
  if (states.size > 0) {
    const names = primaries.map((i) => i.pod).join(', ');
    findings.push(primaries.length === 1 ? { target: cluster.name, check: 'primary', status: HealthStatus.OK, message: `one primary: ${names}` }
      : {
        target: cluster.name, check: 'primary', status: HealthStatus.CRITICAL,
        message: primaries.length === 0 ? `no primary among the ${states.size} instance(s) that answered` : `${primaries.length} primaries: ${names}`,
      });
  }
  for (const service of cluster.services) {
    const target = `service/${service.name}`;
    const outcome = observed.services[service.name];
    const missing = unanswered(target, outcome);
    if (missing) { findings.push(missing); continue; }
    const actual = (outcome as { value: boolean }).value ? 'replica' : 'primary';
    findings.push(actual === service.role ? { target, check: 'service-role', status: HealthStatus.OK, message: `reaches a ${actual}` }
      : { target, check: 'service-role', status: HealthStatus.CRITICAL, message: `reaches a ${actual}, expected a ${service.role}` });
  }
  for (const instance of cluster.instances.filter((i) => i.exporter)) {
    findings.push(exporterFinding(`${podTarget(instance.pod)}:metrics`, 'pg_up', observed.metrics[instance.pod]));
  }
  return findings.map((f) => ({ component: cluster.name, ...f }));
}

/** A pooler's pools: a waiting client is a warning, a wait of maxPoolWaitSeconds or more critical. */
export function poolerFindings(proxy: ExpectedProxy, pools: Outcome<PoolRow[]> | undefined, metrics: Outcome<number | null> | undefined,
  t: Thresholds): StatusFinding[] {
  const target = `service/${proxy.name}`;
  const findings: Finding[] = [];
  const missing = unanswered(target, pools);
  if (missing) {findings.push(missing);} else {
    const rows = (pools as { value: PoolRow[] }).value;
    const waiting = rows.filter((r) => r.waiting > 0);
    const longest = Math.max(0, ...rows.map((r) => r.maxWaitSeconds));
    const where = waiting.map((r) => `${r.database}/${r.user}: ${r.waiting}`).join(', ');
    if (waiting.length === 0 && longest === 0) {
      findings.push({ target, check: 'pools', status: HealthStatus.OK, message: `${rows.length} pool(s), no client waiting` });
    } else {
      findings.push({
        target, check: 'pools', status: longest >= t.maxPoolWaitSeconds ? HealthStatus.CRITICAL : HealthStatus.WARNING,
        message: `saturated: clients waiting for a server connection (${where || 'none now'}), longest ${seconds(longest)}`,
      });
    }
  }
  if (proxy.exporter) findings.push(exporterFinding(`${target}:metrics`, 'pgbouncer_up', metrics));
  return findings.map((f) => ({ component: proxy.name, ...f }));
}

/** A balancer's backends: one down (for Pgpool-II, or for its health check) is critical. */
export function balancerFindings(proxy: ExpectedProxy, nodes: Outcome<PoolNodeRow[]> | undefined,
  metrics: Outcome<number | null> | undefined): StatusFinding[] {
  const target = `service/${proxy.name}`;
  const findings: Finding[] = [];
  const missing = unanswered(target, nodes);
  if (missing) {findings.push(missing);} else {
    const rows = (nodes as { value: PoolNodeRow[] }).value;
    const describe = (r: PoolNodeRow) => `${r.nodeId} ${r.hostname}:${r.port} ${r.role} ${r.status}${r.pgStatus === 'unknown' ? '' : `/${r.pgStatus}`}`;
    const down = rows.filter((r) => r.status === 'down' || r.pgStatus === 'down');
    // A backend that answers again stays detached until attached: Pgpool-II's own status is down, its live pg_status up.
    const detached = down.filter((r) => r.status === 'down' && r.pgStatus === 'up').map((r) => r.nodeId);
    const attach = detached.length > 0 ? `; node ${detached.join(', ')} answers again but stays detached until pcp_attach_node -n <id> (or auto_failback)` : '';
    findings.push(down.length > 0 ? { target, check: 'nodes', status: HealthStatus.CRITICAL, message: `backend(s) down: ${down.map(describe).join(', ')}${attach}` }
      : { target, check: 'nodes', status: HealthStatus.OK, message: `${rows.length} backend(s) up: ${rows.map(describe).join(', ')}` });
  }
  if (proxy.exporter) findings.push(exporterFinding(`${target}:metrics`, 'pgpool2_up', metrics));
  return findings.map((f) => ({ component: proxy.name, ...f }));
}
