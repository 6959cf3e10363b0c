import { jest } from '@jest/globals';
import { Body, Controller, HttpCode, Logger, Post, Req, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import { createClient } from 'redis';
import { DataSource } from 'typeorm';
import { AuthEvents, AuthService, LoginLockout, ModelBackend, authEntities } from 'nestjs-session-auth';
import { RedisLockoutStore, TypeOrmLockoutStore } from 'nestjs-session-auth/throttle';
import { describeEach, describeIf, postgresUrl, redisUrl, uniqueName } from './support/services.js';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';

describe('login throttling (5 failures in 15 minutes per username and address)', () => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    t = await createTestApp({ auth: { backends: [ModelBackend] } });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterEach(() => t.close());

  const attempt = (password: string, username = 'carol', forwardedFor?: string) => {
    const call = request(server).post('/login').send({ username, password });
    if (forwardedFor) call.set('X-Forwarded-For', forwardedFor);
    return call;
  };

  async function failTimes(n: number, username = 'carol') {
    for (let i = 0; i < n; i++) await attempt(`wrong ${i}`, username).expect(401);
  }

  it('refuses even the right password after 5 failures, without asking the backends', async () => {
    await failTimes(5);
    const lockedOut: boolean[] = [];
    t.app.get(AuthEvents).on('userLoginFailed', (event) => void lockedOut.push(!!event.lockedOut));
    t.sql.reset();
    const response = await attempt('correct horse').expect(401);
    expect(sessionCookie(response.headers['set-cookie'])).toBeUndefined();
    expect(lockedOut).toEqual([true]);
    expect(t.sql.statements.some((sql) => /FROM "auth_user"/.test(sql))).toBe(false);
  });

  it('says in the log why the right password was refused, naming the account but never a password, once per window', async () => {
    await failTimes(5);
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      await attempt('correct horse').expect(401);
      await attempt('correct horse').expect(401);
      const lines = warn.mock.calls.map(([line]) => String(line)).filter((line) => line.startsWith('Login refused without asking any backend'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('"carol"');
      expect(lines[0]).toContain('5 failures per account and address');
      expect(lines[0]).not.toMatch(/correct horse|wrong \d/);
    } finally {
      warn.mockRestore();
    }
  });

  it('counts parallel guesses one by one: 15 at once, then the right password is refused', async () => {
    await t.close();
    // Past 16 at once, or 10 in a burst, an address is refused outright (tested elsewhere).
    t = await createTestApp({ auth: { backends: [ModelBackend], throttle: { addressBurst: 100 } } });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    const responses = await Promise.all(Array.from({ length: 15 }, (_, i) => attempt(`parallel ${i}`)));
    expect(responses.every((response) => response.status === 401)).toBe(true);
    // Five counted (the username from this address, the account, the address); the 10 others were refused unchecked.
    const rows = await t.app.get(DataSource).getRepository(LoginLockout).find();
    expect(rows.map((row) => row.failures)).toEqual([5, 5, 5]);
    await attempt('correct horse').expect(401);
  });

  it('asks the backends at most maxFailures times for parallel guesses', async () => {
    const users = t.users;
    const checks: string[] = [];
    const original = users.checkPassword.bind(users);
    users.checkPassword = async (user: any, raw: unknown) => {
      checks.push(String(raw));
      return original(user, raw);
    };
    await Promise.all(Array.from({ length: 12 }, (_, i) => attempt(`guess ${i}`)));
    expect(checks).toHaveLength(5);
  });

  it('allows the right password after 4 failures and clears the counter of that username and address', async () => {
    await failTimes(4);
    await attempt('correct horse').expect(200);
    // What is left are the ceilings (the account from anywhere, the address across accounts):
    // they run out with their windows, a success does not reset them.
    const rows = await t.app.get(DataSource).getRepository(LoginLockout).find();
    expect(rows.map((row) => row.failures)).toEqual([4, 4]);
    await failTimes(4);
    await attempt('correct horse').expect(200);
  });

  it('counts usernames case-insensitively, so CAROL and carol share a counter', async () => {
    await failTimes(3, 'CAROL');
    await failTimes(2, 'Carol');
    await attempt('correct horse').expect(401);
  });

  it('does not lock out other usernames', async () => {
    await t.users.createUser({ username: 'dave', password: 'dave password' });
    await failTimes(5);
    await attempt('dave password', 'dave').expect(200);
  });

  it('starts a new window once the old one has passed', async () => {
    await failTimes(5);
    const lockouts = t.app.get(DataSource).getRepository(LoginLockout);
    for (const row of await lockouts.find()) await lockouts.update({ key: row.key }, { windowStart: Date.now() - 16 * 60 * 1000 });
    await attempt('correct horse').expect(200);
  });

  it('stores no username or address in clear', async () => {
    await failTimes(1);
    const rows = await t.app.get(DataSource).getRepository(LoginLockout).find();
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.key).toMatch(/^[0-9a-f]{64}$/);
      expect(row.failures).toBe(1);
    }
  });

  it('keeps a successful login within the statement budget (one lockout read, no lockout write)', async () => {
    t.sql.reset();
    await attempt('correct horse').expect(200);
    expect(t.sql.statements.filter((sql) => /auth_login_lockout/.test(sql))).toHaveLength(1);
    expect(t.sql.statements.length).toBeLessThanOrEqual(4);
  });
});

describe('throttle options', () => {
  it('throttle: false turns it off', async () => {
    const t = await createTestApp({ auth: { backends: [ModelBackend], throttle: false } });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      for (let i = 0; i < 7; i++) await request(t.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'no' }).expect(401);
      await request(t.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    } finally {
      await t.close();
    }
  });

  it('maxFailures sets the limit', async () => {
    const t = await createTestApp({ auth: { backends: [ModelBackend], throttle: { maxFailures: 2 } } });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      for (let i = 0; i < 2; i++) await request(t.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'no' }).expect(401);
      await request(t.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(401);
    } finally {
      await t.close();
    }
  });
});

describe("authenticate's callback kind", () => {
  /** A view that calls every login a callback, password or not (a careless one, or one misled by its input). */
  @Controller()
  class CallbackLogin {
    constructor(private readonly auth: AuthService) {}

    @Post('callback-login')
    @HttpCode(200)
    async login(@Req() request: Request, @Body() body: unknown) {
      const user = await this.auth.authenticate(request, body, { kind: 'callback' });
      if (!user) throw new UnauthorizedException();
      return {};
    }
  }

  it('keeps counting credentials with a password or a username as guesses, whatever the caller calls them', async () => {
    const t = await createTestApp({ auth: { backends: [ModelBackend], throttle: { maxFailures: 2 } }, controllers: [CallbackLogin] });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const server = t.app.getHttpServer();
      for (let i = 0; i < 2; i++) await request(server).post('/callback-login').send({ username: 'carol', password: 'no' }).expect(401);
      // Locked out: even the right password is refused.
      await request(server).post('/callback-login').send({ username: 'carol', password: 'correct horse' }).expect(401);
      expect(await t.app.get(DataSource).getRepository(LoginLockout).count()).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  });
});

// Runs only when TEST_REDIS_URL is set; redisUrl() reports when it is not.
const url = redisUrl();
describeIf(url)('RedisLockoutStore', () => {
  it('shares counters between two app instances', async () => {
    const client = createClient({ url });
    await client.connect();
    const prefix = `${uniqueName('lockout')}:`;
    const store = new RedisLockoutStore(client as any, prefix);
    const a = await createTestApp({ auth: { backends: [ModelBackend], throttle: { store } } });
    const b = await createTestApp({ auth: { backends: [ModelBackend], throttle: { store } } });
    try {
      for (const t of [a, b]) await t.users.createUser({ username: 'carol', password: 'correct horse' });
      for (let i = 0; i < 3; i++) await request(a.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'no' }).expect(401);
      for (let i = 0; i < 2; i++) await request(b.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'no' }).expect(401);
      await request(a.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(401);
      // The username from this address, the account from anywhere, the address across accounts.
      const keys = await client.keys(`${prefix}*`);
      expect(keys).toHaveLength(3);
      for (const key of keys) expect(await client.pTTL(key)).toBeGreaterThan(0);
    } finally {
      for (const key of await client.keys(`${prefix}*`)) await client.del(key);
      await a.close();
      await b.close();
      client.destroy();
    }
  });
});

/** The counter is one atomic statement, so failures on several instances at once all count. */
const pg = postgresUrl();
const lockoutDatabases: Array<{ name: string; available?: boolean; connect: () => Promise<{ dataSource: DataSource; cleanup: () => Promise<void> }> }> = [
  {
    name: 'SQLite',
    connect: async () => {
      const dataSource = await new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [...authEntities], synchronize: true }).initialize();
      return { dataSource, cleanup: () => dataSource.destroy() };
    },
  },
  {
    name: 'PostgreSQL',
    available: Boolean(pg),
    connect: async () => {
      const schema = uniqueName('lockout');
      const admin = await new DataSource({ type: 'postgres', url: pg }).initialize();
      await admin.query(`CREATE SCHEMA "${schema}"`);
      const dataSource = await new DataSource({ type: 'postgres', url: pg, schema, entities: [...authEntities], synchronize: true }).initialize();
      return {
        dataSource,
        cleanup: async () => {
          await dataSource.destroy();
          await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
          await admin.destroy();
        },
      };
    },
  },
];

describeEach(lockoutDatabases, ({ name }) => `TypeOrmLockoutStore on ${name}`, ({ connect }) => {
  it('counts every one of many simultaneous failures, and restarts at 1 after the window', async () => {
    const { dataSource, cleanup } = await connect();
    try {
      const store = new TypeOrmLockoutStore(dataSource);
      const now = Date.now();
      // Every caller saw "no failures yet", as parallel requests on several instances would.
      await Promise.all(Array.from({ length: 10 }, () => store.recordFailure('k', null, now, 60_000)));
      expect(await store.get('k')).toEqual({ failures: 10, windowStart: now });
      await store.recordFailure('k', null, now + 60_000, 60_000);
      expect(await store.get('k')).toEqual({ failures: 1, windowStart: now + 60_000 });
    } finally {
      await cleanup();
    }
  });
});
