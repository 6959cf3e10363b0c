import type { NextFunction, Request, Response } from 'express';
import { STYLE_HASH } from './views/style.js';

/**
 * Headers for every page. The pages show who is logged in and carry CSRF tokens, so nothing is
 * cached; they load no scripts and only their own stylesheet; no other site may frame them
 * (clickjacking) and forms only post back here.
 */
export function securityHeaders(_request: Request, response: Response, next: NextFunction): void {
  response.setHeader(
    'Content-Security-Policy',
    `default-src 'none'; style-src ${STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  );
  response.setHeader('X-Frame-Options', 'DENY');
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('Referrer-Policy', 'same-origin');
  response.setHeader('Cache-Control', 'no-store');
  next();
}
