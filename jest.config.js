/** Jest in native ESM mode: ts-jest compiles TypeScript, `.js` suffixes map back to sources. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^nestjs-session-auth$': '<rootDir>/src/index.ts',
    '^nestjs-session-auth/testing$': '<rootDir>/src/testing/index.ts',
    '^nestjs-session-auth/(passwords|throttle|csrf|messages|views|websockets)$': '<rootDir>/src/entries/$1.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  setupFiles: ['<rootDir>/test/setup.ts'],
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
