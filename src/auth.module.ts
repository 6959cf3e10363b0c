import {
  Logger,
  Module,
  Optional,
  RequestMethod,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, HttpAdapterHost, ModuleRef } from '@nestjs/core';
import { AUTH_CONFIG, resolveAuthConfig, type AuthConfig } from './auth.config.js';
import { AuthEvents } from './auth.events.js';
import {
  AUTH_ASYNC_OPTIONS_TYPE,
  AUTH_OPTIONS,
  AUTH_OPTIONS_TYPE,
  ConfigurableAuthModule,
} from './auth.module-definition.js';
import type { AuthModuleOptions } from './auth.options.js';
import { AuthService } from './auth.service.js';
import { BackendRegistry } from './backends/backend.registry.js';
import { LoginThrottle } from './login-throttle.js';
import { PasswordResetTokens } from './password-reset-tokens.js';
import { PasswordHasher } from './passwords/password-hasher.js';
import { PermissionChecker } from './permission.checker.js';
import { PermissionManager } from './permission.manager.js';
import { AccessGuard, defineLazyUser } from './request/access.guard.js';
import { LoginRedirectFilter } from './request/login-redirect.js';
import { RetryLaterFilter } from './request/retry-later.filter.js';
import { appGuardsRunFirst } from './request/route-readers.js';
import { prepareRequest, SessionMiddleware } from './request/session.middleware.js';
import { SessionHandler } from './sessions/session-handler.js';
import { StartupChecks } from './startup-checks.js';
import { UserSessions } from './user-sessions.js';
import { noteReply } from './request/platform.js';
import { noteUpgradeRequests } from './request/socket-request.js';
import { HandshakeRequests } from './request/handshake-requests.js';
import { TypeOrmSessionStore } from './storage/typeorm-session.store.js';
import { ImproperlyConfigured } from './errors.js';
import { UserManager } from './user.manager.js';
import { ExternalUsers } from './external-users.js';
import { mountAuthViews, type AuthViewsMount } from './views/auth-views.mount.js';

/**
 * `AuthModule.forRoot({ backends: [...] })`: sessions, the per-request user, the access guard
 * and the services, for the whole app (the module is global).
 */
@Module({
  providers: [
    { provide: AUTH_CONFIG, useFactory: (options: AuthModuleOptions) => resolveAuthConfig(options), inject: [AUTH_OPTIONS] },
    AuthService,
    AuthEvents,
    BackendRegistry,
    LoginThrottle,
    PasswordHasher,
    PasswordResetTokens,
    PermissionChecker,
    PermissionManager,
    UserManager,
    ExternalUsers,
    SessionHandler,
    HandshakeRequests,
    UserSessions,
    StartupChecks,
    { provide: APP_GUARD, useClass: AccessGuard },
    { provide: APP_FILTER, useClass: LoginRedirectFilter },
    { provide: APP_FILTER, useClass: RetryLaterFilter },
  ],
  exports: [AUTH_CONFIG, AuthService, AuthEvents, PasswordResetTokens, BackendRegistry, PasswordHasher, PermissionChecker, PermissionManager, UserManager, ExternalUsers, SessionHandler, UserSessions],
})
export class AuthModule extends ConfigurableAuthModule implements NestModule, OnApplicationBootstrap {
  constructor(
    private readonly sessions: SessionHandler,
    private readonly auth: AuthService,
    private readonly moduleRef: ModuleRef,
    private readonly backends: BackendRegistry,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    // A `ws` gateway's clients keep no handshake request of their own: note it at the upgrade.
    const server = this.adapterHost?.httpAdapter?.getHttpServer?.();
    if (server && typeof server.on === 'function') noteUpgradeRequests(server);
    this.readUsersAlongSessions();
  }

  /**
   * With sessions in TypeORM and a backend that builds users from rows of a table beside them
   * (`sessionUserTable`, ModelBackend's), the session's user is read in the same statement as the session.
   */
  private readUsersAlongSessions(): void {
    const store = this.sessions.store;
    if (!(store instanceof TypeOrmSessionStore)) return;
    for (const { backend } of this.backends.all) {
      const table = backend.sessionUserTable?.();
      if (table && store.readUsersAlong(table.dataSource, table.entity)) return;
    }
  }

  /** `views: true` adds the built-in views' controller, at `loginUrl` for the login view. */
  static forRoot(options: typeof AUTH_OPTIONS_TYPE): DynamicModule {
    return mountAuthViews(super.forRoot(options), options);
  }

  /**
   * Options from a factory. Controllers are fixed before the factory runs: to mount the built-in
   * views, pass `views: true` (and `loginUrl` if not the default) here, next to `useFactory`.
   */
  static forRootAsync(options: typeof AUTH_ASYNC_OPTIONS_TYPE & AuthViewsMount): DynamicModule {
    const { views, loginUrl, ...asyncOptions } = options;
    return mountAuthViews(super.forRootAsync(asyncOptions), { views, loginUrl });
  }

  /**
   * Sessions (unless the app installs its own) and the lazy `request.user` for every request:
   * accessors on the Express app's request prototype, defined once here, so a request that uses
   * neither pays nothing, not even a middleware call. The middleware is mounted only where that
   * is not enough (see `SessionMiddleware`).
   */
  configure(consumer: MiddlewareConsumer): void {
    const adapter = this.adapterHost?.httpAdapter;
    const type = adapter?.getType?.();
    if (type === 'fastify') return this.configureFastify(adapter!.getInstance());
    if (type && type !== 'express') {
      // Sessions, cookies and the per-request user are built on Express's and Fastify's request
      // and response: on another adapter every login would fail later, and misleadingly.
      throw new ImproperlyConfigured(
        `AuthModule runs on Nest's Express and Fastify adapters (@nestjs/platform-express, @nestjs/platform-fastify); ` +
          `this app uses the '${type}' adapter (${adapter!.constructor.name}), which it does not support.`,
      );
    }
    const prototype = this.adapterHost?.httpAdapter?.getInstance?.()?.request;
    if (prototype && typeof prototype === 'object') {
      this.sessions.installOn(prototype);
      defineLazyUser(prototype, this.auth);
    }
    if (!prototype || appGuardsRunFirst(this.moduleRef, AccessGuard)) {
      consumer.apply(SessionMiddleware).forRoutes({ path: '*', method: RequestMethod.ALL });
    }
  }

  /**
   * On Fastify a request does not know its reply, and Nest middleware sees Node's request rather
   * than Fastify's: an `onRequest` hook notes the reply (the session cookie goes out through it)
   * and gives the request its session and lazy user, before any guard.
   */
  private configureFastify(instance: FastifyInstance): void {
    if (!this.sessions.layer) {
      throw new ImproperlyConfigured(
        'AuthModule keeps the sessions itself on Fastify: session: false is for Express apps that install ' +
          'express-session. Pass session: { secret, ... } instead.',
      );
    }
    this.sessions.platform = 'fastify';
    const loadUser = appGuardsRunFirst(this.moduleRef, AccessGuard);
    const logger = new Logger('AuthModule');
    instance.addHook('onRequest', (request: any, reply: object, done: () => void) => {
      noteReply(request, reply);
      prepareRequest(request, this.sessions, this.auth, loadUser, logger, done);
    });
  }
}

/** The slice of a Fastify instance the module uses. */
interface FastifyInstance {
  addHook(name: 'onRequest', hook: (request: any, reply: object, done: () => void) => void): unknown;
}
