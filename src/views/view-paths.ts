import { ImproperlyConfigured } from '../errors.js';

/**
 * Where the built-in views live (Django's `django.contrib.auth.urls`); login is at `loginUrl`.
 * Every path the views route, link to or put in an email is built from this table.
 */
export const AUTH_VIEW_PATHS = {
  logout: '/accounts/logout',
  logoutThenLogin: '/accounts/logout_then_login',
  passwordChange: '/accounts/password_change',
  passwordChangeDone: '/accounts/password_change/done',
  logoutOtherSessions: '/accounts/sessions/logout_others',
  passwordReset: '/accounts/password_reset',
  passwordResetDone: '/accounts/password_reset/done',
  passwordResetConfirm: '/accounts/reset/:uidb64/:token',
  passwordResetComplete: '/accounts/reset/done',
} as const;

/** Stands for the token in the reset link once it has moved into the session. */
export const RESET_URL_TOKEN = 'set-password';
/** Session key holding the reset token between the link and the form. */
export const RESET_SESSION_TOKEN = '_password_reset_token';

/** The reset confirm path for one user and token (the link in the email, or its form with `RESET_URL_TOKEN`). */
export function passwordResetConfirmPath(uidb64: string, token: string = RESET_URL_TOKEN): string {
  return AUTH_VIEW_PATHS.passwordResetConfirm
    .replace(':uidb64', encodeURIComponent(uidb64))
    .replace(':token', encodeURIComponent(token));
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
