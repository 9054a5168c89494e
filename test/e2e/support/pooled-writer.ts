import { Client } from 'pg';
import { clientConfig, Target } from './load';

/** An error the writer saw: when, and the message with its SQLSTATE when the server sent one. */
export interface WriteError {
  readonly at: number;
  readonly message: string;
}

/** What a writer saw around an event at `from`, up to `to`. */
export interface OutageFigures {
  /** The longest time without an acknowledged write, from the last one before `from` to `to`, in ms. */
  readonly longestGapMs: number;
  /** Error message -> how many times it was seen. */
  readonly errors: { [message: string]: number };
}

/**
 * An application's single persistent session through a pooler: one-row INSERTs, each its own
 * transaction, one after the other. A failed INSERT is counted as an error; after an error that
 * breaks the session (the connection ends, or `timeoutMs` pass without an answer) it reconnects, as a
 * driver's pool would; the next attempt is 100 ms after an error. Only an INSERT whose CommandComplete arrived is acknowledged.
 */
export class PooledWriter {
  /** Acknowledged id -> Date.now() when the acknowledgement arrived. */
  public readonly acknowledged = new Map<number, number>();
  /** Acknowledged id -> the port of the server that committed it (`inet_server_port()`), to tell members apart behind a forwarder. */
  public readonly servedBy = new Map<number, number>();
  public readonly errors: WriteError[] = [];
  public sent = 0;
  private running = false;
  private loop?: Promise<void>;

  constructor(private readonly target: Target, private readonly table: string, private readonly timeoutMs = 5000) {}

  public start(): void {
    this.running = true;
    this.loop = this.run();
  }

  public async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** The figures for an event at `from`, over acknowledgements and errors up to `to`. */
  public figures(from: number, to: number): OutageFigures {
    const acks = [...this.acknowledged.values()].sort((a, b) => a - b);
    const before = acks.filter((at) => at <= from).pop() ?? from;
    // `to` ends the window: a writer that has not written again since is still without writes.
    const within = [before, ...acks.filter((at) => at > from && at <= to), to];
    const longestGapMs = Math.max(0, ...within.slice(1).map((at, i) => at - within[i]));
    const errors: { [message: string]: number } = {};
    for (const error of this.errors.filter((e) => e.at > from && e.at <= to)) errors[error.message] = (errors[error.message] ?? 0) + 1;
    return { longestGapMs, errors };
  }

  private async run(): Promise<void> {
    let session: { client: Client; broken: boolean } | undefined;
    while (this.running) {
      try {
        session ??= await this.connect();
        const id = ++this.sent;
        const { rows } = await session.client.query(`INSERT INTO ${this.table} (id) VALUES (${id}) RETURNING inet_server_port() AS port`);
        this.acknowledged.set(id, Date.now());
        this.servedBy.set(id, rows[0].port);
      } catch (error) {
        const { message, code } = error as { message: string; code?: string };
        this.errors.push({ at: Date.now(), message: code ? `${code} ${message}` : message });
        // The connection's end or error event may follow the failed query's rejection.
        await new Promise((resolve) => setTimeout(resolve, 100));
        if (!session || session.broken || /timeout/i.test(message)) {
          await end(session?.client);
          session = undefined;
        }
      }
    }
    await end(session?.client);
  }

  private async connect(): Promise<{ client: Client; broken: boolean }> {
    const client = new Client({ ...clientConfig(this.target), connectionTimeoutMillis: this.timeoutMs, query_timeout: this.timeoutMs });
    const session = { client, broken: false };
    client.on('error', () => (session.broken = true));
    client.on('end', () => (session.broken = true));
    try {
      await client.connect();
    } catch (error) {
      await end(client);
      throw error;
    }
    return session;
  }
}

/** Ends a session without waiting more than a second for a server that does not answer. */
async function end(client: Client | undefined): Promise<void> {
  if (!client) return;
  await Promise.race([client.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000))]);
}
