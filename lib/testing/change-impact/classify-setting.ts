import { ParameterContext } from '../../core/parameter-context';
import { DEFAULT_POSTGRES_MAJOR, postgresVersion } from '../../core/postgres-versions';

/** How a cluster runs its members, which decides who applies a settings change. */
export enum ClusterMode {
  /** Primary and replica StatefulSets; postgresql.conf in the cluster's ConfigMap. */
  PLAIN = 'plain',
  /**
   * Patroni; the parameters in patroni.yml `postgresql.parameters` and, the same, in
   * patroni-dynamic.json, which the members' settings agents apply (patroni-settings-agent.ts).
   */
  HIGH_AVAILABILITY = 'high-availability',
}

/** What applying a settings change takes. */
export enum SettingAction {
  /** A reload applies it (pg_reload_conf, or Patroni's reload). */
  RELOAD = 'reload',
  /** A restart of every member applies it (`pending_restart` until then). */
  RESTART = 'restart',
  /** Fixed at initdb or compile time: it cannot change. */
  CANNOT_CHANGE = 'cannot-change',
  /** Not a parameter of this PostgreSQL version: the server refuses to start or ignores it. */
  UNKNOWN_PARAMETER = 'unknown-parameter',
}

/** The order the members must restart in. */
export enum RestartOrder {
  /** No restart, or any order. */
  ANY = 'any',
  /** Replicas first, the primary last: the value was raised and standbys need at least the primary's. */
  PRIMARY_LAST = 'primary-last',
  /** The primary first, then the replicas: the value was lowered. */
  PRIMARY_FIRST = 'primary-first',
}

/** One PostgreSQL parameter change, classified. */
export interface SettingChange {
  /** The parameter, lower-cased. */
  readonly parameter: string;
  /**
   * The value before.
   * @default - not set: the server's default
   */
  readonly oldValue?: string;
  /**
   * The value after.
   * @default - not set: the server's default
   */
  readonly newValue?: string;
  /**
   * Its context in the version's catalog.
   * @default - not a parameter of this version
   */
  readonly context?: ParameterContext;
  /** What applying it takes. */
  readonly action: SettingAction;
  /** The order the members restart in. */
  readonly order: RestartOrder;
  /** One sentence for the reviewer. */
  readonly note: string;
}

/**
 * Parameters a standby refuses to run with below the primary's value
 * (https://www.postgresql.org/docs/15/hot-standby.html#HOT-STANDBY-ADMIN), with the server's defaults.
 */
export const STANDBY_MINIMUM_PARAMETERS: { readonly [parameter: string]: number } = {
  max_connections: 100,
  max_worker_processes: 8,
  max_wal_senders: 10,
  max_prepared_transactions: 0,
  max_locks_per_transaction: 64,
};

/**
 * PostgreSQL 15's preset (internal) options, which `postgres --describe-config` leaves out of the
 * contexts table (https://www.postgresql.org/docs/15/runtime-config-preset.html).
 */
const PRESET_OPTIONS = new Set([
  'block_size', 'data_checksums', 'data_directory_mode', 'debug_assertions', 'in_hot_standby', 'integer_datetimes', 'lc_collate', 'lc_ctype',
  'max_function_args', 'max_identifier_length', 'max_index_keys', 'segment_size', 'server_encoding', 'server_version', 'server_version_num',
  'shared_memory_size', 'shared_memory_size_in_huge_pages', 'ssl_library', 'wal_block_size', 'wal_segment_size',
]);

function numeric(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return STANDBY_MINIMUM_PARAMETERS[name];
  const parsed = Number(value.trim());
  return Number.isFinite(parsed) ? parsed : undefined;
}

function restartOrder(name: string, oldValue: string | undefined, newValue: string | undefined): RestartOrder {
  if (!(name in STANDBY_MINIMUM_PARAMETERS)) return RestartOrder.ANY;
  const before = numeric(name, oldValue);
  const after = numeric(name, newValue);
  if (before === undefined || after === undefined || before === after) return RestartOrder.ANY;
  return after > before ? RestartOrder.PRIMARY_LAST : RestartOrder.PRIMARY_FIRST;
}

function restartNote(order: RestartOrder, mode: ClusterMode): string {
  if (mode === ClusterMode.HIGH_AVAILABILITY) {
    // What the leader's settings agent does (lib/cluster/patroni-settings-agent.ts), no pod rolled.
    if (order === RestartOrder.PRIMARY_FIRST) {
      return 'needs a restart of every member; lowered: the settings agent restarts the replicas (which keep the leader\'s higher value), '
        + 'then the leader in place (writes pause for its restart), then the replicas again';
    }
    return 'needs a restart of every member: the settings agent restarts them one at a time, replicas first, '
      + 'then switches over to one of them and the old leader restarts as a replica';
  }
  const plain = mode === ClusterMode.PLAIN ? ' (kubectl apply rolls both StatefulSets at once: roll the replica StatefulSet first, or accept a brief standby failure)' : '';
  if (order === RestartOrder.PRIMARY_LAST) return `needs a restart of every member; raised: restart the replicas first and the primary last${plain}`;
  if (order === RestartOrder.PRIMARY_FIRST) return `needs a restart of every member; lowered: restart the primary first, then the replicas${plain}`;
  return 'needs a restart of every member (pending_restart after a reload)';
}

/**
 * Classifies one PostgreSQL parameter change by its context in the version's catalog: a reload,
 * a restart of every member (in which order; in the HA mode, what the settings agent does), or
 * impossible. Pure: the e2e test checks it against the real server's `pending_restart`.
 *
 * @param name the parameter (any case)
 * @param oldValue the value before, undefined when unset
 * @param newValue the value after, undefined when unset
 * @param mode where the parameter is set
 * @param major the PostgreSQL major version
 */
export function classifySettingChange(
  name: string, oldValue: string | undefined, newValue: string | undefined, mode: ClusterMode, major: number = DEFAULT_POSTGRES_MAJOR,
): SettingChange {
  const parameter = name.trim().toLowerCase();
  const context: ParameterContext | undefined = PRESET_OPTIONS.has(parameter)
    ? ParameterContext.INTERNAL : postgresVersion(major).contexts[parameter];
  const base = { parameter, oldValue, newValue, context };
  if (context === undefined) {
    return { ...base, action: SettingAction.UNKNOWN_PARAMETER, order: RestartOrder.ANY, note: `not a parameter of PostgreSQL ${major}: check its spelling` };
  }
  if (context === ParameterContext.INTERNAL) {
    return { ...base, action: SettingAction.CANNOT_CHANGE, order: RestartOrder.ANY, note: 'fixed at initdb: it cannot change on an existing cluster' };
  }
  if (context === ParameterContext.POSTMASTER) {
    const order = restartOrder(parameter, oldValue, newValue);
    return { ...base, action: SettingAction.RESTART, order, note: restartNote(order, mode) };
  }
  const agent = mode === ClusterMode.HIGH_AVAILABILITY ? ': the settings agent reloads every member' : '';
  return { ...base, action: SettingAction.RELOAD, order: RestartOrder.ANY, note: `a reload applies it (${context})${agent}` };
}
