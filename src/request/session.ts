import { Logger, ServiceUnavailableException } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { Request } from 'express';
import session, { type CookieOptions, type SessionData, type Store } from 'express-session';
import { parse as parseCookies } from 'cookie';
import signature from 'cookie-signature';
import { randomBytes } from 'node:crypto';
import { DEFAULT_SESSION_AGE_MS } from '../auth.constants.js';
import { prefetchedUserOf, type PrefetchedUser } from '../storage/prefetched-user.js';
import { appendSetCookie, clearCookie, headersSent, isSecureRequest, rawResponse, responseOf, varyOn, type CookieAttributes } from './platform.js';

/**
 * The module's session layer, in the spirit of Django's `SessionBase` and `SessionMiddleware`:
 * the session is loaded on first use (a request that never touches it costs no store read and
 * no cookie work beyond noting the header), saved when the response ends only if it changed,
 * never saved for a 5xx, and a visitor who stored nothing gets no row and no cookie. It speaks
 * express-session's contracts on both sides — any `Store` (`TypeOrmSessionStore`, connect-redis,
 * MemoryStore), its data format and its signed cookie (`s:<id>.<signature>`) — so sessions of
 * earlier releases stay valid. It replaces express-session's middleware because that middleware
 * loads every session eagerly, and the module had to override its `save` and `res.end` to get
 * the rest; here those decisions are the layer's own.
 */

export interface SessionSettings {
  store: Store;
  /** Cookie name. */
  name: string;
  /** Signing secrets, the current one first; older ones still verify. */
  secrets: string[];
  /** Cookie attributes (express-session's `CookieOptions`). */
  cookie: CookieOptions;
  /** Re-send the cookie on every response that has a session, so its expiry slides. */
  rolling: boolean;
  /** Trust `X-Forwarded-Proto` (true), never (false), or follow Express's `trust proxy` (undefined). */
  proxy: boolean | undefined;
  /** Sessions whose expiry was not set end when the browser closes (Django's `SESSION_EXPIRE_AT_BROWSER_CLOSE`). */
  expireAtBrowserClose?: boolean;
}

/**
 * Session key of an expiry set with `setExpiry` (Django's `_session_expiry`): seconds of
 * inactivity, an ISO date, or 0 for "when the browser closes".
 */
export const EXPIRY_SESSION_KEY = '_session_expiry';
/** The longest expiry `setExpiry` takes: a hundred years (beyond it, dates stop being dates). */
const MAX_EXPIRY_SECONDS = 100 * 365 * 24 * 60 * 60;

/** A session the store could not load, or a store that is disconnected: answered with 503 where needed. */
export class SessionsUnavailable extends ServiceUnavailableException {
  constructor() {
    super('Sessions are unavailable right now; please try again shortly.');
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

/** express-session's cookie class (its types leave out the constructor and `serialize`). */
export interface SessionCookie extends CookieOptions {
  originalMaxAge: number | null | undefined;
  maxAge?: number;
  expires?: Date | null;
  serialize(name: string, value: string): string;
}
const Cookie = (session as unknown as { Cookie: new (options?: object) => SessionCookie }).Cookie;

const STATE = Symbol('nestjs-session-auth:session');
const ID = Symbol('nestjs-session-auth:session-id');
/** Verified cookie values remembered at most; the oldest is forgotten first. */
const MAX_REMEMBERED_COOKIES = 10_000;
const LAYER = Symbol('nestjs-session-auth:session-layer');
const ACCESSORS = Symbol('nestjs-session-auth:session-accessors');
const logger = new Logger('Sessions');

/** What the layer knows about one request's session. */
interface SessionState {
  layer: SessionLayer;
  request: Request;
  /** Node's response (under Express's, or under a Fastify reply); `undefined` for a request made up in code. */
  response: ServerResponse | undefined;
  /** The session id the cookie carried, once verified (`null`: no valid cookie). */
  cookieId?: string | null;
  /** The loaded (or new) session; `undefined` until first use. */
  session?: RequestSession;
  loading?: Promise<RequestSession | undefined>;
  /** Whether the session's current id has a row in the store. */
  stored: boolean;
  /** Fingerprint of the data as last loaded or written. */
  savedHash: string;
  /** The store was not there: the request runs without a session. */
  unavailable: boolean;
  hooked: boolean;
  /** The layer's work before the headers and at the end ran. */
  headersSeen?: boolean;
  ending?: boolean;
  /** Written during this request: the store has it fresh, no touch needed. */
  written: boolean;
  /** Fingerprint of the data as the response ended (what was saved, if anything). */
  endHash?: string;
  /** The session the browser's cookie names was ended: clear the cookie unless a new one is stored. */
  clearCookie?: boolean;
  /** The user row the store read along with the session, until the user resolver takes it. */
  prefetchedUser?: PrefetchedUser;
  /** `setExpiry` changed the cookie: it goes out again even under the same id. */
  expiryChanged?: boolean;
}

/**
 * `request.session`: the data as own properties (express-session's shape, so app code and
 * stores see what they always saw), and the session's operations as methods.
 */
export class RequestSession {
  declare cookie: SessionCookie;
  // Symbol-keyed: never part of the data (JSON, Object.keys and stores skip them).
  declare [STATE]: SessionState;
  declare [ID]: string;
  [key: string]: unknown;

  constructor(state: SessionState, id: string, stored?: SessionData) {
    this[STATE] = state;
    this[ID] = id;
    if (stored) {
      assignData(this, stored);
      // As express-session restores it: the stored attributes, `expires` back to a Date.
      const cookie = { ...(stored.cookie as unknown as Record<string, unknown>) };
      if (typeof cookie.expires === 'string') cookie.expires = new Date(cookie.expires);
      this.cookie = new Cookie(cookie as CookieOptions);
    } else {
      this.cookie = new Cookie(state.layer.settings.cookie);
      state.layer.applyCookieDefaults(this.cookie, state.request);
      state.layer.applyExpiry(this);
    }
  }

  /**
   * When the session ends (Django's `set_expiry`): after `value` seconds without a request, at a
   * `Date`, or with `0` when the browser closes (the store still keeps it no longer than the
   * cookie's age); `null` goes back to the configured policy. The cookie goes out again with the
   * response, and the choice is kept in the session (`_session_expiry`), so it holds on the
   * next requests too.
   */
  setExpiry(value: number | Date | null): this {
    if (value === null) {
      delete this[EXPIRY_SESSION_KEY];
    } else if (value instanceof Date) {
      if (Number.isNaN(value.getTime()) || Math.abs(value.getTime() - Date.now()) > MAX_EXPIRY_SECONDS * 1000) {
        throw new TypeError('setExpiry() needs a valid Date within a hundred years.');
      }
      this[EXPIRY_SESSION_KEY] = value.toISOString();
    } else if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_EXPIRY_SECONDS) {
      this[EXPIRY_SESSION_KEY] = value;
    } else {
      throw new TypeError('setExpiry() takes seconds (0: when the browser closes; at most a hundred years), a Date, or null.');
    }
    this[STATE].layer.applyExpiry(this);
    this[STATE].expiryChanged = true;
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
    return new Date(Date.now() + (this.cookie.originalMaxAge ?? this[STATE].layer.sessionAge));
  }

  /** Whether the cookie ends when the browser closes (Django's `get_expire_at_browser_close`). */
  getExpireAtBrowserClose(): boolean {
    return this.cookie.expires == null;
  }

  /** The session id (express-session's `req.session.id`). */
  get id(): string {
    return this[ID];
  }

  set id(value: string) {
    this[ID] = value;
  }

  /**
   * Keep the data under a new id (Django's `cycle_key`): the new session is stored first, then
   * the old one ended, so a store failure loses nothing (the request keeps the old id and the
   * error propagates). Guards against session fixation at login.
   */
  async cycleKey(): Promise<void> {
    const state = this[STATE];
    state.prefetchedUser = undefined;
    const oldId = this.id;
    const wasStored = state.stored;
    const fresh = state.layer.generateId();
    setId(this, fresh);
    state.stored = false;
    try {
      await state.layer.write(this);
    } catch (error) {
      setId(this, oldId);
      state.stored = wasStored;
      throw error;
    }
    if (wasStored) {
      try {
        await state.layer.end(oldId);
      } catch (error) {
        // Never leave both ids alive.
        await state.layer.end(fresh).catch(() => undefined);
        throw error;
      }
    }
  }

  /**
   * End this session and start an empty one under a new id (Django's `flush`); the new one is
   * stored only if something is put in it.
   */
  async flush(): Promise<void> {
    const state = this[STATE];
    state.prefetchedUser = undefined;
    if (state.stored) await state.layer.end(this.id);
    if (state.cookieId === this.id) state.clearCookie = true;
    for (const key of Object.keys(this)) if (key !== 'cookie') delete this[key];
    // The expiry goes with the data (Django's `flush` clears `_session_expiry` too).
    state.layer.applyExpiry(this);
    setId(this, state.layer.generateId());
    state.stored = false;
    state.savedHash = fingerprint(this);
  }

  /** Write the session now (a redirect sent right after sees it). */
  async persist(): Promise<void> {
    await this[STATE].layer.write(this);
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
    const state = this[STATE];
    state.prefetchedUser = undefined;
    settle(
      state.layer.read(this.id).then((data) => {
        for (const key of Object.keys(this)) if (key !== 'cookie') delete this[key];
        if (data) assignData(this, data);
        state.savedHash = fingerprint(this);
      }),
      callback,
    );
    return this;
  }

  /** Slide the expiry from now (express-session's `touch`), as `setExpiry` (or the configured policy) says. */
  touch(): this {
    this[STATE].layer.applyExpiry(this);
    return this;
  }

  resetMaxAge(): this {
    return this.touch();
  }
}

for (const method of [
  'cycleKey', 'flush', 'persist', 'save', 'regenerate', 'destroy', 'reload', 'touch', 'resetMaxAge',
  'setExpiry', 'getExpiryAge', 'getExpiryDate', 'getExpireAtBrowserClose',
]) {
  Object.defineProperty(RequestSession.prototype, method, { enumerable: false });
}

/** Install the layer on requests and answer for the sessions of every request. */
export class SessionLayer {
  private ready = true;
  /** Signed cookie values already verified, and their session id: a logged-in browser sends the same one each time. */
  private readonly verified = new Map<string, string>();

  constructor(readonly settings: SessionSettings) {
    settings.store.on?.('disconnect', () => (this.ready = false));
    settings.store.on?.('connect', () => (this.ready = true));
  }

  /**
   * Give every request of an Express app its session, once: accessors on the app's request
   * prototype, so a request costs nothing until its session is used (the state is made then).
   * A request whose prototype is no app's (one made up in code) gets the accessors itself.
   */
  install(request: Request): void {
    const prototype = Object.getPrototypeOf(request);
    this.installOn(prototype && prototype !== Object.prototype ? prototype : request);
  }

  installOn(target: object): void {
    if (!Object.hasOwn(target, LAYER)) defineSessionAccessors(target, this);
  }

  /**
   * Make this layer answer for one request (the accessors are on its prototype, defined once):
   * on Fastify, whose apps in one process can share a request prototype.
   */
  claim(request: object): void {
    const prototype = Object.getPrototypeOf(request);
    if (!Object.hasOwn(prototype, ACCESSORS)) defineSessionAccessors(prototype, this);
    (request as any)[LAYER] = this;
  }

  /** Give this one request its session, whatever its prototype (a request made up in code). */
  attach(request: Request, response: unknown): void {
    defineSessionAccessors(request, this);
    Object.defineProperty(request, STATE, { value: this.newState(request, rawResponse(response)), configurable: true });
  }

  newState(request: Request, response: ServerResponse | undefined): SessionState {
    return { layer: this, request, response, stored: false, savedHash: '', unavailable: false, hooked: false, written: false };
  }

  /** The session when it is available without I/O; a new one for a visitor without a cookie. */
  current(state: SessionState): RequestSession | undefined {
    if (state.session || state.unavailable) return state.session;
    if (this.cookieId(state) !== null) throw new SessionNotLoaded();
    if (!this.ready) {
      state.unavailable = true;
      return undefined;
    }
    return this.adopt(state, new RequestSession(state, this.generateId()), false);
  }

  /** Load the request's session (once); `undefined` while the store is disconnected. */
  load(state: SessionState): Promise<RequestSession | undefined> {
    if (state.session || state.unavailable) return Promise.resolve(state.session);
    state.loading ??= this.loadFromStore(state);
    return state.loading;
  }

  /** Whether the request carries a cookie with a validly signed session id. */
  hasSessionCookie(state: SessionState): boolean {
    return this.cookieId(state) !== null;
  }

  generateId(): string {
    return randomBytes(24).toString('base64url');
  }

  /** How long a session lives without `setExpiry`, in milliseconds (the cookie's `maxAge`). */
  get sessionAge(): number {
    const age = this.settings.cookie.maxAge;
    return typeof age === 'number' && age > 0 ? age : DEFAULT_SESSION_AGE_MS;
  }

  /**
   * Set the cookie's expiry from the session's `_session_expiry` or the configured policy, from
   * now. A browser-close cookie has no `Expires`; its `originalMaxAge` still says how long the
   * store keeps the session.
   */
  applyExpiry(session: RequestSession): void {
    const cookie = session.cookie;
    const expiry = session[EXPIRY_SESSION_KEY];
    if (typeof expiry === 'string') {
      const at = new Date(expiry);
      if (!Number.isNaN(at.getTime())) {
        cookie.expires = at;
        return;
      }
    } else if (typeof expiry === 'number' && Number.isFinite(expiry) && expiry > 0) {
      cookie.maxAge = expiry * 1000;
      return;
    }
    const browserClose = expiry === 0 || (expiry === undefined && this.settings.expireAtBrowserClose === true);
    const configured = this.settings.cookie.maxAge;
    if (!browserClose && typeof configured === 'number') {
      cookie.maxAge = configured;
      return;
    }
    cookie.expires = null;
    cookie.originalMaxAge = this.sessionAge;
  }

  /** Fill in what the cookie options leave to the request (`secure: 'auto'`, `sameSite: 'auto'`). */
  applyCookieDefaults(cookie: SessionCookie, request: Request): void {
    const { secure, sameSite } = this.settings.cookie as { secure?: unknown; sameSite?: unknown };
    if (secure === 'auto') cookie.secure = this.isSecure(request);
    if (sameSite === 'auto') cookie.sameSite = this.isSecure(request) ? 'none' : 'lax';
  }

  read(id: string): Promise<SessionData | null | undefined> {
    // A store with a promise API of its own (the module's) is read without a callback in between.
    const store = this.settings.store as Store & { getData?(id: string): Promise<SessionData | null> };
    if (typeof store.getData === 'function') return store.getData(id);
    return new Promise((resolve, reject) => store.get(id, (error, data) => (error ? reject(error) : resolve(data))));
  }

  async write(session: RequestSession, hash = fingerprint(session)): Promise<void> {
    const state = session[STATE];
    // As express-session does: the session object itself (stores serialise its own properties).
    const data = session as unknown as SessionData;
    await new Promise<void>((resolve, reject) =>
      this.settings.store.set(session.id, data, (error?: unknown) => (error ? reject(error) : resolve())),
    );
    state.stored = true;
    state.written = true;
    // The data as it was handed to the store: a change made while the write ran is still unsaved.
    state.savedHash = hash;
  }

  /** End a session in the store (the module's stores revoke it rather than delete it). */
  end(id: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.settings.store.destroy(id, (error?: unknown) => (error ? reject(error) : resolve())),
    );
  }

  private async loadFromStore(state: SessionState): Promise<RequestSession | undefined> {
    if (!this.ready) {
      state.unavailable = true;
      return undefined;
    }
    const id = this.cookieId(state);
    let data: SessionData | null | undefined;
    if (id !== null) {
      try {
        data = await this.read(id);
      } catch (error) {
        logger.error(`Loading the session failed: ${(error as Error).message}`);
        throw new SessionsUnavailable();
      }
    }
    if (state.session) return state.session;
    if (id === null || !data) return this.adopt(state, new RequestSession(state, this.generateId()), false);
    state.prefetchedUser = prefetchedUserOf(data);
    const loaded = this.adopt(state, new RequestSession(state, id, data), true);
    // The expiry slides with use, as express-session's does (the store decides when to write it).
    loaded.touch();
    return loaded;
  }

  private adopt(state: SessionState, session: RequestSession, stored: boolean): RequestSession {
    state.session = session;
    state.stored = stored;
    // A new session is saved when it holds anything; only a stored one needs its data remembered.
    state.savedHash = stored ? fingerprint(session) : '';
    this.hook(state);
    return session;
  }

  /** The verified session id from the cookie, read once; `null` when absent or forged. */
  private cookieId(state: SessionState): string | null {
    if (state.cookieId !== undefined) return state.cookieId;
    state.cookieId = null;
    const header = state.request.headers.cookie;
    if (typeof header !== 'string' || !header.includes(this.settings.name)) return null;
    const raw = parseCookies(header)[this.settings.name];
    if (typeof raw !== 'string' || !raw.startsWith('s:')) return null;
    const known = this.verified.get(raw);
    if (known !== undefined) return (state.cookieId = known);
    for (const secret of this.settings.secrets) {
      const id = signature.unsign(raw.slice(2), secret);
      if (id === false) continue;
      // Only values whose signature checked are remembered: a forged one costs its HMAC every time.
      if (this.verified.size >= MAX_REMEMBERED_COOKIES) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(raw, id);
      return (state.cookieId = id);
    }
    return null;
  }

  /**
   * Once a session exists for the request: its cookie goes out with the headers, and a changed
   * session is written before the response ends (so the next request sees it). A 5xx saves
   * nothing and sets no cookie (Django's SessionMiddleware).
   */
  private hook(state: SessionState): void {
    if (state.hooked) return;
    state.hooked = true;
    const { response } = state;
    // A request made up in code (forceLogin): nothing goes out.
    if (typeof response?.writeHead !== 'function') return;
    if (hookPrototype(response)) return;
    // A response of no Express app (Node's, under a Fastify reply): wrapped by itself.
    wrapWriteHeadAndEnd(response, () => state);
  }

  /**
   * As the headers go out: `Vary: Cookie` (the answer depended on the session, Django's
   * SessionMiddleware), the session cookie when one is due, and `Cache-Control: no-store` on a
   * response that sets or clears it.
   */
  beforeHeaders(state: SessionState): void {
    const response = state.response!;
    varyOn(response, 'Cookie');
    const session = state.session;
    if (response.statusCode < 500 && session && this.cookieWanted(state) && (!session.cookie.secure || this.isSecure(state.request))) {
      appendSetCookie(response, session.cookie.serialize(this.settings.name, `s:${signature.sign(session.id, this.settings.secrets[0])}`));
    }
    if (!response.hasHeader('Set-Cookie') && !state.clearCookie) return;
    const name = `${this.settings.name}=`;
    const cookies = [response.getHeader('Set-Cookie') ?? []].flat().map(String);
    let ours = cookies.some((line) => line.startsWith(name));
    if (!ours && state.clearCookie && session && !state.stored && isEmpty(session) && response.statusCode < 500) {
      // The session the cookie named was ended and nothing new was stored (Django's
      // SessionMiddleware deletes the cookie of an emptied session): the cookie goes too.
      const { path, domain, secure, sameSite, httpOnly } = session.cookie;
      const sent = { path, domain, secure: secure === 'auto' ? this.isSecure(state.request) : secure, sameSite: sameSite as CookieAttributes['sameSite'], httpOnly };
      clearCookie(response, this.settings.name, sent);
      ours = true;
    }
    if (ours) response.setHeader('Cache-Control', 'no-store');
  }

  /** What to do as the response ends: write a changed session, or let the store note the visit. */
  atEnd(state: SessionState): Promise<void> | undefined {
    const session = state.session;
    if (!session || state.response!.statusCode >= 500) return undefined;
    state.endHash = fingerprint(session);
    if (this.mustSave(state)) return this.write(session, state.endHash);
    if (state.stored && !state.written && typeof this.settings.store.touch === 'function') {
      // A store that answers at once (nothing to write yet) does not hold the response back.
      let answered: { error?: unknown } | undefined;
      let settle: ((error?: unknown) => void) | undefined;
      this.settings.store.touch(session.id, session as unknown as SessionData, (error?: unknown) =>
        settle ? settle(error) : (answered = { error }),
      );
      if (answered) return answered.error ? Promise.reject(answered.error) : undefined;
      return new Promise((resolve, reject) => (settle = (error) => (error ? reject(error) : resolve())));
    }
    return undefined;
  }

  /**
   * Changed since loaded or written, and not empty (an empty new session is never stored). As
   * the response ends, the data is compared as it was then (`endHash`): what was saved.
   */
  private mustSave(state: SessionState): boolean {
    const session = state.session!;
    if (!state.stored) return !isEmpty(session);
    return (state.endHash ?? fingerprint(session)) !== state.savedHash;
  }

  private cookieWanted(state: SessionState): boolean {
    const session = state.session!;
    const changed = this.mustSave(state);
    if (!state.stored && !changed) return false;
    if (session.id !== state.cookieId || state.expiryChanged) return true;
    return this.settings.rolling || (changed && session.cookie.expires != null);
  }

  private isSecure(request: Request): boolean {
    if ((request.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
    if (this.settings.proxy === false) return false;
    if (this.settings.proxy !== true) return isSecureRequest(request);
    const header = String(request.headers['x-forwarded-proto'] ?? '');
    return header.split(',')[0].trim().toLowerCase() === 'https';
  }
}

const HOOKED_PROTOTYPE = Symbol('nestjs-session-auth:hooked-prototype');

/** The session state of the request a response answers, once the layer hooked that response. */
function hookedState(response: ServerResponse): SessionState | undefined {
  const state = (response as { req?: { [STATE]?: SessionState } }).req?.[STATE];
  return state?.hooked && state.response === response ? state : undefined;
}

/**
 * End the response once the session is saved (a changed session is written before the client
 * sees the answer, so its next request finds it). `end` is the response's own `end`.
 */
function endResponse(state: SessionState, response: ServerResponse, end: Function, args: IArguments): ServerResponse {
  const work = state.layer.atEnd(state);
  if (!work) return end.apply(response, args) as ServerResponse;
  work.then(
    () => end.apply(response, args),
    (error: Error) => {
      logger.error(`Saving the session failed: ${error.message}`);
      end.apply(response, args);
    },
  );
  return response;
}

/**
 * Express makes each app's responses from its own prototype (`app.response`, which holds the
 * app): its `writeHead` and `end` are wrapped once there, and a response whose session the layer
 * hooked (found through `response.req`) runs the layer's work, so a request pays for no wrapper
 * of its own. `false` for a response of no Express app.
 */
function hookPrototype(response: ServerResponse): boolean {
  const prototype = Object.getPrototypeOf(response);
  if (!prototype || !Object.hasOwn(prototype, 'app')) return false;
  if (!Object.hasOwn(prototype, HOOKED_PROTOTYPE)) {
    Object.defineProperty(prototype, HOOKED_PROTOTYPE, { value: true });
    wrapWriteHeadAndEnd(prototype, hookedState);
  }
  return true;
}

/**
 * Wrap `target`'s `writeHead` and `end` (an Express app's response prototype, or one response):
 * before the headers go out the layer adds its own (`beforeHeaders`), and the response ends once
 * the session is saved (`endResponse`), each once per response that `stateOf` finds hooked.
 */
function wrapWriteHeadAndEnd(target: ServerResponse, stateOf: (response: ServerResponse) => SessionState | undefined): void {
  const originalWriteHead = target.writeHead as (...args: unknown[]) => ServerResponse;
  const originalEnd = target.end as (...args: unknown[]) => ServerResponse;
  Object.defineProperties(target, {
    writeHead: {
      configurable: true,
      writable: true,
      value: function writeHead(this: ServerResponse): ServerResponse {
        const state = stateOf(this);
        if (!state || state.headersSeen) return originalWriteHead.apply(this, arguments as unknown as unknown[]);
        state.headersSeen = true;
        // Headers given to writeHead itself are set first, so the layer sees (and adds to) them.
        const args = headersTakenFrom(this, arguments);
        state.layer.beforeHeaders(state);
        return originalWriteHead.apply(this, args as unknown as unknown[]);
      },
    },
    end: {
      configurable: true,
      writable: true,
      value: function end(this: ServerResponse): ServerResponse {
        const state = stateOf(this);
        if (!state || state.ending) return originalEnd.apply(this, arguments as unknown as unknown[]);
        state.ending = true;
        return endResponse(state, this, originalEnd, arguments);
      },
    },
  });
}

/**
 * `writeHead(status, [message], [headers])`: set the status and the given headers on the
 * response, and return the arguments without the headers (the response now holds them).
 */
function headersTakenFrom(response: ServerResponse, args: IArguments): IArguments | unknown[] {
  if (typeof args[0] === 'number') response.statusCode = args[0];
  const at = typeof args[1] === 'string' ? 2 : 1;
  const headers = args[at] as Record<string, unknown> | unknown[] | undefined;
  if (!headers || typeof headers !== 'object') return args;
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) for (const [name, value] of headers as [string, unknown][]) response.appendHeader(name, value as string);
    else for (let i = 0; i + 1 < headers.length; i += 2) response.appendHeader(String(headers[i]), headers[i + 1] as string);
  } else {
    for (const name of Object.keys(headers)) if (headers[name] !== undefined) response.setHeader(name, headers[name] as string);
  }
  return Array.prototype.slice.call(args, 0, at);
}

/** Add `Vary: Cookie` to the request's response (once the answer depends on who is asking). */
export function varyOnCookie(request: Request): void {
  const response = responseOf(request);
  if (response && !headersSent(response)) varyOn(response, 'Cookie');
}

/** The request's session state, when the module's layer is installed (not with `session: false`). */
export function sessionState(request: Request): SessionState | undefined {
  const layer = (request as any)?.[LAYER] as SessionLayer | undefined;
  if (!layer) return undefined;
  return ((request as any)[STATE] ??= layer.newState(request, rawResponse(responseOf(request))));
}

/**
 * The user row the store read along with the request's session, handed out once: the user
 * resolver takes it right after the load, while it is as fresh as the session itself.
 */
export function takePrefetchedUser(request: Request): PrefetchedUser | undefined {
  const state = (request as any)?.[STATE] as SessionState | undefined;
  const prefetched = state?.prefetchedUser;
  if (state) state.prefetchedUser = undefined;
  return prefetched;
}

/**
 * `session`, `sessionID` and `sessionStore` (express-session's names) on `target`, answered by
 * the request's layer: `layer` for requests made from `target`, unless the request names its own
 * (Fastify apps of one process can share a request prototype).
 */
function defineSessionAccessors(target: object, layer: SessionLayer): void {
  Object.defineProperty(target, LAYER, { value: layer, writable: true, configurable: true });
  if (Object.hasOwn(target, ACCESSORS)) return;
  Object.defineProperties(target, {
    [ACCESSORS]: { value: true, configurable: true },
    session: {
      configurable: true,
      get(this: Request) {
        const state = sessionState(this)!;
        return state.layer.current(state);
      },
      set(this: Request, value: unknown) {
        // express-session's way to drop a session: `req.session = null`.
        const state = sessionState(this)!;
        if (value == null && state.session) void state.session.flush();
      },
    },
    sessionID: {
      configurable: true,
      get(this: Request) {
        return sessionState(this)!.session?.id;
      },
    },
    sessionStore: {
      configurable: true,
      get(this: Request) {
        return ((this as any)[LAYER] as SessionLayer).settings.store;
      },
    },
  });
}

/**
 * The request's session, loaded if needed: the module's own, or the app's express-session one
 * (`session: false`). `undefined` while the store is disconnected.
 */
export async function loadSession(request: Request): Promise<RequestSession | Record<string, unknown> | undefined> {
  const state = sessionState(request);
  if (state) return state.layer.load(state);
  return (request as any).session;
}

function setId(session: RequestSession, id: string): void {
  session[ID] = id;
}

/**
 * Copy stored data onto the session, as express-session does: a key the session already answers
 * (`id`, `cookie`, its methods, `__proto__` and the rest of Object's) is never taken from data.
 */
function assignData(session: RequestSession, data: SessionData): void {
  for (const [key, value] of Object.entries(data)) {
    if (!(key in session)) session[key] = value;
  }
}

function isEmpty(session: RequestSession): boolean {
  return Object.keys(session).every((key) => key === 'cookie');
}

/** The session's data as its store would serialise it, less the cookie (whose expiry slides by itself). */
function fingerprint(session: RequestSession): string {
  const { cookie: _cookie, ...data } = session;
  return JSON.stringify(data);
}

function settle(work: Promise<unknown>, callback?: (error?: unknown) => void): void {
  work.then(() => callback?.(), (error) => (callback ? callback(error) : logger.error(String(error))));
}
