import { BadRequestException, ServiceUnavailableException } from '@nestjs/common';

/**
 * The identity provider could not be reached (discovery, the token or userinfo endpoint): 503
 * with `Retry-After`, nobody logged in. Apart from the OpenID Connect client, so the module's
 * filter can answer it without loading one.
 */
export class ProviderUnavailable extends ServiceUnavailableException {
  readonly retryAfter = 30;

  constructor(provider: string) {
    super(`The identity provider ${provider} is unavailable right now; please try again shortly.`);
  }
}

/** A callback that cannot complete a login (unknown or used state, expired code, a token that does not check): 400, nobody logged in. */
export class OidcLoginFailed extends BadRequestException {
  constructor(message: string) {
    super(message);
  }
}
