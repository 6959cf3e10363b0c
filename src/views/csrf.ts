import { ForbiddenException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { csrfSync } from 'csrf-sync';
import { timingSafeEqual } from 'node:crypto';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { CSRF_SESSION_KEY, CSRF_TOKEN_BEFORE_LOGIN } from '../auth.constants.js';
import { foreignOrigin } from '../request/same-origin.guard.js';
import { requireSession } from '../request/session-lifecycle.js';

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
    const token = (request as any).session?.[CSRF_SESSION_KEY];
    return typeof token === 'string' ? token : undefined;
  },
  storeTokenInState: (request, token) => {
    const session = requireSession(request);
    if (typeof token === 'string') session[CSRF_SESSION_KEY] = token;
    else delete session[CSRF_SESSION_KEY];
  },
  getTokenFromRequest: (request) => {
    const header = request.headers[CSRF_HEADER_NAME] ?? request.headers[DJANGO_CSRF_HEADER_NAME];
    if (header !== undefined) return typeof header === 'string' ? header : undefined;
    const field = (request.body as Record<string, unknown> | undefined)?.[CSRF_FIELD_NAME];
    return typeof field === 'string' ? field : undefined;
  },
});

/**
 * The token to put in a form's hidden `csrfmiddlewaretoken` input (or a script's
 * `X-CSRF-Token` header). The first call stores it in the session, so the visitor gets one.
 */
export function csrfToken(request: Request): string {
  return csrf.generateToken(request);
}

/**
 * True when the request brings the session's token. csrf-sync compares with `===`; the
 * comparison here takes the same time wherever the first difference is.
 */
export function verifyCsrfToken(request: Request): boolean {
  const given = csrf.getTokenFromRequest(request);
  if (typeof given !== 'string') return false;
  // A login earlier in this same request (e.g. by the remote-user middleware) replaced the token.
  const beforeLogin = (request as any)[CSRF_TOKEN_BEFORE_LOGIN] as string | undefined;
  return [csrf.getTokenFromState(request), beforeLogin].some((stored) => sameToken(given, stored));
}

function sameToken(given: string, stored: string | null | undefined): boolean {
  if (typeof stored !== 'string' || stored === '') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(stored);
  return a.length === b.length && timingSafeEqual(a, b);
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
