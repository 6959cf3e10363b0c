import { RetryLater } from '../../errors.js';

/**
 * The directory could not be asked (down, too slow, refusing the service account): a 503 with
 * `Retry-After`, never "wrong password" and never a pass to the next backend. Apart from the
 * LDAP code, so catching it loads no LDAP client.
 */
export class DirectoryUnavailable extends RetryLater {
  constructor() {
    super('The user directory is unavailable right now; please try again shortly.', 503, 30);
  }
}
