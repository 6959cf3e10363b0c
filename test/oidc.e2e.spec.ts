import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthEvents, ModelBackend, PermissionManager, SessionRecord, type AuthModuleOptions } from 'nestjs-session-auth';
import { OidcBackend, OidcIdentity, OidcModule, oidcEntities, type OidcBackendOptions } from 'nestjs-session-auth/oidc';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { DemoProvider, type DemoAccount } from '../sample-app/src/oidc/demo-provider.js';
import { signInAtProvider as signInAt } from './support/oidc.js';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';

const signInAtProvider = (url: string, login: string, password: string) => signInAt(url, login, password, CALLBACK);

/**
 * OidcBackend against a real OpenID Connect provider: `oidc-provider` in this process on a
 * loopback port with real keys, the whole redirect dance driven over HTTP (the provider's own
 * login page included), after mozilla-django-oidc's tests.
 */

type Agent = ReturnType<typeof request.agent>;

const CALLBACK = 'http://app.test/oidc/callback';
const AFTER_LOGOUT = 'http://app.test/goodbye';
const HTML = 'text/html,application/xhtml+xml';

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
    redirectUri: CALLBACK,
    postLogoutRedirectUri: AFTER_LOGOUT,
    scopes: ['openid', 'email', 'profile', 'groups'],
    allowInsecureRequests: true,
    ...extra,
  });

  async function boot(backends: AuthModuleOptions['backends'], auth: Partial<AuthModuleOptions> = {}): Promise<void> {
    t = await createTestApp({
      auth: { backends, views: true, loginRedirectUrl: '/whoami', throttle: { addressBurst: 100 }, ...auth },
      imports: [OidcModule],
      entities: oidcEntities,
    });
    server = t.app.getHttpServer();
  }

  /** Start a login at the app; resolves the provider's authorization URL. */
  async function start(agent: Agent, query = 'provider=demo'): Promise<URL> {
    const response = await agent.get(`/oidc/authenticate?${query}`).set('Accept', HTML).expect(302);
    return new URL(response.headers.location);
  }

  /** The whole dance: the app, the provider's login page, back to the app's callback. */
  async function logIn(agent: Agent, login = 'gwen@idp.example', password = 'moonlight', query = 'provider=demo&next=%2Fme') {
    const callback = await signInAtProvider((await start(agent, query)).href, login, password);
    return agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML);
  }

  const whoami = async (agent: Agent) => (await agent.get('/whoami').expect(200)).body;

  it('sends the browser to the provider with PKCE, state and nonce, and keeps them in the session', async () => {
    await boot([OidcBackend.configure(demo()), ModelBackend]);
    const url = await start(request.agent(server));
    expect(url.origin + url.pathname).toBe(`${idp.issuer}/auth`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: 'app',
      redirect_uri: CALLBACK,
      response_type: 'code',
      code_challenge_method: 'S256',
      scope: 'openid email profile groups',
    });
    for (const param of ['state', 'nonce', 'code_challenge']) expect(url.searchParams.get(param)).toMatch(/^[\w-]{20,}$/);
  });

  it('creates the local user at the first login, links it by subject, and logs in through login() (new session id)', async () => {
    await boot([OidcBackend.configure(demo()), ModelBackend]);
    const agent = request.agent(server);
    const started = await agent.get('/oidc/authenticate?provider=demo').set('Accept', HTML).expect(302);
    const before = sessionCookie(started.headers['set-cookie']);
    const callback = await signInAtProvider(started.headers.location, 'gwen@idp.example', 'moonlight');
    const done = await agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML).expect(302);
    expect(done.headers.location).toBe('/whoami');
    const after = sessionCookie(done.headers['set-cookie']);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(await whoami(agent)).toEqual({ username: 'gwen@idp.example', isAuthenticated: true });
    expect((await agent.get('/me').expect(200)).body).toEqual({ username: 'gwen@idp.example', backend: 'demo' });
    const user = (await t!.users.findByUsername('gwen@idp.example'))!;
    expect(user).toMatchObject({ email: 'gwen@idp.example', firstName: 'Gwen', lastName: 'Stacy' });
    expect(isPasswordUsable(user.password)).toBe(false);
    expect(await t!.app.get(DataSource).getRepository(OidcIdentity).findBy({})).toEqual([
      expect.objectContaining({ provider: 'demo', subject: 'gwen-1', userId: String(user.id) }),
    ]);
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
    const links = await t!.app.get(DataSource).getRepository(OidcIdentity).findBy({});
    expect(links).toEqual([expect.objectContaining({ subject: 'gwen-1', userId: String(users[0].id) })]);
  });

  it('goes to a safe next after login, never to another site', async () => {
    await boot([OidcBackend.configure(demo())]);
    expect((await logIn(request.agent(server), undefined, undefined, 'provider=demo&next=%2Fme')).headers.location).toBe('/me');
    expect((await logIn(request.agent(server), undefined, undefined, 'provider=demo&next=https%3A%2F%2Fevil.example%2F')).headers.location).toBe('/whoami');
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
    const response = await agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML);
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

  describe('from the attacker’s side', () => {
    it('refuses a forged state and a replayed callback, logging nobody in', async () => {
      await boot([OidcBackend.configure(demo())]);
      const agent = request.agent(server);
      const callback = await signInAtProvider((await start(agent)).href, 'gwen@idp.example', 'moonlight');
      const forged = new URLSearchParams(callback.search);
      forged.set('state', 'forged-state-value-of-the-right-length');
      await agent.get(`/oidc/callback?${forged}`).set('Accept', HTML).expect(400);
      await agent.get('/oidc/callback').set('Accept', HTML).expect(400);
      expect((await whoami(agent)).isAuthenticated).toBe(false);
      await agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML).expect(302);
      // The same callback again (a replay, or a leaked URL): its state was used up.
      const replay = await agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML).expect(400);
      expect(replay.body.message).toMatch(/does not match one started here/);
    });

    it('refuses an attacker’s callback in the victim’s browser (login CSRF): the state is not the victim’s', async () => {
      await boot([OidcBackend.configure(demo())]);
      const attacker = request.agent(server);
      const callback = await signInAtProvider((await start(attacker)).href, 'gwen@idp.example', 'moonlight');
      const victim = request.agent(server);
      await start(victim);
      await victim.get(`/oidc/callback${callback.search}`).set('Accept', HTML).expect(400);
      expect((await whoami(victim)).isAuthenticated).toBe(false);
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
        await agent.get(`/oidc/callback?${mixed}`).set('Accept', HTML).expect(400);
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
        await agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML).expect(400);
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
          await victim.get(`/oidc/callback?${forged}`).set('Accept', HTML).expect(400);
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
          const response = await agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML).expect(400);
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
      const response = await agent.get(`/oidc/callback?error=access_denied&state=${state}`).set('Accept', HTML).expect(403);
      expect(response.body.message).toBe('the demo provider did not log you in (access_denied).');
      expect((await whoami(agent)).isAuthenticated).toBe(false);
    });
  });

  it('answers 503 while the provider is down, and asks it again once it is back', async () => {
    const flaky = await startProvider();
    const port = Number(new URL(flaky.issuer).port);
    await flaky.close();
    await boot([OidcBackend.configure(demo({ issuer: `http://127.0.0.1:${port}` }))]);
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      const response = await request(server).get('/oidc/authenticate?provider=demo').set('Accept', HTML).expect(503);
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
        await agent.get(`/oidc/callback${callback.search}`).set('Accept', HTML).expect(503);
      } finally {
        silenced.mockRestore();
      }
      expect((await whoami(agent)).isAuthenticated).toBe(false);
    } finally {
      await back.close().catch(() => undefined);
    }
  });

  it('logs out here and at the provider (RP-initiated logout), by POST with the CSRF token', async () => {
    await boot([OidcBackend.configure(demo())]);
    const agent = request.agent(server);
    await logIn(agent);
    const { body } = await agent.get('/accounts/login').set('Accept', 'application/json').expect(200);
    await agent.post('/oidc/logout').send({}).expect(403);
    const response = await agent.post('/oidc/logout').set('x-csrf-token', body.csrfToken).expect(302);
    const url = new URL(response.headers.location);
    expect(url.origin + url.pathname).toBe(`${idp.issuer}/session/end`);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(AFTER_LOGOUT);
    expect(url.searchParams.get('id_token_hint')).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await whoami(agent)).isAuthenticated).toBe(false);
    // The provider takes the request (its "log out?" page).
    expect((await fetch(url)).status).toBe(200);
  });

  it('offers a button per provider on the built-in login page, and no provider by an unknown name', async () => {
    const second = await startProvider();
    try {
      await boot([
        OidcBackend.configure(demo()),
        OidcBackend.configure(demo({ name: 'second', label: 'Second <IdP>', issuer: second.issuer })),
        ModelBackend,
      ]);
      const page = await request(server).get('/accounts/login?next=%2Fme').set('Accept', HTML).expect(200);
      expect(page.text).toContain('<a class="provider" href="/oidc/authenticate?provider=demo&amp;next=%2Fme">Log in with the demo provider</a>');
      expect(page.text).toContain('<a class="provider" href="/oidc/authenticate?provider=second&amp;next=%2Fme">Log in with Second &lt;IdP&gt;</a>');
      const url = await start(request.agent(server), 'provider=second');
      expect(url.origin).toBe(second.issuer);
      await request(server).get('/oidc/authenticate?provider=nope').set('Accept', HTML).expect(404);
    } finally {
      await second.close();
    }
  });
});
