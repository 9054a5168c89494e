import { Client } from 'pg';

/** Where and as whom load sessions log in: loopback TCP, or the Unix socket directory `host`. */
export interface Target {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly host?: string;
}

/**
 * node-postgres' settings for a target: over TCP, TLS as libpq's sslmode=require (the daemons'
 * listeners take TLS only, with a certificate the client does not verify); none on a socket.
 */
export function clientConfig(target: Target) {
  const host = target.host ?? '127.0.0.1';
  return { ...target, host, ...(host.startsWith('/') ? {} : { ssl: { rejectUnauthorized: false } }) };
}

/** What a load run saw: sessions that did all their work, and why the others failed. */
export interface LoadResult {
  readonly sessions: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Error message -> how many sessions failed with it. */
  readonly errors: { [message: string]: number };
}

/**
 * `sessions` clients connect at once and stay connected until every connection attempt has
 * ended, so they are truly concurrent; each connected one then runs `transactions` short
 * transactions and disconnects. Loopback only, bounded in count and time.
 */
export async function concurrentSessions(target: Target, sessions: number, transactions = 3): Promise<LoadResult> {
  const errors: { [message: string]: number } = {};
  const fail = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    errors[message] = (errors[message] ?? 0) + 1;
  };
  const clients = Array.from({ length: sessions },
    () => new Client({ ...clientConfig(target), connectionTimeoutMillis: 30_000, query_timeout: 60_000 }));
  clients.forEach((client) => client.on('error', () => undefined));
  const connected = await Promise.allSettled(clients.map((client) => client.connect()));
  const work = connected.map(async (outcome, index) => {
    const client = clients[index];
    if (outcome.status === 'rejected') {
      fail(outcome.reason);
      await client.end().catch(() => undefined);
      return false;
    }
    try {
      for (let i = 0; i < transactions; i++) {
        await client.query('BEGIN');
        await client.query('SELECT pg_sleep(0.01)');
        await client.query('COMMIT');
      }
      return true;
    } catch (error) {
      fail(error);
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  });
  const succeeded = (await Promise.all(work)).filter(Boolean).length;
  return { sessions, succeeded, failed: sessions - succeeded, errors };
}

/** Polls `query` (one number) every `intervalMs` until stopped; returns the largest value seen. */
export function sampleMax(target: Target, query: string, intervalMs = 25): { stop: () => Promise<number> } {
  const sampler = samplePeaks(target, `SELECT 'max', (${query})`, intervalMs);
  return { stop: async () => (await sampler.stop()).max ?? 0 };
}

/**
 * Polls `query`, rows of (key, number), every `intervalMs` until stopped; returns the largest
 * number seen per key, each key's peak on its own (peaks of different keys may not coincide).
 */
export function samplePeaks(target: Target, query: string, intervalMs = 25): { stop: () => Promise<{ [key: string]: number }> } {
  const client = new Client(clientConfig(target));
  const peaks: { [key: string]: number } = {};
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const result = await client.query({ text: query, rowMode: 'array' });
      for (const [key, value] of result.rows) peaks[key] = Math.max(peaks[key] ?? 0, Number(value));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    await client.end();
  })();
  return { stop: async () => { running = false; await loop; return peaks; } };
}
