/**
 * Browser tests (npm run test:browser): headless Chromium drives the console and GraphiQL against the
 * real service, PostgreSQL and S3. One file at a time: each starts a server and a browser.
 * @type {import('jest').Config}
 */
module.exports = {
  ...require('./jest.config.js'),
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/browser/tsconfig.json' }] },
  testMatch: ['<rootDir>/test/browser/**/*.browser.ts'],
  testTimeout: 180000,
  maxWorkers: 1,
};
