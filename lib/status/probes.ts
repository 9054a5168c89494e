import { readFileSync } from 'fs';
import type { Client, ClientConfig, QueryResultRow } from 'pg';
import { SslMode } from '../core/tls';

/** A host and port parsed from an endpoint value. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** What a probe got: its value, or why the target could not be read. */
export type Outcome<T> = { readonly value: T } | { readonly error: string };

/** How the probes connect: TLS, timeout. */
export interface ProbeSettings {
  readonly sslMode: SslMode;
  readonly caFile?: string;
  readonly timeoutMs: number;
}

/** A login for one connection. */
export interface ProbeLogin {
  readonly username: string;
  readonly password: string;
  readonly database: string;
}

/** A standby's view of its own replay. */
export interface ReplayState {
  readonly lagBytes: number | null;
  readonly lagSeconds: number | null;
  readonly paused: boolean;
  /** pg_stat_wal_receiver's status, null without a WAL receiver. */
  readonly receiver: string | null;
}

/** One row of the primary's pg_stat_replication. */
export interface ReplicationRow {
  readonly applicationName: string;
  readonly state: string;
  readonly lagBytes: number | null;
  readonly lagSeconds: number | null;
}

/** One row of pg_replication_slots. */
export interface SlotRow {
  readonly name: string;
  readonly active: boolean;
  readonly walStatus: string | null;
  readonly retainedBytes: number | null;
}

/** pg_stat_archiver with archive_mode, and the .ready backlog when the role may list it. */
export interface ArchiverState {
  readonly mode: string;
  readonly archivedCount: number;
  readonly failedCount: number;
  readonly lastArchivedWal: string | null;
  readonly lastFailedWal: string | null;
  /** Seconds since the epoch. */
  readonly lastArchivedTime: number | null;
  readonly lastFailedTime: number | null;
  /** `.ready` files in archive_status; an error when pg_ls_archive_statusdir() is not granted (pg_monitor is enough). */
  readonly ready: Outcome<number>;
}

/** Everything read from one PostgreSQL instance over one connection. */
export interface InstanceState {
  readonly inRecovery: boolean;
  /** The primary's standbys; empty on a standby. */
  readonly replication: ReplicationRow[];
  /** A standby's replay; undefined on a primary. */
  readonly replay?: ReplayState;
  readonly slots: SlotRow[];
  readonly pendingRestart: string[];
  readonly archiver: ArchiverState;
}

/** One PgBouncer pool (SHOW POOLS), the admin console's own excluded. */
export interface PoolRow {
  readonly database: string;
  readonly user: string;
  readonly waiting: number;
  readonly maxWaitSeconds: number;
}

/** One Pgpool-II backend (SHOW pool_nodes). */
export interface PoolNodeRow {
  readonly nodeId: string;
  readonly hostname: string;
  readonly port: string;
  readonly status: string;
  /** The backend's state as Pgpool-II's health check last saw it (`unknown` without health checks). */
  readonly pgStatus: string;
  readonly role: string;
}

/** Parses `host:port` or `[v6]:port`; throws naming the target. */
export function parseEndpoint(target: string, value: string): Endpoint {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) throw new Error(`endpoint of ${target} is "${value}": give host:port, such as 127.0.0.1:5432`);
  return { host: match[1] ?? match[2], port };
}

const number = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

/** The message of a failure, without anything but the driver's text (which never holds the password). */
const reason = (error: unknown) => String((error as { message?: unknown })?.message ?? error).split('\n')[0];

function tlsOption(settings: ProbeSettings): ClientConfig['ssl'] {
  if (settings.sslMode === SslMode.DISABLE) return false;
  if (settings.sslMode === SslMode.VERIFY_CA || settings.sslMode === SslMode.VERIFY_FULL) {
    const ca = readFileSync(settings.caFile!, 'utf8');
    return settings.sslMode === SslMode.VERIFY_CA ? { ca, checkServerIdentity: () => undefined } : { ca };
  }
  return { rejectUnauthorized: false };
}

async function open(endpoint: Endpoint, login: ProbeLogin, settings: ProbeSettings, ssl: ClientConfig['ssl']): Promise<Client> {
  // Loaded here (bundled with the package), so requiring the library for synthesis does not load the driver.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client: PgClient } = require('pg') as typeof import('pg');
  const client = new PgClient({
    host: endpoint.host, port: endpoint.port, user: login.username, password: login.password, database: login.database,
    ssl, connectionTimeoutMillis: settings.timeoutMs, query_timeout: settings.timeoutMs, application_name: 'cdk8s-postgres-status',
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** A connected client; `prefer` and `allow` fall back to plain text when the server has no TLS. */
async function connect(endpoint: Endpoint, login: ProbeLogin, settings: ProbeSettings): Promise<Client> {
  try {
    return await open(endpoint, login, settings, tlsOption(settings));
  } catch (error) {
    const fallback = settings.sslMode === SslMode.PREFER || settings.sslMode === SslMode.ALLOW;
    if (fallback && /does not support SSL/.test(reason(error))) return open(endpoint, login, settings, false);
    throw error;
  }
}

/** Runs `read` on a fresh connection and closes it; a failure to connect or read becomes the outcome's error. */
async function withClient<T>(endpoint: Endpoint, login: ProbeLogin, settings: ProbeSettings,
  read: (client: Client) => Promise<T>): Promise<Outcome<T>> {
  let client: Client | undefined;
  try {
    client = await connect(endpoint, login, settings);
    return { value: await read(client) };
  } catch (error) {
    return { error: reason(error) };
  } finally {
    await client?.end().catch(() => undefined);
  }
}

const rows = async (client: Client, sql: string): Promise<QueryResultRow[]> => (await client.query(sql)).rows;

const REPLICATION_SQL = `SELECT application_name, state,
  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,
  extract(epoch FROM replay_lag)::float8 AS lag_seconds
FROM pg_stat_replication ORDER BY application_name`;

// Seconds behind: none when everything received is replayed (an idle primary sends nothing),
// else since the last replayed commit (an upper bound when the primary was idle before; null
// when none was replayed since the standby started).
const REPLAY_SQL = `SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS lag_bytes,
  CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8 AS lag_seconds,
  pg_is_wal_replay_paused() AS paused,
  (SELECT status FROM pg_stat_wal_receiver) AS receiver`;

const SLOTS_SQL = `SELECT slot_name, active, wal_status,
  pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::bigint AS retained_bytes
FROM pg_replication_slots ORDER BY slot_name`;

const ARCHIVER_SQL = `SELECT current_setting('archive_mode') AS mode, archived_count, failed_count, last_archived_wal, last_failed_wal,
  extract(epoch FROM last_archived_time)::float8 AS last_archived_time, extract(epoch FROM last_failed_time)::float8 AS last_failed_time
FROM pg_stat_archiver`;

/** Role, replication, slots, pending restarts and archiving of one PostgreSQL instance. */
export function probeInstance(endpoint: Endpoint, login: ProbeLogin, settings: ProbeSettings): Promise<Outcome<InstanceState>> {
  return withClient(endpoint, login, settings, async (client) => {
    const [{ recovery }] = await rows(client, 'SELECT pg_is_in_recovery() AS recovery');
    const replication = recovery ? [] : (await rows(client, REPLICATION_SQL)).map((r) => ({
      applicationName: r.application_name, state: r.state, lagBytes: number(r.lag_bytes), lagSeconds: number(r.lag_seconds),
    }));
    const replay = recovery ? await rows(client, REPLAY_SQL).then(([r]) => ({
      lagBytes: number(r.lag_bytes), lagSeconds: number(r.lag_seconds), paused: r.paused, receiver: r.receiver,
    })) : undefined;
    const slots = (await rows(client, SLOTS_SQL)).map((r) => ({
      name: r.slot_name, active: r.active, walStatus: r.wal_status, retainedBytes: number(r.retained_bytes),
    }));
    const pendingRestart = (await rows(client, 'SELECT name FROM pg_settings WHERE pending_restart ORDER BY name')).map((r) => r.name);
    const [a] = await rows(client, ARCHIVER_SQL);
    let ready: Outcome<number>;
    try {
      ready = { value: Number((await rows(client, "SELECT count(*) AS ready FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"))[0].ready) };
    } catch (error) {
      ready = { error: reason(error) };
    }
    return {
      inRecovery: recovery, replication, replay, slots, pendingRestart,
      archiver: {
        mode: a.mode, archivedCount: Number(a.archived_count), failedCount: Number(a.failed_count), lastArchivedWal: a.last_archived_wal,
        lastFailedWal: a.last_failed_wal, lastArchivedTime: number(a.last_archived_time), lastFailedTime: number(a.last_failed_time), ready,
      },
    };
  });
}

/** Whether a Service's endpoint reaches a standby. */
export function probeRecovery(endpoint: Endpoint, login: ProbeLogin, settings: ProbeSettings): Promise<Outcome<boolean>> {
  return withClient(endpoint, login, settings, async (client) => (await rows(client, 'SELECT pg_is_in_recovery() AS recovery'))[0].recovery);
}

/** PgBouncer's pools from its admin console (a stats_users role may read it). */
export function probePools(endpoint: Endpoint, login: ProbeLogin, settings: ProbeSettings): Promise<Outcome<PoolRow[]>> {
  return withClient(endpoint, login, settings, async (client) => (await rows(client, 'SHOW POOLS'))
    .filter((r) => r.database !== 'pgbouncer')
    .map((r) => ({
      database: r.database, user: r.user, waiting: Number(r.cl_waiting), maxWaitSeconds: Number(r.maxwait) + Number(r.maxwait_us ?? 0) / 1e6,
    })));
}

/** Pgpool-II's backends as it sees them. */
export function probePoolNodes(endpoint: Endpoint, login: ProbeLogin, settings: ProbeSettings): Promise<Outcome<PoolNodeRow[]>> {
  return withClient(endpoint, login, settings, async (client) => (await rows(client, 'SHOW pool_nodes')).map((r) => ({
    nodeId: String(r.node_id), hostname: r.hostname, port: String(r.port), status: r.status, pgStatus: r.pg_status ?? 'unknown', role: r.role,
  })));
}

/** The value of an exporter's `<metric>` sample (its scrape of the daemon), from its /metrics page. */
export async function probeMetric(endpoint: Endpoint, metric: string, settings: ProbeSettings): Promise<Outcome<number | null>> {
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  try {
    const response = await fetch(`http://${host}:${endpoint.port}/metrics`, { signal: AbortSignal.timeout(settings.timeoutMs) });
    if (!response.ok) return { error: `GET /metrics answered ${response.status}` };
    const sample = new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await response.text());
    return { value: sample ? Number(sample[1]) : null };
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    return { error: reason(cause ?? error) };
  }
}
