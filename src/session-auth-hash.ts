import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const KEY_SALT = 'nestjs-session-auth.session-auth-hash';

/**
 * HMAC of the user's password hash, stored in the session at login. Changing the password
 * changes the HMAC, so every other session of that user stops resolving (Django's
 * `get_session_auth_hash`).
 */
export function makeSessionAuthHash(user: { password?: unknown }, secret: string): string {
  return createHmac('sha256', keyFor(secret)).update(String(user.password ?? '')).digest('hex');
}

/** The HMAC key of each secret, derived once: every logged-in request checks a hash. */
const keys = new Map<string, Buffer>();

function keyFor(secret: string): Buffer {
  let key = keys.get(secret);
  if (!key) {
    key = createHash('sha256').update(KEY_SALT + secret).digest();
    if (keys.size >= 64) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

/**
 * Which secret produced `stored`: 0 for the current one, a higher index for a fallback, or -1
 * when none did. The comparison is constant-time.
 */
export function verifySessionAuthHash(user: { password?: unknown }, stored: unknown, secrets: string[]): number {
  if (typeof stored !== 'string' || stored.length !== 64) return -1;
  const given = Buffer.from(stored);
  return secrets.findIndex((secret) => timingSafeEqual(given, Buffer.from(makeSessionAuthHash(user, secret))));
}
