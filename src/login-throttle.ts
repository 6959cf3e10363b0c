import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Request } from 'express';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AUTH_CONFIG, type AuthConfig } from './auth.config.js';
import { LoginLockout } from './storage/login-lockout.entity.js';
import { escapedTablePath, placeholder, upsertDialect, type UpsertDialect } from './storage/sql-dialect.js';

/** Failures counted so far for one key, within the current window. */
export interface LockoutState {
  failures: number;
  windowStart: number;
}

/**
 * Where failure counters live. They must be shared by every instance of the app, or an attacker
 * gets `maxFailures` tries per instance: the default keeps them in the app's database.
 */
export interface LockoutStore {
  get(key: string): Promise<LockoutState | null>;
  /** Count one failure; `previous` is what `get` returned for this attempt. */
  recordFailure(key: string, previous: LockoutState | null, now: number, windowMs: number): Promise<void>;
  reset(key: string): Promise<void>;
}

export interface ThrottleOptions {
  /** Failures allowed per username and address within the window (default 5). */
  maxFailures?: number;
  /** Length of the window in milliseconds (default 15 minutes). */
  windowMs?: number;
  /** Where counters live; default the `auth_login_lockout` table of the app's DataSource. */
  store?: LockoutStore;
}

/** Counters in the `auth_login_lockout` table. */
export class TypeOrmLockoutStore implements LockoutStore {
  constructor(private readonly dataSource: DataSource) {}

  private get repository() {
    return this.dataSource.getRepository(LoginLockout);
  }

  async get(key: string): Promise<LockoutState | null> {
    return this.repository.findOne({ select: { failures: true, windowStart: true }, where: { key } });
  }

  async recordFailure(key: string, previous: LockoutState | null, now: number, windowMs: number): Promise<void> {
    const dialect = upsertDialect(this.dataSource);
    if (dialect) {
      await this.incrementAtomically(key, now, now - windowMs, dialect);
      return;
    }
    if (previous && now - previous.windowStart < windowMs) {
      await this.repository.increment({ key }, 'failures', 1);
      return;
    }
    await this.dataSource
      .createQueryBuilder()
      .insert()
      .into(LoginLockout)
      .values({ key, failures: 1, windowStart: now })
      .orUpdate(['failures', 'window_start'], ['key'])
      .execute();
  }

  /**
   * One statement that counts a failure whatever other instances do at the same moment: a new
   * row, one more in the current window, or a restart at 1 once the window has passed.
   */
  private async incrementAtomically(key: string, now: number, windowOpenedAfter: number, dialect: UpsertDialect): Promise<void> {
    const metadata = this.repository.metadata;
    const q = (property: string) => this.dataSource.driver.escape(metadata.findColumnWithPropertyName(property)!.databaseName);
    const [keyColumn, failures, windowStart] = ['key', 'failures', 'windowStart'].map(q);
    const table = escapedTablePath(this.dataSource, metadata.tablePath);
    const stale = `current.${windowStart} <= ${placeholder(dialect, 3)}`;
    const staleAgain = `current.${windowStart} <= ${placeholder(dialect, dialect === 'postgres' ? 3 : 4)}`;
    await this.dataSource.query(
      `INSERT INTO ${table} AS current (${keyColumn}, ${failures}, ${windowStart}) ` +
        `VALUES (${placeholder(dialect, 1)}, 1, ${placeholder(dialect, 2)}) ` +
        `ON CONFLICT (${keyColumn}) DO UPDATE SET ` +
        `${failures} = CASE WHEN ${stale} THEN 1 ELSE current.${failures} + 1 END, ` +
        `${windowStart} = CASE WHEN ${staleAgain} THEN EXCLUDED.${windowStart} ELSE current.${windowStart} END`,
      dialect === 'postgres' ? [key, now, windowOpenedAfter] : [key, now, windowOpenedAfter, windowOpenedAfter],
    );
  }

  async reset(key: string): Promise<void> {
    await this.repository.delete({ key });
  }
}

/** The few commands of a Redis client this store needs (node-redis v4+ names). */
export interface RedisLikeClient {
  hGetAll(key: string): Promise<Record<string, string>>;
  multi(): { hIncrBy(key: string, field: string, by: number): any; hSetNX(key: string, field: string, value: string): any; pExpire(key: string, ms: number, mode?: 'NX'): any; exec(): Promise<unknown> };
  del(key: string): Promise<unknown>;
}

/** Counters in Redis, for apps whose instances share Redis but not a database. */
export class RedisLockoutStore implements LockoutStore {
  constructor(
    private readonly client: RedisLikeClient,
    private readonly prefix = 'auth:lockout:',
  ) {}

  async get(key: string): Promise<LockoutState | null> {
    const hash = await this.client.hGetAll(this.prefix + key);
    if (!hash || hash.failures === undefined) return null;
    return { failures: Number(hash.failures), windowStart: Number(hash.windowStart) };
  }

  async recordFailure(key: string, _previous: LockoutState | null, now: number, windowMs: number): Promise<void> {
    // The key expires with its window, so a new window starts from zero by itself.
    await this.client
      .multi()
      .hIncrBy(this.prefix + key, 'failures', 1)
      .hSetNX(this.prefix + key, 'windowStart', String(now))
      .pExpire(this.prefix + key, windowMs, 'NX')
      .exec();
  }

  async reset(key: string): Promise<void> {
    await this.client.del(this.prefix + key);
  }
}

/** What one login attempt needs to know and report back. */
export interface ThrottleTicket {
  key: string;
  state: LockoutState | null;
  locked: boolean;
}

/**
 * Locks out a username from one address after repeated failures (5 in 15 minutes by default),
 * inside `authenticate()` so every login path is covered. While locked, backends are not asked
 * at all, so the right password does not help and the attacker learns nothing new.
 */
@Injectable()
export class LoginThrottle {
  readonly enabled: boolean;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly store?: LockoutStore;
  /** The last queued attempt per key, while any is running. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    @Inject(AUTH_CONFIG) config: AuthConfig,
    @Optional() dataSource?: DataSource,
  ) {
    const options = config.options.throttle;
    this.enabled = options !== false;
    const settings: ThrottleOptions = options && options !== true ? options : {};
    this.maxFailures = settings.maxFailures ?? 5;
    this.windowMs = settings.windowMs ?? 15 * 60 * 1000;
    if (this.enabled) this.store = settings.store ?? (dataSource ? new TypeOrmLockoutStore(dataSource) : undefined);
    this.enabled = this.enabled && !!this.store;
  }

  /**
   * Run one attempt for this username and address with no other attempt for the same pair
   * running in this process: parallel guesses would otherwise all pass the check before the
   * first failure is counted. Across instances, at most one attempt per instance overlaps.
   */
  async exclusive<T>(request: Request | undefined, credentials: Record<string, unknown>, attempt: () => Promise<T>): Promise<T> {
    if (!this.enabled || typeof credentials.username !== 'string') return attempt();
    const key = throttleKey(credentials.username, clientAddress(request));
    const before = this.running.get(key) ?? Promise.resolve();
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => (finish = resolve));
    const queue = before.then(() => mine);
    this.running.set(key, queue);
    await before;
    try {
      return await attempt();
    } finally {
      finish();
      if (this.running.get(key) === queue) this.running.delete(key);
    }
  }

  /** Look up the counter for this attempt; `null` when the attempt is not throttled. */
  async check(request: Request | undefined, credentials: Record<string, unknown>, now = Date.now()): Promise<ThrottleTicket | null> {
    if (!this.enabled || typeof credentials.username !== 'string') return null;
    const key = throttleKey(credentials.username, clientAddress(request));
    const state = await this.store!.get(key);
    const current = state && now - state.windowStart < this.windowMs ? state : null;
    return { key, state, locked: !!current && current.failures >= this.maxFailures };
  }

  async failed(ticket: ThrottleTicket, now = Date.now()): Promise<void> {
    await this.store!.recordFailure(ticket.key, ticket.state, now, this.windowMs);
  }

  /** A successful login clears the counter; no write when there was none. */
  async succeeded(ticket: ThrottleTicket): Promise<void> {
    if (ticket.state) await this.store!.reset(ticket.key);
  }
}

function clientAddress(request: Request | undefined): string {
  return request?.ip ?? request?.socket?.remoteAddress ?? '';
}

function throttleKey(username: string, address: string): string {
  return createHash('sha256').update(`${username.normalize('NFKC').toLowerCase()}\n${address}`).digest('hex');
}
