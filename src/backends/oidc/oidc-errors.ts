import { BadRequestException } from '@nestjs/common';
import { RetryLater } from '../../errors.js';

/**
 * The identity provider could not be reached (discovery, the token or userinfo endpoint): 503
 * with `Retry-After`, nobody logged in. Apart from the OpenID Connect client, so catching it
 * loads none.
 */
export class ProviderUnavailable extends RetryLater {
  constructor(provider: string) {
    super(`The identity provider ${provider} is unavailable right now; please try again shortly.`, 503, 30);
  }
}

/** A callback that cannot complete a login (unknown or used state, expired code, a token that does not check): 400, nobody logged in. */
export class OidcLoginFailed extends BadRequestException {
  constructor(message: string) {
    super(message);
  }
}
