import type { Type } from '@nestjs/common';
import type { CookieOptions, Store } from 'express-session';
import type { AuthBackend } from './backends/auth-backend.interface.js';
import type { ThrottleOptions } from './login-throttle.options.js';
import type { TypeOrmSessionStoreOptions } from './storage/typeorm-session.store.js';
import type { PasswordHashAlgorithm, PasswordHasherName } from './passwords/password-hasher.options.js';
import type { PasswordValidator, PasswordValidatorName } from './passwords/password-validation.js';
import type { AuthMailer } from './views/auth-mailer.js';
import type { AuthViewsOptions } from './views/view-options.js';

export interface SessionOptions {
  /** Signs the session cookie; also the default key for session auth hashes. */
  secret: string | string[];
  /** Any express-session store; default: `TypeOrmSessionStore` over the app's DataSource. */
  store?: Store;
  /** Settings of the default `TypeOrmSessionStore` (touch threshold, pruning). */
  storeOptions?: TypeOrmSessionStoreOptions;
  /**
   * Cookie name, Django's `sessionid` by default. A `__Host-` name makes the cookie Secure with
   * Path=/ and no Domain, a `__Secure-` name makes it Secure (RFC 6265bis cookie prefixes).
   */
  name?: string;
  /** Cookie attributes; defaults: HttpOnly, SameSite=Lax, Secure in production, two weeks. */
  cookie?: CookieOptions;
  /** Re-send the cookie on every response so its expiry slides (express-session's `rolling`). */
  rolling?: boolean;
  /**
   * Session cookies end when the browser closes (Django's `SESSION_EXPIRE_AT_BROWSER_CLOSE`);
   * the store still keeps a session no longer than `cookie.maxAge`. `session.setExpiry()`
   * overrides it per session.
   */
  expireAtBrowserClose?: boolean;
  /** Trust `X-Forwarded-Proto` from a proxy when deciding whether a request is secure. */
  proxy?: boolean;
}

export interface AuthModuleOptions {
  /** Ordered backend classes; the first that returns a user wins. */
  backends: Type<AuthBackend>[];
  /** Where anonymous browsers are sent by `@LoginRequired()`. */
  loginUrl?: string;
  /** Query parameter carrying the return URL; `''` or `null`: none (the bare login URL). */
  redirectFieldName?: string | null;
  /** Every route needs login unless marked `@LoginNotRequired()`. */
  loginRequiredByDefault?: boolean;
  /** The module installs express-session unless this is `false` (the app installs it itself). */
  session?: SessionOptions | false;
  /** Key for session auth hashes; defaults to the session secret. Required with `session: false`. */
  secret?: string;
  /** Older secrets still accepted, so a key can be rotated without logging everybody out. */
  secretFallbacks?: string[];
  /** Entity class of the user model; default the built-in `User`. */
  userEntity?: Type<any>;
  /** Password hashers, preferred first. */
  passwordHashers?: (PasswordHasherName | PasswordHashAlgorithm)[];
  /** Password validators run by `UserManager.validatePassword`, the views and the CLI; default Django's four, `[]` turns them off. */
  passwordValidators?: (PasswordValidatorName | PasswordValidator)[];
  /** Lock a username out from one address after repeated failures; `false` turns it off. */
  throttle?: ThrottleOptions | boolean;
  /** Where the built-in login view goes without a safe `next`. */
  loginRedirectUrl?: string;
  /**
   * Where the built-in logout view goes without a safe `next` (Django's `LOGOUT_REDIRECT_URL`);
   * by default it shows its "logged out" page.
   */
  logoutRedirectUrl?: string;
  /** Seconds a password reset link stays valid (Django's PASSWORD_RESET_TIMEOUT); default three days. */
  passwordResetTimeout?: number;
  /**
   * Mount the built-in login, logout, password change and password reset views: `true`, or their
   * options (`AuthViewsOptions`: next pages, templates, the reset email...). With `forRootAsync`,
   * pass it next to `useFactory` (routes are fixed when the module is defined).
   */
  views?: boolean | AuthViewsOptions;
  /**
   * Public address of the site (`https://example.com`). Links in emails are built from it; it is
   * required in production when the built-in views are mounted.
   */
  siteUrl?: string;
  /**
   * Hosts this site answers to (Django's `ALLOWED_HOSTS`): `example.com`, `.example.com` (and
   * subdomains), `example.com:8443` (that port only), `*`. Only such a Host header counts as
   * this site: for a `next` URL naming it, and for reset links when `siteUrl` is not set.
   * Default: the host of `siteUrl`, plus localhost and the loopback addresses outside production.
   */
  allowedHosts?: string[];
  /**
   * Other origins whose pages may post to the login and other forms (Django's
   * `CSRF_TRUSTED_ORIGINS`): `https://accounts.example.com`, or `https://*.example.com`.
   * The request's own origin and `siteUrl` are always trusted.
   */
  trustedOrigins?: string[];
  /** Sends the password reset emails; default: written to the log (development only). */
  mailer?: Type<AuthMailer>;
}
