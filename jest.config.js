/** Unit, snapshot, schema and policy tests run in parallel; test/e2e boots real daemons. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testTimeout: 30000,
};
