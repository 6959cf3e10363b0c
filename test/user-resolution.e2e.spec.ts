import { Controller, Get, Injectable, Req } from '@nestjs/common';
import type { Request } from 'express';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import request from 'supertest';
import { DataSource } from 'typeorm';
import {
  AuthService,
  CurrentUser,
  LoginRequired,
  ModelBackend,
  SessionRecord,
  TypeOrmSessionStore,
  UserManager,
  type AuthBackend,
} from 'nestjs-session-auth';
import { BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, SessionHandler } from './support/internals.js';
import { createTestApp, logIn, PagesController, sessionCookie, TEST_SECRET, type TestApp } from './support/test-app.js';

let getUserCalls = 0;

/** ModelBackend that counts getUser calls. */
@Injectable()
class CountingBackend implements AuthBackend {
  readonly name = 'CountingBackend';
  constructor(private readonly users: UserManager) {}
  async authenticate(_req: unknown, { username, password }: Record<string, unknown>) {
    const user = await this.users.findByUsername(username);
    return user && (await this.users.checkPassword(user, password)) ? user : null;
  }
  getUser(id: string) {
    getUserCalls++;
    return this.users.findById(id);
  }
}

@LoginRequired()
@Controller('busy')
class BusyController {
  constructor(private readonly auth: AuthService) {}

  /** Guard, interceptor, decorator and the handler all ask who the user is. */
  @Get()
  async busy(@Req() req: Request, @CurrentUser() user: any) {
    const again = await this.auth.getUser(req);
    const thrice = await this.auth.getUser(req);
    return { same: again === thrice && again === user && (req as any).user === user, username: user.username };
  }
}

async function rewriteSession(t: TestApp, cookie: string, change: (data: Record<string, unknown>) => void) {
  const repository = t.app.get(DataSource).getRepository(SessionRecord);
  const [row] = await repository.find();
  expect(row).toBeDefined();
  const data = JSON.parse(row.data);
  change(data);
  await repository.update({ id: row.id }, { data: JSON.stringify(data) });
  return cookie;
}

describe('the per-request user', () => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    getUserCalls = 0;
    t = await createTestApp({ auth: { backends: [CountingBackend] }, controllers: [PagesController, BusyController] });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterEach(() => t.close());

  const loginCarol = () => logIn(t.app, 'carol', 'correct horse');

  it('calls getUser at most once per request, however many places ask', async () => {
    const cookie = await loginCarol();
    getUserCalls = 0;
    await request(server).get('/busy').set('Cookie', cookie).expect(200, { same: true, username: 'carol' });
    expect(getUserCalls).toBe(1);
  });

  it('does no store or database work for a request without a session cookie', async () => {
    const store = t.app.get(SessionHandler).store as TypeOrmSessionStore;
    const get = jest.spyOn(store, 'getData');
    const statements = await t.sql.during(() => request(server).get('/whoami').expect(200, { username: '', isAuthenticated: false }));
    expect(statements).toEqual([]);
    expect(get).not.toHaveBeenCalled();
    expect(getUserCalls).toBe(0);
  });

  it('is anonymous and drops the auth keys when the session names a backend that is not configured', async () => {
    const cookie = await rewriteSession(t, await loginCarol(), (data) => (data[BACKEND_SESSION_KEY] = 'RetiredBackend'));
    await request(server).get('/me').set('Cookie', cookie).expect(401);
    const [row] = await t.app.get(DataSource).getRepository(SessionRecord).find();
    expect(JSON.parse(row.data)).not.toHaveProperty(SESSION_KEY);
    expect(JSON.parse(row.data)).not.toHaveProperty(HASH_SESSION_KEY);
    expect(getUserCalls).toBe(0);
  });

  it('is anonymous when the user was deleted', async () => {
    const cookie = await loginCarol();
    await t.users.repository.delete({ username: 'carol' });
    await request(server).get('/me').set('Cookie', cookie).expect(401);
  });

  it('is anonymous when the user was deactivated', async () => {
    const cookie = await loginCarol();
    await t.users.repository.update({ username: 'carol' }, { isActive: false });
    await request(server).get('/me').set('Cookie', cookie).expect(401);
  });

  it('ends the whole session of another browser when the password changes (Django flushes it)', async () => {
    const cookie = await loginCarol();
    await request(server).post('/session/cart/7').set('Cookie', cookie).expect(200);
    const carol = (await t.users.findByUsername('carol'))!;
    await t.users.setPassword(carol, 'a brand new password');
    await t.users.repository.save(carol);

    const stale = await request(server).get('/me').set('Cookie', cookie).expect(401);
    // The browser is told to drop the cookie; every key went with the session, not only the login.
    expect(String(stale.headers['set-cookie'])).toMatch(/^sessionid=;.*Expires=Thu, 01 Jan 1970/);
    await request(server).get('/session/cart').set('Cookie', cookie).expect(200, { value: null });
    const rows = await t.app.get(DataSource).getRepository(SessionRecord).find();
    expect(rows.filter((row) => !row.revoked)).toEqual([]);
  });

  it('is anonymous when the stored hash was tampered with or removed', async () => {
    let cookie = await rewriteSession(t, await loginCarol(), (data) => (data[HASH_SESSION_KEY] = '0'.repeat(64)));
    await request(server).get('/me').set('Cookie', cookie).expect(401);
    await t.app.get(DataSource).getRepository(SessionRecord).clear();
    cookie = await rewriteSession(t, await loginCarol(), (data) => delete data[HASH_SESSION_KEY]);
    await request(server).get('/me').set('Cookie', cookie).expect(401);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['not a number', 'abc'],
    ['SQL', '1 OR 1=1'],
    ['a number, not a string', 1],
    ['an object', { id: 1 }],
  ])('never loads a user for a %s user id in the session', async (_label, id) => {
    // TypeORM's findOneBy({ id: undefined }) would load the first row.
    const cookie = await rewriteSession(t, await loginCarol(), (data) => {
      if (id === undefined) delete data[SESSION_KEY];
      else data[SESSION_KEY] = id;
    });
    await request(server).get('/me').set('Cookie', cookie).expect(401);
  });

  it('UserManager.findById resolves null for malformed ids without a database round trip', async () => {
    for (const id of [undefined, null, '', 'abc', '1.5', '1e3', {}, [], NaN, '1\u00002', 'x'.repeat(300)]) {
      const statements = await t.sql.during(async () => expect(await t.users.findById(id)).toBeNull());
      expect(statements).toEqual([]);
    }
    expect((await t.users.findById('1'))?.username).toBe('carol');
  });
});

describe('secret rotation', () => {
  const folder = mkdtempSync(join(tmpdir(), 'session-auth-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('keeps sessions made under a secret that became a fallback, and re-signs their hash', async () => {
    const database = { database: join(folder, 'rotation.sqlite') };
    const before = await createTestApp({ database, auth: { backends: [ModelBackend] } });
    await before.users.createUser({ username: 'carol', password: 'correct horse' });
    const login = await request(before.app.getHttpServer())
      .post('/login')
      .send({ username: 'carol', password: 'correct horse' })
      .expect(200);
    const cookie = sessionCookie(login.headers['set-cookie'])!;
    await before.close();

    const after = await createTestApp({
      database,
      synchronize: false,
      auth: {
        backends: [ModelBackend],
        session: { secret: ['the-new-secret', TEST_SECRET] },
        secret: 'the-new-secret',
        secretFallbacks: [TEST_SECRET],
      },
    });
    let rotated: string;
    try {
      const repository = after.app.get(DataSource).getRepository(SessionRecord);
      const oldHash = JSON.parse((await repository.find())[0].data)[HASH_SESSION_KEY];
      const me = await request(after.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
      // Re-signed under a new session id (Django's cycle_key): the old id is ended.
      rotated = sessionCookie(me.headers['set-cookie'])!;
      expect(rotated).toBeDefined();
      expect(rotated).not.toBe(cookie);
      const live = await repository.find({ where: { revoked: false } });
      expect(live).toHaveLength(1);
      const newHash = JSON.parse(live[0].data)[HASH_SESSION_KEY];
      expect(newHash).toMatch(/^[0-9a-f]{64}$/);
      expect(newHash).not.toBe(oldHash);
      await request(after.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
    } finally {
      await after.close();
    }

    // Once the old secret is dropped altogether, the re-signed session still holds.
    const later = await createTestApp({
      database,
      synchronize: false,
      auth: { backends: [ModelBackend], session: { secret: 'the-new-secret' }, secret: 'the-new-secret' },
    });
    try {
      await request(later.app.getHttpServer()).get('/me').set('Cookie', rotated).expect(200, { username: 'carol', backend: 'ModelBackend' });
    } finally {
      await later.close();
    }
  });

  it('rejects sessions whose hash was made with a secret that is no longer listed', async () => {
    const database = { database: join(folder, 'dropped.sqlite') };
    const before = await createTestApp({ database, auth: { backends: [ModelBackend] } });
    await before.users.createUser({ username: 'carol', password: 'correct horse' });
    const login = await request(before.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' });
    const cookie = sessionCookie(login.headers['set-cookie'])!;
    await before.close();
    const after = await createTestApp({
      database,
      synchronize: false,
      auth: { backends: [ModelBackend], session: { secret: [TEST_SECRET] }, secret: 'the-new-secret' },
    });
    try {
      await request(after.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
    } finally {
      await after.close();
    }
  });
});
