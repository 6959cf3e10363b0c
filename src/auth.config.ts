import type { Type } from '@nestjs/common';
import type { CookieOptions } from 'express-session';
import {
  DEFAULT_LOGIN_URL,
  DEFAULT_PASSWORD_RESET_TIMEOUT,
  DEFAULT_SESSION_AGE_MS,
  DEFAULT_SESSION_COOKIE_NAME,
  REDIRECT_FIELD_NAME,
} from './auth.constants.js';
import type { AuthModuleOptions, SessionOptions } from './auth.options.js';
import type { AuthBackend } from './backends/auth-backend.interface.js';
import { isProduction } from './environment.js';
import { ImproperlyConfigured } from './errors.js';
import type { ThrottleOptions } from './login-throttle.options.js';
import type { PasswordHashAlgorithm, PasswordHasherName } from './passwords/password-hasher.options.js';
import { resolvePasswordValidators, type PasswordValidator } from './passwords/password-validation.js';
import { LOCAL_HOSTS, splitHost } from './request/hosts.js';
import { User } from './storage/user.entity.js';
import type { AuthMailer } from './views/auth-mailer.js';
import type { AuthViewsOptions } from './views/view-options.js';

/** The module's options with every default filled in, checked once at start-up. */
export interface AuthConfig {
  backends: Type<AuthBackend>[];
  loginUrl: string;
  redirectFieldName: string;
  loginRequiredByDefault: boolean;
  /** The session settings, the cookie's with every default filled in (Secure in production). */
  session: (SessionOptions & { name: string; cookie: CookieOptions }) | false;
  /** Keys for session auth hashes and tokens: the current one first, then fallbacks. */
  secrets: string[];
  loginRedirectUrl: string;
  logoutRedirectUrl: string | undefined;
  /** Seconds a password reset token stays valid. */
  passwordResetTimeout: number;
  /** Origin (and optional path) for links in emails, without a trailing slash. */
  siteUrl: string | undefined;
  /** Host patterns whose Host header counts as this site. */
  allowedHosts: string[];
  /** Origins besides the request's own that may send unsafe requests (siteUrl's included). */
  trustedOrigins: string[];
  /** The user entity class (the built-in `User` unless `userEntity` names another). */
  userEntity: Type<any>;
  /** Password hashers, preferred first (instances are made by `PasswordHasher`). */
  passwordHashers: (PasswordHasherName | PasswordHashAlgorithm)[];
  /** The password validators, as instances. */
  passwordValidators: PasswordValidator[];
  /** Login throttle settings; `false` when it is off. */
  throttle: ThrottleOptions | false;
  mailer: Type<AuthMailer> | undefined;
  views: boolean | undefined;
  /** The views' own options when `views` was given as an object. */
  viewOptions: AuthViewsOptions | undefined;
  /** `NODE_ENV=production` when the module started. */
  production: boolean;
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
    // Options written inline in @Module({ imports: [AuthModule.forRoot(...)] }) are read when that
    // file is imported: a variable set later (by a test's beforeAll, by dotenv loaded in main.ts
    // after the import) is not there yet. Say so, since the code looks right.
    const unset = session && session.secret === undefined;
    throw new ImproperlyConfigured(
      'AuthModule needs a session secret: pass session: { secret: process.env.SESSION_SECRET }, ' +
        'or session: false with secret when the app installs express-session itself.' +
        (unset
          ? ' session.secret is undefined here. If it comes from an environment variable, it was read when the ' +
            'module file was imported: set the variable before that import (load .env first), or pass the options ' +
            'through AuthModule.forRootAsync({ useFactory: () => ({ ... }) }), which reads them at start-up.'
          : ''),
    );
  }
  const sessionSecrets = session ? [session.secret].flat() : [];
  const secret = options.secret ?? sessionSecrets[0];
  if (!hasSecret(secret)) {
    throw new ImproperlyConfigured('AuthModule needs a secret: with session: false, pass the secret option.');
  }
  const siteUrl = resolveSiteUrl(options.siteUrl);
  if (isProduction()) {
    refuseWeakSecrets({
      'session.secret': sessionSecrets,
      secret: options.secret === undefined ? [] : [options.secret],
      secretFallbacks: options.secretFallbacks ?? [],
    });
  }
  return {
    backends: options.backends,
    loginUrl: options.loginUrl ?? DEFAULT_LOGIN_URL,
    // `null` or '' asks for no return URL at all (Django's `redirect_field_name=None`).
    redirectFieldName: options.redirectFieldName === undefined ? REDIRECT_FIELD_NAME : (options.redirectFieldName ?? ''),
    loginRequiredByDefault: options.loginRequiredByDefault ?? false,
    session: session ? resolveSession(session) : false,
    // With session.secret: [new, old, …] the older cookie secrets stay valid for hashes too.
    secrets: [secret as string, ...(options.secretFallbacks ?? (options.secret ? [] : sessionSecrets.slice(1)))],
    loginRedirectUrl: options.loginRedirectUrl ?? '/',
    logoutRedirectUrl: options.logoutRedirectUrl || undefined,
    passwordResetTimeout: resolvePasswordResetTimeout(options.passwordResetTimeout),
    siteUrl,
    allowedHosts: resolveAllowedHosts(options.allowedHosts, siteUrl),
    trustedOrigins: resolveTrustedOrigins(options.trustedOrigins, siteUrl),
    userEntity: options.userEntity ?? User,
    passwordHashers: options.passwordHashers ?? ['bcrypt_sha256', 'scrypt'],
    passwordValidators: resolvePasswordValidators(options.passwordValidators),
    throttle: options.throttle === false ? false : options.throttle && options.throttle !== true ? options.throttle : {},
    mailer: options.mailer,
    views: options.views === undefined ? undefined : options.views !== false,
    viewOptions: typeof options.views === 'object' && options.views !== null ? options.views : undefined,
    production: isProduction(),
  };
}

function resolveAllowedHosts(allowedHosts: string[] | undefined, siteUrl: string | undefined): string[] {
  if (allowedHosts !== undefined) {
    if (!Array.isArray(allowedHosts) || !allowedHosts.every((host) => host === '*' || splitHost(host.replace(/^\./, '')))) {
      throw new ImproperlyConfigured(
        `allowedHosts lists host names such as ['example.com', '.example.com', 'localhost:3000']; got ${JSON.stringify(allowedHosts)}.`,
      );
    }
    return allowedHosts.map((host) => host.toLowerCase());
  }
  return [...(siteUrl ? [new URL(siteUrl).host] : []), ...(isProduction() ? [] : LOCAL_HOSTS)];
}

function resolveTrustedOrigins(origins: string[] | undefined, siteUrl: string | undefined): string[] {
  const list = origins ?? [];
  if (!Array.isArray(list) || !list.every((origin) => typeof origin === 'string' && /^https?:\/\/(\*\.)?[^/?#@\s]+$/i.test(origin))) {
    throw new ImproperlyConfigured(
      `trustedOrigins lists origins with their scheme, such as ['https://accounts.example.com', 'https://*.example.com']; got ${JSON.stringify(origins)}.`,
    );
  }
  return [...(siteUrl ? [new URL(siteUrl).origin] : []), ...list.map((origin) => origin.toLowerCase())];
}

function resolvePasswordResetTimeout(seconds: number | undefined): number {
  if (seconds === undefined) return DEFAULT_PASSWORD_RESET_TIMEOUT;
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

/** At least 32 characters: what a 192-bit random key takes in base64. */
const MIN_SECRET_LENGTH = 32;

/** Secrets printed in samples and tutorials: anyone can sign a cookie or a reset token with them. */
const PUBLISHED_SECRETS = new Set([
  // The sample app's fallback when SESSION_SECRET is not set.
  'development-only-secret-do-not-use-in-production',
  'change-me',
  'keyboard cat',
  'secret',
]);

/**
 * Whoever knows a signing secret can forge session cookies and password reset links, so a
 * production start refuses short and published ones. The message names the option, never the value.
 */
function refuseWeakSecrets(secretsByOption: Record<string, string[]>): void {
  for (const [option, secrets] of Object.entries(secretsByOption)) {
    for (const [index, secret] of secrets.entries()) {
      const problem = weakness(secret);
      if (!problem) continue;
      const where = secrets.length > 1 || option === 'secretFallbacks' ? `${option}[${index}]` : option;
      throw new ImproperlyConfigured(
        `AuthModule refuses to start in production (NODE_ENV=production): ${where} ${problem}. ` +
          'Generate a random secret, e.g. ' +
          `node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))", ` +
          'and pass it from the environment.',
      );
    }
  }
}

function weakness(secret: string): string | undefined {
  if (PUBLISHED_SECRETS.has(secret)) {
    return 'is a published example secret: anyone can sign session cookies and password reset links with it';
  }
  if (secret.length < MIN_SECRET_LENGTH) return `is shorter than ${MIN_SECRET_LENGTH} characters, short enough to guess`;
  return undefined;
}

function resolveSession(session: SessionOptions): SessionOptions & { name: string; cookie: CookieOptions } {
  const name = session.name ?? DEFAULT_SESSION_COOKIE_NAME;
  const cookie = { ...SESSION_COOKIE_DEFAULTS, secure: isProduction(), ...resolveSessionCookie(name, session.cookie) };
  return { ...session, name, cookie };
}

/**
 * Browsers keep a `__Secure-` cookie only when it is sent with Secure, and a `__Host-` cookie only
 * with Secure, Path=/ and no Domain (RFC 6265bis, cookie name prefixes, matched case-insensitively).
 * The prefix fills those in; a setting that contradicts it would lose every login, so it stops the start.
 */
function resolveSessionCookie(name: string, cookie: CookieOptions | undefined): CookieOptions | undefined {
  const prefix = /^__host-/i.test(name) ? '__Host-' : /^__secure-/i.test(name) ? '__Secure-' : undefined;
  if (!prefix) return cookie;
  const rule = prefix === '__Host-' ? 'with Secure, Path=/ and no Domain' : 'with Secure';
  const refuse = (setting: string, fix: string) =>
    new ImproperlyConfigured(
      `The session cookie '${name}' has the ${prefix} prefix, which browsers accept only ${rule} (RFC 6265bis), ` +
        `but session.cookie.${setting}. ${fix}`,
    );
  if (cookie?.secure !== undefined && cookie.secure !== true) {
    throw refuse(
      `secure is ${JSON.stringify(cookie.secure)}`,
      'Remove session.cookie.secure (the prefix sets it) and serve the site over HTTPS.',
    );
  }
  if (prefix === '__Secure-') return { ...cookie, secure: true };
  if (cookie?.domain) {
    throw refuse(
      `domain is '${cookie.domain}'`,
      'Remove session.cookie.domain, or use the __Secure- prefix, which allows a domain.',
    );
  }
  if (cookie?.path !== undefined && cookie.path !== '/') {
    throw refuse(`path is '${cookie.path}'`, "Remove session.cookie.path, or set it to '/'.");
  }
  return { ...cookie, secure: true, path: '/' };
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
