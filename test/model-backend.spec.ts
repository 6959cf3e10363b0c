import { jest } from '@jest/globals';
import request from 'supertest';
import { AllowAllUsersModelBackend, AnonymousUser, AuthEvents, ModelBackend } from 'nestjs-session-auth';
import { BCryptSHA256Hasher, PasswordHasher, ScryptHasher, isPasswordUsable } from 'nestjs-session-auth/passwords';
import { forceLogin } from 'nestjs-session-auth/testing';
import { createTestApp, type TestApp } from './support/test-app.js';

describe('ModelBackend and UserManager', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ auth: { backends: [ModelBackend] } });
  });
  afterEach(() => t.close());

  it('stores passwords as bcrypt_sha256$<bcrypt hash>, never in clear', async () => {
    const user = await t.users.createUser({ username: 'carol', password: 'correct horse' });
    expect(user.password).toMatch(/^bcrypt_sha256\$\$2[aby]\$04\$[./A-Za-z0-9]{53}$/);
    expect(user.password).not.toContain('correct horse');
  });

  it('authenticates a right password and refuses a wrong one', async () => {
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    expect(await t.auth.authenticate(undefined, { username: 'carol', password: 'correct horse' })).toMatchObject({ username: 'carol' });
    expect(await t.auth.authenticate(undefined, { username: 'carol', password: 'Correct horse' })).toBeNull();
  });

  it('refuses inactive users, which AllowAllUsersModelBackend accepts', async () => {
    await t.users.createUser({ username: 'idle', password: 'pw', isActive: false });
    expect(await t.auth.authenticate(undefined, { username: 'idle', password: 'pw' })).toBeNull();
    const allowAll = await createTestApp({ auth: { backends: [AllowAllUsersModelBackend] } });
    try {
      await allowAll.users.createUser({ username: 'idle', password: 'pw', isActive: false });
      expect(await allowAll.auth.authenticate(undefined, { username: 'idle', password: 'pw' })).toMatchObject({
        username: 'idle',
        backend: 'AllowAllUsersModelBackend',
      });
    } finally {
      await allowAll.close();
    }
  });

  it('runs the hasher for an unknown username, so timing does not reveal which users exist', async () => {
    const hasher = t.app.get(PasswordHasher);
    const encode = jest.spyOn(hasher.preferred, 'encode');
    expect(await t.auth.authenticate(undefined, { username: 'nobody', password: 'pw' })).toBeNull();
    expect(encode).toHaveBeenCalledTimes(1);
  });

  it('gives a user created without a password an unusable one that never matches', async () => {
    const user = await t.users.createUser({ username: 'sso-only' });
    expect(isPasswordUsable(user.password)).toBe(false);
    expect(await t.users.checkPassword(user, '')).toBe(false);
    expect(await t.users.checkPassword(user, user.password)).toBe(false);
    const other = await t.users.createUser({ username: 'sso-two' });
    expect(other.password).not.toBe(user.password);
  });

  it('requires a username', async () => {
    await expect(t.users.createUser({ username: '' })).rejects.toThrow('The given username must be set.');
  });

  it('normalises the username (NFKC) and the email domain', async () => {
    const user = await t.users.createUser({ username: 'Ω\u2126', email: 'Mixed.Case@EXAMPLE.Org' });
    expect(user.username).toBe('ΩΩ');
    expect(user.email).toBe('Mixed.Case@example.org');
  });

  it('createSuperuser forces the staff and superuser flags', async () => {
    const admin = await t.users.createSuperuser({ username: 'admin', password: 'pw' });
    expect(admin).toMatchObject({ isStaff: true, isSuperuser: true });
    await expect(t.users.createSuperuser({ username: 'x', isStaff: false })).rejects.toThrow(/isStaff/);
  });

  it('setPassword changes the object but does not save it', async () => {
    const user = await t.users.createUser({ username: 'carol', password: 'old password' });
    await t.users.setPassword(user, 'new password');
    expect(await t.users.checkPassword(user, 'new password')).toBe(true);
    const stored = (await t.users.findByUsername('carol'))!;
    expect(await t.users.checkPassword(stored, 'old password')).toBe(true);
  });

  it('upgrades a hash made with a non-preferred hasher on a correct login, saving only the password column', async () => {
    const scrypt = new ScryptHasher({ workFactor: 2 ** 10 });
    const user = await t.users.createUser({ username: 'legacy' });
    user.password = await scrypt.encode('old hash');
    await t.users.repository.save(user);

    expect(await t.auth.authenticate(undefined, { username: 'legacy', password: 'wrong' })).toBeNull();
    expect((await t.users.findByUsername('legacy'))!.password).toMatch(/^scrypt\$/);

    t.sql.reset();
    expect(await t.auth.authenticate(undefined, { username: 'legacy', password: 'old hash' })).not.toBeNull();
    const update = t.sql.writes.find((sql) => /^UPDATE "auth_user"/.test(sql))!;
    expect(update).toMatch(/SET "password" = \?/);
    expect(update).not.toMatch(/username|email|is_active/);
    expect((await t.users.findByUsername('legacy'))!.password).toMatch(/^bcrypt_sha256\$\$2b\$04\$/);
  });

  it('upgrades a bcrypt hash whose cost differs from the preferred one', async () => {
    const user = await t.users.createUser({ username: 'cheap' });
    user.password = await new BCryptSHA256Hasher({ rounds: 5 }).encode('pw');
    await t.users.repository.save(user);
    expect(await t.auth.authenticate(undefined, { username: 'cheap', password: 'pw' })).not.toBeNull();
    expect((await t.users.findByUsername('cheap'))!.password).toMatch(/^bcrypt_sha256\$\$2b\$04\$/);
  });

  it.each([
    ['an unknown algorithm', 'md5$abc$def'],
    ['no algorithm at all', 'plaintext'],
    ['a truncated bcrypt hash', 'bcrypt_sha256$$2b$04$short'],
    ['hostile scrypt parameters', 'scrypt$1073741824$salt$8$1$AAAA'],
  ])('treats a stored hash with %s as not matching, without throwing', async (_label, encoded) => {
    const user = await t.users.createUser({ username: 'odd' });
    await t.users.repository.update({ id: user.id }, { password: encoded });
    expect(await t.auth.authenticate(undefined, { username: 'odd', password: 'anything' })).toBeNull();
  });

  it('never puts the password hash into JSON', async () => {
    const carol = await t.users.createUser({ username: 'carol', password: 'pw' });
    expect(JSON.stringify(carol)).not.toContain('bcrypt_sha256');
    expect(JSON.parse(JSON.stringify(carol))).toMatchObject({ username: 'carol', isAuthenticated: true });
  });
});

describe('forceLogin (nestjs-session-auth/testing)', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(() => t.close());

  it('returns a Cookie header logged in as the user under the first backend', async () => {
    const carol = await t.users.createUser({ username: 'carol' });
    const cookie = await forceLogin(t.app, carol);
    expect(cookie).toMatch(/^sessionid=s%3A/);
    await request(t.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
  });

  it('records the backend it is given, and goes through login() (events, lastLogin)', async () => {
    const alice = await t.users.createUser({ username: 'alice' });
    const seen: string[] = [];
    t.app.get(AuthEvents).on('userLoggedIn', ({ user }) => void seen.push(user.username));
    const cookie = await forceLogin(t.app, alice, 'DictionaryBackend');
    await request(t.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'alice', backend: 'DictionaryBackend' });
    expect(seen).toEqual(['alice']);
    expect((await t.users.findByUsername('alice'))!.lastLogin).not.toBeNull();
  });

  it('refuses a backend that is not configured', async () => {
    const carol = await t.users.createUser({ username: 'carol' });
    await expect(forceLogin(t.app, carol, 'NoSuchBackend')).rejects.toThrow(/NoSuchBackend/);
  });
});

describe('AnonymousUser', () => {
  it('has no id, no flags and equals every other anonymous user', () => {
    const anonymous = new AnonymousUser();
    expect(anonymous).toMatchObject({ id: null, username: '', isAuthenticated: false, isAnonymous: true, isActive: false, isStaff: false, isSuperuser: false });
    expect(anonymous.equals(new AnonymousUser())).toBe(true);
    expect(String(anonymous)).toBe('AnonymousUser');
  });
});
