/** `nestjs-session-auth/views`: what the built-in account views (`views: true`) use: the mailer and their paths. */
export { AuthMailer, LoggingAuthMailer, type AuthMail } from '../views/auth-mailer.js';
export { AUTH_VIEW_PATHS } from '../views/auth-views.controller.js';
export type { AuthViewsMount } from '../views/auth-views.mount.js';
