import type { ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';

/**
 * The HTTP request behind a handler's execution context: an HTTP route's own, or the one that
 * carried a GraphQL operation (the GraphQL context's `req`, which Nest's Apollo driver always
 * sets). `undefined` where there is none: a GraphQL subscription over a WebSocket, RPC, a gateway.
 */
export function httpRequestOf(context: ExecutionContext): Request | undefined {
  const type = context.getType<string>();
  if (type === 'http') return context.switchToHttp().getRequest<Request>();
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
