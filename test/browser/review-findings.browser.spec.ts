import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { CurrentUser } from 'nestjs-session-auth';
import { CHROMIUM, chromiumFound } from '../support/chromium.js';
import { describeIf } from '../support/services.js';
import { createTestApp, PagesController, type TestApp } from '../support/test-app.js';

/*
 * An outside review, in a real browser: the app on plain HTTP at app.corp.test, the visitor
 * logged in, and a page of evil.corp.test (a sibling subdomain: same site, so the Lax session
 * cookie goes with its subresource requests). Chromium sends Fetch Metadata only to potentially
 * trustworthy hosts, so its <script> request to the app carries the cookie and neither Origin nor
 * Sec-Fetch-Site; referrerpolicy="no-referrer" drops the Referer. engine.io's JSONP polling
 * answers such a request with a script the page reads.
 */

@WebSocketGateway()
class WhoAmIGateway {
  @SubscribeMessage('whoami')
  whoami(@CurrentUser() user: any) {
    return { event: 'whoami', data: user.isAuthenticated ? user.username : 'anonymous' };
  }
}

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

describeIf(chromiumFound)('review: a same-site page on plain HTTP reads the visitor’s socket.io session through JSONP polling', () => {
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

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--host-resolver-rules=MAP *.corp.test 127.0.0.1'],
    });
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
