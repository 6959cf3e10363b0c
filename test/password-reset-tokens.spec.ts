import 'reflect-metadata';
import { createHash, createHmac } from 'node:crypto';
import { ImproperlyConfigured, type User } from 'nestjs-session-auth';
import { PasswordResetTokens } from 'nestjs-session-auth/passwords';
import { createTestApp, TEST_SECRET, type TestApp } from './support/test-app.js';

const DAY = 24 * 60 * 60;

/** A generator whose clock the test moves (Django's MockedPasswordResetTokenGenerator). */
class ClockedTokens extends PasswordResetTokens {
  at = new Date('2026-03-01T12:00:00.000Z');

  protected override now(): Date {
    return this.at;
  }

  advance(seconds: number): void {
    this.at = new Date(this.at.getTime() + seconds * 1000);
  }
}

describe('PasswordResetTokens', () => {
  let t: TestApp;
  let carol: User;
  let tokens: ClockedTokens;

  beforeEach(async () => {
    t = await createTestApp();
    carol = await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
    tokens = new ClockedTokens({ secrets: [TEST_SECRET] });
  });
  afterEach(() => t.close());

  const reload = async (user: User) => (await t.users.findById(String(user.id)))!;

  it('makes `<base-36 seconds since 2001>-<32 hex>` tokens', () => {
    const token = tokens.make(carol);
    expect(token).toMatch(/^[0-9a-z]+-[0-9a-f]{32}$/);
    const seconds = (tokens.at.getTime() - Date.UTC(2001, 0, 1)) / 1000;
    expect(token.split('-')[0]).toBe(seconds.toString(36));
  });

  it('binds the HMAC to id, password hash, last login, timestamp and email, keeping every other hex character', () => {
    const token = tokens.make(carol);
    const [ts] = token.split('-');
    const key = createHash('sha256').update('nestjs-session-auth.password-reset-token' + TEST_SECRET).digest();
    const digest = createHmac('sha256', key)
      .update(`${carol.id}${carol.password}${parseInt(ts, 36)}carol@example.com`)
      .digest('hex');
    expect(token).toBe(`${ts}-${[...digest].filter((_, i) => i % 2 === 0).join('')}`);
  });

  it('accepts its own token, also for the same user loaded again', async () => {
    const token = tokens.make(carol);
    expect(tokens.check(carol, token)).toBe(true);
    expect(tokens.check(await reload(carol), token)).toBe(true);
  });

  it('is refused once the password changes, so a link works only once', async () => {
    const token = tokens.make(carol);
    await t.users.setPassword(carol, 'a new password');
    await t.users.repository.save(carol);
    expect(tokens.check(await reload(carol), token)).toBe(false);
  });

  it('is refused after the user logs in (lastLogin changes)', async () => {
    const token = tokens.make(carol);
    await t.users.touchLastLogin(carol);
    expect(tokens.check(await reload(carol), token)).toBe(false);
  });

  it('ignores milliseconds of the last login, which databases round differently', async () => {
    carol.lastLogin = new Date('2026-02-01T08:00:00.123Z');
    const token = tokens.make(carol);
    carol.lastLogin = new Date('2026-02-01T08:00:00.999Z');
    expect(tokens.check(carol, token)).toBe(true);
    carol.lastLogin = new Date('2026-02-01T08:00:01.000Z');
    expect(tokens.check(carol, token)).toBe(false);
  });

  it('is refused after the email changes', async () => {
    const token = tokens.make(carol);
    carol.email = 'mallory@example.com';
    await t.users.repository.save(carol);
    expect(tokens.check(await reload(carol), token)).toBe(false);
  });

  it('is refused for another user', async () => {
    const dave = await t.users.createUser({ username: 'dave', password: 'correct horse', email: 'carol@example.com' });
    expect(tokens.check(dave, tokens.make(carol))).toBe(false);
  });

  it('is valid for exactly the timeout and refused one second later', () => {
    const token = tokens.make(carol);
    tokens.advance(3 * DAY);
    expect(tokens.check(carol, token)).toBe(true);
    tokens.advance(1);
    expect(tokens.check(carol, token)).toBe(false);
  });

  it('takes its timeout from the passwordResetTimeout setting', () => {
    const short = new ClockedTokens({ secrets: [TEST_SECRET], passwordResetTimeout: 60 });
    const token = short.make(carol);
    short.advance(60);
    expect(short.check(carol, token)).toBe(true);
    short.advance(1);
    expect(short.check(carol, token)).toBe(false);
  });

  it('refuses a token whose timestamp was changed (the HMAC covers it)', () => {
    const token = tokens.make(carol);
    const [, hash] = token.split('-');
    const later = (parseInt(token.split('-')[0], 36) + 10 * DAY).toString(36);
    expect(tokens.check(carol, `${later}-${hash}`)).toBe(false);
  });

  describe('secrets', () => {
    it('accepts tokens made with a fallback secret while the key is rotated', () => {
      const old = new ClockedTokens({ secrets: ['the-old-secret'] });
      const rotated = new ClockedTokens({ secrets: ['the-new-secret', 'the-old-secret'] });
      expect(rotated.check(carol, old.make(carol))).toBe(true);
      expect(old.check(carol, rotated.make(carol))).toBe(false);
    });

    it('refuses them once the fallback is dropped', () => {
      const old = new ClockedTokens({ secrets: ['the-old-secret'] });
      const rotated = new ClockedTokens({ secrets: ['the-new-secret'] });
      expect(rotated.check(carol, old.make(carol))).toBe(false);
    });

    it('lets an instance override its secret and fallbacks', () => {
      const other = new ClockedTokens({ secrets: [TEST_SECRET] });
      other.secret = 'instance-secret';
      expect(other.check(carol, tokens.make(carol))).toBe(false);
      other.secretFallbacks = [TEST_SECRET];
      expect(other.check(carol, tokens.make(carol))).toBe(true);
    });

    it('refuses to make tokens with an empty secret', () => {
      const empty = new ClockedTokens({ secrets: [''] });
      expect(() => empty.make(carol)).toThrow(ImproperlyConfigured);
    });

    it('the injectable instance uses the module secret and fallbacks', () => {
      const injected = t.app.get(PasswordResetTokens);
      expect(injected.check(carol, new PasswordResetTokens({ secrets: [TEST_SECRET] }).make(carol))).toBe(true);
      expect(injected.check(carol, new PasswordResetTokens({ secrets: ['some-other-secret'] }).make(carol))).toBe(false);
    });
  });

  describe('malformed tokens are refused, never thrown on', () => {
    it.each([
      ['an empty string', ''],
      ['no dash', 'abcdef'],
      ['three parts', 'a-b-c'],
      ['only a dash', '-'],
      ['an empty timestamp', '-0123456789abcdef0123456789abcdef'],
      ['a timestamp that is not base 36', 'zz!-0123456789abcdef0123456789abcdef'],
      ['a timestamp of 14 digits', 'zzzzzzzzzzzzzz-0123456789abcdef0123456789abcdef'],
      ['a 13-digit timestamp beyond safe integers', 'zzzzzzzzzzzzz-0123456789abcdef0123456789abcdef'],
      ['a negative timestamp', '--0123456789abcdef0123456789abcdef'],
      ['a NUL byte', 'abc\u0000-0123456789abcdef0123456789abcdef'],
      ['a very long token', `abc-${'f'.repeat(100_000)}`],
      ['a number', 12345],
      ['an array', ['abc', 'def']],
      ['null', null],
      ['undefined', undefined],
    ])('%s', (_label, token) => {
      expect(tokens.check(carol, token)).toBe(false);
    });

    it('an upper-cased copy of a real token', () => {
      expect(tokens.check(carol, tokens.make(carol).toUpperCase())).toBe(false);
    });

    it('no user', () => {
      expect(tokens.check(null, tokens.make(carol))).toBe(false);
      expect(tokens.check(undefined, tokens.make(carol))).toBe(false);
    });
  });
});
