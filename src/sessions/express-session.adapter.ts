import type { Request } from 'express';
import type { Session as AppSessionBase, SessionData } from 'express-session';
import { parse as parseCookies } from 'cookie';
import { DEFAULT_SESSION_AGE_MS } from '../auth.constants.js';
import { stateOf } from '../request/request-state.js';
import { checkedExpiry, type Session, type SessionProvider } from './session.js';

declare module '../request/request-state.js' {
  interface RequestState {
    /** With `session: false`, the app's express-session behind the module's `Session`. */
    appSession?: ExpressSessionAdapter;
  }
}

type AppSession = AppSessionBase & Partial<SessionData> & Record<string, unknown>;

interface AppSessionCookie {
  maxAge: number | null;
  expires: Date | null | undefined;
  originalMaxAge: number | null;
}

/**
 * With `session: false`, the express-session an app installed, behind the module's `Session`:
 * through express-session's public API only (`regenerate`, `save`, `destroy`, the cookie), so
 * the workflow calls one interface whichever sessions the app has. express-session loads every
 * session before the route, so there is nothing to load here.
 */
export class ExpressSessionAdapter implements Session, SessionProvider {
  private constructor(private readonly request: Request) {}

  /** The adapter over the request's express-session; `undefined` when the app installed none. */
  static of(request: Request): ExpressSessionAdapter | undefined {
    // express-session names its store on every request it sees, even while the store is away.
    if (!request?.sessionStore && !request?.session) return undefined;
    return (stateOf(request).appSession ??= new ExpressSessionAdapter(request));
  }

  private get session(): AppSession | undefined {
    return this.request.session as AppSession | undefined;
  }

  /** The session to write to: once `destroy`ed (logout), a new one, stored because something is put in it. */
  private live(): AppSession {
    if (!this.request.session) this.request.sessionStore.generate(this.request);
    return this.request.session as AppSession;
  }

  // SessionProvider: express-session has loaded the session already, or left none (store away).

  load(): Promise<Session | undefined> {
    return Promise.resolve(this.session ? this : undefined);
  }

  current(): Session {
    return this;
  }

  peek(): Session | null {
    return this.session ? this : null;
  }

  /** The cookie that carries the id signed as express-session signs it (`s:<id>.<signature>`). */
  cookieName(): string | undefined {
    const header = this.request.headers?.cookie;
    const id = this.request.sessionID;
    if (!header || typeof id !== 'string') return undefined;
    const cookies = parseCookies(header);
    return Object.keys(cookies).find((name) => cookies[name]?.startsWith(`s:${id}.`));
  }

  /** express-session sets its own cookie. */
  moduleCookie(): undefined {
    return undefined;
  }

  takePrefetchedUser(): undefined {
    return undefined;
  }

  // Session

  get id(): string | undefined {
    return this.session?.id;
  }

  get(key: string): unknown {
    return key === 'cookie' ? undefined : this.session?.[key];
  }

  set(key: string, value: unknown): void {
    const session = this.live();
    if (key === 'cookie' || (key in session && !Object.hasOwn(session, key))) {
      throw new TypeError(`'${key}' is a name the session itself uses; store the value under another key.`);
    }
    session[key] = value;
  }

  delete(key: string): void {
    const session = this.session;
    if (session && key !== 'cookie') delete session[key];
  }

  getData(): Record<string, unknown> {
    const data: Record<string, unknown> = {};
    const session = this.session;
    if (session) for (const key of Object.keys(session)) if (key !== 'cookie') data[key] = session[key];
    return data;
  }

  /** express-session's `regenerate` (the old session destroyed, a new id), the data put back, and `save`. */
  async cycleKey(data?: Record<string, unknown>): Promise<void> {
    const kept = data ?? this.getData();
    const current = this.live();
    await callbackToPromise((done) => current.regenerate(done));
    const fresh = this.live();
    Object.assign(fresh, kept);
    await callbackToPromise((done) => fresh.save(done));
  }

  /** express-session's `destroy`: a new session is made only when something is put in it. */
  async flush(): Promise<void> {
    const session = this.session;
    if (session) await callbackToPromise((done) => session.destroy(done));
  }

  /** The cookie's `maxAge` (`0`: no `Expires`, the cookie ends with the browser). */
  setExpiry(value: number | Date | null): void {
    const expiry = checkedExpiry(value);
    const cookie = this.live().cookie as unknown as AppSessionCookie;
    if (expiry instanceof Date) cookie.expires = expiry;
    else if (expiry === 0) cookie.expires = null;
    else if (typeof expiry === 'number') cookie.maxAge = expiry * 1000;
    else cookie.maxAge = cookie.originalMaxAge;
  }

  getExpiryAge(): number {
    return Math.max(0, Math.round((this.getExpiryDate().getTime() - Date.now()) / 1000));
  }

  getExpiryDate(): Date {
    const cookie = this.session?.cookie as unknown as AppSessionCookie | undefined;
    if (cookie?.expires instanceof Date) return cookie.expires;
    return new Date(Date.now() + (cookie?.originalMaxAge ?? DEFAULT_SESSION_AGE_MS));
  }

  getExpireAtBrowserClose(): boolean {
    return (this.session?.cookie as unknown as AppSessionCookie | undefined)?.expires == null;
  }

  async persist(): Promise<void> {
    const session = this.live();
    await callbackToPromise((done) => session.save(done));
  }
}

function callbackToPromise(run: (done: (error?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}
