import type { Request } from 'express';
import { parse as parseCookies } from 'cookie';
import { randomBytes } from 'node:crypto';
import { constantTimeEquals, saltedHmac } from './signing.js';
import { headersSent, isSecureRequest, responseOf, setCookie } from './request/platform.js';

const SALT = 'nestjs-session-auth.trusted-device';
/** Accounts one browser is remembered for; the oldest is forgotten first. */
const MAX_ENTRIES = 4;
const MAX_COOKIE_LENGTH = 1024;
const ENTRY = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;

export interface TrustedDeviceCookie {
  name: string;
  maxAgeMs: number;
  secure: boolean | 'auto';
  sameSite: 'lax' | 'strict' | 'none';
}

/**
 * Device cookies (OWASP's "Slow Down Online Guessing Attacks with Device Cookies"): a browser
 * that once logged in to an account carries a signed cookie naming that account. While the
 * account is locked against everyone else, attempts from that browser are still allowed,
 * counted on their own, so an attacker guessing from elsewhere cannot lock the real user out.
 * The cookie holds a random device id and an HMAC binding it to the account's counter key; it
 * reveals neither the username nor the address.
 */
export class TrustedDevices {
  constructor(
    private readonly secrets: string[],
    private readonly cookie: TrustedDeviceCookie,
  ) {}

  /** The device id the request's cookie vouches for, for one of `accountKeys`; else `null`. */
  deviceFor(request: Request | undefined, accountKeys: string[]): string | null {
    for (const entry of this.entries(request)) {
      const [device, mac] = entry.split('.');
      for (const account of accountKeys) {
        if (this.secrets.some((secret) => constantTimeEquals(sign(secret, account, device), mac))) return device;
      }
    }
    return null;
  }

  /** Remember this browser for `accountKey` (keeping its device id if it had one for it). */
  remember(request: Request | undefined, accountKey: string): void {
    const response = responseOf(request);
    if (!response || headersSent(response)) return;
    const device = this.deviceFor(request, [accountKey]) ?? randomBytes(16).toString('base64url');
    const fresh = `${device}.${sign(this.secrets[0], accountKey, device)}`;
    const others = this.entries(request).filter((entry) => !entry.startsWith(`${device}.`));
    setCookie(response, this.cookie.name, [fresh, ...others].slice(0, MAX_ENTRIES).join('~'), {
      httpOnly: true,
      sameSite: this.cookie.sameSite,
      secure: this.cookie.secure === 'auto' ? isSecureRequest(request) : this.cookie.secure,
      path: '/',
      maxAge: this.cookie.maxAgeMs,
    });
  }

  private entries(request: Request | undefined): string[] {
    const header = request?.headers?.cookie;
    if (typeof header !== 'string' || !header.includes(this.cookie.name)) return [];
    const value = parseCookies(header)[this.cookie.name];
    if (!value || value.length > MAX_COOKIE_LENGTH) return [];
    return value.split('~').filter((entry) => ENTRY.test(entry));
  }
}

function sign(secret: string, accountKey: string, device: string): string {
  return saltedHmac(SALT, secret, `${accountKey}.${device}`).toString('base64url');
}
