import { ForbiddenException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { parse as parseCookies } from 'cookie';
import { csrfSync } from 'csrf-sync';
import { randomBytes } from 'node:crypto';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { CSRF_SESSION_KEY, SESSION_KEY } from '../auth.constants.js';
import { constantTimeEquals, saltedHmac } from '../signing.js';
import { currentSession, moduleSessionCookie, sessionToRead } from '../sessions/session-of.js';
import type { Session } from '../sessions/session.js';
import { clearCookie, headersSent, isSecureRequest, responseOf, setCookie } from './platform.js';
import { stateOf } from './request-state.js';
import { foreignOrigin } from './same-origin.guard.js';

export { CSRF_SESSION_KEY };

/** Hidden form field carrying the token (Django's name). */
export const CSRF_FIELD_NAME = 'csrfmiddlewaretoken';
/** Header a script sends the token in; Django's `X-CSRFToken` spelling is accepted too. */
export const CSRF_HEADER_NAME = 'x-csrf-token';
const DJANGO_CSRF_HEADER_NAME = 'x-csrftoken';

/**
 * Synchronizer tokens kept in the session, by csrf-sync. The token a request brings is read from
 * the header when there is one, else from the form field; anything that is not a string counts
 * as missing.
 */
const csrf = csrfSync({
  size: 32,
  getTokenFromState: (request) => {
    const token = sessionToRead(request)?.get(CSRF_SESSION_KEY);
    return typeof token === 'string' ? token : undefined;
  },
  storeTokenInState: (request, token) => {
    const session = currentSession(request);
    if (typeof token === 'string') session.set(CSRF_SESSION_KEY, token);
    else session.delete(CSRF_SESSION_KEY);
  },
  getTokenFromRequest: (request) => {
    const header = request.headers[CSRF_HEADER_NAME] ?? request.headers[DJANGO_CSRF_HEADER_NAME];
    if (header !== undefined) return typeof header === 'string' ? header : undefined;
    const field = (request.body as Record<string, unknown> | undefined)?.[CSRF_FIELD_NAME];
    return typeof field === 'string' ? field : undefined;
  },
});

/** Cookie holding an anonymous visitor's token (Django's `CSRF_COOKIE_NAME`). */
export const CSRF_COOKIE_NAME = 'csrftoken';
const COOKIE_SALT = 'nestjs-session-auth.csrf-cookie';
/** Django's CSRF_COOKIE_AGE: a year. */
const COOKIE_AGE_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * The token to put in a form's hidden `csrfmiddlewaretoken` input (or a script's
 * `X-CSRF-Token` header). A logged-in user's lives in their session. An anonymous visitor's lives
 * in a signed `csrftoken` cookie (a signed double-submit cookie, as Django keeps its token in a
 * cookie), so a visitor who only looks at the login page leaves no session row behind; the
 * signature keeps a cookie set by a neighbouring subdomain from counting.
 */
export function csrfToken(request: Request): string {
  const sessionCookie = moduleSessionCookie(request);
  if (!sessionCookie || !tokenInCookie(request)) return csrf.generateToken(request);
  const state = stateOf(request);
  const known = state.csrfCookieToken ?? cookieToken(request, sessionCookie.secrets);
  if (known) return known;
  const token = randomBytes(32).toString('hex');
  state.csrfCookieToken = token;
  const cookie = sessionCookie.options;
  const response = responseOf(request);
  if (response && !headersSent(response)) {
    setCookie(response, CSRF_COOKIE_NAME, `${token}.${sign(token, sessionCookie.secrets[0])}`, {
      httpOnly: true,
      sameSite: (cookie.sameSite as 'lax' | 'strict' | 'none' | undefined) ?? 'lax',
      secure: cookie.secure === 'auto' ? isSecureRequest(request) : !!cookie.secure,
      path: '/',
      maxAge: COOKIE_AGE_MS,
    });
  }
  return token;
}

/**
 * True when the request brings a token it may use: a logged-in user's session token; an
 * anonymous visitor's signed cookie token (or a token an earlier release kept in the session).
 * The comparison takes the same time wherever the first difference is.
 */
export function verifyCsrfToken(request: Request): boolean {
  const given = csrf.getTokenFromRequest(request);
  if (typeof given !== 'string') return false;
  const state = stateOf(request);
  const sessionCookie = moduleSessionCookie(request);
  const fromCookie = sessionCookie && tokenInCookie(request) ? (state.csrfCookieToken ?? cookieToken(request, sessionCookie.secrets)) : undefined;
  // A login earlier in this same request (e.g. by the remote-user middleware) replaced the token.
  return [csrf.getTokenFromState(request), fromCookie, state.csrfTokenBeforeLogin].some((stored) => sameToken(given, stored));
}

/**
 * At login, forget the token of before (Django's `rotate_token`): the session's goes with the
 * session's data, the anonymous visitor's cookie is cleared, and the same request may still use
 * either (its form was filled in before the login).
 */
export function rotateCsrfToken(request: Request, session: Session): void {
  const state = stateOf(request);
  const inSession = session.get(CSRF_SESSION_KEY);
  if (typeof inSession === 'string') state.csrfTokenBeforeLogin = inSession;
  const sessionCookie = moduleSessionCookie(request);
  if (!sessionCookie) return;
  const token = state.csrfCookieToken ?? cookieToken(request, sessionCookie.secrets);
  if (!token) return;
  state.csrfTokenBeforeLogin ??= token;
  state.csrfCookieToken = undefined;
  const response = responseOf(request);
  if (response && !headersSent(response)) clearCookie(response, CSRF_COOKIE_NAME, { path: '/' });
}

/**
 * Anonymous visitors of the module's own sessions keep their token in the cookie (the caller
 * checked that the module sets the session cookie), logged-in users in their session.
 */
function tokenInCookie(request: Request): boolean {
  // Not loaded and no session cookie: anonymous, known without making a session for it.
  const session = sessionToRead(request);
  return !session || session.get(SESSION_KEY) === undefined;
}

/** The token of a correctly signed `csrftoken` cookie, or `undefined`. */
function cookieToken(request: Request, secrets: string[]): string | undefined {
  const header = request.headers?.cookie;
  if (typeof header !== 'string' || !header.includes(CSRF_COOKIE_NAME)) return undefined;
  const value = parseCookies(header)[CSRF_COOKIE_NAME];
  const match = typeof value === 'string' ? /^([0-9a-f]{64})\.([A-Za-z0-9_-]{43})$/.exec(value) : null;
  if (!match) return undefined;
  return secrets.some((secret) => sameToken(match[2], sign(match[1], secret))) ? match[1] : undefined;
}

function sameToken(given: string, stored: string | null | undefined): boolean {
  return typeof stored === 'string' && stored !== '' && constantTimeEquals(given, stored);
}

function sign(token: string, secret: string): string {
  return saltedHmac(COOKIE_SALT, secret, token).toString('base64url');
}

/** The answer to a state-changing request without the session's CSRF token. */
export class CsrfFailure extends ForbiddenException {
  constructor(reason = 'reload the page and submit the form again') {
    super(`CSRF verification failed: ${reason}.`);
  }
}

/**
 * Refuses (403) a POST, PUT, PATCH or DELETE sent by a page of another site (its `Origin` or
 * `Sec-Fetch-Site`, as `SameOriginGuard`), or that does not carry the session's token, before
 * the handler runs. The built-in views use it; `@UseGuards(CsrfGuard)` protects your own forms.
 */
@Injectable()
export class CsrfGuard implements CanActivate {
  constructor(@Inject(AUTH_CONFIG) private readonly config: AuthConfig) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<Request>();
    if (['GET', 'HEAD', 'OPTIONS', 'TRACE'].includes(request.method)) return true;
    // Defence in depth: the token already stops other sites, the origin check holds even if one leaked.
    const origin = foreignOrigin(request, this.config.trustedOrigins);
    if (origin !== null) throw new CsrfFailure(`the form was sent from ${origin}, not from this site`);
    if (!verifyCsrfToken(request)) throw new CsrfFailure();
    return true;
  }
}
