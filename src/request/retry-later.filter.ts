import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { TooManyLoginAttempts } from '../login-throttle.js';
import { PasswordHasherBusy } from '../passwords/password-hasher-busy.js';

/**
 * Answers the refusals that say "not now" rather than "no" — the hasher's queue is full (503),
 * an address failed too often (429) — with `Retry-After` and `Cache-Control: no-store`, which
 * Nest's default filter cannot set.
 */
@Catch(PasswordHasherBusy, TooManyLoginAttempts)
export class RetryLaterFilter implements ExceptionFilter {
  catch(exception: PasswordHasherBusy | TooManyLoginAttempts, host: ArgumentsHost): unknown {
    if (host.getType() !== 'http') {
      // A GraphQL operation (say a login mutation) reports the error its own way; the HTTP
      // response that carries it still says when to come back.
      const response = host.getArgByIndex<{ req?: { res?: Response } } | undefined>(2)?.req?.res;
      if (response && !response.headersSent) noStoreRetryAfter(response, exception.retryAfter);
      return exception;
    }
    const response = host.switchToHttp().getResponse<Response>();
    noStoreRetryAfter(response, exception.retryAfter);
    response.status(exception.getStatus()).json(exception.getResponse());
    return undefined;
  }
}

function noStoreRetryAfter(response: Response, seconds: number): void {
  response.setHeader('Retry-After', String(seconds));
  response.setHeader('Cache-Control', 'no-store');
}

