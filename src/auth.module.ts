import {
  Module,
  Optional,
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
import { AccessGuard } from './request/access.guard.js';
import { LoginRedirectFilter } from './request/login-redirect.js';
import { RetryLaterFilter } from './request/retry-later.filter.js';
import { SessionHandler } from './sessions/session-handler.js';
import { StartupChecks } from './startup-checks.js';
import { UserSessions } from './user-sessions.js';
import { HandshakeRequests } from './transports/handshake-requests.js';
import { httpPlatformOf } from './transports/http-platforms.js';
import { noteUpgradeRequests } from './transports/websocket.transport.js';
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
  exports: [AUTH_CONFIG, AuthService, AuthEvents, PasswordResetTokens, BackendRegistry, PasswordHasher, PermissionManager, UserManager, ExternalUsers, SessionHandler, UserSessions],
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
    for (const { backend } of this.backends.all) {
      const table = backend.sessionUserTable?.();
      if (table && this.sessions.readUsersAlong(table.dataSource, table.entity)) return;
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
   * Sessions (unless the app installs its own) and the lazy `request.user` for every request,
   * set up the way the app's HTTP platform allows at the least cost per request (see
   * `expressPlatform`, `fastifyPlatform`); another adapter is refused here.
   */
  configure(consumer: MiddlewareConsumer): void {
    const adapter = this.adapterHost?.httpAdapter;
    httpPlatformOf(adapter).install(adapter?.getInstance?.(), { consumer, sessions: this.sessions, auth: this.auth, moduleRef: this.moduleRef });
  }
}
