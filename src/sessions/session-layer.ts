import type { Request } from 'express';
import type { CookieOptions, SessionData, Store } from 'express-session';
import signature from 'cookie-signature';
import { randomBytes } from 'node:crypto';
import { DEFAULT_SESSION_AGE_MS } from '../auth.constants.js';
import { isSecureRequest } from '../request/platform.js';
import { Cookie, EXPIRY_SESSION_KEY, type RequestSession, type SessionCookie } from './request-session.js';

/**
 * The module's session layer, in the spirit of Django's `SessionMiddleware`, for one app: its
 * settings, its store, the signed cookies it has verified. What it does for each request (read
 * the cookie once, load the session once, save it only when it changed) is the request's
 * `SessionTracker`'s (`session-tracker.ts`). It speaks express-session's contracts on both sides
 * — any `Store` (`TypeOrmSessionStore`, connect-redis, MemoryStore), its data format and its
 * signed cookie (`s:<id>.<signature>`) — so sessions of earlier releases stay valid. It replaces
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

/** Verified cookie values remembered at most; the oldest is forgotten first. */
const MAX_REMEMBERED_COOKIES = 10_000;

/** One app's sessions: where they are stored, how their cookie is signed, how long they live. */
export class SessionLayer {
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

  get store(): Store {
    return this.settings.store;
  }

  /** `false` while the store says it is disconnected: requests then run without a session. */
  get isReady(): boolean {
    return this.ready;
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

  /** A session's data from the store; `null` or `undefined` when there is none. */
  read(id: string): Promise<SessionData | null | undefined> {
    // A store with a promise API of its own (the module's) is read without a callback in between.
    const store = this.settings.store as Store & { getData?(id: string): Promise<SessionData | null> };
    if (typeof store.getData === 'function') return store.getData(id);
    return new Promise((resolve, reject) => store.get(id, (error, data) => (error ? reject(error) : resolve(data))));
  }

  /** Store a session's data under `id` (as express-session does: the session object itself, which stores serialise). */
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

  /** Whether the request came over HTTPS, as the `proxy` setting says to judge it. */
  isSecure(request: Request): boolean {
    if ((request.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
    if (this.settings.proxy === false) return false;
    if (this.settings.proxy !== true) return isSecureRequest(request);
    const header = String(request.headers['x-forwarded-proto'] ?? '');
    return header.split(',')[0].trim().toLowerCase() === 'https';
  }
}
