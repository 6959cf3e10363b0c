import { RetryLater } from '../errors.js';
import type { CookieOptions } from 'express-session';
import type { PrefetchedUser } from '../storage/prefetched-user.js';

/**
 * A request's session as every consumer calls it (Django's `SessionBase`). The module's own
 * session (`RequestSession`) and, with `session: false`, the express-session the app installed
 * (`ExpressSessionAdapter`) both answer to it, so no caller needs to know which it has. Get one
 * with `sessionOf(request)`.
 */
export interface Session {
  /** The session key; it changes with `cycleKey` and `flush` (`undefined` once an app's express-session was destroyed). */
  readonly id: string | undefined;
  get(key: string): unknown;
  set(key: string, value: unknown): void;
  delete(key: string): void;
  /** A copy of the data, the cookie left out. */
  getData(): Record<string, unknown>;
  /**
   * Keep the data (or put `data` in its place) under a new key, stored before this resolves
   * (Django's `cycle_key`): guards against session fixation at login. A store failure loses
   * nothing: the session keeps its key and data, and the error propagates.
   */
  cycleKey(data?: Record<string, unknown>): Promise<void>;
  /** End the session in the store and go on with an empty one, stored only if something is put in it (Django's `flush`). */
  flush(): Promise<void>;
  /**
   * When the session ends (Django's `set_expiry`): after `value` seconds without a request, at a
   * `Date`, with `0` when the browser closes; `null` goes back to the configured policy.
   */
  setExpiry(value: number | Date | null): void;
  /** Seconds until the session expires (Django's `get_expiry_age`). */
  getExpiryAge(): number;
  /** When the session expires (Django's `get_expiry_date`). */
  getExpiryDate(): Date;
  /** Whether the cookie ends when the browser closes (Django's `get_expire_at_browser_close`). */
  getExpireAtBrowserClose(): boolean;
  /** Write the session now, rather than as the response ends (a redirect sent right after sees it). */
  persist(): Promise<void>;
}

/**
 * Where one request's session comes from: the module's session layer (`SessionTracker`), or the
 * express-session an app installed (`ExpressSessionAdapter`). `sessionOf` and its siblings ask it.
 */
export interface SessionProvider {
  /** The session, loaded (one store read at most); `undefined` while the store is away. */
  load(): Promise<Session | undefined>;
  /**
   * The session without I/O (`request.session`): a new one for a visitor who brought no cookie;
   * `SessionNotLoaded` before a cookie's session is loaded; `undefined` while the store is away.
   */
  current(): Session | undefined;
  /** What is known without I/O or side effects: the loaded session; `null`: none to load; `undefined`: one must be loaded first. */
  peek(): Session | null | undefined;
  /** The name of the cookie that brought this stored session's id, if one did. */
  cookieName(): string | undefined;
  /** The session cookie's options and signing secrets when the module sets that cookie itself. */
  moduleCookie(): { options: CookieOptions; secrets: string[] } | undefined;
  /** The user row the store read along with the session, handed out once. */
  takePrefetchedUser(): PrefetchedUser | undefined;
}

/** How long a client is asked to wait for the session store, in seconds. */
const SESSIONS_RETRY_AFTER_SECONDS = 5;

/**
 * A session the store could not load, or a store that is disconnected: 503 with `Retry-After`
 * where needed, like any other source that is away (`RetryLater`).
 */
export class SessionsUnavailable extends RetryLater {
  constructor() {
    super('Sessions are unavailable right now; please try again shortly.', 503, SESSIONS_RETRY_AFTER_SECONDS);
  }
}



/** The session read synchronously before anything loaded it (in middleware, say). */
export class SessionNotLoaded extends Error {
  constructor() {
    super(
      'request.session is not loaded yet: AuthModule loads it on first use, in its guard for routes that read ' +
        'the user or the request. In middleware, `await loadSession(request)` first.',
    );
    this.name = 'SessionNotLoaded';
  }
}

/** The longest expiry `setExpiry` takes: a hundred years (beyond it, dates stop being dates). */
const MAX_EXPIRY_SECONDS = 100 * 365 * 24 * 60 * 60;

/** `setExpiry`'s argument, checked: a clear `TypeError` for anything it does not take. */
export function checkedExpiry(value: unknown): number | Date | null {
  if (value === null) return null;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime()) || Math.abs(value.getTime() - Date.now()) > MAX_EXPIRY_SECONDS * 1000) {
      throw new TypeError('setExpiry() needs a valid Date within a hundred years.');
    }
    return value;
  }
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_EXPIRY_SECONDS) return value;
  throw new TypeError('setExpiry() takes seconds (0: when the browser closes; at most a hundred years), a Date, or null.');
}
