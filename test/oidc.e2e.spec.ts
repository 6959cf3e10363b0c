import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthEvents, ExternalIdentity, ModelBackend, PermissionManager, SessionRecord, type AuthModuleOptions } from 'nestjs-session-auth';
import { OidcBackend, OidcModule, type OidcBackendOptions } from 'nestjs-session-auth/oidc';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { DemoProvider, type DemoAccount } from '../sample-app/src/oidc/demo-provider.js';
import { signInAtProvider as signInAt } from './support/oidc.js';
import { postgresUrl, uniqueName, describeIf } from './support/services.js';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';

/**
 * OidcBackend against a real OpenID Connect provider: `oidc-provider` in this process on a
 * loopback port with real keys, the whole redirect dance driven over HTTP (the provider's own
 * login page included), after mozilla-django-oidc's tests.
 */

type Agent = ReturnType<typeof request.agent>;

const SITE = 'http://app.test';
const callbackOf = (name: string) => `${SITE}/oidc/callback/${name}`;
const CALLBACK = callbackOf('demo');
const AFTER_LOGOUT = 'http://app.test/goodbye';
const HTML = 'text/html,application/xhtml+xml';
const JWT = /ey[\w-]+\.ey[\w-]+\.[\w-]+/;

const signInAtProvider = (url: string, login: string, password: string, callback = CALLBACK) => signInAt(url, login, password, callback);

const account = (overrides: Partial<DemoAccount> = {}): DemoAccount => ({
  sub: 'gwen-1',
  password: 'moonlight',
  email: 'gwen@idp.example',
  emailVerified: true,
  givenName: 'Gwen',
  familyName: 'Stacy',
  groups: ['staff', 'editors'],
  ...overrides,
});

async function startProvider(extra: Partial<Parameters<typeof DemoProvider.start>[0]> = {}): Promise<DemoProvider> {
  return DemoProvider.start({
    clientId: 'app',
    clientSecret: 'app-secret',
    redirectUris: [CALLBACK],
    postLogoutRedirectUris: [AFTER_LOGOUT],
    accounts: [account(), account({ sub: 'hank-2', email: 'hank@idp.example', password: 'sunrise', emailVerified: false, groups: [] })],
    ...extra,
  });
}

/** The CSRF token an anonymous visitor of the login page gets (the views' JSON answer). */
async function csrfTokenOf(agent: Agent): Promise<string> {
  return (await agent.get('/accounts/login').set('Accept', 'application/json').expect(200)).body.csrfToken;
}

/** Send the browser back from the provider to the app: the callback URL's path and query. */
const deliver = (agent: Agent, callback: URL) => agent.get(`${callback.pathname}${callback.search}`).set('Accept', HTML);

describe('OidcBackend against a real provider (oidc-provider)', () => {
  let idp: DemoProvider;
  let t: TestApp | undefined;
  let server: any;

  beforeAll(async () => {
    idp = await startProvider();
  });
  afterAll(() => idp?.close());
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const demo = (extra: Partial<OidcBackendOptions> = {}): OidcBackendOptions => ({
    name: 'demo',
    label: 'the demo provider',
    issuer: idp.issuer,
    clientId: 'app',
    clientSecret: 'app-secret',
    postLogoutRedirectUri: AFTER_LOGOUT,
    scopes: ['openid', 'email', 'profile', 'groups'],
    allowInsecureRequests: true,
    ...extra,
  });

  async function boot(backends: AuthModuleOptions['backends'], auth: Partial<AuthModuleOptions> = {}, trustProxy?: string): Promise<void> {
    t = await createTestApp({
      auth: { backends, views: true, siteUrl: SITE, loginRedirectUrl: '/whoami', throttle: { addressBurst: 100 }, ...auth },
      imports: [OidcModule],
      trustProxy,
    });
    server = t.app.getHttpServer();
  }

  /** Start a login at the app (the login page's button: a POST with the CSRF token); resolves the provider's authorization URL. */
  async function start(agent: Agent, fields: Record<string, string> = { provider: 'demo' }): Promise<URL> {
    const csrfmiddlewaretoken = await csrfTokenOf(agent);
    const response = await agent.post('/oidc/authenticate').type('form').set('Accept', HTML).send({ csrfmiddlewaretoken, ...fields }).expect(303);
    return new URL(response.headers.location);
  }

  /** The whole dance: the app, the provider's login page, back to the app's callback. */
  async function logIn(agent: Agent, login = 'gwen@idp.example', password = 'moonlight', fields: Record<string, string> = { provider: 'demo', next: '/me' }) {
    const callback = await signInAtProvider((await start(agent, fields)).href, login, password, callbackOf(fields.provider));
    return deliver(agent, callback);
  }

  const whoami = async (agent: Agent) => (await agent.get('/whoami').expect(200)).body;
  const identities = () => t!.app.get(DataSource).getRepository(ExternalIdentity).find({ order: { id: 'ASC' } });

  it('sends the browser to the provider with PKCE, state and nonce, and the callback of that provider', async () => {
    await boot([OidcBackend.configure(demo()), ModelBackend]);
    const url = await start(request.agent(server));
    expect(url.origin + url.pathname).toBe(`${idp.issuer}/auth`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: 'app',
      redirect_uri: 'http://app.test/oidc/callback/demo',
      response_type: 'code',
      code_challenge_method: 'S256',
      scope: 'openid email profile groups',
    });
    for (const param of ['state', 'nonce', 'code_challenge']) expect(url.searchParams.get(param)).toMatch(/^[\w-]{20,}$/);
  });

  it('creates the local user at the first login, links it by subject, and logs in through login() (new session id)', async () => {
    await boot([OidcBackend.configure(demo()), ModelBackend]);
    const agent = request.agent(server);
    const csrfmiddlewaretoken = await csrfTokenOf(agent);
    const started = await agent.post('/oidc/authenticate').type('form').send({ csrfmiddlewaretoken, provider: 'demo' }).expect(303);
    const before = sessionCookie(started.headers['set-cookie']);
    const callback = await signInAtProvider(started.headers.location, 'gwen@idp.example', 'moonlight');
    const done = await deliver(agent, callback).expect(302);
    expect(done.headers.location).toBe('/whoami');
    const after = sessionCookie(done.headers['set-cookie']);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(await whoami(agent)).toEqual({ username: 'gwen@idp.example', isAuthenticated: true });
    expect((await agent.get('/me').expect(200)).body).toEqual({ username: 'gwen@idp.example', backend: 'demo' });
    const user = (await t!.users.findByUsername('gwen@idp.example'))!;
    expect(user).toMatchObject({ email: 'gwen@idp.example', firstName: 'Gwen', lastName: 'Stacy' });
    expect(isPasswordUsable(user.password)).toBe(false);
    expect(await identities()).toEqual([expect.objectContaining({ source: 'demo', subject: 'gwen-1', userId: String(user.id) })]);
  });

  it('updates the user at the next login, and keeps the same user when the email changes at the provider', async () => {
    await boot([OidcBackend.configure(demo())]);
    await logIn(request.agent(server)).then((response) => expect(response.status).toBe(302));
    const first = (await t!.users.findByUsername('gwen@idp.example'))!;
    idp.update('gwen-1', { email: 'gwen.stacy@idp.example', givenName: 'Gwendolyn' });
    try {
      const agent = request.agent(server);
      expect((await logIn(agent, 'gwen.stacy@idp.example')).status).toBe(302);
      const users = await t!.users.repository.find();
      expect(users).toHaveLength(1);
      expect(users[0]).toMatchObject({ id: first.id, email: 'gwen.stacy@idp.example', firstName: 'Gwendolyn' });
      expect((await whoami(agent)).isAuthenticated).toBe(true);
    } finally {
      idp.update('gwen-1', { email: 'gwen@idp.example', givenName: 'Gwen' });
    }
  });

  it('logs in through login(): the userLoggedIn event fires with the user of the provider’s backend', async () => {
    await boot([OidcBackend.configure(demo()), ModelBackend]);
    const seen: string[] = [];
    t!.app.get(AuthEvents).on('userLoggedIn', ({ user }) => {
      seen.push(`${user.username} via ${user.backend}`);
    });
    expect((await logIn(request.agent(server))).status).toBe(302);
    expect(seen).toEqual(['gwen@idp.example via demo']);
  });

  it('admits only identities already linked with createUsers: false', async () => {
    await boot([OidcBackend.configure(demo({ createUsers: false }))]);
    const agent = request.agent(server);
    expect((await logIn(agent)).status).toBe(403);
    expect((await whoami(agent)).isAuthenticated).toBe(false);
    expect(await t!.users.repository.count()).toBe(0);
  });

  it('gives a new user a username of their own when a local user already has the claimed one', async () => {
    await boot([OidcBackend.configure(demo()), ModelBackend]);
    const local = await t!.users.createUser({ username: 'gwen@idp.example', password: 'local secret' });
    const agent = request.agent(server);
    expect((await logIn(agent)).status).toBe(302);
    const { body } = await agent.get('/me').expect(200);
    expect(body.backend).toBe('demo');
    expect(body.username).toMatch(/^gwen@idp\.example-[0-9a-f]{12}$/);
    // The local account is not taken over: it keeps its password and stays someone else.
    expect(await t!.users.checkPassword((await t!.users.findById(String(local.id)))!, 'local secret')).toBe(true);
  });

  it('logs in to the local account of the same name with linkExistingUsers: true, and links it', async () => {
    await boot([OidcBackend.configure(demo({ linkExistingUsers: true })), ModelBackend]);
    const local = await t!.users.createUser({ username: 'gwen@idp.example', password: 'local secret' });
    const agent = request.agent(server);
    expect((await logIn(agent)).status).toBe(302);
    expect((await agent.get('/me').expect(200)).body).toEqual({ username: 'gwen@idp.example', backend: 'demo' });
    expect(await t!.users.repository.count()).toBe(1);
    expect(await identities()).toEqual([expect.objectContaining({ subject: 'gwen-1', userId: String(local.id) })]);
  });

  it('makes a new user when the linked one was deleted here, and links the identity to it', async () => {
    await boot([OidcBackend.configure(demo())]);
    expect((await logIn(request.agent(server))).status).toBe(302);
    await t!.users.repository.delete({ username: 'gwen@idp.example' });
    for (let round = 0; round < 2; round++) {
      const agent = request.agent(server);
      expect((await logIn(agent)).status).toBe(302);
      expect((await whoami(agent)).username).toBe('gwen@idp.example');
    }
    const users = await t!.users.repository.find();
    expect(users).toHaveLength(1);
    expect(await identities()).toEqual([expect.objectContaining({ subject: 'gwen-1', userId: String(users[0].id) })]);
  });

  it('goes to a safe next after login, never to another site', async () => {
    await boot([OidcBackend.configure(demo())]);
    expect((await logIn(request.agent(server), undefined, undefined, { provider: 'demo', next: '/me' })).headers.location).toBe('/me');
    expect((await logIn(request.agent(server), undefined, undefined, { provider: 'demo', next: 'https://evil.example/' })).headers.location).toBe('/whoami');
  });

  it('refuses claims that do not pass verifyClaims: 403, nobody logged in, no user made, no secret in the failure event', async () => {
    await boot([OidcBackend.configure(demo({ verifyClaims: (claims) => claims.email_verified === true }))]);
    const failures: unknown[] = [];
    t!.app.get(AuthEvents).on('userLoginFailed', ({ credentials }) => {
      failures.push(credentials);
    });
    const agent = request.agent(server);
    const url = await start(agent);
    const callback = await signInAtProvider(url.href, 'hank@idp.example', 'sunrise');
    const response = await deliver(agent, callback);
    expect(response.status).toBe(403);
    // Listeners learn which provider refused, never the code or the login's state.
    expect(failures).toEqual([{ oidcCallback: 'demo' }]);
    expect(JSON.stringify(failures)).not.toContain(callback.searchParams.get('code')!);
    expect((await whoami(agent)).isAuthenticated).toBe(false);
    expect(await t!.users.findByUsername('hank@idp.example')).toBeNull();
  });

  it('mirrors the groups claim into local groups', async () => {
    await boot([OidcBackend.configure(demo({ groupsClaim: 'groups', mirrorGroups: ['staff'] }))]);
    await logIn(request.agent(server));
    const user = (await t!.users.findByUsername('gwen@idp.example'))!;
    expect((await t!.app.get(PermissionManager).userGroups(user)).map((group) => group.name)).toEqual(['staff']);
  });

  it('uses an unverified email only with trustUnverifiedEmail, and refuses it together with linkExistingUsers: true', async () => {
    await boot([OidcBackend.configure(demo({ trustUnverifiedEmail: true }))]);
    expect((await logIn(request.agent(server), 'hank@idp.example', 'sunrise')).status).toBe(302);
    expect(await t!.users.findByUsername('hank@idp.example')).toMatchObject({ email: 'hank@idp.example' });
    expect(() => OidcBackend.configure(demo({ trustUnverifiedEmail: true, linkExistingUsers: true }))).toThrow(/linkExistingUsers: true with trustUnverifiedEmail/);
  });

  it('requires each provider’s redirectUri to be its own callback', () => {
    expect(() => OidcBackend.configure(demo({ redirectUri: 'https://app.test/oidc/callback' }))).toThrow(/must end in \/oidc\/callback\/demo/);
    expect(() => OidcBackend.configure(demo({ redirectUri: 'https://app.test/oidc/callback/other' }))).toThrow(/must end in \/oidc\/callback\/demo/);
    expect(() => OidcBackend.configure(demo({ redirectUri: 'https://app.test/api/oidc/callback/demo' }))).not.toThrow();
  });

  describe('from the attacker’s side', () => {
    it('refuses a forged state and a replayed callback, logging nobody in', async () => {
      await boot([OidcBackend.configure(demo())]);
      const agent = request.agent(server);
      const callback = await signInAtProvider((await start(agent)).href, 'gwen@idp.example', 'moonlight');
      const forged = new URLSearchParams(callback.search);
      forged.set('state', 'forged-state-value-of-the-right-length');
      await agent.get(`/oidc/callback/demo?${forged}`).set('Accept', HTML).expect(400);
      await agent.get('/oidc/callback/demo').set('Accept', HTML).expect(400);
      expect((await whoami(agent)).isAuthenticated).toBe(false);
      await deliver(agent, callback).expect(302);
      // The same callback again (a replay, or a leaked URL): its state was used up.
      const replay = await deliver(agent, callback).expect(400);
      expect(replay.body.message).toMatch(/does not match one started here/);
    });

    it('refuses an attacker’s callback in the victim’s browser (login CSRF): the state is not the victim’s', async () => {
      await boot([OidcBackend.configure(demo())]);
      const attacker = request.agent(server);
      const callback = await signInAtProvider((await start(attacker)).href, 'gwen@idp.example', 'moonlight');
      const victim = request.agent(server);
      await start(victim);
      await deliver(victim, callback).expect(400);
      expect((await whoami(victim)).isAuthenticated).toBe(false);
    });

    it('starts no login from a link or an image of another site: GET is 405, a POST needs the CSRF token', async () => {
      await boot([OidcBackend.configure(demo())]);
      const sessions = t!.app.get(DataSource).getRepository(SessionRecord);
      const visitor = request.agent(server);
      const get = await visitor.get('/oidc/authenticate?provider=demo').set('Accept', HTML).expect(405);
      expect(get.headers.allow).toBe('POST');
      expect(get.headers.location).toBeUndefined();
      // A page of another site posting its own form: no token of this visitor's.
      await visitor.post('/oidc/authenticate').type('form').send({ provider: 'demo' }).expect(403);
      const token = await csrfTokenOf(visitor);
      await visitor.post('/oidc/authenticate').type('form').set('Origin', 'https://evil.example').send({ csrfmiddlewaretoken: token, provider: 'demo' }).expect(403);
      // No login under way was kept for any of them.
      expect(await sessions.count()).toBe(0);
    });

    it('refuses a code of one provider delivered into a login started with another (mix-up): no token request anywhere', async () => {
      // A configured provider that turned malicious: it sends the visitor on to the honest provider
      // with this app's client id there, and would collect the code at its own token endpoint.
      const stolen: string[] = [];
      const evil: Server = createServer((req, res) => {
        const issuer = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
        const url = new URL(req.url!, issuer);
        if (url.pathname === '/.well-known/openid-configuration') {
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'] }));
        } else if (url.pathname === '/auth') {
          const honest = new URL(`${idp.issuer}/auth`);
          url.searchParams.forEach((value, key) => honest.searchParams.set(key, value));
          honest.searchParams.set('client_id', 'app');
          honest.searchParams.set('redirect_uri', CALLBACK);
          res.writeHead(302, { Location: honest.href }).end();
        } else if (url.pathname === '/token') {
          let body = '';
          req.on('data', (chunk) => (body += chunk));
          req.on('end', () => {
            stolen.push(body);
            res.writeHead(400, { 'Content-Type': 'application/json' }).end('{"error":"invalid_grant"}');
          });
        } else res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
      const before = idp.tokenRequests;
      try {
        const evilIssuer = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
        await boot([OidcBackend.configure(demo()), OidcBackend.configure(demo({ name: 'evil', issuer: evilIssuer, clientId: 'app-at-evil', clientSecret: 'x' }))]);
        const victim = request.agent(server);
        const callback = await signInAtProvider((await start(victim, { provider: 'evil' })).href, 'gwen@idp.example', 'moonlight');
        // As a provider from before RFC 9207 would: no iss to tell the two apart.
        callback.searchParams.delete('iss');
        const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
        try {
          const response = await deliver(victim, callback).expect(400);
          expect(response.body.message).toMatch(/another identity provider/);
        } finally {
          warnings.mockRestore();
        }
        expect(stolen).toEqual([]);
        expect(idp.tokenRequests).toBe(before);
        expect((await whoami(victim)).isAuthenticated).toBe(false);
      } finally {
        evil.closeAllConnections();
        await new Promise((resolve) => evil.close(resolve));
      }
    });

    it('refuses a callback at another provider’s path, before any token request', async () => {
      const second = await startProvider({ redirectUris: [callbackOf('second')] });
      try {
        await boot([OidcBackend.configure(demo()), OidcBackend.configure(demo({ name: 'second', issuer: second.issuer }))]);
        const agent = request.agent(server);
        const callback = await signInAtProvider((await start(agent, { provider: 'second' })).href, 'gwen@idp.example', 'moonlight', callbackOf('second'));
        const [demoBefore, secondBefore] = [idp.tokenRequests, second.tokenRequests];
        const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
        try {
          await agent.get(`/oidc/callback/demo${callback.search}`).set('Accept', HTML).expect(400);
        } finally {
          warnings.mockRestore();
        }
        expect([idp.tokenRequests, second.tokenRequests]).toEqual([demoBefore, secondBefore]);
        // The login under way is used up: it cannot be finished at the right path afterwards either.
        await deliver(agent, callback).expect(400);
        expect((await whoami(agent)).isAuthenticated).toBe(false);
        // Unknown providers have no callback.
        await agent.get(`/oidc/callback/nope${callback.search}`).set('Accept', HTML).expect(404);
      } finally {
        await second.close();
      }
    });

    it('requires iss from a provider that advertises it (RFC 9207), and refuses another issuer’s, before any token request', async () => {
      await boot([OidcBackend.configure(demo())]);
      const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        for (const tamper of [(params: URLSearchParams) => params.delete('iss'), (params: URLSearchParams) => params.set('iss', 'https://other-idp.example')]) {
          const agent = request.agent(server);
          const callback = await signInAtProvider((await start(agent)).href, 'gwen@idp.example', 'moonlight');
          expect(callback.searchParams.get('iss')).toBe(idp.issuer);
          const before = idp.tokenRequests;
          const params = new URLSearchParams(callback.search);
          tamper(params);
          await agent.get(`/oidc/callback/demo?${params}`).set('Accept', HTML).expect(400);
          expect(idp.tokenRequests).toBe(before);
          expect((await whoami(agent)).isAuthenticated).toBe(false);
        }
      } finally {
        warnings.mockRestore();
      }
    });

    it('refuses a code for another login of the same browser (its PKCE verifier and nonce do not match)', async () => {
      await boot([OidcBackend.configure(demo())]);
      const agent = request.agent(server);
      const first = await start(agent);
      const second = await start(agent);
      const callback = await signInAtProvider(first.href, 'gwen@idp.example', 'moonlight');
      const mixed = new URLSearchParams(callback.search);
      mixed.set('state', second.searchParams.get('state')!);
      const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        await agent.get(`/oidc/callback/demo?${mixed}`).set('Accept', HTML).expect(400);
      } finally {
        warnings.mockRestore();
      }
      expect((await whoami(agent)).isAuthenticated).toBe(false);
    });

    it('refuses an ID token whose nonce is not the one sent', async () => {
      await boot([OidcBackend.configure(demo())]);
      const agent = request.agent(server);
      const url = await start(agent);
      const callback = await signInAtProvider(url.href, 'gwen@idp.example', 'moonlight');
      // The session's copy of the login under way gets another nonce (as if the token were for another request).
      const sessions = t!.app.get(DataSource).getRepository(SessionRecord);
      const [row] = await sessions.findBy({ revoked: false });
      const data = JSON.parse(row.data);
      data._oidc_flows[url.searchParams.get('state')!].nonce = 'another-nonce';
      await sessions.update({ id: row.id }, { data: JSON.stringify(data) });
      const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        await deliver(agent, callback).expect(400);
        expect(warnings).toHaveBeenCalledWith(expect.stringMatching(/nonce/));
      } finally {
        warnings.mockRestore();
      }
      expect((await whoami(agent)).isAuthenticated).toBe(false);
    });

    it('refuses a code issued to another client of the provider (its tokens are not for this app)', async () => {
      const shared = await startProvider({ extraClients: [{ clientId: 'other-app', clientSecret: 'other-secret', redirectUris: [CALLBACK] }] });
      try {
        await boot([OidcBackend.configure(demo({ issuer: shared.issuer }))]);
        // The attacker logs in at the provider through another client and gets a code for it.
        const verifier = 'attacker-verifier-attacker-verifier-attacker-verifier';
        const authorize = new URL(`${shared.issuer}/auth`);
        authorize.search = new URLSearchParams({
          client_id: 'other-app',
          redirect_uri: CALLBACK,
          response_type: 'code',
          scope: 'openid email',
          state: 'attacker-state',
          nonce: 'attacker-nonce',
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          code_challenge_method: 'S256',
        }).toString();
        const theirs = await signInAtProvider(authorize.href, 'gwen@idp.example', 'moonlight');
        // The victim's browser has a login under way here; the attacker's code arrives with its state.
        const victim = request.agent(server);
        const state = (await start(victim)).searchParams.get('state')!;
        const forged = new URLSearchParams(theirs.search);
        forged.set('state', state);
        const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
        try {
          await victim.get(`/oidc/callback/demo?${forged}`).set('Accept', HTML).expect(400);
        } finally {
          warnings.mockRestore();
        }
        expect((await whoami(victim)).isAuthenticated).toBe(false);
        expect(await t!.users.repository.count()).toBe(0);
      } finally {
        await shared.close();
      }
    });

    it('refuses an expired code', async () => {
      const slow = await startProvider({ codeTtl: 1 });
      try {
        await boot([OidcBackend.configure(demo({ issuer: slow.issuer }))]);
        const agent = request.agent(server);
        const callback = await signInAtProvider((await start(agent)).href, 'gwen@idp.example', 'moonlight');
        await new Promise((resolve) => setTimeout(resolve, 2100));
        const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
        try {
          const response = await deliver(agent, callback).expect(400);
          expect(response.body.message).toMatch(/could not be completed/);
        } finally {
          warnings.mockRestore();
        }
        expect((await whoami(agent)).isAuthenticated).toBe(false);
      } finally {
        await slow.close();
      }
    });

    it('answers error=access_denied from the provider with 403, nobody logged in', async () => {
      await boot([OidcBackend.configure(demo())]);
      const agent = request.agent(server);
      const state = (await start(agent)).searchParams.get('state')!;
      const response = await agent.get(`/oidc/callback/demo?error=access_denied&state=${state}`).set('Accept', HTML).expect(403);
      expect(response.body.message).toBe('the demo provider did not log you in (access_denied).');
      expect((await whoami(agent)).isAuthenticated).toBe(false);
    });

    it('takes neither the username nor the email from an unverified email claim', async () => {
      await boot([OidcBackend.configure(demo()), ModelBackend]);
      // Someone typed a victim's address at the provider, which did not verify it.
      const victim = await t!.users.createUser({ username: 'hank@idp.example', email: 'hank@idp.example', password: 'victim secret' });
      const agent = request.agent(server);
      expect((await logIn(agent, 'hank@idp.example', 'sunrise')).status).toBe(302);
      expect((await agent.get('/me').expect(200)).body).toEqual({ username: 'hank-2', backend: 'demo' });
      const made = (await t!.users.findByUsername('hank-2'))!;
      expect(made.email).toBe('');
      expect(await t!.users.repository.count()).toBe(2);
      expect(await t!.users.checkPassword((await t!.users.findById(String(victim.id)))!, 'victim secret')).toBe(true);
    });

    it('keeps the verified email when the provider later sends an unverified one', async () => {
      await boot([OidcBackend.configure(demo())]);
      expect((await logIn(request.agent(server))).status).toBe(302);
      idp.update('gwen-1', { email: 'someone.else@idp.example', emailVerified: false });
      try {
        expect((await logIn(request.agent(server), 'gwen-1')).status).toBe(302);
        const users = await t!.users.repository.find();
        expect(users.map((user) => [user.username, user.email])).toEqual([['gwen@idp.example', 'gwen@idp.example']]);
      } finally {
        idp.update('gwen-1', { email: 'gwen@idp.example', emailVerified: true });
      }
    });

    it('gives SSO logins a budget of their own: many from one address succeed, password guesses stay limited', async () => {
      // A tight password budget, to see that SSO logins do not spend it (an office behind one NAT at 9 am).
      await boot([OidcBackend.configure(demo()), ModelBackend], { throttle: { addressBurst: 5, addressRate: 0.01 } });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await logIn(request.agent(server))).status);
      expect(statuses).toEqual(Array(12).fill(302));
      // Password guesses from the same address: as limited as before.
      await t!.users.createUser({ username: 'carol', password: 'correct horse' });
      const guesses: number[] = [];
      for (let i = 0; i < 7; i++) guesses.push((await request(server).post('/login').send({ username: 'carol', password: `guess ${i}` })).status);
      expect(guesses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    });

    it('still bounds a flood of forged callbacks from one address: past callbackBurst, 429 before the provider is asked', async () => {
      await boot([OidcBackend.configure(demo())], { throttle: { callbackBurst: 3, callbackRate: 0.01 } });
      const before = idp.tokenRequests;
      const statuses: number[] = [];
      const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        for (let i = 0; i < 5; i++) {
          // Logins of the attacker's own, each with a made-up code.
          const agent = request.agent(server);
          const state = (await start(agent)).searchParams.get('state')!;
          statuses.push((await agent.get(`/oidc/callback/demo?code=forged-code-${i}&state=${state}&iss=${encodeURIComponent(idp.issuer)}`).set('Accept', HTML)).status);
        }
      } finally {
        warnings.mockRestore();
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      expect(idp.tokenRequests - before).toBe(3);
    });

    it('makes one local user when two first logins of the same person finish at once (two browsers), with no 5xx', async () => {
      // Both logins get as far as populateUser before either saves, as two instances or a slow hook would.
      const both = barrier(2);
      class SlowDemo extends OidcBackend.configure(demo({ groupsClaim: 'groups', mirrorGroups: true })) {
        protected override async populateUser(): Promise<void> {
          await both();
        }
      }
      await boot([SlowDemo], {}, 'loopback');
      const browsers = [request.agent(server), request.agent(server)];
      const callbacks: URL[] = [];
      for (const browser of browsers) callbacks.push(await signInAtProvider((await start(browser)).href, 'gwen@idp.example', 'moonlight'));
      const responses = await Promise.all(browsers.map((browser, i) => deliver(browser, callbacks[i]).set('X-Forwarded-For', `203.0.113.${i + 1}`)));
      expect(responses.map((response) => response.status)).toEqual([302, 302]);
      const users = await t!.users.repository.find();
      expect(users).toHaveLength(1);
      for (const browser of browsers) expect((await browser.get('/me').expect(200)).body).toEqual({ username: 'gwen@idp.example', backend: 'demo' });
      expect(await identities()).toEqual([expect.objectContaining({ source: 'demo', subject: 'gwen-1', userId: String(users[0].id) })]);
      expect((await t!.app.get(PermissionManager).userGroups(users[0])).map((group) => group.name).sort()).toEqual(['editors', 'staff']);
    });
  });

  it('answers 503 while the provider is down, and asks it again once it is back', async () => {
    const flaky = await startProvider();
    const port = Number(new URL(flaky.issuer).port);
    await flaky.close();
    await boot([OidcBackend.configure(demo({ issuer: `http://127.0.0.1:${port}` }))]);
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      const agent = request.agent(server);
      const csrfmiddlewaretoken = await csrfTokenOf(agent);
      const response = await agent.post('/oidc/authenticate').type('form').set('Accept', HTML).send({ csrfmiddlewaretoken, provider: 'demo' }).expect(503);
      expect(response.headers['retry-after']).toBe('30');
    } finally {
      errors.mockRestore();
    }
    const back = await startProvider({ port });
    try {
      const agent = request.agent(server);
      const url = await start(agent);
      expect(url.origin).toBe(back.issuer);
      // And while it is down in the middle of a login (the code cannot be exchanged): 503 again, nobody logged in.
      const callback = await signInAtProvider(url.href, 'gwen@idp.example', 'moonlight');
      await back.close();
      const silenced = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        await deliver(agent, callback).expect(503);
      } finally {
        silenced.mockRestore();
      }
      expect((await whoami(agent)).isAuthenticated).toBe(false);
    } finally {
      await back.close().catch(() => undefined);
    }
  });

  it('logs out here and at the provider (RP-initiated logout) by POST with the CSRF token, the ID token in no URL nor session', async () => {
    await boot([OidcBackend.configure(demo())]);
    const agent = request.agent(server);
    await logIn(agent);
    const [row] = await t!.app.get(DataSource).getRepository(SessionRecord).findBy({ revoked: false });
    expect(row.data).toContain('_oidc_login');
    expect(row.data).not.toMatch(JWT);
    await agent.post('/oidc/logout').send({}).expect(403);
    const response = await agent.post('/oidc/logout').set('x-csrf-token', await csrfTokenOf(agent)).expect(302);
    const url = new URL(response.headers.location);
    expect(url.origin + url.pathname).toBe(`${idp.issuer}/session/end`);
    expect(Object.fromEntries(url.searchParams)).toEqual({ client_id: 'app', post_logout_redirect_uri: AFTER_LOGOUT });
    expect(url.href).not.toMatch(JWT);
    expect((await whoami(agent)).isAuthenticated).toBe(false);
    // The provider takes the request (its "log out?" page).
    expect((await fetch(url)).status).toBe(200);
  });

  it('with logoutIdTokenHint, logs out at the provider with a form that POSTs the ID token: never in a URL', async () => {
    const posting = await startProvider({ httpPost: true });
    try {
      await boot([OidcBackend.configure(demo({ issuer: posting.issuer, logoutIdTokenHint: true }))]);
      const agent = request.agent(server);
      expect((await logIn(agent)).status).toBe(302);
      const response = await agent.post('/oidc/logout').set('x-csrf-token', await csrfTokenOf(agent)).set('Accept', HTML).expect(200);
      expect((await whoami(agent)).isAuthenticated).toBe(false);
      expect(response.headers.location).toBeUndefined();
      expect(response.headers['cache-control']).toContain('no-store');
      const form = /<form id="end-session" method="post" action="([^"]+)">([\s\S]*?)<\/form>/.exec(response.text)!;
      const action = form[1].replaceAll('&amp;', '&');
      expect(action).toBe(`${posting.issuer}/session/end`);
      const fields = Object.fromEntries([...form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((match) => [match[1], match[2]]));
      expect(fields).toEqual({ client_id: 'app', id_token_hint: expect.stringMatching(JWT), post_logout_redirect_uri: AFTER_LOGOUT });
      // Sent by its own script where scripts run; the page's policy allows that script and nothing else.
      const script = /<script>([^<]*)<\/script>/.exec(response.text)![1];
      expect(response.headers['content-security-policy']).toContain(`script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'`);
      // The browser posts it and the provider takes it (its "log out?" page); a made-up hint it refuses.
      const atProvider = await fetch(action, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
      expect(atProvider.status).toBe(200);
      const forged = await fetch(action, { method: 'POST', body: new URLSearchParams({ ...fields, id_token_hint: 'ey.ey.x' }), redirect: 'manual' });
      expect(forged.status).toBe(400);
    } finally {
      await posting.close();
    }
  });

  it('logs out to logoutRedirectUrl when the provider has no end-session endpoint', async () => {
    const plain = await startProvider({ rpInitiatedLogout: false });
    try {
      await boot([OidcBackend.configure(demo({ issuer: plain.issuer }))], { logoutRedirectUrl: '/bye' });
      const agent = request.agent(server);
      expect((await logIn(agent)).status).toBe(302);
      const token = await csrfTokenOf(agent);
      const response = await agent.post('/oidc/logout').set('x-csrf-token', token).expect(302);
      expect(response.headers.location).toBe('/bye');
      expect((await whoami(agent)).isAuthenticated).toBe(false);
    } finally {
      await plain.close();
    }
  });

  it('offers a button per provider on the built-in login page, a form with the CSRF token that starts the login', async () => {
    const second = await startProvider({ redirectUris: [callbackOf('second')] });
    try {
      await boot([
        OidcBackend.configure(demo()),
        OidcBackend.configure(demo({ name: 'second', label: 'Second <IdP>', issuer: second.issuer })),
        ModelBackend,
      ]);
      const agent = request.agent(server);
      const page = await agent.get('/accounts/login?next=%2Fme').set('Accept', HTML).expect(200);
      const forms = [...page.text.matchAll(/<form class="provider" method="post" action="([^"]+)">([\s\S]*?)<\/form>/g)];
      expect(forms.map((form) => form[1])).toEqual(['/oidc/authenticate', '/oidc/authenticate']);
      expect(forms[1][2]).toContain('<button type="submit">Log in with Second &lt;IdP&gt;</button>');
      const fields = Object.fromEntries([...forms[1][2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((match) => [match[1], match[2]]));
      expect(fields).toEqual({ csrfmiddlewaretoken: expect.stringMatching(/^[0-9a-f]{64}$/), provider: 'second', next: '/me' });
      const started = await agent.post('/oidc/authenticate').type('form').send(fields).expect(303);
      expect(new URL(started.headers.location).origin).toBe(second.issuer);
      const callback = await signInAtProvider(started.headers.location, 'gwen@idp.example', 'moonlight', callbackOf('second'));
      expect((await deliver(agent, callback).expect(302)).headers.location).toBe('/me');
      await agent.post('/oidc/authenticate').type('form').send({ ...fields, csrfmiddlewaretoken: await csrfTokenOf(agent), provider: 'nope' }).expect(404);
    } finally {
      await second.close();
    }
  });

  it('tells where callbacks go now when a provider still sends the browser to the shared /oidc/callback', async () => {
    await boot([OidcBackend.configure(demo())]);
    const response = await request(server).get('/oidc/callback?code=x&state=y').set('Accept', 'application/json').expect(404);
    expect(response.body.message).toMatch(/\/oidc\/callback\/\{provider name\}/);
  });
});

/**
 * Two instances of the app on one PostgreSQL database, and the same person's first login
 * finishing on both at once: one local user, one link, no 5xx.
 */
describeIf(postgresUrl())('OidcBackend on PostgreSQL with two app instances', () => {
  const url = postgresUrl()!;
  const schema = uniqueName('oidc_race');
  let idp: DemoProvider;
  const apps: TestApp[] = [];

  async function admin(sql: string) {
    const ds = await new DataSource({ type: 'postgres', url }).initialize();
    try {
      await ds.query(sql);
    } finally {
      await ds.destroy();
    }
  }

  beforeAll(async () => {
    await admin(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    idp = await startProvider({
      accounts: [
        account(),
        account({ sub: 'ivy-3', email: 'ivy@idp.example', password: 'stardust' }),
        // A provider (or an account at it) whose claims carry NUL bytes, which PostgreSQL refuses in text.
        account({ sub: 'nul-5', email: 'nul\u0000@idp.example', password: 'nullity', givenName: 'Ni\u0000l', familyName: 'Byte', groups: ['staff', 'bad\u0000group'] }),
      ],
    });
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await idp?.close();
    await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });

  /** What a login waits for before its user is saved; the race test holds both logins there. */
  let beforeSave: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const options: OidcBackendOptions = {
      name: 'demo',
      issuer: idp.issuer,
      clientId: 'app',
      clientSecret: 'app-secret',
      scopes: ['openid', 'email', 'profile', 'groups'],
      groupsClaim: 'groups',
      mirrorGroups: true,
      allowInsecureRequests: true,
    };
    class SlowDemo extends OidcBackend.configure(options) {
      protected override async populateUser(): Promise<void> {
        await beforeSave();
      }
    }
    for (let i = 0; i < 2; i++) {
      apps.push(
        await createTestApp({
          database: { type: 'postgres', url, schema, ...(i === 0 ? { dropSchema: true } : { synchronize: false }) },
          auth: { backends: [SlowDemo], views: true, siteUrl: SITE, loginRedirectUrl: '/whoami' },
          imports: [OidcModule],
        }),
      );
    }
  });

  it('makes one user for one person whose first logins finish on both instances at once', async () => {
    beforeSave = barrier(2);
    const browsers = apps.map((app) => request.agent(app.app.getHttpServer()));
    const callbacks: URL[] = [];
    for (const browser of browsers) {
      const csrfmiddlewaretoken = await csrfTokenOf(browser);
      const started = await browser.post('/oidc/authenticate').type('form').send({ csrfmiddlewaretoken, provider: 'demo' }).expect(303);
      callbacks.push(await signInAtProvider(started.headers.location, 'gwen@idp.example', 'moonlight'));
    }
    const responses = await Promise.all(browsers.map((browser, i) => deliver(browser, callbacks[i])));
    expect(responses.map((response) => response.status)).toEqual([302, 302]);
    beforeSave = async () => undefined;
    const users = (await apps[0].users.repository.find()).filter((user) => user.username.startsWith('gwen'));
    expect(users.map((user) => user.username)).toEqual(['gwen@idp.example']);
    for (const browser of browsers) expect((await browser.get('/whoami').expect(200)).body).toEqual({ username: 'gwen@idp.example', isAuthenticated: true });
    const links = await apps[0].app.get(DataSource).getRepository(ExternalIdentity).find();
    expect(links).toEqual([expect.objectContaining({ source: 'demo', subject: 'gwen-1', userId: String(users[0].id) })]);
  });

  it('logs in a person whose claims carry NUL bytes, leaving out what PostgreSQL cannot store (no 500)', async () => {
    const app = apps[0];
    const browser = request.agent(app.app.getHttpServer());
    const csrfmiddlewaretoken = await csrfTokenOf(browser);
    const started = await browser.post('/oidc/authenticate').type('form').send({ csrfmiddlewaretoken, provider: 'demo' }).expect(303);
    const callback = await signInAtProvider(started.headers.location, 'nul-5', 'nullity');
    expect((await deliver(browser, callback)).status).toBe(302);
    const user = (await app.users.repository.findOneBy({ lastName: 'Byte' } as any)) as any;
    expect(user).toEqual(expect.objectContaining({ username: 'nul-5', email: '', firstName: '' }));
    expect((await app.app.get(PermissionManager).userGroups(user)).map((group) => group.name)).toEqual(['staff']);
  });
});

/** Resolves for everyone once `count` callers are waiting (or after two seconds, so a lone caller never hangs). */
function barrier(count: number): () => Promise<void> {
  let waiting = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return () => {
    if (++waiting === count) release();
    return Promise.race([all, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
  };
}
