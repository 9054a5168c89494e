/**
 * Unit, snapshot, schema and policy tests run in parallel; test/e2e boots real daemons: Debian
 * 12's on the host, and the core suites once more on Debian 13's newer daemons (PostgreSQL 17)
 * in the root scripts/debian-trixie-root.sh builds (test/e2e/support/daemons.ts).
 */
const common = { preset: 'ts-jest', testEnvironment: 'node', roots: ['<rootDir>/test'] };
// What fits CI's budget on 2 cores: about 3.5 minutes more (measured 4.6 minutes with exporter on a
// loaded machine). HA (3 minutes), exporter and secure-defaults pass on the newer daemons too:
// `E2E_DAEMONS=trixie npx jest --selectProjects default -- <file>` runs any e2e suite there. In CI,
// Patroni 4 runs in ha-kubernetes and the HA major upgrade, postgres_exporter 0.17 in exporter-versions.
const TRIXIE_SUITES = ['cluster', 'pooler', 'balancer', 'tls', 'backup'];

module.exports = {
  testTimeout: 30000,
  // The e2e suites mostly wait on daemons: three workers on CI's two cores keep the run under its
  // budget (measured: 763 s for every suite of both projects), and their bounds hold under that load.
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
