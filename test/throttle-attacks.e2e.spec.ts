import { Injectable } from '@nestjs/common';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AuthEvents, LoginLockout, ModelBackend, UserManager, type AuthBackend } from 'nestjs-session-auth';
import { LoginThrottle } from '../src/login-throttle.js';
import { type ThrottleOptions } from 'nestjs-session-auth/throttle';
import { sessionCookie, createTestApp, type TestApp } from './support/test-app.js';

/**
 * The login throttle seen from the attacker's side: which counter an attempt hits is not the
 * attacker's choice, guessing across addresses or across accounts runs into a ceiling, and the
 * real user is not locked out by somebody else's guesses.
 */

/** Logs in by email address, as many apps do. */
@Injectable()
class EmailBackend implements AuthBackend {
  constructor(private readonly users: UserManager) {}
  async authenticate(_request: unknown, { email, password }: Record<string, unknown>) {
    if (typeof email !== 'string' || typeof password !== 'string') return null;
    const user = await this.users.repository.findOne({ where: { email: email.toLowerCase() } });
    return user && (await this.users.checkPassword(user, password)) ? user : null;
  }
  getUser(id: string) {
    return this.users.findById(id);
  }
}

/** Logs in by a field of its own, which it names for the throttle. */
@Injectable()
class MemberNumberBackend implements AuthBackend {
  readonly identifierFields = ['memberNumber'];
  constructor(private readonly users: UserManager) {}
  async authenticate(_request: unknown, { memberNumber, pin }: Record<string, unknown>) {
    if (memberNumber !== '1001' || typeof pin !== 'string') return null;
    const user = await this.users.findByUsername('carol');
    return user && (await this.users.checkPassword(user, pin)) ? user : null;
  }
  getUser(id: string) {
    return this.users.findById(id);
  }
}

async function appWith(throttle: ThrottleOptions = {}, backends: any[] = [ModelBackend]): Promise<TestApp> {
  // Addresses come from X-Forwarded-For in these tests, as behind a proxy that trusts everyone.
  const t = await createTestApp({ auth: { backends, throttle }, trustProxy: true });
  await t.users.createUser({ username: 'carol', email: 'carol@example.com', password: 'correct horse' });
  return t;
}

function post(t: TestApp, body: Record<string, unknown>, from = '203.0.113.7') {
  return request(t.app.getHttpServer()).post('/login').set('X-Forwarded-For', from).send(body);
}

/** Count the passwords a request made the app check. */
function countChecks(t: TestApp): { readonly count: number } {
  const counter = { count: 0 };
  const original = t.users.checkPassword.bind(t.users);
  t.users.checkPassword = async (user: any, raw: unknown) => {
    counter.count++;
    return original(user, raw);
  };
  return counter;
}

describe('the account an attempt is counted against is not the attacker’s choice', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('throttles a backend that logs in by email: 5 wrong passwords, then the right one is refused', async () => {
    t = await appWith({}, [EmailBackend]);
    for (let i = 0; i < 5; i++) await post(t, { email: 'carol@example.com', password: `guess ${i}` }).expect(401);
    await post(t, { email: 'carol@example.com', password: 'correct horse' }).expect(401);
  });

  it('is not moved by a decoy username next to the email', async () => {
    t = await appWith({}, [EmailBackend]);
    for (let i = 0; i < 5; i++) {
      await post(t, { email: 'carol@example.com', password: `guess ${i}`, username: `decoy-${i}` }).expect(401);
    }
    await post(t, { email: 'carol@example.com', password: 'correct horse', username: 'another-decoy' }).expect(401);
  });

  it('counts spellings of one email together (case, compatibility characters)', async () => {
    t = await appWith({}, [EmailBackend]);
    for (const email of ['carol@example.com', 'CAROL@example.com', 'Carol@EXAMPLE.com', 'ｃarol@example.com', ' carol@example.com']) {
      await post(t, { email, password: 'guess' }).expect(401);
    }
    await post(t, { email: 'carol@example.com', password: 'correct horse' }).expect(401);
  });

  it('counts the field a backend names as its identifier', async () => {
    t = await appWith({}, [MemberNumberBackend]);
    for (let i = 0; i < 5; i++) await post(t, { memberNumber: '1001', pin: `guess ${i}` }).expect(401);
    await post(t, { memberNumber: '1001', pin: 'correct horse' }).expect(401);
  });

  it('takes identifier fields from the options', async () => {
    t = await appWith({ identifierFields: ['memberNumber'] }, [MemberNumberBackend]);
    for (let i = 0; i < 5; i++) await post(t, { memberNumber: '1001', pin: `guess ${i}` }).expect(401);
    await post(t, { memberNumber: '1001', pin: 'correct horse' }).expect(401);
  });
});

describe('ceilings across addresses and across accounts', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('refuses an account guessed from many addresses once the account ceiling is reached', async () => {
    t = await appWith({ accountMaxFailures: 20 });
    // 4 guesses from each of 5 addresses: never 5 from one, 20 in all.
    for (let i = 0; i < 20; i++) await post(t, { username: 'carol', password: `guess ${i}` }, `198.51.100.${i % 5}`).expect(401);
    const lockedOut: boolean[] = [];
    t.app.get(AuthEvents).on('userLoginFailed', (event) => void lockedOut.push(!!event.lockedOut));
    const checks = countChecks(t);
    await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.50').expect(401);
    expect(lockedOut).toEqual([true]);
    expect(checks.count).toBe(0);
  });

  it('holds the account ceiling while X-Forwarded-For rotates on every request', async () => {
    t = await appWith({ accountMaxFailures: 30 });
    for (let i = 0; i < 40; i++) await post(t, { username: 'carol', password: `guess ${i}` }, `10.${i}.${i}.${i}`).expect(401);
    await post(t, { username: 'carol', password: 'correct horse' }, '10.200.200.200').expect(401);
    const rows = await t.app.get(DataSource).getRepository(LoginLockout).find();
    expect(Math.max(...rows.map((row) => row.failures))).toBe(30);
  });

  it('still lets the owner in from a browser that logged in before (device cookie), not a fresh one', async () => {
    t = await appWith({ accountMaxFailures: 10 });
    const ok = await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.10').expect(200);
    const device = sessionCookie(ok.headers['set-cookie'], 'auth_device');
    expect(device).toBeDefined();
    expect([ok.headers['set-cookie']].flat().find((line: string) => line.startsWith('auth_device='))).toMatch(/HttpOnly/i);

    for (let i = 0; i < 12; i++) await post(t, { username: 'carol', password: `guess ${i}` }, `198.51.100.${i}`).expect(401);
    await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.99').expect(401);
    await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.10').set('Cookie', device!).expect(200);
  });

  it('does not accept a forged, altered or borrowed device cookie', async () => {
    t = await appWith({ accountMaxFailures: 10 });
    await t.users.createUser({ username: 'dave', password: 'dave password' });
    const daves = sessionCookie((await post(t, { username: 'dave', password: 'dave password' }).expect(200)).headers['set-cookie'], 'auth_device')!;
    for (let i = 0; i < 10; i++) await post(t, { username: 'carol', password: `guess ${i}` }, `198.51.100.${i}`).expect(401);

    const [name, value] = daves.split('=');
    const flipped = value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A');
    const forged = `${'A'.repeat(22)}.${'B'.repeat(43)}`;
    for (const cookie of [daves, `${name}=${flipped}`, `${name}=${forged}`, `${name}=${'x'.repeat(5000)}`]) {
      await post(t, { username: 'carol', password: 'correct horse' }).set('Cookie', cookie).expect(401);
    }
  });

  it('gives a trusted browser its own count: 5 wrong passwords on it lock it too', async () => {
    t = await appWith({ accountMaxFailures: 10 });
    const device = sessionCookie((await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.10').expect(200)).headers['set-cookie'], 'auth_device')!;
    for (let i = 0; i < 5; i++) {
      await post(t, { username: 'carol', password: `guess ${i}` }, `198.51.100.${i}`).set('Cookie', device).expect(401);
    }
    await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.77').set('Cookie', device).expect(401);
  });

  it('answers 429 with Retry-After once one address has failed 100 times across accounts, without checking passwords', async () => {
    // A slow, patient attacker: the rate per address (tested below) is not what stops this one.
    t = await appWith({ addressRate: 10_000, addressBurst: 10_000 });
    const statuses: number[] = [];
    for (let i = 0; i < 500; i++) {
      const response = await post(t, { username: `user-${i % 100}`, password: `guess ${i}` });
      statuses.push(response.status);
    }
    expect(statuses.slice(0, 100).every((status) => status === 401)).toBe(true);
    expect(statuses.slice(100).every((status) => status === 429)).toBe(true);

    const checks = countChecks(t);
    const refused = await post(t, { username: 'carol', password: 'correct horse' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(60);
    expect(refused.body.message).toMatch(/^Too many failed logins from your network\. Please try again in \d+ minutes\.$/);
    expect(checks.count).toBe(0);
    // Another address is not affected.
    await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.1').expect(200);
  });

  it('counts six spellings of one address, and one IPv6 /64, as one address', async () => {
    t = await appWith({ addressBurst: 100 });
    const spellings = ['10.0.0.1', '::ffff:10.0.0.1', '::FFFF:a00:1', '0:0:0:0:0:ffff:10.0.0.1', '::ffff:0a00:0001', '012.0.0.1'];
    for (const [i, from] of spellings.slice(0, 5).entries()) await post(t, { username: 'carol', password: `guess ${i}` }, from).expect(401);
    await post(t, { username: 'carol', password: 'correct horse' }, spellings[5]).expect(401);

    for (let i = 0; i < 5; i++) await post(t, { username: 'dave', password: `guess ${i}` }, `2001:db8:1:2::${i + 1}`).expect(401);
    await t.users.createUser({ username: 'dave', password: 'dave password' });
    await post(t, { username: 'dave', password: 'dave password' }, '2001:db8:1:2:ffff:ffff:ffff:ffff').expect(401);
    await post(t, { username: 'dave', password: 'dave password' }, '2001:db8:1:3::1').expect(200);
  });
});

describe('the rate of attempts per address', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('refuses an address past its burst of 10 attempts with 429, before any password check; other addresses go on', async () => {
    t = await appWith();
    for (let i = 0; i < 10; i++) await post(t, { username: `user-${i}`, password: 'guess' }).expect(401);
    const checks = countChecks(t);
    const lockedOut: boolean[] = [];
    t.app.get(AuthEvents).on('userLoginFailed', (event) => void lockedOut.push(!!event.lockedOut));
    const refused = await post(t, { username: 'carol', password: 'correct horse' });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(checks.count).toBe(0);
    expect(lockedOut).toEqual([true]);
    await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.1').expect(200);
  });

  it('shows a browser at the built-in login form the reason, with 429 and Retry-After', async () => {
    const t2 = await createTestApp({ auth: { backends: [ModelBackend], views: true, throttle: { addressBurst: 1 } } });
    try {
      const browser = request.agent(t2.app.getHttpServer());
      const html = 'text/html,application/xhtml+xml';
      const page = await browser.get('/accounts/login').set('Accept', html).expect(200);
      const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
      const form = { username: 'carol', password: 'guess', csrfmiddlewaretoken: token };
      await browser.post('/accounts/login').set('Accept', html).type('form').send(form).expect(200);
      const refused = await browser.post('/accounts/login').set('Accept', html).type('form').send(form);
      expect(refused.status).toBe(429);
      expect(refused.headers['content-type']).toMatch(/^text\/html/);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.text).toContain('Too many failed logins from your network.');
    } finally {
      await t2.close();
    }
  });

  it('lets the address go on at addressRate attempts a second', async () => {
    t = await appWith({ addressRate: 1, addressBurst: 2 });
    await post(t, { username: 'a', password: 'guess' }).expect(401);
    await post(t, { username: 'b', password: 'guess' }).expect(401);
    await post(t, { username: 'carol', password: 'correct horse' }).expect(429);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await post(t, { username: 'carol', password: 'correct horse' }).expect(200);
  });
});

describe('a flood from one address', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('is refused before the hasher past the ceiling, and a real login from elsewhere gets through during it', async () => {
    t = await appWith();
    const checks = countChecks(t);
    const started = Date.now();
    const flood = Promise.all(
      Array.from({ length: 300 }, (_, i) => post(t, { username: `nobody-${i}`, password: 'guess' }, '198.51.100.66').then((r) => r.status)),
    );
    const real = await post(t, { username: 'carol', password: 'correct horse' }, '192.0.2.20');
    const statuses = await flood;
    // The address's burst of 10, and 2 a second after it (the rate per address).
    const allowed = 10 + Math.ceil((2 * (Date.now() - started)) / 1000);

    expect(real.status).toBe(200);
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(allowed);
    expect(statuses.every((status) => [401, 429, 503].includes(status))).toBe(true);
    expect(statuses.filter((status) => status === 429 || status === 503).length).toBeGreaterThanOrEqual(200);
    // Unknown usernames are hashed too (timing); at most what the rate let through, plus the real login.
    expect(checks.count).toBeLessThanOrEqual(allowed + 1);
  });
});

describe('lockout rows', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('stay bounded for 1,000 failed logins with fresh usernames from one address, and are pruned once expired', async () => {
    t = await appWith({ addressRate: 10_000, addressBurst: 10_000 });
    for (let i = 0; i < 1000; i++) await post(t, { username: `fresh-${i}`, password: 'guess' });
    const lockouts = t.app.get(DataSource).getRepository(LoginLockout);
    // Per username: one counter from this address and one from anywhere; plus the address.
    expect(await lockouts.count()).toBeLessThanOrEqual(2 * 100 + 1);

    const throttle = t.app.get(LoginThrottle);
    expect(await throttle.prune(Date.now())).toBe(0);
    expect(await throttle.prune(Date.now() + 61 * 60 * 1000)).toBeGreaterThan(0);
    expect(await lockouts.count()).toBe(0);
  });
});
