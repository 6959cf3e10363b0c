import {
  ForbiddenException,
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { ModuleRef, Reflector } from '@nestjs/core';
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
import { HandshakeRequests } from '../transports/handshake-requests.js';
import type { Transport } from '../transports/transport.js';
import { transportOf } from '../transports/transports.js';
import { setUser } from './lazy-user.js';
import { LoginRedirect, loginOnOtherSite, withReturnUrl } from './login-redirect.js';
import { appHasOtherGlobalEnhancers, routeMayRead } from './route-readers.js';
import { wantsHtml } from './negotiation.js';
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
    const rules = this.rulesFor(context);
    const transport = transportOf(context);
    // Nothing reads the user here: not even the cookie is looked at until somebody asks.
    if (rules.blind && !transport.loadsUserOnBlindRoutes) return true;
    const request = transport.requestOf(context, this.requestFromHandshake);
    if (!request) return rules.open || transport.refuseUnjudged(context);
    transport.screen(request);
    // From here on the answer depends on who is asking, so on the Cookie header.
    varyOnCookie(request);
    if (rules.open) {
      const known = this.auth.peekUser(request);
      if (known) return setUser(request, known);
      return this.attachUser(request);
    }
    return this.check(request, rules, transport, context);
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

  private async check(request: Request, rules: HandlerRules, transport: Transport, context: ExecutionContext): Promise<boolean> {
    const { rule, loginRequired, permRules, testRules } = rules;
    try {
      const user = await this.auth.getUser(request);
      setUser(request, user);
      const loggedIn = isAuthenticated(user);
      if (loginRequired && !loggedIn) this.deny(request, rule, false, transport);
      // Anonymous users are asked too: a backend may grant them permissions, as in Django.
      for (const permRule of permRules) {
        if (!(await this.permissions.hasPerms(user, permRule.perms))) this.deny(request, { ...rule, ...permRule }, loggedIn, transport);
      }
      for (const testRule of testRules) {
        if (!(await testRule.test(user, request))) this.deny(request, { ...rule, ...testRule }, loggedIn, transport);
      }
      return true;
    } catch (error) {
      return transport.raise(error, context);
    }
  }

  /**
   * Logged-in users get 403, never a redirect; anonymous browsers go to log in where the
   * transport answers over HTTP, other clients get 401 (GraphQL's and WebSockets' coded
   * UNAUTHENTICATED and FORBIDDEN).
   */
  private deny(request: Request, rule: LoginRequiredOptions | undefined, loggedIn: boolean, transport: Transport): never {
    if (loggedIn || rule?.raiseException) throw transport.refusal(new ForbiddenException('You do not have permission to perform this action.'));
    if (transport.answersOverHttp && wantsHtml(request)) throw new LoginRedirect(this.loginUrlFor(request, rule));
    throw transport.refusal(new UnauthorizedException('Authentication credentials were not provided; log in first.'));
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

