import { Controller, Get, Injectable } from '@nestjs/common';
import request from 'supertest';
import {
  AuthService,
  CurrentUser,
  LoginRequired,
  ModelBackend,
  PermissionManager,
  PermissionRequired,
  UserPassesTest,
  type AuthBackend,
} from 'nestjs-session-auth';
import { forceLogin } from 'nestjs-session-auth/testing';
import { createTestApp, type TestApp } from './support/test-app.js';

const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

@Controller('posts')
class PostsController {
  constructor(private readonly auth: AuthService) {}

  @PermissionRequired('blog.add_post')
  @Get('new')
  create() {
    return { ok: true };
  }

  @PermissionRequired(['blog.add_post', 'blog.delete_post'])
  @Get('purge')
  purge() {
    return { ok: true };
  }

  @PermissionRequired('blog.view_post')
  @Get()
  list() {
    return { ok: true };
  }

  @PermissionRequired('blog.delete_post', { raiseException: true })
  @Get('delete')
  remove() {
    return { ok: true };
  }

  /** Checks the same permission again in the handler: it must cost no further query. */
  @PermissionRequired('blog.add_post')
  @Get('new-checked')
  async createChecked(@CurrentUser() user: any) {
    const again = (await this.auth.hasPerm(user, 'blog.add_post')) && (await this.auth.hasPerms(user, ['blog.add_post']));
    return { ok: again };
  }
}

@PermissionRequired('shop.refund')
@Controller('refunds')
class RefundsController {
  @Get()
  list() {
    return { ok: true };
  }

  @PermissionRequired('shop.refund_large')
  @Get('large')
  large() {
    return { ok: true };
  }
}

@Controller('staff')
class StaffController {
  @UserPassesTest((user) => user.isStaff === true)
  @Get()
  index() {
    return { ok: true };
  }

  @UserPassesTest(async (_user, req) => req.query.code === 'open-sesame', { loginUrl: '/sso', redirectFieldName: 'return_to' })
  @Get('code')
  code() {
    return { ok: true };
  }
}

@LoginRequired({ loginUrl: '/sso' })
@Controller('members')
class MembersController {
  @UserPassesTest(() => true)
  @Get('anyone')
  anyone() {
    return { ok: true };
  }

  @PermissionRequired('blog.view_post')
  @Get('reading')
  reading() {
    return { ok: true };
  }
}

/** Lets anonymous visitors read posts: a backend may grant the anonymous user permissions. */
@Injectable()
class PublicReadBackend implements AuthBackend {
  authenticate() {
    return null;
  }
  getUser() {
    return null;
  }
  hasPerm(_user: unknown, perm: string) {
    return perm === 'blog.view_post';
  }
}

describe('@PermissionRequired() and @UserPassesTest() over HTTP', () => {
  let t: TestApp;
  let server: any;
  let perms: PermissionManager;

  async function start(backends: any[] = [ModelBackend], extra: Record<string, unknown> = {}) {
    t = await createTestApp({
      auth: { backends, ...extra },
      controllers: [PostsController, RefundsController, StaffController, MembersController],
    });
    server = t.app.getHttpServer();
    perms = t.app.get(PermissionManager);
    for (const codename of ['blog.add_post', 'blog.delete_post', 'blog.view_post', 'shop.refund', 'shop.refund_large']) {
      await perms.createPermission(codename);
    }
  }

  async function loggedIn(username: string, grants: string[] = [], fields: Record<string, unknown> = {}) {
    const user = await t.users.createUser({ username, ...fields });
    for (const perm of grants) await perms.grantPermission(user, perm);
    return forceLogin(t.app, user);
  }

  afterEach(() => t.close());

  describe('@PermissionRequired()', () => {
    beforeEach(() => start());

    it('sends an anonymous browser to the login page with next', async () => {
      const response = await request(server).get('/posts/new?draft=1').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/accounts/login?next=%2Fposts%2Fnew%3Fdraft%3D1');
    });

    it('with raiseException, answers anonymous visitors 403 too, browsers included, never a redirect (Django raise_exception)', async () => {
      for (const accept of [browser, 'application/json']) {
        const response = await request(server).get('/posts/delete').set('Accept', accept).expect(403);
        expect(response.headers.location).toBeUndefined();
      }
      await request(server).get('/posts/delete').set('Cookie', await loggedIn('carol')).expect(403);
      await request(server).get('/posts/delete').set('Cookie', await loggedIn('dave', ['blog.delete_post'])).expect(200, { ok: true });
    });

    it('answers an anonymous JSON client 401', async () => {
      const response = await request(server).get('/posts/new').set('Accept', 'application/json').expect(401);
      expect(response.body).toMatchObject({ statusCode: 401 });
    });

    it('answers a logged-in user lacking the permission 403, never a redirect to log in again', async () => {
      const cookie = await loggedIn('carol');
      const response = await request(server).get('/posts/new').set('Cookie', cookie).set('Accept', browser).expect(403);
      expect(response.headers.location).toBeUndefined();
      await request(server).get('/posts/new').set('Cookie', cookie).set('Accept', 'application/json').expect(403);
    });

    it('lets a user holding the permission through, directly or through a group', async () => {
      await request(server).get('/posts/new').set('Cookie', await loggedIn('carol', ['blog.add_post'])).expect(200, { ok: true });
      await perms.createGroup('authors', ['blog.add_post']);
      const dave = await t.users.createUser({ username: 'dave' });
      await perms.addUserToGroup(dave, 'authors');
      await request(server).get('/posts/new').set('Cookie', await forceLogin(t.app, dave)).expect(200);
    });

    it('lets an active superuser through without any grant', async () => {
      const root = await t.users.createSuperuser({ username: 'root' });
      await request(server).get('/posts/purge').set('Cookie', await forceLogin(t.app, root)).expect(200);
    });

    it('needs every permission of a list', async () => {
      await request(server).get('/posts/purge').set('Cookie', await loggedIn('carol', ['blog.add_post'])).expect(403);
      await request(server)
        .get('/posts/purge')
        .set('Cookie', await loggedIn('dave', ['blog.add_post', 'blog.delete_post']))
        .expect(200);
    });

    it('needs both the controller and the method permissions', async () => {
      const refunder = await loggedIn('carol', ['shop.refund']);
      await request(server).get('/refunds').set('Cookie', refunder).expect(200);
      await request(server).get('/refunds/large').set('Cookie', refunder).expect(403);
      await request(server).get('/refunds/large').set('Cookie', await loggedIn('dave', ['shop.refund_large'])).expect(403);
      await request(server)
        .get('/refunds/large')
        .set('Cookie', await loggedIn('erin', ['shop.refund', 'shop.refund_large']))
        .expect(200);
    });

    it('sees a permission revoked since the last request (permissions are cached per request only)', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.add_post');
      const cookie = await forceLogin(t.app, carol);
      await request(server).get('/posts/new').set('Cookie', cookie).expect(200);
      await perms.revokePermission(carol, 'blog.add_post');
      await request(server).get('/posts/new').set('Cookie', cookie).expect(403);
    });

    it('checks the same permission again in the handler without another query (cache)', async () => {
      const cookie = await loggedIn('carol', ['blog.add_post']);
      const guardOnly = await t.sql.during(() => request(server).get('/posts/new').set('Cookie', cookie).expect(200));
      const guardAndHandler = await t.sql.during(() =>
        request(server).get('/posts/new-checked').set('Cookie', cookie).expect(200, { ok: true }),
      );
      expect(guardAndHandler).toEqual(guardOnly);
    });

    it('keeps a controller @LoginRequired() login URL for anonymous users', async () => {
      const response = await request(server).get('/members/reading').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/sso?next=%2Fmembers%2Freading');
    });

    it('does not let a logged-in inactive superuser through: they are not logged in at all', async () => {
      const root = await t.users.createSuperuser({ username: 'root' });
      const cookie = await forceLogin(t.app, root);
      await t.users.repository.update({ id: root.id }, { isActive: false });
      await request(server).get('/posts/new').set('Cookie', cookie).expect(401);
    });
  });

  describe('with a backend that grants anonymous visitors a permission', () => {
    beforeEach(() => start([ModelBackend, PublicReadBackend]));

    it('lets an anonymous visitor through a route that needs only that permission', async () => {
      await request(server).get('/posts').expect(200, { ok: true });
      await request(server).get('/posts/new').expect(401);
    });

    it('still sends them to log in where the controller requires login', async () => {
      await request(server).get('/members/reading').expect(401);
    });
  });

  describe('@UserPassesTest()', () => {
    beforeEach(() => start());

    it('sends anonymous users failing the test to log in (302 for browsers, 401 otherwise)', async () => {
      const response = await request(server).get('/staff').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/accounts/login?next=%2Fstaff');
      await request(server).get('/staff').expect(401);
    });

    it('answers a logged-in user failing the test 403', async () => {
      const cookie = await loggedIn('carol');
      const response = await request(server).get('/staff').set('Cookie', cookie).set('Accept', browser).expect(403);
      expect(response.headers.location).toBeUndefined();
    });

    it('lets a user passing the test through', async () => {
      await request(server).get('/staff').set('Cookie', await loggedIn('sam', [], { isStaff: true })).expect(200);
    });

    it('passes the request to the test and uses its own login URL', async () => {
      await request(server).get('/staff/code?code=open-sesame').expect(200);
      const response = await request(server).get('/staff/code?code=guess').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/sso?return_to=%2Fstaff%2Fcode%3Fcode%3Dguess');
    });

    it('never opens a route that a controller @LoginRequired() closes', async () => {
      const response = await request(server).get('/members/anyone').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/sso?next=%2Fmembers%2Fanyone');
      await request(server).get('/members/anyone').set('Cookie', await loggedIn('carol')).expect(200);
    });
  });

  describe('with loginRequiredByDefault', () => {
    beforeEach(() => start([ModelBackend], { loginRequiredByDefault: true }));

    it('keeps requiring login on routes with @UserPassesTest() or @PermissionRequired()', async () => {
      await request(server).get('/staff/code?code=open-sesame').expect(401);
      await request(server).get('/refunds').expect(401);
    });
  });
});
