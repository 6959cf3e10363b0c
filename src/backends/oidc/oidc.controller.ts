import {
  Body,
  Controller,
  ForbiddenException,
  Get,
  HttpException,
  HttpStatus,
  Inject,
  Logger,
  Module,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { AUTH_CONFIG, type AuthConfig } from '../../auth.config.js';
import { AuthService } from '../../auth.service.js';
import { LoginNotRequired } from '../../decorators/access.decorators.js';
import { isSafeRedirectUrl } from '../../redirects.js';
import { trustedHost } from '../../request/hosts.js';
import { isSecureRequest, requestUrl, sendHtml, sendRedirect, setHeader } from '../../request/platform.js';
import { CsrfGuard } from '../../request/csrf.js';
import { stateOf } from '../../request/request-state.js';
import { findSession, sessionOf } from '../../sessions/session-of.js';
import { BackendRegistry } from '../backend.registry.js';
import { OidcLoginFailed } from './oidc-errors.js';
import { endSessionPage, END_SESSION_PAGE_POLICY } from './oidc-logout.page.js';
import { liveFlows, OIDC_FLOWS_SESSION_KEY, OIDC_LOGIN_SESSION_KEY, OidcBackend, type OidcLogin } from './oidc.backend.js';

const MAX_NEXT_LENGTH = 2048;

/**
 * mozilla-django-oidc's views: `POST /oidc/authenticate` (with the CSRF token: `provider`, `next`)
 * sends the browser to the provider, `GET /oidc/callback/{provider}` finishes the login through
 * `AuthService.authenticate()` and `login()` (session id rotated, events, session auth hash, as
 * for any backend), `POST /oidc/logout` logs out here and, when the provider supports it, there too.
 */
@Controller('oidc')
export class OidcController {
  private readonly logger = new Logger('OidcController');

  constructor(
    private readonly auth: AuthService,
    private readonly backends: BackendRegistry,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  /**
   * Start a login. A POST with the CSRF token, so no other site can start one in a visitor's
   * browser (and, with a provider that logs them in silently, finish it with an account of its
   * choosing): the login page's "Log in with …" buttons are small forms.
   */
  @Post('authenticate')
  @LoginNotRequired()
  @UseGuards(CsrfGuard)
  async authenticate(@Req() request: Request, @Res() response: Response, @Body() body: unknown): Promise<void> {
    const form = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    const backend = this.provider(form.provider);
    const redirectUri = backend.redirectUriFor(this.origin(request));
    if (!redirectUri) {
      throw new OidcLoginFailed('The callback address of this site is not known: set the siteUrl option or the backend’s redirectUri.');
    }
    const field = this.config.redirectFieldName;
    const url = await backend.startLogin(request, redirectUri, this.safeNext(request, field ? form[field] : undefined));
    // 303: the browser goes on to the provider with a GET.
    redirect(response, url, 303);
  }

  /** A link or an image of another site must not start a login: 405, nothing kept. */
  @Get('authenticate')
  @LoginNotRequired()
  refuseGet(@Res() response: Response): never {
    setHeader(response, 'Allow', 'POST');
    throw new HttpException(
      'Start a login with the “Log in with …” button of the login page: a form that POSTs here with the CSRF token.',
      HttpStatus.METHOD_NOT_ALLOWED,
    );
  }

  /** Where callbacks came before each provider had its own: say what to register instead. */
  @Get('callback')
  @LoginNotRequired()
  sharedCallback(): never {
    throw new NotFoundException('Each identity provider has a callback of its own here: register /oidc/callback/{provider name} at the provider.');
  }

  /**
   * The provider's answer, at that provider's own callback: the login under way is taken out of
   * the session by its `state` (one use) and must have been started with this provider, or the
   * code is never sent anywhere (a code of one provider cannot be redeemed at another, RFC 9700
   * §4.4). openid-client then requires `iss` when the provider advertises it (RFC 9207).
   */
  @Get('callback/:provider')
  @LoginNotRequired()
  async callback(
    @Req() request: Request,
    @Res() response: Response,
    @Param('provider') name: string,
    @Query() query: Record<string, unknown>,
  ): Promise<void> {
    const backend = this.provider(name);
    const session = await sessionOf(request);
    const flows = liveFlows(session.get(OIDC_FLOWS_SESSION_KEY));
    const state = typeof query.state === 'string' ? query.state : '';
    const flow = Object.hasOwn(flows, state) ? flows[state] : undefined;
    if (flow) {
      // One use: a replayed callback finds nothing.
      delete flows[state];
      session.set(OIDC_FLOWS_SESSION_KEY, flows);
    }
    if (!flow) {
      throw new OidcLoginFailed('This login does not match one started here: it was already used, it expired, or it came from elsewhere. Please log in again.');
    }
    if (flow.provider !== backend.name) {
      this.logger.warn(`A callback at ${backend.name} brought the state of a login started with ${flow.provider}: refused (a mix-up between providers?).`);
      throw new OidcLoginFailed('This answer came from another identity provider than the one you chose. Please log in again.');
    }
    if (query.error !== undefined) {
      const code = typeof query.error === 'string' && /^[\w.-]{1,64}$/.test(query.error) ? query.error : 'error';
      throw new ForbiddenException(`${backend.loginButton.label} did not log you in (${code}).`);
    }
    const url = new URL(flow.redirectUri);
    url.search = new URL(requestUrl(request), 'http://callback.invalid').search;
    const requestState = stateOf(request);
    requestState.oidcCallback = { flow, state, url };
    // A code redeemed with this session's own state and PKCE verifier: no password guess.
    const user = await this.auth.authenticate(request, { oidcCallback: backend.name }, { kind: 'callback' });
    if (!user) throw new ForbiddenException('This account may not log in here.');
    const login = requestState.oidcLogin;
    await this.auth.login(request, user, backend.name);
    if (login) (await sessionOf(request)).set(OIDC_LOGIN_SESSION_KEY, login);
    redirect(response, flow.next || this.config.loginRedirectUrl);
  }

  /**
   * POST with the CSRF token: logs out here, then at the provider when it has an end-session
   * endpoint (a redirect, or with `logoutIdTokenHint` a page whose form posts the ID token there,
   * sent by itself where scripts run, a button otherwise); else to `logoutRedirectUrl`.
   */
  @Post('logout')
  @UseGuards(CsrfGuard)
  async logout(@Req() request: Request, @Res() response: Response): Promise<void> {
    const login = (await findSession(request))?.get(OIDC_LOGIN_SESSION_KEY) as Partial<OidcLogin> | undefined;
    await this.auth.logout(request);
    const backend = login?.provider ? this.findProvider(login.provider) : undefined;
    const atProvider = backend ? await backend.endSession(login!.idToken).catch(() => null) : null;
    if (!atProvider) return redirect(response, this.config.logoutRedirectUrl ?? '/');
    if ('redirect' in atProvider) return redirect(response, atProvider.redirect);
    setHeader(response, 'Cache-Control', 'no-store');
    setHeader(response, 'Content-Security-Policy', END_SESSION_PAGE_POLICY);
    setHeader(response, 'X-Frame-Options', 'DENY');
    setHeader(response, 'X-Content-Type-Options', 'nosniff');
    setHeader(response, 'Referrer-Policy', 'no-referrer');
    sendHtml(response, 200, endSessionPage({ label: backend!.loginButton.label, ...atProvider.form }).value);
  }

  private provider(name: unknown): OidcBackend {
    const all = this.backends.all.map((entry) => entry.backend).filter((backend): backend is OidcBackend => backend instanceof OidcBackend);
    const found = (name === undefined || name === '') && all.length === 1 ? all[0] : typeof name === 'string' ? this.findProvider(name) : undefined;
    if (!found) throw new NotFoundException('No such identity provider here.');
    return found;
  }

  private findProvider(name: string): OidcBackend | undefined {
    const backend = this.backends.get(name)?.backend;
    return backend instanceof OidcBackend ? backend : undefined;
  }

  /** `siteUrl`, or outside production the request's own allowed host (behind a proxy, `trust proxy` gives the scheme). */
  private origin(request: Request): string | null {
    if (this.config.siteUrl) return this.config.siteUrl;
    if (this.config.production) return null;
    const host = trustedHost(request, this.config.allowedHosts);
    return host ? `${request.protocol}://${host}` : null;
  }

  private safeNext(request: Request, candidate: unknown): string {
    if (typeof candidate !== 'string' || candidate.length > MAX_NEXT_LENGTH) return '';
    const host = trustedHost(request, this.config.allowedHosts);
    return isSafeRedirectUrl(candidate, { allowedHosts: host ? [host] : [], requireHttps: isSecureRequest(request) }) ? candidate.trim() : '';
  }
}

function redirect(response: Response, location: string, status = 302): void {
  setHeader(response, 'Cache-Control', 'no-store');
  sendRedirect(response, status, location);
}

/** Mounts the OpenID Connect views; import it beside `AuthModule` when a backend is an `OidcBackend`. */
@Module({ controllers: [OidcController] })
export class OidcModule {}
