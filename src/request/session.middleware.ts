import { Inject, Injectable, Logger, Optional, type NestMiddleware, type OnApplicationShutdown } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ModuleRef } from '@nestjs/core';
import type { Store } from 'express-session';
import { DataSource } from 'typeorm';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { AnonymousUser } from '../anonymous-user.js';
import { AuthService } from '../auth.service.js';
import { ImproperlyConfigured } from '../errors.js';
import { AccessGuard, defineLazyUser } from './access.guard.js';
import { appGuardsRunFirst } from './route-readers.js';
import { SessionLayer } from './session.js';
import { TypeOrmSessionStore } from '../storage/typeorm-session.store.js';

/**
 * The module's session layer (`SessionLayer`), configured once with safe defaults: nothing
 * stored and no cookie for a visitor who stored nothing, no write for a request that changed
 * nothing, HttpOnly + SameSite=Lax cookies, Secure in production. The session is loaded on first
 * use; a store that fails to load it answers 503, never a half-loaded session.
 */
@Injectable()
export class SessionHandler implements OnApplicationShutdown {
  /** The store sessions live in; `undefined` with `session: false`. */
  readonly store?: Store;
  readonly cookieName?: string;
  readonly secrets: string[] = [];
  readonly layer?: SessionLayer;
  /** The HTTP platform the app runs on, as the module found it at start-up. */
  platform: 'express' | 'fastify' = 'express';

  constructor(
    @Inject(AUTH_CONFIG) config: AuthConfig,
    @Optional() dataSource?: DataSource,
  ) {
    if (config.session === false) return;
    const options = config.session;
    if (!options.store && !dataSource) {
      throw new ImproperlyConfigured(
        'AuthModule stores sessions in TypeORM by default, but no DataSource is registered: import ' +
          'TypeOrmModule.forRoot({ ..., entities: [...authEntities] }) or pass session.store.',
      );
    }
    this.store = options.store ?? new TypeOrmSessionStore(dataSource!, options.storeOptions);
    if ((this.store as { revokeAware?: unknown }).revokeAware !== true) {
      new Logger('Sessions').warn(
        `The session store ${this.store.constructor.name} does not keep logouts: a request still running when a user ` +
          'logs out can save the session back to life. Use TypeOrmSessionStore on PostgreSQL, SQLite, MySQL or MariaDB, or RedisSessionStore.',
      );
    }
    this.cookieName = options.name;
    this.secrets = [options.secret].flat();
    this.layer = new SessionLayer({
      store: this.store,
      name: options.name,
      secrets: this.secrets,
      rolling: options.rolling ?? false,
      proxy: options.proxy,
      cookie: options.cookie,
    });
  }

  /** Make sure the request's app gives its requests sessions (once per app; nothing per request). */
  install(request: Request): void {
    this.layer?.install(request);
  }

  /** Make this app's layer answer for one request (Fastify: apps may share a request prototype). */
  claim(request: object): void {
    this.layer?.claim(request);
  }

  /** Give every request made from `prototype` (an Express app's `request`) its session. */
  installOn(prototype: object): void {
    this.layer?.installOn(prototype);
  }

  /** Give this one request its (not yet loaded) session, whatever its prototype (a request made up in code). */
  attach(request: Request, response: unknown): void {
    this.layer?.attach(request, response);
  }

  onApplicationShutdown(): void {
    if (this.store instanceof TypeOrmSessionStore) this.store.close();
  }
}

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
    prepareRequest(request, this.sessions, this.auth, this.guardsBeforeOurs, this.logger, next);
  }
}

/**
 * Give a request its session and lazy user (accessors on its prototype, defined once), and when
 * the app's guards run before the module's, load the user before them. Used by the middleware on
 * Express and by an `onRequest` hook on Fastify.
 */
export function prepareRequest(
  request: Request,
  sessions: SessionHandler,
  auth: AuthService,
  loadUser: boolean,
  logger: Logger,
  next: () => void,
): void {
  if (sessions.platform === 'fastify') sessions.claim(request);
  else sessions.install(request);
  const prototype = Object.getPrototypeOf(request);
  defineLazyUser(prototype && prototype !== Object.prototype ? prototype : request, auth);
  if (!loadUser) return next();
  auth.getUser(request).then(
    (user) => {
      (request as any).user = user;
      next();
    },
    (error: Error) => {
      // Fail closed, as the guard does on open routes: rules still answer 5xx.
      logger.error(`Loading the request's user failed: ${error.message}`);
      (request as any).user = new AnonymousUser();
      next();
    },
  );
}

