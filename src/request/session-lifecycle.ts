import { parse as parseCookies } from 'cookie';
import type { Request } from 'express';
import type { Session, SessionData } from 'express-session';
import { loadSession, RequestSession as OwnSession, sessionState, SessionsUnavailable } from './session.js';

/**
 * The session operations the workflow needs, on the module's own session layer or, with
 * `session: false`, on the express-session the app installed (through its public API).
 */

type RequestSession = Session & Partial<SessionData> & Record<string, unknown>;

/** The request's session, already loaded, or a 503 when the store could not provide one. */
export function requireSession(request: Request): RequestSession {
  const session = (request as any).session as RequestSession | undefined;
  if (!session || (!sessionState(request) && !(request as any).sessionStore)) {
    // The store is disconnected: the request runs without a session.
    throw new SessionsUnavailable();
  }
  return session;
}

/** Load the request's session if needed, or a 503 when the store cannot provide one. */
export async function requireLoadedSession(request: Request): Promise<RequestSession> {
  if (!(await loadSession(request))) throw new SessionsUnavailable();
  return requireSession(request);
}

/**
 * The name of the cookie that carried this request's session id, when that session is stored.
 * express-session signs the id as `s:<id>.<signature>` and only adopts an id whose signature
 * checks and whose row exists, so a cookie carrying exactly the current id means the session is
 * stored.
 */
export function storedSessionCookieName(request: Request): string | undefined {
  const state = sessionState(request);
  if (state) return state.layer.hasSessionCookie(state) ? state.layer.settings.name : undefined;
  const header = request.headers?.cookie;
  const id = (request as any).sessionID;
  if (!header || typeof id !== 'string') return undefined;
  const cookies = parseCookies(header);
  return Object.keys(cookies).find((name) => cookies[name]?.startsWith(`s:${id}.`));
}

/**
 * Move the request to a new session id (session fixation defence) holding `data`, and write it
 * now. The new session is stored before the old one is ended, so a store failure loses nothing:
 * the request keeps its old session and the error propagates. If ending the old one fails, the
 * new one is ended too, so no id is left both alive and logged in. A session that was never
 * stored is not ended (no pointless write).
 */
export async function rotateSessionId(request: Request, data: Record<string, unknown>): Promise<RequestSession> {
  const current = await requireLoadedSession(request);
  if (current instanceof OwnSession) {
    const previous = sessionData(current);
    replaceData(current, data);
    try {
      await current.cycleKey();
    } catch (error) {
      replaceData(current, previous);
      throw error;
    }
    return current as unknown as RequestSession;
  }
  // An app-installed express-session: its own regenerate and save.
  await callbackToPromise((done) => current.regenerate(done));
  const fresh = (request as any).session as RequestSession;
  Object.assign(fresh, data);
  await callbackToPromise((done) => fresh.save(done));
  return fresh;
}

function replaceData(session: Record<string, unknown>, data: Record<string, unknown>): void {
  for (const key of Object.keys(session)) if (key !== 'cookie') delete session[key];
  Object.assign(session, data);
}

/** Copy of the session's own data, without the cookie. */
export function sessionData(session: RequestSession): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(session)) {
    if (key !== 'cookie') data[key] = value;
  }
  return data;
}

/**
 * End the session and go on with a new, empty one (Django's `flush()`): every key goes, the old
 * id is ended in the store, and the browser's cookie is cleared unless something is stored anew.
 */
export async function flushSession(request: Request): Promise<void> {
  const session = await requireLoadedSession(request);
  if (session instanceof OwnSession) return session.flush();
  // An app-installed express-session: a new empty session, the old one destroyed.
  await callbackToPromise((done) => session.regenerate(done));
}

/**
 * End the session in the store. The request goes on with a new, empty session, stored only if
 * something is put in it (a flash message after logout).
 */
export async function destroySession(request: Request): Promise<void> {
  const state = sessionState(request);
  if (state) {
    const session = await loadSession(request);
    if (session instanceof OwnSession) await session.flush();
    return;
  }
  const session = (request as any).session as RequestSession | undefined;
  if (!session) return;
  await callbackToPromise((done) => session.destroy(done));
}

/**
 * Django's `set_expiry` on the request's session (see `RequestSession.setExpiry`). With an
 * app-installed express-session: its cookie's `maxAge` (`0`: no `Expires`, the cookie ends with
 * the browser).
 */
export async function setSessionExpiry(request: Request, value: number | Date | null): Promise<void> {
  const session = await requireLoadedSession(request);
  if (session instanceof OwnSession) {
    session.setExpiry(value);
    return;
  }
  const cookie = session.cookie as unknown as { maxAge: number | null; expires: Date | null; originalMaxAge: number | null };
  if (value instanceof Date) cookie.expires = value;
  else if (value === 0) cookie.expires = null;
  else if (typeof value === 'number') cookie.maxAge = value * 1000;
  else cookie.maxAge = cookie.originalMaxAge;
}

function callbackToPromise(run: (done: (error?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}
