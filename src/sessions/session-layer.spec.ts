import { EventEmitter } from 'node:events';
import type { Request } from 'express';
import type { CookieOptions, SessionData } from 'express-session';
import signature from 'cookie-signature';
import { SessionLayer, type SessionSettings } from './session-layer.js';
import { sessionOf } from './session-of.js';
import { attachSession } from './session-tracker.js';
import type { Session } from './session.js';

/**
 * The save policy of the module's session layer, without HTTP: when a session is written, when
 * the cookie goes out, when the store only notes the visit. A fake store records what it is asked;
 * a minimal response plays the part of Node's (`writeHead`, `end`, headers).
 */

const SECRET = 'a-secret-for-the-session-layer-spec';
const HOUR_MS = 60 * 60 * 1000;

/** An express-session store that keeps rows in memory and notes every call. */
class FakeStore extends EventEmitter {
  readonly rows = new Map<string, string>();
  readonly calls: string[] = [];
  /** When set, `set` waits for `release()` before answering. */
  holdWrites = false;
  failWrites = false;
  private held: (() => void)[] = [];

  get(id: string, callback: (error: unknown, data?: SessionData | null) => void): void {
    this.calls.push(`get ${id}`);
    const row = this.rows.get(id);
    callback(null, row ? JSON.parse(row) : null);
  }

  set(id: string, data: SessionData, callback: (error?: unknown) => void): void {
    this.calls.push(`set ${id}`);
    if (this.failWrites) return callback(new Error('the store is full'));
    // Serialised when handed over, as a real store does.
    const row = JSON.stringify(data);
    const answer = () => {
      this.rows.set(id, row);
      callback();
    };
    if (this.holdWrites) this.held.push(answer);
    else answer();
  }

  destroy(id: string, callback: (error?: unknown) => void): void {
    this.calls.push(`destroy ${id}`);
    this.rows.delete(id);
    callback();
  }

  touch(id: string, _data: SessionData, callback: (error?: unknown) => void): void {
    this.calls.push(`touch ${id}`);
    callback();
  }

  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  data(id: string): Record<string, unknown> | undefined {
    const row = this.rows.get(id);
    return row ? JSON.parse(row) : undefined;
  }
}

/** The slice of Node's ServerResponse the layer uses. */
class FakeResponse {
  statusCode = 200;
  headersSent = false;
  private readonly headers = new Map<string, unknown>();
  private done!: () => void;
  /** Resolves once the response really ended (after the session was saved). */
  readonly ended = new Promise<void>((resolve) => (this.done = resolve));

  setHeader(name: string, value: unknown): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }

  getHeader(name: string): unknown {
    return this.headers.get(name.toLowerCase());
  }

  hasHeader(name: string): boolean {
    return this.headers.has(name.toLowerCase());
  }

  appendHeader(name: string, value: unknown): this {
    const current = this.getHeader(name);
    return this.setHeader(name, current === undefined ? value : [current, value].flat());
  }

  writeHead(status: number): this {
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }

  end(): this {
    this.done();
    return this;
  }

  /** The `Set-Cookie` lines sent for the session cookie. */
  sessionCookies(): string[] {
    return [this.getHeader('Set-Cookie') ?? []].flat().map(String).filter((line) => line.startsWith('sid='));
  }
}

function layerWith(store: FakeStore, settings: Partial<SessionSettings> = {}, cookie: CookieOptions = { path: '/', httpOnly: true, maxAge: HOUR_MS }): SessionLayer {
  return new SessionLayer({
    store: store as unknown as SessionSettings['store'],
    name: 'sid',
    secrets: [SECRET],
    cookie,
    rolling: false,
    proxy: undefined,
    ...settings,
  });
}

/** A request (with the cookie of session `id`, if given) and its response, as the layer sees them. */
function exchange(layer: SessionLayer, cookie?: string): { request: Request; response: FakeResponse } {
  const request = { headers: cookie ? { cookie } : {} } as Request;
  const response = new FakeResponse();
  attachSession(layer, request, response);
  return { request, response };
}

function cookieFor(id: string, secret = SECRET): string {
  return `sid=${encodeURIComponent(`s:${signature.sign(id, secret)}`)}`;
}

/** Send the headers and end the response, as a handler's answer does; resolves once it really ended. */
async function finish(response: FakeResponse, status = 200): Promise<void> {
  response.writeHead(status);
  response.end();
  await response.ended;
}

/** A stored session holding `data`, and its id. */
async function storedSession(layer: SessionLayer, data: Record<string, unknown>): Promise<string> {
  const { request, response } = exchange(layer);
  const session = await sessionOf(request);
  for (const [key, value] of Object.entries(data)) session.set(key, value);
  await finish(response);
  return session.id!;
}

describe('the session layer writes a session', () => {
  let store: FakeStore;
  let layer: SessionLayer;

  beforeEach(() => {
    store = new FakeStore();
    layer = layerWith(store);
  });

  it('never for a visitor who stored nothing: no row, no cookie', async () => {
    const { request, response } = exchange(layer);
    await sessionOf(request);
    await finish(response);
    expect(store.calls).toEqual([]);
    expect(response.sessionCookies()).toEqual([]);
  });

  it('once for a new session that holds something, with a cookie naming it', async () => {
    const { request, response } = exchange(layer);
    const session = await sessionOf(request);
    session.set('cart', ['book']);
    await finish(response);
    expect(store.calls).toEqual([`set ${session.id}`]);
    expect(store.data(session.id!)).toMatchObject({ cart: ['book'] });
    expect(response.sessionCookies()).toEqual([expect.stringContaining(cookieFor(session.id!))]);
    expect(response.getHeader('Cache-Control')).toBe('no-store');
  });

  it('not again when a stored session did not change: the store only notes the visit, and no cookie goes out', async () => {
    const id = await storedSession(layer, { cart: ['book'] });
    store.calls.length = 0;
    const { request, response } = exchange(layer, cookieFor(id));
    expect((await sessionOf(request)).get('cart')).toEqual(['book']);
    await finish(response);
    expect(store.calls).toEqual([`get ${id}`, `touch ${id}`]);
    expect(response.sessionCookies()).toEqual([]);
    expect(response.getHeader('Vary')).toBe('Cookie');
  });

  it('when a stored session changed, under the same id', async () => {
    const id = await storedSession(layer, { cart: ['book'] });
    store.calls.length = 0;
    const { request, response } = exchange(layer, cookieFor(id));
    (await sessionOf(request)).set('cart', ['book', 'pen']);
    await finish(response);
    expect(store.calls).toEqual([`get ${id}`, `set ${id}`]);
    expect(store.data(id)).toMatchObject({ cart: ['book', 'pen'] });
  });

  it('never for a response that failed (5xx): no row, no cookie, the stored data left as it was', async () => {
    const id = await storedSession(layer, { cart: ['book'] });
    store.calls.length = 0;
    const { request, response } = exchange(layer, cookieFor(id));
    (await sessionOf(request)).set('cart', []);
    await finish(response, 500);
    expect(store.calls).toEqual([`get ${id}`]);
    expect(store.data(id)).toMatchObject({ cart: ['book'] });
    expect(response.sessionCookies()).toEqual([]);

    const fresh = exchange(layer);
    (await sessionOf(fresh.request)).set('cart', ['book']);
    await finish(fresh.response, 503);
    expect(store.calls).toEqual([`get ${id}`]);
    expect(fresh.response.sessionCookies()).toEqual([]);
  });

  it('again as the response ends when the data changed while a write was running', async () => {
    const { request, response } = exchange(layer);
    const session = await sessionOf(request);
    session.set('step', 1);
    store.holdWrites = true;
    const written = session.persist();
    // The write has the data as it was handed over; this change comes after.
    session.set('step', 2);
    store.release();
    await written;
    store.holdWrites = false;
    expect(store.data(session.id!)).toMatchObject({ step: 1 });
    await finish(response);
    expect(store.data(session.id!)).toMatchObject({ step: 2 });
    expect(store.calls).toEqual([`set ${session.id}`, `set ${session.id}`]);
  });

  it('without a touch once it was written during the request', async () => {
    const id = await storedSession(layer, { cart: ['book'] });
    store.calls.length = 0;
    const { request, response } = exchange(layer, cookieFor(id));
    await (await sessionOf(request)).persist();
    await finish(response);
    expect(store.calls).toEqual([`get ${id}`, `set ${id}`]);
  });

  it('ends the response even when the write fails, leaving the session unsaved', async () => {
    const { request, response } = exchange(layer);
    (await sessionOf(request)).set('cart', ['book']);
    store.failWrites = true;
    await finish(response);
    expect(store.rows.size).toBe(0);
  });
});

describe('the session layer sends the cookie', () => {
  let store: FakeStore;

  beforeEach(() => {
    store = new FakeStore();
  });

  it('with a new id after cycleKey, the new session stored before the old one is ended', async () => {
    const layer = layerWith(store);
    const oldId = await storedSession(layer, { cart: ['book'] });
    store.calls.length = 0;
    const { request, response } = exchange(layer, cookieFor(oldId));
    const session = await sessionOf(request);
    await session.cycleKey({ user: '7' });
    const newId = session.id!;
    expect(newId).not.toBe(oldId);
    expect(store.calls).toEqual([`get ${oldId}`, `set ${newId}`, `destroy ${oldId}`]);
    expect(store.data(newId)).toMatchObject({ user: '7' });
    expect(store.data(newId)).not.toHaveProperty('cart');
    await finish(response);
    expect(response.sessionCookies()).toEqual([expect.stringContaining(cookieFor(newId))]);
  });

  it('not at all when cycleKey could not store the new session: the old id and data stay', async () => {
    const layer = layerWith(store);
    const oldId = await storedSession(layer, { cart: ['book'] });
    const { request, response } = exchange(layer, cookieFor(oldId));
    const session = await sessionOf(request);
    store.failWrites = true;
    await expect(session.cycleKey({ user: '7' })).rejects.toThrow('the store is full');
    expect(session.id).toBe(oldId);
    expect(session.getData()).toEqual({ cart: ['book'] });
    expect(store.data(oldId)).toMatchObject({ cart: ['book'] });
    await finish(response);
    expect(response.sessionCookies()).toEqual([]);
  });

  it('again under the same id when setExpiry changed the expiry, to end with the browser too', async () => {
    const layer = layerWith(store);
    const id = await storedSession(layer, { cart: ['book'] });
    const { request, response } = exchange(layer, cookieFor(id));
    (await sessionOf(request)).setExpiry(60);
    await finish(response);
    const [line] = response.sessionCookies();
    expect(line).toContain(cookieFor(id));
    expect(line).toMatch(/Expires=/);

    // "Remember me" unticked: the browser must get a cookie without Expires in place of its lasting one.
    const next = exchange(layer, cookieFor(id));
    (await sessionOf(next.request)).setExpiry(0);
    await finish(next.response);
    const [browserClose] = next.response.sessionCookies();
    expect(browserClose).toContain(cookieFor(id));
    expect(browserClose).not.toMatch(/Expires=/);
  });

  it('on every response that has a session when rolling, though nothing changed', async () => {
    const layer = layerWith(store, { rolling: true });
    const id = await storedSession(layer, { cart: ['book'] });
    const { request, response } = exchange(layer, cookieFor(id));
    await sessionOf(request);
    await finish(response);
    expect(response.sessionCookies()).toEqual([expect.stringContaining(cookieFor(id))]);
  });

  it('not for an unchanged session when not rolling, nor for a changed one whose cookie ends with the browser', async () => {
    const layer = layerWith(store, {}, { path: '/', httpOnly: true });
    const id = await storedSession(layer, { cart: ['book'] });
    const { request, response } = exchange(layer, cookieFor(id));
    (await sessionOf(request)).set('cart', ['book', 'pen']);
    await finish(response);
    expect(store.data(id)).toMatchObject({ cart: ['book', 'pen'] });
    expect(response.sessionCookies()).toEqual([]);
  });

  it('without Expires when sessions end with the browser, the store still told how long to keep them', async () => {
    const layer = layerWith(store, { expireAtBrowserClose: true });
    const { request, response } = exchange(layer);
    const session = await sessionOf(request);
    session.set('cart', ['book']);
    await finish(response);
    const [line] = response.sessionCookies();
    expect(line).toContain(cookieFor(session.id!));
    expect(line).not.toMatch(/Expires=/);
    expect(session.getExpireAtBrowserClose()).toBe(true);
    expect(store.data(session.id!)).toMatchObject({ cookie: { originalMaxAge: HOUR_MS } });
  });

  it('cleared after flush when nothing new is stored, the old session ended', async () => {
    const layer = layerWith(store);
    const id = await storedSession(layer, { user: '7' });
    store.calls.length = 0;
    const { request, response } = exchange(layer, cookieFor(id));
    const session = await sessionOf(request);
    await session.flush();
    expect(session.id).not.toBe(id);
    await finish(response);
    expect(store.calls).toEqual([`get ${id}`, `destroy ${id}`]);
    expect(response.sessionCookies()).toEqual([expect.stringMatching(/^sid=;.*Expires=Thu, 01 Jan 1970/)]);
    expect(response.getHeader('Cache-Control')).toBe('no-store');
  });

  it('for the new session instead when something is stored after flush (a message after logout)', async () => {
    const layer = layerWith(store);
    const id = await storedSession(layer, { user: '7' });
    const { request, response } = exchange(layer, cookieFor(id));
    const session: Session = await sessionOf(request);
    await session.flush();
    session.set('message', 'You are logged out.');
    await finish(response);
    expect(response.sessionCookies()).toEqual([expect.stringContaining(cookieFor(session.id!))]);
    expect(store.data(session.id!)).toMatchObject({ message: 'You are logged out.' });
    expect(store.data(id)).toBeUndefined();
  });
});

describe('the session layer reads the cookie', () => {
  it('never asks the store about a cookie signed with another secret, and starts a new session', async () => {
    const store = new FakeStore();
    const layer = layerWith(store);
    const id = await storedSession(layer, { user: '7' });
    store.calls.length = 0;
    const { request, response } = exchange(layer, cookieFor(id, 'a-secret-the-attacker-chose'));
    const session = await sessionOf(request);
    expect(session.id).not.toBe(id);
    expect(session.get('user')).toBeUndefined();
    await finish(response);
    expect(store.calls).toEqual([]);
  });

  it('accepts a cookie signed with an older secret', async () => {
    const store = new FakeStore();
    const id = await storedSession(layerWith(store, { secrets: ['older-secret'] }), { user: '7' });
    const layer = layerWith(store, { secrets: ['newer-secret', 'older-secret'] });
    const { request } = exchange(layer, cookieFor(id, 'older-secret'));
    expect((await sessionOf(request)).get('user')).toBe('7');
  });

  it('reads a stored session once however often it is asked for', async () => {
    const store = new FakeStore();
    const layer = layerWith(store);
    const id = await storedSession(layer, { user: '7' });
    store.calls.length = 0;
    const { request } = exchange(layer, cookieFor(id));
    const [first, second] = await Promise.all([sessionOf(request), sessionOf(request)]);
    expect(first).toBe(second);
    expect(store.calls).toEqual([`get ${id}`]);
  });
});
