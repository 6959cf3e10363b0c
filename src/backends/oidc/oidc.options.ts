import { ImproperlyConfigured } from '../../errors.js';
import type { LinkExistingUsers } from '../../external-users.js';

export interface OidcBackendOptions {
  /** The name sessions record and `?provider=` names (default `OidcBackend`); one per provider. */
  name?: string;
  /** What the login button says: "Log in with {label}". */
  label?: string;
  /** The issuer URL; its `/.well-known/openid-configuration` is read once, on first use. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /**
   * The callback URL registered at the provider; default `siteUrl` + `/oidc/callback/{name}`, or,
   * outside production, the request's own (allowed) host. Each provider has its own, so a code
   * always comes back to the provider that issued it (RFC 9700 §4.4): one given here must end in
   * `/oidc/callback/{name}`.
   */
  redirectUri?: string;
  /** Where the provider sends the browser after logging out there (RP-initiated logout). */
  postLogoutRedirectUri?: string;
  /**
   * Send the ID token as `id_token_hint` when logging out at the provider, for providers that
   * require it (Okta): in a form the browser POSTs there, never in a URL. Default false: the
   * browser is redirected with `client_id` and `post_logout_redirect_uri` only (some providers
   * then ask "log out?"). With a POST the browser sends the provider's session cookie only if it
   * is `SameSite=None`; check that your provider's is, or its session survives the logout.
   */
  logoutIdTokenHint?: boolean;
  /** Default `['openid', 'email', 'profile']`. */
  scopes?: string[];
  /** The claim that names the person at the provider, linked to the local user; default `sub`. */
  subjectClaim?: string;
  /** The claim the username of a new local user comes from; default `email` (when verified), else the subject. */
  usernameClaim?: string;
  /**
   * Use the `email` claim (for the username and the `email` field) even when the provider does
   * not say `email_verified: true` (default false: an unverified email is left out, and the
   * username falls back to the subject). Only for a provider that never sends `email_verified`
   * and lets nobody set an address they do not own: anywhere else, whoever types someone's
   * address at the provider gets it here, and a password reset mailed to it.
   */
  trustUnverifiedEmail?: boolean;
  /**
   * Log in to an existing local account whose username is the one this provider would give a new
   * user (default false: a new user of another name is made instead). `true` links accounts that
   * are neither staff nor superusers; a function decides for every account. The match is by
   * that name alone, so only with a username the provider vouches for, such as a verified email.
   */
  linkExistingUsers?: LinkExistingUsers;
  /** Local user fields from claims; default `{ email: 'email', firstName: 'given_name', lastName: 'family_name' }`. */
  claimsMap?: Record<string, string>;
  /** Create the local user at the first login (default); `false` admits only identities already linked. */
  createUsers?: boolean;
  /** Refuse a login whose claims do not pass (mozilla-django-oidc's `verify_claims`), e.g. `(c) => c.email_verified === true`. */
  verifyClaims?: (claims: Record<string, unknown>) => boolean | Promise<boolean>;
  /** A claim holding the person's groups or roles, e.g. `groups`. */
  groupsClaim?: string;
  /** Local groups follow `groupsClaim` at each login: `true` for all, or only the names listed. */
  mirrorGroups?: boolean | string[];
  /** Milliseconds to wait for the provider; default 5000. */
  timeout?: number;
  /** Allow an `http://` issuer (development and tests only); refused in production. */
  allowInsecureRequests?: boolean;
}

export interface ResolvedOidcOptions extends Required<Pick<OidcBackendOptions, 'issuer' | 'clientId' | 'clientSecret'>> {
  name: string;
  label: string;
  redirectUri?: string;
  postLogoutRedirectUri?: string;
  logoutIdTokenHint: boolean;
  scopes: string[];
  subjectClaim: string;
  usernameClaim: string;
  trustUnverifiedEmail: boolean;
  linkExistingUsers: LinkExistingUsers;
  claimsMap: Record<string, string>;
  createUsers: boolean;
  verifyClaims?: OidcBackendOptions['verifyClaims'];
  groupsClaim?: string;
  mirrorGroups: boolean | string[];
  timeout: number;
  allowInsecureRequests: boolean;
}

export function resolveOidcOptions(options: OidcBackendOptions): ResolvedOidcOptions {
  if (!options || typeof options !== 'object') throw new ImproperlyConfigured('OidcBackend.configure() needs its options.');
  let issuer: URL;
  try {
    issuer = new URL(options.issuer);
  } catch {
    throw new ImproperlyConfigured(`OidcBackend issuer must be the provider's URL; got ${JSON.stringify(options.issuer)}.`);
  }
  const insecure = options.allowInsecureRequests === true;
  if (issuer.protocol !== 'https:' && !(insecure && issuer.protocol === 'http:')) {
    throw new ImproperlyConfigured('OidcBackend issuer must be https:// (allowInsecureRequests: true lets http:// through in development).');
  }
  if (insecure && process.env.NODE_ENV === 'production') {
    throw new ImproperlyConfigured('OidcBackend allowInsecureRequests is for development: it is refused when NODE_ENV=production.');
  }
  for (const key of ['clientId', 'clientSecret'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') throw new ImproperlyConfigured(`OidcBackend needs ${key}.`);
  }
  const name = options.name ?? 'OidcBackend';
  if (!/^[A-Za-z][\w-]{0,63}$/.test(name)) throw new ImproperlyConfigured('OidcBackend name must be a word (letters, digits, - and _).');
  if (typeof options.verifyClaims !== 'undefined' && typeof options.verifyClaims !== 'function') {
    throw new ImproperlyConfigured('OidcBackend verifyClaims must be a function of the claims.');
  }
  if (options.redirectUri !== undefined) {
    let path: string;
    try {
      path = new URL(options.redirectUri).pathname;
    } catch {
      throw new ImproperlyConfigured(`OidcBackend redirectUri must be an absolute URL; got ${JSON.stringify(options.redirectUri)}.`);
    }
    if (!path.endsWith(`/oidc/callback/${name}`)) {
      throw new ImproperlyConfigured(
        `OidcBackend ${name}: redirectUri must end in /oidc/callback/${name} (each provider has a callback of its own), or be left out to default to siteUrl + that path.`,
      );
    }
  }
  const linkExistingUsers = options.linkExistingUsers ?? false;
  if (typeof linkExistingUsers !== 'boolean' && typeof linkExistingUsers !== 'function') {
    throw new ImproperlyConfigured('OidcBackend linkExistingUsers must be true, false, or a function of the account and the backend name.');
  }
  if (linkExistingUsers === true && options.trustUnverifiedEmail === true && (options.usernameClaim ?? 'email') === 'email') {
    // The nOAuth takeover: an unverified email claim matched to a local account of that name.
    throw new ImproperlyConfigured(
      `OidcBackend ${name}: linkExistingUsers: true with trustUnverifiedEmail would let anyone who types an address at the provider into the local account of that address. ` +
        'Pass a function to linkExistingUsers that decides which accounts the provider owns, or leave one of them off.',
    );
  }
  if (options.mirrorGroups && !options.groupsClaim) throw new ImproperlyConfigured('OidcBackend mirrorGroups needs groupsClaim.');
  for (const [field, claim] of Object.entries(options.claimsMap ?? {})) {
    if (['id', 'password', 'username', 'isActive', 'isStaff', 'isSuperuser'].includes(field) || typeof claim !== 'string') {
      throw new ImproperlyConfigured(`OidcBackend claimsMap cannot set ${field}: map profile fields (email, firstName...) to claim names; use groupsClaim for groups.`);
    }
  }
  return {
    name,
    label: options.label ?? name,
    issuer: options.issuer,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    redirectUri: options.redirectUri,
    postLogoutRedirectUri: options.postLogoutRedirectUri,
    logoutIdTokenHint: options.logoutIdTokenHint === true,
    scopes: options.scopes ?? ['openid', 'email', 'profile'],
    subjectClaim: options.subjectClaim ?? 'sub',
    usernameClaim: options.usernameClaim ?? 'email',
    trustUnverifiedEmail: options.trustUnverifiedEmail === true,
    linkExistingUsers,
    claimsMap: options.claimsMap ?? { email: 'email', firstName: 'given_name', lastName: 'family_name' },
    createUsers: options.createUsers ?? true,
    verifyClaims: options.verifyClaims,
    groupsClaim: options.groupsClaim,
    mirrorGroups: options.mirrorGroups ?? false,
    timeout: options.timeout ?? 5000,
    allowInsecureRequests: insecure,
  };
}
