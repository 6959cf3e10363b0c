/**
 * What the module keeps to itself, for tests that look behind the public surface: the session
 * keys a login writes (Django's `_auth_user_id`, `_auth_user_backend`, `_auth_user_hash`) and the
 * session layer whose store a test watches. Apps import none of it.
 */
export { SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY } from '../../src/auth.constants.js';
export { SessionHandler } from '../../src/sessions/session-handler.js';
