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
        await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Log in' }).click()]);
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
        await context.close();
        context = await browser.newContext({ baseURL, viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
        page = await context.newPage();
        const fits = async () => {
          const { scroll, width } = await page.evaluate(() => {
            const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
            return { scroll: root.scrollWidth, width: root.clientWidth };
          });
          expect({ path: path(), scroll }).toEqual({ path: path(), scroll: width });
          for (const label of ['Home', 'Dashboard', 'Staff', 'Password']) {
            const link = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true });
            expect(await link.isVisible()).toBe(true);
            const box = (await link.boundingBox())!;
            expect(box.x >= 0 && box.x + box.width <= width).toBe(true);
          }
        };
        await page.goto('/login');
        await fits();
        await logInWithTheForm('alice', 'wonderland');
        for (const target of ['/', '/dashboard', '/staff', '/password']) {
          await page.goto(target);
          await fits();
        }
        await page.goto('/dashboard');
        await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-phone.png'), animations: 'disabled', fullPage: true });
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
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Demo identity provider');
      await page.getByLabel('Email').fill('fiona@idp.example');
      await page.getByLabel('Password').fill('starlight');
      await Promise.all([page.waitForURL(`${baseURL}/dashboard`), page.getByRole('button', { name: 'Sign in' }).click()]);
      expect(await page.getByText('Logged in by').locator('xpath=following-sibling::dd[1]').innerText()).toBe('demo-idp');
      expect(await page.getByText('Email').locator('xpath=following-sibling::dd[1]').innerText()).toBe('fiona@idp.example');
    } finally {
      await context.close();
    }
  });
});
