/**
 * Unit, snapshot, schema and policy tests run in parallel; test/e2e boots real daemons: Debian
 * 12's on the host, and the core suites once more on Debian 13's newer daemons (PostgreSQL 17)
 * in the root scripts/debian-trixie-root.sh builds (test/e2e/support/daemons.ts).
 */
const common = { preset: 'ts-jest', testEnvironment: 'node', roots: ['<rootDir>/test'] };
const TRIXIE_SUITES = ['cluster', 'pooler', 'balancer', 'tls', 'ha', 'backup', 'exporter'];

module.exports = {
  testTimeout: 30000,
  projects: [
    { ...common, displayName: 'default', testMatch: ['**/*.test.ts'] },
    {
      ...common,
      displayName: 'e2e trixie',
      testMatch: TRIXIE_SUITES.map((suite) => `**/test/e2e/${suite}.e2e.test.ts`),
      setupFiles: ['<rootDir>/test/e2e/support/trixie-daemons.ts'],
    },
  ],
};
