import { DataSource, In, LessThan } from 'typeorm';
import { LoginLockout } from './login-lockout.entity.js';
import type { RequiredEntities } from './required-entities.js';
import { escapedTablePath, placeholder, upsertDialect, type UpsertDialect } from './sql-dialect.js';

/** Failures counted so far for one key, within the current window. */
export interface LockoutState {
  failures: number;
  windowStart: number;
}

/**
 * Where failure counters live. They must be shared by every instance of the app, or an attacker
 * gets the limits once per instance: the default keeps them in the app's database. Keys are
 * SHA-256 hex digests; no username or address is ever handed to a store.
 */
export interface LockoutStore {
  get(key: string): Promise<LockoutState | null>;
  /** The counters of several keys in one round trip (keys without a counter are left out). */
  getMany?(keys: string[]): Promise<Map<string, LockoutState>>;
  /** Count one failure; `previous` is what `get` returned for this attempt. */
  recordFailure(key: string, previous: LockoutState | null, now: number, windowMs: number): Promise<void>;
  reset(key: string): Promise<void>;
  /** Delete counters whose window started before `windowStartBefore`; resolves how many went. */
  prune?(windowStartBefore: number): Promise<number>;
  /** The entities a store in the app's database uses, checked when the app starts. */
  requiredEntities?(): RequiredEntities | undefined;
}

/** Counters in the `auth_login_lockout` table. */
export class TypeOrmLockoutStore implements LockoutStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Checked when the app starts (`StartupChecks`): the counters' table in this DataSource. */
  requiredEntities(): RequiredEntities {
    return { dataSource: this.dataSource, entities: [LoginLockout] };
  }

  private get repository() {
    return this.dataSource.getRepository(LoginLockout);
  }

  async get(key: string): Promise<LockoutState | null> {
    return (await this.getMany([key])).get(key) ?? null;
  }

  async getMany(keys: string[]): Promise<Map<string, LockoutState>> {
    const rows = await this.repository.find({ where: { key: In(keys) } });
    return new Map(rows.map((row) => [row.key, { failures: row.failures, windowStart: row.windowStart }]));
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

  async prune(windowStartBefore: number): Promise<number> {
    const result = await this.repository.delete({ windowStart: LessThan(windowStartBefore) });
    return result.affected ?? 0;
  }
}

/** The few commands of a Redis client this store needs (node-redis v4+ names). */
export interface RedisLikeClient {
  hGetAll(key: string): Promise<Record<string, string>>;
  multi(): RedisLikeMulti;
  del(key: string): Promise<unknown>;
}

/** A node-redis `MULTI` with the commands `RedisLockoutStore` queues on it. */
export interface RedisLikeMulti {
  hGetAll(key: string): RedisLikeMulti;
  hIncrBy(key: string, field: string, by: number): RedisLikeMulti;
  hSetNX(key: string, field: string, value: string): RedisLikeMulti;
  pExpire(key: string, ms: number, mode?: 'NX'): RedisLikeMulti;
  exec(): Promise<unknown>;
}

/**
 * Counters in Redis, for apps whose instances share Redis but not a database. Each key expires
 * with its window, so Redis prunes them itself.
 */
export class RedisLockoutStore implements LockoutStore {
  constructor(
    private readonly client: RedisLikeClient,
    private readonly prefix = 'auth:lockout:',
  ) {}

  async get(key: string): Promise<LockoutState | null> {
    return toState(await this.client.hGetAll(this.prefix + key));
  }

  async getMany(keys: string[]): Promise<Map<string, LockoutState>> {
    const multi = this.client.multi();
    for (const key of keys) multi.hGetAll(this.prefix + key);
    const replies = (await multi.exec()) as Record<string, string>[];
    const states = new Map<string, LockoutState>();
    keys.forEach((key, index) => {
      const state = toState(replies[index]);
      if (state) states.set(key, state);
    });
    return states;
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

function toState(hash: Record<string, string> | null | undefined): LockoutState | null {
  if (!hash || hash.failures === undefined) return null;
  return { failures: Number(hash.failures), windowStart: Number(hash.windowStart) };
}
