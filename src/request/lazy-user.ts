import type { Request } from 'express';
import type { RequestUser } from '../anonymous-user.js';
import type { AuthService } from '../auth.service.js';

/**
 * `request.user` read for a logged-in request before the module's guard loaded it (in
 * middleware), or on a route that declared it never reads it.
 */
export class UserNotLoaded extends Error {
  constructor() {
    super(
      'request.user is not loaded here: AuthModule loads it in its guard, for routes where something reads it ' +
        '(a login or permission rule, @CurrentUser(), @Req(), a guard or an interceptor). In middleware, or ' +
        'elsewhere, use `await authService.getUser(request)`.',
    );
    this.name = 'UserNotLoaded';
  }
}

/** Put the loaded user on the request itself, as a plain value over the prototype's accessor. */
export function setUser(request: Request, user: RequestUser): true {
  Object.defineProperty(request, 'user', { value: user, writable: true, configurable: true, enumerable: true });
  return true;
}

/**
 * `request.user` until the guard sets it, and on routes that never load it: the user when it is
 * known without I/O (anonymous), else `UserNotLoaded`, never undefined. An accessor on the app's
 * request prototype (defined once), so a request pays nothing for it; assigning `request.user`
 * (as `login()` and the guard do) puts a plain value on the request itself.
 */
export function defineLazyUser(target: object, auth: AuthService): void {
  if (Object.hasOwn(target, LAZY_USER)) return;
  Object.defineProperties(target, {
    [LAZY_USER]: { value: true, configurable: true },
    user: {
      configurable: true,
      enumerable: false,
      get(this: Request) {
        const known = auth.peekUser(this);
        if (known) return known;
        throw new UserNotLoaded();
      },
      set(this: Request, user: RequestUser) {
        setUser(this, user);
      },
    },
  });
}

const LAZY_USER = Symbol('nestjs-session-auth:lazy-user');
