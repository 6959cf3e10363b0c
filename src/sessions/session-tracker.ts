import { Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { Request } from 'express';
import type { CookieOptions, SessionData } from 'express-session';
import { parse as parseCookies } from 'cookie';
import signature from 'cookie-signature';
import { existingStateOf, stateOf } from '../request/request-state.js';
import { prefetchedUserOf, type PrefetchedUser } from '../storage/prefetched-user.js';
import { appendSetCookie, clearCookie, rawResponse, responseOf, varyOn, type CookieAttributes } from '../request/platform.js';
import { defineSessionAccessors, hasSessionAccessors, type SessionAccessorSource } from './request-accessors.js';
import { assignData, clearData, fingerprint, isEmpty, RequestSession, type SessionCookie, type SessionKeeper } from './request-session.js';
import { hookResponse, type HookedResponse } from './response-hooks.js';
import type { SessionLayer } from './session-layer.js';
import { SessionNotLoaded, SessionsUnavailable, type SessionProvider } from './session.js';

/**
 * How each request gets its session from the app's `SessionLayer`, in the spirit of Django's
 * `SessionMiddleware`: the cookie is read and its signature verified only when the session is
 * first used (a request that never touches it costs no store read and no cookie work), the
 * session is loaded once, and it is saved as the response ends only if it changed, never for a
 * 5xx; a visitor who stored nothing gets no row and no cookie.
 */

declare module '../request/request-state.js' {
  interface RequestState {
    /** What the session layer tracks of the request's session. */
    sessionTracker?: SessionTracker;
  }
}

const LAYER = Symbol('nestjs-session-auth:session-layer');
const logger = new Logger('Sessions');

interface LayerHolder {
  [LAYER]?: SessionLayer;
}

function layerOf(request: object | undefined): SessionLayer | undefined {
  return (request as LayerHolder | undefined)?.[LAYER];
}

/** The tracker of the request's session, made on first use, when the module's layer answers for the request. */
export function trackerOf(request: Request): SessionTracker | undefined {
  const layer = layerOf(request);
  if (!layer) return undefined;
  const state = stateOf(request);
  return (state.sessionTracker ??= new SessionTracker(layer, request, rawResponse(responseOf(request))));
}

/**
 * Give every request made from `target` (an Express app's request prototype) its session, once:
 * accessors on the prototype, so a request costs nothing until its session is used (its tracker
 * is made then).
 */
export function installSessions(layer: SessionLayer, target: object): void {
  if (!Object.hasOwn(target, LAYER)) answerFor(target, layer);
}

/**
 * Make `layer` answer for one request (the accessors are on its prototype, defined once): on
 * Fastify, whose apps in one process can share a request prototype.
 */
export function claimRequest(layer: SessionLayer, request: object): void {
  const prototype = Object.getPrototypeOf(request);
  if (!hasSessionAccessors(prototype)) answerFor(prototype, layer);
  (request as LayerHolder)[LAYER] = layer;
}

/** Give this one request its session, whatever its prototype (a request made up in code, a WebSocket handshake's). */
export function attachSession(layer: SessionLayer, request: Request, response: unknown): void {
  answerFor(request, layer);
  stateOf(request).sessionTracker = new SessionTracker(layer, request, rawResponse(response));
}

/** `target` (a request prototype, or one request) answers to `layer`, with the session accessors. */
function answerFor(target: object, layer: SessionLayer): void {
  Object.defineProperty(target, LAYER, { value: layer, writable: true, configurable: true });
  defineSessionAccessors(target, accessors);
}

/** `request.session`, `request.sessionID` and `request.sessionStore`, answered by the request's tracker. */
const accessors: SessionAccessorSource = {
  storeFor: (request) => layerOf(request)!.store,
  sessionFor: (request) => trackerOf(request)!.current(),
  dropSession: (request) => {
    const session = trackerOf(request)!.session;
    if (session) void session.flush();
  },
  sessionIdFor: (request) => trackerOf(request)!.session?.id,
};

/**
 * What the layer knows about one request's session: the cookie's verified id, the session once
 * loaded, whether it is stored and what was last saved. It decides when the session is written
 * and when the cookie goes out.
 */
export class SessionTracker implements SessionProvider, SessionKeeper, HookedResponse {
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
    hookResponse(response, this, hookedTracker);
  }
}

/** The tracker of the request a response answers, once the layer hooked that response. */
function hookedTracker(response: ServerResponse): SessionTracker | undefined {
  const tracker = existingStateOf(response.req)?.sessionTracker;
  return tracker?.hooked && tracker.response === response ? tracker : undefined;
}
