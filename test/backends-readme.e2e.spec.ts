import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import { ModelBackend, UserManager, type AuthBackend, type Credentials } from 'nestjs-session-auth';
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
