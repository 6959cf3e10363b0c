import { Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthEvents, AuthService, SessionRecord, User } from 'nestjs-session-auth';
import { messages } from 'nestjs-session-auth/messages';
import { BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY } from './support/internals.js';
import { createTestApp, PagesController, sessionCookie, type TestApp } from './support/test-app.js';

let slowWriteGate: { promise: Promise<void>; release: () => void };
function newGate() {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  slowWriteGate = { promise, release };
}

/** Routes that look behind the scenes of login(). */
@Controller('inspect')
class InspectController {
  constructor(
    private readonly auth: AuthService,
    private readonly dataSource: DataSource,
  ) {}

  /** Logs carol in and reports what the store and `request.user` hold right after. */
  @Post('login-and-look')
  @HttpCode(200)
  async loginAndLook(@Req() req: Request) {
    const user = await this.auth.authenticate(req, { username: 'carol', password: 'correct horse' });
    await this.auth.login(req, user);
    const row = await this.dataSource.getRepository(SessionRecord).findOneBy({ id: req.sessionID });
    return { stored: row ? JSON.parse(row.data) : null, requestUser: (req as any).user?.username };
  }

  /** Holds the request until the test releases it, then writes to the session. */
  @Post('slow-write')
  @HttpCode(200)
  async slowWrite(@Req() req: Request) {
    await slowWriteGate.promise;
    (req.session as any).lastSeen = 'late';
    return {};
  }

  @Post('logout-with-goodbye')
  @HttpCode(200)
  async logoutWithGoodbye(@Req() req: Request) {
    await this.auth.logout(req);
    messages.info(req, 'You are logged out.');
    return {};
  }

  @Get('messages')
  pending(@Req() req: Request) {
    return messages.list(req);
  }

  @Get('session')
  session(@Req() req: Request) {
    return { ...(req.session as any), cookie: undefined };
  }
}

describe('login() and logout() over HTTP', () => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    t = await createTestApp({ controllers: [PagesController, InspectController] });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    await t.users.createUser({ username: 'dave', password: 'another secret' });
  });
  afterEach(() => t.close());

  async function login(username: string, password: string, cookie?: string): Promise<string> {
    const call = request(server).post('/login').send({ username, password });
    if (cookie) call.set('Cookie', cookie);
    const response = await call.expect(200);
    const next = sessionCookie(response.headers['set-cookie']);
    expect(next).toBeDefined();
    return next!;
  }

  it('stores the user id (as a string), the backend name and the session auth hash under Django\'s keys', async () => {
    const cookie = await login('carol', 'correct horse');
    const { body } = await request(server).get('/inspect/session').set('Cookie', cookie).expect(200);
    const carol = await t.users.findByUsername('carol');
    expect(body[SESSION_KEY]).toBe(String(carol!.id));
    expect(body[BACKEND_SESSION_KEY]).toBe('ModelBackend');
    expect(body[HASH_SESSION_KEY]).toMatch(/^[0-9a-f]{64}$/);
  });

  it('has written the session and set request.user by the time login() resolves', async () => {
    const { body } = await request(server).post('/inspect/login-and-look').expect(200);
    expect(body.stored[SESSION_KEY]).toBeDefined();
    expect(body.stored[BACKEND_SESSION_KEY]).toBe('ModelBackend');
    expect(body.requestUser).toBe('carol');
  });

  it('rotates the session id at login, keeps data stored before it, and kills the old id', async () => {
    const visit = await request(server).post('/session/cart/42').expect(200);
    const anonymous = sessionCookie(visit.headers['set-cookie'])!;
    const loggedIn = await login('carol', 'correct horse', anonymous);
    expect(loggedIn).not.toBe(anonymous);
    await request(server).get('/session/cart').set('Cookie', loggedIn).expect(200, { value: '42' });
    // The pre-login id (which an attacker may have planted) is worth nothing now.
    await request(server).get('/session/cart').set('Cookie', anonymous).expect(200, { value: null });
    await request(server).get('/me').set('Cookie', anonymous).expect(401);
  });

  it('rotates the id when the same user logs in again, keeping the session data', async () => {
    const first = await login('carol', 'correct horse');
    await request(server).post('/session/theme/dark').set('Cookie', first).expect(200);
    const second = await login('carol', 'correct horse', first);
    expect(second).not.toBe(first);
    await request(server).get('/session/theme').set('Cookie', second).expect(200, { value: 'dark' });
    await request(server).get('/me').set('Cookie', first).expect(401);
  });

  it('starts a fresh session when a different user logs in over an existing login', async () => {
    const carol = await login('carol', 'correct horse');
    await request(server).post('/session/draft/carols-secret').set('Cookie', carol).expect(200);
    const dave = await login('dave', 'another secret', carol);
    await request(server).get('/me').set('Cookie', dave).expect(200, { username: 'dave', backend: 'ModelBackend' });
    await request(server).get('/session/draft').set('Cookie', dave).expect(200, { value: null });
  });

  it('updates lastLogin of the built-in user and emits userLoggedIn with the user', async () => {
    const seen: string[] = [];
    t.app.get(AuthEvents).on('userLoggedIn', ({ user, request: req }) => void seen.push(`${user.username}:${!!req}`));
    expect((await t.users.findByUsername('carol'))!.lastLogin).toBeNull();
    const before = Date.now();
    await login('carol', 'correct horse');
    const lastLogin = (await t.users.findByUsername('carol'))!.lastLogin!;
    expect(lastLogin.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(seen).toEqual(['carol:true']);
  });

  it('logout emits userLoggedOut, revokes the session row and clears the cookie', async () => {
    const cookie = await login('carol', 'correct horse');
    const loggedOut: Array<string | null> = [];
    t.app.get(AuthEvents).on('userLoggedOut', ({ user }) => void loggedOut.push(user?.username ?? null));
    const sessions = t.app.get(DataSource).getRepository(SessionRecord);
    expect(await sessions.count({ where: { revoked: false } })).toBe(1);

    const response = await request(server).post('/logout').set('Cookie', cookie).expect(200);
    expect(loggedOut).toEqual(['carol']);
    // The row stays as a revoked marker until it expires, so no late write can revive it.
    expect(await sessions.count({ where: { revoked: false } })).toBe(0);
    const cleared = [response.headers['set-cookie']].flat().find((line: string) => line?.startsWith('sessionid='));
    expect(cleared).toMatch(/^sessionid=;/);
    expect(cleared).toMatch(/Expires=Thu, 01 Jan 1970/);
  });

  it('treats a replayed cookie as anonymous after logout', async () => {
    const cookie = await login('carol', 'correct horse');
    await request(server).post('/logout').set('Cookie', cookie).expect(200);
    await request(server).get('/me').set('Cookie', cookie).expect(401);
    await request(server).get('/whoami').set('Cookie', cookie).expect(200, { username: '', isAuthenticated: false });
  });

  it('logout of an anonymous visitor emits userLoggedOut with a null user and sets no cookie', async () => {
    const loggedOut: unknown[] = [];
    t.app.get(AuthEvents).on('userLoggedOut', ({ user }) => void loggedOut.push(user));
    const response = await request(server).post('/logout').expect(200);
    expect(loggedOut).toEqual([null]);
    expect(sessionCookie(response.headers['set-cookie'])).toBeUndefined();
  });

  it('logs in users of a backend that is not the first, recording that backend', async () => {
    await t.users.createUser({ username: 'alice' });
    const cookie = await login('alice', 'wonderland');
    await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'alice', backend: 'DictionaryBackend' });
  });

  it('refuses login() with a backend name that is not configured', async () => {
    const carol = (await t.users.findByUsername('carol')) as User;
    const req: any = { headers: {}, session: {}, sessionStore: {} };
    await expect(t.auth.login(req, carol, 'LdapBackend')).rejects.toThrow(/LdapBackend/);
  });

  it('drops the CSRF token at login, so a token seen before login is useless after it', async () => {
    const visit = await request(server).post('/session/_csrftoken/seen-by-attacker').expect(200);
    const before = sessionCookie(visit.headers['set-cookie'])!;
    await request(server).post('/session/cart/7').set('Cookie', before).expect(200);
    const after = await login('carol', 'correct horse', before);
    const { body } = await request(server).get('/inspect/session').set('Cookie', after).expect(200);
    expect(body).not.toHaveProperty('_csrftoken');
    expect(body.cart).toBe('7');
  });

  it('lets a flash message be added right after logout, in a new session that holds only it', async () => {
    const cookie = await login('carol', 'correct horse');
    const response = await request(server).post('/inspect/logout-with-goodbye').set('Cookie', cookie).expect(200);
    const fresh = [response.headers['set-cookie']].flat().filter((line: string) => /^sessionid=[^;]/.test(line)).pop();
    expect(fresh).toBeDefined();
    const next = fresh!.split(';')[0];
    expect(next).not.toBe(cookie);
    await request(server).get('/inspect/messages').set('Cookie', next).expect(200, [{ level: 'info', levelValue: 20, text: 'You are logged out.', extraTags: '', tags: 'info' }]);
    await request(server).get('/me').set('Cookie', next).expect(401);
    await request(server).get('/me').set('Cookie', cookie).expect(401);
  });

  it('a request still running when the user logs out cannot bring the session back', async () => {
    const cookie = await login('carol', 'correct horse');
    newGate();
    const slow = request(server).post('/inspect/slow-write').set('Cookie', cookie).then((response) => response);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the slow request has loaded the session
    await request(server).post('/logout').set('Cookie', cookie).expect(200);
    slowWriteGate.release();
    await slow;
    await request(server).get('/me').set('Cookie', cookie).expect(401);
    await request(server).get('/whoami').set('Cookie', cookie).expect(200, { username: '', isAuthenticated: false });
  });
});
