import { Controller, Post, Req, Res } from '@nestjs/common';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { loadSession, TypeOrmSessionStore, UserManager } from 'nestjs-session-auth';
import { makeSessionAuthHash } from '../src/session-auth-hash.js';
import { beforeGuards, createTestApp, HealthController, logIn, PagesController, TEST_SECRET, type TestApp } from './support/test-app.js';

/**
 * The module's own session layer: loaded on first use, written only when changed, and
 * compatible with what express-session wrote before it (cookie format and store rows).
 */


describe('the session is loaded on first use', () => {
  let t: TestApp;
  let server: any;
  let cookie: string;

  beforeEach(async () => {
    t = await createTestApp({ controllers: [PagesController, HealthController] });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    cookie = await logIn(t.app, 'carol', 'correct horse');
  });
  afterEach(() => t.close());

  it('runs no SQL and sets no cookie for a logged-in request to a route that reads neither session nor user', async () => {
    t.sql.reset();
    const response = await request(server).get('/health').set('Cookie', cookie).expect(200, { up: true });
    expect(t.sql.statements).toEqual([]);
    expect(response.headers['set-cookie']).toBeUndefined();
  });

  it('loads it where the user is read: one session read, one user read, no write', async () => {
    t.sql.reset();
    await request(server).get('/me').set('Cookie', cookie).expect(200);
    expect(t.sql.writes).toEqual([]);
    expect(t.sql.statements.filter((sql) => /auth_session/.test(sql))).toHaveLength(1);
    expect(t.sql.statements.filter((sql) => /"auth_user"/.test(sql))).toHaveLength(1);
  });

  it('answers a forged session cookie on any route without a store read', async () => {
    t.sql.reset();
    await request(server).get('/me').set('Cookie', 'sessionid=s%3Aforged.c2lnbmF0dXJl').expect(401);
    await request(server).get('/health').set('Cookie', 'sessionid=s%3Aforged.c2lnbmF0dXJl').expect(200);
    expect(t.sql.statements).toEqual([]);
  });
});

describe('caching', () => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    t = await createTestApp({ controllers: [PagesController, HealthController] });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterEach(() => t.close());

  it('marks answers that depend on who is asking with Vary: Cookie, logged in or not', async () => {
    const cookie = await logIn(t.app, 'carol', 'correct horse');
    const me = await request(server).get('/me').set('Cookie', cookie).expect(200);
    const anonymous = await request(server).get('/me').expect(401);
    const whoami = await request(server).get('/whoami').expect(200);
    for (const response of [me, anonymous, whoami]) expect(response.headers.vary).toMatch(/\bCookie\b/);
    const health = await request(server).get('/health').set('Cookie', cookie).expect(200);
    expect(health.headers.vary ?? '').not.toMatch(/Cookie/);
  });

  it('keeps caches from storing a login or a logout (Cache-Control: no-store)', async () => {
    const login = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    expect(login.headers['cache-control']).toBe('no-store');
    const cookie = [login.headers['set-cookie']].flat().find((line: string) => line.startsWith('sessionid='))!.split(';')[0];
    const logout = await request(server).post('/logout').set('Cookie', cookie).expect(200);
    expect(logout.headers['cache-control']).toBe('no-store');
  });
});

describe('a changed session is written, an unchanged one is not', () => {
  @Controller()
  class CartController {
    @Post('cart/same-user')
    sameUser(@Req() request: any) {
      // The same value again: nothing changed.
      request.session._auth_user_id = String(request.session._auth_user_id);
      return {};
    }

    @Post('cart/new')
    create(@Req() request: any) {
      request.session.cart = { items: ['tea'] };
      return {};
    }

    @Post('cart/add/:item')
    add(@Req() request: any) {
      // Changed in place: the session object itself still holds the same cart object.
      request.session.cart.items.push(request.params.item);
      return {};
    }

    @Post('cart/drop')
    drop(@Req() request: any) {
      delete request.session.cart;
      return {};
    }
  }

  it('notices a value set again, a nested change, an added and a removed key', async () => {
    const t = await createTestApp({ controllers: [CartController, PagesController] });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = await logIn(t.app, 'carol', 'correct horse');
      const server = t.app.getHttpServer();
      const writes = async (path: string) => (await t.sql.during(() => request(server).post(path).set('Cookie', cookie).expect(201))).filter((sql) => /^(INSERT|UPDATE|DELETE)/i.test(sql));
      expect(await writes('/cart/same-user')).toEqual([]);
      expect(await writes('/cart/new')).toHaveLength(1);
      expect(await writes('/cart/add/milk')).toHaveLength(1);
      await request(server).get('/session/cart').set('Cookie', cookie).expect(200, { value: { items: ['tea', 'milk'] } });
      expect(await writes('/cart/drop')).toHaveLength(1);
      await request(server).get('/session/cart').set('Cookie', cookie).expect(200, { value: null });
      await request(server).get('/me').set('Cookie', cookie).expect(200);
    } finally {
      await t.close();
    }
  });
});

describe('a handler that writes the response itself', () => {
  /** Headers handed to writeHead, as code writing to Node's response does. */
  @Controller()
  class HandWrittenController {
    @Post('by-hand')
    byHand(@Req() request: any, @Res() response: any) {
      request.session.note = 'kept';
      response.hijack?.(); // Fastify: the reply is answered through Node's response
      const raw = response.raw ?? response;
      raw.writeHead(200, { 'Content-Type': 'text/plain', Vary: 'Accept', 'Set-Cookie': 'theme=dark; Path=/' });
      raw.end('written by hand');
    }
  }

  it('still gets the session cookie next to its own, Vary: Cookie next to its own, and the session saved', async () => {
    const t = await createTestApp({ controllers: [HandWrittenController, PagesController] });
    try {
      const response = await request(t.app.getHttpServer()).post('/by-hand').expect(200, 'written by hand');
      const cookies = [response.headers['set-cookie']].flat();
      expect(cookies.some((line: string) => line.startsWith('theme=dark'))).toBe(true);
      const cookie = cookies.find((line: string) => line.startsWith('sessionid='))?.split(';')[0];
      expect(cookie).toBeDefined();
      expect(response.headers.vary).toMatch(/\bAccept\b/);
      expect(response.headers.vary).toMatch(/\bCookie\b/);
      await request(t.app.getHttpServer()).get('/session/note').set('Cookie', cookie!).expect(200, { value: 'kept' });
    } finally {
      await t.close();
    }
  });
});

describe('stored data cannot take over the session object', () => {
  it('ignores stored keys named like its id, its methods or __proto__', async () => {
    const t = await createTestApp();
    try {
      const store = new TypeOrmSessionStore(t.app.get(DataSource), { pruneInterval: false });
      const data = JSON.parse(
        '{"cookie":{"originalMaxAge":600000,"expires":"2099-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},' +
          '"__proto__":{"polluted":true},"id":"someone-else","save":"not a function","cart":"3"}',
      );
      await new Promise<void>((resolve, reject) => store.set('sid-crafted', data, (error) => (error ? reject(error) : resolve())));
      const signature = (await import('cookie-signature')).default;
      const cookie = `sessionid=${encodeURIComponent('s:' + signature.sign('sid-crafted', TEST_SECRET))}`;

      await request(t.app.getHttpServer()).get('/session/cart').set('Cookie', cookie).expect(200, { value: '3' });
      await request(t.app.getHttpServer()).post('/session/cart/4').set('Cookie', cookie).expect(200);
      await request(t.app.getHttpServer()).get('/session/cart').set('Cookie', cookie).expect(200, { value: '4' });
      expect(({} as any).polluted).toBeUndefined();
      store.close();
    } finally {
      await t.close();
    }
  });
});

describe('middleware that reads the session', () => {
  it('gets a clear error reading it before it is loaded, and the data after `await loadSession(req)`', async () => {
    const seen: unknown[] = [];

    const reading = beforeGuards(async (req: any) => {
      try {
        seen.push(req.session._auth_user_id);
      } catch (error) {
        seen.push((error as Error).name);
      }
      const loaded: any = await loadSession(req);
      seen.push(loaded?._auth_user_id);
    });

    const t = await createTestApp({ controllers: [PagesController, HealthController], ...reading });
    try {
      const carol = await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = await logIn(t.app, 'carol', 'correct horse');
      seen.length = 0;
      await request(t.app.getHttpServer()).get('/health').set('Cookie', cookie).expect(200);
      expect(seen).toEqual(['SessionNotLoaded', String(carol.id)]);
    } finally {
      await t.close();
    }
  });
});

describe('upgrading from the express-session layer of earlier releases', () => {
  it('logs in with a cookie and store row written by express-session', async () => {
    const t = await createTestApp();
    try {
      const carol = await t.app.get(UserManager).createUser({ username: 'carol', password: 'correct horse' });
      // The previous release: express-session over the same store, secret and cookie name.
      const store = new TypeOrmSessionStore(t.app.get(DataSource), { pruneInterval: false });
      const previous = express();
      previous.use(session({ store, secret: TEST_SECRET, name: 'sessionid', resave: false, saveUninitialized: false }));
      previous.post('/login', (req, res) => {
        Object.assign(req.session, {
          _auth_user_id: String(carol.id),
          _auth_user_backend: 'ModelBackend',
          _auth_user_hash: makeSessionAuthHash(carol, TEST_SECRET),
        });
        res.json({});
      });
      const issued = await request(previous).post('/login').expect(200);
      const cookie = [issued.headers['set-cookie']].flat()[0].split(';')[0];

      await request(t.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
      // And the session goes on under the new layer: logout ends it.
      await request(t.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
      await request(t.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
      store.close();
    } finally {
      await t.close();
    }
  });
});
