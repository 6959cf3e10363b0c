import 'reflect-metadata';
import { Controller, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import session, { type Store } from 'express-session';
import { createClient } from 'redis';
import request from 'supertest';
import {
  AuthService,
  CurrentUser,
  ImproperlyConfigured,
  LoginRequired,
  ModelBackend,
  RedisSessionStore,
  type AuthModuleOptions,
  type User,
} from 'nestjs-session-auth';
import { describeEach, redisUrl, uniqueName } from './support/services.js';
import { createTestApp, PagesController, sessionCookie, TEST_SECRET, type TestApp } from './support/test-app.js';

/**
 * A user's sessions, listed and ended one by one or all but the current one (`getUserSessions`,
 * `endUserSession`, `logoutOtherSessions`, and the built-in "Log out my other devices" button),
 * on the module's TypeORM store and on RedisSessionStore.
 */

@Controller('sessions')
class SessionsController {
  constructor(private readonly auth: AuthService) {}

  @Get()
  @LoginRequired()
  list(@CurrentUser() user: User, @Req() request: Request) {
    return this.auth.getUserSessions(user, request);
  }

  @Post(':key/end')
  @HttpCode(200)
  @LoginRequired()
  async end(@CurrentUser() user: User, @Req() request: Request, @Param('key') key: string) {
    return { ended: await this.auth.endUserSession(user, key, request) };
  }
}

const HTML = 'text/html,application/xhtml+xml';

interface StoreCase {
  name: string;
  available?: boolean;
  open(): Promise<{ store?: Store; close(): Promise<void> }>;
}

const redis = redisUrl();
const stores: StoreCase[] = [
  { name: 'TypeOrmSessionStore', open: async () => ({ close: async () => {} }) },
  {
    name: 'RedisSessionStore',
    available: !!redis,
    async open() {
      const client = await createClient({ url: redis }).connect();
      const prefix = `${uniqueName('nsa-test-sessions')}:`;
      return {
        store: new RedisSessionStore(client, { prefix }),
        async close() {
          for await (const keys of client.scanIterator({ MATCH: `${prefix}*` })) if (keys.length) await client.del(keys);
          await client.close();
        },
      };
    },
  },
];

describeEach(stores, ({ name }) => `a user’s sessions on ${name}`, (kind) => {
  let t: TestApp;
  let server: any;
  let closeStore: () => Promise<void>;
  let carol: User;

  async function boot(auth: Partial<AuthModuleOptions> = {}): Promise<void> {
    const opened = await kind.open();
    closeStore = opened.close;
    t = await createTestApp({
      auth: {
        backends: [ModelBackend],
        session: { secret: TEST_SECRET, ...(opened.store ? { store: opened.store } : {}) },
        throttle: { addressBurst: 100 },
        ...auth,
      },
      controllers: [PagesController, SessionsController],
    });
    server = t.app.getHttpServer();
    carol = await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
    await t.users.createUser({ username: 'dave', password: 'correct horse', email: 'dave@example.com' });
  }

  afterEach(async () => {
    await t?.close();
    await closeStore?.();
  });

  async function device(userAgent: string, username = 'carol') {
    const agent = request.agent(server).set('User-Agent', userAgent);
    const login = await agent.post('/login').send({ username, password: 'correct horse' }).expect(200);
    return { agent, cookie: sessionCookie(login.headers['set-cookie'])! };
  }

  const loggedIn = async (agent: ReturnType<typeof request.agent>) => (await agent.get('/whoami').expect(200)).body.isAuthenticated;

  it('lists each session with when and from where it logged in, marking the asking one, and never its id', async () => {
    await boot();
    const before = Date.now();
    const laptop = await device('Laptop/1.0');
    const phone = await device('Phone/2.0');
    await device('Other/3.0', 'dave');
    const { body } = await laptop.agent.get('/sessions').expect(200);
    expect(body).toHaveLength(2);
    const byAgent = Object.fromEntries(body.map((entry: any) => [entry.userAgent, entry]));
    expect(Object.keys(byAgent).sort()).toEqual(['Laptop/1.0', 'Phone/2.0']);
    expect(byAgent['Laptop/1.0'].current).toBe(true);
    expect(byAgent['Phone/2.0'].current).toBe(false);
    for (const entry of body) {
      expect(entry.address).toMatch(/127\.0\.0\.1/);
      expect(new Date(entry.loggedInAt).getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(new Date(entry.lastActiveAt).getTime()).toBeLessThanOrEqual(Date.now());
      expect(new Date(entry.expiresAt).getTime()).toBeGreaterThan(Date.now() + 13 * 24 * 3600 * 1000);
      expect(typeof entry.key).toBe('string');
    }
    // The key names a session without giving it away: no cookie value contains it.
    const ids = [laptop.cookie, phone.cookie].map((cookie) => decodeURIComponent(cookie.split('=')[1]).slice(2).split('.')[0]);
    for (const entry of body) expect(ids).not.toContain(entry.key);
    expect((await phone.agent.get('/sessions').expect(200)).body.find((entry: any) => entry.current).userAgent).toBe('Phone/2.0');
  });

  it('ends one other session by its key, leaving the asking one logged in', async () => {
    await boot();
    const laptop = await device('Laptop/1.0');
    const phone = await device('Phone/2.0');
    const { body } = await laptop.agent.get('/sessions').expect(200);
    const phoneKey = body.find((entry: any) => entry.userAgent === 'Phone/2.0').key;
    expect((await laptop.agent.post(`/sessions/${phoneKey}/end`).expect(200)).body).toEqual({ ended: true });
    expect(await loggedIn(phone.agent)).toBe(false);
    expect(await loggedIn(laptop.agent)).toBe(true);
    // The phone's old cookie, replayed, is still nobody.
    const replay = await request(server).get('/whoami').set('Cookie', phone.cookie).expect(200);
    expect(replay.body.isAuthenticated).toBe(false);
    expect((await laptop.agent.get('/sessions').expect(200)).body).toHaveLength(1);
  });

  it('ends nothing for a key that is not one of the user’s sessions, another user’s included', async () => {
    await boot();
    const laptop = await device('Laptop/1.0');
    const daves = await device('Other/3.0', 'dave');
    const daveKey = (await daves.agent.get('/sessions').expect(200)).body[0].key;
    for (const key of [daveKey, 'not-a-key', 'A'.repeat(32)]) {
      expect((await laptop.agent.post(`/sessions/${encodeURIComponent(key)}/end`).expect(200)).body).toEqual({ ended: false });
    }
    expect(await loggedIn(daves.agent)).toBe(true);
    expect(await loggedIn(laptop.agent)).toBe(true);
  });

  it('logs the request out when it ends its own session', async () => {
    await boot();
    const laptop = await device('Laptop/1.0');
    const own = (await laptop.agent.get('/sessions').expect(200)).body[0].key;
    expect((await laptop.agent.post(`/sessions/${own}/end`).expect(200)).body).toEqual({ ended: true });
    expect(await loggedIn(laptop.agent)).toBe(false);
    const replay = await request(server).get('/whoami').set('Cookie', laptop.cookie).expect(200);
    expect(replay.body.isAuthenticated).toBe(false);
  });

  it('logs out every other device from the password change page’s button, by POST with the CSRF token', async () => {
    await boot({ views: true });
    const laptop = await device('Laptop/1.0');
    const phone = await device('Phone/2.0');
    const tablet = await device('Tablet/3.0');
    const daves = await device('Other/3.0', 'dave');
    const page = await laptop.agent.get('/accounts/password_change').set('Accept', HTML).expect(200);
    expect(page.text).toContain('action="/accounts/sessions/logout_others"');
    const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];

    await laptop.agent.post('/accounts/sessions/logout_others').set('Accept', HTML).type('form').send({}).expect(403);
    expect(await loggedIn(phone.agent)).toBe(true);

    const done = await laptop.agent
      .post('/accounts/sessions/logout_others')
      .set('Accept', HTML)
      .type('form')
      .send({ csrfmiddlewaretoken: token })
      .expect(200);
    expect(done.text).toContain('2 other sessions were logged out');
    expect(await loggedIn(phone.agent)).toBe(false);
    expect(await loggedIn(tablet.agent)).toBe(false);
    expect(await loggedIn(laptop.agent)).toBe(true);
    expect(await loggedIn(daves.agent)).toBe(true);
    const json = await laptop.agent
      .post('/accounts/sessions/logout_others')
      .set('Accept', 'application/json')
      .send({ csrfmiddlewaretoken: token })
      .expect(200);
    expect(json.body).toEqual({ loggedOut: 0 });
  });

  it('sends anonymous visitors of the button to log in', async () => {
    await boot({ views: true });
    const response = await request(server).post('/accounts/sessions/logout_others').set('Accept', HTML).type('form').send({}).expect(302);
    expect(response.headers.location).toBe('/accounts/login?next=%2Faccounts%2Fsessions%2Flogout_others');
  });

  it('lists nothing for a user without sessions, and ends none', async () => {
    await boot();
    expect(await t.auth.getUserSessions(carol)).toEqual([]);
    expect(await t.auth.endUserSession(carol, 'anything')).toBe(false);
  });
});

describe('a store that cannot list sessions', () => {
  it('says so instead of listing nothing', async () => {
    const t = await createTestApp({ auth: { backends: [ModelBackend], session: { secret: TEST_SECRET, store: new session.MemoryStore() } } });
    try {
      const carol = await t.users.createUser({ username: 'carol', password: 'correct horse' });
      await expect(t.auth.getUserSessions(carol)).rejects.toThrow(ImproperlyConfigured);
    } finally {
      await t.close();
    }
  });
});
