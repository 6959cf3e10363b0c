import { jest } from '@jest/globals';
import bcrypt from 'bcryptjs';
import { Worker } from 'node:worker_threads';
import request from 'supertest';
import { ImproperlyConfigured, ModelBackend } from 'nestjs-session-auth';
import {
  BCryptSHA256Hasher,
  BcryptWorkerPool,
  isPasswordUsable,
  PasswordHasher,
  ScryptHasher,
  UnknownPasswordHasher,
  UNUSABLE_PASSWORD_PREFIX,
} from 'nestjs-session-auth/passwords';
import { createTestApp } from './support/test-app.js';

describe('bcrypt off the main thread', () => {
  const pools: BcryptWorkerPool[] = [];
  function ownPool(size?: number): BcryptWorkerPool {
    const pool = new BcryptWorkerPool({ size });
    pools.push(pool);
    return pool;
  }
  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
  });

  it('hashes and verifies on worker threads: bcryptjs never runs on the main thread', async () => {
    const onMainThread = [
      jest.spyOn(bcrypt, 'hash'),
      jest.spyOn(bcrypt, 'compare'),
      jest.spyOn(bcrypt, 'hashSync'),
      jest.spyOn(bcrypt, 'compareSync'),
    ];
    const pool = ownPool();
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool });
    const encoded = await hasher.encode('correct horse');
    expect(encoded).toMatch(/^bcrypt_sha256\$\$2b\$04\$[./A-Za-z0-9]{53}$/);
    expect(await hasher.verify('correct horse', encoded)).toBe(true);
    expect(await hasher.verify('Correct horse', encoded)).toBe(false);
    expect(pool.threadCount).toBe(1);
    for (const spy of onMainThread) expect(spy).not.toHaveBeenCalled();
  });

  it('keeps a main-thread mode (offThread: false) whose hashes are interchangeable with the pool’s', async () => {
    const compare = jest.spyOn(bcrypt, 'compare');
    const mainThread = new BCryptSHA256Hasher({ rounds: 4, offThread: false });
    const offThread = new BCryptSHA256Hasher({ rounds: 4, pool: ownPool() });
    expect(mainThread.pool).toBeNull();
    expect(await mainThread.verify('pw', await offThread.encode('pw'))).toBe(true);
    expect(compare).toHaveBeenCalledTimes(1);
    expect(await offThread.verify('pw', await mainThread.encode('pw'))).toBe(true);
  });

  it('keeps the SHA-256 pre-hash: passwords equal in their first 72 bytes stay different', async () => {
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool: ownPool() });
    const prefix = 'x'.repeat(72);
    expect(await hasher.verify(prefix + 'B', await hasher.encode(prefix + 'A'))).toBe(false);
  });

  it('queues a burst larger than the pool and never starts more threads than its size', async () => {
    const pool = ownPool(2);
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool });
    const passwords = Array.from({ length: 9 }, (_, i) => `password-${i}`);
    const encoded = await Promise.all(passwords.map((password) => hasher.encode(password)));
    expect(pool.threadCount).toBe(2);
    const checks = await Promise.all(passwords.map((password, i) => hasher.verify(password, encoded[(i + 1) % 9])));
    expect(checks).toEqual(passwords.map(() => false));
    expect(await Promise.all(passwords.map((password, i) => hasher.verify(password, encoded[i])))).toEqual(passwords.map(() => true));
  });

  it('rejects the job of a worker that crashes, instead of hanging, and serves the next job on a new thread', async () => {
    const pool = ownPool(1);
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool });
    await hasher.encode('warm up');
    // A message the worker cannot read makes it throw outside its handler and die.
    const post = Worker.prototype.postMessage;
    jest.spyOn(Worker.prototype, 'postMessage').mockImplementationOnce(function (this: Worker) {
      post.call(this, null);
    });
    await expect(hasher.encode('lost')).rejects.toThrow(/The bcrypt worker thread stopped \(exit code 1\)/);
    expect(pool.threadCount).toBe(0);
    expect(await hasher.verify('next', await hasher.encode('next'))).toBe(true);
    expect(pool.threadCount).toBe(1);
  });

  it('close() rejects the jobs still waiting, and a later job starts threads again', async () => {
    const pool = ownPool(1);
    const hasher = new BCryptSHA256Hasher({ rounds: 4, pool });
    const running = hasher.encode('one');
    const queued = hasher.encode('two');
    await pool.close();
    await expect(running).rejects.toThrow('The bcrypt worker pool was closed before the password was hashed.');
    await expect(queued).rejects.toThrow('The bcrypt worker pool was closed before the password was hashed.');
    expect(pool.threadCount).toBe(0);
    expect(await hasher.verify('three', await hasher.encode('three'))).toBe(true);
  });

  it('stops the threads when the app shuts down, but not while another app of the process uses them', async () => {
    const pool = ownPool();
    const hashers = [new BCryptSHA256Hasher({ rounds: 4, pool })];
    const first = await createTestApp({ auth: { backends: [ModelBackend], passwordHashers: hashers } });
    const second = await createTestApp({ auth: { backends: [ModelBackend], passwordHashers: hashers } });
    try {
      await first.users.createUser({ username: 'carol', password: 'correct horse' });
      await second.users.createUser({ username: 'carol', password: 'correct horse' });
      expect(pool.threadCount).toBeGreaterThan(0);
      await first.close();
      expect(pool.threadCount).toBeGreaterThan(0);
      await request(second.app.getHttpServer())
        .post('/login')
        .send({ username: 'carol', password: 'correct horse' })
        .expect(200, { username: 'carol' });
    } finally {
      await second.close();
    }
    expect(pool.threadCount).toBe(0);
  });

  it('runs the default hasher (bcrypt_sha256, 12 rounds) on the shared pool', async () => {
    const t = await createTestApp({ auth: { backends: [ModelBackend], passwordHashers: undefined } });
    try {
      const preferred = t.app.get(PasswordHasher).preferred as BCryptSHA256Hasher;
      expect(preferred).toBeInstanceOf(BCryptSHA256Hasher);
      expect(preferred.rounds).toBe(12);
      expect(preferred.pool).toBe(BcryptWorkerPool.shared());
      const user = await t.users.createUser({ username: 'carol', password: 'correct horse' });
      expect(user.password).toMatch(/^bcrypt_sha256\$\$2b\$12\$/);
      expect(await t.users.checkPassword(user, 'correct horse')).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('refuses a bcrypt cost outside 4–31 and a pool without threads at start-up', () => {
    expect(() => new BCryptSHA256Hasher({ rounds: 3 })).toThrow(ImproperlyConfigured);
    expect(() => new BCryptSHA256Hasher({ rounds: 32 })).toThrow('bcrypt rounds must be an integer from 4 to 31, got 32.');
    expect(() => new BcryptWorkerPool({ size: 0 })).toThrow('BcryptWorkerPool size must be a positive integer, got 0.');
  });
});

describe('a wrong password takes as long for users on an older hash (Django’s harden_runtime, CVE-2016-2513)', () => {
  /** The preferred hasher, counting the work it does. */
  class CountingHasher extends BCryptSHA256Hasher {
    encodes = 0;
    verifies = 0;
    override encode(raw: string) {
      this.encodes++;
      return super.encode(raw);
    }
    override verify(raw: string, encoded: string) {
      this.verifies++;
      return super.verify(raw, encoded);
    }
  }

  async function setUp() {
    const preferred = new CountingHasher({ rounds: 5 });
    const hasher = new PasswordHasher({ backends: [], passwordHashers: [preferred, 'scrypt'] } as any);
    const hashes = {
      current: await preferred.encode('correct horse'),
      lowerCost: await new BCryptSHA256Hasher({ rounds: 4 }).encode('correct horse'),
      scrypt: await new ScryptHasher({ workFactor: 2 ** 10 }).encode('correct horse'),
    };
    preferred.encodes = 0;
    preferred.verifies = 0;
    return { preferred, hasher, hashes };
  }

  it('spends one full check of the preferred hasher on a wrong password against a lower bcrypt cost or another hasher', async () => {
    const { preferred, hasher, hashes } = await setUp();
    for (const encoded of [hashes.lowerCost, hashes.scrypt]) {
      preferred.encodes = 0;
      expect(await hasher.check('wrong', encoded)).toEqual({ valid: false, mustUpdate: false });
      expect(preferred.encodes).toBe(1);
    }
    // A current user's wrong password costs one check of the preferred hasher as well.
    preferred.verifies = 0;
    expect(await hasher.check('wrong', hashes.current)).toEqual({ valid: false, mustUpdate: false });
    expect(preferred.verifies).toBe(1);
  });

  it('hashes a right password once for its upgrade: the work spent alongside is the new hash', async () => {
    const { preferred, hasher, hashes } = await setUp();
    const result = await hasher.check('correct horse', hashes.lowerCost);
    expect(result.valid).toBe(true);
    expect(result.mustUpdate).toBe(true);
    expect(result.upgraded).toMatch(/^bcrypt_sha256\$\$2b\$05\$/);
    expect(preferred.encodes).toBe(1);
    expect((await hasher.check('correct horse', result.upgraded!)).valid).toBe(true);
  });
});

describe('Django’s hasher helpers on PasswordHasher (make_password, check_password, identify_hasher)', () => {
  const hasher = () =>
    new PasswordHasher({ passwordHashers: [new BCryptSHA256Hasher({ rounds: 4, offThread: false }), new ScryptHasher({ workFactor: 2 ** 10 })] });

  it('makes a password that checks, and refuses wrong and non-text ones (test_simple)', async () => {
    const passwords = hasher();
    const encoded = await passwords.makePassword('lètmein');
    expect(encoded).toMatch(/^bcrypt_sha256\$/);
    expect(isPasswordUsable(encoded)).toBe(true);
    expect(await passwords.checkPassword('lètmein', encoded)).toBe(true);
    expect(await passwords.checkPassword('lètmeinz', encoded)).toBe(false);
    expect(await passwords.checkPassword(42, encoded)).toBe(false);
    expect(passwords.identifyHasher(encoded).algorithm).toBe('bcrypt_sha256');
  });

  it('makes an unusable password from null, which no password checks against (test_unusable)', async () => {
    const passwords = hasher();
    const encoded = await passwords.makePassword(null);
    expect(encoded.startsWith(UNUSABLE_PASSWORD_PREFIX)).toBe(true);
    expect(encoded).toHaveLength(41);
    expect(isPasswordUsable(encoded)).toBe(false);
    expect(await passwords.checkPassword('', encoded)).toBe(false);
    expect(await passwords.checkPassword(encoded, encoded)).toBe(false);
    expect(() => passwords.identifyHasher(encoded)).toThrow(UnknownPasswordHasher);
  });

  it('uses the configured hasher named, and the salt given: the same salt gives the same hash (test_scrypt)', async () => {
    const passwords = hasher();
    const first = await passwords.makePassword('lètmein', { hasher: 'scrypt', salt: 'seasalt' });
    const second = await passwords.makePassword('lètmein', { hasher: 'scrypt', salt: 'seasalt' });
    expect(first).toBe(second);
    expect(first.split('$')).toEqual(['scrypt', '1024', 'seasalt', '8', '5', expect.any(String)]);
    expect(await passwords.checkPassword('lètmein', first)).toBe(true);
    expect(await passwords.makePassword('lètmein', { hasher: 'scrypt' })).not.toBe(first);
    const salt = '$2b$04$' + 'a'.repeat(22);
    expect(await passwords.makePassword('lètmein', { salt })).toBe(await passwords.makePassword('lètmein', { salt }));
  });

  it('refuses an unknown hasher name, an encoded value of no configured hasher, and malformed salts (test_bad_algorithm)', async () => {
    const passwords = hasher();
    await expect(passwords.makePassword('lètmein', { hasher: 'lolcat' })).rejects.toThrow(UnknownPasswordHasher);
    expect(() => passwords.identifyHasher('lolcat$salt$hash')).toThrow(UnknownPasswordHasher);
    expect(() => passwords.identifyHasher('no dollar sign')).toThrow(UnknownPasswordHasher);
    expect(() => passwords.identifyHasher('md5$salt$hash')).toThrow(/Unknown password hashing algorithm/);
    await expect(passwords.makePassword('lètmein', { hasher: 'scrypt', salt: 'with$dollar' })).rejects.toThrow(TypeError);
    await expect(passwords.makePassword('lètmein', { hasher: 'scrypt', salt: '' })).rejects.toThrow(TypeError);
    await expect(passwords.makePassword('lètmein', { salt: 'not a bcrypt salt' })).rejects.toThrow(TypeError);
  });

  it('hands a right password on an older hasher to onUpgrade, hashed the preferred way (check_password’s setter)', async () => {
    const passwords = hasher();
    const old = await passwords.makePassword('lètmein', { hasher: 'scrypt' });
    const upgrades: string[] = [];
    expect(await passwords.checkPassword('wrong', old, { onUpgrade: (encoded) => upgrades.push(encoded) })).toBe(false);
    expect(upgrades).toEqual([]);
    expect(await passwords.checkPassword('lètmein', old, { onUpgrade: (encoded) => upgrades.push(encoded) })).toBe(true);
    expect(upgrades).toHaveLength(1);
    expect(upgrades[0]).toMatch(/^bcrypt_sha256\$/);
    expect(await passwords.checkPassword('lètmein', upgrades[0], { onUpgrade: (encoded) => upgrades.push(encoded) })).toBe(true);
    expect(upgrades).toHaveLength(1);
  });
});
