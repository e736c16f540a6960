// Two projects: the service's tests (real PostgreSQL and S3 from the global setup) and the
// console's unit tests, compiled with the console's options (DOM, JSX, no decorators). Separate
// projects, because one ts-jest worker must not compile both kinds of files.
/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 120000,
  maxWorkers: 2,
  projects: [
    {
      displayName: 'service',
      testEnvironment: '<rootDir>/test/support/node-realm-environment.js',
      transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/console/'],
      globalSetup: '<rootDir>/test/support/global-setup.mjs',
      globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
    },
    {
      displayName: 'console',
      testEnvironment: 'node',
      transform: { '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'test/console/tsconfig.json' }] },
      testMatch: ['<rootDir>/test/console/**/*.test.ts'],
    },
  ],
};
