import { jest } from '@jest/globals';
import { createHmac } from 'node:crypto';
import session from 'express-session';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ModelBackend, SessionRecord, TypeOrmSessionStore } from 'nestjs-session-auth';
import { SessionHandler } from './support/internals.js';
import { createTestApp, logIn, sessionCookie, TEST_SECRET, type TestApp } from './support/test-app.js';

function sign(id: string, secret: string): string {
  const mac = createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '');
  return `sessionid=${encodeURIComponent(`s:${id}.${mac}`)}`;
}

describe('attacks and bad input', () => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    t = await createTestApp();
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterEach(() => t.close());

  const loginCarol = () => logIn(t.app, 'carol', 'correct horse');

  async function sessionRows(): Promise<number> {
    return t.app.get(DataSource).getRepository(SessionRecord).count({ where: { revoked: false } });
  }

  describe('malformed credentials get a 4xx and change nothing', () => {
    it.each([
      ['an array username', { username: ['carol'], password: 'correct horse' }],
      ['an object password', { username: 'carol', password: { $ne: '' } }],
      ['a numeric password', { username: 'carol', password: 12345 }],
      ['a boolean password', { username: 'carol', password: true }],
      ['a NUL byte in the username', { username: 'carol\u0000', password: 'correct horse' }],
      ['a NUL byte in the password', { username: 'carol', password: 'correct horse\u0000' }],
      ['an over-long username', { username: 'c'.repeat(10_000), password: 'correct horse' }],
      ['a 50 kB password', { username: 'carol', password: 'p'.repeat(50_000) }],
      ['no credentials at all', {}],
    ])('%s → 401', async (_label, body) => {
      const response = await request(server).post('/login').send(body).expect(401);
      expect(sessionCookie(response.headers['set-cookie'])).toBeUndefined();
      expect(await sessionRows()).toBe(0);
    });

    it('a bodyless POST → 401', async () => {
      await request(server).post('/login').expect(401);
      expect(await sessionRows()).toBe(0);
    });

    it('malformed JSON → 400', async () => {
      await request(server).post('/login').set('Content-Type', 'application/json').send('{"username": ').expect(400);
      expect(await sessionRows()).toBe(0);
    });

    it('an oversized body → 413', async () => {
      // Over the default body limit of Express (100 kB) and of Fastify (1 MiB).
      await request(server).post('/login').send({ username: 'carol', password: 'p'.repeat(1_100_000) }).expect(413);
      expect(await sessionRows()).toBe(0);
    });

    it('a password that differs only after byte 72 is still wrong (no bcrypt truncation)', async () => {
      const long = 'x'.repeat(72);
      await t.users.createUser({ username: 'erin', password: `${long}-right` });
      await request(server).post('/login').send({ username: 'erin', password: `${long}-wrong` }).expect(401);
      await request(server).post('/login').send({ username: 'erin', password: `${long}-right` }).expect(200);
    });
  });

  describe('forged and replayed cookies are anonymous', () => {
    it('a cookie signed with another secret', async () => {
      await loginCarol();
      const [row] = await t.app.get(DataSource).getRepository(SessionRecord).find();
      await request(server).get('/me').set('Cookie', sign(row.id, 'guessed-secret')).expect(401);
    });

    it('a cookie with a valid session id but a tampered signature', async () => {
      const cookie = await loginCarol();
      const replaced = cookie.at(-3) === 'A' ? 'B' : 'A';
      const tampered = cookie.slice(0, -3) + replaced + cookie.slice(-2);
      expect(tampered).not.toBe(cookie);
      await request(server).get('/me').set('Cookie', tampered).expect(401);
    });

    it('a correctly signed id that the store never issued is not adopted (no fixation)', async () => {
      const planted = 'attacker-chosen-session-id-00000';
      const visit = await request(server).post('/session/x/1').set('Cookie', sign(planted, TEST_SECRET)).expect(200);
      const issued = sessionCookie(visit.headers['set-cookie'])!;
      expect(decodeURIComponent(issued)).not.toContain(planted);
      const ids = (await t.app.get(DataSource).getRepository(SessionRecord).find()).map((row) => row.id);
      expect(ids).not.toContain(planted);
    });

    it.each([['empty', ''], ['garbage', 'garbage'], ['a bare prefix', 's:'], ['unsigned', 's:abc'], ['bad percent-encoding', '%E0%A4%A'], ['dots only', 's%3A..'], ['5000 characters', 'x'.repeat(5000)]])('a malformed cookie value (%s)', async (_label, value) => {
      const response = await request(server).get('/me').set('Cookie', `sessionid=${value}`).expect(401);
      expect(response.status).toBeLessThan(500);
    });

    it('a session id from before login is dead after it, and the logged-in one is dead after logout', async () => {
      const visit = await request(server).post('/session/x/1').expect(200);
      const before = sessionCookie(visit.headers['set-cookie'])!;
      const response = await request(server).post('/login').set('Cookie', before).send({ username: 'carol', password: 'correct horse' });
      const after = sessionCookie(response.headers['set-cookie'])!;
      await request(server).get('/me').set('Cookie', before).expect(401);
      await request(server).post('/logout').set('Cookie', after).expect(200);
      await request(server).get('/me').set('Cookie', after).expect(401);
    });
  });

  describe('cookie attributes', () => {
    it('are HttpOnly, SameSite=Lax, Path=/ and two weeks long', async () => {
      const response = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
      const line = [response.headers['set-cookie']].flat().find((c: string) => c.startsWith('sessionid='))!;
      expect(line).toMatch(/; HttpOnly/);
      expect(line).toMatch(/; SameSite=Lax/);
      expect(line).toMatch(/; Path=\//);
      expect(line).not.toMatch(/; Secure/);
      const expires = Date.parse(/Expires=([^;]+)/.exec(line)![1]);
      expect(Math.abs(expires - (Date.now() + 14 * 24 * 3600 * 1000))).toBeLessThan(60_000);
    });
  });

  describe('a failing store fails closed', () => {
    it('answers 503 when the store cannot load a session, and never logs the request in', async () => {
      const cookie = await loginCarol();
      // The module's store is read through its promise API (third-party stores through get()).
      const store = t.app.get(SessionHandler).store as TypeOrmSessionStore;
      const get = jest.spyOn(store, 'getData').mockRejectedValue(new Error('db down'));
      const response = await request(server).get('/me').set('Cookie', cookie).expect(503);
      expect(JSON.stringify(response.body)).not.toContain('carol');
      // Like any source that is away: when to come back, and nothing cached.
      expect(response.headers['retry-after']).toBe('5');
      expect(response.headers['cache-control']).toContain('no-store');
      get.mockRestore();
      await request(server).get('/me').set('Cookie', cookie).expect(200);
    });

    it('login fails with a 5xx when the session cannot be written, and nothing logged in remains', async () => {
      const store = t.app.get(SessionHandler).store!;
      const set = jest.spyOn(store, 'set').mockImplementation((_sid, _data, callback) => callback?.(new Error('disk full')));
      const response = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' });
      expect(response.status).toBeGreaterThanOrEqual(500);
      set.mockRestore();
      const cookie = sessionCookie(response.headers['set-cookie']);
      if (cookie) await request(server).get('/me').set('Cookie', cookie).expect(401);
      expect(await sessionRows()).toBe(0);
    });

    it('a login whose session cannot be written keeps the visitor\'s earlier session and data', async () => {
      const visit = await request(server).post('/session/cart/42').expect(200);
      const cookie = sessionCookie(visit.headers['set-cookie'])!;
      const store = t.app.get(SessionHandler).store!;
      const set = jest.spyOn(store, 'set').mockImplementation((_sid, _data, callback) => callback?.(new Error('disk full')));
      const response = await request(server).post('/login').set('Cookie', cookie).send({ username: 'carol', password: 'correct horse' });
      expect(response.status).toBeGreaterThanOrEqual(500);
      set.mockRestore();
      await request(server).get('/session/cart').set('Cookie', cookie).expect(200, { value: '42' });
      await request(server).get('/me').set('Cookie', cookie).expect(401);
    });

    it('a database error while reading the session and its user is a 5xx, not a login, and changes nothing', async () => {
      const cookie = await loginCarol();
      const dataSource = t.app.get(DataSource);
      // The user table is gone for a moment: the one read of session and user fails.
      await dataSource.query('ALTER TABLE "auth_user" RENAME TO "auth_user_away"');
      try {
        const response = await request(server).get('/me').set('Cookie', cookie);
        expect(response.status).toBeGreaterThanOrEqual(500);
        expect(response.headers['set-cookie']).toBeUndefined();
      } finally {
        await dataSource.query('ALTER TABLE "auth_user_away" RENAME TO "auth_user"');
      }
      await request(server).get('/me').set('Cookie', cookie).expect(200);
    });

    describe('with a backend that loads users itself (sessions and users read apart)', () => {
      class LoadsUsersItself extends ModelBackend {
        override async getUser(id: string) {
          return super.getUser(id);
        }
      }
      let own: TestApp;
      beforeEach(async () => {
        own = await createTestApp({ auth: { backends: [LoadsUsersItself] } });
        await own.users.createUser({ username: 'carol', password: 'correct horse' });
      });
      afterEach(() => own.close());

      it('logout still ends the session when the user database is down', async () => {
        const cookie = await logIn(own.app, 'carol', 'correct horse');
        const spy = jest.spyOn(own.users, 'findById').mockRejectedValue(new Error('db down'));
        await request(own.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
        spy.mockRestore();
        await request(own.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
      });

      it('a database error while loading the user is a 5xx, not a login', async () => {
        const cookie = await logIn(own.app, 'carol', 'correct horse');
        const spy = jest.spyOn(own.users, 'findById').mockRejectedValue(new Error('db down'));
        const response = await request(own.app.getHttpServer()).get('/me').set('Cookie', cookie);
        expect(response.status).toBeGreaterThanOrEqual(500);
        spy.mockRestore();
      });
    });
  });
});

describe('a disconnected session store', () => {
  it('serves requests as anonymous and answers login() with 503', async () => {
    const store = new session.MemoryStore();
    const t = await createTestApp({ auth: { backends: [ModelBackend], session: { secret: TEST_SECRET, store } } });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const server = t.app.getHttpServer();
      const login = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
      const cookie = sessionCookie(login.headers['set-cookie'])!;
      store.emit('disconnect');
      await request(server).get('/me').set('Cookie', cookie).expect(401);
      await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(503);
      // Saying "logged out" now would leave the session alive in the store.
      await request(server).post('/logout').set('Cookie', cookie).expect(503);
      store.emit('connect');
      await request(server).get('/me').set('Cookie', cookie).expect(200);
    } finally {
      await t.close();
    }
  });
});
