import { createHash, createHmac } from 'node:crypto';

/**
 * HMAC-SHA256 of `value` under a key derived from `secret` and a `salt` naming the purpose, so a
 * value signed for one purpose never verifies for another (Django's `salted_hmac`).
 */
export function saltedHmac(salt: string, secret: string, value: string): Buffer {
  return createHmac('sha256', derivedKey(salt, secret)).update(value).digest();
}

/** Keys derived once per salt and secret: the session auth hash is checked on every logged-in request. */
const keys = new Map<string, Buffer>();

function derivedKey(salt: string, secret: string): Buffer {
  const id = `${salt}\u0000${secret}`;
  let key = keys.get(id);
  if (!key) {
    key = createHash('sha256').update(salt + secret).digest();
    if (keys.size >= 256) keys.clear();
    keys.set(id, key);
  }
  return key;
}

/**
 * Compare two strings in time that does not depend on where they differ (Django's
 * `constant_time_compare`; only the length may show). Every code unit is looked at, whatever the
 * first difference; nothing is allocated (the session auth hash is compared on every logged-in
 * request).
 */
export function constantTimeEquals(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
