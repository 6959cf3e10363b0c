import { Controller, Get, Header } from '@nestjs/common';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CurrentUser } from 'nestjs-session-auth';
import { chromiumFound, launchChromium } from '../support/chromium.js';
import { describeIf } from '../support/services.js';
import { createTestApp, PagesController, type TestApp } from '../support/test-app.js';

/*
 * Cross-site WebSocket hijacking, in a real browser: the visitor is logged in on the app, and a
 * page served from another port of the same host opens a socket to the app. Chromium sends the
 * session cookie with that handshake (cookies are not scoped by port, and the page is same-site),
 * and no CORS check applies to WebSockets: only the module's origin check stands in the way.
 */

@WebSocketGateway()
class WhoAmIGateway {
  @SubscribeMessage('whoami')
  whoami(@CurrentUser() user: any) {
    return { event: 'whoami', data: user.isAuthenticated ? user.username : 'anonymous' };
  }
}

/** A page that loads socket.io's client from the app; the test asks who it is through it. */
const page = (app: string) => `<!doctype html><title>socket</title><script src="${app}/socket.io/socket.io.js"></script>`;

let appOrigin = '';

@Controller()
class SocketPageController {
  @Get('socket-page')
  @Header('Content-Type', 'text/html; charset=utf-8')
  show() {
    return page(appOrigin);
  }
}

describeIf(chromiumFound)('a WebSocket opened in Chromium by a page on another port of the same host', () => {
  let t: TestApp;
  let other: Server;
  let otherOrigin: string;
  let browser: Browser;
  let context: BrowserContext;
  let tab: Page;

  beforeAll(async () => {
    t = await createTestApp({ providers: [WhoAmIGateway], controllers: [PagesController, SocketPageController], platform: 'express' });
    await t.app.listen(0, '127.0.0.1');
    appOrigin = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    // The other application: a page of its own, on another port of 127.0.0.1.
    other = createServer((_request, response) => response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page(appOrigin)));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => other?.close(resolve));
    await t?.close();
  });

  beforeEach(async () => {
    context = await browser.newContext();
    tab = await context.newPage();
  });
  afterEach(() => context.close());

  /** Open a socket.io connection (the websocket transport) to the app from the page in the tab, and ask who this is. */
  function askWhoAmI(): Promise<string> {
    return tab.evaluate(
      (app) =>
        new Promise<string>((resolve) => {
          const socket = (globalThis as any).io(app, { transports: ['websocket'], reconnection: false });
          socket.on('connect', () => socket.emit('whoami', {}));
          socket.on('whoami', (answer: string) => {
            socket.disconnect();
            resolve(answer);
          });
          socket.on('connect_error', (error: Error) => resolve(`connect_error: ${error.message}`));
        }),
      appOrigin,
    );
  }

  it('reads the user from the app’s own page, and anonymous from the page on the other port', async () => {
    await tab.goto(`${appOrigin}/socket-page`);
    const login = await tab.evaluate(async () => {
      const response = await fetch('/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: 'carol', password: 'correct horse' }),
      });
      return response.status;
    });
    expect(login).toBe(200);
    expect(await askWhoAmI()).toBe('carol');

    await tab.goto(`${otherOrigin}/`);
    // The browser has the cookie for this host, and sends it with the other page's handshake.
    expect((await context.cookies(appOrigin)).map((cookie) => cookie.name)).toContain('sessionid');
    expect(await askWhoAmI()).toBe('anonymous');

    // Back on the app's page the same browser is carol again.
    await tab.goto(`${appOrigin}/socket-page`);
    expect(await askWhoAmI()).toBe('carol');
  });
});

/*
 * JSONP polling, in a real browser: the app on plain HTTP at app.corp.test, the visitor
 * logged in, and a page of evil.corp.test (a sibling subdomain: same site, so the Lax session
 * cookie goes with its subresource requests). Chromium sends Fetch Metadata only to potentially
 * trustworthy hosts, so its <script> request to the app carries the cookie and neither Origin nor
 * Sec-Fetch-Site; referrerpolicy="no-referrer" drops the Referer. engine.io's JSONP polling
 * answers such a request with a script the page reads.
 */
/** The attacker's page: a socket.io connection over JSONP polling, read through <script> tags. */
const ATTACK = `
let pending = null;
// engine.io calls the handshake's callback (j=0) with every answer of the connection.
window.___eio = [(data) => pending && pending(data)];
function jsonp(url) {
  return new Promise((resolve) => {
    pending = resolve;
    const script = document.createElement('script');
    script.referrerPolicy = 'no-referrer';
    script.onerror = () => resolve('');
    script.src = url + '&j=0';
    document.head.appendChild(script);
  });
}
window.hijack = async (app) => {
  const base = app + '/socket.io/?EIO=4&transport=polling';
  const handshake = await jsonp(base);
  if (!handshake.startsWith('0{')) return 'refused';
  const sid = JSON.parse(handshake.slice(1)).sid;
  const send = (d) => fetch(base + '&sid=' + sid + '&j=0', { method: 'POST', mode: 'no-cors', credentials: 'include', body: new URLSearchParams({ d }) });
  await send('40');
  await jsonp(base + '&sid=' + sid);
  await send('42["whoami",{}]');
  return jsonp(base + '&sid=' + sid);
};`;

describeIf(chromiumFound)('a same-site page on plain HTTP loading socket.io JSONP polling with script tags', () => {
  let t: TestApp;
  let other: Server;
  let browser: Browser;

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => other?.close(resolve));
    await t?.close();
  });

  it('gets no session for the attacker’s page: it reads anonymous, never the visitor', async () => {
    t = await createTestApp({ providers: [WhoAmIGateway], controllers: [PagesController], platform: 'express', auth: { allowedHosts: ['app.corp.test'] } });
    await t.app.listen(0, '127.0.0.1');
    const app = `http://app.corp.test:${(t.app.getHttpServer().address() as AddressInfo).port}`;
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    other = createServer((_request, response) => response.writeHead(200, { 'Content-Type': 'text/html' }).end(`<!doctype html><script>${ATTACK}</script>`));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const evil = `http://evil.corp.test:${(other.address() as AddressInfo).port}`;

    // app.corp.test and evil.corp.test: two hosts of one site, both this machine.
    browser = await launchChromium(['--host-resolver-rules=MAP *.corp.test 127.0.0.1']);
    const tab = await (await browser.newContext()).newPage();
    // The visitor logs in on the app.
    await tab.goto(`${app}/me`);
    const login = await tab.evaluate(
      async () =>
        (await fetch('/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'carol', password: 'correct horse' }) }))
          .status,
    );
    expect(login).toBe(200);

    // Then visits the attacker's page.
    await tab.goto(`${evil}/`);
    const answer = await tab.evaluate((target) => (globalThis as any).hijack(target), app);
    expect(answer).not.toContain('carol');
  });
});
