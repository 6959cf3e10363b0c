import { Controller, ForbiddenException, Get, Inject, Module, NotFoundException, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AUTH_CONFIG, type AuthConfig } from '../../auth.config.js';
import { AuthService } from '../../auth.service.js';
import { LoginNotRequired } from '../../decorators/access.decorators.js';
import { isSafeRedirectUrl } from '../../redirects.js';
import { trustedHost } from '../../request/hosts.js';
import { isSecureRequest, requestUrl, sendRedirect, setHeader } from '../../request/platform.js';
import { requireLoadedSession } from '../../request/session-lifecycle.js';
import { loadSession } from '../../request/session.js';
import { CsrfGuard } from '../../views/csrf.js';
import { BackendRegistry } from '../backend.registry.js';
import { OidcLoginFailed } from './oidc-errors.js';
import { liveFlows, OIDC_CALLBACK, OIDC_FLOWS_SESSION_KEY, OIDC_LOGIN_SESSION_KEY, OidcBackend, PENDING_LOGIN, type OidcCallback } from './oidc.backend.js';

const MAX_NEXT_LENGTH = 2048;

/**
 * mozilla-django-oidc's views: `GET /oidc/authenticate?provider=…&next=…` sends the browser to
 * the provider, `GET /oidc/callback` finishes the login through `AuthService.authenticate()` and
 * `login()` (session id rotated, events, session auth hash, as for any backend), `POST
 * /oidc/logout` logs out here and, when the provider supports it, there too.
 */
@Controller('oidc')
export class OidcController {
  constructor(
    private readonly auth: AuthService,
    private readonly backends: BackendRegistry,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  @Get('authenticate')
  @LoginNotRequired()
  async authenticate(@Req() request: Request, @Res() response: Response, @Query('provider') name: unknown): Promise<void> {
    const backend = this.provider(name);
    const origin = this.origin(request);
    const redirectUri = backend.redirectUriFor(origin);
    if (!redirectUri) {
      throw new OidcLoginFailed('The callback address of this site is not known: set the siteUrl option or the backend’s redirectUri.');
    }
    const url = await backend.startLogin(request, redirectUri, this.safeNext(request));
    redirect(response, url);
  }

  @Get('callback')
  @LoginNotRequired()
  async callback(@Req() request: Request, @Res() response: Response, @Query() query: Record<string, unknown>): Promise<void> {
    const session = await requireLoadedSession(request);
    const flows = liveFlows(session[OIDC_FLOWS_SESSION_KEY]);
    const state = typeof query.state === 'string' ? query.state : '';
    const flow = Object.hasOwn(flows, state) ? flows[state] : undefined;
    if (flow) {
      // One use: a replayed callback finds nothing.
      delete flows[state];
      session[OIDC_FLOWS_SESSION_KEY] = flows;
    }
    if (!flow) {
      throw new OidcLoginFailed('This login does not match one started here: it was already used, it expired, or it came from elsewhere. Please log in again.');
    }
    const backend = this.provider(flow.provider);
    if (query.error !== undefined) {
      const code = typeof query.error === 'string' && /^[\w.-]{1,64}$/.test(query.error) ? query.error : 'error';
      throw new ForbiddenException(`${backend.oidcLogin.label} did not log you in (${code}).`);
    }
    const url = new URL(flow.redirectUri);
    url.search = new URL(requestUrl(request), 'http://callback.invalid').search;
    (request as any)[OIDC_CALLBACK] = { flow, state, url } satisfies OidcCallback;
    const user = await this.auth.authenticate(request, { oidcCallback: backend.name });
    if (!user) throw new ForbiddenException('This account may not log in here.');
    const pending = (request as any)[PENDING_LOGIN];
    await this.auth.login(request, user, backend.name);
    if (pending) (await requireLoadedSession(request))[OIDC_LOGIN_SESSION_KEY] = pending;
    redirect(response, flow.next || this.config.loginRedirectUrl);
  }

  /** POST with the CSRF token: logs out here, then at the provider when it has an end-session endpoint. */
  @Post('logout')
  @UseGuards(CsrfGuard)
  async logout(@Req() request: Request, @Res() response: Response): Promise<void> {
    const session = (await loadSession(request)) as Record<string, unknown> | undefined;
    const login = session?.[OIDC_LOGIN_SESSION_KEY] as { provider?: string; idToken?: string } | undefined;
    await this.auth.logout(request);
    const backend = login?.provider ? this.findProvider(login.provider) : undefined;
    const atProvider = backend ? await backend.endSessionUrl(login!.idToken).catch(() => null) : null;
    redirect(response, atProvider ?? this.config.logoutRedirectUrl ?? '/');
  }

  private provider(name: unknown): OidcBackend {
    const all = this.backends.all.map((entry) => entry.backend).filter((backend): backend is OidcBackend => backend instanceof OidcBackend);
    const found = name === undefined && all.length === 1 ? all[0] : typeof name === 'string' ? this.findProvider(name) : undefined;
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

  private safeNext(request: Request): string {
    const field = this.config.redirectFieldName;
    const candidate = field ? (request.query as Record<string, unknown>)[field] : undefined;
    if (typeof candidate !== 'string' || candidate.length > MAX_NEXT_LENGTH) return '';
    const host = trustedHost(request, this.config.allowedHosts);
    return isSafeRedirectUrl(candidate, { allowedHosts: host ? [host] : [], requireHttps: isSecureRequest(request) }) ? candidate.trim() : '';
  }
}

function redirect(response: Response, location: string): void {
  setHeader(response, 'Cache-Control', 'no-store');
  sendRedirect(response, 302, location);
}

/** Mounts the OpenID Connect views; import it beside `AuthModule` when a backend is an `OidcBackend`. */
@Module({ controllers: [OidcController] })
export class OidcModule {}
