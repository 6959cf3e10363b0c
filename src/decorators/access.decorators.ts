import { SetMetadata } from '@nestjs/common';
import type { Request } from 'express';

export const LOGIN_REQUIRED = 'nestjs-session-auth:login-required';
export const PERMISSIONS_REQUIRED = 'nestjs-session-auth:permissions-required';
export const USER_TESTS = 'nestjs-session-auth:user-tests';

export interface LoginRequiredOptions {
  /** Where anonymous browsers go; defaults to the module's `loginUrl`. */
  loginUrl?: string;
  /** Query parameter carrying the return URL; defaults to the module's `redirectFieldName`; `''` or `null`: none. */
  redirectFieldName?: string | null;
  /**
   * Refuse anonymous visitors with 403 too, instead of sending them to log in (Django's
   * `raise_exception=True`): for pages a login would not open, or APIs that never redirect.
   */
  raiseException?: boolean;
}

export interface LoginRule extends LoginRequiredOptions {
  required: boolean;
}

export type UserTest = (user: any, request: Request) => boolean | Promise<boolean>;

/** One `@PermissionRequired()`: every perm is needed; options say where anonymous users go. */
export interface PermissionRule extends LoginRequiredOptions {
  perms: string[];
}

/** One `@UserPassesTest()`. */
export interface UserTestRule extends LoginRequiredOptions {
  test: UserTest;
}

/**
 * Only logged-in users reach the handler (method or controller). Anonymous browsers are
 * redirected to the login page with `?next=`; other clients get 401 JSON.
 */
export function LoginRequired(options: LoginRequiredOptions = {}): MethodDecorator & ClassDecorator {
  return SetMetadata<string, LoginRule>(LOGIN_REQUIRED, { required: true, ...options });
}

/** Opens a handler or controller when `loginRequiredByDefault` is on (e.g. the login page). */
export function LoginNotRequired(): MethodDecorator & ClassDecorator {
  return SetMetadata<string, LoginRule>(LOGIN_REQUIRED, { required: false });
}

/**
 * The user needs every listed permission (`'app.action'`), as `AuthService.hasPerms` answers.
 * A user lacking one is sent to log in when anonymous (redirect or 401, as `@LoginRequired()`)
 * and gets 403 when logged in. On a controller and a method, both lists are needed. It never
 * loosens a `@LoginRequired()` or `loginRequiredByDefault` around it.
 */
export function PermissionRequired(
  perm: string | string[],
  options: LoginRequiredOptions = {},
): MethodDecorator & ClassDecorator {
  const perms = [perm].flat();
  if (perms.length === 0 || perms.some((p) => typeof p !== 'string' || p === '')) {
    throw new TypeError("PermissionRequired() needs one or more permission names such as 'blog.add_post'.");
  }
  return SetMetadata<string, PermissionRule[]>(PERMISSIONS_REQUIRED, [{ ...options, perms }]);
}

/**
 * The user must pass `test(user, request)`. Anonymous users failing it are sent to log in;
 * logged-in users failing it get 403. It never loosens a `@LoginRequired()` around it.
 */
export function UserPassesTest(test: UserTest, options: LoginRequiredOptions = {}): MethodDecorator & ClassDecorator {
  if (typeof test !== 'function') throw new TypeError('UserPassesTest() needs a function (user, request) => boolean.');
  return SetMetadata<string, UserTestRule[]>(USER_TESTS, [{ ...options, test }]);
}
