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
 * undefined when they fit.
 */
export function describeOverbooking(demands: ConnectionDemand[], available: number, replicas: number): string | undefined {
  const { primary, replica } = totals(demands, replicas);
  return primary <= available && replica <= available ? undefined : budgetTable(demands, replicas);
}

/** The demands' totals on the primary and on each replica. */
export function totals(demands: ConnectionDemand[], replicas: number): { primary: number; replica: number } {
  const sum = (key: 'primary' | 'replica') => demands.reduce((total, demand) => total + demand[key], 0);
  return { primary: sum('primary'), replica: replicas > 0 ? sum('replica') : 0 };
}

/** A small table of who asks for how many connections, and the totals. */
export function budgetTable(demands: ConnectionDemand[], replicas: number): string {
  const { primary, replica } = totals(demands, replicas);
  const width = Math.max('consumer'.length, 'total'.length, ...demands.map((demand) => demand.consumer.length));
  const row = (consumer: string, onPrimary: number | string, onReplica: number | string) =>
    `  ${consumer.padEnd(width)}  ${String(onPrimary).padStart(7)}  ${String(onReplica).padStart(12)}`;
  return [
    row('consumer', 'primary', 'each replica'),
    ...demands.map((demand) => row(demand.consumer, demand.primary, replicas > 0 ? demand.replica : '-')),
    row('total', primary, replicas > 0 ? replica : '-'),
  ].join('\n');
}
