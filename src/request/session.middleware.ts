import {
  Inject,
  Injectable,
  Logger,
  Optional,
  ServiceUnavailableException,
  type NestMiddleware,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ModuleRef } from '@nestjs/core';
import session, { type Store } from 'express-session';
import { DataSource } from 'typeorm';
import { AUTH_CONFIG, SESSION_COOKIE_DEFAULTS, type AuthConfig } from '../auth.config.js';
import { AnonymousUser } from '../anonymous-user.js';
import { AuthService } from '../auth.service.js';
import { ImproperlyConfigured } from '../errors.js';
import { AccessGuard, setLazyUser } from './access.guard.js';
import { appGuardsRunFirst } from './route-readers.js';
import { TypeOrmSessionStore } from '../storage/typeorm-session.store.js';

/**
 * express-session, configured once with safe defaults: nothing stored and no cookie for a visitor who
 * stored nothing, no write for a request that changed nothing, HttpOnly + SameSite=Lax cookies,
 * Secure in production. A store that fails answers 503; the request never continues with a
 * half-loaded session.
 */
@Injectable()
export class SessionHandler implements OnApplicationShutdown {
  private readonly logger = new Logger('SessionMiddleware');
  /** The store sessions live in; `undefined` with `session: false`. */
  readonly store?: Store;
  readonly cookieName?: string;
  readonly secrets: string[] = [];
  readonly handler?: RequestHandler;

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
    this.handler = session({
      secret: this.secrets,
      store: this.store,
      name: options.name,
      resave: false,
      saveUninitialized: false,
      rolling: options.rolling ?? false,
      proxy: options.proxy,
      cookie: { ...SESSION_COOKIE_DEFAULTS, secure: process.env.NODE_ENV === 'production', ...options.cookie },
    });
  }

  /** Run express-session for one request; rejects with a 503 when the store fails. */
  run(request: Request, response: Response): Promise<void> {
    if (!this.handler) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      this.handler!(request, response, (error?: unknown) => {
        if (settled) {
          // express-session reports late failures (saving at the end of a response) here.
          if (error) this.logger.error(`Saving the session failed: ${(error as Error).message}`);
          return;
        }
        settled = true;
        if (!error) {
          discardSessionChangesOnServerError(request, response, this.cookieName!);
          return resolve();
        }
        this.logger.error(`Loading the session failed: ${(error as Error).message}`);
        reject(new ServiceUnavailableException('Sessions are unavailable right now; please try again shortly.'));
      });
    });
  }

  onApplicationShutdown(): void {
    if (this.store instanceof TypeOrmSessionStore) this.store.close();
  }
}

/**
 * A request that ends in a 5xx saves nothing to the session (Django, B91): a handler that
 * failed half-way must not leave half its changes behind. express-session replaced `res.end`
 * while it ran; this wraps that, so it runs first and can turn the session's save into a no-op.
 */
function discardSessionChangesOnServerError(request: Request, response: Response, cookieName: string): void {
  const end = response.end;
  response.end = function (this: Response, ...args: unknown[]) {
    const session = (request as any).session;
    if (response.statusCode >= 500 && session) {
      Object.defineProperty(session, 'save', {
        configurable: true,
        enumerable: false,
        writable: true,
        value: (callback?: () => void) => callback && process.nextTick(callback),
      });
      // Nor does it hand out a cookie for a session that was never stored.
      const setHeader = response.setHeader;
      response.setHeader = function (this: Response, name: string, value: unknown) {
        if (name.toLowerCase() === 'set-cookie') {
          value = [value].flat().filter((cookie) => !String(cookie).startsWith(`${cookieName}=`));
        }
        return setHeader.call(this, name, value as string[]);
      } as Response['setHeader'];
    }
    return (end as (...a: unknown[]) => Response).apply(this, args);
  } as Response['end'];
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
    await this.sessions.run(request, response);
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
