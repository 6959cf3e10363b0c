import type { Type } from '@nestjs/common';
import {
  DEFAULT_LOGIN_URL,
  DEFAULT_SESSION_AGE_MS,
  DEFAULT_SESSION_COOKIE_NAME,
  REDIRECT_FIELD_NAME,
} from './auth.constants.js';
import type { AuthModuleOptions, SessionOptions } from './auth.options.js';
import type { AuthBackend } from './backends/auth-backend.interface.js';
import { ImproperlyConfigured } from './errors.js';

/** The module's options with every default filled in, checked once at start-up. */
export interface AuthConfig {
  backends: Type<AuthBackend>[];
  loginUrl: string;
  redirectFieldName: string;
  loginRequiredByDefault: boolean;
  session: (SessionOptions & { name: string }) | false;
  /** Keys for session auth hashes and tokens: the current one first, then fallbacks. */
  secrets: string[];
  loginRedirectUrl: string;
  /** Seconds a password reset token stays valid. */
  passwordResetTimeout: number;
  /** Origin (and optional path) for links in emails, without a trailing slash. */
  siteUrl: string | undefined;
  options: AuthModuleOptions;
}

export const AUTH_CONFIG = Symbol('AUTH_CONFIG');

export function resolveAuthConfig(options: AuthModuleOptions): AuthConfig {
  if (!options || !Array.isArray(options.backends) || options.backends.length === 0) {
    throw new ImproperlyConfigured(
      'No authentication backends have been defined. Pass AuthModule.forRoot({ backends: [ModelBackend] }).',
    );
  }
  for (const backend of options.backends) {
    if (typeof backend !== 'function') {
      throw new ImproperlyConfigured(
        `AuthModule backends must be classes; got ${String(backend)}. List the class, not an instance.`,
      );
    }
  }
  const session = options.session === false ? false : options.session;
  if (session !== false && (!session || !hasSecret(session.secret))) {
    throw new ImproperlyConfigured(
      'AuthModule needs a session secret: pass session: { secret: process.env.SESSION_SECRET }, ' +
        'or session: false with secret when the app installs express-session itself.',
    );
  }
  const sessionSecrets = session ? [session.secret].flat() : [];
  const secret = options.secret ?? sessionSecrets[0];
  if (!hasSecret(secret)) {
    throw new ImproperlyConfigured('AuthModule needs a secret: with session: false, pass the secret option.');
  }
  return {
    backends: options.backends,
    loginUrl: options.loginUrl ?? DEFAULT_LOGIN_URL,
    redirectFieldName: options.redirectFieldName ?? REDIRECT_FIELD_NAME,
    loginRequiredByDefault: options.loginRequiredByDefault ?? false,
    session: session ? { ...session, name: session.name ?? DEFAULT_SESSION_COOKIE_NAME } : false,
    // With session.secret: [new, old, …] the older cookie secrets stay valid for hashes too.
    secrets: [secret as string, ...(options.secretFallbacks ?? (options.secret ? [] : sessionSecrets.slice(1)))],
    loginRedirectUrl: options.loginRedirectUrl ?? '/',
    passwordResetTimeout: resolvePasswordResetTimeout(options.passwordResetTimeout),
    siteUrl: resolveSiteUrl(options.siteUrl),
    options,
  };
}

function resolvePasswordResetTimeout(seconds: number | undefined): number {
  if (seconds === undefined) return 3 * 24 * 60 * 60;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new ImproperlyConfigured(`passwordResetTimeout is in seconds and must be a positive integer; got ${String(seconds)}.`);
  }
  return seconds;
}

function resolveSiteUrl(siteUrl: string | undefined): string | undefined {
  if (siteUrl === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(siteUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash || url.username) {
    throw new ImproperlyConfigured(`siteUrl must be the site's public address such as https://example.com; got '${siteUrl}'.`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

function hasSecret(secret: unknown): boolean {
  if (Array.isArray(secret)) return secret.length > 0 && secret.every(hasSecret);
  return typeof secret === 'string' && secret.length > 0;
}

export const SESSION_COOKIE_DEFAULTS = {
  path: '/',
  httpOnly: true,
  sameSite: 'lax' as const,
  maxAge: DEFAULT_SESSION_AGE_MS,
};
