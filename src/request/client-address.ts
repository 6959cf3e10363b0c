import type { Request } from 'express';
import ipaddr from 'ipaddr.js';

/**
 * The client's address in one spelling per client, for counting login failures: an
 * IPv4-mapped IPv6 address is its IPv4 address, and an IPv6 address stands for its whole /64
 * (one customer's network, which one client can fill with addresses at will). Anything that does
 * not parse is kept as given, lowercased. Which address Express reports (`req.ip`) follows its
 * `trust proxy` setting: see the README's "Passwords under attack" for the safe values.
 */
export function clientAddress(request: Request | undefined): string {
  const raw = request?.ip ?? request?.socket?.remoteAddress ?? '';
  return canonicalAddress(raw);
}

export function canonicalAddress(raw: string): string {
  const text = raw.trim().replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (!ipaddr.isValid(text)) return text.toLowerCase();
  const address = ipaddr.process(text);
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${parts.join(':')}::/64`;
}
