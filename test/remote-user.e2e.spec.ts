import { jest } from '@jest/globals';
import { Injectable, Logger, Module, RequestMethod, type MiddlewareConsumer, type NestModule, type Type } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import {
  AllowAllUsersRemoteUserBackend,
  AuthEvents,
  ExternalIdentity,
  ModelBackend,
  PermissionManager,
  PersistentRemoteUserMiddleware,
  REMOTE_USER,
  RemoteUserBackend,
  RemoteUserMiddleware,
} from 'nestjs-session-auth';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { createTestApp, type TestApp } from './support/test-app.js';

/** Mounts a remote-user middleware on every route, as an app would in its own module. */
function mounting(middleware: Type): Type {
  @Module({})
  class RemoteUserModule implements NestModule {
    configure(consumer: MiddlewareConsumer) {
      consumer.apply(middleware).forRoutes({ path: '*', method: RequestMethod.ALL });
    }
  }
  return RemoteUserModule;
}

/** The session cookie a response leaves the browser with: the last Set-Cookie for it wins. */
function cookieFrom(response: request.Response): string | undefined {
  const lines = [response.headers['set-cookie'] ?? []].flat() as string[];
  const line = lines.filter((cookie) => cookie.startsWith('sessionid=')).at(-1);
  if (!line) return undefined;
  const pair = line.split(';')[0];
  return pair === 'sessionid=' ? undefined : pair;
}

/** Strips a Kerberos-style realm: 'alice@CORP.EXAMPLE' is the local user 'alice'. */
@Injectable()
class RealmBackend extends RemoteUserBackend {
  override cleanUsername(username: string) {
    return username.replace(/@CORP\.EXAMPLE$/, '');
  }
}

/** The seed's story: a user seen for the first time is filled in from an external source. */
const directory: Record<string, { email: string; staff: boolean }> = {
  alice: { email: 'alice@corp.example', staff: true },
};
const configureCalls: { username: string; created: boolean }[] = [];

@Injectable()
class DirectoryBackend extends RemoteUserBackend {
  override async configureUser(request: Request | undefined, user: any, created: boolean) {
    configureCalls.push({ username: user.username, created });
    const entry = directory[user.username];
    if (created && entry) {
      user.email = entry.email;
      user.isStaff = entry.staff;
      await this.users.repository.save(user);
    }
    // Nothing returned: the user given is kept.
    void request;
  }
}

@Injectable()
class ExistingOnlyBackend extends RemoteUserBackend {
  override createUnknownUser = false;
}

/** Accounts made here beforehand (without links) that the proxy's names may log into. */
@Injectable()
class ProvisionedBackend extends RemoteUserBackend {
  override createUnknownUser = false;
  override linkExistingUsers = true;
}

@Injectable()
class ProvisionedAllowAllBackend extends AllowAllUsersRemoteUserBackend {
  override linkExistingUsers = (user: any) => user.username === 'ops';
}

/** Every warning a Nest logger writes while `work` runs. */
async function warningsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const warnings: string[] = [];
  const spy = jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return warnings;
}

@Injectable()
class ForwardedUserMiddleware extends RemoteUserMiddleware {
  override header = 'X-Forwarded-User';
}

describe('RemoteUserBackend and RemoteUserMiddleware', () => {
  let t: TestApp;
  let server: any;

  async function start(backends: any[] = [ModelBackend, RemoteUserBackend], middleware: Type = RemoteUserMiddleware) {
    t = await createTestApp({ auth: { backends }, imports: [mounting(middleware)] });
    server = t.app.getHttpServer();
  }

  afterEach(() => t.close());

  describe('with the default middleware', () => {
    beforeEach(() => start());

    it('lets the CSRF check of the request that logged in by header pass with the token it carried, and only that request', async () => {
      const { Controller, Get, Post, HttpCode, Req, UseGuards } = await import('@nestjs/common');
      const { LoginNotRequired } = await import('nestjs-session-auth');
      const { CsrfGuard, csrfToken } = await import('nestjs-session-auth/csrf');
      @Controller('form')
      class FormController {
        @Get('token')
        @LoginNotRequired()
        token(@Req() req: any) {
          return { token: csrfToken(req) };
        }
        @Post()
        @HttpCode(200)
        @UseGuards(CsrfGuard)
        submit(@Req() req: any) {
          return { username: req.user.username };
        }
      }
      await t.close();
      t = await createTestApp({ auth: { backends: [ModelBackend, RemoteUserBackend] }, imports: [mounting(RemoteUserMiddleware)], controllers: [FormController] });
      server = t.app.getHttpServer();
      const visit = await request(server).get('/form/token').expect(200);
      // An anonymous visitor's token comes in a signed cookie, not a session.
      const anonymous = [visit.headers['set-cookie']].flat()[0].split(';')[0];
      expect(anonymous).toMatch(/^csrftoken=/);
      const { token } = visit.body;
      const posted = await request(server).post('/form').set('Cookie', anonymous).set('X-Remote-User', 'alice').send({ csrfmiddlewaretoken: token }).expect(200);
      expect(posted.body).toEqual({ username: 'alice' });
      const loggedIn = cookieFrom(posted)!;
      // The pre-login token is no good once logged in, even with the old cookie still sent.
      await request(server).post('/form').set('Cookie', `${loggedIn}; ${anonymous}`).set('X-Remote-User', 'alice').send({ csrfmiddlewaretoken: token }).expect(403);
    });

    it('logs in the user the header names, creating them with an unusable password', async () => {
      const response = await request(server).get('/me').set('X-Remote-User', 'alice').expect(200);
      expect(response.body).toEqual({ username: 'alice', backend: 'RemoteUserBackend' });
      expect(cookieFrom(response)).toBeDefined();
      const alice = await t.users.findByUsername('alice');
      expect(isPasswordUsable(alice!.password)).toBe(false);
    });

    it('keeps the session while the header stays the same, updating lastLogin on the first request only', async () => {
      const first = await request(server).get('/me').set('X-Remote-User', 'alice').expect(200);
      const cookie = cookieFrom(first)!;
      const lastLogin = (await t.users.findByUsername('alice'))!.lastLogin;
      expect(lastLogin).toBeInstanceOf(Date);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const second = await request(server).get('/me').set('Cookie', cookie).set('X-Remote-User', 'alice').expect(200);
      expect(cookieFrom(second)).toBeUndefined();
      expect((await t.users.findByUsername('alice'))!.lastLogin).toEqual(lastLogin);
    });

    it('asks nothing of the store or database for a request with neither cookie nor header', async () => {
      const statements = await t.sql.during(() => request(server).get('/whoami').expect(200, { username: '', isAuthenticated: false }));
      expect(statements).toEqual([]);
    });

    it('switches users when the header changes mid-session, logging the first out first (CVE-2014-0482)', async () => {
      const events = t.app.get(AuthEvents);
      const seen: string[] = [];
      events.on('userLoggedOut', ({ user }) => void seen.push(`out:${user?.username}`));
      events.on('userLoggedIn', ({ user }) => void seen.push(`in:${user.username}`));

      const first = await request(server).get('/me').set('X-Remote-User', 'alice').expect(200);
      const aliceCookie = cookieFrom(first)!;
      await request(server).post('/session/cart/alice-secret').set('Cookie', aliceCookie).set('X-Remote-User', 'alice').expect(200);

      const switched = await request(server).get('/me').set('Cookie', aliceCookie).set('X-Remote-User', 'mallory').expect(200);
      expect(switched.body).toEqual({ username: 'mallory', backend: 'RemoteUserBackend' });
      expect(seen).toEqual(['in:alice', 'out:alice', 'in:mallory']);
      const malloryCookie = cookieFrom(switched)!;
      expect(malloryCookie).not.toBe(aliceCookie);
      // Nothing of alice's session reaches mallory's.
      await request(server).get('/session/cart').set('Cookie', malloryCookie).set('X-Remote-User', 'mallory').expect(200, { value: null });
    });

    it('logs a remote user out when the header disappears', async () => {
      const cookie = cookieFrom(await request(server).get('/me').set('X-Remote-User', 'alice').expect(200))!;
      const response = await request(server).get('/whoami').set('Cookie', cookie).expect(200);
      expect(response.body).toEqual({ username: '', isAuthenticated: false });
      expect(response.headers['set-cookie']?.[0]).toMatch(/^sessionid=;/);
      // The session is gone for good: the old cookie does not come back to life.
      await request(server).get('/me').set('Cookie', cookie).expect(401);
    });

    it('leaves a user who logged in with a password alone when there is no header', async () => {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const login = await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
      const cookie = cookieFrom(login)!;
      await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
    });

    it('does nothing when the header names the user already logged in with a password', async () => {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = cookieFrom(await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }))!;
      const response = await request(server).get('/me').set('Cookie', cookie).set('X-Remote-User', 'carol').expect(200);
      expect(response.body).toEqual({ username: 'carol', backend: 'ModelBackend' });
      expect(cookieFrom(response)).toBeUndefined();
    });

    it('treats an empty header as nobody: a remote user is logged out, no user is created', async () => {
      const cookie = cookieFrom(await request(server).get('/me').set('X-Remote-User', 'alice').expect(200))!;
      await request(server).get('/me').set('Cookie', cookie).set('X-Remote-User', '').expect(401);
      await request(server).get('/me').set('X-Remote-User', '').expect(401);
      expect(await t.users.repository.count()).toBe(1);
    });

    it('keeps a password user logged in when the header is empty', async () => {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = cookieFrom(await request(server).post('/login').send({ username: 'carol', password: 'correct horse' }))!;
      await request(server).get('/me').set('Cookie', cookie).set('X-Remote-User', '').expect(200, { username: 'carol', backend: 'ModelBackend' });
    });

    it('refuses a header sent twice with 400, logging nobody in', async () => {
      const response = await request(server)
        .get('/me')
        .set('X-Remote-User', ['alice', 'root'] as any)
        .expect(400);
      expect(response.body.message).toMatch(/more than once/);
      expect(cookieFrom(response)).toBeUndefined();
      expect(await t.users.repository.count()).toBe(0);
    });

    it('refuses names the username column cannot hold, creating nothing', async () => {
      await request(server).get('/me').set('X-Remote-User', 'a'.repeat(151)).expect(401);
      expect(await t.users.repository.count()).toBe(0);
    });

    it('does not let a login body carrying a remoteUser field log anybody in', async () => {
      await t.users.createSuperuser({ username: 'root', password: 'long unguessable' });
      for (const body of [{ remoteUser: 'root' }, { remote_user: 'root' }, { REMOTE_USER: 'root' }, { username: 'root', remoteUser: 'root' }]) {
        const response = await request(server).post('/login').send(body).expect(401);
        expect(cookieFrom(response)).toBeUndefined();
      }
      expect(await t.auth.authenticate(undefined, { remoteUser: 'eve' })).toBeNull();
      expect(await t.users.findByUsername('eve')).toBeNull();
    });

    it('refuses an inactive user', async () => {
      await request(server).get('/me').set('X-Remote-User', 'idle').expect(200);
      await t.users.repository.update({ username: 'idle' }, { isActive: false });
      await request(server).get('/me').set('X-Remote-User', 'idle').expect(401);
    });

    it('never logs a header naming a local account it did not create into it: the superuser admin stays the password’s', async () => {
      const admin = await t.users.createSuperuser({ username: 'admin', password: 'local admin password', email: 'admin@example.com' });
      const warnings = await warningsDuring(async () => {
        const response = await request(server).get('/me').set('X-Remote-User', 'admin').expect(401);
        expect(cookieFrom(response)).toBeUndefined();
      });
      expect(warnings).toContainEqual(expect.stringMatching(/'admin' is a local account that RemoteUserBackend did not create/));
      expect(await t.users.findByUsername('admin')).toMatchObject({ id: admin.id, password: admin.password, email: 'admin@example.com', isSuperuser: true });
      expect(await t.users.dataSource.getRepository(ExternalIdentity).count()).toBe(0);
      // The local administrator still logs in with the password.
      await request(server).post('/login').send({ username: 'admin', password: 'local admin password' }).expect(200);
    });

    it('ends a remote session whose header turns to a local account’s name, logging nobody in', async () => {
      await t.users.createSuperuser({ username: 'admin', password: 'local admin password' });
      const cookie = cookieFrom(await request(server).get('/me').set('X-Remote-User', 'alice').expect(200))!;
      let response!: request.Response;
      await warningsDuring(async () => (response = await request(server).get('/me').set('Cookie', cookie).set('X-Remote-User', 'admin').expect(401)));
      expect(response.headers['set-cookie']?.[0]).toMatch(/^sessionid=;/);
    });

    it('logs in a morning’s worth of people through the one proxy address: a vouched name is no password guess', async () => {
      // Every request comes from the proxy's address; the password budget (10 at once) would 429 most of them.
      const statuses = await Promise.all(
        Array.from({ length: 30 }, (_, n) => request(server).get('/me').set('X-Remote-User', `employee${n}`).then((response) => response.status)),
      );
      expect(statuses).toEqual(Array(30).fill(200));
      // Password guesses from that address are still counted and limited as before.
      const guesses = [];
      for (let n = 0; n < 12; n++) guesses.push((await request(server).post('/login').send({ username: `employee${n}`, password: 'guess' })).status);
      expect(guesses).toContain(429);
    });

    it('creates one user when the first logins for a new name run together', async () => {
      const users = await Promise.all(
        Array.from({ length: 5 }, () => t.auth.authenticate(undefined, { [REMOTE_USER]: 'newcomer' })),
      );
      expect(users.map((user) => user?.username)).toEqual(Array(5).fill('newcomer'));
      expect(new Set(users.map((user) => user.id)).size).toBe(1);
      expect(await t.users.repository.count()).toBe(1);
    });

    it('gives a remote user the permissions granted to the local user', async () => {
      const perms = t.app.get(PermissionManager);
      await perms.createPermission('blog.add_post');
      const alice = await t.auth.authenticate(undefined, { [REMOTE_USER]: 'alice' });
      await perms.grantPermission(alice, 'blog.add_post');
      const user = await t.auth.authenticate(undefined, { [REMOTE_USER]: 'alice' });
      expect(user).toMatchObject({ username: 'alice', backend: 'RemoteUserBackend' });
      expect(await t.auth.hasPerm(user, 'blog.add_post')).toBe(true);
    });
  });

  it('accepts inactive users with AllowAllUsersRemoteUserBackend', async () => {
    await start([ModelBackend, AllowAllUsersRemoteUserBackend]);
    await t.auth.authenticate(undefined, { [REMOTE_USER]: 'idle' });
    await t.users.repository.update({ username: 'idle' }, { isActive: false });
    await request(server).get('/me').set('X-Remote-User', 'idle').expect(200, { username: 'idle', backend: 'AllowAllUsersRemoteUserBackend' });
  });

  it('creates nobody when createUnknownUser is false, and logs into no account made here without linkExistingUsers', async () => {
    await start([ModelBackend, ExistingOnlyBackend]);
    await request(server).get('/me').set('X-Remote-User', 'stranger').expect(401);
    expect(await t.users.findByUsername('stranger')).toBeNull();
    // Django would log this user in by name; here it is an account the proxy did not create.
    await t.users.createUser({ username: 'alice' });
    await warningsDuring(() => request(server).get('/me').set('X-Remote-User', 'alice').expect(401));
  });

  it('logs into accounts made here beforehand with linkExistingUsers, never a staff or superuser one with true', async () => {
    await start([ModelBackend, ProvisionedBackend]);
    const alice = await t.users.createUser({ username: 'alice' });
    await t.users.createUser({ username: 'sam', isStaff: true });
    await t.users.createSuperuser({ username: 'root', password: 'long unguessable' });
    await request(server).get('/me').set('X-Remote-User', 'alice').expect(200, { username: 'alice', backend: 'ProvisionedBackend' });
    await warningsDuring(async () => {
      await request(server).get('/me').set('X-Remote-User', 'sam').expect(401);
      await request(server).get('/me').set('X-Remote-User', 'root').expect(401);
    });
    expect(await t.users.dataSource.getRepository(ExternalIdentity).find()).toEqual([
      expect.objectContaining({ source: 'ProvisionedBackend', subject: 'alice', userId: String(alice.id) }),
    ]);
  });

  it('lets a linkExistingUsers function decide for staff accounts too, on AllowAllUsersRemoteUserBackend', async () => {
    await start([ModelBackend, ProvisionedAllowAllBackend]);
    await t.users.createUser({ username: 'ops', isStaff: true, isActive: false });
    await t.users.createUser({ username: 'dev', isStaff: true });
    await request(server).get('/me').set('X-Remote-User', 'ops').expect(200, { username: 'ops', backend: 'ProvisionedAllowAllBackend' });
    await warningsDuring(() => request(server).get('/me').set('X-Remote-User', 'dev').expect(401));
  });

  it('maps header values through cleanUsername, also when comparing with the session user', async () => {
    await start([ModelBackend, RealmBackend]);
    const first = await request(server).get('/me').set('X-Remote-User', 'alice@CORP.EXAMPLE').expect(200);
    expect(first.body).toEqual({ username: 'alice', backend: 'RealmBackend' });
    const second = await request(server)
      .get('/me')
      .set('Cookie', cookieFrom(first)!)
      .set('X-Remote-User', 'alice@CORP.EXAMPLE')
      .expect(200);
    expect(cookieFrom(second)).toBeUndefined();
    expect(await t.users.repository.count()).toBe(1);
  });

  it('fills in a new user from an external source through configureUser, told whether it was created', async () => {
    configureCalls.length = 0;
    await start([ModelBackend, DirectoryBackend]);
    const cookie = cookieFrom(await request(server).get('/me').set('X-Remote-User', 'alice').expect(200))!;
    expect(await t.users.findByUsername('alice')).toMatchObject({ email: 'alice@corp.example', isStaff: true });
    // A later login (new session) configures the existing user, created: false.
    await request(server).get('/me').set('Cookie', cookie).set('X-Remote-User', 'alice').expect(200);
    await request(server).get('/me').set('X-Remote-User', 'alice').expect(200);
    expect(configureCalls).toEqual([
      { username: 'alice', created: true },
      { username: 'alice', created: false },
    ]);
  });

  it('never forces a logout with the persistent middleware', async () => {
    await start([ModelBackend, RemoteUserBackend], PersistentRemoteUserMiddleware);
    const cookie = cookieFrom(await request(server).get('/me').set('X-Remote-User', 'alice').expect(200))!;
    await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'alice', backend: 'RemoteUserBackend' });
    // A different name still replaces the user.
    await request(server).get('/me').set('Cookie', cookie).set('X-Remote-User', 'bob').expect(200, { username: 'bob', backend: 'RemoteUserBackend' });
  });

  it('fails closed when the app has no sessions for it to log users into', async () => {
    t = await createTestApp({
      auth: { backends: [ModelBackend, RemoteUserBackend], session: false, secret: 'a-secret-for-hashes' },
      imports: [mounting(RemoteUserMiddleware)],
    });
    server = t.app.getHttpServer();
    await request(server).get('/me').set('X-Remote-User', 'alice').expect(500);
    expect(await t.users.repository.count()).toBe(0);
  });

  it('reads the header a subclass names, and ignores the default one', async () => {
    await start([ModelBackend, RemoteUserBackend], ForwardedUserMiddleware);
    await request(server).get('/me').set('X-Remote-User', 'alice').expect(401);
    await request(server).get('/me').set('X-Forwarded-User', 'alice').expect(200, { username: 'alice', backend: 'RemoteUserBackend' });
  });
});
