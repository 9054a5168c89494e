import { Client } from 'pg';
import { clientConfig, Target } from './load';

/** The largest number of sessions seen at once, per group of roles and per role/application_name. */
export interface ActivityPeaks {
  /** Group name -> its peak: the most sessions of all its roles together in one sample. */
  readonly groups: { [group: string]: number };
  /** `usename/application_name` -> its own peak. */
  readonly sessions: { [session: string]: number };
}

/**
 * Polls pg_stat_activity on one instance (client backends, grouped by usename and
 * application_name) every `intervalMs` until stopped; `groups` names the roles each group counts
 * (a component's logins). The sampler's own session is left out.
 */
export function sampleActivity(target: Target, groups: { [group: string]: string[] }, intervalMs = 20): { stop: () => Promise<ActivityPeaks> } {
  const client = new Client(clientConfig(target));
  const peaks = { groups: {} as { [group: string]: number }, sessions: {} as { [session: string]: number } };
  let running = true;
  const raise = (peaksOf: { [key: string]: number }, key: string, value: number) => { peaksOf[key] = Math.max(peaksOf[key] ?? 0, value); };
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query(`SELECT usename, application_name, count(*)::int AS n FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1, 2`);
      for (const row of rows) raise(peaks.sessions, `${row.usename}/${row.application_name}`, row.n);
      for (const [group, roles] of Object.entries(groups)) {
        raise(peaks.groups, group, rows.filter((row) => roles.includes(row.usename)).reduce((sum, row) => sum + row.n, 0));
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    await client.end();
  })();
  return { stop: async () => { running = false; await loop; return peaks; } };
}
