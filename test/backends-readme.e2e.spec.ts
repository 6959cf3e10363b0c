import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import { ModelBackend, RetryLater, UserManager, type AuthBackend, type Credentials } from 'nestjs-session-auth';
import { createTestApp, logIn, type TestApp } from './support/test-app.js';

/** The README's dictionary backend, verbatim. */
@Injectable()
export class DictionaryBackend implements AuthBackend {
  constructor(private readonly users: UserManager) {}
  async authenticate(_req: Request, { username, password }: Credentials) {
    const valid: Record<string, string> = { alice: 'wonderland', bob: 'builder' };
    if (typeof username !== 'string' || !Object.hasOwn(valid, username) || valid[username] !== password) return null;
    // The first login creates the local user the session will point at. `password: null` gives it
    // an unusable local password: it can only log in through this backend.
    return (await this.users.findByUsername(username)) ?? this.users.createUser({ username, password: null });
  }
  getUser(id: string) { return this.users.findById(id); }
}

describe("the README's dictionary backend on a fresh database", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ auth: { backends: [ModelBackend, DictionaryBackend] } });
  });
  afterEach(() => t.close());

  it('logs alice and bob in, creating their local users on the first login and reusing them after', async () => {
    expect(await t.users.findByUsername('alice')).toBeNull();
    const cookie = await logIn(t.app, 'alice', 'wonderland');
    await request(t.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'alice', backend: 'DictionaryBackend' });
    const alice = (await t.users.findByUsername('alice'))!;
    await logIn(t.app, 'alice', 'wonderland');
    expect((await t.users.findByUsername('alice'))!.id).toBe(alice.id);
    expect(await t.users.repository.count()).toBe(1);
    await logIn(t.app, 'bob', 'builder');
    expect(await t.users.repository.count()).toBe(2);
  });

  it('gives the created user no usable local password, and refuses a wrong one', async () => {
    await logIn(t.app, 'alice', 'wonderland');
    const alice = (await t.users.findByUsername('alice'))!;
    expect(await t.users.checkPassword(alice, '')).toBe(false);
    expect(await t.users.checkPassword(alice, 'wonderland')).toBe(false);
    await request(t.app.getHttpServer()).post('/login').send({ username: 'alice', password: 'looking-glass' }).expect(401);
  });
});

/** The README's outage, verbatim: what a backend throws when its own source does not answer. */
export class StaffDirectoryDown extends RetryLater {
  constructor() {
    super('The staff directory is not answering; please try again in a minute.', 503, 60);
  }
}

/** A backend whose source is down for every login. */
@Injectable()
class StaffDirectoryBackend implements AuthBackend {
  asked = 0;
  authenticate(): never {
    this.asked++;
    throw new StaffDirectoryDown();
  }
  getUser() {
    return null;
  }
}

describe("the README's backend whose source is down", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ auth: { backends: [StaffDirectoryBackend, DictionaryBackend] }, providers: [StaffDirectoryBackend] });
  });
  afterEach(() => t.close());

  it('answers 503 with Retry-After and no-store, never "wrong password", and passes the login to no later backend', async () => {
    // alice/wonderland is good with the next backend: an outage must not let a login skip the directory.
    const response = await request(t.app.getHttpServer()).post('/login').send({ username: 'alice', password: 'wonderland' });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('60');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(response.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'The staff directory is not answering; please try again in a minute.',
    });
    expect(t.app.get(StaffDirectoryBackend).asked).toBe(1);
    expect(await t.users.findByUsername('alice')).toBeNull();
  });

  it('answers a 429 kind of it with its own wait, as the login throttle does', async () => {
    class TooManyCodes extends RetryLater {
      constructor() {
        super('Too many codes were sent to this phone. Please try again in 5 minutes.', 429, 300);
      }
    }
    const error = new TooManyCodes();
    expect(error.getStatus()).toBe(429);
    expect(error.getResponse()).toEqual({ statusCode: 429, error: 'Too Many Requests', message: error.message });
    const backend = t.app.get(StaffDirectoryBackend);
    backend.authenticate = () => {
      throw error;
    };
    const response = await request(t.app.getHttpServer()).post('/login').send({ username: 'alice', password: 'wonderland' });
    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('300');
    expect(response.headers['cache-control']).toBe('no-store');
  });
});
