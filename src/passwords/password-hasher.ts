import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import bcrypt from 'bcryptjs';
import { createHash, randomBytes, randomInt, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { ImproperlyConfigured } from '../errors.js';
import { BcryptWorkerPool } from './bcrypt.worker-pool.js';
import type { PasswordHashAlgorithm, PasswordHasherName } from './password-hasher.options.js';

const scrypt = promisify(scryptCallback) as (
  password: string,
  salt: string,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

export interface BCryptSHA256HasherOptions {
  /** log2 of the bcrypt work factor; default 12 (Django's). */
  rounds?: number;
  /**
   * Run bcryptjs on worker threads (default `true`), so hashing never holds up other requests.
   * `false` runs it on the main thread, as bcryptjs alone would.
   */
  offThread?: boolean;
  /** The worker pool to use; default one pool shared by every bcrypt hasher of the process. */
  pool?: BcryptWorkerPool;
}

/**
 * bcrypt over the hex SHA-256 of the password (Django's `bcrypt_sha256`): the pre-hash
 * keeps bcrypt from silently truncating at 72 bytes, so two long passwords sharing a prefix
 * never collide. The SHA-256 is cheap and stays on the main thread; bcrypt itself runs on a
 * worker pool.
 */
export class BCryptSHA256Hasher implements PasswordHashAlgorithm {
  readonly algorithm = 'bcrypt_sha256';
  readonly rounds: number;
  /** The worker pool bcrypt runs on; `null` when it runs on the main thread. */
  readonly pool: BcryptWorkerPool | null;

  constructor(options: BCryptSHA256HasherOptions = {}) {
    this.rounds = options.rounds ?? 12;
    if (!Number.isInteger(this.rounds) || this.rounds < 4 || this.rounds > 31) {
      throw new ImproperlyConfigured(`bcrypt rounds must be an integer from 4 to 31, got ${options.rounds}.`);
    }
    this.pool = options.offThread === false ? null : (options.pool ?? BcryptWorkerPool.shared());
  }

  /** `salt`, when given, is a bcrypt salt: `$2b$`, two digits of cost, `$` and 22 characters of bcrypt's base64. */
  async encode(raw: string, salt?: string): Promise<string> {
    if (salt !== undefined && !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{22}$/.test(salt)) {
      throw new TypeError('A bcrypt salt is $2b$, two digits of cost, $ and 22 characters of [./A-Za-z0-9].');
    }
    const password = preHash(raw);
    const setting = salt ?? this.rounds;
    const hash = this.pool ? await this.pool.hash(password, setting) : await bcrypt.hash(password, setting);
    return `${this.algorithm}$${hash}`;
  }

  async verify(raw: string, encoded: string): Promise<boolean> {
    const hash = encoded.slice(this.algorithm.length + 1);
    if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return false;
    const password = preHash(raw);
    return this.pool ? this.pool.compare(password, hash) : bcrypt.compare(password, hash);
  }

  mustUpdate(encoded: string): boolean {
    const rounds = Number(encoded.split('$')[3]);
    return rounds !== this.rounds;
  }
}

function preHash(raw: string): string {
  return createHash('sha256').update(raw, 'utf8').digest('hex');
}

/** scrypt from `node:crypto`, run on libuv's thread pool; Django's format and parameters. */
export class ScryptHasher implements PasswordHashAlgorithm {
  readonly algorithm = 'scrypt';
  readonly workFactor: number;
  readonly blockSize = 8;
  readonly parallelism: number;
  private readonly keyLength = 64;

  constructor(options: { workFactor?: number; parallelism?: number } = {}) {
    this.workFactor = options.workFactor ?? 2 ** 14;
    this.parallelism = options.parallelism ?? 5;
  }

  async encode(raw: string, salt = randomSalt()): Promise<string> {
    if (typeof salt !== 'string' || salt === '' || salt.includes('$')) {
      throw new TypeError('A scrypt salt is a non-empty string without $.');
    }
    const key = await this.derive(raw, salt, this.workFactor, this.blockSize, this.parallelism);
    return [this.algorithm, this.workFactor, salt, this.blockSize, this.parallelism, key.toString('base64')].join('$');
  }

  async verify(raw: string, encoded: string): Promise<boolean> {
    const parts = encoded.split('$');
    if (parts.length !== 6) return false;
    const [, n, salt, r, p, expected] = parts;
    const [workFactor, blockSize, parallelism] = [Number(n), Number(r), Number(p)];
    // Refuse parameters an attacker-controlled row could use to exhaust memory or CPU.
    if (![workFactor, blockSize, parallelism].every(Number.isSafeInteger)) return false;
    if (workFactor > 2 ** 20 || blockSize > 32 || parallelism > 16) return false;
    let key: Buffer;
    try {
      key = await this.derive(raw, salt, workFactor, blockSize, parallelism);
    } catch {
      return false;
    }
    const stored = Buffer.from(expected, 'base64');
    return stored.length === key.length && timingSafeEqual(stored, key);
  }

  mustUpdate(encoded: string): boolean {
    const [, n, , r, p] = encoded.split('$');
    return Number(n) !== this.workFactor || Number(r) !== this.blockSize || Number(p) !== this.parallelism;
  }

  private derive(raw: string, salt: string, N: number, r: number, p: number): Promise<Buffer> {
    return scrypt(raw, salt, this.keyLength, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  }
}

const SALT_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** 22 characters of [A-Za-z0-9]: at least 128 bits, like Django's salts. */
function randomSalt(length = 22): string {
  let salt = '';
  for (let i = 0; i < length; i++) salt += SALT_CHARS[randomInt(SALT_CHARS.length)];
  return salt;
}

export const UNUSABLE_PASSWORD_PREFIX = '!';

/** An encoded password no configured hasher made, or a hasher name none has (Django's `ValueError`). */
export class UnknownPasswordHasher extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownPasswordHasher';
  }
}

/** Only a value starting with `!` is unusable. */
export function isPasswordUsable(encoded: string | null | undefined): boolean {
  return encoded == null || !encoded.startsWith(UNUSABLE_PASSWORD_PREFIX);
}

export interface PasswordCheck {
  valid: boolean;
  /** The password was right but is stored with a hasher or parameters no longer preferred. */
  mustUpdate: boolean;
  /** When `mustUpdate`: the password encoded with the preferred hasher, ready to be saved. */
  upgraded?: string;
}

/**
 * Hashes and checks passwords with the configured hashers, the first one preferred. Encoded
 * values carry their algorithm, so a new default can be introduced and old hashes upgraded on
 * the next successful login.
 */
@Injectable()
export class PasswordHasher implements OnApplicationShutdown {
  private readonly hashers: PasswordHashAlgorithm[];
  private readonly pools: BcryptWorkerPool[];

  constructor(@Inject(AUTH_CONFIG) config: Pick<AuthConfig, 'passwordHashers'>) {
    this.hashers = createHashers(config.passwordHashers);
    this.pools = [
      ...new Set(this.hashers.flatMap((hasher) => (hasher instanceof BCryptSHA256Hasher && hasher.pool ? [hasher.pool] : []))),
    ];
    for (const pool of this.pools) pool.retain();
  }

  /** Stop the bcrypt threads with the app (once no other app of the process uses them). */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.pools.splice(0).map((pool) => pool.release()));
  }

  get preferred(): PasswordHashAlgorithm {
    return this.hashers[0];
  }

  /** Hash a raw password with the preferred hasher; `null` gives an unusable password. */
  async make(raw: string | null): Promise<string> {
    if (raw === null) return UNUSABLE_PASSWORD_PREFIX + randomBytes(30).toString('base64url').slice(0, 40);
    if (typeof raw !== 'string') {
      throw new TypeError(`Password must be a string, got ${typeof raw}.`);
    }
    return this.preferred.encode(raw);
  }

  async check(raw: unknown, encoded: string | null | undefined): Promise<PasswordCheck> {
    const hasher = typeof encoded === 'string' ? this.identify(encoded) : undefined;
    if (typeof raw !== 'string' || !hasher || !isPasswordUsable(encoded)) {
      // Run the preferred hasher once so a missing or unusable hash takes as long as a wrong
      // password (CVE-2024-39329).
      await this.runDummyHash();
      return { valid: false, mustUpdate: false };
    }
    if (hasher === this.preferred && !hasher.mustUpdate(encoded!)) {
      return { valid: await hasher.verify(raw, encoded!), mustUpdate: false };
    }
    // A hash made with another hasher or a lower cost is quicker to check, so a wrong password
    // would be answered sooner for these users, telling them apart (Django's harden_runtime,
    // CVE-2016-2513). Encoding with the preferred hasher alongside spends at least the time of
    // a current user's check whatever the outcome, and a right password gets its upgrade from it.
    const [valid, upgraded] = await Promise.all([hasher.verify(raw, encoded!), this.preferred.encode(raw)]);
    return valid ? { valid, mustUpdate: true, upgraded } : { valid, mustUpdate: false };
  }

  /**
   * Django's `make_password`: `raw` hashed with the preferred hasher, or the configured one named
   * `hasher`, with a new salt or the given one; `null` gives an unusable password.
   */
  async makePassword(raw: string | null, options: { salt?: string; hasher?: string } = {}): Promise<string> {
    if (raw === null) return this.make(null);
    if (typeof raw !== 'string') throw new TypeError(`Password must be a string, got ${typeof raw}.`);
    const hasher = options.hasher === undefined ? this.preferred : this.hashers.find((entry) => entry.algorithm === options.hasher);
    if (!hasher) {
      throw new UnknownPasswordHasher(`No configured password hasher is named '${options.hasher}' (${this.hashers.map((entry) => entry.algorithm).join(', ')}).`);
    }
    return hasher.encode(raw, options.salt);
  }

  /**
   * Django's `check_password`: whether `raw` is the password `encoded` holds. A right password
   * stored with a hasher or parameters no longer preferred is handed to `onUpgrade`, hashed the
   * preferred way, for saving (Django's `setter`).
   */
  async checkPassword(raw: unknown, encoded: string | null | undefined, options: { onUpgrade?: (encoded: string) => unknown } = {}): Promise<boolean> {
    const { valid, upgraded } = await this.check(raw, encoded);
    if (valid && upgraded && options.onUpgrade) await options.onUpgrade(upgraded);
    return valid;
  }

  /** Django's `identify_hasher`: the configured hasher an encoded password was made with; `UnknownPasswordHasher` for none. */
  identifyHasher(encoded: string): PasswordHashAlgorithm {
    const hasher = typeof encoded === 'string' && isPasswordUsable(encoded) ? this.identify(encoded) : undefined;
    if (!hasher) throw new UnknownPasswordHasher('Unknown password hashing algorithm: the value was not made by a configured hasher.');
    return hasher;
  }

  /** Spend the time of one hash, so unknown usernames cannot be told apart by timing. */
  async runDummyHash(): Promise<void> {
    await this.preferred.encode(randomSalt(40));
  }

  private identify(encoded: string): PasswordHashAlgorithm | undefined {
    if (!encoded.includes('$')) return undefined;
    const algorithm = encoded.slice(0, encoded.indexOf('$'));
    return this.hashers.find((hasher) => hasher.algorithm === algorithm);
  }
}

function createHashers(list: (PasswordHasherName | PasswordHashAlgorithm)[]): PasswordHashAlgorithm[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new ImproperlyConfigured('passwordHashers must list at least one hasher, e.g. [\'bcrypt_sha256\'].');
  }
  return list.map((entry) => {
    if (typeof entry !== 'string') return entry;
    if (entry === 'bcrypt_sha256') return new BCryptSHA256Hasher();
    if (entry === 'scrypt') return new ScryptHasher();
    throw new ImproperlyConfigured(
      `Unknown password hasher '${entry}'. Built-in hashers are 'bcrypt_sha256' and 'scrypt'.`,
    );
  });
}
