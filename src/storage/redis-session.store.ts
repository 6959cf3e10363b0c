import session from 'express-session';
import type { SessionData } from 'express-session';
import { DEFAULT_SESSION_AGE_MS, SESSION_KEY } from '../auth.constants.js';
import { parseSessionData, type StoredSession } from './session-data.js';

/** The commands of a node-redis (v4+) client this store uses. */
export interface RedisSessionClient {
  get(key: string): Promise<string | null>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

export interface RedisSessionStoreOptions {
  /** Key prefix (default `sess:`, connect-redis's, so its keys are read as they are). */
  prefix?: string;
  /** Lifetime of a session without a cookie `maxAge`, in milliseconds (two weeks). */
  ttl?: number;
}

/** What a revoked session's key holds until it expires. */
const REVOKED = '{"revoked":true}';

/**
 * Keep a user's index (KEYS[2], a sorted set of session ids) alive at least `ttl` (ARGV[2]) more
 * milliseconds, so it outlives every session in it.
 */
const EXTEND_INDEX = `
if #KEYS > 1 then
  if ARGV[4] then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5]) end
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
end`;

/**
 * SET unless the key holds a revocation, and note the session in its user's index: one round
 * trip, atomic on the Redis server.
 */
const SET_UNLESS_REVOKED = `
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
${EXTEND_INDEX}
return 1`;

/**
 * A user's live sessions as [id, data, pttl, ...]; ids whose key is gone or revoked leave the
 * index. ARGV[1] is the key prefix, ARGV[2] the revocation.
 */
const USER_SESSIONS = `
local found = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local value = redis.call('GET', key)
  if (not value) or value == ARGV[2] then
    redis.call('ZREM', KEYS[1], id)
  else
    table.insert(found, id)
    table.insert(found, value)
    table.insert(found, redis.call('PTTL', key))
  end
end
return found`;

/** Replace whatever the key holds with the revocation, for as long as the session could have lived. */
const REVOKE = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** Push the expiry of a live session (and of its user's index); a revoked or missing one is left as it is. */
const TOUCH_UNLESS_REVOKED = `
local current = redis.call('GET', KEYS[1])
if (not current) or current == ARGV[3] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
${EXTEND_INDEX}
return 1`;

type Callback<T = void> = (error?: any, result?: T) => void;

/**
 * An express-session store on Redis whose logout holds: `destroy` leaves a revocation in the
 * session's key until it would have expired, and every write is a script that refuses to
 * overwrite it. A request that loaded the session before the logout and saves it when it ends
 * therefore cannot bring it back (Django raises SessionInterrupted there). Keys and values are
 * connect-redis's (`sess:<id>`, the session as JSON, expiring with the cookie), so sessions it
 * stored keep working.
 */
export class RedisSessionStore extends session.Store {
  /** Sessions ended by `destroy` stay ended, whatever a request still running writes. */
  readonly revokeAware = true;
  private readonly prefix: string;
  private readonly ttl: number;

  constructor(
    private readonly client: RedisSessionClient,
    options: RedisSessionStoreOptions = {},
  ) {
    super();
    this.prefix = options.prefix ?? 'sess:';
    this.ttl = options.ttl ?? DEFAULT_SESSION_AGE_MS;
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.client.get(this.prefix + sid).then((value) => {
      if (!value || value === REVOKED) return callback(null, null);
      // A value that is not a session is no session (Django: "Session data corrupted").
      callback(null, parseSessionData(value));
    }, callback);
  }

  override set(sid: string, data: SessionData, callback?: Callback): void {
    const ttl = this.ttlOf(data);
    if (ttl <= 0) return this.destroy(sid, callback);
    const index = this.indexKeyOf(data);
    this.client
      .eval(SET_UNLESS_REVOKED, {
        keys: [this.prefix + sid, ...index],
        arguments: [JSON.stringify(data), String(ttl), REVOKED, ...(index.length ? [String(Date.now()), sid] : [])],
      })
      .then(() => callback?.(), (error) => callback?.(error));
  }

  override touch(sid: string, data: SessionData, callback?: Callback): void {
    this.client
      .eval(TOUCH_UNLESS_REVOKED, {
        keys: [this.prefix + sid, ...this.indexKeyOf(data)],
        // ARGV[1] is unused, so the index script reads the lifetime from ARGV[2] in both scripts.
        arguments: ['', String(Math.max(1, this.ttlOf(data))), REVOKED],
      })
      .then(() => callback?.(), (error) => callback?.(error));
  }

  /**
   * The live sessions of a user (for `AuthService.getUserSessions`), from an index each write
   * keeps beside the sessions (`<prefix>user:<id>`). Sessions stored before the index existed are
   * not listed until their next write.
   */
  async userSessions(userId: string | number): Promise<StoredSession[]> {
    const found = (await this.client.eval(USER_SESSIONS, {
      keys: [this.userIndexKey(String(userId))],
      arguments: [this.prefix, REVOKED],
    })) as (string | number)[];
    const now = Date.now();
    const sessions: StoredSession[] = [];
    for (let i = 0; i + 2 < found.length; i += 3) {
      const data = parseSessionData(String(found[i + 1]));
      const ttl = Number(found[i + 2]);
      if (data && ttl > 0) sessions.push({ id: String(found[i]), data, expiresAt: now + ttl });
    }
    return sessions;
  }

  /** End every session of a user (those in its index), e.g. after an administrator disabled the account. */
  async destroyUserSessions(userId: string | number): Promise<number> {
    const sessions = await this.userSessions(userId);
    await Promise.all(sessions.map((stored) => new Promise<void>((resolve, reject) => this.destroy(stored.id, (error) => (error ? reject(error) : resolve())))));
    return sessions.length;
  }

  private userIndexKey(userId: string): string {
    return `${this.prefix}user:${userId}`;
  }

  /** The index key of the session's user, as a one-element list (none for an anonymous session). */
  private indexKeyOf(data: SessionData): string[] {
    const userId = (data as unknown as Record<string, unknown>)?.[SESSION_KEY];
    return typeof userId === 'string' && userId !== '' ? [this.userIndexKey(userId)] : [];
  }

  /** Revoke the session (the key holds the revocation until the session's lifetime is over). */
  override destroy(sid: string, callback?: Callback): void {
    this.client
      .eval(REVOKE, { keys: [this.prefix + sid], arguments: [REVOKED, String(this.ttl)] })
      .then(() => callback?.(), (error) => callback?.(error));
  }

  private ttlOf(data: SessionData): number {
    const expires = data?.cookie?.expires;
    if (expires) return new Date(expires).getTime() - Date.now();
    // A cookie that ends with the browser: the session lives in the store as long as its age says.
    return data?.cookie?.originalMaxAge ?? this.ttl;
  }
}
