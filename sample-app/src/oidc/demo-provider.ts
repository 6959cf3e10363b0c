import { createHash, generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { pageHeaders } from '../security-headers.middleware.js';
import { providerErrorPage, signedOutPage, signInPage, signOutPage } from './provider-pages.js';

/**
 * A demo OpenID Connect identity provider: `oidc-provider` (a certified implementation) in this
 * process on a loopback port, with keys made at start, one client (the sample site) and accounts
 * of its own behind a small login page, dressed like the sample. `npm start` runs one beside the
 * sample; the tests run their own.
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
    private readonly headers: Record<string, string>,
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
    // The sample's page headers: its forms go on to the clients (a login ends at their callback).
    const headers = pageHeaders({ formTargets: clientOrigins(settings) });
    const show = (ctx: KoaContextWithOIDC, markup: string) => {
      ctx.set(headers);
      ctx.type = 'html';
      ctx.body = markup;
    };
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
      features: {
        devInteractions: { enabled: false },
        rpInitiatedLogout: {
          enabled: settings.rpInitiatedLogout ?? true,
          logoutSource: (ctx, form) => show(ctx, signOutPage(form)),
          postLogoutSuccessSource: (ctx) => show(ctx, signedOutPage()),
        },
      },
      renderError: (ctx, out) => show(ctx, providerErrorPage(ctx.status, out)),
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
    const demo = new DemoProvider(provider, server, accounts, headers);
    const callback = provider.callback();
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (request.method === 'POST' && request.url?.startsWith('/token')) demo.tokenRequests++;
      if (request.url?.startsWith('/interaction/')) {
        demo.interaction(request, response).catch((error) => demo.failedInteraction(response, error));
        return;
      }
      callback(request, response);
    });
    return demo;
  }

  /** The provider's own login page: the account's id (or email) and password, then back to the flow with consent given. */
  private async interaction(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const details = await this.provider.interactionDetails(request, response);
    const page = (form: { login?: string; error?: string } = {}) =>
      this.send(response, 200, signInPage({ action: `/interaction/${details.uid}`, client: String(details.params.client_id), ...form }));
    if (request.method !== 'POST') return page();
    const form = new URLSearchParams(await readBody(request));
    const login = form.get('login') ?? '';
    const account = [...this.accounts.values()].find((candidate) => candidate.email === login || candidate.sub === login);
    if (!account || !samePassword(account.password, form.get('password') ?? '')) return page({ login, error: 'Wrong email or password.' });
    const grant = new this.provider.Grant({ accountId: account.sub, clientId: String(details.params.client_id) });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    await this.provider.interactionFinished(
      request,
      response,
      { login: { accountId: account.sub }, consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: false },
    );
  }

  /** An interaction that expired or was already used (the back button after signing in): the error page, not a stack trace. */
  private failedInteraction(response: ServerResponse, error: { statusCode?: number; error?: string; error_description?: string }): void {
    if (response.headersSent) return void response.end();
    const status = error.statusCode ?? 500;
    this.send(response, status, providerErrorPage(status, { error: error.error ?? 'server_error', error_description: status < 500 ? error.error_description : undefined }));
  }

  /** A page of the provider's own, under the sample's headers (`show` does the same for oidc-provider's pages). */
  private send(response: ServerResponse, status: number, markup: string): void {
    for (const [name, value] of Object.entries(this.headers)) response.setHeader(name, value);
    response.setHeader('Content-Type', 'text/html; charset=utf-8');
    response.statusCode = status;
    response.end(markup);
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

/** The origins of every client's callbacks: where the provider's forms end up. */
function clientOrigins(settings: DemoProviderSettings): string[] {
  const uris = [...settings.redirectUris, ...(settings.postLogoutRedirectUris ?? []), ...(settings.extraClients ?? []).flatMap((client) => client.redirectUris)];
  return [...new Set(uris.map((uri) => new URL(uri).origin))];
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
