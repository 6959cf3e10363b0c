import { unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ModelBackend, SessionRecord } from 'nestjs-session-auth';
import { Member } from './support/member.entity.js';
import { describeEach, postgresUrl, uniqueName } from './support/services.js';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';

/**
 * The whole HTTP login flow on a database that several app instances share: the
 * machine's PostgreSQL when TEST_POSTGRES_URL is set, and always an SQLite file.
 */
interface SharedDatabase {
  name: string;
  available?: boolean;
  /** Prepare an empty database; resolves the connection options every instance uses. */
  setup(): Promise<Record<string, unknown>>;
  teardown(): Promise<void>;
}

function sqliteFile(): SharedDatabase {
  const file = join(tmpdir(), `${uniqueName('nsa-shared')}.sqlite`);
  return {
    name: 'an SQLite file',
    setup: async () => ({ type: 'better-sqlite3', database: file }),
    teardown: async () => {
      for (const suffix of ['', '-wal', '-shm', '-journal']) {
        try {
          unlinkSync(file + suffix);
        } catch {
          // not there
        }
      }
    },
  };
}

function postgres(url: string): SharedDatabase {
  // A schema of this run's own: repeatable, and no clash with other suites on the `test` database.
  const schema = uniqueName('login_flow');
  async function admin(sql: string) {
    const ds = await new DataSource({ type: 'postgres', url }).initialize();
    try {
      await ds.query(sql);
    } finally {
      await ds.destroy();
    }
  }
  return {
    name: 'PostgreSQL',
    async setup() {
      await admin(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      return { type: 'postgres', url, schema };
    },
    teardown: () => admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
  };
}

const pgUrl = postgresUrl();
const databases: SharedDatabase[] = [sqliteFile(), { ...postgres(pgUrl ?? ''), available: Boolean(pgUrl) }];

describeEach(databases, ({ name }) => `the login flow over HTTP on ${name}`, (database) => {
  let connection: Record<string, unknown>;
  let first: TestApp;
  let carolId: string;
  const others: TestApp[] = [];

  beforeAll(async () => {
    connection = await database.setup();
  });
  afterAll(() => database.teardown());

  beforeEach(async () => {
    // The first instance starts from empty tables (dropSchema) and creates them.
    first = await createTestApp({ database: { ...connection, dropSchema: true } });
    carolId = String((await first.users.createUser({ username: 'carol', password: 'correct horse' })).id);
    await first.users.createUser({ username: 'alice' });
    first.sql.reset();
  });

  afterEach(async () => {
    for (const app of others.splice(0)) await app.close();
    await first.close();
  });

  /** Another instance of the app on the same database: it must not drop or alter the tables. */
  async function anotherInstance(): Promise<TestApp> {
    const app = await createTestApp({ database: { ...connection, dropSchema: false }, synchronize: false });
    others.push(app);
    return app;
  }

  function sessionRows() {
    return first.app.get(DataSource).getRepository(SessionRecord);
  }

  async function login(app: TestApp, username: string, password: string): Promise<string> {
    const response = await request(app.app.getHttpServer()).post('/login').send({ username, password }).expect(200, { username });
    const cookie = sessionCookie(response.headers['set-cookie']);
    expect(cookie).toBeDefined();
    return cookie!;
  }

  it('logs in, knows the user on /me, logs out, and treats the replayed cookie as anonymous', async () => {
    const server = first.app.getHttpServer();
    const cookie = await login(first, 'carol', 'correct horse');
    await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
    const rows = await sessionRows().find();
    expect(rows).toHaveLength(1);
    expect(rows[0].userId).toBe(carolId);

    await request(server).post('/logout').set('Cookie', cookie).expect(200);
    expect(await sessionRows().count({ where: { revoked: false } })).toBe(0);
    await request(server).get('/me').set('Cookie', cookie).expect(401);
    await request(server).get('/whoami').set('Cookie', cookie).expect(200, { username: '', isAuthenticated: false });
  });

  it('logs in through the second backend when ModelBackend passes', async () => {
    const cookie = await login(first, 'alice', 'wonderland');
    await request(first.app.getHttpServer())
      .get('/me')
      .set('Cookie', cookie)
      .expect(200, { username: 'alice', backend: 'DictionaryBackend' });
  });

  it('writes the session row once on login, and nothing on a read-only /me', async () => {
    const server = first.app.getHttpServer();
    first.sql.reset();
    const cookie = await login(first, 'carol', 'correct horse');
    const sessionWrites = first.sql.writes.filter((sql) => /auth_session/.test(sql));
    expect(sessionWrites).toHaveLength(1);
    first.sql.reset();
    await request(server).get('/me').set('Cookie', cookie).expect(200);
    expect(first.sql.writes).toEqual([]);
    // ModelBackend's users share the sessions' database: the session and its user in one read.
    expect(first.sql.reads).toHaveLength(1);
    expect(first.sql.reads[0]).toMatch(/auth_session.*JOIN.*auth_user/s);
  });

  it('resolves the user the session data names, even when the row\'s user_id column names another', async () => {
    const bob = await first.users.createUser({ username: 'bob', password: 'pw' });
    const cookie = await login(first, 'carol', 'correct horse');
    await sessionRows().update({ userId: carolId }, { userId: String(bob.id) });
    await request(first.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
  });

  it('reads a session and its user of a custom entity with UUID keys in one statement', async () => {
    const app = await createTestApp({
      database: { ...connection, dropSchema: false },
      entities: [Member],
      auth: { backends: [ModelBackend], userEntity: Member },
    });
    others.push(app);
    await app.users.createUser({ username: 'mia', password: 'correct horse' });
    const cookie = await login(app, 'mia', 'correct horse');
    app.sql.reset();
    await request(app.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'mia', backend: 'ModelBackend' });
    expect(app.sql.reads).toHaveLength(1);
    await app.users.repository.update({ username: 'mia' }, { isActive: false } as any);
    await request(app.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
  });

  it.each([
    ['a username with a NUL byte', { username: 'carol\u0000', password: 'correct horse' }],
    ['a dictionary username with a NUL byte', { username: 'al\u0000ice', password: 'wonderland' }],
    ['a password with a NUL byte', { username: 'carol', password: 'correct\u0000horse' }],
  ])('answers 401, never 500, for %s, and stores nothing', async (_what, credentials) => {
    const response = await request(first.app.getHttpServer()).post('/login').send(credentials);
    expect(response.status).toBe(401);
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(await sessionRows().count({ where: { revoked: false } })).toBe(0);
  });

  it('keeps session data with a NUL byte intact', async () => {
    const server = first.app.getHttpServer();
    const visit = await request(server).post('/session/note/a%00b').expect(200);
    const cookie = sessionCookie(visit.headers['set-cookie'])!;
    await request(server).get('/session/note').set('Cookie', cookie).expect(200, { value: 'a\u0000b' });
  });

  it('serves a session cookie on another app instance sharing the database, and logs it out there', async () => {
    const second = await anotherInstance();
    const cookie = await login(first, 'carol', 'correct horse');
    await request(second.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });

    await request(second.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
    await request(first.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
  });

  it('lets a user log in on one instance while another already runs, without losing its tables', async () => {
    const second = await anotherInstance();
    const cookie = await login(second, 'carol', 'correct horse');
    await request(first.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200);
    expect(await first.users.findByUsername('carol')).not.toBeNull();
  });

  it('treats a session whose row has expired as anonymous', async () => {
    const cookie = await login(first, 'carol', 'correct horse');
    await sessionRows().update({ userId: carolId }, { expiresAt: Date.now() - 1000 });
    await request(first.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
  });

  it('treats a session row that is not session data as anonymous, not as a store failure (503)', async () => {
    const cookie = await login(first, 'carol', 'correct horse');
    await sessionRows().update({ userId: carolId }, { data: JSON.stringify({ _auth_user_id: carolId }) });
    const server = first.app.getHttpServer();
    await request(server).get('/me').set('Cookie', cookie).timeout(5000).expect(401);
    await request(server).get('/whoami').set('Cookie', cookie).timeout(5000).expect(200, { username: '', isAuthenticated: false });
  });
});
