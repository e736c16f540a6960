/**
 * Browser tests (npm run test:browser): headless Chromium drives the console and GraphiQL against the
 * real service, PostgreSQL and S3. One file at a time: each starts a server and a browser.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: '<rootDir>/test/support/node-realm-environment.js',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/browser/tsconfig.json' }] },
  testMatch: ['<rootDir>/test/browser/**/*.browser.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 180000,
  maxWorkers: 1,
};
