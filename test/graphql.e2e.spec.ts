import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import { UnauthorizedException } from '@nestjs/common';
import { Args, Context, Field, GraphQLModule, Mutation, ObjectType, Query, ResolveField, Resolver, Subscription } from '@nestjs/graphql';
import { createClient } from 'graphql-ws';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import type { Request } from 'express';
import request from 'supertest';
import { DataSource } from 'typeorm';
import {
  AuthService,
  CurrentUser,
  LoginRequired,
  PermissionManager,
  PermissionRequired,
  SessionRecord,
  UserPassesTest,
} from 'nestjs-session-auth';
import { createTestApp, logIn, sessionCookie, type TestApp } from './support/test-app.js';

@ObjectType()
class Account {
  @Field()
  username!: string;

  @Field()
  authenticated!: boolean;
}

@ObjectType()
class Report {
  @Field()
  title!: string;
}

const account = (user: any): Account => ({ username: user.username ?? '', authenticated: user.isAuthenticated === true });

@Resolver(() => Report)
class ReportsResolver {
  constructor(private readonly auth: AuthService) {}

  @Query(() => Account)
  whoami(@CurrentUser() user: any): Account {
    return account(user);
  }

  @LoginRequired()
  @Query(() => Account)
  me(@CurrentUser() user: any): Account {
    return account(user);
  }

  @LoginRequired()
  @Query(() => Report)
  report(): Report {
    return { title: 'Quarterly figures' };
  }

  /** A field only some users may read: the rest of the report still comes back. */
  @PermissionRequired('reports.view_figures')
  @ResolveField(() => String)
  figures(): string {
    return '42';
  }

  @UserPassesTest((user: any) => user.username === 'carol')
  @Query(() => String)
  carolsCorner(): string {
    return 'hello, carol';
  }

  @Mutation(() => Account)
  async login(@Context('req') req: Request, @Args('username') username: string, @Args('password') password: string): Promise<Account> {
    const user = await this.auth.authenticate(req, { username, password });
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(req, user);
    return account(user);
  }

  @Mutation(() => Boolean)
  async logout(@Context('req') req: Request): Promise<boolean> {
    await this.auth.logout(req);
    return true;
  }

  /** Over a WebSocket (graphql-ws): judged by the session of the connection's handshake. */
  @LoginRequired()
  @Subscription(() => String, { resolve: (greeting: string) => greeting })
  greetings(@CurrentUser() user: any): AsyncIterableIterator<string> {
    return (async function* () {
      yield `hello, ${user.username}`;
    })();
  }
}

/** Nest's two GraphQL drivers, each on the platform it runs on (Mercurius is a Fastify plugin). */
const DRIVERS = [
  {
    driver: 'Apollo',
    platform: 'express' as const,
    module: (options: Partial<ApolloDriverConfig> = {}) =>
      GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true, ...options }),
  },
  {
    driver: 'Mercurius',
    platform: 'fastify' as const,
    module: (options: Partial<MercuriusDriverConfig> = {}) =>
      GraphQLModule.forRoot<MercuriusDriverConfig>({ driver: MercuriusDriver, autoSchemaFile: true, ...(options as object) }),
  },
];

describe.each(DRIVERS)('GraphQL ($driver driver on $platform): the session and user of the HTTP request that carries the operation', ({ platform, module }) => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    t = await createTestApp({
      platform,
      // Guards (the module's included) run on field resolvers only when asked to.
      imports: [module({ fieldResolverEnhancers: ['guards'] })],
      providers: [ReportsResolver],
    });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    await t.users.createUser({ username: 'dave', password: 'battery staple' });
  });
  afterEach(() => t.close());

  function graphql(query: string, cookie?: string) {
    const call = request(server).post('/graphql').set('Content-Type', 'application/json').send({ query });
    return cookie ? call.set('Cookie', cookie) : call;
  }

  async function login(username: string, password: string): Promise<string> {
    const response = await graphql(`mutation { login(username: "${username}", password: "${password}") { username authenticated } }`).expect(200);
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data.login).toEqual({ username, authenticated: true });
    const cookie = sessionCookie(response.headers['set-cookie']);
    expect(cookie).toBeDefined();
    return cookie!;
  }

  it('answers a query with the anonymous user without a cookie, and with the logged-in user with one', async () => {
    const anonymous = await graphql('{ whoami { username authenticated } }').expect(200);
    expect(anonymous.body).toEqual({ data: { whoami: { username: '', authenticated: false } } });
    expect(anonymous.headers['set-cookie']).toBeUndefined();
    const cookie = await login('carol', 'correct horse');
    const known = await graphql('{ whoami { username authenticated } }', cookie).expect(200);
    expect(known.body).toEqual({ data: { whoami: { username: 'carol', authenticated: true } } });
  });

  it('refuses a @LoginRequired() query without a session with an UNAUTHENTICATED error, never a redirect', async () => {
    for (const accept of ['application/json', 'text/html,application/json']) {
      const response = await graphql('{ me { username } }').set('Accept', accept);
      expect(response.status).not.toBe(302);
      expect(response.headers.location).toBeUndefined();
      expect(response.body.data).toBeNull();
      expect(response.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
  });

  it('refuses a forged session cookie as it refuses none', async () => {
    const forged = 'sessionid=s%3Aforged-session-id.bm90LWEtc2lnbmF0dXJl';
    const response = await graphql('{ me { username } }', forged).expect(200);
    expect(response.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('logs in with a mutation (session cookie set and rotated), serves @LoginRequired() queries, and logs out with one', async () => {
    const visit = await request(server).post('/session/cart/7').expect(200);
    const anonymousCookie = sessionCookie(visit.headers['set-cookie'])!;
    const response = await graphql('mutation { login(username: "carol", password: "correct horse") { username } }', anonymousCookie).expect(200);
    const cookie = sessionCookie(response.headers['set-cookie'])!;
    // Login rotates the session id (session fixation), keeping the data.
    expect(cookie).not.toBe(anonymousCookie);
    expect((await graphql('{ me { username } }', cookie).expect(200)).body).toEqual({ data: { me: { username: 'carol' } } });
    await request(server).get('/session/cart').set('Cookie', cookie).expect(200, { value: '7' });

    const out = await graphql('mutation { logout }', cookie).expect(200);
    expect(out.body).toEqual({ data: { logout: true } });
    expect(String(out.headers['set-cookie'])).toMatch(/^sessionid=;/);
    // The old cookie, replayed, is nobody.
    expect((await graphql('{ me { username } }', cookie)).body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(await t.app.get(DataSource).getRepository(SessionRecord).count({ where: { revoked: false } })).toBe(0);
  });

  it('cannot be made to log a visitor in from another site: the requests a page can send without a preflight change nothing', async () => {
    const mutation = 'mutation { login(username: "carol", password: "correct horse") { username } }';
    const attempts = [
      // A form or fetch() with a "simple" content type, the query in the body.
      request(server).post('/graphql').set('Content-Type', 'text/plain').send(JSON.stringify({ query: mutation })),
      request(server).post('/graphql').type('form').send({ query: mutation }),
      // A link or an <img>: the mutation in the URL.
      request(server).get('/graphql').query({ query: mutation }),
    ];
    for (const response of await Promise.all(attempts)) {
      expect(response.headers['set-cookie']).toBeUndefined();
      expect(response.body?.data?.login ?? null).toBeNull();
    }
    expect(await t.app.get(DataSource).getRepository(SessionRecord).count()).toBe(0);
  });

  it('answers a wrong password in the login mutation with an error and no session', async () => {
    const response = await graphql('mutation { login(username: "carol", password: "wrong") { username } }').expect(200);
    // The resolver's own error, as each driver reports it.
    expect(response.body.errors[0].message).toBe('Invalid username or password.');
    expect(response.headers['set-cookie']).toBeUndefined();
  });

  it('checks a permission on a field resolver: FORBIDDEN for that field, the rest of the answer kept', async () => {
    const cookie = await login('carol', 'correct horse');
    const denied = await graphql('{ report { title figures } }', cookie).expect(200);
    expect(denied.body.errors).toHaveLength(1);
    expect(denied.body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(denied.body.errors[0].path).toEqual(['report', 'figures']);

    const permissions = t.app.get(PermissionManager);
    await permissions.createPermission('reports.view_figures');
    await permissions.grantPermission((await t.users.findByUsername('carol'))!, 'reports.view_figures');
    const allowed = await graphql('{ report { title figures } }', cookie).expect(200);
    expect(allowed.body).toEqual({ data: { report: { title: 'Quarterly figures', figures: '42' } } });
  });

  it('runs @UserPassesTest() on a query: FORBIDDEN for another logged-in user', async () => {
    const dave = await login('dave', 'battery staple');
    expect((await graphql('{ carolsCorner }', dave)).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const carol = await login('carol', 'correct horse');
    expect((await graphql('{ carolsCorner }', carol)).body).toEqual({ data: { carolsCorner: 'hello, carol' } });
  });

  it('loads the user once per operation, however many resolvers ask', async () => {
    const cookie = await login('carol', 'correct horse');
    t.sql.reset();
    const response = await graphql('{ a: whoami { username } b: me { username } report { title } }', cookie).expect(200);
    expect(response.body.data).toEqual({ a: { username: 'carol' }, b: { username: 'carol' }, report: { title: 'Quarterly figures' } });
    expect(t.sql.reads).toHaveLength(1);
  });

  it('answers a login mutation refused by the address limit with an error carrying status 429, and Retry-After', async () => {
    const limited = await createTestApp({
      platform,
      imports: [module()],
      providers: [ReportsResolver],
      auth: { throttle: { addressRate: 0.001, addressBurst: 2 } },
    });
    try {
      const mutation = { query: 'mutation { login(username: "carol", password: "wrong") { username } }' };
      const send = () => request(limited.app.getHttpServer()).post('/graphql').set('Content-Type', 'application/json').send(mutation);
      for (let i = 0; i < 2; i++) expect((await send()).body.errors[0].message).toBe('Invalid username or password.');
      const refused = await send();
      expect(refused.body.errors[0].extensions).toMatchObject({ status: 429 });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(refused.headers['set-cookie']).toBeUndefined();
    } finally {
      await limited.close();
    }
  });
});

/** Each driver's subscriptions over graphql-ws; Mercurius hands its resolvers the handshake request as the app's context says. */
const SUBSCRIPTIONS = [
  { driver: 'Apollo', platform: 'express' as const, module: () => DRIVERS[0].module({ subscriptions: { 'graphql-ws': true } }) },
  {
    driver: 'Mercurius',
    platform: 'fastify' as const,
    module: () => DRIVERS[1].module({ subscription: { context: (_connection: unknown, request: unknown) => ({ req: request }) } } as object),
  },
];

describe.each(SUBSCRIPTIONS)('GraphQL subscriptions over a WebSocket ($driver): the session of the handshake', ({ platform, module }) => {
  let t: TestApp;
  let url: string;

  beforeEach(async () => {
    t = await createTestApp({
      platform,
      imports: [module()],
      providers: [ReportsResolver],
    });
    await t.app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}/graphql`;
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterEach(() => t.close());

  /** The first event of `{ greetings }`, or the errors the server answered instead. */
  async function subscribe(cookie?: string, origin?: string): Promise<{ data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> }> {
    const client = createClient({
      url,
      retryAttempts: 0,
      webSocketImpl: class extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols, { headers: { ...(cookie ? { cookie } : {}), ...(origin ? { origin } : {}) } });
        }
      },
    });
    try {
      return await new Promise((resolve, reject) => {
        client.subscribe(
          { query: 'subscription { greetings }' },
          { next: (result) => resolve(result as any), error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)), complete: () => undefined },
        );
      });
    } finally {
      await client.dispose();
    }
  }

  it('serves the logged-in user of the handshake cookie, and refuses a connection without one as UNAUTHENTICATED', async () => {
    const cookie = await logIn(t.app, 'carol', 'correct horse');
    expect(await subscribe(cookie)).toEqual({ data: { greetings: 'hello, carol' } });
    const refused = await subscribe();
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a subscription of a session that was logged out', async () => {
    const cookie = await logIn(t.app, 'carol', 'correct horse');
    await request(t.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
    expect((await subscribe(cookie)).errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('serves no session to a subscription opened from a page on another port of the same host (UNAUTHENTICATED), and serves the site’s own page', async () => {
    const cookie = await logIn(t.app, 'carol', 'correct horse');
    const own = new URL(url.replace('ws:', 'http:')).origin;
    const other = `http://127.0.0.1:${Number(new URL(own).port) + 1}`;
    const hijacked = await subscribe(cookie, other);
    expect(hijacked.data ?? null).toBeNull();
    expect(hijacked.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    expect(await subscribe(cookie, own)).toEqual({ data: { greetings: 'hello, carol' } });
  });
});
