import { IDENTITY_PROVIDER_NAME, type IdentityProviderOptions } from '../app.options.js';
import { DEMO_ACCOUNTS, DemoProvider } from './demo-provider.js';

/** The client the sample is at the demo provider (both sides run here; the secret protects nothing). */
const CLIENT = { clientId: 'sample-site', clientSecret: 'sample-site-demo-secret' };

/**
 * Start the demo identity provider for a site at `siteOrigins` (where its callback may be), on
 * `port` (0: any free one), and the options the sample needs to log in with it.
 */
export async function startDemoIdentityProvider(
  siteOrigins: string[],
  port: number,
): Promise<{ provider: DemoProvider; options: IdentityProviderOptions }> {
  const provider = await DemoProvider.start({
    port,
    ...CLIENT,
    // The site's callback for this provider: each provider has its own.
    redirectUris: siteOrigins.map((origin) => `${origin}/oidc/callback/${IDENTITY_PROVIDER_NAME}`),
    postLogoutRedirectUris: siteOrigins.map((origin) => `${origin}/`),
    accounts: DEMO_ACCOUNTS,
  });
  const account = DEMO_ACCOUNTS[0];
  return {
    provider,
    options: {
      issuer: provider.issuer,
      ...CLIENT,
      label: 'the demo provider',
      allowInsecureRequests: true,
      demoAccount: { login: account.email, password: account.password },
    },
  };
}
