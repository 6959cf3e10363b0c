import { constantTimeEquals, saltedHmac } from './signing.js';

const KEY_SALT = 'nestjs-session-auth.session-auth-hash';

/**
 * HMAC of the user's password hash, stored in the session at login. Changing the password
 * changes the HMAC, so every other session of that user stops resolving (Django's
 * `get_session_auth_hash`).
 */
export function makeSessionAuthHash(user: { password?: unknown }, secret: string): string {
  return saltedHmac(KEY_SALT, secret, String(user.password ?? '')).toString('hex');
}

/**
 * Which secret produced `stored`: 0 for the current one, a higher index for a fallback, or -1
 * when none did. The comparison is constant-time.
 */
export function verifySessionAuthHash(user: { password?: unknown }, stored: unknown, secrets: string[]): number {
  if (typeof stored !== 'string' || stored.length !== 64) return -1;
  return secrets.findIndex((secret) => constantTimeEquals(stored, makeSessionAuthHash(user, secret)));
}
