import { constantTimeEquals, saltedHmac } from './signing.js';

const KEY_SALT = 'nestjs-session-auth.session-auth-hash';

/**
 * HMAC of the user's password hash, stored in the session at login. Changing the password
 * changes the HMAC, so every other session of that user stops resolving (Django's
 * `get_session_auth_hash`).
 */
export function makeSessionAuthHash(user: { password?: unknown }, secret: string): string {
  const password = String(user.password ?? '');
  const key = `${secret}\u0000${password}`;
  let hash = recent.get(key);
  if (hash === undefined) {
    hash = saltedHmac(KEY_SALT, secret, password).toString('hex');
    if (recent.size >= MAX_REMEMBERED_HASHES) recent.delete(recent.keys().next().value!);
    recent.set(key, hash);
  }
  return hash;
}

/**
 * Hashes computed lately, by secret and password hash: every logged-in request checks its
 * user's, and the same user comes back request after request. A new password hash (a password
 * change) is a new key, so nothing here can outlive the password it was made from.
 */
const recent = new Map<string, string>();
const MAX_REMEMBERED_HASHES = 10_000;

/**
 * Which secret produced `stored`: 0 for the current one, a higher index for a fallback, or -1
 * when none did. The comparison is constant-time.
 */
export function verifySessionAuthHash(user: { password?: unknown }, stored: unknown, secrets: string[]): number {
  if (typeof stored !== 'string' || stored.length !== 64) return -1;
  return secrets.findIndex((secret) => constantTimeEquals(stored, makeSessionAuthHash(user, secret)));
}
