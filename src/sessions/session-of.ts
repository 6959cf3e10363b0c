import type { Request } from 'express';
import type { CookieOptions } from 'express-session';
import { ImproperlyConfigured } from '../errors.js';
import type { PrefetchedUser } from '../storage/prefetched-user.js';
import { ExpressSessionAdapter } from './express-session.adapter.js';
import type { RequestSession } from './request-session.js';
import { trackerOf } from './session-tracker.js';
import { SessionsUnavailable, type Session, type SessionProvider } from './session.js';

/**
 * The way to a request's session: the module's own, or with `session: false` the app's
 * express-session, behind the one `Session` interface. `sessionOf` loads it; the synchronous
 * variants are for code that cannot wait (a flash message, a CSRF token) or must not cause I/O
 * (is anybody logged in?).
 */

function providerOf(request: Request): SessionProvider | undefined {
  return trackerOf(request) ?? ExpressSessionAdapter.of(request);
}

function noSessions(): never {
  throw new ImproperlyConfigured(
    'This request has no session: let AuthModule keep the sessions (its session option), or with ' +
      'session: false install express-session before your routes.',
  );
}

/** The request's session, loaded (one store read at most); `503` while the store cannot provide it. */
export async function sessionOf(request: Request): Promise<Session> {
  const session = await (providerOf(request) ?? noSessions()).load();
  if (!session) throw new SessionsUnavailable();
  return session;
}

/** The request's session, loaded; `undefined` while the store is away or when the app has no sessions. */
export function findSession(request: Request): Promise<Session | undefined> {
  const provider = providerOf(request);
  return provider ? provider.load() : Promise.resolve(undefined);
}

/**
 * The request's session without I/O (what `request.session` gives): a new one for a visitor who
 * brought no cookie, `SessionNotLoaded` before a cookie's session is loaded, `503` while the
 * store is away.
 */
export function currentSession(request: Request): Session {
  const session = (providerOf(request) ?? noSessions()).current();
  if (!session) throw new SessionsUnavailable();
  return session;
}

/**
 * What is known of the request's session without I/O and without making one: the loaded
 * session; `null` when there is none to load (no valid cookie, the store away, no sessions);
 * `undefined` when one must be loaded first.
 */
export function peekSession(request: Request): Session | null | undefined {
  const provider = providerOf(request);
  return provider ? provider.peek() : null;
}

/**
 * The session to read from, without making one: `null` when there is none (nothing was stored
 * for this visitor); `SessionNotLoaded` before a cookie's session is loaded.
 */
export function sessionToRead(request: Request): Session | null {
  const known = peekSession(request);
  return known === undefined ? currentSession(request) : known;
}

/** The name of the cookie that brought the request's stored session, if one did. */
export function sessionCookieName(request: Request): string | undefined {
  return providerOf(request)?.cookieName();
}

/** The session cookie's options and signing secrets when the module sets it (not with the app's express-session). */
export function moduleSessionCookie(request: Request): { options: CookieOptions; secrets: string[] } | undefined {
  return providerOf(request)?.moduleCookie();
}

/**
 * The user row the store read along with the request's session, handed out once: the user
 * resolver takes it right after the load, while it is as fresh as the session itself.
 */
export function takePrefetchedUser(request: Request): PrefetchedUser | undefined {
  return providerOf(request)?.takePrefetchedUser();
}

/**
 * `request.session`, loaded if needed: the module's `RequestSession`, or the app's express-session
 * one (`session: false`). `undefined` while the store is disconnected. For middleware, which runs
 * before the module's guard loads the session.
 */
export async function loadSession(request: Request): Promise<RequestSession | Record<string, unknown> | undefined> {
  await providerOf(request)?.load();
  return request.session as RequestSession | Record<string, unknown> | undefined;
}

/** Django's `set_expiry` on the request's session (see `Session.setExpiry`). */
export async function setSessionExpiry(request: Request, value: number | Date | null): Promise<void> {
  (await sessionOf(request)).setExpiry(value);
}
