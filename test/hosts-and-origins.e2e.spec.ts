import { jest } from '@jest/globals';
import { Body, Controller, Get, HttpCode, Injectable, Logger, Post, Req, UnauthorizedException, UseGuards } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import { AuthService, CurrentUser, ImproperlyConfigured, ModelBackend, SameOriginGuard, type AuthModuleOptions } from 'nestjs-session-auth';
import { AuthMailer, type AuthMail } from 'nestjs-session-auth/views';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';
import { withNodeEnv } from './support/environment.js';

/**
 * Where the site thinks it is (the Host header, for reset links and `next` URLs) and where a
 * state-changing request came from (Origin, for login CSRF), from the attacker's side.
 */

@Injectable()
class CapturingMailer extends AuthMailer {
  sent: AuthMail[] = [];
  send(mail: AuthMail): void {
    this.sent.push(mail);
  }
}

const HTML = 'text/html,application/xhtml+xml';

describe('password reset links and the Host header', () => {
  let t: TestApp;
  let mailer: CapturingMailer;
  let server: any;
  let logged: jest.SpiedFunction<Logger['error']>;

  async function boot(auth: Partial<AuthModuleOptions> = {}, trustProxy?: string): Promise<void> {
    t = await createTestApp({ auth: { views: true, mailer: CapturingMailer, ...auth }, providers: [CapturingMailer], trustProxy });
    server = t.app.getHttpServer();
    mailer = t.app.get(CapturingMailer);
    await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
  }

  beforeEach(() => {
    logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await t?.close();
  });

  /** Ask for a reset link with the given headers on the POST; the form itself comes from localhost. */
  async function requestReset(email: string, headers: Record<string, string> = {}) {
    const browser = request.agent(server);
    const page = await browser.get('/accounts/password_reset').set('Accept', HTML).expect(200);
    const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
    const post = browser.post('/accounts/password_reset').set('Accept', HTML).type('form');
    for (const [name, value] of Object.entries(headers)) post.set(name, value);
    const response = await post.send({ email, csrfmiddlewaretoken: token });
    return { status: response.status, location: response.headers.location, text: response.text };
  }

  const HOSTILE_HOSTS = [
    'localhost:80@evil.com',
    'localhost:x',
    'evil.com',
    'localhost/evil.com',
    'localhost\\@evil.com',
    'localhost:80#@evil.com',
    'localhost:80?@evil.com',
    '[::1]:80@evil.com',
    'localhost:99999999',
    'localhost evil.com',
    'user:pass@localhost',
    'localhost.evil.com',
    'localhost%00.evil.com',
    '',
  ];

  it('never sends a link built from a hostile Host header, and answers every host and address the same', async () => {
    await boot();
    for (const host of HOSTILE_HOSTS) {
      const known = await requestReset('carol@example.com', { Host: host });
      const unknown = await requestReset('nobody@example.com', { Host: host });
      expect({ host, ...known }).toEqual({ host, ...unknown });
      expect(known.status).toBe(302);
      expect(known.location).toBe('/accounts/password_reset/done');
    }
    expect(mailer.sent).toEqual([]);
    expect(logged).toHaveBeenCalledWith(expect.stringMatching(/set the siteUrl option/));
  });

  it('builds the link from the host a trusted proxy forwarded, never from a Host header it overrides', async () => {
    await boot({ throttle: false }, 'loopback');
    await requestReset('carol@example.com', { Host: 'evil.com', 'X-Forwarded-Host': 'localhost:3000' });
    await requestReset('carol@example.com', { Host: 'localhost:3000', 'X-Forwarded-Host': 'evil.com' });
    expect(mailer.sent.map((mail) => new URL(mail.context.resetUrl).host)).toEqual(['localhost:3000']);
  });

  it('ignores X-Forwarded-Host when Express does not trust the proxy', async () => {
    await boot({ throttle: false });
    await requestReset('carol@example.com', { Host: 'localhost:3000', 'X-Forwarded-Host': 'evil.com' });
    expect(mailer.sent.map((mail) => new URL(mail.context.resetUrl).host)).toEqual(['localhost:3000']);
  });

  it('allows exactly the hosts of allowedHosts, with their port when one is given', async () => {
    await boot({ allowedHosts: ['shop.example', '.example.org', 'admin.example:8443'], throttle: false });
    for (const host of ['shop.example', 'shop.example:8080', 'example.org', 'www.example.org', 'admin.example:8443', 'localhost', 'admin.example', 'admin.example:443', 'evil.shop.example', 'example.org.evil.com']) {
      await requestReset('carol@example.com', { Host: host });
    }
    expect(mailer.sent.map((mail) => new URL(mail.context.resetUrl).host)).toEqual([
      'shop.example',
      'shop.example:8080',
      'example.org',
      'www.example.org',
      'admin.example:8443',
    ]);
  });

  it('builds links from siteUrl whatever the host, and takes siteUrl’s host as allowed', async () => {
    await boot({ siteUrl: 'https://accounts.example.com', throttle: false });
    for (const host of HOSTILE_HOSTS.slice(0, 3)) await requestReset('carol@example.com', { Host: host });
    expect(mailer.sent.map((mail) => new URL(mail.context.resetUrl).origin)).toEqual(Array(3).fill('https://accounts.example.com'));
  });

  it('refuses to start in production with the views mounted and no siteUrl', async () => {
    await withNodeEnv('production', async () => {
      await expect(createTestApp({ auth: { views: true } })).rejects.toThrow(ImproperlyConfigured);
      await expect(createTestApp({ auth: { views: true } })).rejects.toThrow(/set the siteUrl option/);
    });
  });

  it('refuses malformed allowedHosts and trustedOrigins at start-up', async () => {
    await expect(createTestApp({ auth: { allowedHosts: ['https://example.com'] } })).rejects.toThrow(/allowedHosts lists host names/);
    await expect(createTestApp({ auth: { trustedOrigins: ['example.com'] } })).rejects.toThrow(/trustedOrigins lists origins with their scheme/);
  });

  it('does not follow an absolute next to a host that is not allowed, even when the Host header names it', async () => {
    await boot();
    const browser = request.agent(server);
    const page = await browser.get('/accounts/login').set('Accept', HTML).expect(200);
    const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
    await browser
      .post('/accounts/login')
      .set('Host', 'evil.com')
      .type('form')
      .send({ username: 'carol', password: 'correct horse', next: 'http://evil.com/phish', csrfmiddlewaretoken: token })
      .expect(302)
      .expect('Location', '/');
  });
});

describe('password reset requests are throttled, and links die with the account', () => {
  let t: TestApp;
  let mailer: CapturingMailer;
  let server: any;

  beforeEach(async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    t = await createTestApp({ auth: { views: true, mailer: CapturingMailer }, providers: [CapturingMailer], trustProxy: true });
    server = t.app.getHttpServer();
    mailer = t.app.get(CapturingMailer);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await t.close();
  });

  async function requestReset(email: string, from = '203.0.113.9') {
    const browser = request.agent(server);
    const page = await browser.get('/accounts/password_reset').set('Accept', HTML).expect(200);
    const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
    const response = await browser
      .post('/accounts/password_reset')
      .set('X-Forwarded-For', from)
      .type('form')
      .send({ email, csrfmiddlewaretoken: token });
    return { status: response.status, location: response.headers.location };
  }

  it('mails one address at most 3 times an hour, whoever asks, with the same answer every time', async () => {
    await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await requestReset(i % 2 ? 'CAROL@example.com' : 'carol@example.com', `198.51.100.${i}`));
    expect(mailer.sent).toHaveLength(3);
    expect(new Set(answers.map((answer) => JSON.stringify(answer))).size).toBe(1);
  });

  it('sends at most 20 reset emails an hour on behalf of one client address', async () => {
    for (let i = 0; i < 25; i++) await t.users.createUser({ username: `user${i}`, password: 'correct horse', email: `user${i}@example.com` });
    for (let i = 0; i < 25; i++) await requestReset(`user${i}@example.com`);
    expect(mailer.sent).toHaveLength(20);
    await requestReset('user24@example.com', '192.0.2.1');
    expect(mailer.sent).toHaveLength(21);
  });

  it('refuses a reset link once its account is deactivated', async () => {
    const carol = await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
    await requestReset('carol@example.com');
    const link = new URL(mailer.sent[0].context.resetUrl).pathname;
    await t.users.repository.update({ id: carol.id }, { isActive: false });

    const browser = request.agent(server);
    const page = await browser.get(link).set('Accept', HTML);
    expect(page.status).toBe(200);
    expect(page.text).toContain('invalid');
    expect(page.headers.location).toBeUndefined();
  });
});

/** The quick start's login route, as the README writes it. */
@Controller()
class QuickStartController {
  constructor(private readonly auth: AuthService) {}
  @Post('login')
  @HttpCode(200)
  @UseGuards(SameOriginGuard)
  async login(@Req() req: Request, @Body() body: unknown) {
    const user = await this.auth.authenticate(req, body);
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(req, user);
    return { username: user.username };
  }
}

/** Who the request is, next to the quick start's /login (the test apps' own /login would clash). */
@Controller()
class WhoAmIController {
  @Get('whoami')
  whoami(@CurrentUser() user: { isAuthenticated: boolean }) {
    return { isAuthenticated: user.isAuthenticated };
  }
}

describe('login CSRF: another site cannot log the visitor into the attacker’s account', () => {
  let t: TestApp;
  let server: any;
  let origin: string;

  beforeEach(async () => {
    t = await createTestApp({
      auth: { backends: [ModelBackend], views: true, trustedOrigins: ['https://app.example.com', 'https://*.partner.example'] },
      controllers: [QuickStartController, WhoAmIController],
    });
    server = t.app.getHttpServer();
    await server.listen(0);
    origin = `http://127.0.0.1:${server.address().port}`;
    await t.users.createUser({ username: 'mallory', password: 'attacker password' });
  });
  afterEach(() => t.close());

  /** A form on the attacker's page posting to the quick start's /login. */
  const crossSitePost = (headers: Record<string, string>) =>
    request(origin).post('/login').set(headers).type('form').send({ username: 'mallory', password: 'attacker password' });

  it('refuses a cross-site form post to the quick start login, sets no cookie', async () => {
    const attempts: Record<string, string>[] = [
      { Origin: 'https://evil.example' },
      { Origin: 'null' },
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' },
      { Origin: 'https://app.example.com.evil.example' },
      { Origin: 'http://app.example.com' },
      // Text that only ends like a subdomain of the trusted wildcard, and another port of one.
      { Origin: 'https://evil.example/.partner.example' },
      { Origin: 'https://evil.example?.partner.example' },
      { Origin: 'https://www.partner.example:8443' },
    ];
    for (const headers of attempts) {
      const response = await crossSitePost(headers);
      expect({ headers, status: response.status }).toEqual({ headers, status: 403 });
      expect(response.body.message).toMatch(/^Origin checking failed: .* does not match any trusted origins\./);
      expect(sessionCookie(response.headers['set-cookie'])).toBeUndefined();
    }
  });

  it('lets the site’s own pages, trusted origins and non-browser clients log in', async () => {
    const attempts: Record<string, string>[] = [
      { Origin: origin, 'Sec-Fetch-Site': 'same-origin' },
      { 'Sec-Fetch-Site': 'same-origin' },
      { 'Sec-Fetch-Site': 'none' },
      { Origin: 'https://app.example.com' },
      { Origin: 'https://www.partner.example' },
      {},
    ];
    for (const headers of attempts) {
      const response = await crossSitePost(headers);
      expect({ headers, status: response.status }).toEqual({ headers, status: 200 });
    }
  });

  it('refuses a cross-site post to the built-in login view even with a valid CSRF token', async () => {
    const browser = request.agent(origin);
    const { body } = await browser.get('/accounts/login').set('Accept', 'application/json').expect(200);
    const response = await browser
      .post('/accounts/login')
      .set('Origin', 'https://evil.example')
      .set('Accept', HTML)
      .type('form')
      .send({ username: 'mallory', password: 'attacker password', csrfmiddlewaretoken: body.csrfToken });
    expect(response.status).toBe(403);
    expect(response.text).toContain('CSRF');
    expect((await browser.get('/whoami').expect(200)).body.isAuthenticated).toBe(false);

    await browser
      .post('/accounts/login')
      .set('Origin', origin)
      .type('form')
      .send({ username: 'mallory', password: 'attacker password', csrfmiddlewaretoken: body.csrfToken })
      .expect(302);
  });
});
