import {
  Catch,
  Controller,
  Get,
  Inject,
  Logger,
  Param,
  Post,
  Req,
  Res,
  UseFilters,
  UseGuards,
  type ExceptionFilter,
  type ArgumentsHost,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Request, Response } from 'express';
import { isAuthenticated } from '../anonymous-user.js';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { AuthService } from '../auth.service.js';
import { LoginNotRequired, LoginRequired } from '../decorators/access.decorators.js';
import { ImproperlyConfigured } from '../errors.js';
import { PasswordResetTokens } from '../password-reset-tokens.js';
import { isPasswordUsable } from '../passwords/password-hasher.js';
import { PasswordValidationError } from '../passwords/password-validation.js';
import { LoginThrottle, TooManyLoginAttempts } from '../login-throttle.js';
import { isSafeRedirectUrl } from '../redirects.js';
import { trustedHost } from '../request/hosts.js';
import { wantsHtml } from '../request/negotiation.js';
import { isSecureRequest, sendHtml, sendJson, sendRedirect, setHeader } from '../request/platform.js';
import { requireSession } from '../request/session-lifecycle.js';
import { UserManager } from '../user.manager.js';
import { AuthMailer, LoggingAuthMailer, type AuthMail } from './auth-mailer.js';
import { CsrfFailure, CsrfGuard, csrfToken } from './csrf.js';
import {
  csrfFailurePage,
  loggedOutPage,
  loginPage,
  methodNotAllowedPage,
  passwordChangeDonePage,
  passwordChangePage,
  passwordResetCompletePage,
  passwordResetConfirmPage,
  passwordResetDonePage,
  passwordResetEmail,
  passwordResetInvalidPage,
  passwordResetPage,
  STYLE_SOURCE,
  type FormErrors,
} from './templates.js';

/** Where the built-in views live (Django's `django.contrib.auth.urls`); login is at `loginUrl`. */
export const AUTH_VIEW_PATHS = {
  logout: '/accounts/logout',
  passwordChange: '/accounts/password_change',
  passwordChangeDone: '/accounts/password_change/done',
  passwordReset: '/accounts/password_reset',
  passwordResetDone: '/accounts/password_reset/done',
  passwordResetConfirm: '/accounts/reset/:uidb64/:token',
  passwordResetComplete: '/accounts/reset/done',
} as const;

/** Stands for the token in the reset link once it has moved into the session. */
export const RESET_URL_TOKEN = 'set-password';
/** Session key holding the reset token between the link and the form. */
export const RESET_SESSION_TOKEN = '_password_reset_token';

const MAX_USERNAME_LENGTH = 254;
/** Django dropped its cap; a bound still keeps a hasher from chewing on megabytes. */
const MAX_PASSWORD_LENGTH = 4096;
const MAX_EMAIL_LENGTH = 254;
const MAX_NEXT_LENGTH = 2048;

const INVALID_LOGIN = 'Please enter a correct username and password. Note that both fields may be case-sensitive.';
const INACTIVE = 'This account is inactive.';
const REQUIRED = 'This field is required.';
const BAD_INPUT = 'The form was sent with values that cannot be right (not text, too long, or with a NUL character). Please fill it in again.';
const PASSWORD_INCORRECT = 'Your old password was entered incorrectly. Please enter it again.';
const TOO_MANY_ATTEMPTS = 'Too many incorrect passwords. Your old password was not checked; please try again later.';
const PASSWORD_MISMATCH = 'The two password fields didn’t match.';
const INVALID_EMAIL = 'Enter a valid email address.';
const PASSWORD_ELSEWHERE = 'The password of this account is managed elsewhere and cannot be changed here.';

/** A field the client sent in a shape no form produces. */
const MALFORMED = Symbol('malformed');
type Field = string | undefined | typeof MALFORMED;

/** Shows the CSRF failure as a page to browsers and as JSON to scripts; nothing else is caught. */
@Catch(CsrfFailure)
export class CsrfFailureFilter implements ExceptionFilter {
  catch(exception: CsrfFailure, host: ArgumentsHost): void {
    const request = host.switchToHttp().getRequest<Request>();
    const response = host.switchToHttp().getResponse<Response>();
    if (prefersJson(request)) {
      sendJson(authPage(response), 403, exception.getResponse());
      return;
    }
    html(response, 403, csrfFailurePage());
  }
}

/**
 * Django's login, logout, password change and password reset views, with CSRF protection on
 * every form and `Cache-Control: no-store` on every page. `AuthModule` mounts a subclass that
 * adds the login routes at `loginUrl` (see `authViewsController`).
 */
@Controller()
@UseFilters(CsrfFailureFilter)
export class AuthViewsController implements OnModuleInit {
  private readonly logger = new Logger('AuthViews');
  private mailer: AuthMailer = new LoggingAuthMailer();

  constructor(
    @Inject(AUTH_CONFIG) protected readonly config: AuthConfig,
    protected readonly auth: AuthService,
    protected readonly users: UserManager<any>,
    protected readonly tokens: PasswordResetTokens,
    private readonly moduleRef: ModuleRef,
    private readonly throttle: LoginThrottle,
  ) {}

  async onModuleInit(): Promise<void> {
    const type = this.config.mailer;
    if (!type) {
      if (this.config.production) {
        this.logger.warn(
          'The built-in views are on without a mailer: password reset emails will not be sent, and the ' +
            'default mailer will not log their links in production. Pass your AuthMailer as the mailer option.',
        );
      }
      return;
    }
    let mailer: AuthMailer | undefined;
    try {
      mailer = this.moduleRef.get(type, { strict: false });
    } catch {
      mailer = await this.moduleRef.create(type);
    }
    if (typeof mailer?.send !== 'function') {
      throw new ImproperlyConfigured(`The mailer ${type.name} must have a send(mail) method.`);
    }
    this.mailer = mailer;
  }

  /** GET loginUrl: the form; a JSON client gets `{ csrfToken }` to send with its POST. */
  protected showLogin(request: Request, response: Response): void {
    const token = csrfToken(request);
    if (prefersJson(request)) {
      sendJson(authPage(response), 200, { csrfToken: token });
      return;
    }
    this.renderLogin(request, response, 200, {});
  }

  /**
   * POST loginUrl: log in and go to a safe `next` or `loginRedirectUrl`. Every
   * failure shows the same message, whichever backend refused.
   */
  protected async submitLogin(request: Request, response: Response): Promise<void> {
    const body = formBody(request);
    const rawUsername = readField(body, 'username', MAX_USERNAME_LENGTH);
    const password = readField(body, 'password', MAX_PASSWORD_LENGTH);
    if (rawUsername === MALFORMED || password === MALFORMED) {
      return this.loginFailure(request, response, 400, { form: [BAD_INPUT] });
    }
    // Django's UsernameField strips and NFKC-normalises; the password is taken as typed.
    const username = rawUsername?.trim().normalize('NFKC') ?? '';
    const errors: FormErrors = {};
    if (!username) errors.username = [REQUIRED];
    if (!password) errors.password = [REQUIRED];
    if (errors.username || errors.password) {
      return this.loginFailure(request, response, prefersJson(request) ? 400 : 200, errors, username);
    }

    let user: any;
    try {
      user = await this.auth.authenticate<any>(request, { username, password });
    } catch (error) {
      // The address is over its limits: a browser gets the form again with the reason, as 429.
      if (!(error instanceof TooManyLoginAttempts) || prefersJson(request)) throw error;
      setHeader(response, 'Retry-After', String(error.retryAfter));
      return this.loginFailure(request, response, 429, { form: [(error.getResponse() as { message: string }).message] }, username);
    }
    const refusal = !user ? INVALID_LOGIN : user.isActive === false ? INACTIVE : null;
    if (refusal) {
      return this.loginFailure(request, response, prefersJson(request) ? 401 : 200, { form: [refusal] }, username);
    }
    // login() also drops the CSRF token: the next form gets a new one.
    await this.auth.login(request, user);
    redirect(response, this.safeNext(request) || this.config.loginRedirectUrl);
  }

  /** POST only: a link or an image cannot log anybody out. */
  @Post(AUTH_VIEW_PATHS.logout)
  @UseGuards(CsrfGuard)
  async logout(@Req() request: Request, @Res() response: Response): Promise<void> {
    const next = this.safeNext(request);
    await this.auth.logout(request);
    if (next) return redirect(response, next);
    if (prefersJson(request)) {
      sendJson(authPage(response), 200, { message: 'You have been logged out.' });
      return;
    }
    html(response, 200, loggedOutPage(this.config.loginUrl));
  }

  @Get(AUTH_VIEW_PATHS.logout)
  refuseLogoutByGet(@Res() response: Response): void {
    setHeader(response, 'Allow', 'POST');
    html(response, 405, methodNotAllowedPage());
  }

  @Get(AUTH_VIEW_PATHS.passwordChange)
  @LoginRequired()
  showPasswordChange(@Req() request: Request, @Res() response: Response): void {
    html(response, 200, passwordChangePage({ action: AUTH_VIEW_PATHS.passwordChange, csrfToken: csrfToken(request) }));
  }

  /**
   * The old password, then the new one twice. The current session stays logged in with
   * a new id; every other session of the user is logged out by the new password hash.
   * Wrong old passwords count towards the login lockout of the same username and address, so a
   * stolen session cannot be used to guess the password: while locked, the old password is not
   * checked (the form says so; a JSON client gets 429).
   */
  @Post(AUTH_VIEW_PATHS.passwordChange)
  @LoginRequired()
  @UseGuards(CsrfGuard)
  async submitPasswordChange(@Req() request: Request, @Res() response: Response): Promise<void> {
    const render = (status: number, errors: FormErrors) =>
      this.formFailure(request, response, status, errors, () =>
        passwordChangePage({ action: AUTH_VIEW_PATHS.passwordChange, csrfToken: csrfToken(request), errors }),
      );
    const body = formBody(request);
    const old = readField(body, 'old_password', MAX_PASSWORD_LENGTH);
    const fields = readNewPasswords(body);
    if (old === MALFORMED || fields === MALFORMED) return render(400, { form: [BAD_INPUT] });
    const user = await this.auth.getUser<any>(request);
    if (!isAuthenticated(user) || !this.users.manages(user)) return render(400, { form: [PASSWORD_ELSEWHERE] });

    const errors = requiredErrors({ old_password: old, ...fields });
    if (old) {
      const verdict = await this.auth.verifyPassword(request, user, old);
      if (verdict === 'locked') return render(prefersJson(request) ? 429 : 200, { old_password: [TOO_MANY_ATTEMPTS] });
      if (verdict === 'incorrect') errors.old_password = [PASSWORD_INCORRECT];
    }
    Object.assign(errors, await this.newPasswordErrors(fields, user));
    if (Object.keys(errors).length > 0) return render(200, errors);

    await this.savePassword(user, fields.new_password1!);
    await this.auth.updateSessionAuthHash(request, user);
    redirect(response, AUTH_VIEW_PATHS.passwordChangeDone);
  }

  @Get(AUTH_VIEW_PATHS.passwordChangeDone)
  @LoginRequired()
  showPasswordChangeDone(@Res() response: Response): void {
    html(response, 200, passwordChangeDonePage());
  }

  @Get(AUTH_VIEW_PATHS.passwordReset)
  @LoginNotRequired()
  showPasswordReset(@Req() request: Request, @Res() response: Response): void {
    html(response, 200, passwordResetPage({ action: AUTH_VIEW_PATHS.passwordReset, csrfToken: csrfToken(request) }));
  }

  /**
   * Mail a reset link to every active user with a usable password and this email, then go to
   * the "done" page whether or not anyone matched, so the page reveals no addresses.
   */
  @Post(AUTH_VIEW_PATHS.passwordReset)
  @LoginNotRequired()
  @UseGuards(CsrfGuard)
  async submitPasswordReset(@Req() request: Request, @Res() response: Response): Promise<void> {
    const email = readField(formBody(request), 'email', MAX_EMAIL_LENGTH);
    const render = (status: number, errors: FormErrors) =>
      this.formFailure(request, response, status, errors, () =>
        passwordResetPage({
          action: AUTH_VIEW_PATHS.passwordReset,
          csrfToken: csrfToken(request),
          email: typeof email === 'string' ? email : '',
          errors,
        }),
      );
    if (email === MALFORMED) return render(400, { form: [BAD_INPUT] });
    const address = email?.trim() ?? '';
    if (!address) return render(prefersJson(request) ? 400 : 200, { email: [REQUIRED] });
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address)) return render(prefersJson(request) ? 400 : 200, { email: [INVALID_EMAIL] });

    await this.mailResetLinks(request, address);
    redirect(response, AUTH_VIEW_PATHS.passwordResetDone);
  }

  @Get(AUTH_VIEW_PATHS.passwordResetDone)
  @LoginNotRequired()
  showPasswordResetDone(@Res() response: Response): void {
    html(response, 200, passwordResetDonePage());
  }

  /** The link from the email; it is checked, its token moved into the session, and then the form. */
  @Get(AUTH_VIEW_PATHS.passwordResetConfirm)
  @LoginNotRequired()
  async showPasswordResetConfirm(
    @Req() request: Request,
    @Res() response: Response,
    @Param('uidb64') uidb64: string,
    @Param('token') token: string,
  ): Promise<void> {
    const user = await this.resetLinkUser(request, response, uidb64, token);
    if (!user) return;
    html(response, 200, passwordResetConfirmPage({ action: resetFormPath(uidb64), csrfToken: csrfToken(request) }));
  }

  /** Set the new password: the token dies with the old password hash, so the link works once. */
  @Post(AUTH_VIEW_PATHS.passwordResetConfirm)
  @LoginNotRequired()
  @UseGuards(CsrfGuard)
  async submitPasswordResetConfirm(
    @Req() request: Request,
    @Res() response: Response,
    @Param('uidb64') uidb64: string,
    @Param('token') token: string,
  ): Promise<void> {
    const user = await this.resetLinkUser(request, response, uidb64, token);
    if (!user) return;
    const render = (status: number, errors: FormErrors) =>
      this.formFailure(request, response, status, errors, () =>
        passwordResetConfirmPage({ action: resetFormPath(uidb64), csrfToken: csrfToken(request), errors }),
      );
    const fields = readNewPasswords(formBody(request));
    if (fields === MALFORMED) return render(400, { form: [BAD_INPUT] });
    const errors = { ...requiredErrors(fields), ...(await this.newPasswordErrors(fields, user)) };
    if (Object.keys(errors).length > 0) return render(200, errors);

    await this.savePassword(user, fields.new_password1!);
    delete requireSession(request)[RESET_SESSION_TOKEN];
    redirect(response, AUTH_VIEW_PATHS.passwordResetComplete);
  }

  @Get(AUTH_VIEW_PATHS.passwordResetComplete)
  @LoginNotRequired()
  showPasswordResetComplete(@Res() response: Response): void {
    html(response, 200, passwordResetCompletePage(this.config.loginUrl));
  }

  /**
   * The user a reset link is for, when the link is good and already on its `set-password` form;
   * otherwise the response is sent here: a redirect that moves the token out of the URL (so it
   * never leaks through the Referer header), or the "invalid link" page (200).
   */
  private async resetLinkUser(request: Request, response: Response, uidb64: string, token: string): Promise<any> {
    const user = await this.userFromUid(uidb64);
    if (token !== RESET_URL_TOKEN) {
      if (user && this.tokens.check(user, token)) {
        requireSession(request)[RESET_SESSION_TOKEN] = token;
        redirect(response, resetFormPath(uidb64));
      } else {
        html(response, 200, passwordResetInvalidPage(AUTH_VIEW_PATHS.passwordReset));
      }
      return null;
    }
    const stored = (request as any).session?.[RESET_SESSION_TOKEN];
    if (!user || !this.tokens.check(user, stored)) {
      html(response, 200, passwordResetInvalidPage(AUTH_VIEW_PATHS.passwordReset));
      return null;
    }
    return user;
  }

  /** `uidb64` is the unpadded base64url of the primary key; anything else is no user. */
  private async userFromUid(uidb64: unknown): Promise<any> {
    if (typeof uidb64 !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(uidb64)) return null;
    const id = Buffer.from(uidb64, 'base64url').toString('utf8');
    // Only the canonical spelling: one account, one link text.
    if (Buffer.from(id, 'utf8').toString('base64url') !== uidb64) return null;
    return this.users.findById(id);
  }

  /**
   * Never throws and takes no branch the visitor can see: whatever the host and the address,
   * the answer is the same redirect (CVE-2024-45231), and failures are only logged.
   */
  private async mailResetLinks(request: Request, email: string): Promise<void> {
    try {
      if (!(await this.throttle.allowResetEmail(request, email))) {
        this.logger.warn('A password reset email was not sent: too many requests for this address or from this client.');
        return;
      }
      const users = await this.usersForReset(email);
      if (users.length === 0) return;
      const origin = this.linkOrigin(request);
      if (!origin) {
        this.logger.error(
          'No password reset email was sent: set the siteUrl option (e.g. https://example.com), or list the ' +
            `host in allowedHosts. Links in emails are never built from a Host header that is not allowed (got ${JSON.stringify(request.headers.host ?? '')}).`,
        );
        return;
      }
      const siteName = new URL(origin).host;
      for (const user of users) {
        const uid = Buffer.from(String(user.id ?? user.pk), 'utf8').toString('base64url');
        const token = this.tokens.make(user);
        const resetUrl = `${origin}/accounts/reset/${uid}/${token}`;
        const { subject, text } = passwordResetEmail({ siteName, resetUrl, username: String(user.username ?? '') });
        this.deliver({
          kind: 'password_reset',
          to: user.email,
          subject: subject.replace(/[\r\n]+/g, ''),
          text,
          context: { user, uid, token, resetUrl, siteName },
        });
      }
    } catch (error) {
      this.logger.error(`Preparing the password reset email failed: ${(error as Error)?.message ?? error}`);
    }
  }

  /**
   * Active users with a usable password whose stored email equals the given one, compared
   * case-insensitively in the database and then after NFKC and case folding, which keeps
   * Unicode look-alikes from receiving someone else's link (CVE-2019-19844).
   */
  private async usersForReset(email: string): Promise<any[]> {
    const repository = this.users.repository;
    if (!repository.metadata.findColumnWithPropertyName('email')) return [];
    const candidates = await repository
      .createQueryBuilder('account')
      .where('LOWER(account.email) = LOWER(:email)', { email })
      .getMany();
    const wanted = foldCase(email);
    return candidates.filter(
      (user: any) =>
        user.isActive !== false &&
        isPasswordUsable(user.password) &&
        typeof user.email === 'string' &&
        foldCase(user.email) === wanted,
    );
  }

  /**
   * Where links in emails point: the `siteUrl` option, or else the host the request was sent to
   * when `allowedHosts` allows it (by default only localhost and the loopback addresses, outside
   * production). An attacker chooses the Host header of their own requests.
   */
  private linkOrigin(request: Request): string | null {
    if (this.config.siteUrl) return this.config.siteUrl;
    const host = trustedHost(request, this.config.allowedHosts);
    return host ? `${request.protocol}://${host}` : null;
  }

  /**
   * The mail goes out without holding up the answer, so the response time does not tell
   * whether an address is registered; a failure is logged, never shown.
   */
  private deliver(mail: AuthMail): void {
    Promise.resolve()
      .then(() => this.mailer.send(mail))
      .catch((error: unknown) => this.logger.error(`Sending the password reset email failed: ${(error as Error)?.message ?? error}`));
  }

  private async newPasswordErrors(fields: NewPasswords, user: unknown): Promise<FormErrors> {
    const { new_password1: first, new_password2: second } = fields;
    if (!first || !second) return {};
    if (first !== second) return { new_password2: [PASSWORD_MISMATCH] };
    try {
      await this.users.validatePassword(first, user as any);
    } catch (error) {
      if (error instanceof PasswordValidationError) return { new_password2: error.errors.map((issue) => issue.message) };
      throw error;
    }
    return {};
  }

  /** Only the password column is written: the user object may be stale by now. */
  private async savePassword(user: any, raw: string): Promise<void> {
    await this.users.setPassword(user, raw);
    await this.users.savePassword(user);
  }

  /** A `next` from the form, else from the query, if it stays on this site. */
  protected safeNext(request: Request): string {
    const field = this.config.redirectFieldName;
    if (!field) return '';
    const body = formBody(request);
    const candidate = Object.hasOwn(body, field) ? body[field] : (request.query as Record<string, unknown>)[field];
    if (typeof candidate !== 'string' || candidate.length > MAX_NEXT_LENGTH) return '';
    const host = trustedHost(request, this.config.allowedHosts);
    const safe = isSafeRedirectUrl(candidate, { allowedHosts: host ? [host] : [], requireHttps: isSecureRequest(request) });
    return safe ? candidate.trim() : '';
  }

  private loginFailure(request: Request, response: Response, status: number, errors: FormErrors, username = ''): void {
    if (prefersJson(request)) return jsonFailure(response, status, errors);
    this.renderLogin(request, response, status, errors, username);
  }

  private renderLogin(request: Request, response: Response, status: number, errors: FormErrors, username = ''): void {
    html(
      response,
      status,
      loginPage({
        action: loginPath(this.config.loginUrl),
        csrfToken: csrfToken(request),
        redirectFieldName: this.config.redirectFieldName,
        next: this.safeNext(request),
        username,
        errors,
        passwordResetUrl: AUTH_VIEW_PATHS.passwordReset,
      }),
    );
  }

  private formFailure(request: Request, response: Response, status: number, errors: FormErrors, page: () => string): void {
    if (prefersJson(request)) return jsonFailure(response, status === 200 ? 400 : status, errors);
    html(response, status, page());
  }
}

/**
 * The controller `AuthModule` mounts: the views above plus the login routes at `loginUrl`
 * (Nest reads route paths from decorators, so the path is fixed when the module is defined).
 */
export function authViewsController(loginUrl: string): Type<AuthViewsController> {
  const path = loginPath(loginUrl);

  @Controller()
  class MountedAuthViewsController extends AuthViewsController {
    @Get(path)
    @LoginNotRequired()
    login(@Req() request: Request, @Res() response: Response): void {
      this.showLogin(request, response);
    }

    @Post(path)
    @LoginNotRequired()
    @UseGuards(CsrfGuard)
    loginSubmit(@Req() request: Request, @Res() response: Response): Promise<void> {
      return this.submitLogin(request, response);
    }
  }
  return MountedAuthViewsController;
}

/** The path part of `loginUrl`, which must be a path on this site for the view to live there. */
export function loginPath(loginUrl: string): string {
  if (!loginUrl.startsWith('/') || loginUrl.startsWith('//')) {
    throw new ImproperlyConfigured(
      `The built-in login view needs loginUrl to be a path on this site such as /accounts/login; got '${loginUrl}'.`,
    );
  }
  return loginUrl.split(/[?#]/)[0];
}

type NewPasswords = {
  new_password1: string | undefined;
  new_password2: string | undefined;
};

function readNewPasswords(body: Record<string, unknown>): NewPasswords | typeof MALFORMED {
  const first = readField(body, 'new_password1', MAX_PASSWORD_LENGTH);
  const second = readField(body, 'new_password2', MAX_PASSWORD_LENGTH);
  if (first === MALFORMED || second === MALFORMED) return MALFORMED;
  return { new_password1: first, new_password2: second };
}

function requiredErrors(fields: Record<string, string | undefined>): FormErrors {
  const errors: FormErrors = {};
  for (const [name, value] of Object.entries(fields)) if (!value) errors[name] = [REQUIRED];
  return errors;
}

function formBody(request: Request): Record<string, unknown> {
  const body = request.body as unknown;
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

/** A text field as a form sends it; arrays, objects, NUL characters and over-long values are malformed. */
function readField(body: Record<string, unknown>, name: string, maxLength: number): Field {
  if (!Object.hasOwn(body, name)) return undefined;
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > maxLength || value.includes('\0')) return MALFORMED;
  return value;
}

function foldCase(text: string): string {
  return text.normalize('NFKC').toUpperCase().toLowerCase();
}

function resetFormPath(uidb64: string): string {
  return `/accounts/reset/${encodeURIComponent(uidb64)}/${RESET_URL_TOKEN}`;
}

function prefersJson(request: Request): boolean {
  return !wantsHtml(request);
}

/** Headers of every auth page: never cached, never framed, no referrer leaving the site. */
function authPage(response: Response): Response {
  setHeader(response, 'Cache-Control', 'max-age=0, no-cache, no-store, must-revalidate, private');
  setHeader(response, 'X-Frame-Options', 'DENY');
  setHeader(response, 'Content-Security-Policy', `default-src 'none'; style-src ${STYLE_SOURCE}; frame-ancestors 'none'; base-uri 'none'`);
  setHeader(response, 'Referrer-Policy', 'same-origin');
  return response;
}

function html(response: Response, status: number, body: string): void {
  sendHtml(authPage(response), status, body);
}

function redirect(response: Response, location: string): void {
  sendRedirect(authPage(response), 302, location);
}

function jsonFailure(response: Response, status: number, errors: FormErrors): void {
  const messages = Object.values(errors).flat() as string[];
  sendJson(authPage(response), status, { statusCode: status, message: messages[0] ?? 'Invalid input.', errors });
}
