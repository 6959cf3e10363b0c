import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 of `value` under a key derived from `secret` and a `salt` naming the purpose, so a
 * value signed for one purpose never verifies for another (Django's `salted_hmac`).
 */
export function saltedHmac(salt: string, secret: string, value: string): Buffer {
  const key = createHash('sha256').update(salt + secret).digest();
  return createHmac('sha256', key).update(value).digest();
}

/** Compare two strings in time that does not depend on where they differ (Django's `constant_time_compare`). */
export function constantTimeEquals(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
