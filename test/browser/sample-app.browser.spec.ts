import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumFound, launchChromium } from '../support/chromium.js';
import { describeIf, slapdAvailable } from '../support/services.js';
import { SAMPLE_DIRECTORY } from '../../sample-app/src/ldap/directory.js';
import { Slapd } from '../../sample-app/src/ldap/slapd.js';
import { startDemoIdentityProvider } from '../../sample-app/src/oidc/demo-idp.js';
import { createServer } from 'node:net';
import { AppModule } from '../../sample-app/src/app.module.js';
import type { AppOptions } from '../../sample-app/src/app.options.js';
import { seed } from '../../sample-app/src/seed.js';
import { UserManager } from 'nestjs-session-auth';

/*
 * The sample site as a person uses it: Debian's Chromium (`test/support/chromium.ts`) against the
 * app listening on a loopback port, on a fresh SQLite file. The same run saves the screenshots the
 * README shows.
 */

/** The sample app on a fresh SQLite file in `dataDir`, seeded for the demo, listening on a loopback port. */
async function startSampleSite(dataDir: string, options: Partial<AppOptions> = {}, port = 0): Promise<{ app: INestApplication; baseURL: string }> {
  const app = await NestFactory.create(
    AppModule.forRoot({
      database: { type: 'better-sqlite3', database: join(dataDir, 'db.sqlite') },
      sessionSecret: 'browser-test-secret-that-is-long-enough',
      demo: true,
      ...options,
    }),
    { logger: false },
  );
  await seed(app, { demo: true });
  await app.listen(port, '127.0.0.1');
  return { app, baseURL: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

/** A phone's screen, as a phone's browser reports it (a touch screen, `<meta name="viewport">` honoured). */
const PHONE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };

/** Real browsers' User-Agents: one long word each, as the sessions page receives them. */
const EDGE_ON_WINDOWS =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87';
const SAFARI_ON_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

/**
 * The page is laid out at the width of the screen (a page without a viewport is laid out 980 px
 * wide and zoomed out, a mobile browser widens one that overflows) and nothing in it is wider:
 * no sideways scrolling.
 */
async function expectToFit(page: Page, width: number): Promise<void> {
  const measured = await page.evaluate(() => {
    const { document, innerWidth } = globalThis as unknown as { document: { documentElement: { scrollWidth: number } }; innerWidth: number };
    return { innerWidth, scrollWidth: document.documentElement.scrollWidth };
  });
  const where = new URL(page.url()).pathname;
  expect({ where, innerWidth: measured.innerWidth, fits: measured.scrollWidth <= measured.innerWidth }).toEqual({ where, innerWidth: width, fits: true });
}

/** Fill in the provider's sign-in page and send it; resolves once the next page has loaded. */
async function signInAtTheProvider(page: Page, login: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(login);
  await page.getByLabel('Password').fill(password);
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Sign in' }).click()]);
}

describe('the sample site on a loopback port', () => {
  let app: INestApplication;
  let dataDir: string;
  let baseURL: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sample-app-browser-'));
    ({ app, baseURL } = await startSampleSite(dataDir));
  });

  afterAll(async () => {
    await app?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates its SQLite file and serves the home and login pages over HTTP', async () => {
    expect(existsSync(join(dataDir, 'db.sqlite'))).toBe(true);
    const home = await fetch(`${baseURL}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('<h1>Hello, visitor</h1>');
    const login = await fetch(`${baseURL}/login`);
    expect(await login.text()).toContain('<label for="username">Username</label>');
  });

  {
    describeIf(chromiumFound)('in Chromium', () => {
      let browser: Browser;
      let context: BrowserContext;
      let page: Page;
      /** What the browser reports as an error, e.g. a style the CSP refused (error statuses are tested apart). */
      let consoleErrors: string[];

      beforeAll(async () => {
        browser = await launchChromium();
      });
      afterAll(() => browser?.close());

      beforeEach(async () => {
        // A fresh context per test: its own cookie jar, like a new visitor.
        context = await browser.newContext({ baseURL, viewport: { width: 1100, height: 600 } });
        page = await context.newPage();
        consoleErrors = [];
        page.on('console', (message) => {
          if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) consoleErrors.push(message.text());
        });
      });
      afterEach(async () => {
        await context.close();
        expect(consoleErrors).toEqual([]);
      });

      const heading = () => page.getByRole('heading', { level: 1 }).innerText();
      const path = () => {
        const url = new URL(page.url());
        return url.pathname + url.search;
      };

      async function logInWithTheForm(username: string, password: string): Promise<void> {
        await page.getByLabel('Username').fill(username);
        await page.getByLabel('Password').fill(password);
        await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Log in', exact: true }).click()]);
      }

      /** A session of `username` in another browser, which stays logged in. */
      async function logInElsewhere(userAgent: string, username: string, password: string): Promise<void> {
        const elsewhere = await browser.newContext({ baseURL, userAgent });
        const other = await elsewhere.newPage();
        await other.goto('/login');
        await other.getByLabel('Username').fill(username);
        await other.getByLabel('Password').fill(password);
        await Promise.all([other.waitForURL('**/dashboard'), other.getByRole('button', { name: 'Log in', exact: true }).click()]);
        await elsewhere.close();
      }

      it('follows the login link from home, logs alice in by the labelled fields and shows the dashboard with the flash', async () => {
        await page.goto('/');
        expect(await heading()).toBe('Hello, visitor');
        await page.getByRole('main').getByRole('link', { name: 'Log in' }).click();
        await page.waitForURL('**/login');
        expect(await heading()).toBe('Log in');
        mkdirSync(SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOTS, 'login.png'), animations: 'disabled' });

        await logInWithTheForm('alice', 'wonderland');
        expect(path()).toBe('/dashboard');
        expect(await page.getByRole('status').innerText()).toBe('Welcome back!');
        expect(await heading()).toBe('Dashboard');
        expect(await page.getByText('Logged in by').locator('xpath=following-sibling::dd[1]').innerText()).toBe('DictionaryBackend');
        await page.screenshot({ path: join(SCREENSHOTS, 'dashboard.png'), animations: 'disabled' });

        await page.getByRole('link', { name: 'Home' }).click();
        await page.waitForURL(`${baseURL}/`);
        expect(await heading()).toBe('Hello, alice');
        expect(await page.getByRole('button', { name: 'Log out' }).isVisible()).toBe(true);
      });

      it('fits every page at phone width: no sideways scrolling, and the navigation stays on screen', async () => {
        await logInElsewhere(EDGE_ON_WINDOWS, 'alice', 'wonderland');
        await logInElsewhere(SAFARI_ON_IPHONE, 'alice', 'wonderland');
        await context.close();
        context = await browser.newContext({ baseURL, ...PHONE });
        page = await context.newPage();
        const fits = async () => {
          await expectToFit(page, PHONE.viewport.width);
          for (const label of ['Home', 'Dashboard', 'Staff', 'Password', 'Sessions']) {
            const link = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true });
            expect(await link.isVisible()).toBe(true);
            const box = (await link.boundingBox())!;
            expect(box.x >= 0 && box.x + box.width <= PHONE.viewport.width).toBe(true);
          }
        };
        // A visitor's pages: home, the login form (and its error), a 404.
        for (const target of ['/', '/login', '/nowhere']) {
          await page.goto(target);
          await fits();
        }
        await page.goto('/login');
        await logInWithTheForm('alice', 'looking-glass');
        expect(await page.getByRole('alert').isVisible()).toBe(true);
        await fits();
        // alice's pages, the sessions page with each User-Agent unfolded.
        await logInWithTheForm('alice', 'wonderland');
        for (const target of ['/', '/dashboard', '/staff', '/password', '/sessions']) {
          await page.goto(target);
          await fits();
        }
        expect(await page.getByRole('cell', { name: /^Microsoft Edge 126 on Windows/ }).isVisible()).toBe(true);
        for (const summary of await page.locator('summary').all()) await summary.click();
        expect(await page.getByText(EDGE_ON_WINDOWS, { exact: true }).isVisible()).toBe(true);
        await fits();
        // A form whose CSRF token went stale: the site's "expired" page.
        await page.goto('/dashboard');
        await page.locator('form[action="/logout"] input[name="csrfmiddlewaretoken"]').evaluate((input) => input.setAttribute('value', 'stale'));
        await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Log out' }).click()]);
        expect(await heading()).toBe('This form has expired');
        await fits();
        await page.goto('/dashboard');
        await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-phone.png'), animations: 'disabled', fullPage: true });
      });

      it('fits every page at a tablet’s width too, where the login page’s two columns no longer fit side by side', async () => {
        await context.close();
        context = await browser.newContext({ baseURL, viewport: { width: 768, height: 1024 } });
        page = await context.newPage();
        await page.goto('/');
        await expectToFit(page, 768);
        await page.goto('/login');
        await expectToFit(page, 768);
        await logInWithTheForm('alice', 'wonderland');
        for (const target of ['/', '/dashboard', '/staff', '/password', '/sessions']) {
          await page.goto(target);
          await expectToFit(page, 768);
        }
      });

      it('keeps a long username in the header at phone width: cut short on screen, whole in its title and on the dashboard', async () => {
        // As long as an email an identity provider may give for a name.
        const username = 'maximiliana.featherstonehaugh-vandersteen@research.idp.example';
        const users = app.get(UserManager);
        if (!(await users.findByUsername(username))) await users.createUser({ username, password: 'a long name, a long password' });
        await context.close();
        context = await browser.newContext({ baseURL, ...PHONE });
        page = await context.newPage();
        await page.goto('/login');
        await logInWithTheForm(username, 'a long name, a long password');
        for (const target of ['/', '/dashboard', '/password', '/sessions']) {
          await page.goto(target);
          await expectToFit(page, PHONE.viewport.width);
          const name = page.locator('.account strong');
          expect(await name.getAttribute('title')).toBe(username);
          expect(await name.textContent()).toBe(username);
          const box = (await page.locator('.account').boundingBox())!;
          expect(box.x >= 0 && box.x + box.width <= PHONE.viewport.width).toBe(true);
          expect(await page.getByRole('button', { name: 'Log out' }).isVisible()).toBe(true);
        }
        await page.goto('/dashboard');
        expect(await page.getByText('Username').locator('xpath=following-sibling::dd[1]').innerText()).toBe(username);
      });

      it('names each browser on the sessions page and fits it at desktop width, the User-Agent unfolded', async () => {
        await logInElsewhere(EDGE_ON_WINDOWS, 'carol', 'correct horse battery staple');
        await logInElsewhere(SAFARI_ON_IPHONE, 'carol', 'correct horse battery staple');
        await page.goto('/login');
        await logInWithTheForm('carol', 'correct horse battery staple');
        await page.goto('/sessions');
        const browsers = await page.locator('td[data-label="Browser"]').evaluateAll((cells) =>
          cells.map((cell) => (cell as unknown as { firstChild: { textContent: string } }).firstChild.textContent.trim()),
        );
        expect(browsers.sort()).toEqual(expect.arrayContaining(['Microsoft Edge 126 on Windows', 'Safari 17 on iOS']));
        expect(await page.getByText(SAFARI_ON_IPHONE, { exact: true }).isVisible()).toBe(false);
        for (const summary of await page.locator('summary').all()) await summary.click();
        expect(await page.getByText(SAFARI_ON_IPHONE, { exact: true }).isVisible()).toBe(true);
        await expectToFit(page, 1100);
      });

      it('sends a visitor from a protected page to log in, then back to that page (next)', async () => {
        await page.goto('/staff');
        expect(path()).toBe('/login?next=%2Fstaff');
        await logInWithTheForm('alice', 'wonderland');
        expect(path()).toBe('/staff');
        expect(await heading()).toBe('Staff page');
      });

      it('shows the error for a wrong password, keeps the username and logs nobody in', async () => {
        await page.goto('/login');
        await logInWithTheForm('alice', 'looking-glass');
        expect(await page.getByRole('alert').innerText()).toBe('Invalid username or password.');
        expect(await page.getByLabel('Username').inputValue()).toBe('alice');
        expect(await page.getByLabel('Password').inputValue()).toBe('');
        await page.goto('/dashboard');
        expect(path()).toBe('/login?next=%2Fdashboard');
      });

      it('logs out with the button: back on the login page, told so, and the dashboard is closed again', async () => {
        await page.goto('/login');
        await logInWithTheForm('bob', 'builder');
        expect(path()).toBe('/dashboard');
        await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Log out' }).click()]);
        expect(path()).toBe('/login');
        expect(await page.getByRole('status').innerText()).toBe('You have been logged out.');
        expect(await page.getByRole('button', { name: 'Log out' }).count()).toBe(0);
        await page.goto('/dashboard');
        expect(path()).toBe('/login?next=%2Fdashboard');
      });

      it('shows bob, who lacks the permission, the 403 page of the site on the staff page', async () => {
        await page.goto('/login');
        await logInWithTheForm('bob', 'builder');
        const response = await page.goto('/staff');
        expect(response?.status()).toBe(403);
        expect(await heading()).toBe('You can’t see this page');
      });
    });
  }
});

describeIf(chromiumFound && slapdAvailable())('the sample site with its directory on a real OpenLDAP, in Chromium', () => {
  let slapd: Slapd;
  let app: INestApplication;
  let dataDir: string;
  let browser: Browser;
  let baseURL: string;

  beforeAll(async () => {
    slapd = await Slapd.start(SAMPLE_DIRECTORY);
    dataDir = mkdtempSync(join(tmpdir(), 'sample-app-ldap-'));
    ({ app, baseURL } = await startSampleSite(dataDir, { ldapUrl: slapd.url }));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await slapd?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('says which directory is in use, logs dana in through it and opens the staff page her directory group grants', async () => {
    const context = await browser.newContext({ baseURL, viewport: { width: 1100, height: 600 } });
    try {
      const page = await context.newPage();
      await page.goto('/');
      expect(await page.getByRole('main').innerText()).toContain(`LdapBackend: the OpenLDAP server at ${slapd.url}`);
      await page.goto('/login');
      await page.getByLabel('Username').fill('dana');
      await page.getByLabel('Password').fill('daylight');
      await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Log in' }).click()]);
      expect(new URL(page.url()).pathname).toBe('/dashboard');
      expect(await page.getByText('Logged in by').locator('xpath=following-sibling::dd[1]').innerText()).toBe('LdapBackend');
      expect(await page.getByText('Email').locator('xpath=following-sibling::dd[1]').innerText()).toBe('dana@directory.example');
      const staff = await page.goto('/staff');
      expect(staff?.status()).toBe(200);
    } finally {
      await context.close();
    }
  });
});

describeIf(chromiumFound)('the sample site’s "Log in with the demo provider", in Chromium', () => {
  let idp: Awaited<ReturnType<typeof startDemoIdentityProvider>>;
  let app: INestApplication;
  let dataDir: string;
  let browser: Browser;
  let baseURL: string;

  beforeAll(async () => {
    // The provider knows the site's callback before the site starts: the site's port is chosen first.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    baseURL = `http://127.0.0.1:${port}`;
    idp = await startDemoIdentityProvider([baseURL], 0);
    dataDir = mkdtempSync(join(tmpdir(), 'sample-app-oidc-'));
    ({ app } = await startSampleSite(dataDir, { identityProvider: idp.options }, port));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await idp?.provider.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('clicks through the provider’s login page and comes back logged in', async () => {
    const context = await browser.newContext({ baseURL, viewport: { width: 1100, height: 600 } });
    try {
      const page = await context.newPage();
      await page.goto('/dashboard');
      expect(new URL(page.url()).pathname).toBe('/login');
      await Promise.all([page.waitForURL(`${idp.provider.issuer}/interaction/**`), page.getByRole('button', { name: 'Log in with the demo provider' }).click()]);
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Sign in');
      expect(await page.getByRole('banner').innerText()).toContain('Demo identity provider');
      await page.getByLabel('Email').fill('fiona@idp.example');
      await page.getByLabel('Password').fill('starlight');
      await Promise.all([page.waitForURL(`${baseURL}/dashboard`), page.getByRole('button', { name: 'Sign in' }).click()]);
      expect(await page.getByText('Logged in by').locator('xpath=following-sibling::dd[1]').innerText()).toBe('demo-idp');
      expect(await page.getByText('Email').locator('xpath=following-sibling::dd[1]').innerText()).toBe('fiona@idp.example');
    } finally {
      await context.close();
    }
  });

  it('dresses the provider’s pages like the site, under the same kind of policy, and fits them and fiona’s pages at phone width', async () => {
    const context = await browser.newContext({ baseURL, ...PHONE });
    const consoleErrors: string[] = [];
    try {
      const page = await context.newPage();
      // A style or a form the policy refused is reported here.
      page.on('console', (message) => {
        if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) consoleErrors.push(message.text());
      });
      const heading = () => page.getByRole('heading', { level: 1 }).innerText();
      await page.goto('/');
      expect(await page.getByRole('main').innerText()).toContain('four ways to log in');
      await expectToFit(page, PHONE.viewport.width);
      await page.goto('/login');
      await Promise.all([page.waitForURL(`${idp.provider.issuer}/interaction/**`), page.getByRole('button', { name: 'Log in with the demo provider' }).click()]);
      await expectToFit(page, PHONE.viewport.width);
      // The site's stylesheet styles it: a refused one would leave the browser's grey button.
      const background = (element: unknown) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(element).backgroundColor;
      expect(await page.getByRole('button', { name: 'Sign in' }).evaluate(background)).toBe('rgb(79, 70, 229)');

      await signInAtTheProvider(page, 'fiona@idp.example', 'wrong');
      expect(await page.getByRole('alert').innerText()).toBe('Wrong email or password.');
      expect(await page.getByLabel('Email').inputValue()).toBe('fiona@idp.example');
      await expectToFit(page, PHONE.viewport.width);
      await signInAtTheProvider(page, 'fiona@idp.example', 'starlight');
      expect(new URL(page.url()).origin).toBe(baseURL);
      for (const target of ['/', '/dashboard', '/sessions']) {
        await page.goto(target);
        await expectToFit(page, PHONE.viewport.width);
        expect(await page.locator('.account strong').getAttribute('title')).toBe('fiona@idp.example');
      }

      // The provider's other pages: its sign-out question (fiona is still signed in there), its error page.
      await page.goto(`${idp.provider.issuer}/session/end`);
      expect(await heading()).toBe('Sign out of the demo provider?');
      await expectToFit(page, PHONE.viewport.width);
      const refused = await page.goto(`${idp.provider.issuer}/auth?client_id=nobody&response_type=code&scope=openid`);
      expect(refused?.status()).toBe(400);
      expect(await heading()).toBe('The sign-in cannot go on');
      await expectToFit(page, PHONE.viewport.width);
      expect(consoleErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
