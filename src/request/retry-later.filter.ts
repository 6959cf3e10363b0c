import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { RetryLater } from '../errors.js';
import { transportOf } from '../transports/transports.js';
import { headersSent, sendJson, setHeader } from './platform.js';

/**
 * Answers the refusals that say "not now" rather than "no" (`RetryLater`: the hasher's queue is
 * full, an address failed too often, a directory or identity provider cannot be reached) with
 * `Retry-After` and `Cache-Control: no-store`, which Nest's default filter cannot set.
 */
@Catch(RetryLater)
export class RetryLaterFilter implements ExceptionFilter {
  catch(exception: RetryLater, host: ArgumentsHost): unknown {
    const transport = transportOf(host);
    const response = transport.responseOf(host);
    if (transport.answersOverHttp) {
      noStoreRetryAfter(response, exception.retryAfter);
      sendJson(response, exception.getStatus(), exception.getResponse());
      return undefined;
    }
    // A GraphQL operation (say a login mutation) reports the error its own way; the HTTP
    // response that carries it still says when to come back.
    if (response && !headersSent(response)) noStoreRetryAfter(response, exception.retryAfter);
    // The status and the wait ride along as the error's extensions, whichever driver formats it.
    const status = exception.getStatus();
    return Object.assign(exception, { extensions: { code: RETRY_CODES[status], status, retryAfter: exception.retryAfter } });
  }
}

const RETRY_CODES: Record<number, string | undefined> = { 429: 'TOO_MANY_REQUESTS', 503: 'SERVICE_UNAVAILABLE' };

function noStoreRetryAfter(response: unknown, seconds: number): void {
  setHeader(response, 'Retry-After', String(seconds));
  setHeader(response, 'Cache-Control', 'no-store');
}
