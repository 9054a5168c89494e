import { EndpointRole } from '../core/endpoint';

/** What bounds a pooler's server connections to one database entry. */
export interface DemandInputs {
  /** Roles with pools of their own: the userlist's users and the roles auth_query looks up. */
  readonly pooledRoles: number;
  /** Whether an auth user runs auth_query. */
  readonly authQuery: boolean;
  readonly defaultPoolSize: number;
  readonly reservePoolSize: number;
  readonly maxDbConnections?: number;
  readonly maxUserConnections?: number;
}

/** A database entry as far as the budget is concerned. */
export interface DemandDatabase {
  readonly role: EndpointRole;
  readonly poolSize?: number;
  readonly maxDbConnections?: number;
}

/** Server connections all pods may open for one purpose, by the Service they go to. */
export interface PoolerDemandLine {
  readonly purpose: string;
  readonly byRole: { readonly [role in EndpointRole]: number };
}

const POOLED_USERS = 'pooled users';
const RESERVE_POOL = 'reserve pool';
const AUTH_QUERY_POOL = 'auth_query pool';
const CAPPED_POOLS = 'max_db_connections (all pools)';

/**
 * One pod's connections to one database entry, by purpose. PgBouncer keeps a pool per (database,
 * user), each up to pool_size plus reserve_pool_size once clients wait; auth_query runs through
 * the pool of (database, auth_user), which grows like any other (1.18 has no auth_dbname).
 * max_user_connections caps a user's pools, max_db_connections all pools of the database; both
 * count the auth user's. min_pool_size fills within pool_size, so it adds nothing.
 */
function perPod(database: DemandDatabase, inputs: DemandInputs): Array<[string, number]> {
  const userCap = inputs.maxUserConnections ?? Infinity;
  const pool = Math.min(database.poolSize ?? inputs.defaultPoolSize, userCap);
  const reserve = Math.min(pool + inputs.reservePoolSize, userCap) - pool;
  const authPools = inputs.authQuery ? 1 : 0;
  const lines: Array<[string, number]> = [
    [POOLED_USERS, inputs.pooledRoles * pool],
    [RESERVE_POOL, (inputs.pooledRoles + authPools) * reserve],
    [AUTH_QUERY_POOL, authPools * pool],
  ];
  const cap = database.maxDbConnections ?? inputs.maxDbConnections;
  const uncapped = lines.reduce((sum, [, connections]) => sum + connections, 0);
  return cap !== undefined && cap < uncapped ? [[CAPPED_POOLS, cap]] : lines.filter(([, connections]) => connections > 0);
}

/** Server connections all pods may open, by purpose and Service, summed over the database entries. */
export function poolerDemand(replicas: number, databases: DemandDatabase[], inputs: DemandInputs): PoolerDemandLine[] {
  const lines = new Map<string, { [role in EndpointRole]: number }>();
  for (const database of databases) {
    for (const [purpose, connections] of perPod(database, inputs)) {
      const line = lines.get(purpose) ?? { [EndpointRole.READ_WRITE]: 0, [EndpointRole.READ_ONLY]: 0 };
      line[database.role] += replicas * connections;
      lines.set(purpose, line);
    }
  }
  return [POOLED_USERS, RESERVE_POOL, AUTH_QUERY_POOL, CAPPED_POOLS]
    .filter((purpose) => lines.has(purpose))
    .map((purpose) => ({ purpose, byRole: lines.get(purpose)! }));
}
