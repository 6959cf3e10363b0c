// The smoke suite every compat app runs: the packed library as a new user's app uses it, on that
// app's Nest, TypeORM and SQLite driver, imported the app's way (entry.mjs for an ES module app,
// entry.cjs for a CommonJS one). Plain CommonJS JavaScript, so it needs no compiler and loads in
// both: Nest's decorators are applied by hand below.
'use strict';
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { PassThrough, Readable } = require('node:stream');
const { pathToFileURL } = require('node:url');
const { promisify } = require('node:util');

/**
 * `deps`: the modules as the app loaded them (`common`, `core`, `typeormModule`, `typeorm`,
 * `request` (supertest), `lib` (nestjs-session-auth), `passwords` and `views` (its subpaths)), `sqliteType` ('sqlite' or
 * 'better-sqlite3'), `packageDir` (where nestjs-session-auth is installed), `label`, and
 * `createAdapter` when the app runs on another HTTP adapter than Express (Fastify's).
 */
module.exports = async function runSmoke(deps) {
  const { sqliteType, packageDir, label, request } = deps;
  const { Body, Controller, Get, HttpCode, Injectable, Module, Post, Req, UnauthorizedException } = deps.common;
  const { NestFactory } = deps.core;
  const { TypeOrmModule } = deps.typeormModule;
  const { DataSource } = deps.typeorm;
  const { BCryptSHA256Hasher } = deps.passwords;
  const { AuthMailer } = deps.views;
  const {
    AuthModule,
    AuthService,
    CurrentUser,
    LoginLockout,
    LoginRequired,
    ModelBackend,
    PermissionManager,
    SessionRecord,
    TypeOrmSessionStore,
    User,
    UserManager,
    authEntities,
  } = deps.lib;

  /** `@decorators` on a class, with the constructor parameter types TypeScript would emit. */
  function decorateClass(target, decorators, paramtypes = []) {
    return Reflect.decorate([...decorators, Reflect.metadata('design:paramtypes', paramtypes)], target);
  }

  /** `@decorators` on a method, and `@param()` decorators on its parameters by position. */
  function decorateMethod(target, key, decorators, params = []) {
    const all = [...decorators, ...params.map((param, index) => (proto, name) => param(proto, name, index))];
    const descriptor = Reflect.decorate(all, target.prototype, key, Object.getOwnPropertyDescriptor(target.prototype, key));
    if (descriptor) Object.defineProperty(target.prototype, key, descriptor);
  }

  /** The README's dictionary backend. */
  class DictionaryBackend {
    constructor(users) {
      this.users = users;
    }
    async authenticate(_request, { username, password }) {
      const valid = { alice: 'wonderland', bob: 'builder' };
      if (typeof username !== 'string' || !Object.hasOwn(valid, username) || valid[username] !== password) return null;
      return this.users.findByUsername(username);
    }
    getUser(id) {
      return this.users.findById(id);
    }
  }
  decorateClass(DictionaryBackend, [Injectable()], [UserManager]);

  /** Collects the password reset mails instead of sending them. */
  class CapturingMailer extends AuthMailer {
    sent = [];
    send(mail) {
      this.sent.push(mail);
    }
  }
  decorateClass(CapturingMailer, [Injectable()]);

  /** The README's quick start controller. */
  class PagesController {
    constructor(auth) {
      this.auth = auth;
    }
    async login(req, body) {
      const user = await this.auth.authenticate(req, body);
      if (!user) throw new UnauthorizedException('Invalid username or password.');
      await this.auth.login(req, user);
      return { username: user.username };
    }
    async logout(req) {
      await this.auth.logout(req);
      return {};
    }
    me(user) {
      return { username: user.username };
    }
  }
  decorateMethod(PagesController, 'login', [Post('login'), HttpCode(200)], [Req(), Body()]);
  decorateMethod(PagesController, 'logout', [Post('logout'), HttpCode(200)], [Req()]);
  decorateMethod(PagesController, 'me', [LoginRequired(), Get('me')], [CurrentUser()]);
  decorateClass(PagesController, [Controller()], [AuthService]);

  class AppModule {}
  decorateClass(AppModule, [
    Module({
      imports: [
        TypeOrmModule.forRoot({ type: sqliteType, database: ':memory:', entities: [...authEntities], synchronize: true }),
        AuthModule.forRoot({
          backends: [ModelBackend, DictionaryBackend],
          session: { secret: 'a-smoke-test-secret-long-enough' },
          // bcrypt at its lowest cost keeps the smoke fast; the algorithm is the real one.
          passwordHashers: [new BCryptSHA256Hasher({ rounds: 4 })],
          // The smoke logs in faster than people do; the per-address rate is tested in the main suite.
          throttle: { addressBurst: 1000 },
          views: true,
          mailer: CapturingMailer,
        }),
      ],
      providers: [CapturingMailer],
      controllers: [PagesController],
    }),
  ]);

  // Express unless the app passes another adapter (`createAdapter`: Fastify's).
  const adapter = deps.createAdapter ? await deps.createAdapter() : undefined;
  const app = adapter
    ? await NestFactory.create(AppModule, adapter, { logger: ['error', 'warn'] })
    : await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  await app.init();
  if (adapter) await app.getHttpAdapter().getInstance().ready?.();
  const server = app.getHttpServer();
  const dataSource = app.get(DataSource);
  const users = app.get(UserManager);
  const auth = app.get(AuthService);
  assert.equal(dataSource.options.type, sqliteType);

  function sessionCookie(response) {
    const line = [response.headers['set-cookie'] ?? []].flat().find((cookie) => cookie.startsWith('sessionid='));
    return line?.split(';')[0];
  }

  async function step(name, body) {
    try {
      await body();
      console.log(`ok - ${name}`);
    } catch (error) {
      console.error(`not ok - ${name}`);
      throw error;
    }
  }

  try {
    await step('UserManager creates users', async () => {
      const carol = await users.createUser({ username: 'carol', password: 'correct horse battery staple', email: 'carol@example.com' });
      assert.ok(carol instanceof User);
      assert.equal(typeof carol.id, 'number');
      await users.createUser({ username: 'alice' }); // a dictionary user, with an unusable local password
      assert.equal((await users.findByUsername('carol')).id, carol.id);
      assert.equal((await users.findById(String(carol.id))).username, 'carol');
      assert.equal(await users.findById('999'), null);
    });

    let cookie;
    await step('POST /login with the right password sets a session cookie (ModelBackend)', async () => {
      const response = await request(server)
        .post('/login')
        .send({ username: 'carol', password: 'correct horse battery staple' })
        .expect(200, { username: 'carol' });
      cookie = sessionCookie(response);
      assert.ok(cookie, 'no session cookie');
      assert.equal(await dataSource.getRepository(SessionRecord).count(), 1);
      const carol = await users.findByUsername('carol');
      assert.ok(carol.lastLogin instanceof Date, 'last_login was not recorded');
    });

    await step('GET /me with the cookie answers 200', async () => {
      await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol' });
    });

    await step('GET /me without a cookie answers 401', async () => {
      await request(server).get('/me').expect(401);
    });

    await step('POST /logout ends the session and a replayed cookie answers 401', async () => {
      await request(server).post('/logout').set('Cookie', cookie).expect(200);
      await request(server).get('/me').set('Cookie', cookie).expect(401);
      // The row stays as a revoked marker until it expires, so no late write can revive it.
      assert.equal(await dataSource.getRepository(SessionRecord).count({ where: { revoked: false } }), 0);
    });

    await step('a second backend (the dictionary) logs in', async () => {
      const response = await request(server).post('/login').send({ username: 'alice', password: 'wonderland' }).expect(200);
      await request(server).get('/me').set('Cookie', sessionCookie(response)).expect(200, { username: 'alice' });
    });

    await step('the login throttle counts failures in auth_login_lockout and locks after 5', async () => {
      const lockouts = dataSource.getRepository(LoginLockout);
      await lockouts.clear();
      for (let attempt = 1; attempt <= 5; attempt++) {
        await request(server).post('/login').send({ username: 'carol', password: `wrong ${attempt}` }).expect(401);
        // Three counters: carol from this address, carol from anywhere, this address.
        const rows = await lockouts.find();
        assert.equal(rows.length, 3);
        for (const row of rows) {
          assert.equal(row.failures, attempt);
          assert.equal(typeof row.windowStart, 'number');
        }
      }
      // Locked: even the right password is refused.
      await request(server).post('/login').send({ username: 'carol', password: 'correct horse battery staple' }).expect(401);
      // New windows start over (the upsert path of the counter).
      for (const row of await lockouts.find()) await lockouts.update({ key: row.key }, { windowStart: Date.now() - 2 * 60 * 60 * 1000 });
      await request(server).post('/login').send({ username: 'carol', password: 'wrong again' }).expect(401);
      assert.deepEqual((await lockouts.find()).map((row) => row.failures), [1, 1, 1]);
      // A successful login clears the counter of carol from this address; the ceilings run out with their windows.
      await request(server).post('/login').send({ username: 'carol', password: 'correct horse battery staple' }).expect(200);
      assert.equal(await lockouts.count(), 2);
    });

    await step('TypeOrmSessionStore upserts, touches, prunes and destroys a user\'s sessions', async () => {
      // A store of its own on the app's DataSource: the module's session layer is not exported.
      const store = new TypeOrmSessionStore(dataSource, { pruneInterval: false });
      const sessions = dataSource.getRepository(SessionRecord);
      const call = (method, ...args) =>
        new Promise((resolve, reject) => store[method](...args, (error, value) => (error ? reject(error) : resolve(value))));
      const now = Date.now();
      const cookieIn = (ms) => ({ originalMaxAge: ms, expires: new Date(now + ms).toISOString() });
      await call('set', 'expired-1', { cookie: cookieIn(-1000) });
      await call('set', 'expired-2', { cookie: cookieIn(-2000) });
      await call('set', 'live', { cookie: cookieIn(60_000), _auth_user_id: '1' });
      await call('set', 'live', { cookie: cookieIn(120_000), _auth_user_id: '1', note: 'upserted' });
      assert.equal((await call('get', 'live')).note, 'upserted');
      assert.equal(await call('get', 'expired-1'), null);
      const before = (await sessions.findOneBy({ id: 'live' })).expiresAt;
      assert.equal(typeof before, 'number');
      await call('touch', 'live', { cookie: cookieIn(3_600_000) });
      assert.ok((await sessions.findOneBy({ id: 'live' })).expiresAt > before, 'touch did not extend the expiry');
      const total = await call('length');
      assert.equal(await store.prune(), 2);
      assert.equal(await call('length'), total - 2);
      assert.equal(await sessions.findOneBy({ id: 'expired-1' }), null);
      assert.ok(await sessions.findOneBy({ id: 'live' }));
      assert.ok((await store.destroyUserSessions(1)) >= 1);
      assert.equal(await call('get', 'live'), null);
      assert.equal((await sessions.findOneBy({ id: 'live' })).revoked, true);
      // A request that had loaded it cannot write it back.
      await call('set', 'live', { cookie: cookieIn(120_000), _auth_user_id: '1', note: 'late write' });
      assert.equal(await call('get', 'live'), null);
    });

    await step('permissions: grants through a group, hasPerm, usersWithPerm', async () => {
      const permissions = app.get(PermissionManager);
      await permissions.createPermission('blog.add_post');
      await permissions.createGroup('editors', ['blog.add_post']);
      const carol = await users.findByUsername('carol');
      const alice = await users.findByUsername('alice');
      await permissions.addUserToGroup(carol, 'editors');
      await permissions.grantPermission(alice, 'blog.add_post');
      assert.equal(await auth.hasPerm(await users.findByUsername('carol'), 'blog.add_post'), true);
      assert.equal(await auth.hasPerm(await users.findByUsername('carol'), 'blog.delete_post'), false);
      const holders = await permissions.usersWithPerm('blog.add_post');
      assert.deepEqual(holders.map((user) => user.username).sort(), ['alice', 'carol']);
      await permissions.revokePermission(alice, 'blog.add_post');
      assert.equal(await auth.hasPerm(await users.findByUsername('alice'), 'blog.add_post'), false);
    });

    await step('built-in views: password reset by email, link, new password; the old one stops working', async () => {
      const HTML = 'text/html';
      const csrfFrom = (html) => /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(html)[1];
      const mailer = app.get(CapturingMailer);
      const browser = request.agent(server);
      let token = csrfFrom((await browser.get('/accounts/password_reset').set('Accept', HTML).expect(200)).text);
      await browser
        .post('/accounts/password_reset')
        .type('form')
        .send({ email: 'CAROL@example.com', csrfmiddlewaretoken: token })
        .expect(302)
        .expect('Location', '/accounts/password_reset/done');
      assert.deepEqual(mailer.sent.map((mail) => mail.to), ['carol@example.com']);
      const link = new URL(mailer.sent[0].context.resetUrl).pathname;
      const formPath = (await browser.get(link).set('Accept', HTML).expect(302)).headers.location;
      token = csrfFrom((await browser.get(formPath).set('Accept', HTML).expect(200)).text);
      await browser
        .post(formPath)
        .type('form')
        .send({ new_password1: 'battery staple 42', new_password2: 'battery staple 42', csrfmiddlewaretoken: token })
        .expect(302)
        .expect('Location', '/accounts/reset/done');
      await request(server).post('/login').send({ username: 'carol', password: 'correct horse battery staple' }).expect(401);
      await request(server).post('/login').send({ username: 'carol', password: 'battery staple 42' }).expect(200);
    });
  } finally {
    await app.close();
  }

  // After the app has closed: the CLI registers its own default DataSource with @nestjs/typeorm.
  await step(`the CLI works on a ${sqliteType} database file (DATABASE_URL)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compat-cli-'));
    const file = join(dir, 'app.sqlite');
    const fileSource = await new DataSource({ type: sqliteType, database: file, entities: [...authEntities], synchronize: true }).initialize();
    try {
      // The installed bin, as `npx nestjs-session-auth` runs it.
      const bin = join(packageDir, 'dist/cli/main.js');
      const { stdout } = await promisify(execFile)(process.execPath, [bin, 'createuser', 'dave', '--no-password'], {
        cwd: dir,
        env: { ...process.env, DATABASE_URL: 'app.sqlite' },
      });
      assert.match(stdout, /User 'dave' created/);
      assert.ok(await fileSource.getRepository(User).findOneBy({ username: 'dave' }));

      // In process, to reach the race between the "taken?" check and the INSERT.
      const { runCli } = await import(pathToFileURL(join(packageDir, 'dist/cli/cli.program.js')).href);
      const cli = async (argv, input = '') => {
        let out = '';
        let err = '';
        const stdout = new PassThrough().on('data', (chunk) => (out += chunk));
        const stderr = new PassThrough().on('data', (chunk) => (err += chunk));
        const code = await runCli(argv, { stdin: Readable.from([Buffer.from(input)]), stdout, stderr, env: { DATABASE_URL: file }, cwd: dir });
        return { code, stdout: out, stderr: err };
      };
      const before = (await fileSource.getRepository(User).findOneBy({ username: 'dave' })).password;
      let result = await cli(['changepassword', 'dave', '--password-stdin'], 'a much longer Password-42\n');
      assert.equal(result.code, 0, result.stderr);
      assert.notEqual((await fileSource.getRepository(User).findOneBy({ username: 'dave' })).password, before);
      result = await cli(['grant', 'dave', 'blog.publish', '--group', 'editors', '--create']);
      assert.equal(result.code, 0, result.stderr);
      const granted = await fileSource.getRepository(User).findOne({
        where: { username: 'dave' },
        relations: { userPermissions: true, groups: true },
      });
      assert.deepEqual(granted.userPermissions.map((permission) => permission.codename), ['blog.publish']);
      assert.deepEqual(granted.groups.map((group) => group.name), ['editors']);
      await fileSource.getRepository(SessionRecord).insert({ id: 'old', data: '{}', expiresAt: Date.now() - 1000, userId: null });
      result = await cli(['clearsessions']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await fileSource.getRepository(SessionRecord).count(), 0);
      // A unique violation (sqlite3 reports it as plain SQLITE_CONSTRAINT) must still read "taken".
      const lookup = UserManager.prototype.findByUsername;
      UserManager.prototype.findByUsername = async () => null;
      try {
        result = await cli(['createuser', 'dave', '--no-password']);
      } finally {
        UserManager.prototype.findByUsername = lookup;
      }
      assert.equal(result.code, 1);
      assert.equal(result.stderr, "Error: The username 'dave' is already taken.\n");
    } finally {
      await fileSource.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  console.log(`${label}: all checks passed.`);
};
