import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import { UseFilters, type INestApplication } from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { DisconnectRefusedSockets, handshakeOriginCheck } from 'nestjs-session-auth/websockets';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerOptions } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import WebSocket from 'ws';
import { CurrentUser, LoginRequired, PermissionManager, PermissionRequired } from 'nestjs-session-auth';
import { createTestApp, logIn, sessionCookie, TEST_SECRET, type TestApp, type TestAppOptions } from './support/test-app.js';

const account = (user: any) => ({ username: user.username ?? '', authenticated: user.isAuthenticated === true });

/** On the app's own HTTP server, as most apps run their gateways. */
@WebSocketGateway()
class ChatGateway {
  @SubscribeMessage('whoami')
  whoami(@CurrentUser() user: any) {
    return { event: 'whoami', data: account(user) };
  }

  @LoginRequired()
  @SubscribeMessage('say')
  say(@CurrentUser() user: any, @MessageBody() text: string) {
    return { event: 'said', data: `${user.username}: ${text}` };
  }

  @PermissionRequired('chat.moderate')
  @SubscribeMessage('mute')
  mute() {
    return { event: 'muted', data: true };
  }
}

/** A gateway that closes a connection once nobody is logged in on it: a socket.io namespace of its own... */
@UseFilters(new DisconnectRefusedSockets())
@WebSocketGateway({ namespace: 'strict' })
class StrictGateway {
  @LoginRequired()
  @SubscribeMessage('say')
  say(@CurrentUser() user: any, @MessageBody() text: string) {
    return { event: 'said', data: `${user.username}: ${text}` };
  }
}

/** ... or a ws path of its own. */
@UseFilters(new DisconnectRefusedSockets())
@WebSocketGateway({ path: '/strict' })
class StrictWsGateway extends StrictGateway {}

interface Refusal {
  status: string;
  code: string;
  message: string;
}

async function start(adapter: 'socket.io' | 'ws', options: Pick<TestAppOptions, 'auth' | 'trustProxy'> = {}): Promise<{ t: TestApp; url: string }> {
  const t = await createTestApp({
    providers: [ChatGateway],
    beforeInit: (app) => {
      if (adapter === 'ws') app.useWebSocketAdapter(new WsAdapter(app));
    },
    trustProxy: options.trustProxy,
    auth: { throttle: { addressBurst: 100 }, ...options.auth },
  });
  await t.app.listen(0, '127.0.0.1');
  const { port } = t.app.getHttpServer().address() as AddressInfo;
  await t.users.createUser({ username: 'carol', password: 'correct horse' });
  return { t, url: `127.0.0.1:${port}` };
}

describe('WebSockets through socket.io: the session of the handshake', () => {
  let t: TestApp;
  let url: string;
  const sockets: Socket[] = [];

  beforeEach(async () => ({ t, url } = await start('socket.io')));
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.disconnect();
    await t.close();
  });

  async function connect(cookie?: string): Promise<Socket> {
    const socket = io(`http://${url}`, { transports: ['websocket'], extraHeaders: cookie ? { cookie } : {}, reconnection: false });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    return socket;
  }

  /** The answer to a message (an event named by the reply), or the refusal the server sent instead. */
  function ask(socket: Socket, event: string, data: unknown = {}): Promise<{ answer?: any; refusal?: Refusal }> {
    const replies = ['whoami', 'said', 'muted'];
    return new Promise((resolve) => {
      const done = (result: { answer?: any; refusal?: Refusal }) => {
        socket.offAny(onAny);
        resolve(result);
      };
      const onAny = (name: string, payload: any) =>
        done(name === 'exception' ? { refusal: payload } : replies.includes(name) ? { answer: { event: name, data: payload } } : { answer: { event: name } });
      socket.onAny(onAny);
      socket.emit(event, data);
    });
  }

  it('knows the anonymous visitor without a cookie, and refuses a @LoginRequired() message with UNAUTHENTICATED', async () => {
    const socket = await connect();
    expect((await ask(socket, 'whoami')).answer).toEqual({ event: 'whoami', data: { username: '', authenticated: false } });
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      const { refusal } = await ask(socket, 'say', 'hello');
      expect(refusal).toMatchObject({ status: 'error', code: 'UNAUTHENTICATED' });
      // The refusal is logged, with the message's pattern and the code.
      expect(warn.mock.calls.map(([line]) => String(line))).toContainEqual(expect.stringMatching(/say.*UNAUTHENTICATED/));
    } finally {
      warn.mockRestore();
    }
  });

  it('knows the logged-in user of the handshake cookie and lets them through', async () => {
    const socket = await connect(await logIn(t.app, 'carol', 'correct horse'));
    expect((await ask(socket, 'whoami')).answer).toEqual({ event: 'whoami', data: { username: 'carol', authenticated: true } });
    expect((await ask(socket, 'say', 'hello')).answer).toEqual({ event: 'said', data: 'carol: hello' });
  });

  it('refuses a forged cookie as no cookie', async () => {
    const socket = await connect('sessionid=s%3Aforged.bm90LWEtc2lnbmF0dXJl');
    expect((await ask(socket, 'say', 'hello')).refusal).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses the next message of a socket whose session was logged out in another tab', async () => {
    const cookie = await logIn(t.app, 'carol', 'correct horse');
    const socket = await connect(cookie);
    expect((await ask(socket, 'say', 'before')).answer).toEqual({ event: 'said', data: 'carol: before' });
    await request(t.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
    expect((await ask(socket, 'say', 'after')).refusal).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses the next message of a socket whose user changed their password', async () => {
    const socket = await connect(await logIn(t.app, 'carol', 'correct horse'));
    const carol = (await t.users.findByUsername('carol'))!;
    await t.users.setPassword(carol, 'a brand new password');
    await t.users.savePassword(carol);
    expect((await ask(socket, 'say', 'after')).refusal).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('answers a logged-in user without the permission with FORBIDDEN, and lets them through once granted', async () => {
    const socket = await connect(await logIn(t.app, 'carol', 'correct horse'));
    expect((await ask(socket, 'mute')).refusal).toMatchObject({ code: 'FORBIDDEN' });
    const permissions = t.app.get(PermissionManager);
    await permissions.createPermission('chat.moderate');
    await permissions.grantPermission((await t.users.findByUsername('carol'))!, 'chat.moderate');
    expect((await ask(socket, 'mute')).answer).toEqual({ event: 'muted', data: true });
  });
});

describe('WebSockets through ws (@nestjs/platform-ws): the session of the handshake', () => {
  let t: TestApp;
  let url: string;
  const sockets: WebSocket[] = [];

  beforeEach(async () => ({ t, url } = await start('ws')));
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await t.close();
  });

  async function connect(cookie?: string): Promise<WebSocket> {
    const socket = new WebSocket(`ws://${url}`, { headers: cookie ? { cookie } : {} });
    sockets.push(socket);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return socket;
  }

  function ask(socket: WebSocket, event: string, data: unknown = {}): Promise<{ event: string; data: any }> {
    return new Promise((resolve) => {
      socket.once('message', (raw) => resolve(JSON.parse(String(raw))));
      socket.send(JSON.stringify({ event, data }));
    });
  }

  it('knows the user of the handshake cookie, and refuses the next message once the session is logged out', async () => {
    const anonymous = await connect();
    expect(await ask(anonymous, 'say', 'hi')).toMatchObject({ event: 'exception', data: { code: 'UNAUTHENTICATED' } });

    const cookie = await logIn(t.app, 'carol', 'correct horse');
    const socket = await connect(cookie);
    expect(await ask(socket, 'whoami')).toEqual({ event: 'whoami', data: { username: 'carol', authenticated: true } });
    expect(await ask(socket, 'say', 'hi')).toEqual({ event: 'said', data: 'carol: hi' });
    await request(t.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
    expect(await ask(socket, 'say', 'again')).toMatchObject({ event: 'exception', data: { status: 'error', code: 'UNAUTHENTICATED' } });
  });
});

describe('DisconnectRefusedSockets (nestjs-session-auth/websockets)', () => {
  it('closes a socket.io connection after the refusal of a message whose session was logged out', async () => {
    const t = await createTestApp({ providers: [StrictGateway], auth: { throttle: { addressBurst: 100 } } });
    try {
      await t.app.listen(0, '127.0.0.1');
      const { port } = t.app.getHttpServer().address() as AddressInfo;
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = await logIn(t.app, 'carol', 'correct horse');
      const socket = io(`http://127.0.0.1:${port}/strict`, { transports: ['websocket'], extraHeaders: { cookie }, reconnection: false });
      await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('connect_error', reject));
      const said = await new Promise((resolve) => {
        socket.once('said', resolve);
        socket.emit('say', 'hello');
      });
      expect(said).toBe('carol: hello');
      await request(t.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
      const events: string[] = [];
      const closed = new Promise<string>((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
      socket.once('exception', (refusal: Refusal) => events.push(`exception ${refusal.code}`));
      socket.emit('say', 'after');
      expect(await closed).toBe('io server disconnect');
      expect(events).toEqual(['exception UNAUTHENTICATED']);
    } finally {
      await t.close();
    }
  });

  it('closes a ws connection with 4401 after the refusal of a message without a session', async () => {
    const t = await createTestApp({
      providers: [StrictWsGateway],
      beforeInit: (app) => app.useWebSocketAdapter(new WsAdapter(app)),
      auth: { throttle: { addressBurst: 100 } },
    });
    try {
      await t.app.listen(0, '127.0.0.1');
      const { port } = t.app.getHttpServer().address() as AddressInfo;
      const socket = new WebSocket(`ws://127.0.0.1:${port}/strict`);
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      const messages: unknown[] = [];
      socket.on('message', (raw) => messages.push(JSON.parse(String(raw))));
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      socket.send(JSON.stringify({ event: 'say', data: 'hi' }));
      expect(await closed).toBe(4401);
      expect(messages).toEqual([expect.objectContaining({ event: 'exception', data: expect.objectContaining({ code: 'UNAUTHENTICATED' }) })]);
    } finally {
      await t.close();
    }
  });
});

/**
 * Cross-site WebSocket hijacking: a browser sends the site's cookie with a WebSocket handshake
 * whatever page opens it (cookies are not scoped by port, and SameSite=None ones go anywhere), and
 * no CORS check stands in the way. The attacker is that page; what it cannot choose is the
 * `Origin` its browser sends (nor any other header of a WebSocket handshake).
 */
describe('WebSockets: a handshake sent from a page of another origin gets no session', () => {
  let t: TestApp;
  let port: number;
  let cookie: string;
  /** The Set-Cookie line of carol's login. */
  let setCookie: string;
  const sockets: Socket[] = [];

  /** The app, with carol logged in (over HTTPS through the proxy when the cookie is Secure). */
  async function boot(options: Pick<TestAppOptions, 'auth' | 'trustProxy'> = {}): Promise<void> {
    const started = await start('socket.io', options);
    t = started.t;
    port = Number(started.url.split(':')[1]);
    const login = await request(t.app.getHttpServer())
      .post('/login')
      .set('X-Forwarded-Proto', 'https')
      .send({ username: 'carol', password: 'correct horse' })
      .expect(200);
    cookie = sessionCookie(login.headers['set-cookie'])!;
    setCookie = String(login.headers['set-cookie']);
  }

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.disconnect();
    await t?.close();
  });

  /** A connection carrying the victim's cookie and these handshake headers. */
  async function open(headers: Record<string, string>, transport: 'websocket' | 'polling' = 'websocket'): Promise<Socket> {
    const socket = io(`http://127.0.0.1:${port}`, { transports: [transport], extraHeaders: { cookie, ...headers }, reconnection: false });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('connect_error', reject));
    return socket;
  }

  async function whoami(socket: Socket): Promise<string> {
    const answer = await new Promise<{ username: string; authenticated: boolean }>((resolve) => socket.once('whoami', resolve).emit('whoami', {}));
    return answer.authenticated ? answer.username : 'anonymous';
  }

  /** Who a connection with these handshake headers (and the victim's cookie) is. */
  async function whoIs(headers: Record<string, string>, transport: 'websocket' | 'polling' = 'websocket'): Promise<string> {
    return whoami(await open(headers, transport));
  }

  it('gives a page on another port of the same host no session, over the websocket and the polling transports, and logs it once, not per message or connection', async () => {
    await boot();
    const other = `http://127.0.0.1:${port + 1}`;
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      for (const transport of ['websocket', 'polling'] as const) {
        const socket = await open({ origin: other }, transport);
        expect(await whoami(socket)).toBe('anonymous');
        expect(await whoami(socket)).toBe('anonymous');
        const refusal = await new Promise<Refusal>((resolve) => socket.once('exception', resolve).emit('say', 'as carol'));
        expect(refusal).toMatchObject({ code: 'UNAUTHENTICATED' });
      }
      const lines = warn.mock.calls.map(([line]) => String(line)).filter((line) => line.includes(other));
      // One line (not one per message, nor per connection: a page cannot flood the log), naming
      // the origin and the option that trusts it.
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('trustedOrigins');
    } finally {
      warn.mockRestore();
    }
  });

  it('keeps the user of the site’s own pages: its origin, a trusted origin, an allowed host on the same scheme and port, a same-origin request without Origin, a client that is no browser', async () => {
    await boot({ auth: { trustedOrigins: ['https://*.partner.test'] } });
    expect(await whoIs({ origin: `http://127.0.0.1:${port}` })).toBe('carol');
    expect(await whoIs({ origin: `http://127.0.0.1:${port}` }, 'polling')).toBe('carol');
    expect(await whoIs({ origin: 'https://chat.partner.test' })).toBe('carol');
    // localhost is an allowed host outside production: another name of this site.
    expect(await whoIs({ origin: `http://localhost:${port}` })).toBe('carol');
    // A same-origin polling request carries no Origin; Chromium still says where it came from.
    expect(await whoIs({ 'sec-fetch-site': 'same-origin' }, 'polling')).toBe('carol');
    expect(await whoIs({})).toBe('carol');
  });

  it('gives no session to an allowed host on another port or scheme (localhost is allowed on any port), a page of another site, a sandboxed page, or a cross-site page without Origin', async () => {
    await boot({ auth: { trustedOrigins: ['https://*.partner.test'] } });
    expect(await whoIs({ origin: `http://localhost:${port + 1}` })).toBe('anonymous');
    expect(await whoIs({ origin: `https://localhost:${port}` })).toBe('anonymous');
    expect(await whoIs({ origin: `https://127.0.0.1:${port}` })).toBe('anonymous');
    expect(await whoIs({ origin: 'http://chat.partner.test' })).toBe('anonymous');
    expect(await whoIs({ origin: 'https://evil.test' })).toBe('anonymous');
    expect(await whoIs({ origin: 'null' })).toBe('anonymous');
    expect(await whoIs({ 'sec-fetch-site': 'cross-site' })).toBe('anonymous');
    expect(await whoIs({ 'sec-fetch-site': 'same-site' }, 'polling')).toBe('anonymous');
  });

  it('gives a sibling subdomain no session, even when allowedHosts covers every subdomain', async () => {
    await boot({ auth: { allowedHosts: ['.example.test', '127.0.0.1'] } });
    const host = `app.example.test:${port}`;
    expect(await whoIs({ host, origin: `http://app.example.test:${port}` })).toBe('carol');
    expect(await whoIs({ host, origin: `http://evil.example.test:${port}` })).toBe('anonymous');
    expect(await whoIs({ host, origin: `http://evil.example.test:${port}` }, 'polling')).toBe('anonymous');
  });

  it('behind a trusted TLS-terminating proxy, keeps the user of the https page and gives the http page of the same host none; an untrusted X-Forwarded-Proto is not believed', async () => {
    await boot({ trustProxy: 'loopback' });
    const forwarded = { 'x-forwarded-proto': 'https' };
    expect(await whoIs({ ...forwarded, origin: `https://127.0.0.1:${port}` })).toBe('carol');
    expect(await whoIs({ ...forwarded, origin: `https://127.0.0.1:${port}` }, 'polling')).toBe('carol');
    expect(await whoIs({ ...forwarded, origin: `http://127.0.0.1:${port}` })).toBe('anonymous');
    await t.close();

    await boot();
    expect(await whoIs({ ...forwarded, origin: `https://127.0.0.1:${port}` })).toBe('anonymous');
    expect(await whoIs({ origin: `http://127.0.0.1:${port}` })).toBe('carol');
  });

  it('gives any other site no session when the session cookie is SameSite=None (the browser sends it everywhere)', async () => {
    await boot({ trustProxy: 'loopback', auth: { session: { secret: TEST_SECRET, cookie: { sameSite: 'none', secure: true } } } });
    expect(setCookie).toMatch(/; Secure.*; SameSite=None|; SameSite=None.*; Secure/i);
    const forwarded = { 'x-forwarded-proto': 'https' };
    expect(await whoIs({ ...forwarded, origin: `https://127.0.0.1:${port}` })).toBe('carol');
    expect(await whoIs({ ...forwarded, origin: 'https://evil.test' })).toBe('anonymous');
  });

  it('gives a ws handshake from another port no session, and keeps the user of the site’s own page', async () => {
    const started = await start('ws');
    t = started.t;
    cookie = await logIn(t.app, 'carol', 'correct horse');
    const ask = async (origin: string) => {
      const socket = new WebSocket(`ws://${started.url}`, { headers: { cookie, origin } });
      try {
        await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
        return await new Promise<{ event: string; data: any }>((resolve) => {
          socket.once('message', (raw) => resolve(JSON.parse(String(raw))));
          socket.send(JSON.stringify({ event: 'whoami', data: {} }));
        });
      } finally {
        socket.close();
      }
    };
    const other = Number(started.url.split(':')[1]) + 1;
    expect((await ask(`http://127.0.0.1:${other}`)).data).toEqual({ username: '', authenticated: false });
    expect((await ask(`http://${started.url}`)).data).toEqual({ username: 'carol', authenticated: true });
  });

  it('lets an app refuse such a connection outright, with handshakeOriginCheck in socket.io’s allowRequest', async () => {
    /** The README's adapter. */
    class SameSiteIoAdapter extends IoAdapter {
      constructor(private readonly nestApp: INestApplication) {
        super(nestApp);
      }

      override createIOServer(port: number, options?: ServerOptions) {
        const fromThisSite = handshakeOriginCheck(this.nestApp);
        const allowRequest: ServerOptions['allowRequest'] = (request, callback) => callback(null, fromThisSite(request));
        return super.createIOServer(port, { ...options, allowRequest } as ServerOptions);
      }
    }
    t = await createTestApp({
      providers: [ChatGateway],
      beforeInit: (app) => app.useWebSocketAdapter(new SameSiteIoAdapter(app)),
      auth: { throttle: { addressBurst: 100 } },
    });
    await t.app.listen(0, '127.0.0.1');
    port = (t.app.getHttpServer().address() as AddressInfo).port;
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    cookie = await logIn(t.app, 'carol', 'correct horse');
    for (const transport of ['websocket', 'polling'] as const) {
      await expect(open({ origin: `http://127.0.0.1:${port + 1}` }, transport)).rejects.toThrow();
      expect(await whoami(await open({ origin: `http://127.0.0.1:${port}` }, transport))).toBe('carol');
    }
    expect(await whoIs({})).toBe('carol');
  });

  it('lets an app refuse such a connection outright with ws too, with handshakeOriginCheck in verifyClient', async () => {
    class SameSiteWsAdapter extends WsAdapter {
      constructor(private readonly nestApp: INestApplication) {
        super(nestApp);
      }

      override create(port: number, options?: Record<string, any>) {
        const fromThisSite = handshakeOriginCheck(this.nestApp);
        return super.create(port, { ...options, verifyClient: ({ req }: { req: IncomingMessage }) => fromThisSite(req) });
      }
    }
    t = await createTestApp({
      providers: [ChatGateway],
      beforeInit: (app) => app.useWebSocketAdapter(new SameSiteWsAdapter(app)),
      auth: { throttle: { addressBurst: 100 } },
    });
    await t.app.listen(0, '127.0.0.1');
    port = (t.app.getHttpServer().address() as AddressInfo).port;
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    cookie = await logIn(t.app, 'carol', 'correct horse');
    const opened = (origin: string) =>
      new Promise<number | 'open'>((resolve) => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}`, { headers: { cookie, origin } });
        socket.once('open', () => (socket.close(), resolve('open')));
        socket.once('unexpected-response', (_request, response) => resolve(response.statusCode!));
        socket.once('error', () => undefined);
      });
    expect(await opened(`http://127.0.0.1:${port + 1}`)).toBe(401);
    expect(await opened(`http://127.0.0.1:${port}`)).toBe('open');
  });
});

/** Answers `whoami` with the username, or `anonymous`. */
@WebSocketGateway()
class NameGateway {
  @SubscribeMessage('whoami')
  whoami(@CurrentUser() user: any) {
    return { event: 'whoami', data: user.isAuthenticated ? user.username : 'anonymous' };
  }
}

describe('WebSockets: a socket.io JSONP polling handshake from a page of another origin', () => {
  let t: TestApp;
  afterEach(() => t?.close());

  /*
   * engine.io still serves JSONP polling (`&j=N`): its answers are scripts calling `___eio[N](...)`,
   * which any page can load with a <script> tag and read. Such a subresource GET carries the
   * site's cookie (a same-site page: another port, a sibling subdomain; any site with
   * SameSite=None) but no Origin, and no Sec-Fetch-Site where the browser sends no Fetch Metadata
   * (plain-HTTP hosts other than localhost, Safari before 16.4); the attacker suppresses Referer
   * with referrerpolicy="no-referrer". The module takes a handshake with neither header for a
   * client that is no browser, and gives it the session. The requests below are exactly what
   * Chromium sent from http://evil.corp.test to http://app.corp.test (see
   * test/browser/review-findings.browser.spec.ts).
   */
  it('gives a <script>-loaded JSONP handshake no session: the attacker reads nothing the gateway tells the visitor', async () => {
    t = await createTestApp({ providers: [NameGateway], auth: { throttle: { addressBurst: 100 } } });
    await t.app.listen(0, '127.0.0.1');
    const { port } = t.app.getHttpServer().address() as AddressInfo;
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    const cookie = await logIn(t.app, 'carol', 'correct horse');
    const base = `http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`;
    const evil = 'http://evil.corp.test';

    // <script src="…&j=0" referrerpolicy="no-referrer">: the cookie, nothing saying where it came from.
    const script = async (query: string): Promise<string> => {
      const text = await (await fetch(`${base}${query}&j=0`, { headers: { cookie, accept: '*/*' } })).text();
      const call = /^___eio\[0\]\((.*)\);$/s.exec(text);
      return call ? (JSON.parse(call[1]) as string) : '';
    };
    // fetch(…, { mode: 'no-cors', method: 'POST' }): a simple request, needs no preflight.
    const post = (sid: string, packet: string) =>
      fetch(`${base}&sid=${sid}&j=0`, {
        method: 'POST',
        headers: { cookie, origin: evil, 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' },
        body: new URLSearchParams({ d: packet }).toString(),
      });

    const handshake = await script('');
    // Refusing the JSONP handshake outright is a fix too; serving it, it must be anonymous.
    if (!handshake.startsWith('0{')) return;
    const { sid } = JSON.parse(handshake.slice(1)) as { sid: string };
    await post(sid, '40');
    expect(await script(`&sid=${sid}`)).toMatch(/^40/);
    await post(sid, '42["whoami",{}]');
    expect(await script(`&sid=${sid}`)).toBe('42["whoami","anonymous"]');
  });
});
