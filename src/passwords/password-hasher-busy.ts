import { Catch, HttpStatus, ServiceUnavailableException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';

/**
 * The password hasher has more work waiting than it accepts, so this password was not checked.
 * A flood of login attempts (unknown usernames cost a hash too, on purpose) would otherwise
 * queue without limit and make real users wait minutes. It is a 503: the answer says nothing
 * about the credentials, and the client may try again after `retryAfter` seconds.
 */
export class PasswordHasherBusy extends ServiceUnavailableException {
  constructor(readonly retryAfter: number) {
    super({
      statusCode: HttpStatus.SERVICE_UNAVAILABLE,
      error: 'Service Unavailable',
      message: `Too many passwords are being checked right now. Please try again in ${retryAfter} seconds.`,
    });
    this.name = 'PasswordHasherBusy';
  }
}

/** Adds `Retry-After` to the 503 of `PasswordHasherBusy` (Nest's default filter cannot set headers). */
@Catch(PasswordHasherBusy)
export class PasswordHasherBusyFilter implements ExceptionFilter {
  catch(exception: PasswordHasherBusy, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    response.setHeader('Retry-After', String(exception.retryAfter));
    response.setHeader('Cache-Control', 'no-store');
    response.status(exception.getStatus()).json(exception.getResponse());
  }
}
