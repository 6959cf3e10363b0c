import type { Request } from 'express';

/**
 * A host as a browser sends it: a domain name or a bracketed IPv6 address, then an optional
 * port (Django's `host_validation_re`). Anything else — user info (`a@b`), a path, a letter
 * in the port — is no host at all.
 */
const HOST = /^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]{1,5}))?$/;

export interface HostParts {
  domain: string;
  port: string;
}

/** Split a Host header into domain and port; `null` when it is not a well-formed host. */
export function splitHost(host: unknown): HostParts | null {
  if (typeof host !== 'string' || host.length > 255) return null;
  const match = HOST.exec(host.toLowerCase());
  if (!match) return null;
  const domain = match[1].endsWith('.') ? match[1].slice(0, -1) : match[1];
  return { domain, port: match[2] ?? '' };
}

/**
 * Whether `host` matches one of `patterns` (Django's `ALLOWED_HOSTS`): `*` matches anything,
 * `.example.com` matches example.com and its subdomains, `example.com` that name on any port,
 * and `example.com:8443` that name on that port only.
 */
export function isAllowedHost(host: unknown, patterns: readonly string[]): boolean {
  const parts = splitHost(host);
  if (!parts) return false;
  return patterns.some((pattern) => {
    if (pattern === '*') return true;
    const wanted = splitHost(pattern.startsWith('.') ? pattern.slice(1) : pattern);
    if (!wanted || (wanted.port && wanted.port !== parts.port)) return false;
    if (pattern.startsWith('.')) return parts.domain === wanted.domain || parts.domain.endsWith(`.${wanted.domain}`);
    return parts.domain === wanted.domain;
  });
}

/**
 * The host the request was sent to — its Host header, or X-Forwarded-Host when Express trusts
 * the proxy (`trust proxy`) — when it is well formed and allowed; otherwise `null`. Only such a
 * host may go into a link or count as this site (Django's `HttpRequest.get_host()`).
 */
export function trustedHost(request: Request, allowedHosts: readonly string[]): string | null {
  const host = requestHost(request);
  return host && isAllowedHost(host, allowedHosts) ? host : null;
}

/** The well-formed host the request names (see `trustedHost`), allowed or not. */
export function requestHost(request: Request): string | null {
  const host = typeof request.host === 'string' ? request.host : request.headers?.host;
  return splitHost(host) ? host!.toLowerCase() : null;
}

/** Hosts a development machine answers to: `localhost` and its subdomains, the loopback addresses. */
export const LOCAL_HOSTS = ['localhost', '.localhost', '127.0.0.1', '[::1]'] as const;
