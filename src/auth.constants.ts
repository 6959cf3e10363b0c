/** Session keys, named as in Django so sessions read the same in both worlds. */
export const SESSION_KEY = '_auth_user_id';
export const BACKEND_SESSION_KEY = '_auth_user_backend';
export const HASH_SESSION_KEY = '_auth_user_hash';
export const AUTH_SESSION_KEYS = [SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY] as const;

export const REDIRECT_FIELD_NAME = 'next';
export const DEFAULT_LOGIN_URL = '/accounts/login';
export const DEFAULT_SESSION_COOKIE_NAME = 'sessionid';
/** Django's SESSION_COOKIE_AGE: two weeks. */
export const DEFAULT_SESSION_AGE_MS = 14 * 24 * 60 * 60 * 1000;

/** Session key of the CSRF token (Django's CSRF_SESSION_KEY); `login()` drops it. */
export const CSRF_SESSION_KEY = '_csrftoken';
/** Django's PASSWORD_RESET_TIMEOUT: three days, in seconds. */
export const DEFAULT_PASSWORD_RESET_TIMEOUT = 3 * 24 * 60 * 60;
