/** `nestjs-session-auth/oidc`: `OidcBackend` and its views (`OidcModule`), log in with an OpenID Connect provider (needs `openid-client`). */
export { OidcBackend, type OidcFlow, type OidcPopulateContext } from '../backends/oidc/oidc.backend.js';
export { OidcModule, OidcController } from '../backends/oidc/oidc.controller.js';
export { OidcLoginFailed, ProviderUnavailable } from '../backends/oidc/oidc-errors.js';
export type { OidcBackendOptions } from '../backends/oidc/oidc.options.js';
