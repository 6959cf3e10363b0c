import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Group, Permission, UserManager, type User } from 'nestjs-session-auth';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { runCli } from '../src/cli/cli.program.js';
import { AppModule } from '../sample-app/src/app.module.js';
import type { AppOptions, DatabaseOptions } from '../sample-app/src/app.options.js';
import cliConfig from '../sample-app/src/cli.config.js';
import { DEVELOPMENT_SECRET, configFromEnv } from '../sample-app/src/config.js';
import { DictionaryBackend } from '../sample-app/src/dictionary.backend.js';
import { DirectoryService } from '../sample-app/src/directory.service.js';
import { seed } from '../sample-app/src/seed.js';
import { sessionCookie } from './support/test-app.js';
import { describeIf, slapdAvailable } from './support/services.js';
import { SAMPLE_DIRECTORY } from '../sample-app/src/ldap/directory.js';
import { Slapd } from '../sample-app/src/ldap/slapd.js';
import { startDemoIdentityProvider } from '../sample-app/src/oidc/demo-idp.js';
import { signInAtProvider } from './support/oidc.js';

type Agent = ReturnType<typeof request.agent>;

const PASSWORDS: Record<string, string> = {
  alice: 'wonderland',
  bob: 'builder',
  carol: 'correct horse battery staple',
  dana: 'daylight',
  erin: 'evergreen',
};

/** The hidden CSRF field of the form on `path`; fetching it gives the visitor a session. */
async function formToken(browser: Agent, path = '/login'): Promise<string> {
  const { text } = await browser.get(path).expect(200);
  const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(text)?.[1];
  if (!token) throw new Error(`No CSRF token in the page at ${path}`);
  return token;
}

/** Submit the login form as a browser would; resolves the response to the POST. */
async function submitLogin(browser: Agent, fields: Record<string, string>) {
  const csrfmiddlewaretoken = await formToken(browser);
  return browser.post('/login').type('form').send({ csrfmiddlewaretoken, ...fields });
}

async function logIn(browser: Agent, username: string, password = PASSWORDS[username]) {
  const response = await submitLogin(browser, { username, password });
  expect(response.status).toBe(302);
  return response;
}

const asBrowser = { Accept: 'text/html,application/xhtml+xml' };

/** The sample app as `npm start` runs it (tables created, data seeded), in the demo unless told otherwise. */
async function startSampleApp(database: DatabaseOptions, options: Partial<AppOptions> = {}): Promise<INestApplication> {
  const config: AppOptions = { database, sessionSecret: 'sample-app-test-secret', demo: true, ...options };
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(config)] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  await seed(app, config);
  return app;
}

/** The sample app on an in-memory SQLite database. */
describe('sample-app', () => {
  let app: INestApplication;
  let server: any;
  let users: UserManager;

  beforeEach(async () => {
    app = await startSampleApp({ type: 'better-sqlite3', database: ':memory:' });
    server = app.getHttpServer();
    users = app.get(UserManager);
  });
  afterEach(() => app.close());

  describe('home page', () => {
    it('greets a visitor with a login link and lists the demo accounts', async () => {
      const { text } = await request(server).get('/').expect(200);
      expect(text).toContain('<h1>Hello, visitor</h1>');
      expect(text).toContain('href="/login"');
      expect(text).not.toContain('action="/logout"');
      for (const name of Object.keys(PASSWORDS)) expect(text).toContain(`<td data-label="Username">${name}`);
      // Without LDAP_URL, dana and erin come from the in-memory stand-in, and the page says so.
      expect(text).toContain('<strong>DirectoryBackend</strong>: an in-memory stand-in');
      // Without an identity provider, the ways in it counts are three.
      expect(text).toContain('three ways to log in (a password stored here, a dictionary or a company directory), one session');
      expect(text).not.toContain('OidcBackend');
    });

    it('greets alice by name, with a logout button carrying the CSRF token', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'alice');
      const { text } = await browser.get('/').expect(200);
      expect(text).toContain('<h1>Hello, alice</h1>');
      expect(text).toMatch(/<form class="inline" method="post" action="\/logout">\s*<input type="hidden" name="csrfmiddlewaretoken" value="[0-9a-f]{64}">/);
      expect(text).not.toContain('<a class="button" href="/login">');
    });
  });

  describe('logging in', () => {
    it('logs alice in through DictionaryBackend and welcomes her once, on the dashboard', async () => {
      const browser = request.agent(server);
      const response = await logIn(browser, 'alice');
      expect(response.headers.location).toBe('/dashboard');
      const first = await browser.get('/dashboard').expect(200);
      expect(first.text).toContain('Welcome back!');
      expect(first.text).toContain('<dt>Logged in by</dt><dd><span class="badge">DictionaryBackend</span></dd>');
      expect(first.text).toContain('<code>sample.view_staff_page</code>');
      const second = await browser.get('/dashboard').expect(200);
      expect(second.text).not.toContain('Welcome back!');
    });

    it('records the backend that vouched for each demo user: ModelBackend, DictionaryBackend, DirectoryBackend', async () => {
      for (const [username, backend] of [
        ['carol', 'ModelBackend'],
        ['bob', 'DictionaryBackend'],
        ['erin', 'DirectoryBackend'],
      ]) {
        const browser = request.agent(server);
        await logIn(browser, username);
        const { text } = await browser.get('/dashboard').expect(200);
        expect(text).toContain(`<dd>${username}</dd>`);
        expect(text).toContain(`<span class="badge">${backend}</span>`);
      }
    });

    it('answers every failure with the same message and no login, whichever backend would have answered', async () => {
      const attempts = [
        { username: 'alice', password: 'looking-glass' },
        { username: 'carol', password: 'wonderland' },
        { username: 'dana', password: 'nightfall' },
        { username: 'nobody', password: 'wonderland' },
        // A missing password must not match a dictionary entry or a name the dictionary lacks.
        { username: 'carol' },
        { username: 'nobody' },
        // Names every JavaScript object has are not dictionary entries.
        { username: 'constructor', password: '' },
        { username: '__proto__', password: '[object Object]' },
      ];
      for (const fields of attempts) {
        const browser = request.agent(server);
        const response = await submitLogin(browser, fields as Record<string, string>);
        expect(response.status).toBe(200);
        expect(response.text).toContain('<p class="alert" role="alert">Invalid username or password.</p>');
        await browser.get('/dashboard').set(asBrowser).expect(302);
      }
    });

    it('keeps the username in the form after a failure, escaped like everything a visitor typed', async () => {
      const browser = request.agent(server);
      const response = await submitLogin(browser, { username: '"><script>alert(1)</script>', password: 'x' });
      expect(response.text).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
      expect(response.text).not.toContain('<script>alert(1)');
    });

    it('refuses credentials in shapes no form sends with 400, and logs nobody in', async () => {
      const browser = request.agent(server);
      const token = await formToken(browser);
      const bodies = [
        `csrfmiddlewaretoken=${token}&username[]=alice&password=wonderland`,
        `csrfmiddlewaretoken=${token}&username=alice&password[$ne]=x`,
        `csrfmiddlewaretoken=${token}&username=alice&password=${'x'.repeat(5000)}`,
        `csrfmiddlewaretoken=${token}&username=alice%00&password=wonderland`,
      ];
      for (const body of bodies) {
        const response = await browser.post('/login').type('form').set(asBrowser).send(body).expect(400);
        expect(response.text).toContain('Something in that request was wrong');
      }
      await browser.get('/dashboard').set(asBrowser).expect(302);
    });
  });

  describe('next: coming back where you were', () => {
    it('sends a visitor from the dashboard and the staff page to the login page with next (302)', async () => {
      await request(server).get('/dashboard').set(asBrowser).expect(302).expect('Location', '/login?next=%2Fdashboard');
      await request(server).get('/staff').set(asBrowser).expect(302).expect('Location', '/login?next=%2Fstaff');
    });

    it('puts a safe next in the login form and goes there after logging in', async () => {
      const browser = request.agent(server);
      const { text } = await browser.get('/login?next=%2Fstaff').expect(200);
      expect(text).toContain('<input type="hidden" name="next" value="/staff">');
      const response = await submitLogin(browser, { username: 'alice', password: 'wonderland', next: '/staff' });
      expect(response.headers.location).toBe('/staff');
      await browser.get('/staff').expect(200);
    });

    it('drops a next that leaves the site, in the form and after logging in', async () => {
      for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', ' ']) {
        const browser = request.agent(server);
        const { text } = await browser.get(`/login?next=${encodeURIComponent(next)}`).expect(200);
        expect(text).not.toContain('name="next"');
        const response = await submitLogin(browser, { username: 'bob', password: 'builder', next });
        expect(response.headers.location).toBe('/dashboard');
      }
    });
  });

  describe('CSRF, from the attacker’s side', () => {
    it('refuses a login POST without the session’s token with a 403 page, and logs nobody in', async () => {
      const victim = request.agent(server);
      await formToken(victim);
      const attacker = request.agent(server);
      const attackersToken = await formToken(attacker);
      for (const body of [
        { username: 'alice', password: 'wonderland' },
        { username: 'alice', password: 'wonderland', csrfmiddlewaretoken: attackersToken },
      ]) {
        const response = await victim.post('/login').type('form').set(asBrowser).send(body).expect(403);
        expect(response.text).toContain('This form has expired');
      }
      await victim.get('/dashboard').set(asBrowser).expect(302);
    });

    it('refuses a logout POST without the token: the user stays logged in', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'alice');
      await browser.post('/logout').type('form').set(asBrowser).send({}).expect(403);
      await browser.get('/dashboard').expect(200);
    });

    it('answers JSON clients with JSON', async () => {
      await request(server).post('/logout').set('Accept', 'application/json').expect(403).expect('Content-Type', /json/);
    });
  });

  describe('logging out', () => {
    it('is a POST that ends the session for good and says goodbye on the login page', async () => {
      const browser = request.agent(server);
      const login = await logIn(browser, 'alice');
      const oldCookie = String(login.headers['set-cookie']).split(';')[0];
      const token = await formToken(browser, '/');

      const response = await browser.post('/logout').type('form').send({ csrfmiddlewaretoken: token }).expect(302);
      expect(response.headers.location).toBe('/login');
      expect((await browser.get(response.headers.location).expect(200)).text).toContain('You have been logged out.');
      await browser.get('/dashboard').set(asBrowser).expect(302);
      // The cookie an attacker may have copied before is dead too.
      await request(server).get('/dashboard').set(asBrowser).set('Cookie', oldCookie).expect(302);
    });

    it('has no GET route: a link cannot log anybody out', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'alice');
      await browser.get('/logout').set(asBrowser).expect(404);
      await browser.get('/dashboard').expect(200);
    });
  });

  describe('staff page (@PermissionRequired)', () => {
    it('shows the holders of the permission to alice, who is in the staff group', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'alice');
      const { text } = await browser.get('/staff').expect(200);
      expect(text).toContain('<h1>Staff page</h1>');
      expect(text).toContain('<td data-label="Username">alice</td>');
      expect(text).not.toContain('<td data-label="Username">bob</td>');
    });

    it('answers 403 with a page of the site to bob, who lacks the permission; JSON to JSON clients', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'bob');
      const { text } = await browser.get('/staff').set(asBrowser).expect(403).expect('Content-Type', /html/);
      expect(text).toContain('You can’t see this page');
      expect(text).toContain('Signed in as <strong title="bob">bob</strong>');
      await browser.get('/staff').set('Accept', 'application/json').expect(403).expect('Content-Type', /json/);
    });
  });

  describe('sessions page', () => {
    async function device(userAgent: string, username = 'carol'): Promise<Agent> {
      const browser = request.agent(server).set('User-Agent', userAgent).set(asBrowser);
      await logIn(browser, username);
      return browser;
    }
    const loggedIn = async (browser: Agent) => (await browser.get('/dashboard').redirects(0)).status === 200;

    it('lists the user’s browsers, escaped, marks this one, and logs one out with its button', async () => {
      const laptop = await device('Laptop <b>1.0</b>');
      const phone = await device('Phone/2.0');
      const bob = await device('Bob/1.0', 'bob');
      const page = await laptop.get('/sessions').expect(200);
      expect(page.text).toContain('Laptop &lt;b&gt;1.0&lt;/b&gt;');
      expect(page.text).toContain('Phone/2.0');
      expect(page.text).not.toContain('Bob/1.0');
      expect(page.text).toContain('this browser');
      const action = /action="(\/sessions\/[^"]+\/end)"/.exec(page.text)![1];
      const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(page.text)![1];
      await laptop.post(action).type('form').send({}).expect(403);
      expect(await loggedIn(phone)).toBe(true);
      await laptop.post(action).type('form').send({ csrfmiddlewaretoken: token }).expect(302, /sessions/);
      expect((await laptop.get('/sessions').expect(200)).text).toContain('The session was logged out.');
      expect(await loggedIn(phone)).toBe(false);
      expect(await loggedIn(laptop)).toBe(true);
      expect(await loggedIn(bob)).toBe(true);
    });

    it('names each browser and its system, and shows the User-Agent it sent only on demand', async () => {
      const edge =
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87';
      const firefox = 'Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0';
      const laptop = await device(edge);
      await device(firefox);
      await device('curl/8.5.0');
      const { text } = await laptop.get('/sessions').expect(200);
      const cells = [...text.matchAll(/<td data-label="Browser">([\s\S]*?)<\/td>/g)].map((match) => match[1].replace(/\s+/g, ' ').trim());
      const raw = (userAgent: string) => `<details class="raw"><summary>User-Agent</summary><code>${userAgent}</code></details>`;
      expect(cells.sort()).toEqual([
        `Firefox 128 on Android ${raw(firefox)}`,
        `Microsoft Edge 126 on Windows ${raw(edge)}`,
        `Unknown browser ${raw('curl/8.5.0')}`,
      ]);
    });

    it('logs out every other browser with one button', async () => {
      const laptop = await device('Laptop/1.0');
      const phone = await device('Phone/2.0');
      const tablet = await device('Tablet/3.0');
      const token = await formToken(laptop, '/sessions');
      await laptop.post('/sessions/logout-others').type('form').send({ csrfmiddlewaretoken: token }).expect(302);
      expect(await loggedIn(phone)).toBe(false);
      expect(await loggedIn(tablet)).toBe(false);
      const page = await laptop.get('/sessions').expect(200);
      expect(page.text).toContain('2 other sessions were logged out.');
      expect(page.text).not.toContain('Log out my other devices');
    });

    it('sends visitors who are not logged in to the login page', async () => {
      const response = await request(server).get('/sessions').set(asBrowser).expect(302);
      expect(response.headers.location).toBe('/login?next=%2Fsessions');
    });
  });

  describe('password change', () => {
    const change = async (browser: Agent, fields: Record<string, string>) =>
      browser.post('/password').type('form').send({ csrfmiddlewaretoken: await formToken(browser, '/password'), ...fields });

    it('changes carol’s password: the old one stops working, this session stays, her other sessions end', async () => {
      const laptop = request.agent(server);
      const phone = request.agent(server);
      await logIn(laptop, 'carol');
      await logIn(phone, 'carol');
      const response = await change(laptop, {
        old_password: PASSWORDS.carol,
        new_password1: 'a brand new passphrase',
        new_password2: 'a brand new passphrase',
      });
      expect(response.status).toBe(302);
      expect(response.headers.location).toBe('/dashboard');
      expect((await laptop.get('/dashboard').expect(200)).text).toContain('Your password was changed.');
      await phone.get('/dashboard').set(asBrowser).expect(302);
      expect((await submitLogin(request.agent(server), { username: 'carol', password: PASSWORDS.carol })).status).toBe(200);
      await logIn(request.agent(server), 'carol', 'a brand new passphrase');
    });

    it('reports every problem at once and changes nothing', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'carol');
      const before = (await users.findByUsername('carol'))!.password;
      const wrongCurrent = await change(browser, { old_password: 'guess', new_password1: 'password', new_password2: 'password' });
      expect(wrongCurrent.status).toBe(200);
      expect(wrongCurrent.text).toContain('Your current password was entered incorrectly.');
      expect(wrongCurrent.text).toContain('This password is too common.');
      const mismatch = await change(browser, { old_password: PASSWORDS.carol, new_password1: 'one long phrase', new_password2: 'another long phrase' });
      expect(mismatch.text).toContain('The two new passwords didn’t match.');
      expect((await users.findByUsername('carol'))!.password).toBe(before);
    });

    it('stops checking the current password after 5 wrong guesses from a session (login throttle)', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'carol');
      for (let i = 0; i < 5; i++) {
        await change(browser, { old_password: `guess ${i}`, new_password1: 'a long new secret', new_password2: 'a long new secret' });
      }
      const before = (await users.findByUsername('carol'))!.password;
      const locked = await change(browser, { old_password: PASSWORDS.carol, new_password1: 'a long new secret', new_password2: 'a long new secret' });
      expect(locked.text).toContain('Too many incorrect passwords.');
      expect((await users.findByUsername('carol'))!.password).toBe(before);
    });

    it('tells users whose password another system checks that it cannot be changed here (400 to a POST)', async () => {
      const browser = request.agent(server);
      await logIn(browser, 'alice');
      expect((await browser.get('/password').expect(200)).text).toContain('<strong>DictionaryBackend</strong> checks it');
      const response = await change(browser, { old_password: '', new_password1: 'a long new secret', new_password2: 'a long new secret' });
      expect(response.status).toBe(400);
      expect(isPasswordUsable((await users.findByUsername('alice'))!.password)).toBe(false);
    });

    it('sends a visitor who is not logged in to log in, even for a POST', async () => {
      await request(server).get('/password').set(asBrowser).expect(302).expect('Location', '/login?next=%2Fpassword');
      await request(server).post('/password').set(asBrowser).expect(302);
    });
  });

  describe('the dictionary (DictionaryBackend)', () => {
    it('vouches only for its own entries, with the right password given as a string', async () => {
      const dictionary = app.get(DictionaryBackend);
      expect(await dictionary.authenticate(undefined, { username: 'alice', password: 'wonderland' })).toMatchObject({ username: 'alice' });
      // carol exists locally but not in the dictionary: a missing password must not match a missing entry.
      expect(await dictionary.authenticate(undefined, { username: 'carol' })).toBeNull();
      expect(await dictionary.authenticate(undefined, { username: 'carol', password: undefined })).toBeNull();
      expect(await dictionary.authenticate(undefined, { username: 'alice', password: ['wonderland'] })).toBeNull();
      expect(await dictionary.authenticate(undefined, { username: ['alice'], password: 'wonderland' })).toBeNull();
      for (const username of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
        expect(await dictionary.authenticate(undefined, { username, password: String(({} as any)[username]) })).toBeNull();
      }
    });

    it('refuses a local user an administrator deactivated', async () => {
      await users.repository.update({ username: 'bob' }, { isActive: false });
      expect(await app.get(DictionaryBackend).authenticate(undefined, { username: 'bob', password: 'builder' })).toBeNull();
    });
  });

  describe('the external directory (DirectoryBackend)', () => {
    it('creates dana’s local user at her first login, from the directory, with no usable local password', async () => {
      expect(await users.findByUsername('dana')).toBeNull();
      await logIn(request.agent(server), 'dana');
      const dana = (await users.findByUsername('dana'))!;
      expect(dana).toMatchObject({ email: 'dana@directory.example', isStaff: true, isSuperuser: false });
      expect(isPasswordUsable(dana.password)).toBe(false);
      await logIn(request.agent(server), 'dana');
      expect(await users.repository.countBy({ username: 'dana' })).toBe(1);
    });

    it('brings her local user back in line with the directory at every login: email, staff flag, staff page', async () => {
      const before = request.agent(server);
      await logIn(before, 'dana');
      await before.get('/staff').expect(200);

      app.get(DirectoryService).update('dana', { email: 'dana@new.example', staff: false });
      const after = request.agent(server);
      await logIn(after, 'dana');
      expect(await users.findByUsername('dana')).toMatchObject({ email: 'dana@new.example', isStaff: false });
      await after.get('/staff').set(asBrowser).expect(403);

      app.get(DirectoryService).update('dana', { staff: true });
      await logIn(after, 'dana');
      await after.get('/staff').expect(200);
    });

    it('creates nobody for a wrong directory password', async () => {
      const response = await submitLogin(request.agent(server), { username: 'dana', password: 'nightfall' });
      expect(response.text).toContain('Invalid username or password.');
      expect(await users.findByUsername('dana')).toBeNull();
    });

    it('never logs a directory entry into a local account of the same name that it did not create', async () => {
      // Made here, with a password of its own, before anyone logged in through the directory.
      const local = await users.createUser({ username: 'dana', password: 'a local password', email: 'dana@local.example' });
      const response = await submitLogin(request.agent(server), { username: 'dana', password: PASSWORDS.dana });
      expect(response.text).toContain('Invalid username or password.');
      expect(await users.findByUsername('dana')).toMatchObject({ id: local.id, email: 'dana@local.example', isStaff: false, password: local.password });
      await logIn(request.agent(server), 'dana', 'a local password');
    });

    it('lets a local administrator lock a directory account out', async () => {
      await logIn(request.agent(server), 'erin');
      await users.repository.update({ username: 'erin' }, { isActive: false });
      const response = await submitLogin(request.agent(server), { username: 'erin', password: PASSWORDS.erin });
      expect(response.text).toContain('Invalid username or password.');
    });
  });

  it('sends pages that are never cached, never framed and run no script', async () => {
    const response = await request(server).get('/login').expect(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; form-action 'self'; frame-ancestors 'none'/);
  });

  it('answers an unknown address with a 404 page', async () => {
    const { text } = await request(server).get('/nowhere').set(asBrowser).expect(404);
    expect(text).toContain('Page not found');
  });

  it('seeds only what is missing, so restarts keep what changed', async () => {
    const carol = (await users.findByUsername('carol'))!;
    await users.setPassword(carol, 'changed since the first start');
    await users.repository.save(carol);
    await seed(app, { demo: true });
    const data = app.get(DataSource);
    expect(await users.repository.count()).toBe(3);
    expect(await data.getRepository(Permission).countBy({ codename: 'sample.view_staff_page' })).toBe(1);
    expect(await data.getRepository(Group).countBy({ name: 'staff' })).toBe(1);
    expect(await users.checkPassword((await users.findByUsername('carol')) as User, 'changed since the first start')).toBe(true);
  });
});

/**
 * The sample as `NODE_ENV=production npm start` runs it, behind a proxy that terminates TLS:
 * the demo accounts' passwords are in this repository, so none of them may open a session.
 */
describe('sample-app in production (NODE_ENV=production)', () => {
  const productionSecret = 'a-production-secret-nobody-has-published-yet';
  const overHttps = { 'X-Forwarded-Proto': 'https' };
  let previousNodeEnv: string | undefined;
  let dir: string;
  let app: INestApplication | undefined;
  let server: any;
  let users: UserManager;

  async function startInProduction(database: DatabaseOptions): Promise<INestApplication> {
    process.env.NODE_ENV = 'production';
    app = await startSampleApp(database, { sessionSecret: productionSecret, demo: false });
    // The session cookie is Secure in production: express-session only sets it on a request it
    // sees as HTTPS, here through a trusted proxy's X-Forwarded-Proto.
    app.getHttpAdapter().getInstance().set('trust proxy', 'loopback');
    server = app.getHttpServer();
    users = app.get(UserManager);
    return app;
  }

  /** Fetch the login form over HTTPS and post it back, with its session cookie and CSRF token. */
  async function tryLogIn(username: string, password: string) {
    const form = await request(server).get('/login').set(overHttps).expect(200);
    // The anonymous visitor's CSRF token comes in a signed cookie.
    const cookie = sessionCookie(form.headers['set-cookie'], 'csrftoken');
    const csrfmiddlewaretoken = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(form.text)?.[1];
    expect({ cookie: Boolean(cookie), token: Boolean(csrfmiddlewaretoken) }).toEqual({ cookie: true, token: true });
    return request(server)
      .post('/login')
      .set(overHttps)
      .set('Cookie', cookie!)
      .type('form')
      .send({ csrfmiddlewaretoken, username, password });
  }

  beforeEach(() => {
    previousNodeEnv = process.env.NODE_ENV;
    dir = mkdtempSync(join(tmpdir(), 'sample-app-production-'));
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    if (previousNodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = previousNodeEnv;
    rmSync(dir, { recursive: true, force: true });
  });

  it('seeds the staff permission and group, and no user: no password is known to anybody', async () => {
    const production = await startInProduction({ type: 'better-sqlite3', database: ':memory:' });
    const seeded = await users.repository.find();
    expect(seeded.filter((user: User) => isPasswordUsable(user.password)).map((user: User) => user.username)).toEqual([]);
    expect(seeded).toEqual([]);
    const data = production.get(DataSource);
    expect(await data.getRepository(Permission).countBy({ codename: 'sample.view_staff_page' })).toBe(1);
    expect(await data.getRepository(Group).countBy({ name: 'staff' })).toBe(1);
  });

  it('lets nobody in with a published demo password, whichever backend used to accept it', async () => {
    await startInProduction({ type: 'better-sqlite3', database: ':memory:' });
    for (const [username, password] of Object.entries(PASSWORDS)) {
      const response = await tryLogIn(username, password);
      expect({ username, status: response.status }).toEqual({ username, status: 200 });
      expect(response.text).toContain('Invalid username or password.');
    }
    expect(await users.repository.count()).toBe(0);
    // The same form lets in an account made the production way (npm run createsuperuser).
    await users.createSuperuser({ username: 'root', password: 'a long new secret' });
    expect((await tryLogIn('root', 'a long new secret')).status).toBe(302);
  });

  it('locks the published password of a demo user left in a database the demo used first', async () => {
    const database: DatabaseOptions = { type: 'better-sqlite3', database: join(dir, 'db.sqlite') };
    process.env.NODE_ENV = 'development';
    const demo = await startSampleApp(database);
    await demo.close();

    await startInProduction(database);
    expect((await tryLogIn('carol', PASSWORDS.carol)).text).toContain('Invalid username or password.');
    const left = await users.repository.find();
    expect(left.filter((user: User) => isPasswordUsable(user.password)).map((user: User) => user.username)).toEqual([]);
  });

  it('lists no demo account or password on the home page or the login page', async () => {
    await startInProduction({ type: 'better-sqlite3', database: ':memory:' });
    for (const path of ['/', '/login']) {
      const { text } = await request(server).get(path).set(overHttps).expect(200);
      for (const [username, password] of Object.entries(PASSWORDS)) {
        expect({ path, username: new RegExp(`\\b${username}\\b`, 'i').test(text) }).toEqual({ path, username: false });
        expect({ path, password: text.includes(password) }).toEqual({ path, password: false });
      }
      expect(text).not.toContain('demo account');
    }
    // Only the user table is asked in production: the home page does not promise the demo's other ways.
    expect((await request(server).get('/').set(overHttps).expect(200)).text).toContain('one way to log in: a password stored here, one session');
  });
});

describe('npm run createsuperuser: the library’s CLI on the app’s database', () => {
  let dir: string;
  let app: INestApplication;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sample-app-cli-'));
    app = await startSampleApp({ type: 'better-sqlite3', database: join(dir, 'db.sqlite') });
  });
  afterEach(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects the CLI to the database the app uses, SQLite file or PostgreSQL', () => {
    for (const env of [{}, { DATABASE_URL: 'postgres://db.example/sample' }]) {
      expect(cliConfig(env)).toEqual({ dataSource: configFromEnv({ ...env, SESSION_SECRET: 'x'.repeat(32) }).database });
    }
  });

  it('creates a superuser there, who logs in through ModelBackend and sees the staff page', async () => {
    // The CLI loads dist/cli.config.js when run by npm; here the same options go through a JSON file.
    const { dataSource } = cliConfig({});
    const configFile = join(dir, 'cli.config.json');
    writeFileSync(configFile, JSON.stringify({ dataSource: { ...dataSource, database: join(dir, 'db.sqlite') } }));
    const stderr = new PassThrough();
    const code = await runCli(['--config', configFile, 'createsuperuser', '--noinput'], {
      stdin: Readable.from([]),
      stdout: new PassThrough(),
      stderr,
      cwd: dir,
      env: {
        NESTJS_SESSION_AUTH_SUPERUSER_USERNAME: 'root',
        NESTJS_SESSION_AUTH_SUPERUSER_EMAIL: 'root@example.com',
        NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD: 'a long new secret',
      },
    });
    expect({ code, stderr: String(stderr.read() ?? '') }).toEqual({ code: 0, stderr: '' });

    const browser = request.agent(app.getHttpServer());
    await logIn(browser, 'root', 'a long new secret');
    expect((await browser.get('/dashboard').expect(200)).text).toContain('<span class="badge">ModelBackend</span>');
    expect((await browser.get('/staff').expect(200)).text).toContain('<td data-label="Why">superuser</td>');
  });
});

describe('sample-app configuration', () => {
  const database = { DATABASE_URL: 'postgres://localhost/sample' };

  it('uses PostgreSQL when DATABASE_URL is set', () => {
    const config = configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32), PORT: '8080' });
    expect(config).toEqual({
      port: 8080,
      sessionSecret: 'x'.repeat(32),
      database: { type: 'postgres', url: database.DATABASE_URL },
      demo: true,
    });
  });

  it('takes the directory from LDAP_URL, and keeps the in-memory one without it', () => {
    expect(configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32), LDAP_URL: 'ldap://127.0.0.1:3389' }).ldapUrl).toBe('ldap://127.0.0.1:3389');
    expect(configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32) }).ldapUrl).toBeUndefined();
    expect(configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32), LDAP_URL: '' }).ldapUrl).toBeUndefined();
  });

  it('takes another identity provider from IDP_URL, which needs its client id and secret', () => {
    const env = { ...database, SESSION_SECRET: 'x'.repeat(32), IDP_URL: 'https://login.example.com' };
    expect(configFromEnv({ ...env, IDP_CLIENT_ID: 'site', IDP_CLIENT_SECRET: 's3cret' }).identityProvider).toEqual({
      issuer: 'https://login.example.com',
      clientId: 'site',
      clientSecret: 's3cret',
      label: 'login.example.com',
    });
    expect(() => configFromEnv(env)).toThrow(/IDP_CLIENT_ID must be set/);
    expect(configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32) }).identityProvider).toBeUndefined();
  });

  it('turns the demo (its accounts, backends and page listings) off when NODE_ENV=production', () => {
    expect(configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32), NODE_ENV: 'development' }).demo).toBe(true);
    expect(configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32), NODE_ENV: 'production' }).demo).toBe(false);
  });

  it('warns loudly about the development secret, and refuses it in production', () => {
    const warnings: string[] = [];
    expect(configFromEnv({ ...database }, (message) => warnings.push(message)).sessionSecret).toBe(DEVELOPMENT_SECRET);
    expect(warnings.join('\n')).toContain('SESSION_SECRET is not set');
    expect(() => configFromEnv({ ...database, NODE_ENV: 'production' })).toThrow(/SESSION_SECRET/);
    expect(() => configFromEnv({ ...database, NODE_ENV: 'production', SESSION_SECRET: DEVELOPMENT_SECRET })).toThrow(/SESSION_SECRET/);
  });
});

/** The sample with LDAP_URL: dana and erin from a real OpenLDAP (`npm run ldap`'s directory). */
describeIf(slapdAvailable())('sample-app with its directory on a real OpenLDAP', () => {
  let slapd: Slapd;
  let app: INestApplication;
  let server: any;

  beforeAll(async () => {
    slapd = await Slapd.start(SAMPLE_DIRECTORY);
  });
  afterAll(() => slapd?.close());
  beforeEach(async () => {
    await slapd.resume();
    app = await startSampleApp({ type: 'better-sqlite3', database: ':memory:' }, { ldapUrl: slapd.url });
    server = app.getHttpServer();
  });
  afterEach(() => app.close());

  it('says on the home page which directory answers', async () => {
    const { text } = await request(server).get('/').expect(200);
    expect(text).toContain(`<strong>LdapBackend</strong>: the OpenLDAP server at ${slapd.url}`);
  });

  it('logs dana in through the directory, creates her local user from it, and her staff group opens the staff page', async () => {
    const browser = request.agent(server);
    await logIn(browser, 'dana', 'daylight');
    const dashboard = await browser.get('/dashboard').expect(200);
    expect(dashboard.text).toContain('<span class="badge">LdapBackend</span>');
    expect(dashboard.text).toContain('dana@directory.example');
    await browser.get('/staff').set(asBrowser).expect(200);
    const dana = (await app.get(UserManager).findByUsername('dana'))!;
    expect(isPasswordUsable(dana.password)).toBe(false);
    expect(dana.isStaff).toBe(true);
  });

  it('refuses erin the staff page, and a wrong password with the usual message', async () => {
    const erin = request.agent(server);
    await logIn(erin, 'erin', 'evergreen');
    await erin.get('/staff').set(asBrowser).expect(403);
    const wrong = await submitLogin(request.agent(server), { username: 'dana', password: 'nightfall' });
    expect(wrong.status).toBe(200);
    expect(wrong.text).toContain('Invalid username or password.');
  });

  it('keeps dana’s local user when the directory is started afresh on the same data, as `npm run ldap` does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sample-app-ldap-db-'));
    const database: DatabaseOptions = { type: 'better-sqlite3', database: join(dir, 'db.sqlite') };
    const again = await Slapd.start(SAMPLE_DIRECTORY);
    try {
      const first = await startSampleApp(database, { ldapUrl: slapd.url });
      await logIn(request.agent(first.getHttpServer()), 'dana', 'daylight');
      const dana = (await first.get(UserManager).findByUsername('dana'))!;
      await first.close();
      const second = await startSampleApp(database, { ldapUrl: again.url });
      try {
        await logIn(request.agent(second.getHttpServer()), 'dana', 'daylight');
        expect(await second.get(UserManager).findByUsername('dana')).toMatchObject({ id: dana.id });
      } finally {
        await second.close();
      }
    } finally {
      await again.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers 503 while the directory is down, never “wrong password”', async () => {
    await slapd.stop();
    const response = await submitLogin(request.agent(server).set(asBrowser), { username: 'dana', password: 'daylight' });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('30');
    expect(response.text).not.toContain('Invalid username or password.');
  });
});

/** The sample's "Log in with the demo provider": its own OpenID Connect provider, as `npm start` runs it. */
describe('sample-app with its demo identity provider', () => {
  const SITE = 'http://localhost:3000';
  let idp: Awaited<ReturnType<typeof startDemoIdentityProvider>>;
  let app: INestApplication;
  let server: any;

  beforeAll(async () => {
    idp = await startDemoIdentityProvider([SITE], 0);
  });
  afterAll(() => idp?.provider.close());
  beforeEach(async () => {
    app = await startSampleApp({ type: 'better-sqlite3', database: ':memory:' }, { identityProvider: idp.options });
    server = app.getHttpServer();
  });
  afterEach(() => app.close());

  it('offers the button with the provider’s demo account, and logs fiona in through the provider', async () => {
    const browser = request.agent(server).set('Host', 'localhost:3000');
    const page = await browser.get('/login?next=%2Fdashboard').expect(200);
    // A form with the CSRF token, not a link: another site cannot start a login in a visitor's browser.
    const form = /<form class="actions" method="post" action="\/oidc\/authenticate">([\s\S]*?)<\/form>/.exec(page.text)!;
    expect(form[1]).toContain('<button type="submit">Log in with the demo provider</button>');
    const fields = Object.fromEntries([...form[1].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((match) => [match[1], match[2]]));
    expect(fields).toEqual({ csrfmiddlewaretoken: expect.stringMatching(/^[0-9a-f]{64}$/), provider: 'demo-idp', next: '/dashboard' });
    expect(page.text).toContain('<code>fiona@idp.example</code>, password <code>starlight</code>');
    await browser.get('/oidc/authenticate?provider=demo-idp&next=%2Fdashboard').expect(405);
    const started = await browser.post('/oidc/authenticate').type('form').send(fields).expect(303);
    const callback = await signInAtProvider(started.headers.location, 'fiona@idp.example', 'starlight', `${SITE}/oidc/callback/demo-idp`);
    const done = await browser.get(`${callback.pathname}${callback.search}`).expect(302);
    expect(done.headers.location).toBe('/dashboard');
    const dashboard = await browser.get('/dashboard').expect(200);
    expect(dashboard.text).toContain('<span class="badge">demo-idp</span>');
    expect(dashboard.text).toContain('fiona@idp.example');
    const fiona = (await app.get(UserManager).findByUsername('fiona@idp.example'))!;
    expect(isPasswordUsable(fiona.password)).toBe(false);
  });

  it('counts the provider among the ways in on the home page, with its demo account and how it decides', async () => {
    const { text } = await request(server).get('/').expect(200);
    expect(text).toContain(
      'four ways to log in (a password stored here, a dictionary, a company directory or an OpenID Connect provider), one session',
    );
    expect(text).toContain('<code>fiona@idp.example</code>, password <code>starlight</code>');
    expect(text).toContain('<strong>OidcBackend</strong> is the “Log in with the demo provider” button');
  });

  it('dresses the provider’s pages like the site: a phone’s viewport, the site’s stylesheet allowed by its hash, no script, forms to itself and the site only', async () => {
    const browser = request.agent(server).set('Host', 'localhost:3000');
    const csrfmiddlewaretoken = await formToken(browser);
    const started = await browser.post('/oidc/authenticate').type('form').send({ csrfmiddlewaretoken, provider: 'demo-idp' }).expect(303);
    // The browser at the provider: its redirect to the sign-in page sets the interaction's cookie.
    const authorize = await fetch(started.headers.location, { redirect: 'manual' });
    const cookie = authorize.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ');
    const signIn = await fetch(new URL(authorize.headers.get('location')!, idp.provider.issuer), { headers: { cookie } });
    const wrongPassword = await fetch(signIn.url, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login: 'fiona@idp.example', password: 'wrong' }).toString(),
    });
    const refused = await fetch(`${idp.provider.issuer}/auth?client_id=nobody&response_type=code&scope=openid`, { headers: { accept: 'text/html' } });
    const expired = await fetch(`${idp.provider.issuer}/interaction/no-such-interaction`, { headers: { accept: 'text/html' } });
    const pages = { signIn, wrongPassword, refused, expired };
    const siteStyle = /<style>([\s\S]*?)<\/style>/.exec((await browser.get('/login').expect(200)).text)![1];
    expect(Object.fromEntries(Object.entries(pages).map(([name, response]) => [name, response.status]))).toEqual({
      signIn: 200,
      wrongPassword: 200,
      refused: 400,
      expired: 400,
    });
    for (const [name, response] of Object.entries(pages)) {
      const text = await response.text();
      const style = /<style>([\s\S]*?)<\/style>/.exec(text)?.[1] ?? '';
      const hash = createHash('sha256').update(style).digest('base64');
      expect({ name, policy: response.headers.get('content-security-policy') }).toEqual({
        name,
        policy: `default-src 'none'; style-src 'sha256-${hash}'; form-action 'self' http://localhost:3000; frame-ancestors 'none'; base-uri 'none'`,
      });
      expect({ name, frames: response.headers.get('x-frame-options'), cache: response.headers.get('cache-control') }).toEqual({ name, frames: 'DENY', cache: 'no-store' });
      expect({ name, viewport: text.includes('<meta name="viewport" content="width=device-width, initial-scale=1">'), script: /<script/i.test(text) }).toEqual({
        name,
        viewport: true,
        script: false,
      });
      // The site's own stylesheet: the provider looks like the rest of the demo.
      expect({ name, sameStyle: style === siteStyle }).toEqual({ name, sameStyle: true });
    }
  });

  it('starts on another port when the one asked for is taken, so npm start never fails for it', async () => {
    const taken = Number(new URL(idp.provider.issuer).port);
    const second = await startDemoIdentityProvider([SITE], taken);
    try {
      expect(Number(new URL(second.provider.issuer).port)).not.toBe(taken);
      expect((await fetch(`${second.provider.issuer}/.well-known/openid-configuration`)).status).toBe(200);
    } finally {
      await second.provider.close();
    }
  });

  it('refuses a wrong password at the provider: nobody comes back logged in', async () => {
    const browser = request.agent(server).set('Host', 'localhost:3000');
    const csrfmiddlewaretoken = await formToken(browser);
    const started = await browser.post('/oidc/authenticate').type('form').send({ csrfmiddlewaretoken, provider: 'demo-idp' }).expect(303);
    await expect(signInAtProvider(started.headers.location, 'fiona@idp.example', 'wrong', `${SITE}/oidc/callback/demo-idp`)).rejects.toThrow();
    expect((await browser.get('/dashboard').set(asBrowser).redirects(0)).status).toBe(302);
  });
});
