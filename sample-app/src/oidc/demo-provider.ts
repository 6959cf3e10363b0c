import { createHash, generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration } from 'oidc-provider';

/**
 * A demo OpenID Connect identity provider: `oidc-provider` (a certified implementation) in this
 * process on a loopback port, with keys made at start, one client (the sample site) and accounts
 * of its own behind a small login page. `npm start` runs one beside the sample; the tests run
 * their own.
 */

export interface DemoAccount {
  sub: string;
  password: string;
  email: string;
  emailVerified?: boolean;
  givenName?: string;
  familyName?: string;
  groups?: string[];
}

export interface DemoProviderSettings {
  /** The port (default: a free one). */
  port?: number;
  clientId: string;
  clientSecret: string;
  /** Where the provider may send the code back (the relying party's callback URLs). */
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  accounts: DemoAccount[];
  /** Seconds an authorization code stays valid (default 60). */
  codeTtl?: number;
  /** More clients of the same provider. */
  extraClients?: { clientId: string; clientSecret: string; redirectUris: string[] }[];
  /** Offer an end-session endpoint (RP-initiated logout; default true). */
  rpInitiatedLogout?: boolean;
  /** Take POST at the authorization and end-session endpoints too (its session cookie is then `SameSite=None`). */
  httpPost?: boolean;
}

export const DEMO_ACCOUNTS: DemoAccount[] = [
  { sub: 'fiona-1', password: 'starlight', email: 'fiona@idp.example', emailVerified: true, givenName: 'Fiona', familyName: 'Gallagher', groups: ['staff'] },
];

export class DemoProvider {
  /** Codes it was asked to redeem (POSTs to its token endpoint), for the tests. */
  tokenRequests = 0;

  private constructor(
    readonly provider: Provider,
    private readonly server: Server,
    readonly accounts: Map<string, DemoAccount>,
  ) {}

  get issuer(): string {
    return this.provider.issuer;
  }

  static async start(settings: DemoProviderSettings): Promise<DemoProvider> {
    const server = createServer();
    await listen(server, settings.port ?? 0).catch((error: NodeJS.ErrnoException) => {
      // The port asked for is taken (another app on 3001, say): any free one will do, the site
      // learns the provider's address from it.
      if (error.code !== 'EADDRINUSE') throw error;
      return listen(server, 0);
    });
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const accounts = new Map(settings.accounts.map((account) => [account.sub, { ...account }]));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const configuration: Configuration = {
      clients: [
        {
          client_id: settings.clientId,
          client_secret: settings.clientSecret,
          redirect_uris: settings.redirectUris,
          post_logout_redirect_uris: settings.postLogoutRedirectUris ?? [],
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
        ...(settings.extraClients ?? []).map((client) => ({
          client_id: client.clientId,
          client_secret: client.clientSecret,
          redirect_uris: client.redirectUris,
          grant_types: ['authorization_code'],
          response_types: ['code' as const],
        })),
      ],
      jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'demo', use: 'sig', alg: 'RS256' }] as never },
      cookies: {
        keys: [createHash('sha256').update(`${issuer}:${Math.random()}`).digest('hex')],
        ...(settings.httpPost ? { long: { sameSite: 'none' } } : {}),
      },
      enableHttpPostMethods: settings.httpPost ?? false,
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['given_name', 'family_name', 'name'], groups: ['groups'] },
      scopes: ['openid', 'email', 'profile', 'groups'],
      features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: settings.rpInitiatedLogout ?? true } },
      pkce: { required: () => true },
      ttl: { AuthorizationCode: settings.codeTtl ?? 60 },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      findAccount: (_ctx, sub) => {
        const account = accounts.get(sub);
        if (!account) return undefined;
        return {
          accountId: sub,
          claims: () => ({
            sub,
            email: account.email,
            email_verified: account.emailVerified ?? false,
            given_name: account.givenName,
            family_name: account.familyName,
            name: [account.givenName, account.familyName].filter(Boolean).join(' '),
            groups: account.groups ?? [],
          }),
        };
      },
    };
    const provider = new Provider(issuer, configuration);
    const demo = new DemoProvider(provider, server, accounts);
    const callback = provider.callback();
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (request.method === 'POST' && request.url?.startsWith('/token')) demo.tokenRequests++;
      if (request.url?.startsWith('/interaction/')) {
        demo.interaction(request, response).catch((error) => {
          response.statusCode = 500;
          response.end(String(error?.message ?? error));
        });
        return;
      }
      callback(request, response);
    });
    return demo;
  }

  /** The provider's own login page: the account's id (or email) and password, then back to the flow with consent given. */
  private async interaction(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const details = await this.provider.interactionDetails(request, response);
    const page = (error = '') => {
      response.setHeader('Content-Type', 'text/html; charset=utf-8');
      response.setHeader('Cache-Control', 'no-store');
      response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo identity provider</title></head><body>
<h1>Demo identity provider</h1>${error ? `<p role="alert">${error}</p>` : ''}
<form method="post" action="/interaction/${details.uid}">
<p><label for="login">Email</label><input id="login" name="login" autocomplete="username" required></p>
<p><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p></form></body></html>`);
    };
    if (request.method !== 'POST') return page();
    const form = new URLSearchParams(await readBody(request));
    const login = form.get('login') ?? '';
    const account = [...this.accounts.values()].find((candidate) => candidate.email === login || candidate.sub === login);
    if (!account || !samePassword(account.password, form.get('password') ?? '')) return page('Wrong email or password.');
    const grant = new this.provider.Grant({ accountId: account.sub, clientId: String(details.params.client_id) });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    await this.provider.interactionFinished(
      request,
      response,
      { login: { accountId: account.sub }, consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: false },
    );
  }

  /** Change an account, as the provider's admins would (the next login sees it). */
  update(sub: string, changes: Partial<DemoAccount>): void {
    Object.assign(this.accounts.get(sub)!, changes);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      body += chunk;
      if (body.length > 10_000) request.destroy();
    });
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

function samePassword(expected: string, given: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(expected), digest(given));
}
