import { RequestMethod } from '@nestjs/common';
import { AccessGuard } from '../request/access.guard.js';
import { defineLazyUser } from '../request/lazy-user.js';
import { appGuardsRunFirst } from '../request/route-readers.js';
import { SessionMiddleware } from '../request/session.middleware.js';
import type { HttpPlatform } from './http-platform.js';

/**
 * Express: sessions (unless the app installs its own) and the lazy `request.user` are accessors
 * on the app's request prototype, defined once here, so a request that uses neither pays
 * nothing, not even a middleware call. The middleware is mounted only where that is not enough
 * (no prototype to give them to, or an app guard that runs before the module's: see `SessionMiddleware`).
 */
export const expressPlatform: HttpPlatform = {
  install(instance, { consumer, sessions, auth, moduleRef }) {
    const prototype = instance?.request;
    if (prototype && typeof prototype === 'object') {
      sessions.installOn(prototype);
      defineLazyUser(prototype, auth);
    }
    if (!prototype || appGuardsRunFirst(moduleRef, AccessGuard)) {
      consumer.apply(SessionMiddleware).forRoutes({ path: '*', method: RequestMethod.ALL });
    }
  },
};
