import type { Request } from 'express';
import { isAllowedHost, requestHost, splitHost } from './hosts.js';

const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443' };
const NO_HOSTS: readonly string[] = [];

/**
 * The page that made the browser send this request, when it is not one of this site's, as
 * browsers say it: the `Origin` header, else `Sec-Fetch-Site`. Returns the offending origin (or
 * `a cross-site page`), `null` when the page is the request's own origin (its scheme, as the app's
 * proxy settings decide, and host), a trusted origin, or, with `siteHosts`, one of those hosts on
 * the request's own scheme and port. A request with neither header comes from no browser page
 * and is let through (Django's `CsrfViewMiddleware` origin check).
 */
export function foreignPageOrigin(request: Request, trustedOrigins: readonly string[], siteHosts: readonly string[] = NO_HOSTS): string | null {
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== '') {
    const host = requestHost(request);
    const own = host ? `${request.protocol}://${host}` : undefined;
    const given = origin.toLowerCase();
    if (given === own || trustedOrigins.some((trusted) => originMatches(given, trusted))) return null;
    if (host && siteHosts.length > 0 && onSiteHost(given, request.protocol, host, siteHosts)) return null;
    return origin;
  }
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `a ${site} page`;
  return null;
}

/** `https://*.example.com` matches any subdomain of example.com over https. */
function originMatches(origin: string, trusted: string): boolean {
  if (!trusted.includes('://*.')) return origin === trusted;
  const [scheme, domain] = trusted.split('://*.');
  if (!origin.startsWith(`${scheme}://`)) return false;
  // A host (on the pattern's port), not any text that ends like one (`https://evil/.example.com`).
  const host = splitHost(origin.slice(scheme.length + 3));
  const wanted = splitHost(domain);
  return host !== null && wanted !== null && host.port === wanted.port && host.domain.endsWith(`.${wanted.domain}`);
}

/**
 * Whether `origin` is a page of another name of this site: a host one of `names` (allowedHosts)
 * names exactly, on the request's own scheme and port. Not another port (development allows
 * `localhost` on any port, and a page on another port is another application), and not a host
 * that only a wildcard (`*`, `.example.com`) covers: a sibling subdomain is another site, to be
 * listed in trustedOrigins if it is the app's own.
 */
function onSiteHost(origin: string, scheme: string, host: string, names: readonly string[]): boolean {
  const at = origin.indexOf('://');
  if (at < 0 || origin.slice(0, at) !== scheme) return false;
  const given = splitHost(origin.slice(at + 3));
  const own = splitHost(host);
  if (!given || !own || (given.port || DEFAULT_PORTS[scheme]) !== (own.port || DEFAULT_PORTS[scheme])) return false;
  return names.some((name) => name !== '*' && !name.startsWith('.') && isAllowedHost(origin.slice(at + 3), [name]));
}
