/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: '<rootDir>/test/support/node-realm-environment.js',
  transform: {
    // The console's modules and their unit tests compile with the console's options (DOM, JSX).
    '/(console/src|test/console)/.+\\.tsx?$': ['ts-jest', { tsconfig: 'test/console/tsconfig.json' }],
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 120000,
  maxWorkers: 2,
};
