import { HttpException } from '@nestjs/common';

/**
 * Thrown by a backend to stop the chain: `authenticate()` resolves `null` without asking the
 * backends after it, and a permission check answers "no" (Django's `PermissionDenied`).
 */
export class PermissionDenied extends Error {
  constructor(message = 'Permission denied.') {
    super(message);
    this.name = 'PermissionDenied';
  }
}

/** The module is set up in a way that cannot work; the message says how to fix it. */
export class ImproperlyConfigured extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImproperlyConfigured';
  }
}

/** What the two kinds of "not now" answer in the `error` field, as Nest's own exceptions do. */
const RETRY_LATER_REASONS = { 429: 'Too Many Requests', 503: 'Service Unavailable' } as const;

/**
 * A refusal that says "not now" rather than "no": a source the login needs is down or busy
 * (503), or the client is over a limit (429). The module answers every subclass with
 * `Retry-After: retryAfter` and `Cache-Control: no-store`, over HTTP and GraphQL alike. A backend
 * whose own source cannot be reached throws one, so the login fails closed: never "wrong
 * password", never the next backend.
 */
export class RetryLater extends HttpException {
  constructor(
    /** The message, or the whole JSON body. */
    response: string | Record<string, unknown>,
    status: keyof typeof RETRY_LATER_REASONS,
    /** Seconds the client is asked to wait. */
    readonly retryAfter: number,
  ) {
    // A message alone gets the body Nest's own exceptions give it: { message, error, statusCode }.
    super(typeof response === 'string' ? { message: response, error: RETRY_LATER_REASONS[status], statusCode: status } : response, status);
  }
}
