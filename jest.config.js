/** Jest in native ESM mode: ts-jest compiles TypeScript, `.js` suffixes map back to sources. */
const project = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^nestjs-session-auth$': '<rootDir>/src/index.ts',
    '^nestjs-session-auth/testing$': '<rootDir>/src/testing/index.ts',
    '^nestjs-session-auth/(passwords|throttle|csrf|messages|views|websockets|ldap|oidc|mailers)$': '<rootDir>/src/entries/$1.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // Mercurius loads @fastify/static, which require()s the ESM-only content-disposition 3; Jest's
    // own require cannot load ESM before Node 24.9, so it gets the CommonJS build of the same API (2.x).
    '^content-disposition$': '<rootDir>/node_modules/content-disposition/dist/index.js',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  setupFiles: ['<rootDir>/test/setup.ts'],
};

/**
 * The suites of the HTTP workflow, run a second time with every test app on Nest's Fastify
 * adapter (`createTestApp` reads the `TEST_PLATFORM` global): login, rotation, logout, the
 * session layer, rules, the built-in views and CSRF, throttling, the stores.
 */
const ON_FASTIFY = [
  'access',
  'attacks',
  'auth-mailer',
  'budgets',
  'config-hardening',
  'custom-user-entity',
  'hosts-and-origins',
  'ldap',
  'login-flow',
  'login-logout',
  'login-throttle',
  'messages',
  'negotiation',
  'oidc',
  'password-change-throttle',
  'password-hasher-busy',
  'password-save',
  'permission-required',
  'postgres',
  'redis',
  'request-user',
  'session-expiry',
  'session-layer',
  'throttle-attacks',
  'user-resolution',
  'user-sessions',
  'view-options',
  'views',
  'websockets',
];

export default {
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    { ...project, displayName: 'express', testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'] },
    {
      ...project,
      displayName: 'fastify',
      testMatch: ON_FASTIFY.map((name) => `<rootDir>/test/${name}?(.e2e).spec.ts`),
      globals: { TEST_PLATFORM: 'fastify' },
    },
  ],
};
