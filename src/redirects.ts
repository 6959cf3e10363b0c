import { isIPv6 } from 'node:net';

export interface SafeRedirectOptions {
  /** Hosts a URL may point at, as `host` or `host:port` (the request's own host, usually). */
  allowedHosts: Iterable<string>;
  /** Only `https` URLs (or relative ones) pass; set it when the request itself is secure. */
  requireHttps?: boolean;
}

/** Where a relative URL is resolved when the browser's parser is consulted. */
const PLACEHOLDER_ORIGIN = 'http://relative.invalid';

/**
 * True when `url` is safe to redirect to after a login or logout: a relative URL, or an
 * http(s) URL whose host is one of `allowedHosts` (Django's `url_has_allowed_host_and_scheme`).
 * Anything else, `//evil.example`, `/\evil.example`, `javascript:…`, is refused.
 */
export function isSafeRedirectUrl(url: unknown, options: SafeRedirectOptions): boolean {
  if (typeof url !== 'string') return false;
  const trimmed = url.trim();
  if (trimmed === '') return false;
  const allowed = new Set([...options.allowedHosts].map((host) => host.toLowerCase()));
  const requireHttps = options.requireHttps ?? false;
  // Browsers read `\` as `/`, but it may also sit inside credentials: both readings must pass.
  return (
    hasAllowedHostAndScheme(trimmed, allowed, requireHttps) &&
    hasAllowedHostAndScheme(trimmed.replaceAll('\\', '/'), allowed, requireHttps)
  );
}

function hasAllowedHostAndScheme(url: string, allowed: Set<string>, requireHttps: boolean): boolean {
  // Browsers take any URL starting with three slashes as absolute.
  if (url.startsWith('///')) return false;
  // Django refuses only a leading control character (some browsers skip them and then see a
  // scheme-relative URL); we refuse one anywhere: browsers drop tabs and newlines inside URLs
  // too, and a legitimate return URL never carries them unencoded.
  if (/\p{C}/u.test(url)) return false;
  const parts = splitUrl(url);
  if (!parts) return false;
  // `http:///example.com`: no host for Python, but Chrome goes to example.com.
  if (parts.scheme && !parts.netloc) return false;
  const scheme = parts.scheme || (parts.netloc ? 'http' : '');
  const validSchemes = requireHttps ? ['https'] : ['http', 'https'];
  if (scheme && !validSchemes.includes(scheme)) return false;
  if (parts.netloc && !allowed.has(parts.netloc.toLowerCase())) return false;
  return browserAgrees(url, parts.netloc);
}

/**
 * Python's `urlsplit`, as far as scheme and netloc go; `null` where it raises (bad IPv6
 * brackets, a netloc that NFKC-normalises into URL syntax).
 */
function splitUrl(url: string): { scheme: string; netloc: string } | null {
  let rest = url;
  let scheme = '';
  const colon = rest.indexOf(':');
  if (colon > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(rest.slice(0, colon))) {
    scheme = rest.slice(0, colon).toLowerCase();
    rest = rest.slice(colon + 1);
  }
  let netloc = '';
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?#]/);
    netloc = end < 0 ? rest.slice(2) : rest.slice(2, end + 2);
  }
  if (netloc.includes('[') !== netloc.includes(']')) return null;
  if (netloc.includes('[')) {
    const bracketed = netloc.slice(netloc.indexOf('[') + 1, netloc.indexOf(']'));
    if (!isIPv6(bracketed)) return null;
  }
  if (/[^\x00-\x7f]/.test(netloc)) {
    const normalized = netloc.replace(/[@:#?]/g, '').normalize('NFKC');
    if (/[/?#@:]/.test(normalized)) return null;
  }
  return { scheme, netloc };
}

/**
 * The browser's own parser (WHATWG URL, as in Node) has the last word: a relative URL must stay
 * on the page's origin and an absolute one must land on the host Django's rules accepted. This
 * only ever refuses more; it guards against the two parsers reading one string differently.
 */
function browserAgrees(url: string, netloc: string): boolean {
  let resolved: URL;
  try {
    resolved = new URL(url, PLACEHOLDER_ORIGIN);
  } catch {
    return false;
  }
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') return false;
  if (!netloc) return resolved.origin === PLACEHOLDER_ORIGIN;
  try {
    return resolved.hostname === new URL(`http://${netloc}`).hostname;
  } catch {
    return false;
  }
}
