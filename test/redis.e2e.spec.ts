import { RedisStore } from 'connect-redis';
import session, { type Store } from 'express-session';
import { createClient } from 'redis';
import request from 'supertest';
import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ModelBackend, RedisSessionStore } from 'nestjs-session-auth';
import { describeEach, describeIf, redisUrl, uniqueName } from './support/services.js';
import { createTestApp, DictionaryBackend, sessionCookie, TEST_SECRET, type TestApp } from './support/test-app.js';

/**
 * Sessions in a store the app passes as `session.store`: connect-redis
 * on the machine's Redis when TEST_REDIS_URL is set, and always express-session's MemoryStore.
 * The module's TypeORM session table is not used for them.
 */
function connectRedis(url: string) {
  return createClient({ url }).connect();
}
type RedisClient = Awaited<ReturnType<typeof connectRedis>>;

interface StoreUnderTest {
  name: string;
  available?: boolean;
  open(): Promise<Store>;
  /** Whatever the store holds under `sid`, read around the store where possible. */
  exists(sid: string): Promise<boolean>;
  close(): Promise<void>;
}

function memory(): StoreUnderTest {
  let store: session.MemoryStore;
  return {
    name: 'express-session MemoryStore',
    open: async () => (store = new session.MemoryStore()),
    exists: (sid) =>
      new Promise((resolve, reject) => store.get(sid, (error, data) => (error ? reject(error) : resolve(!!data)))),
    close: async () => {},
  };
}

function redis(url: string): StoreUnderTest {
  const prefix = `${uniqueName('nsa-test')}:`;
  let client: RedisClient | undefined;
  return {
    name: 'Redis through connect-redis',
    async open() {
      client ??= await connectRedis(url);
      return new RedisStore({ client, prefix });
    },
    exists: async (sid) => (await client!.exists(prefix + sid)) === 1,
    async close() {
      if (!client) return;
      await deleteKeys(client, prefix);
      await client.close();
    },
  };
}

function revokeAwareRedis(url: string): StoreUnderTest {
  const prefix = `${uniqueName('nsa-test-revoke')}:`;
  let client: RedisClient | undefined;
  return {
    name: 'Redis through RedisSessionStore',
    async open() {
      client ??= await connectRedis(url);
      return new RedisSessionStore(client, { prefix });
    },
    // A revoked session's key holds the revocation until it expires: live means a session.
    exists: async (sid) => {
      const value = await client!.get(prefix + sid);
      return !!value && !value.includes('"revoked":true');
    },
    async close() {
      if (!client) return;
      await deleteKeys(client, prefix);
      await client.close();
    },
  };
}

async function keysUnder(client: RedisClient, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) keys.push(...batch);
  return keys;
}

async function deleteKeys(client: RedisClient, prefix: string): Promise<void> {
  const keys = await keysUnder(client, prefix);
  if (keys.length) await client.del(keys);
}

/** The session id inside a signed `sessionid=s%3A<id>.<signature>` cookie. */
function sidOf(cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  expect(value.startsWith('s:')).toBe(true);
  return value.slice(2, value.lastIndexOf('.'));
}

const url = redisUrl();
const stores: StoreUnderTest[] = [
  memory(),
  { ...redis(url ?? ''), available: Boolean(url) },
  { ...revokeAwareRedis(url ?? ''), available: Boolean(url) },
];

describeEach(stores, ({ name }) => `sessions in ${name} (session.store)`, (kind) => {
  let t: TestApp;
  let store: Store;
  let server: any;

  beforeEach(async () => {
    store = await kind.open();
    t = await createTestApp({ auth: { backends: [ModelBackend, DictionaryBackend], session: { secret: TEST_SECRET, store } } });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterEach(() => t.close());
  afterAll(() => kind.close());

  async function loginCarol(): Promise<string> {
    const response = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    const cookie = sessionCookie(response.headers['set-cookie']);
    expect(cookie).toBeDefined();
    return cookie!;
  }

  it('logs in, knows the user on /me, logs out (deleting the stored session), and treats the replayed cookie as anonymous', async () => {
    const cookie = await loginCarol();
    const sid = sidOf(cookie);
    expect(await kind.exists(sid)).toBe(true);
    await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });

    await request(server).post('/logout').set('Cookie', cookie).expect(200);
    expect(await kind.exists(sid)).toBe(false);
    await request(server).get('/me').set('Cookie', cookie).expect(401);
    await request(server).get('/whoami').set('Cookie', cookie).expect(200, { username: '', isAuthenticated: false });
  });

  it('keeps sessions out of the TypeORM session table', async () => {
    t.sql.reset();
    const cookie = await loginCarol();
    await request(server).get('/me').set('Cookie', cookie).expect(200);
    expect(t.sql.statements.filter((sql) => /auth_session/.test(sql))).toEqual([]);
  });

  it('rotates the session id on login: the anonymous session is gone from the store', async () => {
    const visit = await request(server).post('/session/cart/3').expect(200);
    const anonymous = sessionCookie(visit.headers['set-cookie'])!;
    const login = await request(server)
      .post('/login')
      .set('Cookie', anonymous)
      .send({ username: 'carol', password: 'correct horse' })
      .expect(200);
    const cookie = sessionCookie(login.headers['set-cookie'])!;
    expect(sidOf(cookie)).not.toBe(sidOf(anonymous));
    expect(await kind.exists(sidOf(anonymous))).toBe(false);
    await request(server).get('/session/cart').set('Cookie', cookie).expect(200, { value: '3' });
  });

  it('while the store is disconnected, serves /me as anonymous and answers login with 503, losing nothing', async () => {
    const cookie = await loginCarol();
    store.emit('disconnect');
    try {
      await request(server).get('/me').set('Cookie', cookie).expect(401);
      await request(server).get('/whoami').set('Cookie', cookie).expect(200, { username: '', isAuthenticated: false });
      const login = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(503);
      expect(sessionCookie(login.headers['set-cookie'])).toBeUndefined();
      expect(await kind.exists(sidOf(cookie))).toBe(true);
    } finally {
      store.emit('connect');
    }
    await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
  });
});

{
  describeIf(url)('sessions in Redis when the Redis connection is gone', () => {
    const prefix = `${uniqueName('nsa-test-down')}:`;
    let client: RedisClient;
    let t: TestApp;

    beforeEach(async () => {
      client = await connectRedis(url!);
      const store = new RedisStore({ client, prefix });
      t = await createTestApp({ auth: { backends: [ModelBackend], session: { secret: TEST_SECRET, store } } });
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
    });
    afterEach(async () => {
      await t.close();
      if (client.isOpen) client.destroy();
      const cleaner = await connectRedis(url!);
      try {
        await deleteKeys(cleaner, prefix);
      } finally {
        await cleaner.close();
      }
    });

    it('fails closed: a logged-in cookie is never served as logged in, and login is a 5xx', async () => {
      const server = t.app.getHttpServer();
      const login = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
      const cookie = sessionCookie(login.headers['set-cookie'])!;
      client.destroy();

      const me = await request(server).get('/me').set('Cookie', cookie);
      expect(me.status).toBe(503);
      const again = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' });
      expect(again.status).toBeGreaterThanOrEqual(500);

      const check = await connectRedis(url!);
      try {
        expect(await check.exists(prefix + sidOf(cookie))).toBe(1); // nothing already stored is lost
      } finally {
        await check.close();
      }
    });
  });
}

/** A handler that loads the session, then waits for the test before it changes it. */
@Controller('slow')
class SlowController {
  static reached?: () => void;
  static gate: Promise<void> = Promise.resolve();
  @Post()
  @HttpCode(200)
  async write(@Req() request: any) {
    SlowController.reached?.();
    await SlowController.gate;
    request.session.lastSeen = 'still here';
    return {};
  }
}

{
  describeIf(url)('a logout holds on RedisSessionStore while a request of the same session is still running', () => {
    it('does not let the late request write the session back', async () => {
      const client = await connectRedis(url!);
      const prefix = `${uniqueName('nsa-test-race')}:`;
      const { PagesController } = await import('./support/test-app.js');
      const t = await createTestApp({
        auth: { backends: [ModelBackend], session: { secret: TEST_SECRET, store: new RedisSessionStore(client, { prefix }) } },
        controllers: [PagesController, SlowController],
      });
      try {
        const server = t.app.getHttpServer();
        await t.users.createUser({ username: 'carol', password: 'correct horse' });
        const login = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
        const cookie = sessionCookie(login.headers['set-cookie'])!;

        let release!: () => void;
        SlowController.gate = new Promise<void>((resolve) => (release = resolve));
        const reached = new Promise<void>((resolve) => (SlowController.reached = resolve));
        const late = request(server).post('/slow').set('Cookie', cookie).then((response) => response.status);
        await reached;
        await request(server).post('/logout').set('Cookie', cookie).expect(200);
        release();
        expect(await late).toBe(200);

        await request(server).get('/me').set('Cookie', cookie).expect(401);
        expect(await client.get(prefix + sidOf(cookie))).toBe('{"revoked":true}');
      } finally {
        await t.close();
        await deleteKeys(client, prefix);
        await client.close();
      }
    });

    it('reads the sessions connect-redis stored', async () => {
      const client = await connectRedis(url!);
      const prefix = `${uniqueName('nsa-test-compat')}:`;
      try {
        const before = await createTestApp({ auth: { backends: [ModelBackend], session: { secret: TEST_SECRET, store: new RedisStore({ client, prefix }) } } });
        await before.users.createUser({ username: 'carol', password: 'correct horse' });
        const login = await request(before.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
        const cookie = sessionCookie(login.headers['set-cookie'])!;
        const dataSource = before.app.get((await import('typeorm')).DataSource);
        const store = new RedisSessionStore(client, { prefix });
        const data = await new Promise<any>((resolve, reject) => store.get(sidOf(cookie), (error, value) => (error ? reject(error) : resolve(value))));
        expect(data._auth_user_backend).toBe('ModelBackend');
        expect(dataSource).toBeDefined();
        await before.close();
      } finally {
        await deleteKeys(client, prefix);
        await client.close();
      }
    });
  });
}
