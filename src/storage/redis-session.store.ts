import session from 'express-session';
import type { SessionData } from 'express-session';
import { DEFAULT_SESSION_AGE_MS } from '../auth.constants.js';
import { parseSessionData } from './session-data.js';

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

/** SET unless the key holds a revocation: one round trip, atomic on the Redis server. */
const SET_UNLESS_REVOKED = `
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** Replace whatever the key holds with the revocation, for as long as the session could have lived. */
const REVOKE = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** Push the expiry of a live session; a revoked or missing one is left as it is. */
const TOUCH_UNLESS_REVOKED = `
local current = redis.call('GET', KEYS[1])
if (not current) or current == ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
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
    this.client
      .eval(SET_UNLESS_REVOKED, { keys: [this.prefix + sid], arguments: [JSON.stringify(data), String(ttl), REVOKED] })
      .then(() => callback?.(), (error) => callback?.(error));
  }

  override touch(sid: string, data: SessionData, callback?: Callback): void {
    this.client
      .eval(TOUCH_UNLESS_REVOKED, { keys: [this.prefix + sid], arguments: [String(Math.max(1, this.ttlOf(data))), REVOKED] })
      .then(() => callback?.(), (error) => callback?.(error));
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
    return this.ttl;
  }
}
