import { Controller, Get, Inject, Param, Post, Req, Res, UseFilters, UseGuards, type OnApplicationBootstrap, type Type } from '@nestjs/common';
import type { Request, Response } from 'express';
import { isAuthenticated } from '../anonymous-user.js';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { AuthService } from '../auth.service.js';
import { BackendRegistry } from '../backends/backend.registry.js';
import { LoginNotRequired, LoginRequired } from '../decorators/access.decorators.js';
import { ImproperlyConfigured } from '../errors.js';
import { TooManyLoginAttempts } from '../login-throttle.js';
import { PasswordResetTokens } from '../password-reset-tokens.js';
import { isSafeRedirectUrl } from '../redirects.js';
import { trustedHost } from '../request/hosts.js';
import { isSecureRequest, setHeader } from '../request/platform.js';
import { findSession, sessionOf, setSessionExpiry } from '../sessions/session-of.js';
import { UserManager } from '../user.manager.js';
import { CSRF_FIELD_NAME, CsrfGuard, csrfToken } from '../request/csrf.js';
import { AuthenticationForm, FORM_MESSAGES, formBody, PasswordChangeForm, PasswordResetForm, SetPasswordForm } from './forms.js';
import { decodeUid, PasswordResetMail } from './password-reset-mail.js';
import type { FormErrors } from './templates.js';
import { CsrfFailureFilter, jsonFailure, prefersJson, redirectTo, sendAuthJson, ViewTemplates } from './view-http.js';
import { AUTH_VIEW_OPTIONS, type ResolvedViewOptions } from './view-options.js';
import { AUTH_VIEW_PATHS, loginPath, passwordResetConfirmPath, RESET_SESSION_TOKEN, RESET_URL_TOKEN } from './view-paths.js';

const MAX_NEXT_LENGTH = 2048;

/**
 * Django's login, logout, password change and password reset views, with CSRF protection on
 * every form and `Cache-Control: no-store` on every page. Each handler reads its form
 * (`forms.ts`), calls the workflow (`AuthService`, `UserManager`, `PasswordResetMail`) and
 * answers with a page, a redirect or JSON (`view-http.ts`). `AuthModule` mounts a subclass that
 * adds the login routes at `loginUrl` (see `authViewsController`).
 */
@Controller()
@UseFilters(CsrfFailureFilter)
export class AuthViewsController implements OnApplicationBootstrap {
  protected readonly templates: ViewTemplates;

  constructor(
    @Inject(AUTH_CONFIG) protected readonly config: AuthConfig,
    @Inject(AUTH_VIEW_OPTIONS) protected readonly options: ResolvedViewOptions,
    protected readonly auth: AuthService,
    protected readonly users: UserManager<any>,
    protected readonly tokens: PasswordResetTokens,
    private readonly resetMail: PasswordResetMail,
    private readonly backends: BackendRegistry,
  ) {
    this.templates = new ViewTemplates(options);
  }

  /**
   * Django raises on the first request that would loop or could not log in; here the app does
   * not start (after every module's init: the backends are known by then).
   */
  onApplicationBootstrap(): void {
    const { postResetLogin, postResetLoginBackend: backend } = this.options.passwordResetConfirm;
    if (postResetLogin && backend === undefined && this.backends.all.length > 1) {
      throw new ImproperlyConfigured(
        'views.passwordResetConfirm.postResetLogin logs the user in, and several backends are configured: name the one ' +
          `to log in with as postResetLoginBackend (one of ${this.backends.all.map((entry) => entry.name).join(', ')}).`,
      );
    }
    if (postResetLogin && backend !== undefined && !this.backends.get(backend)) {
      throw new ImproperlyConfigured(
        `views.passwordResetConfirm.postResetLoginBackend is '${backend}', which is not a configured backend ` +
          `(${this.backends.all.map((entry) => entry.name).join(', ')}).`,
      );
    }
    const success = this.options.login.nextPage ?? this.config.loginRedirectUrl;
    if (this.options.login.redirectAuthenticatedUser && pathOf(success) === loginPath(this.config.loginUrl)) {
      throw new ImproperlyConfigured(
        `views.login.redirectAuthenticatedUser would send logged-in users from the login page back to it (${success}): ` +
          'point loginRedirectUrl (or views.login.nextPage) at another page.',
      );
    }
  }

  /** GET loginUrl: the form; a JSON client gets `{ csrfToken }` to send with its POST. */
  protected async showLogin(request: Request, response: Response): Promise<void> {
    if (await this.sendAuthenticatedUserOn(request, response)) return;
    const token = csrfToken(request);
    if (prefersJson(request)) return sendAuthJson(response, 200, { csrfToken: token });
    this.renderLogin(request, response, 200, {}, '', false);
  }

  /**
   * POST loginUrl: log in and go to a safe `next`, else `views.login.nextPage`, else
   * `loginRedirectUrl`. Every failure shows the same message, whichever backend refused.
   */
  protected async submitLogin(request: Request, response: Response): Promise<void> {
    if (await this.sendAuthenticatedUserOn(request, response)) return;
    const form = new AuthenticationForm(formBody(request));
    const fail = (status: number, errors: FormErrors) => {
      if (prefersJson(request)) return jsonFailure(response, status, errors);
      this.renderLogin(request, response, status, errors, form.username, form.rememberMe);
    };
    if (form.malformed) return fail(400, { form: [FORM_MESSAGES.malformed] });
    if (!form.valid) return fail(prefersJson(request) ? 400 : 200, form.errors);

    let user: any;
    try {
      user = await this.auth.authenticate<any>(request, { username: form.username, password: form.password });
    } catch (error) {
      // The address is over its limits: a browser gets the form again with the reason, as 429.
      if (!(error instanceof TooManyLoginAttempts) || prefersJson(request)) throw error;
      setHeader(response, 'Retry-After', String(error.retryAfter));
      return fail(429, { form: [(error.getResponse() as { message: string }).message] });
    }
    const refusal = !user ? FORM_MESSAGES.invalidLogin : user.isActive === false ? FORM_MESSAGES.inactive : null;
    if (refusal) return fail(prefersJson(request) ? 401 : 200, { form: [refusal] });
    // login() also drops the CSRF token: the next form gets a new one.
    await this.auth.login(request, user);
    // Unticked, the session ends with the browser. Set after login(), which starts from an empty
    // session when another user was logged in.
    if (this.options.login.rememberMe) await setSessionExpiry(request, form.rememberMe ? null : 0);
    redirectTo(response, this.loginSuccessUrl(request));
  }

  /** POST only: a link or an image cannot log anybody out. */
  @Post(AUTH_VIEW_PATHS.logout)
  @UseGuards(CsrfGuard)
  async logout(@Req() request: Request, @Res() response: Response): Promise<void> {
    // Django's LogoutView: a safe `next`, else `nextPage`, else `logoutRedirectUrl`, else the page.
    const next = this.safeNext(request, this.options.logout.successUrlAllowedHosts);
    await this.auth.logout(request);
    const target = next || this.options.logout.nextPage || this.config.logoutRedirectUrl;
    if (target) return redirectTo(response, target);
    if (prefersJson(request)) return sendAuthJson(response, 200, { message: 'You have been logged out.' });
    this.templates.send(response, 200, 'loggedOut', { loginUrl: this.config.loginUrl });
  }

  /** Django's `logout_then_login`: log out, then go to the login page (or a safe `next`). */
  @Post(AUTH_VIEW_PATHS.logoutThenLogin)
  @UseGuards(CsrfGuard)
  async logoutThenLogin(@Req() request: Request, @Res() response: Response): Promise<void> {
    const next = this.safeNext(request, this.options.logout.successUrlAllowedHosts);
    await this.auth.logout(request);
    redirectTo(response, next || this.config.loginUrl);
  }

  @Get(AUTH_VIEW_PATHS.logout)
  refuseLogoutByGet(@Res() response: Response): void {
    this.refuseGet(response);
  }

  @Get(AUTH_VIEW_PATHS.logoutThenLogin)
  refuseLogoutThenLoginByGet(@Res() response: Response): void {
    this.refuseGet(response);
  }

  @Get(AUTH_VIEW_PATHS.passwordChange)
  @LoginRequired()
  showPasswordChange(@Req() request: Request, @Res() response: Response): void {
    this.templates.send(response, 200, 'passwordChange', this.passwordChangePage(request, {}));
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
        this.templates.send(response, status, 'passwordChange', this.passwordChangePage(request, errors)),
      );
    const form = new PasswordChangeForm(formBody(request));
    if (form.malformed) return render(400, { form: [FORM_MESSAGES.malformed] });
    const user = await this.auth.getUser<any>(request);
    if (!isAuthenticated(user) || !this.users.manages(user)) return render(400, { form: [FORM_MESSAGES.passwordElsewhere] });

    if (form.oldPassword) {
      const verdict = await this.auth.verifyPassword(request, user, form.oldPassword);
      if (verdict === 'locked') return render(prefersJson(request) ? 429 : 200, { old_password: [FORM_MESSAGES.tooManyAttempts] });
      if (verdict === 'incorrect') form.addError('old_password', FORM_MESSAGES.passwordIncorrect);
    }
    await form.validateNewPassword(this.users, user);
    if (!form.valid) return render(200, form.errors);

    await this.savePassword(user, form.newPassword1!);
    await this.auth.updateSessionAuthHash(request, user);
    redirectTo(response, AUTH_VIEW_PATHS.passwordChangeDone);
  }

  @Get(AUTH_VIEW_PATHS.passwordChangeDone)
  @LoginRequired()
  showPasswordChangeDone(@Res() response: Response): void {
    this.templates.send(response, 200, 'passwordChangeDone', {});
  }

  /** "Log out my other devices": every session of the user but this one ends. */
  @Post(AUTH_VIEW_PATHS.logoutOtherSessions)
  @LoginRequired()
  @UseGuards(CsrfGuard)
  async logoutOtherSessions(@Req() request: Request, @Res() response: Response): Promise<void> {
    const count = await this.auth.logoutOtherSessions(request);
    if (prefersJson(request)) return sendAuthJson(response, 200, { loggedOut: count });
    this.templates.send(response, 200, 'otherSessionsLoggedOut', { count, passwordChangeUrl: AUTH_VIEW_PATHS.passwordChange });
  }

  @Get(AUTH_VIEW_PATHS.passwordReset)
  @LoginNotRequired()
  showPasswordReset(@Req() request: Request, @Res() response: Response): void {
    this.templates.send(response, 200, 'passwordReset', this.formPage(request, AUTH_VIEW_PATHS.passwordReset, {}, { email: '' }));
  }

  /**
   * Mail a reset link to every active user with a usable password and this email, then go to
   * the "done" page whether or not anyone matched, so the page reveals no addresses.
   */
  @Post(AUTH_VIEW_PATHS.passwordReset)
  @LoginNotRequired()
  @UseGuards(CsrfGuard)
  async submitPasswordReset(@Req() request: Request, @Res() response: Response): Promise<void> {
    const form = new PasswordResetForm(formBody(request));
    const render = (status: number, errors: FormErrors) =>
      this.formFailure(request, response, status, errors, () =>
        this.templates.send(response, status, 'passwordReset', this.formPage(request, AUTH_VIEW_PATHS.passwordReset, errors, { email: form.typed })),
      );
    if (form.malformed) return render(400, { form: [FORM_MESSAGES.malformed] });
    if (!form.valid) return render(prefersJson(request) ? 400 : 200, form.errors);
    await this.resetMail.send(request, form.email);
    redirectTo(response, AUTH_VIEW_PATHS.passwordResetDone);
  }

  @Get(AUTH_VIEW_PATHS.passwordResetDone)
  @LoginNotRequired()
  showPasswordResetDone(@Res() response: Response): void {
    this.templates.send(response, 200, 'passwordResetDone', {});
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
    this.templates.send(response, 200, 'passwordResetConfirm', this.formPage(request, passwordResetConfirmPath(uidb64), {}, {}));
  }

  /**
   * Set the new password: the token dies with the old password hash, so the link works once.
   * With `views.passwordResetConfirm.postResetLogin` the user is logged in as well.
   */
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
        this.templates.send(response, status, 'passwordResetConfirm', this.formPage(request, passwordResetConfirmPath(uidb64), errors, {})),
      );
    const form = new SetPasswordForm(formBody(request));
    if (form.malformed) return render(400, { form: [FORM_MESSAGES.malformed] });
    await form.validateNewPassword(this.users, user);
    if (!form.valid) return render(200, form.errors);

    await this.savePassword(user, form.newPassword1!);
    (await sessionOf(request)).delete(RESET_SESSION_TOKEN);
    const { postResetLogin, postResetLoginBackend } = this.options.passwordResetConfirm;
    if (postResetLogin) await this.auth.login(request, user, postResetLoginBackend);
    redirectTo(response, AUTH_VIEW_PATHS.passwordResetComplete);
  }

  @Get(AUTH_VIEW_PATHS.passwordResetComplete)
  @LoginNotRequired()
  showPasswordResetComplete(@Res() response: Response): void {
    this.templates.send(response, 200, 'passwordResetComplete', { loginUrl: this.config.loginUrl });
  }

  /**
   * The user a reset link is for, when the link is good and already on its `set-password` form;
   * otherwise the response is sent here: a redirect that moves the token out of the URL (so it
   * never leaks through the Referer header), or the "invalid link" page (200).
   */
  private async resetLinkUser(request: Request, response: Response, uidb64: string, token: string): Promise<any> {
    const id = decodeUid(uidb64);
    const user = id === null ? null : await this.users.findById(id);
    const invalid = () => this.templates.send(response, 200, 'passwordResetInvalid', { passwordResetUrl: AUTH_VIEW_PATHS.passwordReset });
    if (token !== RESET_URL_TOKEN) {
      if (user && this.tokens.check(user, token)) {
        (await sessionOf(request)).set(RESET_SESSION_TOKEN, token);
        redirectTo(response, passwordResetConfirmPath(uidb64));
      } else {
        invalid();
      }
      return null;
    }
    const stored = (await findSession(request))?.get(RESET_SESSION_TOKEN);
    if (!user || !this.tokens.check(user, stored)) {
      invalid();
      return null;
    }
    return user;
  }

  /** Only the password column is written: the user object may be stale by now. */
  private async savePassword(user: any, raw: string): Promise<void> {
    await this.users.setPassword(user, raw);
    await this.users.savePassword(user);
  }

  /**
   * Django's `redirect_authenticated_user`: a logged-in visitor of the login page goes where a
   * login would send them. `true` when the response is sent.
   */
  private async sendAuthenticatedUserOn(request: Request, response: Response): Promise<boolean> {
    if (!this.options.login.redirectAuthenticatedUser) return false;
    if (!isAuthenticated(await this.auth.getUser(request))) return false;
    redirectTo(response, this.loginSuccessUrl(request));
    return true;
  }

  /** Django's `LoginView.get_success_url`: a safe `next` (never the login page itself), else `nextPage`, else `loginRedirectUrl`. */
  private loginSuccessUrl(request: Request): string {
    const next = this.safeNext(request, this.options.login.successUrlAllowedHosts);
    const loopsBack = next && this.options.login.redirectAuthenticatedUser && pathOf(next) === loginPath(this.config.loginUrl);
    return (!loopsBack && next) || this.options.login.nextPage || this.config.loginRedirectUrl;
  }

  /**
   * A `next` from the form, else from the query, if it stays on this site or goes to one of
   * `otherHosts` (Django's `url_has_allowed_host_and_scheme` with `success_url_allowed_hosts`).
   */
  protected safeNext(request: Request, otherHosts: string[] = []): string {
    const field = this.config.redirectFieldName;
    if (!field) return '';
    const body = formBody(request);
    const candidate = Object.hasOwn(body, field) ? body[field] : (request.query as Record<string, unknown>)[field];
    if (typeof candidate !== 'string' || candidate.length > MAX_NEXT_LENGTH) return '';
    const host = trustedHost(request, this.config.allowedHosts);
    const allowedHosts = [...(host ? [host] : []), ...otherHosts];
    return isSafeRedirectUrl(candidate, { allowedHosts, requireHttps: isSecureRequest(request) }) ? candidate.trim() : '';
  }

  private renderLogin(request: Request, response: Response, status: number, errors: FormErrors, username: string, remembered: boolean): void {
    const next = this.safeNext(request, this.options.login.successUrlAllowedHosts);
    this.templates.send(response, status, 'login', {
      ...this.formPage(request, loginPath(this.config.loginUrl), errors, {}),
      redirectFieldName: this.config.redirectFieldName,
      next,
      providers: this.providerButtons(),
      username,
      passwordResetUrl: AUTH_VIEW_PATHS.passwordReset,
      rememberMe: this.options.login.rememberMe,
      remembered,
    });
  }

  /** A "Log in with …" button per backend whose login starts elsewhere (an identity provider's, say). */
  private providerButtons(): { label: string; provider: string; action: string }[] {
    return this.backends.all.flatMap(({ backend }) => {
      const button = backend.loginButton;
      return button ? [{ label: button.label, provider: button.provider, action: button.action }] : [];
    });
  }

  private passwordChangePage(request: Request, errors: FormErrors) {
    return { ...this.formPage(request, AUTH_VIEW_PATHS.passwordChange, errors, {}), otherSessionsAction: AUTH_VIEW_PATHS.logoutOtherSessions };
  }

  private formPage<T extends object>(request: Request, action: string, errors: FormErrors, extra: T) {
    return { action, csrfToken: csrfToken(request), csrfFieldName: CSRF_FIELD_NAME, errors, ...extra };
  }

  private formFailure(request: Request, response: Response, status: number, errors: FormErrors, page: () => void): void {
    if (prefersJson(request)) return jsonFailure(response, status === 200 ? 400 : status, errors);
    page();
  }

  private refuseGet(response: Response): void {
    setHeader(response, 'Allow', 'POST');
    this.templates.send(response, 405, 'methodNotAllowed', { allow: 'POST' });
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
    login(@Req() request: Request, @Res() response: Response): Promise<void> {
      return this.showLogin(request, response);
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

/** The path of a URL or path on this site (no query, no fragment); `null` for another site's URL. */
function pathOf(url: string): string | null {
  if (!url.startsWith('/') || url.startsWith('//')) return null;
  return url.split(/[?#]/)[0];
}
