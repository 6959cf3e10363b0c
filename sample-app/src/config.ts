import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppOptions, DatabaseOptions } from './app.options.js';

export const DEVELOPMENT_SECRET = 'development-only-secret-do-not-use-in-production';

/** `sample-app/data/db.sqlite`, wherever the app is started from. */
const SQLITE_FILE = fileURLToPath(new URL('../data/db.sqlite', import.meta.url));

export interface Config extends AppOptions {
  port: number;
}

/** Settings from the environment: PORT, SESSION_SECRET, DATABASE_URL, LDAP_URL, IDP_URL (+ IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_LABEL), NODE_ENV. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env, warn = console.warn): Config {
  return {
    port: Number(env.PORT ?? 3000),
    sessionSecret: sessionSecret(env, warn),
    database: databaseFromEnv(env),
    // The demo accounts' passwords are published in this repository: never in production.
    demo: env.NODE_ENV !== 'production',
    // dana and erin from this OpenLDAP server (`npm run ldap` prints it), else from memory.
    ldapUrl: env.LDAP_URL || undefined,
    // Another OpenID Connect provider than the demo one `npm start` runs.
    identityProvider: env.IDP_URL
      ? {
          issuer: env.IDP_URL,
          clientId: required(env, 'IDP_CLIENT_ID'),
          clientSecret: required(env, 'IDP_CLIENT_SECRET'),
          label: env.IDP_LABEL || new URL(env.IDP_URL).host,
        }
      : undefined,
  };
}

/** PostgreSQL when DATABASE_URL is set, else `sample-app/data/db.sqlite` (created on first start). */
export function databaseFromEnv(env: NodeJS.ProcessEnv = process.env): DatabaseOptions {
  return env.DATABASE_URL ? { type: 'postgres', url: env.DATABASE_URL } : { type: 'better-sqlite3', database: sqliteFile() };
}

function sessionSecret(env: NodeJS.ProcessEnv, warn: (message: string) => void): string {
  const secret = env.SESSION_SECRET || DEVELOPMENT_SECRET;
  if (secret !== DEVELOPMENT_SECRET) return secret;
  if (env.NODE_ENV === 'production') {
    throw new Error('SESSION_SECRET must be set to a secret of your own when NODE_ENV=production.');
  }
  warn(
    [
      '',
      '!!! SESSION_SECRET is not set: using a development secret known to everybody. !!!',
      '!!! Anyone can forge sessions. Set SESSION_SECRET before exposing this app.   !!!',
      '',
    ].join('\n'),
  );
  return secret;
}

function sqliteFile(): string {
  mkdirSync(dirname(SQLITE_FILE), { recursive: true });
  return SQLITE_FILE;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} must be set with IDP_URL (the client registered at that provider).`);
  return value;
}
