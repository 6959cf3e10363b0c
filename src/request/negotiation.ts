import type { IncomingMessage } from 'node:http';
import accepts from 'accepts';
import typeIs from 'type-is';

/**
 * Whether to answer with a page rather than JSON: the request names HTML in its `Accept` header
 * and prefers it to JSON, and did not send JSON itself. A browser's navigation does; `fetch()`,
 * curl and API clients (`Accept: *\/*` or none) get JSON. One rule for the guard's 302-or-401,
 * the built-in views and their error pages, read from the headers alone (the same on Express,
 * Fastify and a request made from a WebSocket handshake).
 */
export function wantsHtml(request: { headers?: IncomingMessage['headers'] }): boolean {
  const headers = request.headers;
  if (!headers) return false;
  const accept = headers.accept;
  if (typeof accept !== 'string' || !/\btext\/html\b|\bapplication\/xhtml\+xml\b/i.test(accept)) return false;
  if (typeIs({ headers } as IncomingMessage, ['application/json'])) return false;
  return accepts({ headers } as IncomingMessage).type(['html', 'json']) === 'html';
}
