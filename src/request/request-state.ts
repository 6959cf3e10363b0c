import type { RequestUser } from '../anonymous-user.js';

/**
 * What the module notes about one request while it runs, in one typed slot on the request
 * instead of loose properties (Django keeps the same things as attributes of its request:
 * `_cached_user`, `csrf_cookie_needs_reset`). A concern whose field needs one of its own types
 * declares the field beside its code, by declaration merging, so this file imports nothing that
 * imports it, and an add-on adds its own without the core importing the add-on:
 *
 * ```ts
 * declare module '../request/request-state.js' {
 *   interface RequestState { myAddOn?: MyAddOnState }
 * }
 * ```
 */
export interface RequestState {
  /** The request's user once resolved: one resolution per request, whatever asks. */
  user?: RequestUser;
  /** The resolution under way, shared by whoever asks meanwhile. */
  resolvingUser?: Promise<RequestUser>;
  /** The Fastify reply, noted as the request arrives (a Fastify request does not know it). */
  reply?: object;
  /** The anonymous visitor's CSRF token: its signed cookie's, or one issued during this request. */
  csrfCookieToken?: string;
  /** The CSRF token of before a login made during this request: the form filled in before it still counts. */
  csrfTokenBeforeLogin?: string;
}

const STATE = Symbol('nestjs-session-auth:request-state');

interface StateHolder {
  [STATE]?: RequestState;
}

/** The request's state, made on first use. */
export function stateOf(request: object): RequestState {
  return ((request as StateHolder)[STATE] ??= {});
}

/** The request's state if anything was noted yet (a response's hooks ask without making one). */
export function existingStateOf(request: object | undefined): RequestState | undefined {
  return (request as StateHolder | undefined)?.[STATE];
}
