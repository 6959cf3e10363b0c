import { ServiceUnavailableException } from '@nestjs/common';

/**
 * The directory could not be asked (down, too slow, refusing the service account): a 503 with
 * `Retry-After`, never "wrong password" and never a pass to the next backend. Apart from the
 * LDAP code so the module's filter can answer it without loading an LDAP client.
 */
export class DirectoryUnavailable extends ServiceUnavailableException {
  /** Seconds the client is asked to wait. */
  readonly retryAfter = 30;

  constructor() {
    super('The user directory is unavailable right now; please try again shortly.');
  }
}
