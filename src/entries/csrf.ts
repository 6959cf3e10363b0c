/** `nestjs-session-auth/csrf`: the synchronizer token of the built-in views, for forms of your own. */
export { csrfToken, verifyCsrfToken, CsrfGuard, CsrfFailure, CSRF_FIELD_NAME, CSRF_HEADER_NAME } from '../request/csrf.js';
