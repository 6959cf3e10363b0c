import {
  ForbiddenException,
  HttpException,
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { ModuleRef, Reflector } from '@nestjs/core';
import typeIs from 'type-is';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import { AnonymousUser, isAuthenticated, type RequestUser } from '../anonymous-user.js';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { AuthService } from '../auth.service.js';
import { PermissionChecker } from '../permission.checker.js';
import {
  LOGIN_REQUIRED,
  PERMISSIONS_REQUIRED,
  USER_TESTS,
  type LoginRequiredOptions,
  type LoginRule,
  type PermissionRule,
  type UserTestRule,
} from '../decorators/access.decorators.js';
import { LoginRedirect } from './login-redirect.js';
import { appHasOtherGlobalEnhancers, routeMayRead } from './route-readers.js';
import { httpRequestOf, subscriptionRequestOf } from './execution-request.js';
import { HandshakeRequests } from './handshake-requests.js';
import { messageRequestOf } from './socket-request.js';
import { wantsHtml } from './negotiation.js';
import { loginOnOtherSite, withReturnUrl } from './login-redirect.js';
import { trustedHost } from './hosts.js';
import { requestUrl, varyOnCookie } from './platform.js';

interface HandlerRules {
  rule: LoginRule | undefined;
  loginRequired: boolean;
  permRules: PermissionRule[];
  testRules: UserTestRule[];
  open: boolean;
  /** Nothing on the route but this guard could read the user: it is not loaded. */
  blind: boolean;
}

/**
 * `request.user` read for a logged-in request before the module's guard loaded it (in
 * middleware), or on a route that declared it never reads it.
 */
export class UserNotLoaded extends Error {
  constructor() {
    super(
      'request.user is not loaded here: AuthModule loads it in its guard, for routes where something reads it ' +
        '(a login or permission rule, @CurrentUser(), @Req(), a guard or an interceptor). In middleware, or ' +
        'elsewhere, use `await authService.getUser(request)`.',
    );
    this.name = 'UserNotLoaded';
  }
}

/**
 * Decides who the request is and whether they may reach the handler, from `@LoginRequired()`,
 * `@LoginNotRequired()`, `@PermissionRequired()`, `@UserPassesTest()` and
 * `loginRequiredByDefault`. As a global guard it runs before the app's guards and sets
 * `request.user` from the memoised resolver, so a guard written the Nest way
 * (`getRequest().user`) sees the real user. On a route where nothing else can read the user the
 * user is not loaded at all (Django's lazy `request.user`); reading it there anyway is an error,
 * never a wrong answer.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly logger = new Logger('AccessGuard');
  /** Whether the app has guards or interceptors of its own on every route; known at the first request. */
  private globalReaders?: boolean;

  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    private readonly moduleRef: ModuleRef,
    private readonly permissions: PermissionChecker,
  ) {}

  /**
   * Each route's rules, read from its metadata once (metadata is fixed after start-up). Keyed by
   * class, then handler: an inherited handler can sit under controllers with other rules.
   */
  private readonly rulesByRoute = new WeakMap<Function, WeakMap<Function, HandlerRules>>();

  /** Synchronous whenever the answer needs no I/O, so most requests pay no promise round trip. */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const { rule, loginRequired, permRules, testRules, open, blind } = this.rulesFor(context);
    const type = context.getType<string>();
    const http = type === 'http';
    // Nothing reads the user here: not even the cookie is looked at until somebody asks.
    // (A GraphQL resolver's fields and arguments are its own business: the user is loaded.)
    if (blind && type !== 'graphql') return true;
    // A WebSocket message is judged by the session of its connection's handshake.
    const make = this.requestFromHandshake;
    const request =
      type === 'ws'
        ? messageRequestOf(context, make)
        : (httpRequestOf(context) ?? (type === 'graphql' ? subscriptionRequestOf(context, make) : undefined));
    if (!request) {
      if (open) return true;
      if (type === 'ws') {
        // A `ws` gateway on a server of its own: its handshakes are not seen, so nobody is logged in.
        const missing = new UnauthorizedException(
          "This connection's handshake was not seen, so it has no session: run the gateway on the app's own HTTP server.",
        );
        return this.refuseMessage(missing, context);
      }
      // Sessions come with HTTP requests and WebSocket handshakes: a rule on a handler reached
      // without either (RPC) cannot be checked here, so it fails closed instead of being
      // silently ignored.
      throw new ForbiddenException(
        `Login and permission rules of nestjs-session-auth apply to HTTP requests, GraphQL operations and WebSocket messages; this ${type} handler has none of them. Mark it @LoginNotRequired() and check access another way.`,
      );
    }
    if (type === 'graphql' && sentWithoutPreflight(request)) {
      // A page of another site can make the browser send this with the visitor's cookie.
      throw Object.assign(new ForbiddenException(PREFLIGHT_REQUIRED), { extensions: { code: 'FORBIDDEN' } });
    }
    // From here on the answer depends on who is asking, so on the Cookie header.
    varyOnCookie(request);
    if (open) {
      const known = this.auth.peekUser(request);
      if (known) return setUser(request, known);
      return this.attachUser(request);
    }
    const checked = this.check(request, rule, loginRequired, permRules, testRules, http);
    return type === 'ws' ? checked.catch((error) => this.refuseMessage(error, context)) : checked;
  }

  /**
   * A refused WebSocket message: the client gets an `exception` event with a code
   * (`UNAUTHENTICATED`, `FORBIDDEN`), as Nest's gateways send `WsException`s, and it is logged.
   */
  private async refuseMessage(error: unknown, context: ExecutionContext): Promise<never> {
    const code = error instanceof HttpException ? REFUSAL_CODES[error.getStatus()] : undefined;
    if (!code) throw error;
    const message = (error as Error).message;
    this.logger.warn(`Refused a WebSocket message (${String(context.switchToWs().getPattern?.() ?? 'unknown')}): ${code}`);
    const { WsException } = await import('@nestjs/websockets');
    throw new WsException({ status: 'error', code, message });
  }

  private handshakes?: HandshakeRequests;

  /** The request a WebSocket message or subscription is judged by: its handshake's, with its session if a page of this site opened it. */
  private readonly requestFromHandshake = (handshake: IncomingMessage): Request =>
    (this.handshakes ??= this.moduleRef.get(HandshakeRequests, { strict: false })).requestFrom(handshake);

  /**
   * An open route whose code may read the user: load it. While it cannot be loaded the request
   * is anonymous (fail closed): rules elsewhere still answer 5xx, an open route such as logout
   * keeps working.
   */
  private async attachUser(request: Request): Promise<boolean> {
    let user: RequestUser;
    try {
      user = await this.auth.getUser(request);
    } catch (error) {
      this.logger.error(`Loading the request's user failed: ${(error as Error).message}`);
      user = new AnonymousUser();
    }
    return setUser(request, user);
  }

  private rulesFor(context: ExecutionContext): HandlerRules {
    const handler = context.getHandler();
    const controller = context.getClass();
    let byHandler = this.rulesByRoute.get(controller);
    if (!byHandler) this.rulesByRoute.set(controller, (byHandler = new WeakMap()));
    let rules = byHandler.get(handler);
    if (!rules) {
      const targets = [handler, controller];
      const rule = this.reflector.getAllAndOverride<LoginRule | undefined>(LOGIN_REQUIRED, targets);
      const permRules = this.reflector.getAllAndMerge<PermissionRule[]>(PERMISSIONS_REQUIRED, targets) ?? [];
      const testRules = this.reflector.getAllAndMerge<UserTestRule[]>(USER_TESTS, targets) ?? [];
      const loginRequired = rule?.required ?? this.config.loginRequiredByDefault;
      const open = !loginRequired && permRules.length === 0 && testRules.length === 0;
      this.globalReaders ??= appHasOtherGlobalEnhancers(this.moduleRef, [AccessGuard]);
      const blind = open && !this.globalReaders && !routeMayRead(controller, handler);
      rules = { rule, loginRequired, permRules, testRules, open, blind };
      byHandler.set(handler, rules);
    }
    return rules;
  }

  private async check(
    request: Request,
    rule: LoginRule | undefined,
    loginRequired: boolean,
    permRules: PermissionRule[],
    testRules: UserTestRule[],
    http: boolean,
  ): Promise<boolean> {
    const user = await this.auth.getUser(request);
    setUser(request, user);
    const loggedIn = isAuthenticated(user);
    if (loginRequired && !loggedIn) this.deny(request, rule, false, http);
    // Anonymous users are asked too: a backend may grant them permissions, as in Django.
    for (const permRule of permRules) {
      if (!(await this.permissions.hasPerms(user, permRule.perms))) this.deny(request, { ...rule, ...permRule }, loggedIn, http);
    }
    for (const testRule of testRules) {
      if (!(await testRule.test(user, request))) this.deny(request, { ...rule, ...testRule }, loggedIn, http);
    }
    return true;
  }

  /**
   * Logged-in users get 403, never a redirect; anonymous browsers go to log in, other clients get
   * 401. A GraphQL operation is never redirected: GraphQL drivers answer 401 and 403 as errors
   * coded UNAUTHENTICATED and FORBIDDEN.
   */
  private deny(request: Request, rule: LoginRequiredOptions | undefined, loggedIn: boolean, http: boolean): never {
    // Outside HTTP the refusal carries its GraphQL code itself: a subscription's errors are not
    // formatted by the driver as an operation's are.
    const coded = (error: HttpException) => (http ? error : Object.assign(error, { extensions: { code: REFUSAL_CODES[error.getStatus()] } }));
    if (loggedIn || rule?.raiseException) throw coded(new ForbiddenException('You do not have permission to perform this action.'));
    if (!http || !wantsHtml(request)) {
      throw coded(new UnauthorizedException('Authentication credentials were not provided; log in first.'));
    }
    throw new LoginRedirect(this.loginUrlFor(request, rule));
  }

  /**
   * Where to send an anonymous browser (Django's `redirect_to_login`): the login URL with the
   * page to come back to, as a path on the same site, as an absolute URL when the login page is
   * on another scheme or host (so it can send the user back).
   */
  private loginUrlFor(request: Request, rule: LoginRequiredOptions | undefined): string {
    const loginUrl = rule?.loginUrl ?? this.config.loginUrl;
    const field = rule?.redirectFieldName !== undefined ? (rule.redirectFieldName ?? '') : this.config.redirectFieldName;
    const path = requestUrl(request);
    const here = loginOnOtherSite(loginUrl, request) ? trustedHost(request, this.config.allowedHosts) : null;
    return withReturnUrl(loginUrl, field, here ? `${request.protocol}://${here}${path}` : path);
  }
}

const PREFLIGHT_REQUIRED =
  'GraphQL operations over HTTP POST must be sent as application/json: a page of another site can send this ' +
  'content type with the visitor’s cookie without asking first (CSRF).';

/**
 * A GraphQL POST a page of another site can make a browser send, cookie included, without a CORS
 * preflight: a "simple" content type (a form, `text/plain`) or none. Refused before any resolver
 * runs, so no mutation (a login, say) runs for another site (Apollo's `csrfPrevention`, for
 * every driver). A request carrying a header that forces a preflight is let through (Apollo's
 * `Apollo-Require-Preflight` and `X-Apollo-Operation-Name`, used by file uploads).
 */
function sentWithoutPreflight(request: Request): boolean {
  if (request.method !== 'POST') return false;
  const headers = request.headers;
  if (headers['apollo-require-preflight'] || headers['x-apollo-operation-name']) return false;
  const type = headers['content-type'];
  if (typeof type !== 'string' || type === '') return true;
  return typeIs.is(type, ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']) !== false;
}

/** The codes a refusal carries outside HTTP (GraphQL's and the WebSocket `exception` event's). */
const REFUSAL_CODES: Record<number, string | undefined> = { 401: 'UNAUTHENTICATED', 403: 'FORBIDDEN' };

function setUser(request: Request, user: RequestUser): true {
  Object.defineProperty(request, 'user', { value: user, writable: true, configurable: true, enumerable: true });
  return true;
}

/**
 * `request.user` until the guard sets it, and on routes that never load it: the user when it is
 * known without I/O (anonymous), else `UserNotLoaded`, never undefined. An accessor on the app's
 * request prototype (defined once), so a request pays nothing for it; assigning `request.user`
 * (as `login()` and the guard do) puts a plain value on the request itself.
 */
export function defineLazyUser(target: object, auth: AuthService): void {
  if (Object.hasOwn(target, LAZY_USER)) return;
  Object.defineProperties(target, {
    [LAZY_USER]: { value: true, configurable: true },
    user: {
      configurable: true,
      enumerable: false,
      get(this: Request) {
        const known = auth.peekUser(this);
        if (known) return known;
        throw new UserNotLoaded();
      },
      set(this: Request, user: RequestUser) {
        setUser(this, user);
      },
    },
  });
}

const LAZY_USER = Symbol('nestjs-session-auth:lazy-user');
