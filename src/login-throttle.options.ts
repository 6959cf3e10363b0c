import type { LockoutStore } from './storage/lockout.store.js';

/** `AuthModule.forRoot({ throttle })`: the login throttle's limits and where its counters live. */
export interface ThrottleOptions {
  /** Failures allowed per account and address within `windowMs` (default 5). */
  maxFailures?: number;
  /** Length of that window in milliseconds (default 15 minutes). */
  windowMs?: number;
  /**
   * Failures allowed per account from all addresses together within `accountWindowMs` (default
   * 100 an hour, OWASP ASVS 2.2.1). Past it the account is refused to every browser except
   * those it logged in from before (trusted devices), so an attacker cannot lock its owner out.
   */
  accountMaxFailures?: number;
  accountWindowMs?: number;
  /**
   * Failures allowed per address across all accounts within `addressWindowMs` (default 100 in
   * 15 minutes). Past it the address gets `429 Too Many Requests` before any password is hashed.
   */
  addressMaxFailures?: number;
  addressWindowMs?: number;
  /**
   * Login attempts one address may start per second, with bursts up to `addressBurst` (defaults
   * 2 and 10), per process. Beyond that: `429`. Keeps a flood from taking a hashing thread for
   * as long as its failures last.
   */
  addressRate?: number;
  addressBurst?: number;
  /**
   * Logins that bring a proof from elsewhere (an identity provider's callback:
   * `authenticate(request, credentials, { kind: 'callback' })`) one address may start per second,
   * with bursts up to `callbackBurst` (defaults 5 and 50), per process. Nobody can guess such a
   * proof, so these logins neither count as failures nor spend the password budgets above: an
   * office behind one address can sign in at 9 am, while a flood of forged callbacks is still
   * refused with `429`.
   */
  callbackRate?: number;
  callbackBurst?: number;
  /**
   * Credential fields that name an account (default `username` and `email`). Each one present
   * in an attempt is counted; a backend adds its own with a `readonly identifierFields` array.
   */
  identifierFields?: string[];
  /**
   * Remember browsers that logged in (a signed cookie, `auth_device` by default, one year), so
   * the account ceiling never locks out its owner on them. `false` turns it off.
   */
  trustedDevices?: boolean | { cookieName?: string; maxAgeMs?: number };
  /**
   * Password reset emails sent per address asked for (default 3) and per client address
   * (default 20) within `resetWindowMs` (default an hour). Past them no email goes out; the
   * visitor's answer stays the same.
   */
  resetMaxPerEmail?: number;
  resetMaxPerAddress?: number;
  resetWindowMs?: number;
  /** Where counters live; default the `auth_login_lockout` table of the app's DataSource. */
  store?: LockoutStore;
  /** How often expired counters are deleted, in milliseconds (default 15 minutes); `false` never. */
  pruneInterval?: number | false;
}
