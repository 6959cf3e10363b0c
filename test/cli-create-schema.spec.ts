import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { authEntities, ModelBackend } from 'nestjs-session-auth';
import { runCli } from '../src/cli/cli.program.js';
import { describeIf, postgresUrl, uniqueName } from './support/services.js';
import { createTestApp } from './support/test-app.js';

/**
 * `createsuperuser` before the app's first start: the database does not exist yet, or lacks the
 * auth tables. `--create-schema` (or a config whose DataSource says `synchronize: true`, outside
 * production) creates what is missing and nothing else.
 */

const AUTH = { passwordHashers: ['scrypt'] as const };
const SUPERUSER = {
  NESTJS_SESSION_AUTH_SUPERUSER_USERNAME: 'admin',
  NESTJS_SESSION_AUTH_SUPERUSER_EMAIL: 'admin@example.com',
  NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD: 'Fine-Password-9',
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-schema-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[], env: Record<string, string>) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const code = await runCli(argv, { stdin: Readable.from([]), stdout, stderr, env, cwd: dir });
  return { code, stdout: out, stderr: err };
}

async function tablesOf(file: string): Promise<string[]> {
  const db = await new DataSource({ type: 'better-sqlite3', database: file }).initialize();
  try {
    const rows: { name: string }[] = await db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
    return rows.map((row) => row.name);
  } finally {
    await db.destroy();
  }
}

const ALL_AUTH_TABLES = [
  'auth_external_identity',
  'auth_group',
  'auth_group_permissions',
  'auth_login_lockout',
  'auth_permission',
  'auth_session',
  'auth_user',
  'auth_user_groups',
  'auth_user_user_permissions',
];

describe('createsuperuser before the first start', () => {
  it('creates the SQLite file and every auth table with --create-schema, and the app then starts on it and logs the superuser in', async () => {
    const result = await cli(['createsuperuser', '--noinput', '--create-schema'], { DATABASE_URL: 'db.sqlite', ...SUPERUSER });

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Created the tables auth_permission, auth_group, auth_user, ');
    expect(result.stdout).toContain('(--create-schema).\nSuperuser created successfully.\n');
    expect(await tablesOf(join(dir, 'db.sqlite'))).toEqual(ALL_AUTH_TABLES);

    // The app, with synchronize off, finds every table its start-up checks ask for.
    const app = await createTestApp({ database: { database: join(dir, 'db.sqlite') }, synchronize: false, auth: { backends: [ModelBackend] } });
    try {
      await request(app.app.getHttpServer()).post('/login').send({ username: 'admin', password: 'Fine-Password-9' }).expect(200);
    } finally {
      await app.close();
    }
  });

  it('without the flag, says how to create the database and creates nothing', async () => {
    const result = await cli(['createsuperuser', '--noinput'], { DATABASE_URL: 'db.sqlite', ...SUPERUSER });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`SQLite database file not found: ${join(dir, 'db.sqlite')}.`);
    expect(result.stderr).toContain('pass --create-schema');
    expect(existsSync(join(dir, 'db.sqlite'))).toBe(false);
  });

  it('says so on an existing database without the tables, and leaves it as it was', async () => {
    await new DataSource({ type: 'better-sqlite3', database: join(dir, 'empty.sqlite') }).initialize().then((db) => db.destroy());

    const result = await cli(['createsuperuser', '--noinput'], { DATABASE_URL: 'empty.sqlite', ...SUPERUSER });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Run your app's migrations first");
    expect(result.stderr).toContain('pass --create-schema');
    expect(await tablesOf(join(dir, 'empty.sqlite'))).toEqual([]);
  });

  it('creates the tables when the config file says synchronize: true, and says why', async () => {
    const config = join(dir, 'auth.config.json');
    writeFileSync(config, JSON.stringify({ dataSource: { type: 'better-sqlite3', database: join(dir, 'app.sqlite'), synchronize: true }, auth: AUTH }));

    const result = await cli(['--config', config, 'createsuperuser', '--noinput'], SUPERUSER);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('(the DataSource says synchronize: true).\nSuperuser created successfully.');
    expect(await tablesOf(join(dir, 'app.sqlite'))).toEqual(ALL_AUTH_TABLES);
  });

  it('never creates tables on its own in production, synchronize or not', async () => {
    const config = join(dir, 'auth.config.json');
    writeFileSync(config, JSON.stringify({ dataSource: { type: 'better-sqlite3', database: join(dir, 'app.sqlite'), synchronize: true }, auth: AUTH }));
    await new DataSource({ type: 'better-sqlite3', database: join(dir, 'app.sqlite') }).initialize().then((db) => db.destroy());

    const result = await cli(['--config', config, 'createsuperuser', '--noinput'], { ...SUPERUSER, NODE_ENV: 'production' });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('pass --create-schema');
    expect(await tablesOf(join(dir, 'app.sqlite'))).toEqual([]);
  });

  it('adds the one table an older database lacks, keeping the users it holds', async () => {
    const file = join(dir, 'older.sqlite');
    const first = await cli(['createuser', 'carol', '--no-password', '--create-schema'], { DATABASE_URL: file });
    expect(first.code).toBe(0);
    const db = await new DataSource({ type: 'better-sqlite3', database: file }).initialize();
    await db.query('DROP TABLE auth_external_identity');
    await db.destroy();

    const result = await cli(['createsuperuser', '--noinput', '--create-schema'], { DATABASE_URL: file, ...SUPERUSER });

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Created the table auth_external_identity (--create-schema).');
    const check = await new DataSource({ type: 'better-sqlite3', database: file, entities: [...authEntities] }).initialize();
    expect((await check.query('SELECT username FROM auth_user ORDER BY username')).map((row: { username: string }) => row.username)).toEqual(['admin', 'carol']);
    await check.destroy();
  });

  it('refuses to alter an auth table that exists but differs from the entities, and changes nothing', async () => {
    const file = join(dir, 'odd.sqlite');
    const db = await new DataSource({ type: 'better-sqlite3', database: file }).initialize();
    await db.query('CREATE TABLE auth_group (id integer PRIMARY KEY, title varchar(10))');
    await db.query("INSERT INTO auth_group (id, title) VALUES (1, 'editors')");
    await db.destroy();

    const result = await cli(['createsuperuser', '--noinput', '--create-schema'], { DATABASE_URL: file, ...SUPERUSER });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--create-schema only creates missing tables');
    expect(result.stderr).toContain('DROP TABLE "auth_group"');
    expect(await tablesOf(file)).toEqual(['auth_group']);
    const after = await new DataSource({ type: 'better-sqlite3', database: file }).initialize();
    expect(await after.query('SELECT id, title FROM auth_group')).toEqual([{ id: 1, title: 'editors' }]);
    await after.destroy();
  });
});

const pgUrl = postgresUrl();
describeIf(pgUrl)('--create-schema on PostgreSQL', () => {
  const schema = uniqueName('cli_schema');
  const options = { type: 'postgres', url: pgUrl, schema } as const;

  beforeAll(async () => {
    const admin = await new DataSource({ type: 'postgres', url: pgUrl }).initialize();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.destroy();
  });
  afterAll(async () => {
    const admin = await new DataSource({ type: 'postgres', url: pgUrl }).initialize();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.destroy();
  });

  it('creates the auth tables with their foreign keys in an empty schema, then finds nothing left to create', async () => {
    const config = join(dir, 'pg.json');
    writeFileSync(config, JSON.stringify({ dataSource: options, auth: AUTH }));

    const first = await cli(['--config', config, '--create-schema', 'createsuperuser', '--noinput'], SUPERUSER);
    expect(first.stderr).toBe('');
    expect(first.stdout).toContain('(--create-schema).\nSuperuser created successfully.');

    const db = await new DataSource({ type: 'postgres', url: pgUrl }).initialize();
    const tables = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema]);
    const foreignKeys = await db.query(
      `SELECT count(*)::int AS n FROM information_schema.table_constraints WHERE table_schema = $1 AND constraint_type = 'FOREIGN KEY'`,
      [schema],
    );
    await db.destroy();
    expect(tables.map((row: { table_name: string }) => row.table_name)).toEqual(ALL_AUTH_TABLES);
    expect(foreignKeys[0].n).toBeGreaterThan(0);

    const again = await cli(['--config', config, '--create-schema', 'createuser', 'carol', '--no-password'], {});
    expect(again).toMatchObject({ code: 0, stdout: "User 'carol' created with an unusable password.\n" });
  });
});
