/**
 * `nestjs-session-auth`: the workflow a Nest app needs — the module and its options, the service
 * (permission checks included), decorators, backends, entities and stores, users and
 * permissions, errors. The rest sits under subpaths: `/passwords` (hashers, validators, reset
 * tokens), `/throttle` (lockout stores), `/csrf`, `/messages`, `/views` (the built-in views'
 * mailer), `/websockets` and `/testing`. What the module registers and uses itself (its guard,
 * session layer, backend registry, permission checker, options token) is not exported: an app
 * never registers or calls it.
 */
export { AuthModule } from './auth.module.js';
export type { AuthModuleOptions, SessionOptions } from './auth.options.js';
export { AuthService, type AuthenticateOptions } from './auth.service.js';
export { AuthEvents, type AuthEventMap, type AuthEventName } from './auth.events.js';
export { REDIRECT_FIELD_NAME } from './auth.constants.js';
export { AnonymousUser, isAuthenticated, type AuthenticatedUser, type RequestUser } from './anonymous-user.js';
export { PermissionDenied, ImproperlyConfigured, RetryLater } from './errors.js';
export { isSafeRedirectUrl, type SafeRedirectOptions } from './redirects.js';
export { SameOriginGuard, CrossOriginRequest } from './request/same-origin.guard.js';

export type { AuthBackend, Credentials } from './backends/auth-backend.interface.js';
export type { PrefetchedUser } from './storage/prefetched-user.js';
export { BaseBackend } from './backends/base.backend.js';
export { ModelBackend, AllowAllUsersModelBackend } from './backends/model.backend.js';
export { RemoteUserBackend, AllowAllUsersRemoteUserBackend, REMOTE_USER } from './backends/remote-user.backend.js';

export {
  LoginRequired,
  LoginNotRequired,
  PermissionRequired,
  UserPassesTest,
  type LoginRequiredOptions,
  type UserTest,
} from './decorators/access.decorators.js';
export { CurrentUser } from './decorators/current-user.decorator.js';
export type { Session } from './sessions/session.js';
export { SessionNotLoaded, SessionsUnavailable } from './sessions/session.js';
export { RequestSession, EXPIRY_SESSION_KEY } from './sessions/request-session.js';
export { sessionOf, loadSession, setSessionExpiry } from './sessions/session-of.js';
export type { UserSession } from './user-sessions.js';
export { UserNotLoaded } from './request/lazy-user.js';
export { RemoteUserMiddleware, PersistentRemoteUserMiddleware } from './request/remote-user.middleware.js';

export { User, Group, Permission, SessionRecord, LoginLockout, ExternalIdentity, authEntities, TypeOrmSessionStore } from './storage/index.js';
export { RedisSessionStore, type RedisSessionClient, type RedisSessionStoreOptions } from './storage/redis-session.store.js';
export type { TypeOrmSessionStoreOptions } from './storage/index.js';
export { UserManager, type CreateUserInput } from './user.manager.js';
export { ExternalUsers, type ExternalUser, type ExternalUserQuery, type LinkExistingUsers } from './external-users.js';
export {
  PermissionManager,
  type PermissionRef,
  type GroupRef,
  type UsersWithPermOptions,
} from './permission.manager.js';
