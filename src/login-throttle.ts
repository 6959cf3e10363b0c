import {
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Request } from 'express';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AUTH_CONFIG, type AuthConfig } from './auth.config.js';
import { BackendRegistry } from './backends/backend.registry.js';
import { ImproperlyConfigured, RetryLater } from './errors.js';
import { runInLane } from './passwords/bcrypt.worker-pool.js';
import { PasswordHasherBusy } from './passwords/password-hasher-busy.js';
import { clientAddress } from './request/client-address.js';
import { TypeOrmLockoutStore, type LockoutState, type LockoutStore } from './storage/lockout.store.js';
import type { ThrottleOptions } from './login-throttle.options.js';
import { TrustedDevices } from './trusted-device.js';

export { TypeOrmLockoutStore, RedisLockoutStore } from './storage/lockout.store.js';
export type { LockoutState, LockoutStore, RedisLikeClient, RedisLikeMulti } from './storage/lockout.store.js';

/**
 * An address that failed too often across accounts, or that has too many attempts running at
 * once: refused before any password is hashed. A 429 with `Retry-After`; it says nothing about
 * any account.
 */
export class TooManyLoginAttempts extends RetryLater {
  constructor(retryAfter: number) {
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        error: 'Too Many Requests',
        message: `Too many failed logins from your network. Please try again in ${describeSeconds(retryAfter)}.`,
      },
      HttpStatus.TOO_MANY_REQUESTS,
      retryAfter,
    );
    this.name = 'TooManyLoginAttempts';
  }
}

/** `attempt()`'s answer when the account is locked for this client: no backend was asked. */
export const LOCKED_OUT = Symbol('nestjs-session-auth:locked-out');

/**
 * What a login attempt brings: `password`, something a person types and an attacker can guess
 * (counted against every ceiling); `callback`, a login vouched for elsewhere (an identity
 * provider's code checked with the login's own state, a trusted proxy's header), which no number
 * of tries guesses.
 */
export type LoginAttemptKind = 'password' | 'callback';

/** The counters one attempt reads and updates (SHA-256 keys: no username or address at rest). */
interface AttemptKeys {
  /** Per account and address: the classic lockout, cleared by a success. */
  pairs: string[];
  /** Per account, from anywhere: the ceiling. */
  accounts: string[];
  /** Per address, across accounts: the spray and flood ceiling. */
  address: string;
  /** The canonical address, which names the attempt's lane in the hasher's pool. */
  lane: string;
}

const DEFAULT_IDENTIFIER_FIELDS = ['username', 'email'];
/**
 * Attempts one address may have running at once in one process; more is a flood, refused before
 * any store read (people behind one address rarely log in at the very same moment).
 */
const MAX_CONCURRENT_PER_ADDRESS = 16;
/** Addresses remembered (refused, or their rate), at most; the least recently seen is forgotten first. */
const MAX_REMEMBERED_ADDRESSES = 10_000;
const MINUTE = 60_000;

/**
 * Counts failed logins and refuses attempts that would make guessing worthwhile, inside
 * `authenticate()` so every login path is covered. Three ceilings, after django-axes and OWASP:
 * - an account from one address (5 in 15 minutes): locked, backends not asked, so the right
 *   password does not help and nothing new is learned; a success clears it;
 * - an account from everywhere (100 an hour): locked as well, except on browsers that logged in
 *   to it before, which keep their own count (device cookies);
 * - an address across accounts (100 in 15 minutes): `429`, before any hash is computed, which
 *   also stops a flood from filling the hasher's queue (the queue gives each address a fair
 *   share besides).
 * Accounts are counted by every identifying field the attempt carries (`username`, `email`,
 * what backends name), so a request cannot choose which counter it hits by adding a decoy.
 */
@Injectable()
export class LoginThrottle implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly enabled: boolean;
  private readonly logger = new Logger('LoginThrottle');
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly accountMaxFailures: number;
  private readonly accountWindowMs: number;
  private readonly addressMaxFailures: number;
  private readonly addressWindowMs: number;
  private readonly addressRate: number;
  private readonly addressBurst: number;
  private readonly callbackRate: number;
  private readonly callbackBurst: number;
  private readonly resetMaxPerEmail: number;
  private readonly resetMaxPerAddress: number;
  private readonly resetWindowMs: number;
  private readonly configuredFields: string[];
  /** Where failure counters live; `undefined` when the throttle is off. */
  readonly store?: LockoutStore;
  private readonly devices?: TrustedDevices;
  private fields?: string[];
  private pruneTimer?: NodeJS.Timeout;
  /** The last queued attempt per account and address, while any is running. */
  private readonly queued = new Map<string, Promise<void>>();
  /** Attempts running or waiting in this process, per address key. */
  private readonly inFlight = new Map<string, number>();
  /** Addresses over their ceiling, until when: refused again without a store read. */
  private readonly refusedUntil = new Map<string, number>();
  /** Attempts each address may still start now (a token bucket), and when that was computed. */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** When a lockout was last logged, by account and address. */
  private readonly lockoutsLogged = new Map<string, number>();

  constructor(
    @Inject(AUTH_CONFIG) config: AuthConfig,
    private readonly backends: BackendRegistry,
    @Optional() dataSource?: DataSource,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    const settings: ThrottleOptions = config.throttle || {};
    this.maxFailures = positive('maxFailures', settings.maxFailures ?? 5);
    this.windowMs = positive('windowMs', settings.windowMs ?? 15 * MINUTE);
    this.accountMaxFailures = positive('accountMaxFailures', settings.accountMaxFailures ?? 100);
    this.accountWindowMs = positive('accountWindowMs', settings.accountWindowMs ?? 60 * MINUTE);
    this.addressMaxFailures = positive('addressMaxFailures', settings.addressMaxFailures ?? 100);
    this.addressWindowMs = positive('addressWindowMs', settings.addressWindowMs ?? 15 * MINUTE);
    this.addressRate = positive('addressRate', settings.addressRate ?? 2, false);
    this.addressBurst = positive('addressBurst', settings.addressBurst ?? 10);
    this.callbackRate = positive('callbackRate', settings.callbackRate ?? 5, false);
    this.callbackBurst = positive('callbackBurst', settings.callbackBurst ?? 50);
    this.resetMaxPerEmail = positive('resetMaxPerEmail', settings.resetMaxPerEmail ?? 3);
    this.resetMaxPerAddress = positive('resetMaxPerAddress', settings.resetMaxPerAddress ?? 20);
    this.resetWindowMs = positive('resetWindowMs', settings.resetWindowMs ?? 60 * MINUTE);
    this.configuredFields = settings.identifierFields ?? DEFAULT_IDENTIFIER_FIELDS;
    if (!Array.isArray(this.configuredFields) || !this.configuredFields.every((field) => typeof field === 'string')) {
      throw new ImproperlyConfigured("throttle.identifierFields must be an array of credential field names, such as ['username', 'email'].");
    }
    this.store = config.throttle === false ? undefined : (settings.store ?? (dataSource ? new TypeOrmLockoutStore(dataSource) : undefined));
    this.enabled = !!this.store;
    if (this.enabled && settings.trustedDevices !== false) {
      const device = typeof settings.trustedDevices === 'object' ? settings.trustedDevices : {};

      this.devices = new TrustedDevices(config.secrets, {
        name: device.cookieName ?? 'auth_device',
        maxAgeMs: device.maxAgeMs ?? 365 * 24 * 60 * MINUTE,
        secure: config.session ? (config.session.cookie.secure ?? config.production) : config.production,
        sameSite: 'lax',
      });
    }
    const interval = settings.pruneInterval ?? 15 * MINUTE;
    if (this.enabled && interval !== false && this.store!.prune) {
      this.pruneTimer = setInterval(() => {
        this.prune().catch((error) => this.logger.warn(`Pruning expired login counters failed: ${error.message}`));
      }, interval);
      this.pruneTimer.unref();
    }
  }

  onApplicationBootstrap(): void {
    const adapter = this.adapterHost?.httpAdapter;
    const instance = adapter?.getInstance?.();
    if (!this.enabled || !instance) return;
    if (adapter!.getType?.() === 'fastify') {
      if (instance.initialConfig?.trustProxy === true) {
        this.logger.warn(
          "Fastify's trustProxy is true: any client can choose the address the login throttle counts by " +
            "sending X-Forwarded-For. Set it to the addresses of the proxies in front of the app (new FastifyAdapter({ trustProxy: '10.0.0.0/8' })), " +
            'or count them with a function ((_address, hop) => hop < 1 for one proxy).',
        );
      }
      return;
    }
    if (typeof instance.get === 'function' && instance.get('trust proxy') === true) {
      this.logger.warn(
        "Express 'trust proxy' is true: any client can choose the address the login throttle counts by " +
          "sending X-Forwarded-For. Set it to the number of proxies in front of the app (e.g. app.set('trust proxy', 1)) " +
          "or to their addresses ('loopback', '10.0.0.0/8').",
      );
    }
  }

  onApplicationShutdown(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }

  /**
   * Run one login attempt under the throttle. `check` asks the backends and resolves the user
   * or `null`; it is not called when the attempt is refused (`LOCKED_OUT`, or
   * `TooManyLoginAttempts` thrown for the address). Attempts for the same account and address
   * run one at a time in this process, so parallel guesses cannot all pass the check before the
   * first failure is counted. A `callback` attempt only spends the address's callback budget.
   */
  async attempt<U>(
    request: Request | undefined,
    credentials: Record<string, unknown>,
    check: () => Promise<U | null>,
    kind: LoginAttemptKind = 'password',
  ): Promise<U | null | typeof LOCKED_OUT> {
    if (!this.enabled) return check();
    const keys = this.keysFor(request, credentials);
    // Credentials that name an account or carry a password are guesses, whoever calls them callbacks.
    if (kind === 'callback' && keys.pairs.length === 0 && !Object.hasOwn(credentials, 'password')) {
      // No counter to read or write and nothing to serialise: only how often this address may
      // have the app redeem a code at a provider.
      this.spendToken(digest('callback-address', keys.lane), this.callbackRate, this.callbackBurst);
      return check();
    }
    // Counted before any await, so a burst from one address is refused without a store read.
    const running = (this.inFlight.get(keys.address) ?? 0) + 1;
    this.inFlight.set(keys.address, running);
    try {
      if (running > Math.min(this.addressMaxFailures, MAX_CONCURRENT_PER_ADDRESS)) throw new TooManyLoginAttempts(1);
      const until = this.refusedUntil.get(keys.address);
      if (until !== undefined) {
        const seconds = Math.ceil((until - Date.now()) / 1000);
        if (seconds > 0) throw new TooManyLoginAttempts(seconds);
        this.refusedUntil.delete(keys.address);
      }
      this.spendToken(keys.address, this.addressRate, this.addressBurst);
      const outcome = await this.exclusive(keys.pairs[0] ?? keys.address, () => this.judgeAndRun(request, keys, check));
      if (outcome === LOCKED_OUT) this.noteLockout(request, credentials, keys);
      return outcome;
    } finally {
      const left = (this.inFlight.get(keys.address) ?? 1) - 1;
      if (left > 0) this.inFlight.set(keys.address, left);
      else this.inFlight.delete(keys.address);
    }
  }

  /**
   * Say in the log that an attempt was refused unchecked (the right password gets 401 while an
   * account is locked, which is otherwise hard to explain): which account, from where, and what
   * to do. Never the password; once per account and address in a window, so guessing cannot
   * flood the log.
   */
  private noteLockout(request: Request | undefined, credentials: Record<string, unknown>, keys: AttemptKeys): void {
    const key = keys.pairs[0] ?? keys.address;
    const now = Date.now();
    const last = this.lockoutsLogged.get(key);
    if (last !== undefined && now - last < this.windowMs) return;
    this.lockoutsLogged.delete(key);
    if (this.lockoutsLogged.size >= MAX_REMEMBERED_ADDRESSES) this.lockoutsLogged.delete(this.lockoutsLogged.keys().next().value!);
    this.lockoutsLogged.set(key, now);
    const names = this.identifierFields()
      .map((field) => credentials[field])
      .filter((value): value is string => typeof value === 'string')
      .map((value) => JSON.stringify(value.slice(0, 64)));
    this.logger.warn(
      `Login refused without asking any backend: ${names.join(' / ') || 'this account'} from ${clientAddress(request)} failed too often ` +
        `(throttle: ${this.maxFailures} failures per account and address in ${describeSeconds(this.windowMs / 1000)}, ` +
        `${this.accountMaxFailures} per account in ${describeSeconds(this.accountWindowMs / 1000)}): even the right password is refused ` +
        'until the window ends (the throttle options set the limits).',
    );
  }

  /** Take one attempt from the address's bucket, or refuse with the seconds until the next one. */
  private spendToken(address: string, rate: number, burst: number): void {
    const now = Date.now();
    const bucket = this.buckets.get(address);
    const tokens = bucket ? Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate) : burst;
    if (tokens < 1) throw new TooManyLoginAttempts(Math.max(1, Math.ceil((1 - tokens) / rate)));
    this.buckets.delete(address);
    if (this.buckets.size >= MAX_REMEMBERED_ADDRESSES) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(address, { tokens: tokens - 1, at: now });
  }

  /**
   * Whether a password reset email may go out to `email` for this client, counting it if so:
   * a mailbox cannot be flooded, nor the mail server used to flood others, from one address.
   */
  async allowResetEmail(request: Request | undefined, email: string): Promise<boolean> {
    if (!this.enabled) return true;
    const now = Date.now();
    const counters: [string, number][] = [
      [digest('reset-email', email.normalize('NFKC').trim().toLowerCase()), this.resetMaxPerEmail],
      [digest('reset-address', clientAddress(request)), this.resetMaxPerAddress],
    ];
    const states = await this.read(counters.map(([key]) => key));
    const current = (key: string) => {
      const state = states.get(key);
      return state && now - state.windowStart < this.resetWindowMs ? state.failures : 0;
    };
    if (counters.some(([key, max]) => current(key) >= max)) return false;
    for (const [key] of counters) await this.store!.recordFailure(key, states.get(key) ?? null, now, this.resetWindowMs);
    return true;
  }

  /** Delete counters whose longest window has passed; resolves how many were deleted. */
  async prune(now = Date.now()): Promise<number> {
    if (!this.store?.prune) return 0;
    return this.store.prune(now - Math.max(this.windowMs, this.accountWindowMs, this.addressWindowMs, this.resetWindowMs));
  }

  private async judgeAndRun<U>(request: Request | undefined, keys: AttemptKeys, check: () => Promise<U | null>): Promise<U | null | typeof LOCKED_OUT> {
    const now = Date.now();
    const device = this.devices?.deviceFor(request, keys.accounts) ?? null;
    const deviceKey = device === null ? null : digest('device', device);
    const states = await this.read([...keys.pairs, ...keys.accounts, keys.address, ...(deviceKey ? [deviceKey] : [])]);
    const failures = (key: string, windowMs: number) => {
      const state = states.get(key);
      return state && now - state.windowStart < windowMs ? state.failures : 0;
    };

    // Always: this account from this address (a trusted browser is no licence to guess).
    if (keys.pairs.some((key) => failures(key, this.windowMs) >= this.maxFailures)) return LOCKED_OUT;
    const counted: [string, number][] = keys.pairs.map((key) => [key, this.windowMs]);
    if (deviceKey) {
      // A browser this account logged in from: past the ceilings, on a count of its own.
      if (failures(deviceKey, this.windowMs) >= this.maxFailures) return LOCKED_OUT;
      counted.push([deviceKey, this.windowMs]);
    } else {
      const addressFailures = failures(keys.address, this.addressWindowMs);
      const others = (this.inFlight.get(keys.address) ?? 1) - 1;
      if (addressFailures + others >= this.addressMaxFailures) {
        if (addressFailures < this.addressMaxFailures) throw new TooManyLoginAttempts(1);
        // Over the ceiling until its window ends: remember it, so a flood costs no store reads.
        const until = states.get(keys.address)!.windowStart + this.addressWindowMs;
        if (this.refusedUntil.size >= MAX_REMEMBERED_ADDRESSES) this.refusedUntil.delete(this.refusedUntil.keys().next().value!);
        this.refusedUntil.set(keys.address, until);
        throw new TooManyLoginAttempts(Math.max(1, Math.ceil((until - now) / 1000)));
      }
      if (keys.accounts.some((key) => failures(key, this.accountWindowMs) >= this.accountMaxFailures)) return LOCKED_OUT;
      counted.push(...keys.accounts.map((key): [string, number] => [key, this.accountWindowMs]), [keys.address, this.addressWindowMs]);
    }

    let user: U | null;
    try {
      user = await runInLane(keys.lane, check);
    } catch (error) {
      // The hasher refused: this address already has its share of the hasher's line. That counts
      // towards the address ceiling, so a flood reaches it at once instead of holding a thread.
      if (error instanceof PasswordHasherBusy && !deviceKey) {
        await this.store!.recordFailure(keys.address, states.get(keys.address) ?? null, now, this.addressWindowMs);
      }
      throw error;
    }
    if (user) {
      // A success clears what this client got wrong; the account and address ceilings run out
      // with their windows (a correct password must not buy an attacker another round).
      for (const key of [...keys.pairs, ...(deviceKey ? [deviceKey] : [])]) if (states.has(key)) await this.store!.reset(key);
      if (keys.accounts.length > 0) this.devices?.remember(request, keys.accounts[0]);
    } else {
      for (const [key, windowMs] of counted) await this.store!.recordFailure(key, states.get(key) ?? null, now, windowMs);
    }
    return user;
  }

  private async read(keys: string[]): Promise<Map<string, LockoutState>> {
    if (this.store!.getMany) return this.store!.getMany(keys);
    const states = new Map<string, LockoutState>();
    for (const key of keys) {
      const state = await this.store!.get(key);
      if (state) states.set(key, state);
    }
    return states;
  }

  private keysFor(request: Request | undefined, credentials: Record<string, unknown>): AttemptKeys {
    const address = clientAddress(request);
    const accounts: string[] = [];
    const pairs: string[] = [];
    for (const field of this.identifierFields()) {
      const value = Object.hasOwn(credentials, field) ? credentials[field] : undefined;
      if (typeof value !== 'string') continue;
      const account = `${field}\n${value.normalize('NFKC').trim().toLowerCase()}`;
      accounts.push(digest('account', account));
      pairs.push(digest('pair', `${account}\n${address}`));
    }
    return { pairs, accounts, address: digest('address', address), lane: address };
  }

  /** The configured fields and every backend's own, read once the backends exist. */
  private identifierFields(): string[] {
    if (!this.fields) {
      const declared = this.backends.all.flatMap(({ backend }) => {
        const own: unknown = backend.identifierFields;
        return Array.isArray(own) ? own.filter((field): field is string => typeof field === 'string') : [];
      });
      this.fields = [...new Set([...this.configuredFields, ...declared])];
    }
    return this.fields;
  }

  private async exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.queued.get(key) ?? Promise.resolve();
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => (finish = resolve));
    const queue = before.then(() => mine);
    this.queued.set(key, queue);
    await before;
    try {
      return await work();
    } finally {
      finish();
      if (this.queued.get(key) === queue) this.queued.delete(key);
    }
  }
}

function digest(kind: string, text: string): string {
  return createHash('sha256').update(`${kind}\n${text}`).digest('hex');
}

function positive(name: string, value: unknown, integer = true): number {
  if (typeof value !== 'number' || !(integer ? Number.isSafeInteger(value) : Number.isFinite(value)) || value <= 0 || (integer && value < 1)) {
    throw new ImproperlyConfigured(`throttle.${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}.`);
  }
  return value;
}

function describeSeconds(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}
