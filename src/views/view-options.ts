import { ImproperlyConfigured } from '../errors.js';
import type { AuthTemplates } from './templates.js';

/**
 * What the built-in views can be told, view by view, as Django's class-based views take
 * `next_page`, `redirect_authenticated_user`, `success_url_allowed_hosts`, `post_reset_login`,
 * `extra_email_context` and `html_email_template_name`. Given as `views: { ... }` instead of
 * `views: true`.
 */
export interface AuthViewsOptions {
  login?: {
    /** Where to go after login without a safe `next` (Django's `next_page`); default `loginRedirectUrl`. */
    nextPage?: string;
    /** A logged-in visitor of the login page is sent on as after a login (Django's `redirect_authenticated_user`). */
    redirectAuthenticatedUser?: boolean;
    /** Hosts besides this site's that `next` may name (Django's `success_url_allowed_hosts`). */
    successUrlAllowedHosts?: string[];
    /**
     * A "Remember me" checkbox on the form: left unticked, the session ends when the browser
     * closes (`setExpiry(0)`); ticked, it lasts the cookie's full age.
     */
    rememberMe?: boolean;
  };
  logout?: {
    /** Where to go after logout without a safe `next` (Django's `next_page`); default `logoutRedirectUrl`, else the "logged out" page. */
    nextPage?: string;
    /** Hosts besides this site's that `next` may name. */
    successUrlAllowedHosts?: string[];
  };
  passwordReset?: {
    /** More values for the email's templates (Django's `extra_email_context`). */
    extraEmailContext?: Record<string, unknown>;
    /** Send an HTML part beside the text (Django's `html_email_template_name`), from the `passwordResetHtmlEmail` template. */
    htmlEmail?: boolean;
  };
  passwordResetConfirm?: {
    /** Log the user in once the new password is set (Django's `post_reset_login`). */
    postResetLogin?: boolean;
    /** The backend that login names (Django's `post_reset_login_backend`); needed with several backends. */
    postResetLoginBackend?: string;
  };
  /** Pages and emails of your own, view by view (Django's template override); the others stay built in. */
  templates?: Partial<AuthTemplates>;
}

/** The views' options with every default filled in. */
export interface ResolvedViewOptions {
  login: { nextPage?: string; redirectAuthenticatedUser: boolean; successUrlAllowedHosts: string[]; rememberMe: boolean };
  logout: { nextPage?: string; successUrlAllowedHosts: string[] };
  passwordReset: { extraEmailContext: Record<string, unknown>; htmlEmail: boolean };
  passwordResetConfirm: { postResetLogin: boolean; postResetLoginBackend?: string };
  templates: Partial<AuthTemplates>;
}

/** Injection token of the resolved view options. */
export const AUTH_VIEW_OPTIONS = Symbol('AUTH_VIEW_OPTIONS');

export function resolveViewOptions(options: AuthViewsOptions | undefined): ResolvedViewOptions {
  const hosts = (list: unknown, where: string): string[] => {
    if (list === undefined) return [];
    if (!Array.isArray(list) || list.some((host) => typeof host !== 'string' || !host || /[\s/@]/.test(host))) {
      throw new ImproperlyConfigured(`views.${where}.successUrlAllowedHosts must be a list of host names such as 'accounts.example.com'.`);
    }
    return list.map((host: string) => host.toLowerCase());
  };
  const page = (value: unknown, where: string): string | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !value) throw new ImproperlyConfigured(`views.${where}.nextPage must be a URL or a path.`);
    return value;
  };
  const templates = options?.templates ?? {};
  for (const [name, template] of Object.entries(templates)) {
    if (typeof template !== 'function') throw new ImproperlyConfigured(`views.templates.${name} must be a function of the page's context.`);
  }
  return {
    login: {
      nextPage: page(options?.login?.nextPage, 'login'),
      redirectAuthenticatedUser: options?.login?.redirectAuthenticatedUser === true,
      successUrlAllowedHosts: hosts(options?.login?.successUrlAllowedHosts, 'login'),
      rememberMe: options?.login?.rememberMe === true,
    },
    logout: {
      nextPage: page(options?.logout?.nextPage, 'logout'),
      successUrlAllowedHosts: hosts(options?.logout?.successUrlAllowedHosts, 'logout'),
    },
    passwordReset: {
      extraEmailContext: { ...(options?.passwordReset?.extraEmailContext ?? {}) },
      htmlEmail: options?.passwordReset?.htmlEmail === true,
    },
    passwordResetConfirm: {
      postResetLogin: options?.passwordResetConfirm?.postResetLogin === true,
      postResetLoginBackend: options?.passwordResetConfirm?.postResetLoginBackend,
    },
    templates,
  };
}
