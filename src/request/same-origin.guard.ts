import { ForbiddenException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { requestHost } from './hosts.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** A state-changing request that a page of another site made the browser send. */
export class CrossOriginRequest extends ForbiddenException {
  constructor(origin: string) {
    super(
      `Origin checking failed: ${origin} does not match any trusted origins. ` +
        'Post from a page of this site, or add that origin to the trustedOrigins option.',
    );
    this.name = 'CrossOriginRequest';
  }
}

/**
 * Where a state-changing request came from, as browsers say it: the `Origin` header, else
 * `Sec-Fetch-Site`. Returns the offending origin when a page of another site (or a sandboxed
 * page, origin `null`) sent it, `null` when it is this site's own or a trusted origin's. A
 * request with neither header comes from no browser page and is let through (Django's
 * `CsrfViewMiddleware` origin check).
 */
export function foreignOrigin(request: Request, trustedOrigins: readonly string[]): string | null {
  if (SAFE_METHODS.has(request.method)) return null;
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== '') {
    const host = requestHost(request);
    const own = host ? `${request.protocol}://${host}` : undefined;
    const given = origin.toLowerCase();
    if (given === own || trustedOrigins.some((trusted) => originMatches(given, trusted))) return null;
    return origin;
  }
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `a ${site} page`;
  return null;
}

/** `https://*.example.com` matches any subdomain of example.com over https. */
function originMatches(origin: string, trusted: string): boolean {
  if (!trusted.includes('://*.')) return origin === trusted;
  const [scheme, domain] = trusted.split('://*.');
  return origin.startsWith(`${scheme}://`) && origin.slice(scheme.length + 3).endsWith(`.${domain}`);
}

/**
 * Refuses (403) a POST, PUT, PATCH or DELETE sent by a page of another site, before the handler
 * runs. Put it on a login route that takes JSON or form posts without a CSRF token: without it,
 * a page elsewhere can post the attacker's credentials and log the visitor's browser into the
 * attacker's account (login CSRF). `CsrfGuard` runs the same check before its token check.
 */
@Injectable()
export class SameOriginGuard implements CanActivate {
  constructor(@Inject(AUTH_CONFIG) private readonly config: AuthConfig) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<Request>();
    const origin = foreignOrigin(request, this.config.trustedOrigins);
    if (origin !== null) throw new CrossOriginRequest(origin);
    return true;
  }
}
