import { BadRequestException, Body, Controller, Get, Inject, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  AuthService,
  CurrentUser,
  LoginRequired,
  UserManager,
  isSafeRedirectUrl,
  type RequestUser,
  type User,
} from 'nestjs-session-auth';
import { CsrfGuard, csrfToken } from 'nestjs-session-auth/csrf';
import { messages } from 'nestjs-session-auth/messages';
import { PasswordValidationError, isPasswordUsable } from 'nestjs-session-auth/passwords';
import { DEMO_MODE, IDENTITY_PROVIDER, type IdentityProviderOptions } from './app.options.js';
import { layoutContext } from './views/layout.js';
import { loginPage, passwordPage } from './views/pages.js';

type Form = Record<string, unknown>;

/**
 * Logging in and out, and changing a password, written with the library's primitives:
 * `authenticate()` asks the backends, `login()` starts the session, `logout()` ends it. Every
 * form carries a CSRF token and every POST handler checks it (`CsrfGuard`).
 */
@Controller()
export class AccountsController {
  constructor(
    private readonly auth: AuthService,
    private readonly users: UserManager,
    @Inject(DEMO_MODE) private readonly demo: boolean,
    @Inject(IDENTITY_PROVIDER) private readonly identityProvider: IdentityProviderOptions | null,
  ) {}

  @Get('login')
  showLogin(@Req() request: Request, @CurrentUser() user: RequestUser<User>, @Query() query: Form): string {
    const form = { csrfToken: csrfToken(request), next: safeNext(request, query.next) };
    return loginPage(layoutContext(request, user), form, { demo: this.demo, identityProvider: this.identityProvider });
  }

  /**
   * The seed's flow: `authenticate()` walks the backends in order; the first that returns a user
   * wins and `login()` remembers it in a new session. One message for every failure, whichever
   * backend refused: it must not tell which usernames exist.
   */
  @Post('login')
  @UseGuards(CsrfGuard)
  async login(
    @Req() request: Request,
    @Res() response: Response,
    @CurrentUser() visitor: RequestUser<User>,
    @Body() form: Form,
  ): Promise<void> {
    const username = textField(form, 'username', 150).trim();
    const password = textField(form, 'password', 4096);
    const next = safeNext(request, form.next);

    const user = await this.auth.authenticate<User>(request, { username, password });
    if (!user) {
      const error = 'Invalid username or password.';
      const form = { csrfToken: csrfToken(request), username, next, error };
      response.status(200).send(loginPage(layoutContext(request, visitor), form, { demo: this.demo, identityProvider: this.identityProvider }));
      return;
    }
    await this.auth.login(request, user);
    messages.success(request, 'Welcome back!');
    response.redirect(next || '/dashboard');
  }

  /**
   * POST only, with the CSRF token: a link or an image on another site cannot log you out.
   * `logout()` deletes the session; the goodbye goes into a new one.
   */
  @Post('logout')
  @UseGuards(CsrfGuard)
  async logout(@Req() request: Request, @Res() response: Response): Promise<void> {
    await this.auth.logout(request);
    messages.info(request, 'You have been logged out.');
    response.redirect('/login');
  }

  @Get('password')
  @LoginRequired()
  showPasswordChange(@Req() request: Request, @CurrentUser() user: User): string {
    return passwordPage(layoutContext(request, user), this.passwordForm(request, user));
  }

  /**
   * The current password, then the new one twice, checked by the configured validators. The
   * new hash logs the user's other sessions out; `updateSessionAuthHash()` keeps this one.
   */
  @Post('password')
  @LoginRequired()
  @UseGuards(CsrfGuard)
  async changePassword(
    @Req() request: Request,
    @Res() response: Response,
    @CurrentUser() user: User,
    @Body() form: Form,
  ): Promise<void> {
    if (!isPasswordUsable(user.password)) {
      response.status(400).send(passwordPage(layoutContext(request, user), this.passwordForm(request, user)));
      return;
    }
    const current = textField(form, 'old_password', 4096);
    const first = textField(form, 'new_password1', 4096);
    const second = textField(form, 'new_password2', 4096);
    const errors: Record<string, string[]> = {};
    // Checked under the login throttle, so a borrowed session cannot guess the password.
    const verdict = await this.auth.verifyPassword(request, user, current);
    if (verdict === 'incorrect') {
      errors.old_password = ['Your current password was entered incorrectly. Please enter it again.'];
    } else if (verdict === 'locked') {
      errors.old_password = ['Too many incorrect passwords. Please try again later.'];
    }
    if (first !== second) {
      errors.new_password2 = ['The two new passwords didn’t match.'];
    } else {
      try {
        await this.users.validatePassword(first, user);
      } catch (error) {
        if (!(error instanceof PasswordValidationError)) throw error;
        errors.new_password1 = error.errors.map((issue) => issue.message);
      }
    }
    if (Object.keys(errors).length > 0) {
      response.status(200).send(passwordPage(layoutContext(request, user), { ...this.passwordForm(request, user), errors }));
      return;
    }

    await this.users.setPassword(user, first);
    await this.users.savePassword(user);
    await this.auth.updateSessionAuthHash(request, user);
    messages.success(request, 'Your password was changed. Your other sessions have been logged out.');
    response.redirect('/dashboard');
  }

  private passwordForm(request: Request, user: User) {
    return {
      csrfToken: csrfToken(request),
      // Users whose password another system checks have no usable one here.
      managedBy: isPasswordUsable(user.password) ? undefined : user.backend,
      helpTexts: this.users.passwordHelpTexts(),
    };
  }
}

/**
 * Where to go after logging in: the `next` the login page was given, if it stays on this site
 * (a relative URL or this host); anything else, `//evil.example` included, is dropped.
 */
function safeNext(request: Request, next: unknown): string {
  if (typeof next !== 'string' || next.length > 2048) return '';
  const allowedHosts = request.headers.host ? [request.headers.host] : [];
  return isSafeRedirectUrl(next, { allowedHosts, requireHttps: request.secure }) ? next.trim() : '';
}

/**
 * A text field of a submitted form; missing is empty. A value no form produces (a list, an
 * object, a megabyte, a NUL character) is refused with 400 before anything else happens.
 */
function textField(form: Form, name: string, maxLength: number): string {
  const value = form && typeof form === 'object' && Object.hasOwn(form, name) ? form[name] : undefined;
  if (value === undefined) return '';
  if (typeof value !== 'string' || value.length > maxLength || value.includes('\0')) {
    throw new BadRequestException(`The ${name} field was sent in a shape no form produces; please fill the form in again.`);
  }
  return value;
}
