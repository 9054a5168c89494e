/** Server connections one consumer (a pooler, a balancer, an exporter) may open on a cluster. */
export interface ConnectionDemand {
  /** Who asks, as a construct path. */
  readonly consumer: string;
  /** Connections on the primary. */
  readonly primary: number;
  /** Connections on each replica: the read-only Service may send all of them to one. */
  readonly replica: number;
}

/**
 * The problem with these demands against a limit of `available` connections per instance, or
 * undefined when they fit: a small table of who asks for how many, and the totals.
 */
export function describeOverbooking(demands: ConnectionDemand[], available: number, replicas: number): string | undefined {
  const total = (key: 'primary' | 'replica') => demands.reduce((sum, demand) => sum + demand[key], 0);
  const primary = total('primary');
  const replica = replicas > 0 ? total('replica') : 0;
  if (primary <= available && replica <= available) return undefined;
  const width = Math.max('consumer'.length, 'total'.length, ...demands.map((demand) => demand.consumer.length));
  const row = (consumer: string, onPrimary: number | string, onReplica: number | string) =>
    `  ${consumer.padEnd(width)}  ${String(onPrimary).padStart(7)}  ${String(onReplica).padStart(12)}`;
  return [
    row('consumer', 'primary', 'each replica'),
    ...demands.map((demand) => row(demand.consumer, demand.primary, replicas > 0 ? demand.replica : '-')),
    row('total', primary, replicas > 0 ? replica : '-'),
  ].join('\n');
}
