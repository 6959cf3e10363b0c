import type { NextFunction, Request, Response } from 'express';
import { STYLE_HASH } from './views/style.js';

/**
 * Headers for every page. The pages show who is logged in and carry CSRF tokens, so nothing is
 * cached; they load no scripts and only their own stylesheet; no other site may frame them
 * (clickjacking) and forms only post back here, or go on to `formTargets`: browsers hold the
 * redirects that follow a form to `form-action` too, so the "Log in with …" button, which posts
 * here and is sent on to the identity provider, needs the provider's origin there.
 */
export function securityHeaders({ formTargets = [] }: { formTargets?: string[] } = {}) {
  const policy =
    `default-src 'none'; style-src ${STYLE_HASH}; form-action ${["'self'", ...formTargets].join(' ')}; ` +
    "frame-ancestors 'none'; base-uri 'none'";
  return (_request: Request, response: Response, next: NextFunction): void => {
    response.setHeader('Content-Security-Policy', policy);
    response.setHeader('X-Frame-Options', 'DENY');
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Referrer-Policy', 'same-origin');
    response.setHeader('Cache-Control', 'no-store');
    next();
  };
}
