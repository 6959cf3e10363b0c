import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { isAuthenticated } from '../anonymous-user.js';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { AuthService } from '../auth.service.js';
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

interface HandlerRules {
  rule: LoginRule | undefined;
  loginRequired: boolean;
  permRules: PermissionRule[];
  testRules: UserTestRule[];
  open: boolean;
}

/**
 * Decides whether the request's user may reach the handler, from `@LoginRequired()`,
 * `@LoginNotRequired()`, `@PermissionRequired()`, `@UserPassesTest()` and
 * `loginRequiredByDefault`. Guards run before interceptors, so it asks the memoised resolver
 * itself; open routes cost nothing.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  /**
   * Each route's rules, read from its metadata once (metadata is fixed after start-up). Keyed by
   * class, then handler: an inherited handler can sit under controllers with other rules.
   */
  private readonly rulesByRoute = new WeakMap<Function, WeakMap<Function, HandlerRules>>();

  /** Synchronous for open routes, so they pay no promise round trip. */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const { rule, loginRequired, permRules, testRules, open } = this.rulesFor(context);
    if (open) return true;
    if (context.getType() !== 'http') {
      // Sessions are HTTP's: a rule on a WebSocket, RPC or GraphQL handler cannot be checked
      // here, so it fails closed instead of being silently ignored.
      throw new ForbiddenException(
        'Login and permission rules of nestjs-session-auth apply to HTTP handlers only; mark this handler @LoginNotRequired() and check access another way.',
      );
    }
    return this.check(context.switchToHttp().getRequest<Request>(), rule, loginRequired, permRules, testRules);
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
      rules = { rule, loginRequired, permRules, testRules, open };
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
  ): Promise<boolean> {
    const user = await this.auth.getUser(request);
    const loggedIn = isAuthenticated(user);
    if (loginRequired && !loggedIn) this.deny(request, rule, false);
    // Anonymous users are asked too: a backend may grant them permissions (B76), as in Django.
    for (const permRule of permRules) {
      if (!(await this.auth.hasPerms(user, permRule.perms))) this.deny(request, { ...rule, ...permRule }, loggedIn);
    }
    for (const testRule of testRules) {
      if (!(await testRule.test(user, request))) this.deny(request, { ...rule, ...testRule }, loggedIn);
    }
    return true;
  }

  /** Logged-in users get 403, never a redirect; anonymous browsers go to log in, other clients get 401. */
  private deny(request: Request, rule: LoginRequiredOptions | undefined, loggedIn: boolean): never {
    if (loggedIn) throw new ForbiddenException('You do not have permission to perform this action.');
    const accept = String(request.headers.accept ?? '');
    if (!accept.includes('text/html')) {
      throw new UnauthorizedException('Authentication credentials were not provided; log in first.');
    }
    throw new LoginRedirect(this.loginUrlFor(request, rule));
  }

  private loginUrlFor(request: Request, rule: LoginRequiredOptions | undefined): string {
    const loginUrl = rule?.loginUrl ?? this.config.loginUrl;
    const field = rule?.redirectFieldName ?? this.config.redirectFieldName;
    const separator = loginUrl.includes('?') ? '&' : '?';
    return `${loginUrl}${separator}${encodeURIComponent(field)}=${encodeURIComponent(request.originalUrl)}`;
  }
}
