import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { requestOf } from '../transports/transports.js';

/**
 * Injects `request.user`: the logged-in user or the `AnonymousUser`. The module's guard loads it
 * for every route that uses this decorator; a request without one is an error, never an
 * anonymous user standing in for somebody who is logged in.
 */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext) => {
  const request = requestOf(context) as { user?: unknown } | undefined;
  const user = request?.user;
  if (user === undefined || user === null) {
    throw new Error(
      `@CurrentUser() found no user on this ${context.getType()} handler: the user is loaded by AuthModule's guard, ` +
        'for HTTP requests, GraphQL operations and WebSocket messages.',
    );
  }
  return user;
});
