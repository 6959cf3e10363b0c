import 'reflect-metadata';
import { Injectable, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { jest } from '@jest/globals';
import request from 'supertest';
import { DataSource } from 'typeorm';
import {
  AllowAllUsersModelBackend,
  AuthModule,
  ImproperlyConfigured,
  ModelBackend,
  SessionRecord,
  authEntities,
  type AuthBackend,
  type AuthModuleOptions,
  type User,
} from 'nestjs-session-auth';
import { PasswordResetTokens } from 'nestjs-session-auth/passwords';
import { AuthMailer, type AuthMail } from 'nestjs-session-auth/views';
import { createTestApp, fastHashers, PagesController, PLATFORM, TEST_SECRET, type TestApp } from './support/test-app.js';

/** Collects mails instead of sending them; provided by the app, so the module uses this instance. */
@Injectable()
class CapturingMailer extends AuthMailer {
  sent: AuthMail[] = [];
  failWith?: Error;

  send(mail: AuthMail): void {
    if (this.failWith) throw this.failWith;
    this.sent.push(mail);
  }
}

type Agent = ReturnType<typeof request.agent>;

const INVALID_LOGIN = 'Please enter a correct username and password. Note that both fields may be case-sensitive.';
const HTML = 'text/html,application/xhtml+xml';

function csrfFrom(html: string): string {
  const match = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(html);
  if (!match) throw new Error(`No CSRF token in:\n${html}`);
  return match[1];
}

/** Never cached, never framed (clickjacking), never sniffed into another content type. */
function expectAuthPageHeaders(response: request.Response): void {
  expect(response.headers['cache-control']).toContain('no-store');
  expect(response.headers['x-frame-options']).toBe('DENY');
  expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  expect(response.headers['x-content-type-options']).toBe('nosniff');
}

describe('built-in views (views: true)', () => {
  let t: TestApp;
  let server: any;
  let mailer: CapturingMailer;
  let carol: User;

  async function boot(auth: Partial<AuthModuleOptions> = {}): Promise<void> {
    t = await createTestApp({
      auth: { views: true, mailer: CapturingMailer, ...auth },
      providers: [CapturingMailer],
    });
    server = t.app.getHttpServer();
    mailer = t.app.get(CapturingMailer);
    carol = await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
  }

  afterEach(() => t?.close());

  const sessionRows = () => t.app.get(DataSource).getRepository(SessionRecord).count({ where: { revoked: false } });
  const reload = async (user: User) => (await t.users.findById(String(user.id)))!;

  /** GET a form page and return its CSRF token. */
  async function formToken(agent: Agent, path: string): Promise<string> {
    const page = await agent.get(path).set('Accept', HTML).expect(200);
    return csrfFrom(page.text);
  }

  async function logIn(agent: Agent, username = 'carol', password = 'correct horse'): Promise<void> {
    const token = await formToken(agent, '/accounts/login');
    await agent
      .post('/accounts/login')
      .type('form')
      .send({ username, password, csrfmiddlewaretoken: token })
      .expect(302);
  }

  async function isLoggedIn(agent: Agent): Promise<boolean> {
    const { body } = await agent.get('/whoami').expect(200);
    return body.isAuthenticated;
  }

  describe('mounting', () => {
    it('mounts nothing by default: the views answer 404', async () => {
      t = await createTestApp();
      server = t.app.getHttpServer();
      for (const path of ['/accounts/login', '/accounts/password_reset', '/accounts/password_change', '/accounts/reset/done']) {
        await request(server).get(path).expect(404);
      }
      await request(server).post('/accounts/logout').expect(404);
    });

    it('serves the login form with labelled fields, a hidden next and a CSRF token, never cached', async () => {
      await boot();
      const response = await request(server).get('/accounts/login?next=/reports').set('Accept', HTML).expect(200);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expectAuthPageHeaders(response);
      expect(response.text).toContain('<label for="id_username">');
      expect(response.text).toContain('<label for="id_password">');
      expect(response.text).toContain('<input type="hidden" name="next" value="/reports">');
      expect(csrfFrom(response.text)).toMatch(/^[0-9a-f]{64}$/);
    });

    it('shows the "Log in with …" button of a backend of the app\'s own whose login starts elsewhere, as a form with the CSRF token', async () => {
      class CorporateSsoBackend implements AuthBackend {
        readonly loginButton = { label: 'Corporate <SSO>', provider: 'corp', action: '/sso/start' };
        authenticate() {
          return null;
        }
        getUser() {
          return null;
        }
      }
      await boot({ backends: [ModelBackend, CorporateSsoBackend] });
      const page = await request(server).get('/accounts/login').set('Accept', HTML).expect(200);
      const form = /<form class="provider" method="post" action="\/sso\/start">([\s\S]*?)<\/form>/.exec(page.text);
      expect(form).not.toBeNull();
      expect(form![1]).toContain(`<input type="hidden" name="csrfmiddlewaretoken" value="${csrfFrom(page.text)}">`);
      expect(form![1]).toContain('<input type="hidden" name="provider" value="corp">');
      expect(form![1]).toContain('<button type="submit">Log in with Corporate &lt;SSO&gt;</button>');
    });

    it('mounts the login view at a custom loginUrl', async () => {
      await boot({ loginUrl: '/signin' });
      await request(server).get('/accounts/login').expect(404);
      const page = await request(server).get('/signin').set('Accept', HTML).expect(200);
      expect(page.text).toContain('action="/signin"');
    });

    it('keeps the login and reset pages open with loginRequiredByDefault, but not password change', async () => {
      await boot({ loginRequiredByDefault: true });
      await request(server).get('/accounts/login').set('Accept', HTML).expect(200);
      await request(server).get('/accounts/password_reset').set('Accept', HTML).expect(200);
      await request(server).get('/accounts/password_reset/done').set('Accept', HTML).expect(200);
      await request(server).get('/accounts/reset/done').set('Accept', HTML).expect(200);
      await request(server).get('/accounts/reset/MQ/set-password').set('Accept', HTML).expect(200);
      await request(server)
        .get('/accounts/password_change')
        .set('Accept', HTML)
        .expect(302)
        .expect('Location', '/accounts/login?next=%2Faccounts%2Fpassword_change');
    });

    describe('with forRootAsync', () => {
      async function bootAsync(mount: { views?: boolean; loginUrl?: string }, fromFactory: Partial<AuthModuleOptions>) {
        @Module({
          imports: [
            TypeOrmModule.forRoot({ type: 'better-sqlite3', database: ':memory:', entities: [...authEntities], synchronize: true }),
            AuthModule.forRootAsync({
              ...mount,
              useFactory: () => ({ backends: [ModelBackend], session: { secret: TEST_SECRET }, passwordHashers: fastHashers, ...fromFactory }),
            }),
          ],
          controllers: [PagesController],
        })
        class AsyncAppModule {}
        const moduleRef = await Test.createTestingModule({ imports: [AsyncAppModule] }).compile();
        const app = moduleRef.createNestApplication({ logger: false });
        await app.init();
        return app;
      }

      it('mounts the views when views is passed next to useFactory', async () => {
        const app = await bootAsync({ views: true, loginUrl: '/signin' }, { loginUrl: '/signin' });
        try {
          await request(app.getHttpServer()).get('/signin').set('Accept', HTML).expect(200);
        } finally {
          await app.close();
        }
      });

      it('refuses to start when only the factory asks for views, naming the fix', async () => {
        await expect(bootAsync({}, { views: true })).rejects.toThrow(ImproperlyConfigured);
        await expect(bootAsync({}, { views: true })).rejects.toThrow(/pass views .* next to useFactory/);
      });

      it('refuses to start when the factory moves loginUrl away from the mounted login view', async () => {
        await expect(bootAsync({ views: true }, { loginUrl: '/signin' })).rejects.toThrow(/mounted at \/accounts\/login, but loginUrl is \/signin/);
      });
    });

    it.each([['not a URL'], ['ftp://example.com'], ['https://example.com/?next=x']])('refuses siteUrl %j at start-up', async (siteUrl) => {
      await expect(createTestApp({ auth: { views: true, siteUrl } })).rejects.toThrow(/siteUrl must be the site's public address/);
    });

    it('refuses a loginUrl on another site when the views are on', async () => {
      await expect(createTestApp({ auth: { views: true, loginUrl: 'https://sso.example.com/login' } })).rejects.toThrow(
        ImproperlyConfigured,
      );
    });
  });

  describe('login', () => {
    beforeEach(() => boot());

    it('logs in and goes to loginRedirectUrl without a next', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post('/accounts/login')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token })
        .expect(302)
        .expect('Location', '/');
      expectAuthPageHeaders(response);
      expect(await isLoggedIn(browser)).toBe(true);
    });

    it('goes to a safe next from the form, or from the query string', async () => {
      const browser = request.agent(server);
      let token = await formToken(browser, '/accounts/login');
      await browser
        .post('/accounts/login')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', next: '/reports?year=2026', csrfmiddlewaretoken: token })
        .expect(302)
        .expect('Location', '/reports?year=2026');

      const other = request.agent(server);
      token = await formToken(other, '/accounts/login');
      await other
        .post('/accounts/login?next=/from-query')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token })
        .expect(302)
        .expect('Location', '/from-query');
    });

    it('follows an absolute next to this very host when allowedHosts lists it', async () => {
      await t.close();
      await boot({ allowedHosts: ['testserver'] });
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      await browser
        .post('/accounts/login')
        .set('Host', 'testserver')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', next: 'http://testserver/inbox', csrfmiddlewaretoken: token })
        .expect(302)
        .expect('Location', 'http://testserver/inbox');
    });

    it('uses loginRedirectUrl from the options', async () => {
      await t.close();
      await boot({ loginRedirectUrl: '/dashboard' });
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      await browser
        .post('/accounts/login')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token })
        .expect(302)
        .expect('Location', '/dashboard');
    });

    describe('an attacker’s next is never followed: the user lands on loginRedirectUrl', () => {
      it.each([
        ['another host', 'http://evil.example/phish'],
        ['another host over https', 'https://evil.example/'],
        ['a scheme-relative URL', '//evil.example/'],
        ['a backslash trick', '/\\evil.example/'],
        ['backslashes', '\\\\evil.example'],
        ['three slashes', '///evil.example'],
        ['javascript:', 'javascript:alert(document.cookie)'],
        ['data:', 'data:text/html,<script>alert(1)</script>'],
        ['this host as user name of another', 'http://testserver@evil.example/'],
        ['a tab-split scheme-relative URL', '/\t/evil.example'],
        ['a header-splitting newline', '/ok\r\nSet-Cookie: stolen=1'],
        ['a NUL byte', '/ok\u0000//evil.example'],
        ['an over-long URL', `/${'a'.repeat(5000)}`],
      ])('%s', async (_label, next) => {
        const browser = request.agent(server);
        const token = await formToken(browser, '/accounts/login');
        const response = await browser
          .post('/accounts/login')
          .set('Host', 'testserver')
          .type('form')
          .send({ username: 'carol', password: 'correct horse', next, csrfmiddlewaretoken: token })
          .expect(302);
        expect(response.headers.location).toBe('/');
        expect([response.headers['set-cookie'] ?? []].flat().join('\n')).not.toContain('stolen');
      });

      it('nor one given as a repeated query parameter', async () => {
        const browser = request.agent(server);
        const token = await formToken(browser, '/accounts/login');
        await browser
          .post('/accounts/login?next=/fine&next=//evil.example')
          .type('form')
          .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token })
          .expect(302)
          .expect('Location', '/');
      });

      it('and the form does not carry it either', async () => {
        const page = await request(server)
          .get(`/accounts/login?next=${encodeURIComponent('//evil.example/')}`)
          .set('Accept', HTML)
          .expect(200);
        expect(page.text).toContain('<input type="hidden" name="next" value="">');
      });
    });

    it('shows the form again with the generic error for a wrong password (200)', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'carol', password: 'wrong', next: '/reports', csrfmiddlewaretoken: token })
        .expect(200);
      expectAuthPageHeaders(response);
      expect(response.text).toContain(INVALID_LOGIN);
      expect(response.text).toContain('value="carol"');
      expect(response.text).toContain('<input type="hidden" name="next" value="/reports">');
      expect(response.text).not.toContain('correct horse');
      expect(await isLoggedIn(browser)).toBe(false);
    });

    it('gives an unknown user exactly the same answer', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'nobody', password: 'wrong', csrfmiddlewaretoken: token })
        .expect(200);
      expect(response.text).toContain(INVALID_LOGIN);
    });

    it('does not reveal that an account is inactive (CVE-2018-6188)', async () => {
      await t.users.createUser({ username: 'erin', password: 'correct horse', isActive: false });
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'erin', password: 'correct horse', csrfmiddlewaretoken: token })
        .expect(200);
      expect(response.text).toContain(INVALID_LOGIN);
      expect(response.text).not.toContain('inactive');
    });

    it('says "This account is inactive." when a backend vouches for an inactive user', async () => {
      await t.close();
      await boot({ backends: [AllowAllUsersModelBackend] });
      await t.users.createUser({ username: 'erin', password: 'correct horse', isActive: false });
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'erin', password: 'correct horse', csrfmiddlewaretoken: token })
        .expect(200);
      expect(response.text).toContain('This account is inactive.');
      expect(await isLoggedIn(browser)).toBe(false);
    });

    it('escapes what it shows back: a script in the username stays text', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: '"><script>alert(1)</script>', password: 'x', csrfmiddlewaretoken: token })
        .expect(200);
      expect(response.text).not.toContain('<script>');
      expect(response.text).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
    });

    it('asks for missing fields without calling any backend', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'carol', csrfmiddlewaretoken: token })
        .expect(200);
      expect(response.text).toContain('This field is required.');
    });

    describe('JSON clients', () => {
      it('get a CSRF token from GET loginUrl and log in with JSON credentials', async () => {
        const client = request.agent(server);
        const { body } = await client.get('/accounts/login').set('Accept', 'application/json').expect(200);
        expect(body.csrfToken).toMatch(/^[0-9a-f]{64}$/);
        await client
          .post('/accounts/login')
          .set('X-CSRF-Token', body.csrfToken)
          .send({ username: 'carol', password: 'correct horse', next: '/api/me' })
          .expect(302)
          .expect('Location', '/api/me');
        expect(await isLoggedIn(client)).toBe(true);
      });

      it('get 401 JSON with the generic message for wrong credentials', async () => {
        const client = request.agent(server);
        const { body } = await client.get('/accounts/login').set('Accept', 'application/json').expect(200);
        const response = await client
          .post('/accounts/login')
          .set('X-CSRF-Token', body.csrfToken)
          .send({ username: 'carol', password: 'wrong' })
          .expect(401);
        expect(response.body).toMatchObject({ statusCode: 401, message: INVALID_LOGIN });
      });

      it('need the token too: a JSON login without one is refused (403)', async () => {
        const response = await request(server).post('/accounts/login').send({ username: 'carol', password: 'correct horse' }).expect(403);
        expect(response.body.message).toMatch(/CSRF verification failed/);
        expect(await sessionRows()).toBe(0);
      });
    });

    describe('bad input gets 400 and changes nothing', () => {
      it.each([
        ['a username sent twice', 'username=carol&username=carol&password=correct+horse'],
        ['a password sent twice', 'username=carol&password=correct+horse&password=correct+horse'],
        ['a NUL byte in the username', 'username=carol%00&password=correct+horse'],
        ['a NUL byte in the password', 'username=carol&password=correct+horse%00'],
        ['an over-long username', `username=${'c'.repeat(300)}&password=correct+horse`],
        ['an over-long password', `username=carol&password=${'p'.repeat(5000)}`],
      ])('%s', async (_label, form) => {
        const browser = request.agent(server);
        const token = await formToken(browser, '/accounts/login');
        const response = await browser
          .post('/accounts/login')
          .type('form')
          .send(`${form}&csrfmiddlewaretoken=${token}`)
          .expect(400);
        expect(response.text).toContain('cannot be right');
        expect(await isLoggedIn(browser)).toBe(false);
        expect((await reload(carol)).lastLogin).toBeNull();
      });

      it.each([
        ['an array username', { username: ['carol'], password: 'correct horse' }],
        ['an object password', { username: 'carol', password: { x: '1' } }],
        ['a number username', { username: 7, password: 'correct horse' }],
      ])('%s in JSON', async (_label, body) => {
        const browser = request.agent(server);
        const { body: page } = await browser.get('/accounts/login').set('Accept', 'application/json').expect(200);
        const response = await browser.post('/accounts/login').set('X-CSRF-Token', page.csrfToken).send(body).expect(400);
        expect(response.body.message).toContain('cannot be right');
        expect(await isLoggedIn(browser)).toBe(false);
        expect((await reload(carol)).lastLogin).toBeNull();
      });

      it('an oversized body → 413', async () => {
        const browser = request.agent(server);
        const token = await formToken(browser, '/accounts/login');
        await browser
          .post('/accounts/login')
          .type('form')
          // Over the default body limit of Express (100 kB) and of Fastify (1 MiB).
          .send({ username: 'carol', password: 'p'.repeat(1_100_000), csrfmiddlewaretoken: token })
          .expect(413);
        expect(await isLoggedIn(browser)).toBe(false);
      });
    });
  });

  describe('CSRF (every built-in form)', () => {
    beforeEach(() => boot());

    it('refuses a login POST without a token: 403, no session, nobody logged in', async () => {
      const response = await request(server)
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: 'carol', password: 'correct horse' })
        .expect(403);
      expectAuthPageHeaders(response);
      expect(response.text).toContain('CSRF verification failed');
      expect(response.headers['set-cookie']).toBeUndefined();
      expect(await sessionRows()).toBe(0);
      expect((await reload(carol)).lastLogin).toBeNull();
    });

    it.each([
      ['a forged token', () => 'f'.repeat(64)],
      ['an empty token', () => ''],
      ['a token of another length', () => 'abc'],
    ])('refuses %s', async (_label, forge) => {
      const browser = request.agent(server);
      await formToken(browser, '/accounts/login');
      await browser
        .post('/accounts/login')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: forge() })
        .expect(403);
      expect(await isLoggedIn(browser)).toBe(false);
    });

    it('refuses a token taken from another visitor’s session', async () => {
      const attacker = request.agent(server);
      const attackersToken = await formToken(attacker, '/accounts/login');
      const victim = request.agent(server);
      await formToken(victim, '/accounts/login');
      await victim
        .post('/accounts/login')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: attackersToken })
        .expect(403);
    });

    it('refuses a header token that disagrees even when the form field is right (the header wins)', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/login');
      await browser
        .post('/accounts/login')
        .set('X-CSRF-Token', 'f'.repeat(64))
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token })
        .expect(403);
    });

    it('issues a fresh token at login: the one from before login no longer works', async () => {
      const browser = request.agent(server);
      const before = await formToken(browser, '/accounts/login');
      await browser
        .post('/accounts/login')
        .type('form')
        .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: before })
        .expect(302);
      await browser.post('/accounts/logout').type('form').send({ csrfmiddlewaretoken: before }).expect(403);
      expect(await isLoggedIn(browser)).toBe(true);

      const after = await formToken(browser, '/accounts/password_change');
      expect(after).not.toBe(before);
      await browser.post('/accounts/logout').type('form').send({ csrfmiddlewaretoken: after }).expect(200);
      expect(await isLoggedIn(browser)).toBe(false);
    });

    it('answers a JSON client’s CSRF failure in JSON', async () => {
      const response = await request(server)
        .post('/accounts/password_reset')
        .set('Accept', 'application/json')
        .send({ email: 'carol@example.com' })
        .expect(403);
      expect(response.body).toMatchObject({ statusCode: 403 });
      expect(mailer.sent).toHaveLength(0);
    });

    it('keeps an anonymous visitor’s token in a signed cookie: viewing a form stores no session', async () => {
      for (let i = 0; i < 20; i++) {
        const response = await request(server).get('/accounts/login').set('Accept', HTML).expect(200);
        expect([response.headers['set-cookie']].flat().map((line: string) => line.split('=')[0])).toEqual(['csrftoken']);
      }
      expect(await sessionRows()).toBe(0);
    });

    it('refuses a token with a forged, altered or another visitor’s cookie', async () => {
      const visit = async () => {
        const page = await request(server).get('/accounts/login').set('Accept', 'application/json').expect(200);
        return { token: page.body.csrfToken as string, cookie: [page.headers['set-cookie']].flat()[0].split(';')[0] };
      };
      const mine = await visit();
      const theirs = await visit();
      const post = (cookie: string, token: string) =>
        request(server).post('/accounts/login').set('Accept', HTML).set('Cookie', cookie).type('form').send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token });
      const [name, value] = mine.cookie.split('=');
      const [token, signature] = value.split('.');
      await post(theirs.cookie, mine.token).expect(403);
      await post(`${name}=${mine.token}.${'A'.repeat(43)}`, mine.token).expect(403);
      await post(`${name}=${'0'.repeat(64)}.${signature}`, '0'.repeat(64)).expect(403);
      // One character changed (never to itself: a token that already ended in 0 made this pass as the real one).
      await post(mine.cookie, `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`).expect(403);
      await post(mine.cookie, mine.token).expect(302);
    });
  });

  describe('every page and answer of the views refuses to be framed or sniffed', () => {
    it('on each page a browser can be sent to, and on the JSON answers', async () => {
      await boot({ throttle: { addressRate: 0.001, addressBurst: 3 } });
      const browser = request.agent(server);
      const seen: Record<string, request.Response> = {};
      seen.login = await browser.get('/accounts/login').set('Accept', HTML).expect(200);
      const token = csrfFrom(seen.login.text);
      const post = (path: string, fields: Record<string, unknown> | string) =>
        browser.post(path).set('Accept', HTML).type('form').send(fields as never);
      seen.wrongPassword = await post('/accounts/login', { username: 'carol', password: 'wrong', csrfmiddlewaretoken: token }).expect(200);
      seen.malformed = await post('/accounts/login', `username=a&username=b&password=x&csrfmiddlewaretoken=${token}`).expect(400);
      seen.csrfFailure = await post('/accounts/login', { username: 'carol', password: 'wrong' }).expect(403);
      seen.loggedIn = await post('/accounts/login', { username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token }).expect(302);
      seen.passwordChange = await browser.get('/accounts/password_change').set('Accept', HTML).expect(200);
      seen.passwordChangeDone = await browser.get('/accounts/password_change/done').set('Accept', HTML).expect(200);
      seen.logoutByGet = await browser.get('/accounts/logout').set('Accept', HTML).expect(405);
      seen.loggedOut = await post('/accounts/logout', { csrfmiddlewaretoken: csrfFrom(seen.passwordChange.text) }).expect(200);
      seen.passwordReset = await browser.get('/accounts/password_reset').set('Accept', HTML).expect(200);
      seen.passwordResetDone = await browser.get('/accounts/password_reset/done').set('Accept', HTML).expect(200);
      seen.resetLinkInvalid = await browser.get('/accounts/reset/xx/set-password').set('Accept', HTML).expect(200);
      seen.resetComplete = await browser.get('/accounts/reset/done').set('Accept', HTML).expect(200);
      seen.json = await browser.get('/accounts/login').expect(200);
      const fresh = request.agent(server);
      const freshToken = csrfFrom((await fresh.get('/accounts/login').set('Accept', HTML)).text);
      for (let attempt = 0; attempt < 4; attempt++) {
        seen.throttled = await fresh.post('/accounts/login').set('Accept', HTML).type('form').send({ username: `nobody${attempt}`, password: 'x', csrfmiddlewaretoken: freshToken });
      }
      expect(seen.throttled.status).toBe(429);
      for (const [page, response] of Object.entries(seen)) {
        try {
          expectAuthPageHeaders(response);
        } catch (error) {
          throw new Error(`${page} (${response.status}): ${(error as Error).message}`);
        }
      }
    });
  });

  describe('logout', () => {
    beforeEach(() => boot());

    it('refuses GET with 405 and keeps the user logged in', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      const response = await browser.get('/accounts/logout').set('Accept', HTML).expect(405);
      expect(response.headers.allow).toBe('POST');
      expect(await isLoggedIn(browser)).toBe(true);
    });

    it('logs out with POST and shows the logged-out page (no next, no logout redirect configured)', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      const token = await formToken(browser, '/accounts/password_change');
      const response = await browser.post('/accounts/logout').set('Accept', HTML).type('form').send({ csrfmiddlewaretoken: token }).expect(200);
      expectAuthPageHeaders(response);
      expect(response.text).toContain('You have been logged out.');
      expect(await isLoggedIn(browser)).toBe(false);
    });

    it('goes to a safe next, and ignores a hostile one', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      let token = await formToken(browser, '/accounts/password_change');
      await browser.post('/accounts/logout').type('form').send({ csrfmiddlewaretoken: token, next: '/goodbye' }).expect(302).expect('Location', '/goodbye');

      await logIn(browser);
      token = await formToken(browser, '/accounts/password_change');
      await browser.post('/accounts/logout').set('Accept', HTML).type('form').send({ csrfmiddlewaretoken: token, next: '//evil.example' }).expect(200);
      expect(await isLoggedIn(browser)).toBe(false);
    });

    it('refuses a logout without the token: a cross-site form cannot log the user out', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      await browser.post('/accounts/logout').type('form').send({}).expect(403);
      expect(await isLoggedIn(browser)).toBe(true);
    });
  });

  describe('password change', () => {
    beforeEach(() => boot());

    async function changeForm(browser: Agent, fields: Record<string, string>) {
      const token = await formToken(browser, '/accounts/password_change');
      return browser.post('/accounts/password_change').set('Accept', HTML).type('form').send({ ...fields, csrfmiddlewaretoken: token });
    }

    it('sends anonymous browsers to log in, and answers anonymous scripts 401', async () => {
      await request(server).get('/accounts/password_change').set('Accept', HTML).expect(302);
      await request(server).get('/accounts/password_change/done').set('Accept', HTML).expect(302);
      await request(server).post('/accounts/password_change').send({}).expect(401);
    });

    it('shows a form with the three labelled password fields', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      const page = await browser.get('/accounts/password_change').set('Accept', HTML).expect(200);
      expectAuthPageHeaders(page);
      for (const field of ['old_password', 'new_password1', 'new_password2']) {
        expect(page.text).toContain(`<label for="id_${field}">`);
        expect(page.text).toContain(`name="${field}"`);
      }
    });

    it('changes the password, keeps this session and logs every other session out', async () => {
      const browser = request.agent(server);
      const otherDevice = request.agent(server);
      await logIn(browser);
      await logIn(otherDevice);
      const response = await changeForm(browser, {
        old_password: 'correct horse',
        new_password1: 'battery staple 42',
        new_password2: 'battery staple 42',
      });
      expect(response.status).toBe(302);
      await browser.get('/accounts/password_change/done').set('Accept', HTML).expect(200);
      expect(await isLoggedIn(browser)).toBe(true);
      expect(await isLoggedIn(otherDevice)).toBe(false);

      const stored = await reload(carol);
      expect(await t.users.checkPassword(stored, 'battery staple 42')).toBe(true);
      expect(await t.users.checkPassword(stored, 'correct horse')).toBe(false);
    });

    it('redirects to the done page', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      const response = await changeForm(browser, {
        old_password: 'correct horse',
        new_password1: 'battery staple 42',
        new_password2: 'battery staple 42',
      });
      expect(response.status).toBe(302);
      expect(response.headers.location).toBe('/accounts/password_change/done');
    });

    it.each([
      [
        'a wrong old password (password_incorrect)',
        { old_password: 'guess', new_password1: 'battery staple 42', new_password2: 'battery staple 42' },
        ['Your old password was entered incorrectly. Please enter it again.'],
      ],
      [
        'new passwords that differ (password_mismatch)',
        { old_password: 'correct horse', new_password1: 'battery staple 42', new_password2: 'battery staple 43' },
        ['The two password fields didn’t match.'],
      ],
      [
        'a new password the validators refuse, with every reason',
        { old_password: 'correct horse', new_password1: '1234567', new_password2: '1234567' },
        ['too short', 'too common', 'entirely numeric'],
      ],
      ['missing fields', { old_password: 'correct horse' }, ['This field is required.']],
    ])('refuses %s and keeps the old password', async (_label, fields, messages) => {
      const browser = request.agent(server);
      await logIn(browser);
      const response = await changeForm(browser, fields as Record<string, string>);
      expect(response.status).toBe(200);
      for (const message of messages) expect(response.text).toContain(message);
      expect(await t.users.checkPassword(await reload(carol), 'correct horse')).toBe(true);
      expect(await isLoggedIn(browser)).toBe(true);
    });

    it('refuses a change without the CSRF token and changes nothing', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      await browser
        .post('/accounts/password_change')
        .type('form')
        .send({ old_password: 'correct horse', new_password1: 'battery staple 42', new_password2: 'battery staple 42' })
        .expect(403);
      expect(await t.users.checkPassword(await reload(carol), 'correct horse')).toBe(true);
    });

    it('answers malformed fields with 400 and changes nothing', async () => {
      const browser = request.agent(server);
      await logIn(browser);
      const token = await formToken(browser, '/accounts/password_change');
      await browser
        .post('/accounts/password_change')
        .type('form')
        .send(`old_password=correct+horse&new_password1[]=a&new_password2=b&csrfmiddlewaretoken=${token}`)
        .expect(400);
      await browser
        .post('/accounts/password_change')
        .type('form')
        .send(`old_password=correct+horse&new_password1=new%00pass&new_password2=new%00pass&csrfmiddlewaretoken=${token}`)
        .expect(400);
      expect(await t.users.checkPassword(await reload(carol), 'correct horse')).toBe(true);
    });
  });

  describe('password reset request', () => {
    beforeEach(() => boot());

    async function requestReset(browser: Agent, email: string, host?: string) {
      const token = await formToken(browser, '/accounts/password_reset');
      const post = browser.post('/accounts/password_reset').set('Accept', HTML).type('form');
      if (host) post.set('Host', host);
      return post.send({ email, csrfmiddlewaretoken: token });
    }

    it('shows a form with a labelled email field', async () => {
      const page = await request(server).get('/accounts/password_reset').set('Accept', HTML).expect(200);
      expectAuthPageHeaders(page);
      expect(page.text).toContain('<label for="id_email">');
    });

    it('mails a reset link to the stored address and goes to the done page', async () => {
      const response = await requestReset(request.agent(server), 'CAROL@example.com');
      expect(response.status).toBe(302);
      expect(response.headers.location).toBe('/accounts/password_reset/done');
      expect(mailer.sent).toHaveLength(1);
      const [mail] = mailer.sent;
      expect(mail.to).toBe('carol@example.com');
      expect(mail.subject).not.toMatch(/[\r\n]/);
      expect(mail.text).toContain(mail.context.resetUrl);
      expect(mail.text).toContain('carol');
      expect(mail.context.resetUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/accounts\/reset\/[A-Za-z0-9_-]+\/[0-9a-z]+-[0-9a-f]{32}$/);
    });

    it('gives an unknown address exactly the same answer and sends nothing', async () => {
      const known = await requestReset(request.agent(server), 'carol@example.com');
      const unknown = await requestReset(request.agent(server), 'nobody@example.com');
      expect(unknown.status).toBe(known.status);
      expect(unknown.headers.location).toBe(known.headers.location);
      expect(unknown.text).toBe(known.text);
      expect(mailer.sent.map((mail) => mail.to)).toEqual(['carol@example.com']);
    });

    it('sends nothing to an inactive user or one without a usable password', async () => {
      await t.users.createUser({ username: 'erin', password: 'correct horse', email: 'erin@example.com', isActive: false });
      await t.users.createUser({ username: 'frank', email: 'frank@example.com' });
      await requestReset(request.agent(server), 'erin@example.com');
      await requestReset(request.agent(server), 'frank@example.com');
      expect(mailer.sent).toHaveLength(0);
    });

    it('sends nothing to a Unicode look-alike of a registered address', async () => {
      await requestReset(request.agent(server), 'carol@examp\u0131e.com');
      await requestReset(request.agent(server), 'c\uff41rol@example.com');
      expect(mailer.sent).toHaveLength(0);
    });

    it('mails every active account sharing the address', async () => {
      await t.users.createUser({ username: 'carol2', password: 'correct horse', email: 'carol@example.com' });
      await requestReset(request.agent(server), 'carol@example.com');
      expect(mailer.sent.map((mail) => mail.to)).toEqual(['carol@example.com', 'carol@example.com']);
      expect(new Set(mailer.sent.map((mail) => mail.context.uid)).size).toBe(2);
    });

    it('never builds the link from a foreign Host header without siteUrl', async () => {
      const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        const response = await requestReset(request.agent(server), 'carol@example.com', 'evil.example');
        expect(response.status).toBe(302);
        expect(mailer.sent).toHaveLength(0);
        expect(error).toHaveBeenCalledWith(expect.stringMatching(/set the siteUrl option/));
      } finally {
        error.mockRestore();
      }
    });

    it('builds links from siteUrl whatever the Host header says', async () => {
      await t.close();
      await boot({ siteUrl: 'https://accounts.example.com/' });
      await requestReset(request.agent(server), 'carol@example.com', 'evil.example');
      expect(mailer.sent).toHaveLength(1);
      expect(mailer.sent[0].context.resetUrl.startsWith('https://accounts.example.com/accounts/reset/')).toBe(true);
    });

    it('writes the mail to the log with the default mailer (development)', async () => {
      await t.close();
      t = await createTestApp({ auth: { views: true } });
      server = t.app.getHttpServer();
      await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
      const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
      try {
        await requestReset(request.agent(server), 'carol@example.com');
        await new Promise((resolve) => setImmediate(resolve));
        expect(log).toHaveBeenCalledWith(expect.stringMatching(/^To: carol@example\.com\nSubject: Password reset on .*\/accounts\/reset\//s));
      } finally {
        log.mockRestore();
      }
    });

    it('creates a mailer class the app does not provide itself', async () => {
      const created: AuthMail[] = [];
      @Injectable()
      class OwnMailer extends AuthMailer {
        send(mail: AuthMail): void {
          created.push(mail);
        }
      }
      await t.close();
      t = await createTestApp({ auth: { views: true, mailer: OwnMailer } });
      server = t.app.getHttpServer();
      await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
      await requestReset(request.agent(server), 'carol@example.com');
      expect(created.map((mail) => mail.to)).toEqual(['carol@example.com']);
    });

    it('still answers normally when the mailer fails, and logs it', async () => {
      mailer.failWith = new Error('SMTP is down');
      const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        const response = await requestReset(request.agent(server), 'carol@example.com');
        expect(response.status).toBe(302);
        await new Promise((resolve) => setImmediate(resolve));
        expect(error).toHaveBeenCalledWith(expect.stringMatching(/SMTP is down/));
      } finally {
        error.mockRestore();
      }
    });

    it.each([
      ['no email', {}, 200, 'This field is required.'],
      ['an invalid email', { email: 'not-an-email' }, 200, 'Enter a valid email address.'],
    ])('shows the form again for %s', async (_label, fields, status, message) => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/password_reset');
      const response = await browser
        .post('/accounts/password_reset')
        .set('Accept', HTML)
        .type('form')
        .send({ ...fields, csrfmiddlewaretoken: token });
      expect(response.status).toBe(status);
      expect(response.text).toContain(message);
      expect(mailer.sent).toHaveLength(0);
    });

    it('answers malformed input with 400 and sends nothing', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/password_reset');
      for (const form of ['email[]=carol@example.com', 'email=carol@example.com%00', `email=${'a'.repeat(300)}@example.com`]) {
        await browser.post('/accounts/password_reset').type('form').send(`${form}&csrfmiddlewaretoken=${token}`).expect(400);
      }
      expect(mailer.sent).toHaveLength(0);
    });

    it('refuses a request without the CSRF token and sends nothing', async () => {
      await request(server).post('/accounts/password_reset').type('form').send({ email: 'carol@example.com' }).expect(403);
      expect(mailer.sent).toHaveLength(0);
    });
  });

  describe('password reset confirm', () => {
    beforeEach(() => boot());

    /** The path of the link mailed to carol. */
    async function mailedLink(): Promise<string> {
      const browser = request.agent(server);
      const token = await formToken(browser, '/accounts/password_reset');
      await browser.post('/accounts/password_reset').type('form').send({ email: 'carol@example.com', csrfmiddlewaretoken: token }).expect(302);
      return new URL(mailer.sent.at(-1)!.context.resetUrl).pathname;
    }

    async function openLink(browser: Agent, link: string): Promise<string> {
      const response = await browser.get(link).set('Accept', HTML).expect(302);
      return response.headers.location;
    }

    async function setPassword(browser: Agent, formPath: string, fields: Record<string, string>) {
      const token = await formToken(browser, formPath);
      return browser.post(formPath).set('Accept', HTML).type('form').send({ ...fields, csrfmiddlewaretoken: token });
    }

    it('moves the token out of the URL into the session before showing the form', async () => {
      const link = await mailedLink();
      const token = link.split('/').at(-1)!;
      const browser = request.agent(server);
      const location = await openLink(browser, link);
      expect(location).toBe(`${link.slice(0, link.lastIndexOf('/'))}/set-password`);
      expect(location).not.toContain(token);
      const form = await browser.get(location).set('Accept', HTML).expect(200);
      expectAuthPageHeaders(form);
      expect(form.headers['referrer-policy']).toBe('same-origin');
      expect(form.text).toContain('<label for="id_new_password1">');
      expect(form.text).not.toContain(token);
    });

    it('sets the new password, logs other sessions out and sends to the complete page', async () => {
      const oldSession = request.agent(server);
      await logIn(oldSession);
      const browser = request.agent(server);
      const formPath = await openLink(browser, await mailedLink());
      const response = await setPassword(browser, formPath, { new_password1: 'battery staple 42', new_password2: 'battery staple 42' });
      expect(response.status).toBe(302);
      expect(response.headers.location).toBe('/accounts/reset/done');
      const complete = await browser.get('/accounts/reset/done').set('Accept', HTML).expect(200);
      expect(complete.text).toContain('href="/accounts/login"');

      expect(await t.users.checkPassword(await reload(carol), 'battery staple 42')).toBe(true);
      expect(await isLoggedIn(oldSession)).toBe(false);
      expect(await isLoggedIn(browser)).toBe(false);
    });

    it('works only once: the same link afterwards shows the invalid page', async () => {
      const link = await mailedLink();
      const browser = request.agent(server);
      const formPath = await openLink(browser, link);
      await setPassword(browser, formPath, { new_password1: 'battery staple 42', new_password2: 'battery staple 42' });

      const replay = await request.agent(server).get(link).set('Accept', HTML).expect(200);
      expect(replay.text).toContain('The password reset link was invalid');
      await browser.get(formPath).set('Accept', HTML).expect(200).expect(/The password reset link was invalid/);
    });

    it('dies when the user logs in before using it', async () => {
      const link = await mailedLink();
      await logIn(request.agent(server));
      const response = await request.agent(server).get(link).set('Accept', HTML).expect(200);
      expect(response.text).toContain('The password reset link was invalid');
    });

    it('refuses a link older than the timeout', async () => {
      const link = await mailedLink();
      t.app.get(PasswordResetTokens).timeout = -1;
      const response = await request.agent(server).get(link).set('Accept', HTML).expect(200);
      expect(response.text).toContain('The password reset link was invalid');
    });

    it('refuses carol’s token under another user’s uid', async () => {
      const dave = await t.users.createUser({ username: 'dave', password: 'correct horse', email: 'dave@example.com' });
      const link = await mailedLink();
      const token = link.split('/').at(-1);
      const daveUid = Buffer.from(String(dave.id)).toString('base64url');
      const response = await request.agent(server).get(`/accounts/reset/${daveUid}/${token}`).set('Accept', HTML).expect(200);
      expect(response.text).toContain('The password reset link was invalid');
    });

    it('refuses carol’s link on dave’s set-password form (the session token is checked against the uid)', async () => {
      const dave = await t.users.createUser({ username: 'dave', password: 'correct horse', email: 'dave@example.com' });
      const browser = request.agent(server);
      await openLink(browser, await mailedLink());
      const daveForm = `/accounts/reset/${Buffer.from(String(dave.id)).toString('base64url')}/set-password`;
      await browser.get(daveForm).set('Accept', HTML).expect(200).expect(/The password reset link was invalid/);
    });

    it('refuses the set-password form without a token in the session', async () => {
      const uid = Buffer.from(String(carol.id)).toString('base64url');
      const response = await request(server).get(`/accounts/reset/${uid}/set-password`).set('Accept', HTML).expect(200);
      expect(response.text).toContain('The password reset link was invalid');
    });

    it('keeps the token in the browser that opened the link: another browser cannot use the form', async () => {
      const formPath = await openLink(request.agent(server), await mailedLink());
      await request.agent(server).get(formPath).set('Accept', HTML).expect(200).expect(/The password reset link was invalid/);
    });

    it.each([
      ['bad base64', '!!!'],
      ['a non-canonical spelling of the id', 'MR'],
      ['an id that is not a number', Buffer.from('abc').toString('base64url')],
      ['an unknown id', Buffer.from('999999').toString('base64url')],
      ['a huge number', Buffer.from('9'.repeat(40)).toString('base64url')],
      ['an over-long uid', 'A'.repeat(90)],
    ])('shows the invalid page (200) for a uid with %s', async (_label, uid) => {
      const token = new PasswordResetTokens({ secrets: [TEST_SECRET] }).make(carol);
      const response = await request(server).get(`/accounts/reset/${uid}/${token}`).set('Accept', HTML).expect(200);
      expect(response.text).toContain('The password reset link was invalid');
    });

    it('refuses a uid longer than any id with a 4xx, whatever the platform answers (Fastify: 414)', async () => {
      const token = new PasswordResetTokens({ secrets: [TEST_SECRET] }).make(carol);
      const response = await request(server).get(`/accounts/reset/${'A'.repeat(500)}/${token}`).set('Accept', HTML);
      expect(response.status).toBe(PLATFORM === 'fastify' ? 414 : 200);
      if (response.status === 200) expect(response.text).toContain('The password reset link was invalid');
    });

    it('shows the invalid page for a forged token', async () => {
      const uid = Buffer.from(String(carol.id)).toString('base64url');
      const response = await request(server).get(`/accounts/reset/${uid}/mq0gxl-${'0'.repeat(32)}`).set('Accept', HTML).expect(200);
      expect(response.text).toContain('The password reset link was invalid');
    });

    it('leaves the password alone when the form is refused, and the link stays usable', async () => {
      const browser = request.agent(server);
      const formPath = await openLink(browser, await mailedLink());
      const mismatch = await setPassword(browser, formPath, { new_password1: 'battery staple 42', new_password2: 'battery staple 43' });
      expect(mismatch.status).toBe(200);
      expect(mismatch.text).toContain('The two password fields didn’t match.');
      const weak = await setPassword(browser, formPath, { new_password1: 'carol', new_password2: 'carol' });
      expect(weak.text).toContain('too short');
      expect(await t.users.checkPassword(await reload(carol), 'correct horse')).toBe(true);
      const done = await setPassword(browser, formPath, { new_password1: 'battery staple 42', new_password2: 'battery staple 42' });
      expect(done.status).toBe(302);
    });

    it('refuses a POST without the CSRF token and changes nothing', async () => {
      const browser = request.agent(server);
      const formPath = await openLink(browser, await mailedLink());
      await browser.post(formPath).type('form').send({ new_password1: 'battery staple 42', new_password2: 'battery staple 42' }).expect(403);
      expect(await t.users.checkPassword(await reload(carol), 'correct horse')).toBe(true);
    });

    it('refuses a POST to the set-password form without a session token', async () => {
      const browser = request.agent(server);
      const uid = Buffer.from(String(carol.id)).toString('base64url');
      const token = await formToken(browser, '/accounts/login');
      const response = await browser
        .post(`/accounts/reset/${uid}/set-password`)
        .type('form')
        .send({ new_password1: 'battery staple 42', new_password2: 'battery staple 42', csrfmiddlewaretoken: token })
        .expect(200);
      expect(response.text).toContain('The password reset link was invalid');
      expect(await t.users.checkPassword(await reload(carol), 'correct horse')).toBe(true);
    });

    it('answers malformed new passwords with 400 and changes nothing', async () => {
      const browser = request.agent(server);
      const formPath = await openLink(browser, await mailedLink());
      const token = await formToken(browser, formPath);
      await browser
        .post(formPath)
        .type('form')
        .send(`new_password1=a%00b&new_password2=a%00b&csrfmiddlewaretoken=${token}`)
        .expect(400);
      await browser
        .post(formPath)
        .type('form')
        .send(`new_password1=${'x'.repeat(5000)}&new_password2=${'x'.repeat(5000)}&csrfmiddlewaretoken=${token}`)
        .expect(400);
      expect(await t.users.checkPassword(await reload(carol), 'correct horse')).toBe(true);
    });
  });
});
