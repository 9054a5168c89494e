/**
 * Server connections one consumer (a pooler, a balancer, an exporter) may open on a cluster for
 * one purpose; a consumer that opens connections for several purposes declares one per purpose.
 */
export interface ConnectionDemand {
  /** Who asks, as a construct path. */
  readonly consumer: string;
  /**
   * What the connections are for, as the budget report shows it ("pooled users", "auth_query
   * pool", "sr_check + health check").
   * @default "connections"
   */
  readonly purpose?: string;
  /** Connections on the primary. */
  readonly primary: number;
  /** Connections on each replica: the read-only Service may send all of them to one. */
  readonly replica: number;
  /**
   * Whether the connections log in as a superuser, which may also take the slots
   * superuser_reserved_connections keeps from ordinary roles.
   * @default false
   */
  readonly superuser?: boolean;
}

/**
 * An instance's limits: max_connections, of which superuser_reserved_connections only superusers
 * may take, and reserved_connections (PostgreSQL 16) only they and pg_use_reserved_connections.
 */
export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly superuserReservedConnections: number;
  readonly reservedConnections: number;
}

/**
 * The connections every instance must allow for these demands to fit: max_connections for all
 * of them, and both reserves (superuser_reserved_connections, reserved_connections) more than
 * ordinary roles take.
 */
export function neededMaxConnections(demands: ConnectionDemand[], limits: ConnectionLimits, replicas: number): number {
  const most = (selected: ConnectionDemand[]) => Math.max(...Object.values(totals(selected, replicas)));
  const reserved = limits.superuserReservedConnections + limits.reservedConnections;
  return Math.max(most(demands), most(demands.filter((demand) => !demand.superuser)) + reserved);
}

/** The problem with these demands against an instance's limits, or undefined when they fit. */
export function describeOverbooking(demands: ConnectionDemand[], limits: ConnectionLimits, replicas: number): string | undefined {
  return neededMaxConnections(demands, limits, replicas) <= limits.maxConnections ? undefined : budgetTable(demands, replicas);
}

/** The demands' totals on the primary and on each replica. */
export function totals(demands: ConnectionDemand[], replicas: number): { primary: number; replica: number } {
  const sum = (key: 'primary' | 'replica') => demands.reduce((total, demand) => total + demand[key], 0);
  return { primary: sum('primary'), replica: replicas > 0 ? sum('replica') : 0 };
}

/** A small table of who asks for how many connections and for what, and the totals. */
export function budgetTable(demands: ConnectionDemand[], replicas: number): string {
  const { primary, replica } = totals(demands, replicas);
  const purposeOf = (demand: ConnectionDemand) => `${demand.purpose ?? 'connections'}${demand.superuser ? ' (superuser)' : ''}`;
  const width = Math.max('consumer'.length, 'total'.length, ...demands.map((demand) => demand.consumer.length));
  const purposeWidth = Math.max('for'.length, ...demands.map((demand) => purposeOf(demand).length));
  const row = (consumer: string, purpose: string, onPrimary: number | string, onReplica: number | string) =>
    `  ${consumer.padEnd(width)}  ${purpose.padEnd(purposeWidth)}  ${String(onPrimary).padStart(7)}  ${String(onReplica).padStart(12)}`;
  return [
    row('consumer', 'for', 'primary', 'each replica'),
    ...demands.map((demand) => row(demand.consumer, purposeOf(demand), demand.primary, replicas > 0 ? demand.replica : '-')),
    row('total', '', primary, replicas > 0 ? replica : '-'),
  ].join('\n');
}
