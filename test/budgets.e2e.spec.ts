import { Injectable } from '@nestjs/common';
import request from 'supertest';
import { ModelBackend, UserManager, type AuthBackend, type Credentials, type PrefetchedUser } from 'nestjs-session-auth';
import { createTestApp, logIn, sessionCookie, type TestApp } from './support/test-app.js';

/** Statements counted through a TypeORM logger on the embedded SQLite database. */
describe('per-request database budgets', () => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    t = await createTestApp();
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterEach(() => t.close());

  const loginCarol = () => logIn(t.app, 'carol', 'correct horse');

  it('a request without a session cookie runs no statement', async () => {
    expect(await t.sql.during(() => request(server).get('/whoami').expect(200))).toEqual([]);
    expect(await t.sql.during(() => request(server).get('/me').expect(401))).toEqual([]);
  });

  it('an anonymous visitor who stores nothing gets no session row and no cookie', async () => {
    const statements = await t.sql.during(async () => {
      const response = await request(server).get('/whoami').expect(200);
      expect(response.headers['set-cookie']).toBeUndefined();
    });
    expect(statements).toEqual([]);
  });

  it('a logged-in read-only GET /me reads the session and its user in one statement and writes nothing', async () => {
    const cookie = await loginCarol();
    for (let i = 0; i < 3; i++) {
      t.sql.reset();
      const response = await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
      expect(response.headers['set-cookie']).toBeUndefined();
      expect(t.sql.reads).toHaveLength(1);
      expect(t.sql.reads[0]).toMatch(/auth_session.*JOIN.*auth_user/s);
      expect(t.sql.writes).toEqual([]);
    }
  });

  it('a ModelBackend whose getUser() is its own is asked for the user: two reads, the user it returns', async () => {
    let asked = 0;
    class CountingModelBackend extends ModelBackend {
      override async getUser(id: string) {
        asked++;
        return super.getUser(id);
      }
    }
    const own = await createTestApp({ auth: { backends: [CountingModelBackend] } });
    try {
      await own.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = await logIn(own.app, 'carol', 'correct horse');
      own.sql.reset();
      await request(own.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'CountingModelBackend' });
      expect(asked).toBe(1);
      expect(own.sql.reads).toHaveLength(2);
      expect(own.sql.reads.some((sql) => /JOIN/.test(sql))).toBe(false);
    } finally {
      await own.close();
    }
  });

  it('a backend of the app\'s own that builds its user from the user table\'s row reads the session and its user in one statement', async () => {
    /** Users of the built-in table, without extending ModelBackend: the two hooks are all it takes. */
    @Injectable()
    class TableBackend implements AuthBackend {
      asked = 0;
      constructor(private readonly users: UserManager) {}
      async authenticate(_request: unknown, { username, password }: Credentials) {
        const user = typeof username === 'string' ? await this.users.findByUsername(username) : null;
        return user && (await this.users.checkPassword(user, password)) ? user : null;
      }
      getUser(id: string) {
        this.asked++;
        return this.users.findById(id);
      }
      sessionUserTable() {
        return { dataSource: this.users.dataSource, entity: this.users.entity };
      }
      userFromSessionRow(prefetched: PrefetchedUser, id: string) {
        if (prefetched.entity !== this.users.entity) return undefined;
        return prefetched.row && this.users.fromRow(prefetched.row, id);
      }
    }
    const own = await createTestApp({ auth: { backends: [TableBackend] }, providers: [TableBackend] });
    try {
      await own.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = await logIn(own.app, 'carol', 'correct horse');
      own.sql.reset();
      await request(own.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'TableBackend' });
      expect(own.sql.reads).toHaveLength(1);
      expect(own.sql.reads[0]).toMatch(/auth_session.*JOIN.*auth_user/s);
      expect(own.app.get(TableBackend).asked).toBe(0);
      // A user deleted since the login is nobody, from the same single read.
      await own.users.repository.delete({ username: 'carol' });
      own.sql.reset();
      await request(own.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
      expect(own.sql.reads).toHaveLength(1);
    } finally {
      await own.close();
    }
  });

  it('a fresh visitor\'s successful login takes at most 4 statements, one session write and no DELETE', async () => {
    const statements = await t.sql.during(() => loginCarol());
    expect(statements.length).toBeLessThanOrEqual(4);
    expect(statements.filter((sql) => /auth_session/.test(sql) && !/^SELECT/i.test(sql))).toHaveLength(1);
    expect(statements.filter((sql) => /^DELETE/i.test(sql))).toEqual([]);
  });

  it('a login over a stored anonymous session revokes the old row once and writes the new one once', async () => {
    const visit = await request(server).post('/session/cart/1').expect(200);
    const cookie = sessionCookie(visit.headers['set-cookie'])!;
    t.sql.reset();
    await request(server).post('/login').set('Cookie', cookie).send({ username: 'carol', password: 'correct horse' }).expect(200);
    const sessionWrites = t.sql.writes.filter((sql) => /auth_session/.test(sql));
    expect(sessionWrites.filter((sql) => /^UPDATE/i.test(sql) && /revoked/.test(sql))).toHaveLength(1);
    expect(sessionWrites.filter((sql) => /^INSERT/i.test(sql))).toHaveLength(1);
    expect(sessionWrites).toHaveLength(2);
  });

  it('with storeOptions.touchAfter 0, every read-only request extends the row (one UPDATE)', async () => {
    const eager = await createTestApp({ auth: { session: { secret: 'x'.repeat(32), storeOptions: { touchAfter: 0, pruneInterval: false } } } });
    try {
      await eager.users.createUser({ username: 'carol', password: 'correct horse' });
      const login = await request(eager.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' });
      const cookie = sessionCookie(login.headers['set-cookie'])!;
      eager.sql.reset();
      await request(eager.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200);
      expect(eager.sql.writes).toHaveLength(1);
      expect(eager.sql.writes[0]).toMatch(/^UPDATE "auth_session" SET "expires_at"/);
    } finally {
      await eager.close();
    }
  });
});

describe('a request that fails with a 5xx', () => {
  it('saves none of its session changes', async () => {
    const { Controller, Post, Req, InternalServerErrorException } = await import('@nestjs/common');
    const { PagesController } = await import('./support/test-app.js');
    @Controller('broken')
    class BrokenController {
      @Post(':value')
      fail(@Req() req: any) {
        req.session.cart = req.params.value;
        throw new InternalServerErrorException('something broke half-way');
      }
    }
    const t = await createTestApp({ controllers: [PagesController, BrokenController] });
    try {
      const server = t.app.getHttpServer();
      const visit = await request(server).post('/session/cart/kept').expect(200);
      const cookie = sessionCookie(visit.headers['set-cookie'])!;
      await request(server).post('/broken/lost').set('Cookie', cookie).expect(500);
      await request(server).get('/session/cart').set('Cookie', cookie).expect(200, { value: 'kept' });
      // A fresh visitor's failed request leaves no row behind either.
      t.sql.reset();
      const failed = await request(server).post('/broken/lost').expect(500);
      expect(sessionCookie(failed.headers['set-cookie'])).toBeUndefined();
      expect(t.sql.writes).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
