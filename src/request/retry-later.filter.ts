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
  catch(exception: PasswordHasherBusy | TooManyLoginAttempts, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    response.setHeader('Retry-After', String(exception.retryAfter));
    response.setHeader('Cache-Control', 'no-store');
    response.status(exception.getStatus()).json(exception.getResponse());
  }
}

