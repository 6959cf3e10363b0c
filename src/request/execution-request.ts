import type { ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import { messageRequestOf } from './socket-request.js';

/**
 * The request behind a handler's execution context: an HTTP route's own, the one that carried a
 * GraphQL operation (the GraphQL context's `req`, which Nest's Apollo driver always sets), or, for
 * a WebSocket message or a GraphQL subscription, the request the module's guard made from the
 * connection's handshake (see `socket-request.ts`). `undefined` where there is none (RPC), or
 * where the guard has not made one yet.
 */
export function httpRequestOf(context: ExecutionContext): Request | undefined {
  const type = context.getType<string>();
  if (type === 'http') return context.switchToHttp().getRequest<Request>();
  if (type === 'ws') return messageRequestOf(context);
  if (type === 'graphql') {
    const graphqlContext = context.getArgByIndex<{ req?: unknown } | undefined>(2);
    const request = graphqlContext?.req;
    if (isHttpRequest(request) && !isWebSocketHandshake(request)) return request;
    return graphqlContext ? subscriptionRequests.get(graphqlContext) : undefined;
  }
  return undefined;
}

/**
 * A GraphQL subscription over a WebSocket (graphql-ws) is judged, like a gateway message, by the
 * session of its connection's handshake (Apollo's `extra.request`, which the driver puts in the
 * context's `req`; with Mercurius, `req` is Fastify's request of the handshake): a request made
 * from it by `make` for the operation, the same for every guard and decorator of it.
 */
const subscriptionRequests = new WeakMap<object, Request>();

export function subscriptionRequestOf(context: ExecutionContext, make: (handshake: IncomingMessage) => Request): Request | undefined {
  const graphqlContext = context.getArgByIndex<{ req?: { extra?: { request?: unknown } } } | undefined>(2);
  if (!graphqlContext || typeof graphqlContext !== 'object') return undefined;
  const known = subscriptionRequests.get(graphqlContext);
  if (known) return known;
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
