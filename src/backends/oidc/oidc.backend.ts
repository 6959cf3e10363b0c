import { Injectable, Logger, type Type } from '@nestjs/common';
import type { Request } from 'express';
import * as client from 'openid-client';
import { ExternalUsers } from '../../external-users.js';
import { PermissionManager } from '../../permission.manager.js';
import { ExternalIdentity } from '../../storage/external-identity.entity.js';
import { Group } from '../../storage/group.entity.js';
import type { RequiredEntities } from '../../storage/required-entities.js';
import { stateOf } from '../../request/request-state.js';
import { sessionOf } from '../../sessions/session-of.js';
import { UserManager } from '../../user.manager.js';
import type { Credentials } from '../auth-backend.interface.js';
import { BaseBackend, configuredBackend, configuredOptions } from '../base.backend.js';
import { OidcLoginFailed, ProviderUnavailable } from './oidc-errors.js';
import { resolveOidcOptions, type OidcBackendOptions, type ResolvedOidcOptions } from './oidc.options.js';

/** Session key of the logins under way: state → what the callback needs (mozilla-django-oidc's `oidc_states`). */
export const OIDC_FLOWS_SESSION_KEY = '_oidc_flows';
/** Session keys of the provider and ID token of the login, for logging out at the provider. */
export const OIDC_LOGIN_SESSION_KEY = '_oidc_login';

/** At most this many logins under way per session (several tabs); the oldest goes first. */
const MAX_FLOWS = 5;
/** A login that takes longer than this at the provider has to start again. */
const FLOW_LIFETIME_MS = 10 * 60 * 1000;

/** One login under way, kept in the session between the redirect and the callback. */
export interface OidcFlow {
  provider: string;
  codeVerifier: string;
  nonce: string;
  redirectUri: string;
  next: string;
  startedAt: number;
}

/** What `populateUser` is given: the local user before it is saved, and the claims (ID token and userinfo). */
export interface OidcPopulateContext {
  user: any;
  claims: Record<string, unknown>;
  created: boolean;
  request: Request | undefined;
}

/**
 * Log in with an OpenID Connect provider (mozilla-django-oidc's `OIDCAuthenticationBackend`), on
 * `openid-client`: the authorization code flow with PKCE, `state` and `nonce` kept in the session,
 * the ID token checked (issuer, audience, expiry, signature from the provider's JWKS), userinfo
 * read. The person is linked to the local user by the provider's subject (`ExternalUsers`), so a
 * changed email never makes a second user; the user is created at the first login and updated at
 * each. `OidcModule` mounts `/oidc/authenticate`, `/oidc/callback/{name}` and `/oidc/logout`.
 */
@Injectable()
export class OidcBackend extends BaseBackend {
  readonly name: string;
  /** The built-in login page's button for this provider: a form posting to `OidcController.authenticate`. */
  readonly loginButton: { label: string; provider: string; action: string };
  protected readonly settings: ResolvedOidcOptions;
  private readonly logger = new Logger('OidcBackend');
  private configuration?: Promise<client.Configuration>;

  constructor(
    protected readonly users: UserManager<any>,
    protected readonly permissions: PermissionManager,
    protected readonly externalUsers: ExternalUsers,
  ) {
    super();
    this.settings = resolveOidcOptions(this.oidcOptions());
    this.name = this.settings.name;
    this.loginButton = { label: this.settings.label, provider: this.name, action: '/oidc/authenticate' };
  }

  /** A backend class for this provider, for `AuthModule.forRoot({ backends: [...] })`. */
  static configure(options: OidcBackendOptions): Type<OidcBackend> {
    resolveOidcOptions(options);
    return configuredBackend(OidcBackend, options, options.name ?? 'OidcBackend');
  }

  /** The options of this backend (by default those given to `configure`; a subclass of your own may override this). */
  protected oidcOptions(): OidcBackendOptions {
    const options = configuredOptions<OidcBackendOptions>(this);
    if (!options) throw new TypeError('Use OidcBackend.configure({ issuer, clientId, clientSecret }) in backends, or override oidcOptions().');
    return options;
  }

  /** Refuse a login by its claims (mozilla-django-oidc's `verify_claims`); the option, or else every login passes. */
  protected verifyClaims(claims: Record<string, unknown>): boolean | Promise<boolean> {
    return this.settings.verifyClaims ? this.settings.verifyClaims(claims) : true;
  }

  /** Customise the local user before it is saved, at every login. Override it in a subclass. */
  protected populateUser(_context: OidcPopulateContext): void | Promise<void> {}

  /** Its users and their links to the provider's subjects; the groups `mirrorGroups` keeps in line. */
  requiredEntities(): RequiredEntities {
    const entities: Function[] = [this.users.entity, ExternalIdentity];
    if (this.settings.mirrorGroups && this.settings.groupsClaim) entities.push(Group);
    return { dataSource: this.users.dataSource, entities };
  }

  /**
   * Start a login: a new state, nonce and PKCE verifier kept in the session, and the provider's
   * authorization URL to send the browser to. `next` must already be a safe redirect.
   */
  async startLogin(request: Request, redirectUri: string, next: string): Promise<string> {
    const configuration = await this.discover();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const session = await sessionOf(request);
    const now = Date.now();
    const flows = Object.entries(liveFlows(session.get(OIDC_FLOWS_SESSION_KEY), now)).slice(-(MAX_FLOWS - 1));
    session.set(
      OIDC_FLOWS_SESSION_KEY,
      Object.fromEntries([...flows, [state, { provider: this.name, codeVerifier, nonce, redirectUri, next, startedAt: now } satisfies OidcFlow]]),
    );
    return client
      .buildAuthorizationUrl(configuration, {
        redirect_uri: redirectUri,
        scope: this.settings.scopes.join(' '),
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      })
      .toString();
  }

  /**
   * The callback's half of the login, through `AuthService.authenticate(request, { oidcCallback:
   * name }, { kind: 'callback' })`; the callback view puts the login it took out of the session, the state and the
   * callback URL in the request's state (`oidcCallback`), so the code and the PKCE verifier never travel
   * in the credentials (which `userLoginFailed` listeners see). The code is exchanged (PKCE,
   * state, nonce checked), the ID token validated, the local user found or created. `null` when
   * the claims are refused or no local user may be made.
   */
  async authenticate(request: Request | undefined, credentials: Credentials): Promise<any | null> {
    if (credentials.oidcCallback !== this.name || !request) return null;
    const callback = stateOf(request).oidcCallback;
    if (!callback || callback.flow.provider !== this.name) return null;
    const { flow, state, url } = callback;
    const configuration = await this.discover();
    let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    try {
      tokens = await client.authorizationCodeGrant(
        configuration,
        url,
        { pkceCodeVerifier: flow.codeVerifier, expectedState: state, expectedNonce: flow.nonce, idTokenExpected: true },
        { redirect_uri: flow.redirectUri },
      );
    } catch (error) {
      throw this.failure(error, 'exchanging the code');
    }
    const idClaims = tokens.claims()!;
    let userinfo: Record<string, unknown> = {};
    if (tokens.access_token) {
      try {
        userinfo = (await client.fetchUserInfo(configuration, tokens.access_token, idClaims.sub)) as Record<string, unknown>;
      } catch (error) {
        throw this.failure(error, 'reading userinfo');
      }
    }
    const claims = { ...userinfo, ...idClaims } as Record<string, unknown>;
    if (!(await this.verifyClaims(claims))) {
      this.logger.log(`${this.name}: the claims of ${String(claims.sub)} were refused (verifyClaims).`);
      return null;
    }
    const subject = claims[this.settings.subjectClaim];
    if (typeof subject !== 'string' || subject === '' || subject.length > 255 || subject.includes('\0')) {
      throw new OidcLoginFailed(`The provider did not say who you are (no ${this.settings.subjectClaim} claim).`);
    }
    const user = await this.localUser(subject, claims, this.copiedClaims(idClaims, userinfo), request);
    if (!user) return null;
    if (request) {
      // For logging out at the provider later; the ID token is kept only when that sends it.
      stateOf(request).oidcLogin = { provider: this.name, ...(this.settings.logoutIdTokenHint ? { idToken: tokens.id_token } : {}) };
    }
    return user;
  }

  getUser(id: string): Promise<any | null> {
    return this.users.findById(id);
  }

  /**
   * How to log out at the provider too (RP-initiated logout), `null` when it has no end-session
   * endpoint. The ID token never goes into a URL (history, proxy logs): a redirect carries
   * `client_id` and `post_logout_redirect_uri` only, or, with `logoutIdTokenHint`, a form the
   * browser POSTs there carries the token as well.
   */
  async endSession(idToken: string | undefined): Promise<EndSession | null> {
    const configuration = await this.discover();
    const endpoint = configuration.serverMetadata().end_session_endpoint;
    if (!endpoint) return null;
    const fields: Record<string, string> = {
      client_id: this.settings.clientId,
      ...(this.settings.postLogoutRedirectUri ? { post_logout_redirect_uri: this.settings.postLogoutRedirectUri } : {}),
    };
    if (this.settings.logoutIdTokenHint && idToken) return { form: { action: endpoint, fields: { ...fields, id_token_hint: idToken } } };
    const url = new URL(endpoint);
    for (const [name, value] of Object.entries(fields)) url.searchParams.set(name, value);
    return { redirect: url.href };
  }

  /** The callback URL this provider sends the code back to: its own, so a code cannot land in another provider's login. */
  redirectUriFor(origin: string | null): string | null {
    return this.settings.redirectUri ?? (origin ? `${origin}/oidc/callback/${encodeURIComponent(this.name)}` : null);
  }

  /** The provider's metadata, read once (again after a failure). */
  private discover(): Promise<client.Configuration> {
    this.configuration ??= client
      .discovery(new URL(this.settings.issuer), this.settings.clientId, this.settings.clientSecret, undefined, {
        timeout: Math.ceil(this.settings.timeout / 1000),
        ...(this.settings.allowInsecureRequests ? { execute: [client.allowInsecureRequests] } : {}),
      })
      .catch((error: unknown) => {
        this.configuration = undefined;
        this.logger.error(`${this.name}: reading the provider's configuration failed: ${(error as Error)?.message ?? error}`);
        throw new ProviderUnavailable(this.settings.label);
      });
    return this.configuration;
  }

  /** A protocol error is the login's fault (400); a network error, a timeout or a 5xx is the provider's (503). */
  private failure(error: unknown, doing: string): Error {
    const code = (error as { code?: unknown })?.code;
    const cause = (error as { cause?: { name?: unknown; status?: unknown } })?.cause;
    // By name and shape, not instanceof: fetch's errors and responses may come from another realm.
    const unreachable =
      code === 'OAUTH_TIMEOUT' ||
      code === 'OAUTH_ABORT' ||
      cause?.name === 'TypeError' ||
      (typeof cause?.status === 'number' && cause.status >= 500) ||
      (error instanceof client.ResponseBodyError && error.status >= 500);
    if (!unreachable && (error instanceof client.ResponseBodyError || error instanceof client.AuthorizationResponseError || error instanceof client.ClientError)) {
      // openid-client wraps the precise reason (e.g. 'unexpected ID Token "nonce" claim value') as the cause.
      const cause = (error as { cause?: { message?: unknown } }).cause?.message;
      this.logger.warn(`${this.name}: ${doing} failed: ${(error as Error).message}${typeof cause === 'string' ? `: ${cause}` : ''}`);
      return new OidcLoginFailed(`The login with ${this.settings.label} could not be completed. Please try again.`);
    }
    this.logger.error(`${this.name}: ${doing} failed: ${(error as Error)?.message ?? error}`);
    return new ProviderUnavailable(this.settings.label);
  }

  /**
   * The claims that may be copied into the local user (username, `claimsMap`): all of them, but
   * `email` only when the provider verified it (or `trustUnverifiedEmail` says it need not), read
   * from the same answer as the address it speaks of.
   */
  private copiedClaims(idClaims: Record<string, unknown>, userinfo: Record<string, unknown>): Record<string, unknown> {
    const claims = { ...userinfo, ...idClaims };
    if (this.settings.trustUnverifiedEmail) return claims;
    const source = idClaims.email !== undefined ? idClaims : userinfo;
    // Some providers send the flag as a string (AWS Cognito's userinfo).
    const verified = source.email_verified === true || source.email_verified === 'true';
    if (!verified) delete claims.email;
    return claims;
  }

  /**
   * The local user linked to this subject (`ExternalUsers`: created at the first login when
   * allowed, renamed when its name is taken, one user however many first logins race), its
   * fields updated from the claims at each login.
   */
  private async localUser(
    subject: string,
    claims: Record<string, unknown>,
    copied: Record<string, unknown>,
    request: Request | undefined,
  ): Promise<any | null> {
    const claimed = copied[this.settings.usernameClaim];
    const found = await this.externalUsers.find({
      source: this.name,
      subject,
      username: typeof claimed === 'string' && claimed.length > 0 && claimed.length <= 120 && !/[\u0000-\u001f\u007f]/.test(claimed) ? claimed : subject.slice(0, 120),
      createUsers: this.settings.createUsers,
      linkExistingUsers: this.settings.linkExistingUsers,
      // Nobody types a username here: a taken one means a new user of another name.
      whenNameTaken: 'rename',
    });
    if (!found || found.user.isActive === false) return null;
    for (const [field, claim] of Object.entries(this.settings.claimsMap)) {
      const value = copied[claim];
      if (typeof value === 'string' && this.users.canStore(field, value)) found.user[field] = value;
    }
    await this.populateUser({ user: found.user, claims, created: found.created, request });
    const user = await this.externalUsers.save(found);
    if (this.settings.mirrorGroups && this.settings.groupsClaim) {
      const groups = claims[this.settings.groupsClaim];
      const names = Array.isArray(groups) ? groups.filter((name): name is string => typeof name === 'string') : [];
      await this.permissions.setUserGroups(user, names, Array.isArray(this.settings.mirrorGroups) ? this.settings.mirrorGroups : undefined);
    }
    return user;
  }
}

declare module '../../request/request-state.js' {
  interface RequestState {
    /** Where the callback view puts the login under way for `authenticate()` (kept out of the credentials). */
    oidcCallback?: OidcCallback;
    /** The provider and ID token of the login `authenticate()` just made, for the callback view to keep in the session. */
    oidcLogin?: OidcLogin;
  }
}

/** The login under way, as the callback view hands it to `authenticate()`. */
export interface OidcCallback {
  flow: OidcFlow;
  state: string;
  /** The callback URL as the provider sent the browser to it (code, state, iss). */
  url: URL;
}

/** Logging out at the provider: a redirect, or a form for the browser to POST there. */
export type EndSession = { redirect: string } | { form: { action: string; fields: Record<string, string> } };

/** The provider and (with `logoutIdTokenHint`) the ID token of a login, kept in the session for logging out there. */
export interface OidcLogin {
  provider: string;
  idToken?: string;
}

/** The flows of a session that are still young enough to finish. */
export function liveFlows(value: unknown, now = Date.now()): Record<string, OidcFlow> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(
    Object.entries(value as Record<string, OidcFlow>).filter(
      ([, flow]) => flow && typeof flow === 'object' && typeof flow.startedAt === 'number' && now - flow.startedAt < FLOW_LIFETIME_MS,
    ),
  );
}
