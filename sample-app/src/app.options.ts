/**
 * What `AppModule.forRoot()` takes (`config.ts` reads it from the environment), and the tokens
 * its pages inject those settings by.
 */

/** Where users, groups, permissions and sessions live. */
export type DatabaseOptions =
  | { type: 'better-sqlite3'; database: string }
  | { type: 'postgres'; url: string };

export interface AppOptions {
  database: DatabaseOptions;
  /** Signs the session cookie and keys the session auth hashes. */
  sessionSecret: string;
  /**
   * Seed, accept and list the demo accounts, whose passwords anyone can read in this repository.
   * Off in production: then only `ModelBackend` is asked, and `npm run createsuperuser` makes the
   * first account.
   */
  demo: boolean;
  /**
   * The directory accounts (dana, erin) from this OpenLDAP server (`LDAP_URL`; `npm run ldap`
   * serves one) instead of the in-memory stand-in.
   */
  ldapUrl?: string;
  /**
   * An OpenID Connect provider to log in with ("Log in with …" on the login page): `npm start`
   * runs a demo one beside the site, `IDP_URL` names another.
   */
  identityProvider?: IdentityProviderOptions;
}

export interface IdentityProviderOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  label: string;
  /** The demo provider speaks plain http on a loopback port: development only. */
  allowInsecureRequests?: boolean;
  /** Shown next to the button in the demo (an account at that provider). */
  demoAccount?: { login: string; password: string };
}

/** Injects `AppOptions.demo` where a page needs to know whether to list the demo accounts. */
export const DEMO_MODE = Symbol('DEMO_MODE');
/** A description of the real directory server in use (`LDAP_URL`), or `null` for the in-memory stand-in. */
export const DIRECTORY_IN_USE = Symbol('DIRECTORY_IN_USE');
/** The OpenID Connect provider offered on the login page (`IdentityProviderOptions`), or `null`. */
export const IDENTITY_PROVIDER = Symbol('IDENTITY_PROVIDER');
/** Its backend's name: what sessions record, the login button posts, and its callback ends in (`/oidc/callback/demo-idp`). */
export const IDENTITY_PROVIDER_NAME = 'demo-idp';
