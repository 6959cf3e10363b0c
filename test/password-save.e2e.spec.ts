import { jest } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { authEntities, type User } from 'nestjs-session-auth';
import { PasswordResetTokens } from 'nestjs-session-auth/passwords';
import { runCli } from '../src/cli/cli.program.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * Changing a password writes the password column and nothing else (like Django's
 * update_last_login and the hasher upgrade's other single-column writes). The user object a view or the CLI holds was loaded before the
 * hashing (or before the operator typed the password); saving all of it would restore what an
 * admin changed meanwhile — a deactivated account active again, a removed superuser flag back.
 */

const HTML = 'text/html,application/xhtml+xml';

function csrfFrom(html: string): string {
  const match = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(html);
  if (!match) throw new Error(`No CSRF token in:\n${html}`);
  return match[1];
}

/** What the admin does to the account while its password is being changed. */
const LOCKED_DOWN = { isActive: false, isStaff: false, isSuperuser: false };

describe('the built-in views save only the new password', () => {
  let t: TestApp;
  let server: any;
  let carol: User;

  beforeEach(async () => {
    t = await createTestApp({ auth: { views: true } });
    server = t.app.getHttpServer();
    carol = await t.users.createSuperuser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await t.close();
  });

  const reload = async () => (await t.users.findById(String(carol.id)))!;

  /** The admin locks carol down while the view is hashing her new password. */
  function adminLocksDownDuringHashing(): void {
    const setPassword = t.users.setPassword.bind(t.users);
    jest.spyOn(t.users, 'setPassword').mockImplementation(async (user, raw) => {
      await t.users.repository.update({ id: carol.id }, LOCKED_DOWN);
      await setPassword(user, raw);
    });
  }

  it('password change keeps the flags the admin set meanwhile', async () => {
    const browser = request.agent(server);
    const login = await browser.get('/accounts/login').set('Accept', HTML).expect(200);
    await browser
      .post('/accounts/login')
      .type('form')
      .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: csrfFrom(login.text) })
      .expect(302);
    const form = await browser.get('/accounts/password_change').set('Accept', HTML).expect(200);
    adminLocksDownDuringHashing();

    await browser
      .post('/accounts/password_change')
      .type('form')
      .send({
        old_password: 'correct horse',
        new_password1: 'battery staple 42',
        new_password2: 'battery staple 42',
        csrfmiddlewaretoken: csrfFrom(form.text),
      })
      .expect(302);

    const stored = await reload();
    expect(stored).toMatchObject(LOCKED_DOWN);
    expect(await t.users.checkPassword(stored, 'battery staple 42')).toBe(true);
  });

  it('password reset confirm keeps the flags the admin set meanwhile', async () => {
    const uid = Buffer.from(String(carol.id)).toString('base64url');
    const token = t.app.get(PasswordResetTokens).make(carol);
    const browser = request.agent(server);
    const moved = await browser.get(`/accounts/reset/${uid}/${token}`).set('Accept', HTML).expect(302);
    const form = await browser.get(moved.headers.location).set('Accept', HTML).expect(200);
    adminLocksDownDuringHashing();

    await browser
      .post(moved.headers.location)
      .type('form')
      .send({ new_password1: 'battery staple 42', new_password2: 'battery staple 42', csrfmiddlewaretoken: csrfFrom(form.text) })
      .expect(302);

    const stored = await reload();
    expect(stored).toMatchObject(LOCKED_DOWN);
    expect(await t.users.checkPassword(stored, 'battery staple 42')).toBe(true);
  });
});

describe('the changepassword command saves only the new password', () => {
  let dir: string;
  let databaseFile: string;
  let t: TestApp;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nestjs-session-auth-password-save-'));
    databaseFile = join(dir, 'app.sqlite');
    const schema = await new DataSource({ type: 'better-sqlite3', database: databaseFile, entities: [...authEntities], synchronize: true }).initialize();
    await schema.destroy();
    t = await createTestApp({ database: { database: databaseFile }, synchronize: false, auth: { passwordHashers: ['scrypt'] } });
  });

  afterEach(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the flags an admin set while the operator was typing the new password', async () => {
    const lena = await t.users.createSuperuser({ username: 'lena', password: 'Old-Password-Lena' });
    const config = join(dir, 'auth.config.json');
    writeFileSync(config, JSON.stringify({ dataSource: { type: 'better-sqlite3', database: databaseFile }, auth: { passwordHashers: ['scrypt'] } }));
    // The command has loaded lena before it reads the password; the admin acts in between.
    const typed = Readable.from(
      (async function* () {
        await t.users.repository.update({ id: lena.id }, LOCKED_DOWN);
        yield Buffer.from('New-Password-Lena\n');
      })(),
    );
    const stderr = new PassThrough();
    let errors = '';
    stderr.on('data', (chunk) => (errors += chunk));

    const code = await runCli(['--config', config, 'changepassword', 'lena', '--password-stdin'], {
      stdin: typed,
      stdout: new PassThrough(),
      stderr,
      env: {},
      cwd: dir,
    });

    expect({ code, errors }).toEqual({ code: 0, errors: '' });
    const stored = (await t.users.findByUsername('lena'))!;
    expect(stored).toMatchObject(LOCKED_DOWN);
    expect(await t.users.checkPassword(stored, 'New-Password-Lena')).toBe(true);
  });
});
