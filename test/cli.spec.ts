import { jest } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import request from 'supertest';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { authEntities, LoginLockout, PermissionManager, SessionRecord, User, UserManager } from 'nestjs-session-auth';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { runCli } from '../src/cli/cli.program.js';
import { describeIf, postgresUrl, uniqueName } from './support/services.js';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';

/**
 * The `nestjs-session-auth` command line, run in-process with its own stdin/stdout: every
 * command against a temporary SQLite file that the app's DataSource could equally open. Prompts
 * are answered through a fake terminal that types an answer once the prompt has been shown.
 */

/** scrypt from node:crypto is quick enough here; the default bcrypt cost would slow the suite. */
const AUTH = { passwordHashers: ['scrypt'] };
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A terminal on which an operator answers each prompt once it has appeared. Like a real one, it
 * echoes what is typed unless the program switched it to raw mode, so a prompt that does not
 * hide the password shows it in `raw`.
 */
class FakeTerminal {
  readonly stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    isRaw: false,
    setRawMode(mode: boolean) {
      this.isRaw = mode;
      return this;
    },
  });
  readonly stdout = new PassThrough();
  /** Everything written to the terminal, escape sequences included. */
  raw = '';
  private shown = '';
  private searchFrom = 0;

  constructor(private readonly script: [prompt: string, answer: string][]) {
    this.stdout.on('data', (chunk: Buffer) => {
      this.raw += chunk.toString();
      this.shown += chunk.toString().replace(ANSI, '');
      this.answerNext();
    });
  }

  get unanswered(): string[] {
    return this.script.map(([prompt]) => prompt);
  }

  private answerNext(): void {
    const next = this.script[0];
    if (!next) return;
    const at = this.shown.indexOf(next[0], this.searchFrom);
    if (at < 0) return;
    this.searchFrom = at + next[0].length;
    this.script.shift();
    setImmediate(() => {
      if (!this.stdin.isRaw) this.raw += `${next[1]}\n`;
      this.stdin.write(`${next[1]}\n`);
    });
  }
}

let dir: string;
let databaseFile: string;
let configFile: string;

function sqliteOptions(): DataSourceOptions {
  return { type: 'better-sqlite3', database: databaseFile, entities: [...authEntities] };
}

/** What the app would have done at start-up (synchronize or migrations): the auth tables. */
async function createSchema(options: DataSourceOptions = sqliteOptions()): Promise<void> {
  const dataSource = await new DataSource({ ...options, synchronize: true } as DataSourceOptions).initialize();
  await dataSource.destroy();
}

function writeConfig(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** Run one command line; `input` is piped stdin (not a terminal) or a FakeTerminal. */
async function cli(
  argv: string[],
  { input = '', env = {} }: { input?: string | FakeTerminal; env?: Record<string, string> } = {},
): Promise<Result> {
  const stdout = input instanceof FakeTerminal ? input.stdout : new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  if (!(input instanceof FakeTerminal)) stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const stdin = input instanceof FakeTerminal ? input.stdin : Readable.from([Buffer.from(input)]);
  const code = await runCli(argv, { stdin, stdout, stderr, env, cwd: dir });
  if (input instanceof FakeTerminal) out = input.raw.replace(ANSI, '');
  return { code, stdout: out, stderr: err };
}

/** `cli` with `--config` pointing at the temporary database. */
function run(argv: string[], options?: Parameters<typeof cli>[1]): Promise<Result> {
  return cli(['--config', configFile, ...argv], options);
}

/** The app, opened on the same database file, to check what the CLI did through the library. */
async function openApp(): Promise<TestApp> {
  return createTestApp({ database: { database: databaseFile }, synchronize: false, auth: AUTH as any });
}

async function withApp<T>(work: (app: TestApp) => Promise<T>): Promise<T> {
  const app = await openApp();
  try {
    return await work(app);
  } finally {
    await app.close();
  }
}

async function canLogIn(username: string, password: string): Promise<boolean> {
  return withApp(async ({ auth }) => (await auth.authenticate(undefined, { username, password })) !== null);
}

async function findUser(username: string): Promise<User | null> {
  return withApp(({ users }) => users.findByUsername(username) as Promise<User | null>);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nestjs-session-auth-cli-'));
  databaseFile = join(dir, 'app.sqlite');
  configFile = writeConfig('auth.config.json', { dataSource: { type: 'better-sqlite3', database: databaseFile }, auth: AUTH });
  await createSchema();
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('createuser', () => {
  it('creates a user whose password is prompted twice, never echoed, and works for login', async () => {
    const terminal = new FakeTerminal([
      ['Password:', 'violet-Lantern-42'],
      ['Password (again):', 'violet-Lantern-42'],
    ]);
    const result = await run(['createuser', 'dora', '--email', 'Dora@Example.COM'], { input: terminal });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain("User 'dora' created.");
    expect(terminal.raw).not.toContain('violet-Lantern-42');
    const user = await findUser('dora');
    // As Django's normalize_email: only the domain part of the email is lowercased.
    expect(user).toMatchObject({ email: 'Dora@example.com', isStaff: false, isSuperuser: false, isActive: true });
    expect(await canLogIn('dora', 'violet-Lantern-42')).toBe(true);
  });

  it('reads the password from stdin with --password-stdin, for scripts', async () => {
    const result = await run(['createuser', 'erin', '--staff', '--password-stdin'], { input: 'quiet-Harbor-77\n' });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).not.toContain('quiet-Harbor-77');
    expect(await findUser('erin')).toMatchObject({ isStaff: true, isSuperuser: false });
    expect(await canLogIn('erin', 'quiet-Harbor-77')).toBe(true);
  });

  it('gives an unusable password with --no-password', async () => {
    const result = await run(['createuser', 'remote-only', '--no-password']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('unusable password');
    expect(isPasswordUsable((await findUser('remote-only'))!.password)).toBe(false);
  });

  it('refuses to prompt when stdin is not a terminal and says how to pass the password', async () => {
    const result = await run(['createuser', 'frank'], { input: 'typed-into-a-pipe\n' });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('stdin is not a terminal');
    expect(result.stderr).toContain('--password-stdin');
    expect(await findUser('frank')).toBeNull();
  });

  it('lists every rule the validators break, together, and creates nothing', async () => {
    const common = await run(['createuser', 'gina', '--password-stdin'], { input: 'password\n' });
    expect(common.code).toBe(1);
    expect(common.stderr).toContain('This password is too common.');

    const numeric = await run(['createuser', 'gina', '--password-stdin'], { input: '12345678\n' });
    expect(numeric.code).toBe(1);
    expect(numeric.stderr).toContain('This password is too common.');
    expect(numeric.stderr).toContain('This password is entirely numeric.');

    const short = await run(['createuser', 'gina', '--password-stdin'], { input: '1234\n' });
    expect(short.stderr).toContain('This password is too short. It must contain at least 8 characters.');
    expect(short.stderr).toContain('This password is entirely numeric.');
    expect(short.stderr).not.toContain('   at ');

    expect(await findUser('gina')).toBeNull();
  });

  it('compares the password with the new username (similarity)', async () => {
    const result = await run(['createuser', 'harriet.wonderful', '--password-stdin'], { input: 'harrietwonderful\n' });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('The password is too similar to the username.');
  });

  it('refuses a username that is taken, and leaves the existing user alone', async () => {
    await run(['createuser', 'ivan', '--password-stdin'], { input: 'first-Password-1\n' });
    const again = await run(['createuser', 'ivan', '--password-stdin'], { input: 'second-Password-2\n' });

    expect(again.code).toBe(1);
    expect(again.stderr).toBe("Error: The username 'ivan' is already taken.\n");
    expect(await canLogIn('ivan', 'first-Password-1')).toBe(true);
    expect(await canLogIn('ivan', 'second-Password-2')).toBe(false);
  });

  it('reports a username taken between its check and the save (another process) the same way', async () => {
    await run(['createuser', 'ivan', '--no-password']);
    // The check sees no 'ivan', as when another process creates it right after.
    const lookup = jest.spyOn(UserManager.prototype, 'findByUsername').mockResolvedValue(null);
    try {
      const result = await run(['createuser', 'ivan', '--no-password']);

      expect(result.code).toBe(1);
      expect(result.stderr).toBe("Error: The username 'ivan' is already taken.\n");
    } finally {
      lookup.mockRestore();
    }
  });

  it("refuses a username outside Django's characters", async () => {
    const result = await run(['createuser', 'jay doe', '--no-password']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('may contain only letters, numbers, and @/./+/-/_ characters');
    expect(await findUser('jay doe')).toBeNull();
  });

  it('refuses an email that is not an address', async () => {
    const result = await run(['createuser', 'kim', '--email', 'not an email', '--no-password']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Enter a valid email address.');
    expect(await findUser('kim')).toBeNull();
  });
});

describe('createsuperuser', () => {
  it('asks for username, email and the password twice, and creates a staff superuser', async () => {
    const terminal = new FakeTerminal([
      ['Username:', 'root'],
      ['Email address:', 'root@example.com'],
      ['Password:', 'Granite-Owl-1984'],
      ['Password (again):', 'Granite-Owl-1984'],
    ]);
    const result = await cli(['createsuperuser'], { input: terminal, env: { NESTJS_SESSION_AUTH_CONFIG: configFile } });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('Superuser created successfully.');
    expect(terminal.raw).not.toContain('Granite-Owl-1984');
    expect(await findUser('root')).toMatchObject({ email: 'root@example.com', isStaff: true, isSuperuser: true });
    expect(await canLogIn('root', 'Granite-Owl-1984')).toBe(true);
  });

  it('asks again after a mismatched confirmation and gives up after three attempts', async () => {
    const terminal = new FakeTerminal([
      ['Password:', 'Granite-Owl-1984'],
      ['Password (again):', 'Granite-Owl-1985'],
      ['Password:', 'Granite-Owl-1984'],
      ['Password (again):', 'granite-owl-1984'],
      ['Password:', 'a'],
      ['Password (again):', 'b'],
    ]);
    const result = await run(['createsuperuser', '--username', 'root', '--email', ''], { input: terminal });

    expect(result.code).toBe(1);
    expect(result.stderr.match(/Your passwords didn't match\./g)).toHaveLength(3);
    expect(result.stderr).toContain('the superuser was not created');
    expect(terminal.unanswered).toEqual([]);
    expect(await findUser('root')).toBeNull();
  });

  it('accepts the confirmation after a mismatch on the next attempt', async () => {
    const terminal = new FakeTerminal([
      ['Password:', 'Granite-Owl-1984'],
      ['Password (again):', 'Granite-Owl-1985'],
      ['Password:', 'Granite-Owl-1984'],
      ['Password (again):', 'Granite-Owl-1984'],
    ]);
    const result = await run(['createsuperuser', '--username', 'root', '--email', ''], { input: terminal });

    expect(result.code).toBe(0);
    expect(await canLogIn('root', 'Granite-Owl-1984')).toBe(true);
  });

  it('lists what the validators refuse and creates the user only when the operator confirms the bypass', async () => {
    const terminal = new FakeTerminal([
      ['Password:', '12345678'],
      ['Password (again):', '12345678'],
      ['create user anyway? [y/N]:', ''],
      ['Password:', 'password'],
      ['Password (again):', 'password'],
      ['create user anyway? [y/N]:', 'y'],
    ]);
    const result = await run(['createsuperuser', '--username', 'root', '--email', 'root@example.com'], { input: terminal });

    expect(result.code).toBe(0);
    expect(result.stderr).toContain('This password is too common.\nThis password is entirely numeric.\n');
    expect(terminal.unanswered).toEqual([]);
    expect(await canLogIn('root', 'password')).toBe(true);
  });

  it('re-asks a username that is taken', async () => {
    await run(['createuser', 'root', '--no-password']);
    const terminal = new FakeTerminal([
      ['Username:', 'root'],
      ['Username:', 'admin'],
      ['Email address:', ''],
      ['Password:', 'Granite-Owl-1984'],
      ['Password (again):', 'Granite-Owl-1984'],
    ]);
    const result = await run(['createsuperuser'], { input: terminal });

    expect(result.code).toBe(0);
    expect(result.stderr).toContain("Error: The username 'root' is already taken.");
    expect(await findUser('admin')).toMatchObject({ isSuperuser: true });
    expect(await findUser('root')).toMatchObject({ isSuperuser: false });
  });

  it('without a terminal, points to --noinput and the environment variables', async () => {
    const result = await run(['createsuperuser']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--noinput');
    expect(result.stderr).toContain('NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD');
  });

  it('with --noinput takes username, email and password from the environment', async () => {
    const result = await run(['createsuperuser', '--noinput'], {
      env: {
        NESTJS_SESSION_AUTH_SUPERUSER_USERNAME: 'ops',
        NESTJS_SESSION_AUTH_SUPERUSER_EMAIL: 'ops@example.com',
        NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD: 'Copper-Kettle-55',
      },
    });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(await findUser('ops')).toMatchObject({ email: 'ops@example.com', isStaff: true, isSuperuser: true });
    expect(await canLogIn('ops', 'Copper-Kettle-55')).toBe(true);
  });

  it('with --no-input and no password variable gives an unusable password', async () => {
    const result = await run(['createsuperuser', '--no-input', '--username', 'ops']);

    expect(result.code).toBe(0);
    expect(isPasswordUsable((await findUser('ops'))!.password)).toBe(false);
  });

  it('with --noinput still applies the validators to the password from the environment', async () => {
    const result = await run(['createsuperuser', '--noinput', '--username', 'ops'], {
      env: { NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD: 'ops' },
    });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('This password is too short.');
    expect(result.stderr).toContain('The password is too similar to the username.');
    expect(await findUser('ops')).toBeNull();
  });

  it('with --noinput requires a username', async () => {
    const result = await run(['createsuperuser', '--noinput']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--username');
    expect(result.stderr).toContain('NESTJS_SESSION_AUTH_SUPERUSER_USERNAME');
  });
});

describe('changepassword', () => {
  beforeEach(async () => {
    await run(['createuser', 'lena', '--email', 'lena@example.com', '--password-stdin'], { input: 'Old-Password-Lena\n' });
  });

  it("prompts twice, validates, and replaces the user's password", async () => {
    const terminal = new FakeTerminal([
      ['Password:', 'New-Password-Lena'],
      ['Password (again):', 'New-Password-Lena'],
    ]);
    const result = await run(['changepassword', 'lena'], { input: terminal });

    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Password changed successfully for user 'lena'.");
    expect(terminal.raw).not.toContain('New-Password-Lena');
    expect(await canLogIn('lena', 'New-Password-Lena')).toBe(true);
    expect(await canLogIn('lena', 'Old-Password-Lena')).toBe(false);
  });

  it('logs out the sessions the user already had (the session auth hash changes)', async () => {
    const app = await openApp();
    try {
      const login = await request(app.app.getHttpServer())
        .post('/login')
        .send({ username: 'lena', password: 'Old-Password-Lena' })
        .expect(200);
      const cookie = sessionCookie(login.headers['set-cookie'])!;
      await request(app.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200);

      const result = await run(['changepassword', 'lena', '--password-stdin'], { input: 'New-Password-Lena\n' });

      expect(result.code).toBe(0);
      await request(app.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
    } finally {
      await app.close();
    }
  });

  it('keeps the old password after three mismatched confirmations', async () => {
    const terminal = new FakeTerminal([
      ['Password:', 'New-Password-1'],
      ['Password (again):', 'New-Password-2'],
      ['Password:', 'New-Password-1'],
      ['Password (again):', 'New-Password-2'],
      ['Password:', 'New-Password-1'],
      ['Password (again):', 'New-Password-2'],
    ]);
    const result = await run(['changepassword', 'lena'], { input: terminal });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Aborting password change for user 'lena' after 3 attempts.");
    expect(await canLogIn('lena', 'Old-Password-Lena')).toBe(true);
  });

  it('lists every validator message and offers no bypass', async () => {
    const terminal = new FakeTerminal([
      ['Password:', '12345678'],
      ['Password (again):', '12345678'],
      ['Password:', 'lena@example'],
      ['Password (again):', 'lena@example'],
      ['Password:', ''],
      ['Password (again):', ''],
    ]);
    const result = await run(['changepassword', 'lena'], { input: terminal });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('This password is too common.\nThis password is entirely numeric.\n');
    expect(result.stderr).toContain('The password is too similar to the email address.');
    expect(result.stderr).toContain("Blank passwords aren't allowed.");
    expect(result.stdout).not.toContain('Bypass');
    expect(await canLogIn('lena', 'Old-Password-Lena')).toBe(true);
  });

  it('refuses a weak password from --password-stdin and keeps the old one', async () => {
    const result = await run(['changepassword', 'lena', '--password-stdin'], { input: '12345678\n' });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('This password is entirely numeric.');
    expect(await canLogIn('lena', 'Old-Password-Lena')).toBe(true);
  });

  it('names an unknown user', async () => {
    const result = await run(['changepassword', 'nobody', '--password-stdin'], { input: 'Whatever-Pass-1\n' });

    expect(result.code).toBe(1);
    expect(result.stderr).toBe("Error: User 'nobody' does not exist. Check the spelling, or create it with createuser.\n");
  });
});

describe('clearsessions', () => {
  it('deletes expired sessions and keeps the others', async () => {
    const dataSource = await new DataSource(sqliteOptions()).initialize();
    const now = Date.now();
    const cookie = JSON.stringify({ cookie: { originalMaxAge: 1000 } });
    await dataSource.getRepository(SessionRecord).insert([
      { id: 'expired-1', data: cookie, expiresAt: now - 60_000, userId: null },
      { id: 'expired-2', data: cookie, expiresAt: now - 1, userId: '1' },
      { id: 'alive', data: cookie, expiresAt: now + 60 * 60_000, userId: '1' },
    ]);

    const result = await run(['clearsessions']);

    expect(result).toMatchObject({ code: 0, stdout: 'Deleted 2 expired sessions.\nDeleted 0 stale login failure counters.\n', stderr: '' });
    const left = await dataSource.getRepository(SessionRecord).find();
    expect(left.map((row) => row.id)).toEqual(['alive']);
    await dataSource.destroy();
  });

  it('deletes login failure counters older than a day, which an attacker can make by the thousand', async () => {
    const dataSource = await new DataSource(sqliteOptions()).initialize();
    const now = Date.now();
    await dataSource.getRepository(LoginLockout).insert([
      { key: 'a'.repeat(64), failures: 3, windowStart: now - 25 * 60 * 60_000 },
      { key: 'b'.repeat(64), failures: 1, windowStart: now - 26 * 60 * 60_000 },
      { key: 'c'.repeat(64), failures: 2, windowStart: now - 60_000 },
    ]);

    const result = await run(['clearsessions']);

    expect(result).toMatchObject({ code: 0, stdout: 'Deleted 0 expired sessions.\nDeleted 2 stale login failure counters.\n' });
    expect((await dataSource.getRepository(LoginLockout).find()).map((row) => row.key)).toEqual(['c'.repeat(64)]);
    await dataSource.destroy();
  });
});

describe('grant', () => {
  beforeEach(async () => {
    await run(['createuser', 'mia', '--no-password']);
  });

  async function hasPerm(username: string, perm: string): Promise<boolean> {
    return withApp(async ({ auth, users }) => auth.hasPerm(await users.findByUsername(username), perm));
  }

  it('grants an existing permission to a user', async () => {
    await withApp(async ({ app }) => {
      await app.get(PermissionManager).createPermission('blog.publish');
    });

    const result = await run(['grant', 'mia', 'blog.publish']);

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain("Granted 'blog.publish' to 'mia'.");
    expect(await hasPerm('mia', 'blog.publish')).toBe(true);
    expect(await hasPerm('mia', 'blog.delete')).toBe(false);
  });

  it("adds a user to a group, who then has the group's permissions", async () => {
    await withApp(async ({ app }) => {
      const permissions = app.get(PermissionManager);
      await permissions.createPermission('blog.edit');
      await permissions.createGroup('editors', ['blog.edit']);
    });

    const result = await run(['grant', 'mia', '--group', 'editors']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Added 'mia' to group 'editors'.");
    expect(await hasPerm('mia', 'blog.edit')).toBe(true);
  });

  it('creates missing permissions and groups only with --create', async () => {
    const refused = await run(['grant', 'mia', 'shop.refund', '--group', 'support']);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("No permission 'shop.refund', group 'support'.");
    expect(refused.stderr).toContain('--create');

    const created = await run(['grant', 'mia', 'shop.refund', '--group', 'support', '--create']);

    expect(created.code).toBe(0);
    expect(created.stdout).toContain("Created permission 'shop.refund'.");
    expect(created.stdout).toContain("Created group 'support'.");
    expect(await hasPerm('mia', 'shop.refund')).toBe(true);
    await withApp(async ({ app, users }) => {
      const mia = await users.findByUsername('mia');
      const members = await app.get(PermissionManager).usersWithPerm('shop.refund');
      expect(members.map((user: User) => user.username)).toEqual([mia!.username]);
    });
  });

  it('grants nothing when one of several names is unknown', async () => {
    await withApp(async ({ app }) => {
      await app.get(PermissionManager).createPermission('blog.publish');
    });

    const result = await run(['grant', 'mia', 'blog.publish', 'blog.pubish']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("No permission 'blog.pubish'");
    expect(await hasPerm('mia', 'blog.publish')).toBe(false);
  });

  it("refuses a permission name that is not 'app.action'", async () => {
    const result = await run(['grant', 'mia', 'publish', '--create']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Permission name should be in the form app_label.permission_codename');
    expect(await withApp(async ({ app }) => app.get(PermissionManager).getPermission('blog.publish'))).toBeNull();
  });

  it('refuses an empty group name', async () => {
    const result = await run(['grant', 'mia', '--group', '', '--create']);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe('Error: A group name must be 1 to 150 characters long.\n');
  });

  it('names an unknown user', async () => {
    const result = await run(['grant', 'nobody', 'blog.publish', '--create']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("User 'nobody' does not exist.");
  });

  it('asks for something to grant', async () => {
    const result = await run(['grant', 'mia']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--group');
  });
});

describe('connecting to the database', () => {
  it('uses DATABASE_URL as the path of a SQLite file', async () => {
    const result = await cli(['createuser', 'nora', '--no-password'], { env: { DATABASE_URL: 'app.sqlite' } });

    expect(result.code).toBe(0);
    expect(await findUser('nora')).not.toBeNull();
  });

  it('reports a DATABASE_URL file that does not exist, and does not create it', async () => {
    const result = await cli(['clearsessions'], { env: { DATABASE_URL: 'missing.sqlite' } });

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^Error: SQLite database file not found: ${join(dir, 'missing.sqlite')}\\. Set DATABASE_URL to the file your app uses, or pass --create-schema .*\\n$`));
    expect(existsSync(join(dir, 'missing.sqlite'))).toBe(false);
  });

  it('reports a database that cannot be reached, without its password or a stack trace', async () => {
    const result = await cli(['clearsessions'], { env: { DATABASE_URL: 'postgres://app:hunter2@127.0.0.1:1/app' } });

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Error: Cannot connect to the database \(DATABASE_URL postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/app\)/);
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stderr).not.toContain('   at ');
  });

  it('refuses a URL scheme it does not know', async () => {
    const result = await cli(['clearsessions'], { env: { DATABASE_URL: 'mysql://app:hunter2@db/app' } });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is not supported');
    expect(result.stderr).not.toContain('hunter2');
  });

  it('says how to configure a connection when there is none', async () => {
    const result = await cli(['clearsessions']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('No database configured.');
    expect(result.stderr).toContain('--config');
    expect(result.stderr).toContain('DATABASE_URL');
  });

  it('reports a missing config file, a config that is not JSON, and one without dataSource', async () => {
    const missing = await cli(['--config', 'nope.json', 'clearsessions']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Config file not found: ${join(dir, 'nope.json')}`);

    const broken = await cli(['--config', writeConfig('broken.json', '{ dataSource: '), 'clearsessions']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('is not valid JSON');

    const empty = await cli(['--config', writeConfig('empty.json', { auth: {} }), 'clearsessions']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('must export { dataSource:');
  });

  it('reports a database without the auth tables, before prompting, and leaves it unchanged', async () => {
    const emptyFile = join(dir, 'empty.sqlite');
    await new DataSource({ type: 'better-sqlite3', database: emptyFile }).initialize().then((ds) => ds.destroy());

    const result = await cli(['createuser', 'olga', '--password-stdin'], {
      input: 'Fine-Password-9\n',
      env: { DATABASE_URL: emptyFile },
    });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('has no auth_user');
    expect(result.stderr).toContain("Run your app's migrations first");
    const check = await new DataSource({ type: 'better-sqlite3', database: emptyFile }).initialize();
    expect(await check.createQueryRunner().hasTable('auth_user')).toBe(false);
    await check.destroy();
  });

  it('reports unusable auth options from the config file', async () => {
    const config = writeConfig('bad-auth.json', {
      dataSource: { type: 'better-sqlite3', database: databaseFile },
      auth: { passwordHashers: ['md5'] },
    });

    const result = await cli(['--config', config, 'clearsessions']);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Error: the auth options are not usable: Unknown password hasher 'md5'/);
    expect(result.stderr).not.toContain('   at ');
  });

  it('loads a JavaScript config that exports a function, and honours its auth options', async () => {
    const config = writeConfig(
      'auth.config.mjs',
      `export default async () => ({
        dataSource: { type: 'better-sqlite3', database: ${JSON.stringify(databaseFile)} },
        auth: { passwordHashers: ['scrypt'], passwordValidators: [] },
      });`,
    );

    const result = await cli(['--config', config, 'createuser', 'pia', '--password-stdin'], { input: '1234\n' });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(await canLogIn('pia', '1234')).toBe(true);
  });
});

describe('usage', () => {
  it('prints help and exits 0', async () => {
    const result = await cli(['--help']);

    expect(result.code).toBe(0);
    for (const command of ['createuser', 'createsuperuser', 'changepassword', 'clearsessions', 'grant']) {
      expect(result.stdout).toContain(command);
    }
  });

  it('exits 1 on an unknown command', async () => {
    const result = await cli(['createsuperusr']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("unknown command 'createsuperusr'");
  });
});

const pgUrl = postgresUrl();
{
  describeIf(pgUrl)('on PostgreSQL', () => {
    const schema = uniqueName('cli');
    const options = { type: 'postgres', url: pgUrl, schema } as const;

    beforeAll(async () => {
      const admin = await new DataSource({ type: 'postgres', url: pgUrl }).initialize();
      await admin.query(`CREATE SCHEMA "${schema}"`);
      await admin.destroy();
      await createSchema({ ...options, entities: [...authEntities] });
    });

    afterAll(async () => {
      const admin = await new DataSource({ type: 'postgres', url: pgUrl }).initialize();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.destroy();
    });

    it('creates a superuser, grants a permission and clears sessions through a config file', async () => {
      const config = writeConfig('pg.json', { dataSource: options, auth: AUTH });
      const env = { NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD: 'Basalt-Heron-31' };

      expect((await cli(['-c', config, 'createsuperuser', '--noinput', '--username', 'pg-admin'], { env })).code).toBe(0);
      expect((await cli(['-c', config, 'createuser', 'pg-user', '--no-password'])).code).toBe(0);
      expect((await cli(['-c', config, 'grant', 'pg-user', 'reports.view', '--create'])).code).toBe(0);
      expect(await cli(['-c', config, 'clearsessions'])).toMatchObject({
        code: 0,
        stdout: 'Deleted 0 expired sessions.\nDeleted 0 stale login failure counters.\n',
      });

      const dataSource = await new DataSource({ ...options, entities: [...authEntities] }).initialize();
      try {
        const admin = await dataSource.getRepository(User).findOneByOrFail({ username: 'pg-admin' });
        expect(admin).toMatchObject({ isStaff: true, isSuperuser: true });
        const granted = await dataSource.query(
          `SELECT p.codename FROM "${schema}".auth_permission p
             JOIN "${schema}".auth_user_user_permissions up ON up.permission_id = p.id
             JOIN "${schema}".auth_user u ON u.id = up.user_id WHERE u.username = 'pg-user'`,
        );
        expect(granted).toEqual([{ codename: 'reports.view' }]);
      } finally {
        await dataSource.destroy();
      }
    });
  });
}
