import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import session, { type CookieOptions, type SessionData } from 'express-session';
import { DataSource, type DataSourceOptions, type Repository } from 'typeorm';
import { SessionRecord, TypeOrmSessionStore, type TypeOrmSessionStoreOptions } from 'nestjs-session-auth';
import { describeEach, mysqlUrl, postgresUrl, uniqueName } from './support/services.js';
import { SqlCounter } from './support/sql-counter.js';

/**
 * TypeOrmSessionStore against a real DataSource: the embedded SQLite always, the machine's
 * PostgreSQL when TEST_POSTGRES_URL is set (each run in a schema of its own, dropped afterwards),
 * and its MySQL/MariaDB when TEST_MYSQL_URL is set (a database of its own).
 */
interface Database {
  name: string;
  available?: boolean;
  /** Connection options for one DataSource; `logger` is added by the suite. */
  options(): Promise<DataSourceOptions>;
  cleanup(): Promise<void>;
}

const sqlite: Database = {
  name: 'SQLite (better-sqlite3)',
  options: async () => ({ type: 'better-sqlite3', database: ':memory:' }),
  cleanup: async () => {},
};

function postgres(url: string): Database {
  const schema = uniqueName('session_store');
  const admin = () => new DataSource({ type: 'postgres', url });
  return {
    name: 'PostgreSQL',
    async options() {
      const ds = await admin().initialize();
      try {
        await ds.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      } finally {
        await ds.destroy();
      }
      return { type: 'postgres', url, schema };
    },
    async cleanup() {
      const ds = await admin().initialize();
      try {
        await ds.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await ds.destroy();
      }
    },
  };
}

/** MySQL or MariaDB: a database of its own per run, dropped afterwards. */
function mysql(url: string): Database {
  const name = uniqueName('session_store');
  const admin = () => new DataSource({ type: 'mariadb', url });
  return {
    name: 'MySQL/MariaDB',
    async options() {
      const ds = await admin().initialize();
      try {
        await ds.query(`CREATE DATABASE IF NOT EXISTS \`${name}\``);
      } finally {
        await ds.destroy();
      }
      return { type: 'mariadb', url, database: name };
    },
    async cleanup() {
      const ds = await admin().initialize();
      try {
        await ds.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await ds.destroy();
      }
    },
  };
}

const pgUrl = postgresUrl();
const myUrl = mysqlUrl();
const databases: Database[] = [
  sqlite,
  { ...postgres(pgUrl ?? ''), available: Boolean(pgUrl) },
  { ...mysql(myUrl ?? ''), available: Boolean(myUrl) },
];

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TWO_WEEKS = 14 * DAY;

/** express-session's Cookie (its typings omit the constructor's options). */
const Cookie = session.Cookie as unknown as new (options: CookieOptions) => session.Cookie;

/** Session data as express-session hands it to a store: a real Cookie plus the app's keys. */
function sessionData(extra: Record<string, unknown> = {}, maxAge: number | null = TWO_WEEKS): SessionData {
  const cookie = new Cookie({ maxAge: maxAge ?? undefined, httpOnly: true, path: '/' });
  return { cookie, ...extra } as unknown as SessionData;
}

/** What express-session does to a loaded session before `touch`: the expiry restarts from now. */
function restartCookie(data: SessionData): SessionData {
  const cookie = new Cookie({ maxAge: data.cookie.originalMaxAge ?? undefined, httpOnly: true, path: '/' });
  return { ...data, cookie } as SessionData;
}

function get(store: TypeOrmSessionStore, sid: string): Promise<SessionData | null | undefined> {
  return new Promise((resolve, reject) => store.get(sid, (error, data) => (error ? reject(error) : resolve(data))));
}

function set(store: TypeOrmSessionStore, sid: string, data: SessionData): Promise<void> {
  return new Promise((resolve, reject) => store.set(sid, data, (error) => (error ? reject(error) : resolve())));
}

function touch(store: TypeOrmSessionStore, sid: string, data: SessionData): Promise<void> {
  return new Promise((resolve, reject) => store.touch(sid, data, (error) => (error ? reject(error) : resolve())));
}

function destroy(store: TypeOrmSessionStore, sid: string): Promise<void> {
  return new Promise((resolve, reject) => store.destroy(sid, (error) => (error ? reject(error) : resolve())));
}

/** Call a store method and capture what reaches its callback (or what it threw). */
function outcome(run: (callback: (error?: unknown, result?: unknown) => void) => void): Promise<{ error?: unknown; result?: unknown; thrown?: unknown }> {
  return new Promise((resolve) => {
    try {
      run((error, result) => resolve({ error, result }));
    } catch (thrown) {
      resolve({ thrown });
    }
  });
}

/** JSON round trip: what a store that serialises sessions gives back. */
function asStored(data: SessionData): unknown {
  return JSON.parse(JSON.stringify(data));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describeEach(databases, ({ name }) => `TypeOrmSessionStore on ${name}`, (database) => {
  const sql = new SqlCounter();
  let dataSource: DataSource;
  let rows: Repository<SessionRecord>;
  const stores: TypeOrmSessionStore[] = [];

  function makeStore(options: TypeOrmSessionStoreOptions = {}): TypeOrmSessionStore {
    const store = new TypeOrmSessionStore(dataSource, { pruneInterval: false, ...options });
    stores.push(store);
    return store;
  }

  async function connect(): Promise<DataSource> {
    return new DataSource({
      ...(await database.options()),
      entities: [SessionRecord],
      synchronize: true,
      logging: true,
      logger: sql,
    } as DataSourceOptions).initialize();
  }

  /** A row written directly, bypassing the store (an old, expiring or corrupted session). */
  async function insertRow(id: string, expiresAt: number, data = JSON.stringify(sessionData()), userId: string | null = null) {
    await rows.insert({ id, data, expiresAt, userId });
  }

  async function ids(): Promise<string[]> {
    return (await rows.find({ select: { id: true }, where: { revoked: false } })).map((row) => row.id).sort();
  }

  beforeAll(async () => {
    dataSource = await connect();
    rows = dataSource.getRepository(SessionRecord);
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database.cleanup();
  });

  beforeEach(async () => {
    await rows.clear();
    sql.reset();
  });

  afterEach(() => {
    for (const store of stores.splice(0)) store.close();
    jest.restoreAllMocks();
  });

  describe('get and set', () => {
    it('reads back the session it stored', async () => {
      const store = makeStore();
      const data = sessionData({ cart: [1, 2], greeting: 'hello' });
      await set(store, 'sid-1', data);
      expect(await get(store, 'sid-1')).toEqual(asStored(data));
    });

    it('saves a session in a single statement (one upsert)', async () => {
      const store = makeStore();
      sql.reset();
      await set(store, 'sid-1', sessionData({ n: 1 }));
      expect(sql.statements).toHaveLength(1);
      sql.reset();
      await set(store, 'sid-1', sessionData({ n: 2 }));
      expect(sql.statements).toHaveLength(1);
    });

    it('overwrites the row when a session is saved again', async () => {
      const store = makeStore();
      await set(store, 'sid-1', sessionData({ step: 1 }));
      await set(store, 'sid-1', sessionData({ step: 2 }));
      expect(await rows.count()).toBe(1);
      expect(await get(store, 'sid-1')).toMatchObject({ step: 2 });
    });

    it('fills user_id from _auth_user_id, and clears it when the session no longer has a user', async () => {
      const store = makeStore();
      await set(store, 'sid-1', sessionData({ _auth_user_id: '42', _auth_user_backend: 'ModelBackend' }));
      expect((await rows.findOneByOrFail({ id: 'sid-1' })).userId).toBe('42');
      await set(store, 'sid-1', sessionData({ cart: [] }));
      expect((await rows.findOneByOrFail({ id: 'sid-1' })).userId).toBeNull();
    });

    it('stores the cookie expiry as epoch milliseconds (a number, also from a bigint column)', async () => {
      const store = makeStore();
      const data = sessionData();
      await set(store, 'sid-1', data);
      const row = await rows.findOneByOrFail({ id: 'sid-1' });
      expect(typeof row.expiresAt).toBe('number');
      expect(row.expiresAt).toBe((data.cookie.expires as Date).getTime());
    });

    it('gives a cookie without maxAge (browser session) the store ttl', async () => {
      const store = makeStore({ ttl: 3 * HOUR });
      const before = Date.now();
      await set(store, 'sid-1', sessionData({}, null));
      const { expiresAt } = await rows.findOneByOrFail({ id: 'sid-1' });
      expect(expiresAt).toBeGreaterThanOrEqual(before + 3 * HOUR);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3 * HOUR);
      expect(await get(store, 'sid-1')).not.toBeNull();
    });

    it('stores data with NUL bytes and non-ASCII text unchanged', async () => {
      const store = makeStore();
      const data = sessionData({ note: 'a\u0000b', name: 'Zoë 🍪' });
      await set(store, 'sid-1', data);
      expect(await get(store, 'sid-1')).toEqual(asStored(data));
    });

    it('answers null for an unknown session id', async () => {
      const store = makeStore();
      await set(store, 'sid-1', sessionData());
      expect(await get(store, 'no-such-session')).toBeNull();
    });

    it('answers null for a row whose expiry has passed', async () => {
      const store = makeStore();
      await insertRow('expired', Date.now() - 1000);
      await insertRow('live', Date.now() + HOUR);
      expect(await get(store, 'expired')).toBeNull();
      expect(await get(store, 'live')).not.toBeNull();
    });

    it.each([
      ['text that is not JSON', '{"cookie": {'],
      ['an empty string', ''],
      ['JSON null', 'null'],
      ['a JSON number', '42'],
      ['a JSON string', '"session"'],
      ['a JSON array', '[{"cookie": {}}]'],
      ['an object without a cookie', '{"_auth_user_id": "1"}'],
      ['an object whose cookie is not an object', '{"cookie": "x", "_auth_user_id": "1"}'],
    ])('answers null, not an error, for a corrupted row holding %s', async (_what, data) => {
      jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => {});
      const store = makeStore();
      await insertRow('corrupt', Date.now() + HOUR, data);
      const { error, result, thrown } = await outcome((done) => store.get('corrupt', done));
      expect(thrown).toBeUndefined();
      expect(error).toBeFalsy();
      expect(result).toBeNull();
    });

    it('never lets a request that loaded a session before its logout save it back', async () => {
      const store = makeStore();
      await set(store, 'sid-1', sessionData({ _auth_user_id: '1' }));
      const loaded = (await get(store, 'sid-1'))!; // a slow request is still running with it
      await destroy(makeStore(), 'sid-1'); // meanwhile the user logs out
      await set(store, 'sid-1', { ...loaded, cart: 'written late' } as SessionData);
      expect(await get(store, 'sid-1')).toBeNull();
      const tombstone = await rows.findOneByOrFail({ id: 'sid-1' });
      expect(tombstone).toMatchObject({ revoked: true, userId: null, data: '{}' });
    });

    it('destroys a session: the row is gone and reads answer null', async () => {
      const store = makeStore();
      await set(store, 'sid-1', sessionData());
      await set(store, 'sid-2', sessionData());
      await destroy(store, 'sid-1');
      expect(await get(store, 'sid-1')).toBeNull();
      expect(await ids()).toEqual(['sid-2']);
    });
  });

  describe('touch (a read-only request)', () => {
    it('writes nothing while less than touchAfter of the lifetime has passed', async () => {
      const store = makeStore({ touchAfter: 0.5 });
      const data = sessionData();
      await set(store, 'sid-1', data);
      const stored = (await rows.findOneByOrFail({ id: 'sid-1' })).expiresAt;
      const loaded = (await get(store, 'sid-1'))!;
      sql.reset();
      await touch(store, 'sid-1', restartCookie(loaded));
      expect(sql.statements).toEqual([]);
      expect((await rows.findOneByOrFail({ id: 'sid-1' })).expiresAt).toBe(stored);
    });

    it('extends expires_at with one UPDATE once touchAfter of the lifetime has passed', async () => {
      const store = makeStore({ touchAfter: 0.5 });
      // Logged in 10 of 14 days ago: 4 days left, more than half the lifetime has passed.
      const nearExpiry = Date.now() + 4 * DAY;
      await insertRow('sid-1', nearExpiry);
      const loaded = (await get(store, 'sid-1'))!;
      sql.reset();
      const before = Date.now();
      await touch(store, 'sid-1', restartCookie(loaded));
      expect(sql.statements).toHaveLength(1);
      expect(sql.statements[0]).toMatch(/^\s*UPDATE\b/i);
      const { expiresAt } = await rows.findOneByOrFail({ id: 'sid-1' });
      // express-session derives originalMaxAge from a clock read, so it may be a millisecond short.
      const lifetime = loaded.cookie.originalMaxAge!;
      expect(lifetime).toBeGreaterThan(TWO_WEEKS - 1000);
      expect(expiresAt).toBeGreaterThanOrEqual(before + lifetime);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + lifetime);
    });

    it('takes the share from touchAfter: 70% of the lifetime passed is not enough for touchAfter 0.9', async () => {
      const lazy = makeStore({ touchAfter: 0.9 });
      const eager = makeStore({ touchAfter: 0.5 });
      const remaining = 0.3 * TWO_WEEKS;
      await insertRow('sid-1', Date.now() + remaining);
      await insertRow('sid-2', Date.now() + remaining);
      const one = (await get(lazy, 'sid-1'))!;
      const two = (await get(eager, 'sid-2'))!;
      sql.reset();
      await touch(lazy, 'sid-1', restartCookie(one));
      expect(sql.writes).toEqual([]);
      await touch(eager, 'sid-2', restartCookie(two));
      expect(sql.writes).toHaveLength(1);
    });

    it('extends the expiry on every touch with touchAfter: 0', async () => {
      const store = makeStore({ touchAfter: 0 });
      await set(store, 'sid-1', sessionData());
      for (let request = 0; request < 3; request++) {
        const loaded = (await get(store, 'sid-1'))!;
        const before = (await rows.findOneByOrFail({ id: 'sid-1' })).expiresAt;
        await delay(3);
        sql.reset();
        await touch(store, 'sid-1', restartCookie(loaded));
        expect(sql.writes).toHaveLength(1);
        expect((await rows.findOneByOrFail({ id: 'sid-1' })).expiresAt).toBeGreaterThan(before);
      }
    });

    it('never brings back a session destroyed between its read and its touch', async () => {
      const store = makeStore({ touchAfter: 0 });
      await set(store, 'sid-1', sessionData());
      const loaded = (await get(store, 'sid-1'))!;
      await destroy(makeStore(), 'sid-1'); // logged out elsewhere
      await touch(store, 'sid-1', restartCookie(loaded));
      expect(await rows.count({ where: { revoked: false } })).toBe(0);
      expect(await get(store, 'sid-1')).toBeNull();
      expect(await get(store, 'sid-1')).toBeNull();
    });
  });

  describe('prune', () => {
    it('deletes only expired rows, in batches of pruneBatchSize, and returns how many', async () => {
      const store = makeStore({ pruneBatchSize: 3 });
      const now = Date.now();
      for (let i = 0; i < 7; i++) await insertRow(`expired-${i}`, now - (i + 1) * MINUTE);
      for (let i = 0; i < 3; i++) await insertRow(`live-${i}`, now + (i + 1) * HOUR);
      sql.reset();
      expect(await store.prune()).toBe(7);
      const deletes = sql.writes.filter((statement) => /^\s*DELETE\b/i.test(statement));
      expect(deletes).toHaveLength(3); // 3 + 3 + 1
      expect(await ids()).toEqual(['live-0', 'live-1', 'live-2']);
    });

    it('keeps live sessions when pruning, and answers 0 when nothing has expired', async () => {
      const store = makeStore({ pruneBatchSize: 2 });
      await set(store, 'a', sessionData());
      await set(store, 'b', sessionData({ _auth_user_id: '7' }));
      sql.reset();
      expect(await store.prune()).toBe(0);
      expect(sql.writes).toEqual([]);
      expect(await ids()).toEqual(['a', 'b']);
      expect(await get(store, 'b')).toMatchObject({ _auth_user_id: '7' });
    });

    it('keeps a session that was extended while a prune was under way', async () => {
      const store = makeStore({ pruneBatchSize: 10 });
      await insertRow('stale', Date.now() - MINUTE);
      await insertRow('revived', Date.now() - MINUTE);
      // Between the prune's SELECT of expired ids and its DELETE, another request extends one row.
      const repository = dataSource.getRepository(SessionRecord);
      const find = repository.find.bind(repository);
      jest.spyOn(repository, 'find').mockImplementationOnce(async (options) => {
        const batch = await find(options);
        await rows.update({ id: 'revived' }, { expiresAt: Date.now() + HOUR });
        return batch;
      });
      const pruned = await store.prune();
      expect(await ids()).toEqual(['revived']);
      expect(pruned).toBe(1);
    });
  });

  describe('destroyUserSessions', () => {
    it("deletes every session of that user and only those, returning how many", async () => {
      const store = makeStore();
      await set(store, 'user1-laptop', sessionData({ _auth_user_id: '1' }));
      await set(store, 'user1-phone', sessionData({ _auth_user_id: '1' }));
      await set(store, 'user11', sessionData({ _auth_user_id: '11' }));
      await set(store, 'user2', sessionData({ _auth_user_id: '2' }));
      await set(store, 'anonymous', sessionData({ cart: [] }));
      expect(await store.destroyUserSessions(1)).toBe(2);
      expect(await ids()).toEqual(['anonymous', 'user11', 'user2']);
      expect(await store.destroyUserSessions('1')).toBe(0);
    });
  });

  describe('the prune timer', () => {
    it('prunes expired rows every pruneInterval until close()', async () => {
      const store = makeStore({ pruneInterval: 20 });
      await insertRow('expired-1', Date.now() - MINUTE);
      await insertRow('live', Date.now() + HOUR);
      for (let waited = 0; (await rows.count()) > 1 && waited < 3000; waited += 20) await delay(20);
      expect(await ids()).toEqual(['live']);

      store.close();
      await delay(50); // let a prune that had already started finish
      await insertRow('expired-2', Date.now() - MINUTE);
      await delay(150);
      expect(await ids()).toEqual(['expired-2', 'live']);
    });

    it('does not keep the process alive (the timer is unref\'d)', () => {
      const setInterval = jest.spyOn(globalThis, 'setInterval');
      makeStore({ pruneInterval: 60_000 });
      expect(setInterval).toHaveBeenCalledTimes(1);
      const timer = setInterval.mock.results[0].value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
    });

    it('starts no timer with pruneInterval: false', () => {
      const setInterval = jest.spyOn(globalThis, 'setInterval');
      makeStore({ pruneInterval: false });
      expect(setInterval).not.toHaveBeenCalled();
    });

    it('logs a failed scheduled prune and keeps pruning', async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => {});
      const store = makeStore({ pruneInterval: 10 });
      const prune = jest.spyOn(store, 'prune').mockRejectedValue(new Error('database is locked'));
      for (let waited = 0; prune.mock.calls.length < 2 && waited < 3000; waited += 10) await delay(10);
      expect(prune.mock.calls.length).toBeGreaterThanOrEqual(2);
      await delay(0);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('database is locked'));
    });
  });

  describe('a database that fails', () => {
    let broken: DataSource;
    let store: TypeOrmSessionStore;

    beforeEach(async () => {
      broken = await connect();
      store = new TypeOrmSessionStore(broken, { pruneInterval: false, touchAfter: 0 });
      stores.push(store);
      await set(store, 'sid-1', sessionData({ _auth_user_id: '1' }));
      await get(store, 'sid-1');
      await broken.destroy();
    });

    it('reports the error through the get callback, never throwing or answering null', async () => {
      const { error, result, thrown } = await outcome((done) => store.get('sid-1', done));
      expect(thrown).toBeUndefined();
      expect(error).toBeInstanceOf(Error);
      expect(result).toBeUndefined();
    });

    it.each([
      ['set', (s: TypeOrmSessionStore, done: any) => s.set('sid-2', sessionData(), done)],
      ['touch', (s: TypeOrmSessionStore, done: any) => s.touch('sid-1', sessionData(), done)],
      ['destroy', (s: TypeOrmSessionStore, done: any) => s.destroy('sid-1', done)],
      ['clear', (s: TypeOrmSessionStore, done: any) => s.clear(done)],
      ['length', (s: TypeOrmSessionStore, done: any) => s.length(done)],
    ])('reports the error through the %s callback, never throwing', async (_method, run) => {
      const { error, thrown } = await outcome((done) => run(store, done));
      expect(thrown).toBeUndefined();
      expect(error).toBeInstanceOf(Error);
    });

    it('rejects prune and destroyUserSessions', async () => {
      await expect(store.prune()).rejects.toBeInstanceOf(Error);
      await expect(store.destroyUserSessions(1)).rejects.toBeInstanceOf(Error);
    });
  });
});
