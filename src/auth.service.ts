import { Inject, Injectable } from '@nestjs/common';
import { parse as parseCookies } from 'cookie';
import type { Request } from 'express';
import { AnonymousUser, isAuthenticated, type RequestUser } from './anonymous-user.js';
import { AUTH_CONFIG, type AuthConfig } from './auth.config.js';
import { AUTH_SESSION_KEYS, BACKEND_SESSION_KEY, CSRF_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY } from './auth.constants.js';
import { AuthEvents, cleanseCredentials } from './auth.events.js';
import type { AuthBackend, Credentials } from './backends/auth-backend.interface.js';
import { BackendRegistry } from './backends/backend.registry.js';
import { ImproperlyConfigured, PermissionDenied } from './errors.js';
import { LOCKED_OUT, LoginThrottle, TooManyLoginAttempts, type LoginAttemptKind } from './login-throttle.js';
import { PermissionChecker } from './permission.checker.js';
import { rotateCsrfToken } from './request/csrf.js';
import { clearCookie, headersSent, isSecureRequest, responseOf, setHeader } from './request/platform.js';
import { stateOf } from './request/request-state.js';
import { makeSessionAuthHash, verifySessionAuthHash } from './session-auth-hash.js';
import { SessionsUnavailable } from './sessions/session.js';
import { findSession, peekSession, sessionCookieName, sessionOf, takePrefetchedUser } from './sessions/session-of.js';
import { UserManager } from './user.manager.js';
import { SESSION_INFO_KEY, UserSessions, type UserSession } from './user-sessions.js';

export interface AuthenticateOptions {
  /**
   * What the credentials are, for the login throttle (default `password`). Say `callback` only
   * for a proof issued elsewhere for this very login, such as an identity provider's code with
   * the login's state: it is limited by `throttle.callbackRate` instead of the password
   * counters, since no number of tries guesses one.
   */
  kind?: LoginAttemptKind;
}

/**
 * The authentication workflow: who are you (`authenticate`), remember it (`login`), forget it
 * (`logout`), and who is this request (`getUser`). Django's `contrib.auth` in one class.
 */
@Injectable()
export class AuthService {
  constructor(
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    private readonly backends: BackendRegistry,
    private readonly events: AuthEvents,
    private readonly users: UserManager<any>,
    private readonly throttle: LoginThrottle,
    private readonly permissions: PermissionChecker,
    private readonly userSessions: UserSessions,
  ) {}

  /**
   * Ask each backend in order. The first user returned wins and is annotated with its
   * backend's name; `null` passes to the next backend; `PermissionDenied` stops the walk.
   * A username that failed too often from this address is refused without asking anyone.
   */
  async authenticate<U = any>(request: Request | undefined, credentials: unknown, options: AuthenticateOptions = {}): Promise<U | null> {
    // Express 5 leaves `req.body` undefined on a bodyless POST; treat anything odd as no credentials.
    const given: Credentials =
      credentials && typeof credentials === 'object' && !Array.isArray(credentials) ? { ...(credentials as Credentials) } : {};
    let user: U | null | typeof LOCKED_OUT;
    try {
      user = await this.throttle.attempt(request, given, () => this.walkBackends<U>(request, given), options.kind);
    } catch (error) {
      // The address is over its limits: refused unchecked, and worth an audit line as much as a lockout.
      if (error instanceof TooManyLoginAttempts) {
        await this.events.emit('userLoginFailed', { request, credentials: cleanseCredentials(given), lockedOut: true });
      }
      throw error;
    }
    if (user === LOCKED_OUT) {
      await this.events.emit('userLoginFailed', { request, credentials: cleanseCredentials(given), lockedOut: true });
      return null;
    }
    if (!user) await this.events.emit('userLoginFailed', { request, credentials: cleanseCredentials(given) });
    return user;
  }

  private async walkBackends<U>(request: Request | undefined, given: Credentials): Promise<U | null> {
    for (const { name, backend } of this.backends.all) {
      let user: unknown;
      try {
        user = await backend.authenticate(request, given);
      } catch (error) {
        if (error instanceof PermissionDenied) break;
        throw error;
      }
      if (user) return annotate(user, name) as U;
    }
    return null;
  }

  /**
   * Persist `user` in the request's session. The session id always changes (fixation defence);
   * data stored before login is kept unless another user was logged in, whose session is
   * discarded. The session is written before this resolves.
   */
  async login(request: Request, user: any, backend?: string): Promise<void> {
    if (!user || typeof user !== 'object') throw new TypeError('login() needs the user to log in.');
    const name = this.backendNameFor(user, backend);
    const userId = userIdOf(user);
    const session = await sessionOf(request);
    const hash = makeSessionAuthHash(user, this.config.secrets[0]);

    const previousId = session.get(SESSION_KEY);
    const sameUser =
      previousId === undefined ||
      (previousId === userId && verifySessionAuthHash(user, session.get(HASH_SESSION_KEY), this.config.secrets) >= 0);
    const kept = sameUser ? session.getData() : {};
    // A CSRF token seen before login must not work after it: the next form gets a new one.
    delete kept[CSRF_SESSION_KEY];
    rotateCsrfToken(request, session);
    // A new session id (fixation defence), written before this resolves.
    await session.cycleKey({
      ...kept,
      [SESSION_KEY]: userId,
      [BACKEND_SESSION_KEY]: name,
      [HASH_SESSION_KEY]: hash,
      // When and from where, for the user's list of sessions (`getUserSessions`).
      [SESSION_INFO_KEY]: UserSessions.describe(request),
    });

    noStore(request);
    annotate(user, name);
    this.remember(request, user);
    if (this.users.manages(user)) await this.users.touchLastLogin(user);
    await this.events.emit('userLoggedIn', { request, user });
  }

  /** Forget the user: the session is deleted from the store and its cookie cleared. */
  async logout(request: Request): Promise<void> {
    const configuredName = this.config.session ? this.config.session.name : undefined;
    const session = await findSession(request);
    if (!session && hasCookie(request, configuredName)) {
      // The store is unreachable: answering "logged out" would leave the session alive in it.
      throw new SessionsUnavailable();
    }
    // A user database that is down must not keep the session alive: log out regardless.
    const user = await this.getUser(request).catch(() => null);
    await this.events.emit('userLoggedOut', { request, user: isAuthenticated(user) ? user : null });
    // A request that brought no session cookie gets no Set-Cookie either.
    const cookieName =
      sessionCookieName(request) ?? (configuredName && hasCookie(request, configuredName) ? configuredName : undefined);
    await session?.flush();
    const response = responseOf(request);
    if (cookieName && response && !headersSent(response)) {
      const cookie = this.config.session ? this.config.session.cookie : undefined;
      // The same attributes as the cookie had: a browser ignores the clearing of a Secure
      // (or __Host-) cookie that is sent without Secure.
      const secure = cookie?.secure === 'auto' ? isSecureRequest(request) : (cookie?.secure ?? this.config.production);
      clearCookie(response, cookieName, { path: cookie?.path ?? '/', domain: cookie?.domain, sameSite: cookie?.sameSite ?? 'lax', secure });
      noStore(request);
    }
    this.remember(request, new AnonymousUser());
  }

  /**
   * The sessions `user` is logged in with, the most recently active first: when and from where
   * each logged in, and which one is the request's own (pass the request to know). Needs a store
   * that can list a user's sessions (`TypeOrmSessionStore`, `RedisSessionStore`).
   */
  getUserSessions(user: any, request?: Request): Promise<UserSession[]> {
    return this.userSessions.list(userIdOf(user), request);
  }

  /**
   * End one of `user`'s sessions, named by the `key` `getUserSessions` gave; `false` when no
   * session of theirs has that key. Ending the request's own session logs the request out.
   */
  async endUserSession(user: any, key: string, request?: Request): Promise<boolean> {
    if (typeof key !== 'string' || key === '') return false;
    const outcome = await this.userSessions.end(userIdOf(user), key, request);
    if (outcome === 'current') await this.logout(request!);
    return outcome !== 'none';
  }

  /** "Log out my other devices": every session of the request's user but this one ends; resolves how many. */
  async logoutOtherSessions(request: Request): Promise<number> {
    const user = await this.getUser(request);
    if (!isAuthenticated(user)) return 0;
    return this.userSessions.endOthers(userIdOf(user), request);
  }

  /**
   * The request's user, resolved once per request whatever asks (the module's guard, the app's
   * guards, decorators). A request without a session cookie costs no store or database work.
   */
  getUser<U = any>(request: Request): Promise<RequestUser<U>> {
    const known = this.peekUser(request);
    if (known) return Promise.resolve(known as RequestUser<U>);
    const state = stateOf(request);
    if (state.resolvingUser) return state.resolvingUser as Promise<RequestUser<U>>;
    const resolving = this.resolveUser(request).then((user) => (state.user = user));
    state.resolvingUser = resolving;
    return resolving as Promise<RequestUser<U>>;
  }

  /**
   * The request's user when it is known without any I/O: already resolved, or anonymous
   * because the session names nobody. `undefined` means `getUser()` has work to do.
   */
  peekUser<U = any>(request: Request): RequestUser<U> | undefined {
    const state = stateOf(request);
    if (state.user) return state.user as RequestUser<U>;
    // Not loaded yet: a valid session cookie may name somebody; without one, nobody.
    const session = peekSession(request);
    if (session === undefined) return undefined;
    if (session && (session.get(SESSION_KEY) !== undefined || session.get(BACKEND_SESSION_KEY) !== undefined)) return undefined;
    return (state.user = new AnonymousUser());
  }

  /**
   * Check a logged-in user's password again (a password change form's "old password") under
   * the login throttle, keyed like a login of that username from this address: failures here
   * and at login add up, and a correct password clears them. While locked out the password is
   * not checked at all.
   */
  async verifyPassword(request: Request, user: any, raw: unknown): Promise<'correct' | 'incorrect' | 'locked'> {
    const credentials = { username: String(user?.username ?? '') };
    let verdict;
    try {
      verdict = await this.throttle.attempt(request, credentials, async () => ((await this.users.checkPassword(user, raw)) ? user : null));
    } catch (error) {
      // The address is over its ceiling: the password was not checked.
      if (error instanceof TooManyLoginAttempts) return 'locked';
      throw error;
    }
    return verdict === LOCKED_OUT ? 'locked' : verdict ? 'correct' : 'incorrect';
  }

  /**
   * Keep the current session valid after the user's password changed (others are logged out
   * by the new hash); the session id is rotated as well.
   */
  async updateSessionAuthHash(request: Request, user: any): Promise<void> {
    const session = await sessionOf(request);
    const data = session.getData();
    if (data[SESSION_KEY] === userIdOf(user)) {
      data[HASH_SESSION_KEY] = makeSessionAuthHash(user, this.config.secrets[0]);
    }
    await session.cycleKey(data);
  }

  /**
   * Whether `user` has `perm` (Django's `user.has_perm`): an active superuser has every one; else
   * any backend granting is enough, and a backend throwing `PermissionDenied` denies.
   */
  hasPerm(user: any, perm: string, obj?: unknown): Promise<boolean> {
    return this.permissions.hasPerm(user, perm, obj);
  }

  /** Every permission of the list (Django's `has_perms`); an empty list is always granted. */
  hasPerms(user: any, perms: Iterable<string>, obj?: unknown): Promise<boolean> {
    return this.permissions.hasPerms(user, perms, obj);
  }

  /** Any permission of the app `appLabel` (Django's `has_module_perms`). */
  hasModulePerms(user: any, appLabel: string): Promise<boolean> {
    return this.permissions.hasModulePerms(user, appLabel);
  }

  /** Every permission the backends list for the user (Django's `get_all_permissions`). */
  getAllPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.permissions.getAllPermissions(user, obj);
  }

  /** The user's own permissions, not their groups' (Django's `get_user_permissions`). */
  getUserPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.permissions.getUserPermissions(user, obj);
  }

  /** The permissions of the user's groups (Django's `get_group_permissions`). */
  getGroupPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.permissions.getGroupPermissions(user, obj);
  }

  /**
   * The backend's user for the session's id: from the row the store read along with the session
   * when the backend can use it (`userFromSessionRow`: one read per request instead of two), else `getUser()`.
   */
  private loadUser(backend: AuthBackend, userId: string, request: Request): any {
    const prefetched = takePrefetchedUser(request);
    if (prefetched && backend.userFromSessionRow) {
      const user = backend.userFromSessionRow(prefetched, userId);
      if (user !== undefined) return user;
    }
    return backend.getUser(userId);
  }

  /** Load the user the session names; only called once `peekUser()` found auth keys in it. */
  private async resolveUser(request: Request): Promise<RequestUser> {
    const session = await findSession(request);
    if (!session) return new AnonymousUser();
    const userId = session.get(SESSION_KEY);
    const name = session.get(BACKEND_SESSION_KEY);

    const configured = typeof name === 'string' ? this.backends.get(name) : undefined;
    const user = typeof userId === 'string' && configured ? await this.loadUser(configured.backend, userId, request) : null;
    if (!user || !canAuthenticate(configured!.backend, user)) {
      // Stale: the backend is gone, or the user is gone or disabled. Nobody is logged in.
      for (const key of AUTH_SESSION_KEYS) session.delete(key);
      return new AnonymousUser();
    }
    const hashIndex = verifySessionAuthHash(user, session.get(HASH_SESSION_KEY), this.config.secrets);
    if (hashIndex < 0) {
      // The password changed since this session logged in (or the hash was tampered with): the
      // whole session ends, as Django's `flush()` (every key, the CSRF token and messages too).
      await session.flush();
      return new AnonymousUser();
    }
    if (hashIndex > 0) {
      // Logged in under a secret that is now a fallback: re-signed with the current one under a
      // new session id (Django's `cycle_key()`), so the old id is not valid any more either.
      await session.cycleKey({ ...session.getData(), [HASH_SESSION_KEY]: makeSessionAuthHash(user, this.config.secrets[0]) });
    }
    return annotate(user, configured!.name);
  }

  private remember(request: Request, user: RequestUser): void {
    const state = stateOf(request);
    state.user = user;
    state.resolvingUser = undefined;
    // Through the request's `user` accessor (AccessGuard's), as the guard sets it.
    (request as { user?: RequestUser }).user = user;
  }

  private backendNameFor(user: any, backend: string | undefined): string {
    const name = backend ?? (typeof user.backend === 'string' ? user.backend : undefined);
    if (name === undefined) {
      if (this.backends.all.length === 1) return this.backends.all[0].name;
      throw new ImproperlyConfigured(
        'Several authentication backends are configured: pass the backend name to login(), ' +
          'or log in a user returned by authenticate().',
      );
    }
    if (!this.backends.get(name)) {
      throw new ImproperlyConfigured(`login() was given backend '${name}', which is not in AuthModule backends.`);
    }
    return name;
  }
}

/** Whether the request carries the named cookie (any cookie when the name is unknown). */
function hasCookie(request: Request, name: string | undefined): boolean {
  const header = request.headers?.cookie;
  if (!header) return false;
  const cookies = parseCookies(header);
  return name === undefined ? Object.keys(cookies).length > 0 : cookies[name] !== undefined;
}

/** A response that logs in or out is never kept by a cache. */
function noStore(request: Request): void {
  const response = responseOf(request);
  if (response && !headersSent(response)) setHeader(response, 'Cache-Control', 'no-store');
}

function userIdOf(user: any): string {
  const id = user.id ?? user.pk;
  if (id === undefined || id === null || id === '') {
    throw new TypeError('login() needs a saved user: it has no id.');
  }
  return String(id);
}

/** Mark a user as authenticated by `backend`, without making the marker part of its JSON. */
function annotate<U>(user: U, backend: string): U {
  const target = user as any;
  target.backend = backend;
  if (target.isAuthenticated !== true) {
    Object.defineProperty(target, 'isAuthenticated', { value: true, configurable: true, enumerable: false });
  }
  return user;
}

function canAuthenticate(backend: AuthBackend, user: any): boolean {
  return typeof backend.userCanAuthenticate === 'function' ? backend.userCanAuthenticate(user) : user.isActive !== false;
}
