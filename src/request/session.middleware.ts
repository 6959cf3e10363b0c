import { Injectable, Logger, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ModuleRef } from '@nestjs/core';
import { AnonymousUser, type RequestUser } from '../anonymous-user.js';
import { AuthService } from '../auth.service.js';
import { SessionHandler } from '../sessions/session-handler.js';
import { AccessGuard } from './access.guard.js';
import { defineLazyUser } from './lazy-user.js';
import { appGuardsRunFirst } from './route-readers.js';

/**
 * For an app whose requests could not be given their accessors at start-up, or where an app
 * guard runs before the module's (global guards run in module order): gives each request its
 * session and lazy user, and loads the user before the guards. Nest creates middleware
 * instances apart from providers, so it delegates to the one `SessionHandler`.
 */
@Injectable()
export class SessionMiddleware implements NestMiddleware {
  private readonly logger = new Logger('SessionMiddleware');
  private guardsBeforeOurs?: boolean;

  constructor(
    private readonly sessions: SessionHandler,
    private readonly auth: AuthService,
    private readonly moduleRef: ModuleRef,
  ) {}

  use(request: Request, _response: Response, next: NextFunction): void {
    this.guardsBeforeOurs ??= appGuardsRunFirst(this.moduleRef, AccessGuard);
    this.sessions.install(request);
    prepareRequest(request, this.auth, this.guardsBeforeOurs, this.logger, next);
  }
}

/**
 * Give a request that has its session its lazy user (an accessor on its prototype, defined
 * once), and when the app's guards run before the module's, load the user before them. Used by
 * the middleware on Express and by an `onRequest` hook on Fastify.
 */
export function prepareRequest(request: Request, auth: AuthService, loadUser: boolean, logger: Logger, next: () => void): void {
  const prototype = Object.getPrototypeOf(request);
  defineLazyUser(prototype && prototype !== Object.prototype ? prototype : request, auth);
  if (!loadUser) return next();
  const withUser = request as Request & { user?: RequestUser };
  auth.getUser(request).then(
    (user) => {
      withUser.user = user;
      next();
    },
    (error: Error) => {
      // Fail closed, as the guard does on open routes: rules still answer 5xx.
      logger.error(`Loading the request's user failed: ${error.message}`);
      withUser.user = new AnonymousUser();
      next();
    },
  );
}

