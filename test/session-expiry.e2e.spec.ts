import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { loadSession, RequestSession, SessionRecord, type AuthModuleOptions } from 'nestjs-session-auth';
import { createTestApp, PagesController, type TestApp } from './support/test-app.js';

/**
 * Per-session expiry, ported from Django's `sessions_tests` (`test_custom_expiry_seconds`,
 * `_datetime`, `_reset`, `test_get_expire_at_browser_close`, and `SessionMiddlewareTests`'
 * browser-close cookie), and the "Remember me" box of the built-in login form.
 */

@Controller('expiry')
class ExpiryController {
  @Post()
  @HttpCode(200)
  async set(@Req() request: Request, @Body() body: { seconds?: number; date?: string; reset?: boolean }) {
    const session = (await loadSession(request)) as RequestSession;
    session.visits = Number(session.visits ?? 0) + 1;
    session.setExpiry(body.reset ? null : body.date ? new Date(body.date) : body.seconds!);
    return expiryOf(session);
  }

  /** `setExpiry` given whatever the client sent, for the refusals. */
  @Post('raw')
  @HttpCode(200)
  async raw(@Req() request: Request, @Body() body: { value: unknown }) {
    const session = (await loadSession(request)) as RequestSession;
    try {
      session.setExpiry(body.value as never);
      return { error: null };
    } catch (error) {
      return { error: (error as Error).name };
    }
  }

  @Get()
  async get(@Req() request: Request) {
    const session = (await loadSession(request)) as RequestSession;
    return expiryOf(session);
  }
}

function expiryOf(session: RequestSession) {
  return { age: session.getExpiryAge(), date: session.getExpiryDate().toISOString(), browserClose: session.getExpireAtBrowserClose() };
}

const DAY = 24 * 60 * 60;
const HTML = 'text/html,application/xhtml+xml';

/** The seconds from now until the cookie's `Expires`, or `null` for a cookie without one. */
function cookieLifetime(setCookie: string[] | string | undefined): number | null {
  const line = [setCookie ?? []].flat().find((cookie) => cookie.startsWith('sessionid='));
  if (!line) throw new Error('No session cookie was set.');
  expect(line).not.toMatch(/Max-Age/i);
  const expires = /Expires=([^;]+)/i.exec(line);
  return expires ? (new Date(expires[1]).getTime() - Date.now()) / 1000 : null;
}

describe('per-session expiry (Django’s set_expiry)', () => {
  let t: TestApp;
  let server: any;

  async function boot(auth: Partial<AuthModuleOptions> = {}): Promise<void> {
    t = await createTestApp({ auth, controllers: [PagesController, ExpiryController] });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
  }

  afterEach(() => t?.close());

  /** The expiry of the one live session row, in seconds from now. */
  async function storedLifetime(): Promise<number> {
    const rows = await t.app.get(DataSource).getRepository(SessionRecord).find({ where: { revoked: false } });
    expect(rows).toHaveLength(1);
    return (Number(rows[0].expiresAt) - Date.now()) / 1000;
  }

  it('lasts the cookie’s age by default, sliding with use', async () => {
    await boot();
    const agent = request.agent(server);
    const response = await agent.post('/expiry').send({ reset: true }).expect(200);
    expect(cookieLifetime(response.headers['set-cookie'])).toBeCloseTo(14 * DAY, -1);
    expect(response.body.browserClose).toBe(false);
    expect(response.body.age).toBeGreaterThan(14 * DAY - 5);
  });

  it('ends after the given seconds of inactivity, in the cookie, the store and the next requests', async () => {
    await boot();
    const agent = request.agent(server);
    const response = await agent.post('/expiry').send({ seconds: 3600 }).expect(200);
    expect(cookieLifetime(response.headers['set-cookie'])).toBeCloseTo(3600, -1);
    expect(response.body.age).toBeGreaterThan(3590);
    expect(response.body.age).toBeLessThanOrEqual(3600);
    expect(await storedLifetime()).toBeCloseTo(3600, -1);
    // Kept in the session: the next request still says an hour, not the default.
    const later = await agent.get('/expiry').expect(200);
    expect(later.body.age).toBeGreaterThan(3590);
    expect(later.body.age).toBeLessThanOrEqual(3600);
  });

  it('ends at a given moment', async () => {
    await boot();
    const at = new Date(Date.now() + 2 * DAY * 1000);
    const agent = request.agent(server);
    const response = await agent.post('/expiry').send({ date: at.toISOString() }).expect(200);
    expect(cookieLifetime(response.headers['set-cookie'])).toBeCloseTo(2 * DAY, -1);
    expect(response.body.date).toBe(at.toISOString());
    expect((await agent.get('/expiry').expect(200)).body.date).toBe(at.toISOString());
    expect(await storedLifetime()).toBeCloseTo(2 * DAY, -1);
  });

  it('with 0, sends a cookie that ends with the browser while the store keeps the session its full age', async () => {
    await boot();
    const agent = request.agent(server);
    const response = await agent.post('/expiry').send({ seconds: 0 }).expect(200);
    expect(cookieLifetime(response.headers['set-cookie'])).toBeNull();
    expect(response.body.browserClose).toBe(true);
    expect(response.body.age).toBeGreaterThan(14 * DAY - 5);
    expect(await storedLifetime()).toBeCloseTo(14 * DAY, -1);
    expect((await agent.get('/expiry').expect(200)).body.browserClose).toBe(true);
  });

  it('goes back to the configured policy with null (Django’s test_custom_expiry_reset)', async () => {
    await boot();
    const agent = request.agent(server);
    await agent.post('/expiry').send({ seconds: 60 }).expect(200);
    const response = await agent.post('/expiry').send({ reset: true }).expect(200);
    expect(cookieLifetime(response.headers['set-cookie'])).toBeCloseTo(14 * DAY, -1);
    expect(await storedLifetime()).toBeCloseTo(14 * DAY, -1);
  });

  it('expireAtBrowserClose: every cookie ends with the browser, the store keeps cookie.maxAge, setExpiry still wins', async () => {
    await boot({ session: { secret: 'test-secret-that-is-long-enough-for-production', expireAtBrowserClose: true, cookie: { maxAge: DAY * 1000 } } });
    const agent = request.agent(server);
    const login = await agent.post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    expect(cookieLifetime(login.headers['set-cookie'])).toBeNull();
    expect(await storedLifetime()).toBeCloseTo(DAY, -1);
    expect((await agent.get('/expiry').expect(200)).body.browserClose).toBe(true);
    const response = await agent.post('/expiry').send({ seconds: 600 }).expect(200);
    expect(cookieLifetime(response.headers['set-cookie'])).toBeCloseTo(600, -1);
  });

  it('is forgotten with the session at logout', async () => {
    await boot();
    const agent = request.agent(server);
    await agent.post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    await agent.post('/expiry').send({ seconds: 0 }).expect(200);
    await agent.post('/logout').expect(200);
    const response = await agent.post('/expiry').send({ reset: true }).expect(200);
    expect(cookieLifetime(response.headers['set-cookie'])).toBeCloseTo(14 * DAY, -1);
  });

  it('refuses values that are no expiry, changing nothing', async () => {
    await boot();
    const agent = request.agent(server);
    await agent.post('/expiry').send({ seconds: 3600 }).expect(200);
    for (const value of [-1, '60', 'not a date', { later: true }, true, 1e13]) {
      const { body } = await agent.post('/expiry/raw').send({ value }).expect(200);
      expect(body.error).toBe('TypeError');
    }
    const { body } = await agent.get('/expiry').expect(200);
    expect(body.age).toBeGreaterThan(3590);
    expect(body.age).toBeLessThanOrEqual(3600);
  });

  describe('"Remember me" on the built-in login form (views.login.rememberMe)', () => {
    async function logInWithForm(fields: Record<string, string>) {
      const agent = request.agent(server);
      const page = await agent.get('/accounts/login').set('Accept', HTML).expect(200);
      const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
      const response = await agent
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token, ...fields })
        .expect(302);
      return { page, response, agent };
    }

    it('is not offered unless asked for', async () => {
      await boot({ views: true });
      const { page, response } = await logInWithForm({});
      expect(page.text).not.toContain('remember_me');
      expect(cookieLifetime(response.headers['set-cookie'])).toBeCloseTo(14 * DAY, -1);
    });

    it('unticked, the session ends with the browser; ticked, it lasts the cookie’s age', async () => {
      await boot({ views: { login: { rememberMe: true } } });
      const unticked = await logInWithForm({});
      expect(unticked.page.text).toContain('<input type="checkbox" name="remember_me" value="on">');
      expect(cookieLifetime(unticked.response.headers['set-cookie'])).toBeNull();
      expect((await unticked.agent.get('/whoami').expect(200)).body.isAuthenticated).toBe(true);
      expect((await unticked.agent.get('/expiry').expect(200)).body.browserClose).toBe(true);

      const ticked = await logInWithForm({ remember_me: 'on' });
      expect(cookieLifetime(ticked.response.headers['set-cookie'])).toBeCloseTo(14 * DAY, -1);
      expect((await ticked.agent.get('/expiry').expect(200)).body.browserClose).toBe(false);
    });

    it('ends with the browser even when the login replaces another user’s session (a shared computer)', async () => {
      await boot({ views: { login: { rememberMe: true } } });
      await t.users.createUser({ username: 'dave', password: 'another horse' });
      const agent = request.agent(server);
      await agent.post('/login').send({ username: 'dave', password: 'another horse' }).expect(200);
      const page = await agent.get('/accounts/login').set('Accept', HTML).expect(200);
      const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
      const response = await agent
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token })
        .expect(302);
      expect(cookieLifetime(response.headers['set-cookie'])).toBeNull();
      expect((await agent.get('/whoami').expect(200)).body.username).toBe('carol');
      expect((await agent.get('/expiry').expect(200)).body.browserClose).toBe(true);
    });

    it('keeps the box as it was when the form comes back with an error', async () => {
      await boot({ views: { login: { rememberMe: true } } });
      const agent = request.agent(server);
      const page = await agent.get('/accounts/login').set('Accept', HTML).expect(200);
      const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
      const failed = await agent
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'carol', password: 'wrong', remember_me: 'on', csrfmiddlewaretoken: token })
        .expect(200);
      expect(failed.text).toContain('name="remember_me" value="on" checked');
    });
  });
});
