import { jest } from '@jest/globals';
import { Worker } from 'node:worker_threads';
import request from 'supertest';
import { BCryptSHA256Hasher, BcryptWorkerPool, PasswordHasherBusy } from 'nestjs-session-auth/passwords';
import { runInLane } from '../src/passwords/bcrypt.worker-pool.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * A flood of login attempts must not make real users wait behind it: the bcrypt pool keeps a
 * bounded line of waiting jobs and refuses the rest at once with a 503 and `Retry-After`.
 * Unknown usernames cost a hash too, so an attacker needs no valid account to fill it.
 */

const pools: BcryptWorkerPool[] = [];
function ownPool(options: ConstructorParameters<typeof BcryptWorkerPool>[0]): BcryptWorkerPool {
  const pool = new BcryptWorkerPool(options);
  pools.push(pool);
  return pool;
}

afterEach(async () => {
  jest.restoreAllMocks();
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
});

/**
 * Hold the next job a thread receives, as a very slow bcrypt would: the thread stays busy until
 * `release()` hands the job over. Lets a test fill the line without depending on timing.
 */
function stallNextJob(): { release(): void } {
  const post = Worker.prototype.postMessage;
  let held: (() => void) | undefined;
  jest.spyOn(Worker.prototype, 'postMessage').mockImplementationOnce(function (this: Worker, message: unknown) {
    held = () => post.call(this, message);
  });
  return {
    release() {
      const job = held;
      held = undefined;
      job?.();
    },
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let tries = 0; !condition(); tries++) {
    if (tries > 1000) throw new Error(`Gave up waiting until ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the bcrypt pool refuses work beyond its queue', () => {
  it('takes size × 64 waiting jobs by default, and the limit is an option', () => {
    expect(ownPool({ size: 2 }).maxQueued).toBe(128);
    expect(ownPool({ size: 1, maxQueued: 5 }).maxQueued).toBe(5);
    expect(() => ownPool({ maxQueued: -1 })).toThrow('BcryptWorkerPool maxQueued must be a non-negative integer, got -1.');
  });

  it('fails the excess of a burst at once with PasswordHasherBusy, serves the rest, then serves again', async () => {
    const pool = ownPool({ size: 1, maxQueued: 2 });
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool });
    const encoded = await hasher.encode('correct horse');

    const settled: string[] = [];
    const burst = Array.from({ length: 20 }, (_, i) =>
      hasher.verify(`guess-${i}`, encoded).then(
        (valid) => settled.push(`checked:${valid}`),
        (error: unknown) => {
          expect(error).toBeInstanceOf(PasswordHasherBusy);
          expect((error as PasswordHasherBusy).getStatus()).toBe(503);
          expect((error as PasswordHasherBusy).retryAfter).toBeGreaterThanOrEqual(1);
          settled.push('refused');
        },
      ),
    );
    await Promise.all(burst);

    // One job on the thread and two waiting were checked; the 17 others never waited for them.
    expect(settled.filter((entry) => entry === 'refused')).toHaveLength(17);
    expect(settled.slice(0, 17).every((entry) => entry === 'refused')).toBe(true);
    expect(settled.slice(17)).toEqual(['checked:false', 'checked:false', 'checked:false']);
    expect(pool.queued).toBe(0);
    expect(await hasher.verify('correct horse', encoded)).toBe(true);
  });

  it('refuses nothing while a thread is free, even with no room to wait (maxQueued: 0)', async () => {
    const pool = ownPool({ size: 1, maxQueued: 0 });
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool });
    expect(await hasher.verify('pw', await hasher.encode('pw'))).toBe(true);
  });
});

describe('the bcrypt pool shares its threads fairly between client addresses (lanes)', () => {
  it('keeps a thread free for other addresses while one address floods, and caps that address’s share of the line', async () => {
    const pool = ownPool({ size: 2, maxQueued: 8 });
    expect(pool.maxRunningPerLane).toBe(1);
    expect(pool.maxQueuedPerLane).toBe(2);
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool });
    const encoded = await hasher.encode('correct horse');

    const stall = stallNextJob();
    const flood = Array.from({ length: 6 }, (_, i) =>
      runInLane('198.51.100.66', () => hasher.verify(`guess-${i}`, encoded)).then(
        () => 'checked',
        (error: unknown) => (error instanceof PasswordHasherBusy ? 'refused' : 'error'),
      ),
    );
    // One flood job holds a thread; two wait (the address's share); three were refused at once.
    await until(() => pool.queued === 2, 'the flood queues its share');
    expect(pool.threadCount).toBeGreaterThanOrEqual(1);

    // Another address is served on the free thread while the flood's job is still held.
    expect(await runInLane('192.0.2.20', () => hasher.verify('correct horse', encoded))).toBe(true);
    expect(pool.queued).toBe(2);

    stall.release();
    const outcomes = await Promise.all(flood);
    expect(outcomes.filter((outcome) => outcome === 'refused')).toHaveLength(3);
    expect(outcomes.filter((outcome) => outcome === 'checked')).toHaveLength(3);
  });

  it('refuses bad lane limits at construction', () => {
    expect(() => ownPool({ maxRunningPerLane: 0 })).toThrow('BcryptWorkerPool maxRunningPerLane must be a positive integer, got 0.');
    expect(() => ownPool({ maxQueuedPerLane: 1.5 })).toThrow('BcryptWorkerPool maxQueuedPerLane must be a positive integer, got 1.5.');
  });
});

describe('logins during a flood get 503 with Retry-After, and work again once it drains', () => {
  let t: TestApp;
  let pool: BcryptWorkerPool;
  let server: any;
  let flood: { release(): void; answers: Promise<number[]> } | undefined;

  beforeEach(async () => {
    // The flood and the user share one address here, so one lane may fill the whole line.
    pool = ownPool({ size: 1, maxQueued: 2, maxQueuedPerLane: 2 });
    t = await createTestApp({ auth: { views: true, passwordHashers: [new BCryptSHA256Hasher({ rounds: 4, pool })] } });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });

  afterEach(async () => {
    flood?.release();
    await flood?.answers;
    flood = undefined;
    await t.close();
  });

  /** The attacker's flood: unknown usernames, enough to occupy the thread and fill the line. */
  async function startFlood(): Promise<{ release(): void; answers: Promise<number[]> }> {
    const stall = stallNextJob();
    const answers = Promise.all(
      ['mallory-0', 'mallory-1', 'mallory-2'].map((username) =>
        request(server).post('/login').send({ username, password: 'guess' }).then((response) => response.status),
      ),
    );
    flood = { release: stall.release, answers };
    await until(() => pool.queued === 2, 'the flood fills the line');
    return flood;
  }

  it('answers POST /login (the controller) with 503 and Retry-After while the line is full', async () => {
    const { release, answers } = await startFlood();

    const refused = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.body.message).toMatch(/^Too many passwords are being checked right now\. Please try again in \d+ seconds\.$/);
    expect(refused.headers['set-cookie']).toBeUndefined();

    release();
    expect(await answers).toEqual([401, 401, 401]);
    await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
  });

  it('answers the built-in login view with 503 and Retry-After too, and logs in once the line drains', async () => {
    const browser = request.agent(server);
    const { body } = await browser.get('/accounts/login').set('Accept', 'application/json').expect(200);
    const form = { username: 'carol', password: 'correct horse', csrfmiddlewaretoken: body.csrfToken };
    const { release, answers } = await startFlood();

    const refused = await browser.post('/accounts/login').type('form').send(form);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await browser.get('/whoami').expect(200)).body.isAuthenticated).toBe(false);

    release();
    await answers;
    await browser.post('/accounts/login').type('form').send(form).expect(302);
    expect((await browser.get('/whoami').expect(200)).body.isAuthenticated).toBe(true);
  });
});
