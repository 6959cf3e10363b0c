/** `nestjs-session-auth/views`: what the built-in account views (`views: true`) use: the mailer, their paths, options and templates. */
export { AuthMailer, LoggingAuthMailer, type AuthMail } from '../views/auth-mailer.js';
export { AUTH_VIEW_PATHS } from '../views/view-paths.js';
export type { AuthViewsMount } from '../views/auth-views.mount.js';
export type { AuthViewsOptions } from '../views/view-options.js';
export { html, safeHtml, escapeHtml, SafeHtml } from '../views/html.js';
export {
  builtInTemplates,
  layout,
  type AuthTemplates,
  type FormErrors,
  type FormPage,
  type LoginPage,
  type PasswordChangePage,
  type PasswordResetPage,
  type PasswordResetEmailContext,
} from '../views/templates.js';
