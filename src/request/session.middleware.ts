import { Inject, Injectable, Logger, Optional, type NestMiddleware, type OnApplicationShutdown } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ModuleRef } from '@nestjs/core';
import type { Store } from 'express-session';
import { DataSource } from 'typeorm';
import { AUTH_CONFIG, SESSION_COOKIE_DEFAULTS, type AuthConfig } from '../auth.config.js';
import { AnonymousUser } from '../anonymous-user.js';
import { AuthService } from '../auth.service.js';
import { ImproperlyConfigured } from '../errors.js';
import { AccessGuard, setLazyUser } from './access.guard.js';
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
    this.cookieName = options.name;
    this.secrets = [options.secret].flat();
    this.layer = new SessionLayer({
      store: this.store,
      name: options.name,
      secrets: this.secrets,
      rolling: options.rolling ?? false,
      proxy: options.proxy,
      cookie: { ...SESSION_COOKIE_DEFAULTS, secure: process.env.NODE_ENV === 'production', ...options.cookie },
    });
  }

  /** Give the request its (not yet loaded) session. */
  attach(request: Request, response: Response): void {
    this.layer?.attach(request, response);
  }

  onApplicationShutdown(): void {
    if (this.store instanceof TypeOrmSessionStore) this.store.close();
  }
}

/**
 * Nest creates middleware instances apart from providers, so the middleware only delegates to
 * the one `SessionHandler` (and its one store) that services and tests share.
 */
@Injectable()
export class SessionMiddleware implements NestMiddleware {
  private readonly logger = new Logger('SessionMiddleware');
  /** An app guard runs before the module's: it must find `request.user` loaded. Known at the first request. */
  private guardsBeforeOurs?: boolean;

  constructor(
    private readonly sessions: SessionHandler,
    private readonly auth: AuthService,
    private readonly moduleRef: ModuleRef,
  ) {}

  async use(request: Request, response: Response, next: NextFunction): Promise<void> {
    this.sessions.attach(request, response);
    this.guardsBeforeOurs ??= appGuardsRunFirst(this.moduleRef, AccessGuard);
    if (this.guardsBeforeOurs) {
      (request as any).user = await this.auth.getUser(request).catch((error: Error) => {
        // Fail closed, as the guard does on open routes: rules still answer 5xx.
        this.logger.error(`Loading the request's user failed: ${error.message}`);
        return new AnonymousUser();
      });
    } else {
      // Until the guard loads it: the user when known without I/O, else a clear error, never undefined.
      setLazyUser(request, () => this.auth.peekUser(request));
    }
    next();
  }
}
