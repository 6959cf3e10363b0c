import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/cli/cli.program.js';

/**
 * `npx nestjs-session-auth init` on the files `nest new` writes (compat/nest-new-cjs: Nest 11's
 * CommonJS project; compat/nest-new-esm: Nest 12's ES module one). Installing, building and
 * logging in to such an app is compat/first-hour.sh's job; here, what init writes, that a second
 * run changes nothing, and that what it does not recognise is refused before any file is written.
 */
const compat = fileURLToPath(new URL('../compat/', import.meta.url));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-init-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function init(args: string[] = []) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const code = await runCli(['init', ...args], { stdin: Readable.from([]), stdout, stderr, env: {}, cwd: dir });
  return { code, stdout: out, stderr: err };
}

const read = (path: string) => readFileSync(join(dir, path), 'utf8');

/** Every file of the project and its content, to see that a run wrote nothing. */
function snapshot(folder = dir, prefix = ''): Record<string, string> {
  return Object.fromEntries(
    readdirSync(folder).flatMap((name) => {
      const path = join(folder, name);
      return statSync(path).isDirectory() ? Object.entries(snapshot(path, `${prefix}${name}/`)) : [[`${prefix}${name}`, readFileSync(path, 'utf8')]];
    }),
  );
}

const wiredModule = (suffix: string) => `import './load-env${suffix}';
import { Module } from '@nestjs/common';
import { AppController } from './app.controller${suffix}';
import { AppService } from './app.service${suffix}';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule, ModelBackend, authEntities } from 'nestjs-session-auth';

@Module({
  imports: [
    TypeOrmModule.forRoot({
      type: 'better-sqlite3',
      database: process.env.DATABASE_PATH ?? 'db.sqlite',
      entities: [...authEntities],
      // Creates the tables at start-up: for development; use migrations in production.
      synchronize: true,
    }),
    AuthModule.forRoot({
      backends: [ModelBackend],
      session: { secret: process.env.SESSION_SECRET! },
      // The built-in login, logout, password change and reset pages, under /accounts/.
      views: true,
    }),
  ],
  controllers: [AppController],
  providers: [AppService],
})
export class AppModule {}
`;

describe.each([
  ['nest-new-cjs', "Nest 11's CommonJS project", ''],
  ['nest-new-esm', "Nest 12's ES module project", '.js'],
])('init in a fresh %s (%s)', (fixture, _what, suffix) => {
  beforeEach(() => cpSync(join(compat, fixture), dir, { recursive: true }));

  it('wires TypeORM with authEntities, AuthModule with the views, a secret in .env loaded first, and .gitignore', async () => {
    const result = await init();

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(read('src/app.module.ts')).toBe(wiredModule(suffix));
    expect(read('src/load-env.ts')).toContain("if (existsSync('.env')) process.loadEnvFile('.env');");
    expect(read('.env')).toMatch(/^SESSION_SECRET=[0-9a-f]{64}\n$/);
    expect(statSync(join(dir, '.env')).mode & 0o077).toBe(0);
    expect(read('.gitignore')).toBe('.env\ndb.sqlite\n');
    expect(result.stdout).toContain('Still to install: npm install nestjs-session-auth @nestjs/typeorm typeorm better-sqlite3 express-session');
    expect(result.stdout).toContain('createsuperuser --create-schema');
  });

  it('changes nothing when run again, and says so', async () => {
    await init();
    const before = snapshot();

    const again = await init();

    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Nothing to change: this app is already wired.');
    expect(snapshot()).toEqual(before);
  });

  it('gives every app its own secret', async () => {
    await init();
    const first = read('.env');
    rmSync(join(dir, '.env'));
    await init();
    expect(read('.env')).not.toBe(first);
  });
});

describe('init in an app that has more in it', () => {
  beforeEach(() => cpSync(join(compat, 'nest-new-esm'), dir, { recursive: true }));

  it("appends to a module's imports, its comments kept (nest new 12's ObserveModule)", async () => {
    writeFileSync(
      join(dir, 'src/app.module.ts'),
      `import { Module } from '@nestjs/common';
import { createObserveModule } from '@nestjs/observe';
import { AppController } from './app.controller.js';

export const { ObserveModule, ObserveInstrument } = createObserveModule();

@Module({
  imports: [
    // Distributed tracing, auto-correlated logs.
    ObserveModule.forRoot({
      appKey: process.env.OBSERVE_APP_KEY ?? 'YOUR_APP_KEY',
    }),
  ],
  controllers: [AppController],
})
export class AppModule {}
`,
    );

    expect((await init()).code).toBe(0);

    const module = read('src/app.module.ts');
    expect(module).toContain(`    // Distributed tracing, auto-correlated logs.
    ObserveModule.forRoot({
      appKey: process.env.OBSERVE_APP_KEY ?? 'YOUR_APP_KEY',
    }),
    TypeOrmModule.forRoot({`);
    expect(module).toContain(`      views: true,
    }),
  ],
  controllers: [AppController],`);
    expect(module.startsWith("import './load-env.js';\nimport { Module } from '@nestjs/common';")).toBe(true);
  });

  it("adds authEntities to an existing connection's entities and leaves its database alone", async () => {
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ dependencies: { '@nestjs/typeorm': '^12', typeorm: '^1', pg: '^8', 'nestjs-session-auth': '*', 'express-session': '^1' } }),
    );
    writeFileSync(
      join(dir, 'src/app.module.ts'),
      `import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Cat } from './cat.entity.js';

@Module({
  imports: [TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, entities: [Cat] })],
})
export class AppModule {}
`,
    );

    const result = await init();

    expect(result.code).toBe(0);
    const module = read('src/app.module.ts');
    expect(module).toContain("TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, entities: [...authEntities, Cat] }),");
    expect(module).toContain("import { AuthModule, ModelBackend, authEntities } from 'nestjs-session-auth';");
    expect(module.match(/TypeOrmModule\.forRoot/g)).toHaveLength(1);
    expect(read('.gitignore')).toBe('.env\n');
    expect(result.stdout).not.toContain('Still to install');
  });

  it("imports the library's AuthModule under another name when the app has an AuthModule of its own", async () => {
    writeFileSync(
      join(dir, 'src/app.module.ts'),
      `import { Module } from '@nestjs/common';
import { AuthModule } from './auth/auth.module.js';

@Module({ imports: [AuthModule] })
export class AppModule {}
`,
    );

    expect((await init()).code).toBe(0);

    const module = read('src/app.module.ts');
    expect(module).toContain("import { AuthModule as SessionAuthModule, ModelBackend, authEntities } from 'nestjs-session-auth';");
    expect(module).toContain('@Module({ imports: [\n  AuthModule,\n  TypeOrmModule.forRoot({\n');
    expect(module).toContain('  SessionAuthModule.forRoot({\n');
    expect((await init()).stdout).toContain('Nothing to change');
  });

  it('keeps a SESSION_SECRET and an .env and .gitignore it finds, adding only what is missing', async () => {
    writeFileSync(join(dir, '.env'), 'PORT=4000');
    writeFileSync(join(dir, '.gitignore'), 'node_modules\n*.sqlite\n');
    await init();
    expect(read('.env')).toMatch(/^PORT=4000\nSESSION_SECRET=[0-9a-f]{64}\n$/);
    expect(read('.gitignore')).toBe('node_modules\n*.sqlite\n.env\n');

    writeFileSync(join(dir, '.env'), 'SESSION_SECRET=mine\n');
    await init();
    expect(read('.env')).toBe('SESSION_SECRET=mine\n');
  });

  it.each([
    ['imports built elsewhere', 'const shared = [];\n@Module({ imports: shared })', 'is not an array literal'],
    ['a TypeORM connection from a factory', '@Module({ imports: [TypeOrmModule.forRootAsync({ useFactory: () => ({}) })] })', 'TypeOrmModule.forRootAsync() is not given an object literal'],
    ['entities from a variable', "const entities = [];\n@Module({ imports: [TypeOrmModule.forRoot({ type: 'postgres', entities })] })", 'is not an array literal'],
    ['no @Module class', 'export class NotAModule {}\n//', 'no class decorated with @Module'],
  ])('refuses %s and writes nothing', async (_case, body, message) => {
    writeFileSync(
      join(dir, 'src/app.module.ts'),
      `import { Module } from '@nestjs/common';\nimport { TypeOrmModule } from '@nestjs/typeorm';\n\n${body}\nexport class AppModule {}\n`,
    );
    const before = snapshot();

    const result = await init();

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Nothing was changed.');
    expect(snapshot()).toEqual(before);
    expect(existsSync(join(dir, '.env'))).toBe(false);
  });

  it('refuses a load-env.ts of its own rather than overwrite it', async () => {
    writeFileSync(join(dir, 'src/load-env.ts'), "import 'dotenv/config';\n");
    const before = snapshot();

    const result = await init();

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('load-env.ts exists and is not the file init writes');
    expect(snapshot()).toEqual(before);
  });

  it('says where to run it, and where the module is, when it cannot find them', async () => {
    rmSync(join(dir, 'src/app.module.ts'));
    expect((await init()).stderr).toContain('src/app.module.ts not found: pass --module');
    rmSync(join(dir, 'package.json'));
    expect((await init()).stderr).toContain("run init in your Nest app's folder");
  });
});
