import { Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { Request } from 'express';
import type { CookieOptions, SessionData, Store } from 'express-session';
import { parse as parseCookies } from 'cookie';
import signature from 'cookie-signature';
import { randomBytes } from 'node:crypto';
import { DEFAULT_SESSION_AGE_MS } from '../auth.constants.js';
import { existingStateOf, stateOf } from '../request/request-state.js';
import { prefetchedUserOf, type PrefetchedUser } from '../storage/prefetched-user.js';
import { appendSetCookie, clearCookie, isSecureRequest, rawResponse, responseOf, varyOn, type CookieAttributes } from '../request/platform.js';
import { defineSessionAccessors, hasSessionAccessors, type SessionAccessorSource } from './request-accessors.js';
import {
  assignData,
  clearData,
  Cookie,
  EXPIRY_SESSION_KEY,
  fingerprint,
  isEmpty,
  RequestSession,
  type SessionCookie,
  type SessionKeeper,
} from './request-session.js';
import { hookResponse, type HookedResponse } from './response-hooks.js';
import { SessionNotLoaded, SessionsUnavailable, type SessionProvider } from './session.js';

/**
 * The module's session layer, in the spirit of Django's `SessionMiddleware`: the cookie is read
 * and its signature verified only when the session is first used (a request that never touches
 * it costs no store read and no cookie work), the session is loaded once, and it is saved as the
 * response ends only if it changed, never for a 5xx; a visitor who stored nothing gets no row and
 * no cookie. It speaks express-session's contracts on both sides — any `Store`
 * (`TypeOrmSessionStore`, connect-redis, MemoryStore), its data format and its signed cookie
 * (`s:<id>.<signature>`) — so sessions of earlier releases stay valid. It replaces
 * express-session's middleware, which loads every session eagerly.
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

declare module '../request/request-state.js' {
  interface RequestState {
    /** The session layer's record of the request's session. */
    sessionRecord?: SessionRecord;
  }
}

/** Verified cookie values remembered at most; the oldest is forgotten first. */
const MAX_REMEMBERED_COOKIES = 10_000;
const LAYER = Symbol('nestjs-session-auth:session-layer');
const logger = new Logger('Sessions');

interface LayerHolder {
  [LAYER]?: SessionLayer;
}

function layerOf(request: object | undefined): SessionLayer | undefined {
  return (request as LayerHolder | undefined)?.[LAYER];
}

/** The layer that answers for a request given the accessors (they are defined only along with it). */
const answeringLayer = (request: Request): SessionLayer => layerOf(request)!;

/** The layer's record of the request's session, when the module's layer answers for the request. */
export function recordOf(request: Request): SessionRecord | undefined {
  return layerOf(request)?.recordFor(request);
}

/** Install the layer on requests and answer for the sessions of every request. */
export class SessionLayer implements SessionAccessorSource {
  private ready = true;
  /** Signed cookie values already verified, and their session id: a logged-in browser sends the same one each time. */
  private readonly verified = new Map<string, string>();
  /** The session cookie's options and secrets, as the CSRF cookie follows them. */
  readonly moduleCookie: { options: CookieOptions; secrets: string[] };

  constructor(readonly settings: SessionSettings) {
    settings.store.on?.('disconnect', () => (this.ready = false));
    settings.store.on?.('connect', () => (this.ready = true));
    this.moduleCookie = { options: settings.cookie, secrets: settings.secrets };
  }

  /**
   * Give every request of an Express app its session, once: accessors on the app's request
   * prototype, so a request costs nothing until its session is used (its record is made then).
   * A request whose prototype is no app's (one made up in code) gets the accessors itself.
   */
  install(request: Request): void {
    const prototype = Object.getPrototypeOf(request);
    this.installOn(prototype && prototype !== Object.prototype ? prototype : request);
  }

  installOn(target: object): void {
    if (!Object.hasOwn(target, LAYER)) this.answerFor(target);
  }

  /**
   * Make this layer answer for one request (the accessors are on its prototype, defined once):
   * on Fastify, whose apps in one process can share a request prototype.
   */
  claim(request: object): void {
    const prototype = Object.getPrototypeOf(request);
    if (!hasSessionAccessors(prototype)) this.answerFor(prototype);
    (request as LayerHolder)[LAYER] = this;
  }

  /** Give this one request its session, whatever its prototype (a request made up in code). */
  attach(request: Request, response: unknown): void {
    this.answerFor(request);
    stateOf(request).sessionRecord = new SessionRecord(this, request, rawResponse(response));
  }

  /** The record of the request's session, made on first use. */
  recordFor(request: Request): SessionRecord {
    const state = stateOf(request);
    return (state.sessionRecord ??= new SessionRecord(this, request, rawResponse(responseOf(request))));
  }

  get store(): Store {
    return this.settings.store;
  }

  get isReady(): boolean {
    return this.ready;
  }

  sessionFor(request: Request): RequestSession | undefined {
    return this.recordFor(request).current();
  }

  dropSession(request: Request): void {
    const session = this.recordFor(request).session;
    if (session) void session.flush();
  }

  sessionIdFor(request: Request): string | undefined {
    return this.recordFor(request).session?.id;
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

  /** A new session's cookie: the configured attributes, and what they leave to the request (`secure: 'auto'`, `sameSite: 'auto'`). */
  newCookie(request: Request): SessionCookie {
    const cookie = new Cookie(this.settings.cookie);
    const { secure, sameSite } = this.settings.cookie as { secure?: unknown; sameSite?: unknown };
    if (secure === 'auto') cookie.secure = this.isSecure(request);
    if (sameSite === 'auto') cookie.sameSite = this.isSecure(request) ? 'none' : 'lax';
    return cookie;
  }

  /** The session id a signed cookie value carries, verified; `null` when forged. */
  verifiedId(raw: string): string | null {
    const known = this.verified.get(raw);
    if (known !== undefined) return known;
    for (const secret of this.settings.secrets) {
      const id = signature.unsign(raw.slice(2), secret);
      if (id === false) continue;
      // Only values whose signature checked are remembered: a forged one costs its HMAC every time.
      if (this.verified.size >= MAX_REMEMBERED_COOKIES) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(raw, id);
      return id;
    }
    return null;
  }

  read(id: string): Promise<SessionData | null | undefined> {
    // A store with a promise API of its own (the module's) is read without a callback in between.
    const store = this.settings.store as Store & { getData?(id: string): Promise<SessionData | null> };
    if (typeof store.getData === 'function') return store.getData(id);
    return new Promise((resolve, reject) => store.get(id, (error, data) => (error ? reject(error) : resolve(data))));
  }

  write(id: string, data: SessionData): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.settings.store.set(id, data, (error?: unknown) => (error ? reject(error) : resolve())),
    );
  }

  /** End a session in the store (the module's stores revoke it rather than delete it). */
  end(id: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.settings.store.destroy(id, (error?: unknown) => (error ? reject(error) : resolve())),
    );
  }

  isSecure(request: Request): boolean {
    if ((request.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
    if (this.settings.proxy === false) return false;
    if (this.settings.proxy !== true) return isSecureRequest(request);
    const header = String(request.headers['x-forwarded-proto'] ?? '');
    return header.split(',')[0].trim().toLowerCase() === 'https';
  }

  /** `target` (a request prototype, or one request) answers to this layer, with the session accessors. */
  private answerFor(target: object): void {
    Object.defineProperty(target, LAYER, { value: this, writable: true, configurable: true });
    defineSessionAccessors(target, answeringLayer);
  }
}

/**
 * What the layer knows about one request's session: the cookie's verified id, the session once
 * loaded, whether it is stored and what was last saved. It decides when the session is written
 * and when the cookie goes out.
 */
export class SessionRecord implements SessionProvider, SessionKeeper, HookedResponse {
  /** The session id the cookie carried, once verified (`null`: no valid cookie). */
  cookieId?: string | null;
  /** The loaded (or new) session; `undefined` until first use. */
  session?: RequestSession;
  private loading?: Promise<RequestSession | undefined>;
  /** Whether the session's current id has a row in the store. */
  stored = false;
  /** Fingerprint of the data as last loaded or written. */
  private savedHash = '';
  /** The store was not there: the request runs without a session. */
  private unavailable = false;
  hooked = false;
  headersSeen?: boolean;
  ending?: boolean;
  /** Written during this request: the store has it fresh, no touch needed. */
  private written = false;
  /** Fingerprint of the data as the response ended (what was saved, if anything). */
  private endHash?: string;
  /** The session the browser's cookie names was ended: clear the cookie unless a new one is stored. */
  private clearCookie?: boolean;
  /** The user row the store read along with the session, until the user resolver takes it. */
  private prefetchedUser?: PrefetchedUser;
  /** `setExpiry` changed the cookie: it goes out again even under the same id. */
  private expiryChanged?: boolean;

  constructor(
    readonly layer: SessionLayer,
    readonly request: Request,
    /** Node's response (under Express's, or under a Fastify reply); `undefined` for a request made up in code. */
    readonly response: ServerResponse | undefined,
  ) {}

  // How the request gets its session.

  load(): Promise<RequestSession | undefined> {
    if (this.session || this.unavailable) return Promise.resolve(this.session);
    this.loading ??= this.loadFromStore();
    return this.loading;
  }

  current(): RequestSession | undefined {
    if (this.session || this.unavailable) return this.session;
    if (this.verifiedCookieId() !== null) throw new SessionNotLoaded();
    if (!this.layer.isReady) {
      this.unavailable = true;
      return undefined;
    }
    return this.adopt(new RequestSession(this, this.layer.generateId()), false);
  }

  peek(): RequestSession | null | undefined {
    if (this.session) return this.session;
    if (this.unavailable) return null;
    return this.verifiedCookieId() === null ? null : undefined;
  }

  cookieName(): string | undefined {
    return this.verifiedCookieId() !== null ? this.layer.settings.name : undefined;
  }

  moduleCookie(): { options: CookieOptions; secrets: string[] } {
    return this.layer.moduleCookie;
  }

  takePrefetchedUser(): PrefetchedUser | undefined {
    const prefetched = this.prefetchedUser;
    this.prefetchedUser = undefined;
    return prefetched;
  }

  // What the session asks of its layer.

  get sessionAge(): number {
    return this.layer.sessionAge;
  }

  newCookie(): SessionCookie {
    return this.layer.newCookie(this.request);
  }

  applyExpiry(session: RequestSession): void {
    this.layer.applyExpiry(session);
  }

  noteExpiryChange(): void {
    this.expiryChanged = true;
  }

  async cycleKey(session: RequestSession): Promise<void> {
    this.prefetchedUser = undefined;
    const oldId = session.id;
    const wasStored = this.stored;
    const fresh = this.layer.generateId();
    session.id = fresh;
    this.stored = false;
    try {
      await this.write(session);
    } catch (error) {
      session.id = oldId;
      this.stored = wasStored;
      throw error;
    }
    if (wasStored) {
      try {
        await this.layer.end(oldId);
      } catch (error) {
        // Never leave both ids alive.
        await this.layer.end(fresh).catch(() => undefined);
        throw error;
      }
    }
  }

  async flush(session: RequestSession): Promise<void> {
    this.prefetchedUser = undefined;
    if (this.stored) await this.layer.end(session.id);
    if (this.cookieId === session.id) this.clearCookie = true;
    clearData(session);
    // The expiry goes with the data (Django's `flush` clears `_session_expiry` too).
    this.layer.applyExpiry(session);
    session.id = this.layer.generateId();
    this.stored = false;
    this.savedHash = fingerprint(session);
  }

  persist(session: RequestSession): Promise<void> {
    return this.write(session);
  }

  async reload(session: RequestSession): Promise<void> {
    this.prefetchedUser = undefined;
    const data = await this.layer.read(session.id);
    clearData(session);
    if (data) assignData(session, data);
    this.savedHash = fingerprint(session);
  }

  // The response's two moments (see `response-hooks.ts`).

  /**
   * As the headers go out: `Vary: Cookie` (the answer depended on the session, Django's
   * SessionMiddleware), the session cookie when one is due, and `Cache-Control: no-store` on a
   * response that sets or clears it. A 5xx sets no cookie.
   */
  beforeHeaders(): void {
    const response = this.response!;
    const { settings } = this.layer;
    varyOn(response, 'Cookie');
    const session = this.session;
    if (response.statusCode < 500 && session && this.cookieWanted() && (!session.cookie.secure || this.layer.isSecure(this.request))) {
      appendSetCookie(response, session.cookie.serialize(settings.name, `s:${signature.sign(session.id, settings.secrets[0])}`));
    }
    if (!response.hasHeader('Set-Cookie') && !this.clearCookie) return;
    const name = `${settings.name}=`;
    const cookies = [response.getHeader('Set-Cookie') ?? []].flat().map(String);
    let ours = cookies.some((line) => line.startsWith(name));
    if (!ours && this.clearCookie && session && !this.stored && isEmpty(session) && response.statusCode < 500) {
      // The session the cookie named was ended and nothing new was stored (Django's
      // SessionMiddleware deletes the cookie of an emptied session): the cookie goes too.
      const { path, domain, secure, sameSite, httpOnly } = session.cookie;
      const sent = { path, domain, secure: secure === 'auto' ? this.layer.isSecure(this.request) : secure, sameSite: sameSite as CookieAttributes['sameSite'], httpOnly };
      clearCookie(response, settings.name, sent);
      ours = true;
    }
    if (ours) response.setHeader('Cache-Control', 'no-store');
  }

  /** As the response ends: write a changed session, or let the store note the visit. Nothing for a 5xx. */
  atEnd(): Promise<void> | undefined {
    const session = this.session;
    if (!session || this.response!.statusCode >= 500) return undefined;
    this.endHash = fingerprint(session);
    if (this.mustSave()) return this.write(session, this.endHash);
    const store = this.layer.settings.store;
    if (this.stored && !this.written && typeof store.touch === 'function') {
      // A store that answers at once (nothing to write yet) does not hold the response back.
      let answered: { error?: unknown } | undefined;
      let settle: ((error?: unknown) => void) | undefined;
      store.touch(session.id, session as unknown as SessionData, (error?: unknown) => (settle ? settle(error) : (answered = { error })));
      if (answered) return answered.error ? Promise.reject(answered.error) : undefined;
      return new Promise((resolve, reject) => (settle = (error) => (error ? reject(error) : resolve())));
    }
    return undefined;
  }

  // The save policy.

  /**
   * Changed since loaded or written, and not empty (an empty new session is never stored). As
   * the response ends, the data is compared as it was then (`endHash`): what was saved.
   */
  private mustSave(): boolean {
    const session = this.session!;
    if (!this.stored) return !isEmpty(session);
    return (this.endHash ?? fingerprint(session)) !== this.savedHash;
  }

  /** A new id, a changed expiry, `rolling`, or a changed session whose cookie has an expiry to push forward. */
  private cookieWanted(): boolean {
    const session = this.session!;
    const changed = this.mustSave();
    if (!this.stored && !changed) return false;
    if (session.id !== this.cookieId || this.expiryChanged) return true;
    return this.layer.settings.rolling || (changed && session.cookie.expires != null);
  }

  private async write(session: RequestSession, hash = fingerprint(session)): Promise<void> {
    // As express-session does: the session object itself (stores serialise its own properties).
    await this.layer.write(session.id, session as unknown as SessionData);
    this.stored = true;
    this.written = true;
    // The data as it was handed to the store: a change made while the write ran is still unsaved.
    this.savedHash = hash;
  }

  private async loadFromStore(): Promise<RequestSession | undefined> {
    if (!this.layer.isReady) {
      this.unavailable = true;
      return undefined;
    }
    const id = this.verifiedCookieId();
    let data: SessionData | null | undefined;
    if (id !== null) {
      try {
        data = await this.layer.read(id);
      } catch (error) {
        logger.error(`Loading the session failed: ${(error as Error).message}`);
        throw new SessionsUnavailable();
      }
    }
    if (this.session) return this.session;
    if (id === null || !data) return this.adopt(new RequestSession(this, this.layer.generateId()), false);
    this.prefetchedUser = prefetchedUserOf(data);
    const loaded = this.adopt(new RequestSession(this, id, data), true);
    // The expiry slides with use, as express-session's does (the store decides when to write it).
    loaded.touch();
    return loaded;
  }

  private adopt(session: RequestSession, stored: boolean): RequestSession {
    this.session = session;
    this.stored = stored;
    // A new session is saved when it holds anything; only a stored one needs its data remembered.
    this.savedHash = stored ? fingerprint(session) : '';
    this.hook();
    return session;
  }

  /** The verified session id from the cookie, read once; `null` when absent or forged. */
  private verifiedCookieId(): string | null {
    if (this.cookieId !== undefined) return this.cookieId;
    this.cookieId = null;
    const name = this.layer.settings.name;
    const header = this.request.headers.cookie;
    if (typeof header !== 'string' || !header.includes(name)) return null;
    const raw = parseCookies(header)[name];
    if (typeof raw !== 'string' || !raw.startsWith('s:')) return null;
    return (this.cookieId = this.layer.verifiedId(raw));
  }

  /** Once a session exists for the request, its response's headers and end are the layer's business too. */
  private hook(): void {
    if (this.hooked) return;
    this.hooked = true;
    const response = this.response;
    // A request made up in code (forceLogin): nothing goes out.
    if (typeof response?.writeHead !== 'function') return;
    hookResponse(response, this, hookedRecord);
  }
}

/** The record of the request a response answers, once the layer hooked that response. */
function hookedRecord(response: ServerResponse): SessionRecord | undefined {
  const record = existingStateOf(response.req)?.sessionRecord;
  return record?.hooked && record.response === response ? record : undefined;
}
