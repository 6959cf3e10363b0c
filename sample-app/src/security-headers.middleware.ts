import type { NextFunction, Request, Response } from 'express';
import { STYLE_HASH } from './views/style.js';

/**
 * Headers for every page. The pages show who is logged in and carry CSRF tokens, so nothing is
 * cached; they load no scripts and only their own stylesheet; no other site may frame them
 * (clickjacking) and forms only post back here, or go on to `formTargets`: browsers hold the
 * redirects that follow a form to `form-action` too, so the "Log in with …" button, which posts
 * here and is sent on to the identity provider, needs the provider's origin there.
 */
export function pageHeaders({ formTargets = [] }: { formTargets?: string[] } = {}): Record<string, string> {
  return {
    'Content-Security-Policy':
      `default-src 'none'; style-src ${STYLE_HASH}; form-action ${["'self'", ...formTargets].join(' ')}; ` +
      "frame-ancestors 'none'; base-uri 'none'",
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  };
}

/** `pageHeaders` on every response of the site. */
export function securityHeaders(options: { formTargets?: string[] } = {}) {
  const headers = Object.entries(pageHeaders(options));
  return (_request: Request, response: Response, next: NextFunction): void => {
    for (const [name, value] of headers) response.setHeader(name, value);
    next();
  };
}
