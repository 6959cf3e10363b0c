import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { AnonymousUser } from '../anonymous-user.js';

/** Injects `request.user`: the logged-in user or the `AnonymousUser`. */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext) => {
  const request = context.switchToHttp().getRequest();
  return request.user ?? new AnonymousUser();
});
