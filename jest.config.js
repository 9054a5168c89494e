/**
 * Unit, snapshot, schema and policy tests run in parallel; test/e2e boots real daemons: Debian
 * 12's on the host, and the core suites once more on Debian 13's newer daemons (PostgreSQL 17)
 * in the root scripts/debian-trixie-root.sh builds (test/e2e/support/daemons.ts).
 */
const common = { preset: 'ts-jest', testEnvironment: 'node', roots: ['<rootDir>/test'] };
// The core suites on the newer daemons; the rest (faults, adversarial, budgets, ...) run on
// Debian 12's only, for CI's time. ha.e2e's pod-loss rounds too: Patroni 4.0.7 loses its leader
// in ha-failover-profiles.e2e and ha-kubernetes.e2e, which run on Debian 13's daemons only.
// `E2E_DAEMONS=trixie npx jest --selectProjects default -- <file>` runs any suite there.
const TRIXIE_SUITES = ['cluster', 'pooler', 'balancer', 'tls', 'ha-rest-api', 'ha-scale', 'ha-settings', 'backup', 'exporter', 'secure-defaults'];

module.exports = {
  testTimeout: 30000,
  // The e2e suites mostly wait on daemons, but not only: with four workers on CI's two cores the
  // plain-failover suite's rebuilt primary missed its 30 s readiness bound in two of four runs, so
  // three, under which every suite's bounds held in every run so far.
  maxWorkers: 3,
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
