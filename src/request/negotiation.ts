import type { Request } from 'express';

/**
 * Whether to answer with a page rather than JSON: the request names HTML in its `Accept` header
 * and prefers it to JSON, and did not send JSON itself. A browser's navigation does; `fetch()`,
 * curl and API clients (`Accept: *\/*` or none) get JSON. One rule for the guard's 302-or-401,
 * the built-in views and their error pages.
 */
export function wantsHtml(request: Request): boolean {
  if (request.is?.('application/json')) return false;
  const accept = request.headers?.accept;
  if (typeof accept !== 'string' || !/\btext\/html\b|\bapplication\/xhtml\+xml\b/i.test(accept)) return false;
  return typeof request.accepts !== 'function' || request.accepts(['html', 'json']) === 'html';
}
