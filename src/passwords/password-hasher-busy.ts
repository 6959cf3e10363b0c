import { HttpStatus } from '@nestjs/common';
import { RetryLater } from '../errors.js';

/**
 * The password hasher has more work waiting than it accepts, so this password was not checked.
 * A flood of login attempts (unknown usernames cost a hash too, on purpose) would otherwise
 * queue without limit and make real users wait minutes. It is a 503: the answer says nothing
 * about the credentials, and the client may try again after `retryAfter` seconds.
 */
export class PasswordHasherBusy extends RetryLater {
  constructor(retryAfter: number) {
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message: `Too many passwords are being checked right now. Please try again in ${retryAfter} seconds.`,
      },
      HttpStatus.SERVICE_UNAVAILABLE,
      retryAfter,
    );
    this.name = 'PasswordHasherBusy';
  }
}
