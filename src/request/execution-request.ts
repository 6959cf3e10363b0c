import type { ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { messageRequestOf } from './socket-request.js';

/**
 * The HTTP request behind a handler's execution context: an HTTP route's own, the one that
 * carried a GraphQL operation (the GraphQL context's `req`, which Nest's Apollo driver always
 * sets), or for a WebSocket message the request the module's guard made from the connection's
 * handshake (see `socket-request.ts`). `undefined` where there is none (RPC, a GraphQL
 * subscription over a WebSocket).
 */
export function httpRequestOf(context: ExecutionContext): Request | undefined {
  const type = context.getType<string>();
  if (type === 'http') return context.switchToHttp().getRequest<Request>();
  if (type === 'ws') return messageRequestOf(context);
  if (type === 'graphql') {
    const graphqlContext = context.getArgByIndex<{ req?: unknown } | undefined>(2);
    const request = graphqlContext?.req;
    return isHttpRequest(request) ? request : undefined;
  }
  return undefined;
}

function isHttpRequest(value: unknown): value is Request {
  return typeof value === 'object' && value !== null && typeof (value as { headers?: unknown }).headers === 'object';
}
