import { Inject, Injectable } from '@nestjs/common';
import { constantTimeEquals, saltedHmac } from './signing.js';
import { AUTH_CONFIG, type AuthConfig } from './auth.config.js';
import { DEFAULT_PASSWORD_RESET_TIMEOUT } from './auth.constants.js';
import { ImproperlyConfigured } from './errors.js';

const KEY_SALT = 'nestjs-session-auth.password-reset-token';
/** Django counts token time from 2001-01-01, which keeps the base-36 timestamp short. */
const EPOCH_MS = Date.UTC(2001, 0, 1);
export { DEFAULT_PASSWORD_RESET_TIMEOUT };

/** What a token is bound to; the built-in `User` has all of it. */
export interface ResetTokenUser {
  id?: unknown;
  pk?: unknown;
  password?: unknown;
  lastLogin?: Date | string | null;
  email?: unknown;
  isActive?: unknown;
}

export type PasswordResetTokenSettings = Pick<AuthConfig, 'secrets'> & { passwordResetTimeout?: number };

/**
 * One-time links for "forgot my password" (Django's `PasswordResetTokenGenerator`).
 * A token is `<base-36 seconds>-<32 hex>`; the HMAC covers the user's id, password hash, last
 * login and email, so it dies as soon as the password is reset (one use), the user logs in, or
 * the email changes; no token is stored anywhere. Tokens older than the timeout are refused.
 */
@Injectable()
export class PasswordResetTokens {
  /** The key tokens are made with. */
  secret: string;
  /** Older keys whose tokens are still accepted while a key is rotated. */
  secretFallbacks: string[];
  /** Seconds a token stays valid; a token exactly this old still is. */
  timeout: number;

  constructor(@Inject(AUTH_CONFIG) settings: PasswordResetTokenSettings) {
    [this.secret, ...this.secretFallbacks] = settings.secrets;
    this.timeout = settings.passwordResetTimeout ?? DEFAULT_PASSWORD_RESET_TIMEOUT;
  }

  make(user: ResetTokenUser): string {
    return this.makeWithTimestamp(user, this.secondsNow(), this.currentSecret());
  }

  /** True when `token` was made for this user, in this state, with a known key, is fresh, and the user is active. */
  check(user: ResetTokenUser | null | undefined, token: unknown): boolean {
    if (!user || typeof token !== 'string' || token === '') return false;
    // A deactivated account's links die with it, even those sent before.
    if (user.isActive === false) return false;
    const parts = token.split('-');
    if (parts.length !== 2 || !/^[0-9a-z]{1,13}$/.test(parts[0])) return false;
    const timestamp = parseInt(parts[0], 36);
    if (!Number.isSafeInteger(timestamp)) return false;
    const secrets = [this.currentSecret(), ...this.secretFallbacks];
    if (!secrets.some((secret) => constantTimeEquals(this.makeWithTimestamp(user, timestamp, secret), token))) {
      return false;
    }
    return this.secondsNow() - timestamp <= this.timeout;
  }

  /** The clock; a subclass can replace it (tests do). */
  protected now(): Date {
    return new Date();
  }

  private secondsNow(): number {
    return Math.floor((this.now().getTime() - EPOCH_MS) / 1000);
  }

  private currentSecret(): string {
    if (typeof this.secret !== 'string' || this.secret === '') {
      throw new ImproperlyConfigured('PasswordResetTokens needs a non-empty secret: set AuthModule secret or session.secret.');
    }
    return this.secret;
  }

  private makeWithTimestamp(user: ResetTokenUser, timestamp: number, secret: string): string {
    const digest = saltedHmac(KEY_SALT, secret, hashValue(user, timestamp)).toString('hex');
    // Every other hex character: 32 characters keep the link short.
    let short = '';
    for (let i = 0; i < digest.length; i += 2) short += digest[i];
    return `${timestamp.toString(36)}-${short}`;
  }
}

/**
 * What the token is bound to. The last login loses its milliseconds because databases
 * keep different precisions; it is written in UTC so the server's time zone does not matter.
 */
function hashValue(user: ResetTokenUser, timestamp: number): string {
  const pk = user.id ?? user.pk;
  return `${String(pk)}${String(user.password ?? '')}${loginTimestamp(user.lastLogin)}${timestamp}${String(user.email ?? '')}`;
}

function loginTimestamp(lastLogin: ResetTokenUser['lastLogin']): string {
  if (lastLogin === null || lastLogin === undefined) return '';
  const date = lastLogin instanceof Date ? lastLogin : new Date(lastLogin);
  if (Number.isNaN(date.getTime())) return String(lastLogin);
  return date.toISOString().slice(0, 19).replace('T', ' ');
}
