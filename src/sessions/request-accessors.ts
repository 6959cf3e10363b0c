import type { Request } from 'express';
import type { Store } from 'express-session';

/**
 * `request.session`, `request.sessionID` and `request.sessionStore` (express-session's names, so
 * app code written against it keeps working), defined once on a request prototype: a request
 * costs nothing until its session is used.
 */

/** What answers the accessors of a request. */
export interface SessionAccessorSource {
  storeFor(request: Request): Store;
  /** `request.session`: the session when it is available without I/O. */
  sessionFor(request: Request): unknown;
  /** `request.session = null`: express-session's way to drop a session. */
  dropSession(request: Request): void;
  sessionIdFor(request: Request): string | undefined;
}

const ACCESSORS = Symbol('nestjs-session-auth:session-accessors');

/** Whether `target` already has the accessors (a prototype Fastify apps of one process share, say). */
export function hasSessionAccessors(target: object): boolean {
  return Object.hasOwn(target, ACCESSORS);
}

/** Define the accessors on `target`, once. */
export function defineSessionAccessors(target: object, source: SessionAccessorSource): void {
  if (hasSessionAccessors(target)) return;
  Object.defineProperties(target, {
    [ACCESSORS]: { value: true, configurable: true },
    session: {
      configurable: true,
      get(this: Request) {
        return source.sessionFor(this);
      },
      set(this: Request, value: unknown) {
        if (value == null) source.dropSession(this);
      },
    },
    sessionID: {
      configurable: true,
      get(this: Request) {
        return source.sessionIdFor(this);
      },
    },
    sessionStore: {
      configurable: true,
      get(this: Request) {
        return source.storeFor(this);
      },
    },
  });
}
