export { AuthModule } from './auth.module.js';
export { AUTH_OPTIONS } from './auth.module-definition.js';
export type { AuthModuleOptions, SessionOptions } from './auth.options.js';
export { AuthService } from './auth.service.js';
export { AuthEvents, type AuthEventMap, type AuthEventName } from './auth.events.js';
export {
  SESSION_KEY,
  BACKEND_SESSION_KEY,
  HASH_SESSION_KEY,
  REDIRECT_FIELD_NAME,
} from './auth.constants.js';
export { AnonymousUser, isAuthenticated, type AuthenticatedUser, type RequestUser } from './anonymous-user.js';
export { PermissionDenied, ImproperlyConfigured } from './errors.js';
export { isSafeRedirectUrl, type SafeRedirectOptions } from './redirects.js';
export { SameOriginGuard, CrossOriginRequest } from './request/same-origin.guard.js';
export { messages, MESSAGES_SESSION_KEY, type FlashMessage, type MessageLevel } from './messages.js';
export { AuthMailer, LoggingAuthMailer, type AuthMail } from './views/auth-mailer.js';
export {
  csrfToken,
  verifyCsrfToken,
  CsrfGuard,
  CsrfFailure,
  CSRF_FIELD_NAME,
  CSRF_HEADER_NAME,
} from './views/csrf.js';
export { AUTH_VIEW_PATHS } from './views/auth-views.controller.js';
export type { AuthViewsMount } from './views/auth-views.mount.js';

export type { AuthBackend, Credentials } from './backends/auth-backend.interface.js';
export { BaseBackend } from './backends/base.backend.js';
export { ModelBackend, AllowAllUsersModelBackend, clearPermissionCache } from './backends/model.backend.js';
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
export { AccessGuard } from './request/access.guard.js';
export { SessionHandler, SessionMiddleware } from './request/session.middleware.js';
export { loadSession, RequestSession, SessionNotLoaded, SessionsUnavailable } from './request/session.js';
export { RemoteUserMiddleware, PersistentRemoteUserMiddleware } from './request/remote-user.middleware.js';

export { User, Group, Permission, SessionRecord, LoginLockout, authEntities, TypeOrmSessionStore } from './storage/index.js';
export { RedisSessionStore, type RedisSessionClient, type RedisSessionStoreOptions } from './storage/redis-session.store.js';
export type { TypeOrmSessionStoreOptions } from './storage/index.js';
export { UserManager, type CreateUserInput } from './user.manager.js';
export {
  PasswordResetTokens,
  DEFAULT_PASSWORD_RESET_TIMEOUT,
  type ResetTokenUser,
  type PasswordResetTokenSettings,
} from './password-reset-tokens.js';
export { PermissionChecker } from './permission.checker.js';
export {
  PermissionManager,
  checkPermissionName,
  type PermissionRef,
  type GroupRef,
  type UsersWithPermOptions,
} from './permission.manager.js';
export {
  LoginThrottle,
  TooManyLoginAttempts,
  TypeOrmLockoutStore,
  RedisLockoutStore,
  type LockoutStore,
  type LockoutState,
  type RedisLikeClient,
  type ThrottleOptions,
} from './login-throttle.js';
export {
  PasswordHasher,
  BCryptSHA256Hasher,
  ScryptHasher,
  isPasswordUsable,
  type PasswordHashAlgorithm,
  type PasswordHasherName,
  type BCryptSHA256HasherOptions,
} from './passwords/password-hasher.js';
export { BcryptWorkerPool, type BcryptWorkerPoolOptions } from './passwords/bcrypt.worker-pool.js';
export { PasswordHasherBusy } from './passwords/password-hasher-busy.js';
export {
  MinimumLengthValidator,
  UserAttributeSimilarityValidator,
  CommonPasswordValidator,
  NumericPasswordValidator,
  PasswordValidationError,
  ValidationError,
  DEFAULT_PASSWORD_VALIDATORS,
  type PasswordValidator,
  type PasswordValidatorName,
  type PasswordValidationIssue,
  type PasswordUser,
} from './passwords/password-validation.js';
