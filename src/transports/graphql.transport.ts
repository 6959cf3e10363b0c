import { ForbiddenException } from '@nestjs/common';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import typeIs from 'type-is';
import { responseOf, type HttpResponse } from '../request/platform.js';
import { refuseWithoutRequest, rethrow, withRefusalCode, type RequestFromHandshake, type Transport } from './transport.js';

/** What a GraphQL driver gives a resolver as its context (Apollo's holds the request, Mercurius's the reply too). */
interface GraphqlContext {
  req?: { extra?: { request?: unknown } };
  reply?: unknown;
}

/**
 * A GraphQL operation, on Apollo or Mercurius: judged by the HTTP request that carried it (the
 * context's `req`), or a subscription by its WebSocket's handshake. A resolver's fields and
 * arguments are its own business, so the user is always loaded. Refusals are errors coded
 * `UNAUTHENTICATED` and `FORBIDDEN`, never a redirect.
 */
export const graphqlTransport: Transport = {
  loadsUserOnBlindRoutes: true,
  answersOverHttp: false,
  requestOf(context, make) {
    const graphqlContext = context.getArgByIndex<GraphqlContext | undefined>(2);
    const req = graphqlContext?.req;
    if (isHttpRequest(req) && !isWebSocketHandshake(req)) return req;
    return graphqlContext && typeof graphqlContext === 'object' ? subscriptionRequestOf(graphqlContext, make) : undefined;
  },
  screen(request) {
    // A page of another site can make the browser send this with the visitor's cookie.
    if (sentWithoutPreflight(request)) throw withRefusalCode(new ForbiddenException(PREFLIGHT_REQUIRED));
  },
  refuseUnjudged: refuseWithoutRequest,
  // The refusal carries its code itself: a subscription's errors are not formatted by the driver as an operation's are.
  refusal: withRefusalCode,
  raise: rethrow,
  responseOf(host) {
    const graphqlContext = host.getArgByIndex<GraphqlContext | undefined>(2);
    return (graphqlContext?.reply as HttpResponse | undefined) ?? responseOf(graphqlContext?.req);
  },
};

/**
 * A GraphQL subscription over a WebSocket (graphql-ws) is judged, like a gateway message, by the
 * session of its connection's handshake (Apollo's `extra.request`, which the driver puts in the
 * context's `req`; with Mercurius, `req` is Fastify's request of the handshake): a request made
 * from it by `make` for the operation, the same for every guard and decorator of it.
 */
const subscriptionRequests = new WeakMap<object, Request>();

function subscriptionRequestOf(graphqlContext: GraphqlContext, make: RequestFromHandshake | undefined): Request | undefined {
  const known = subscriptionRequests.get(graphqlContext);
  if (known || !make) return known;
  const req = graphqlContext.req;
  const given = isHttpRequest(req) ? req : req?.extra?.request;
  if (!isHttpRequest(given)) return undefined;
  const raw = (given as { raw?: unknown }).raw;
  const request = make((isHttpRequest(raw) ? raw : given) as unknown as IncomingMessage);
  subscriptionRequests.set(graphqlContext, request);
  return request;
}

function isHttpRequest(value: unknown): value is Request {
  return typeof value === 'object' && value !== null && typeof (value as { headers?: unknown }).headers === 'object';
}

/** The request that opened a WebSocket (Mercurius gives a subscription's resolvers Fastify's request of it). */
function isWebSocketHandshake(request: Request): boolean {
  const upgrade = request.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

const PREFLIGHT_REQUIRED =
  'GraphQL operations over HTTP POST must be sent as application/json: a page of another site can send this ' +
  'content type with the visitor’s cookie without asking first (CSRF).';

/**
 * A GraphQL POST a page of another site can make a browser send, cookie included, without a CORS
 * preflight: a "simple" content type (a form, `text/plain`) or none. Refused before any resolver
 * runs, so no mutation (a login, say) runs for another site (Apollo's `csrfPrevention`, for
 * every driver). A request carrying a header that forces a preflight is let through (Apollo's
 * `Apollo-Require-Preflight` and `X-Apollo-Operation-Name`, used by file uploads).
 */
function sentWithoutPreflight(request: Request): boolean {
  if (request.method !== 'POST') return false;
  const headers = request.headers;
  if (headers['apollo-require-preflight'] || headers['x-apollo-operation-name']) return false;
  const type = headers['content-type'];
  if (typeof type !== 'string' || type === '') return true;
  return typeIs.is(type, ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']) !== false;
}
