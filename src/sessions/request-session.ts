import { Logger } from '@nestjs/common';
import session, { type CookieOptions, type SessionData } from 'express-session';
import { checkedExpiry, type Session } from './session.js';

/**
 * Session key of an expiry set with `setExpiry` (Django's `_session_expiry`): seconds of
 * inactivity, an ISO date, or 0 for "when the browser closes".
 */
export const EXPIRY_SESSION_KEY = '_session_expiry';

/** express-session's cookie class (its types leave out the constructor and `serialize`). */
export interface SessionCookie extends CookieOptions {
  originalMaxAge: number | null | undefined;
  maxAge?: number;
  expires?: Date | null;
  serialize(name: string, value: string): string;
}
export const Cookie = (session as unknown as { Cookie: new (options?: object) => SessionCookie }).Cookie;

/** What a session asks of the layer that keeps it for its request (`SessionTracker`). */
export interface SessionKeeper {
  /** How long a session lives without `setExpiry`, in milliseconds. */
  readonly sessionAge: number;
  /** The cookie of a new session: the configured attributes, those left to the request filled in. */
  newCookie(): SessionCookie;
  /** Set the cookie's expiry from `_session_expiry` or the configured policy, from now. */
  applyExpiry(session: RequestSession): void;
  /** `setExpiry` was called: the cookie goes out again. */
  noteExpiryChange(): void;
  cycleKey(session: RequestSession): Promise<void>;
  flush(session: RequestSession): Promise<void>;
  persist(session: RequestSession): Promise<void>;
  reload(session: RequestSession): Promise<void>;
}

const KEEPER = Symbol('nestjs-session-auth:session-keeper');
const ID = Symbol('nestjs-session-auth:session-id');
const logger = new Logger('Sessions');

/**
 * The module's own session, `request.session`: the data as own properties (express-session's
 * shape, so app code and stores see what they always saw), Django's operations as methods, and
 * express-session's callback methods for app code written against it.
 */
export class RequestSession implements Session {
  declare cookie: SessionCookie;
  // Symbol-keyed: never part of the data (JSON, Object.keys and stores skip them).
  declare [KEEPER]: SessionKeeper;
  declare [ID]: string;
  [key: string]: unknown;

  constructor(keeper: SessionKeeper, id: string, stored?: SessionData) {
    this[KEEPER] = keeper;
    this[ID] = id;
    if (stored) {
      assignData(this, stored);
      // As express-session restores it: the stored attributes, `expires` back to a Date.
      const cookie = { ...(stored.cookie as unknown as Record<string, unknown>) };
      if (typeof cookie.expires === 'string') cookie.expires = new Date(cookie.expires);
      this.cookie = new Cookie(cookie as CookieOptions);
    } else {
      this.cookie = keeper.newCookie();
      keeper.applyExpiry(this);
    }
  }

  /** The session id (express-session's `req.session.id`). */
  get id(): string {
    return this[ID];
  }

  set id(value: string) {
    this[ID] = value;
  }

  get(key: string): unknown {
    return key !== 'cookie' && Object.hasOwn(this, key) ? this[key] : undefined;
  }

  set(key: string, value: unknown): void {
    // A key the session itself answers (`cookie`, a method) would hide it.
    if (key === 'cookie' || (key in this && !Object.hasOwn(this, key))) {
      throw new TypeError(`'${key}' is a name the session itself uses; store the value under another key.`);
    }
    this[key] = value;
  }

  delete(key: string): void {
    if (key !== 'cookie') delete this[key];
  }

  getData(): Record<string, unknown> {
    const data: Record<string, unknown> = {};
    for (const key of Object.keys(this)) if (key !== 'cookie') data[key] = this[key];
    return data;
  }

  /**
   * When the session ends (Django's `set_expiry`): after `value` seconds without a request, at a
   * `Date`, or with `0` when the browser closes (the store still keeps it no longer than the
   * cookie's age); `null` goes back to the configured policy. The cookie goes out again with the
   * response, and the choice is kept in the session (`_session_expiry`), so it holds on the
   * next requests too.
   */
  setExpiry(value: number | Date | null): this {
    const expiry = checkedExpiry(value);
    if (expiry === null) delete this[EXPIRY_SESSION_KEY];
    else this[EXPIRY_SESSION_KEY] = expiry instanceof Date ? expiry.toISOString() : expiry;
    this[KEEPER].applyExpiry(this);
    this[KEEPER].noteExpiryChange();
    return this;
  }

  /** Seconds until the session expires (Django's `get_expiry_age`); a browser-close session counts the store's lifetime. */
  getExpiryAge(): number {
    return Math.max(0, Math.round((this.getExpiryDate().getTime() - Date.now()) / 1000));
  }

  /** When the session expires in the store (Django's `get_expiry_date`). */
  getExpiryDate(): Date {
    const expires = this.cookie.expires;
    if (expires instanceof Date) return expires;
    return new Date(Date.now() + (this.cookie.originalMaxAge ?? this[KEEPER].sessionAge));
  }

  /** Whether the cookie ends when the browser closes (Django's `get_expire_at_browser_close`). */
  getExpireAtBrowserClose(): boolean {
    return this.cookie.expires == null;
  }

  /**
   * Keep the data, or put `data` in its place, under a new id (Django's `cycle_key`): the new
   * session is stored first, then the old one ended, so a store failure loses nothing (the
   * session keeps its old id and data, and the error propagates). Guards against session
   * fixation at login.
   */
  async cycleKey(data?: Record<string, unknown>): Promise<void> {
    if (!data) return this[KEEPER].cycleKey(this);
    const previous = this.getData();
    replaceData(this, data);
    try {
      await this[KEEPER].cycleKey(this);
    } catch (error) {
      replaceData(this, previous);
      throw error;
    }
  }

  /**
   * End this session and start an empty one under a new id (Django's `flush`); the new one is
   * stored only if something is put in it.
   */
  flush(): Promise<void> {
    return this[KEEPER].flush(this);
  }

  /** Write the session now (a redirect sent right after sees it). */
  persist(): Promise<void> {
    return this[KEEPER].persist(this);
  }

  // express-session's callback API, for app code written against it.

  save(callback?: (error?: unknown) => void): this {
    settle(this.persist(), callback);
    return this;
  }

  regenerate(callback?: (error?: unknown) => void): this {
    settle(this.flush(), callback);
    return this;
  }

  destroy(callback?: (error?: unknown) => void): this {
    settle(this.flush(), callback);
    return this;
  }

  reload(callback?: (error?: unknown) => void): this {
    settle(this[KEEPER].reload(this), callback);
    return this;
  }

  /** Slide the expiry from now (express-session's `touch`), as `setExpiry` (or the configured policy) says. */
  touch(): this {
    this[KEEPER].applyExpiry(this);
    return this;
  }

  resetMaxAge(): this {
    return this.touch();
  }
}

/**
 * Copy stored data onto the session, as express-session does: a key the session already answers
 * (`id`, `cookie`, its methods, `__proto__` and the rest of Object's) is never taken from data.
 */
export function assignData(session: RequestSession, data: SessionData | Record<string, unknown>): void {
  for (const [key, value] of Object.entries(data)) {
    if (!(key in session)) session[key] = value;
  }
}

/** Remove every key of the data (the cookie stays). */
export function clearData(session: RequestSession): void {
  for (const key of Object.keys(session)) if (key !== 'cookie') delete session[key];
}

function replaceData(session: RequestSession, data: Record<string, unknown>): void {
  clearData(session);
  assignData(session, data);
}

export function isEmpty(session: RequestSession): boolean {
  return Object.keys(session).every((key) => key === 'cookie');
}

/** The session's data as its store would serialise it, less the cookie (whose expiry slides by itself). */
export function fingerprint(session: RequestSession): string {
  const { cookie: _cookie, ...data } = session;
  return JSON.stringify(data);
}

function settle(work: Promise<unknown>, callback?: (error?: unknown) => void): void {
  work.then(() => callback?.(), (error) => (callback ? callback(error) : logger.error(String(error))));
}
