import { Controller, Get } from '@nestjs/common';
import request from 'supertest';
import { CurrentUser, LoginNotRequired, LoginRequired, ModelBackend } from 'nestjs-session-auth';
import { forceLogin } from 'nestjs-session-auth/testing';
import { createTestApp, PagesController, type TestApp } from './support/test-app.js';

@LoginRequired()
@Controller('private')
class PrivateController {
  @Get()
  index(@CurrentUser() user: any) {
    return { username: user.username };
  }

  @LoginNotRequired()
  @Get('open')
  open(@CurrentUser() user: any) {
    return { anonymous: !user.isAuthenticated };
  }
}

@Controller('custom')
class CustomLoginController {
  @LoginRequired({ loginUrl: '/sso/start?realm=staff', redirectFieldName: 'return_to' })
  @Get()
  index() {
    return {};
  }
}

@Controller()
class PublicController {
  @Get('public')
  index(@CurrentUser() user: any) {
    return { isAuthenticated: user.isAuthenticated };
  }

  @LoginNotRequired()
  @Get('accounts/login')
  loginPage() {
    return { form: true };
  }
}

const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** Django's redirect_to_login cases: a login page elsewhere, no return field, a login URL with a query of its own. */
@Controller('elsewhere')
class LoginElsewhereController {
  @LoginRequired({ loginUrl: 'https://sso.example.com/login' })
  @Get('remote')
  remote() {
    return {};
  }

  @LoginRequired({ loginUrl: '//sso.example.com/login' })
  @Get('scheme-relative')
  schemeRelative() {
    return {};
  }

  @LoginRequired({ loginUrl: 'http://127.0.0.1/accounts/login' })
  @Get('same-origin-absolute')
  sameOrigin() {
    return {};
  }

  @LoginRequired({ redirectFieldName: null })
  @Get('no-field')
  noField() {
    return {};
  }

  @LoginRequired({ loginUrl: '/accounts/login?next=%2Fstale&pretty=1#form' })
  @Get('with-query')
  withQuery() {
    return {};
  }
}

describe('@LoginRequired() and friends', () => {
  let t: TestApp;
  let server: any;

  afterEach(() => t.close());

  describe('with login optional by default', () => {
    beforeEach(async () => {
      t = await createTestApp({ controllers: [PagesController, PrivateController, CustomLoginController, PublicController, LoginElsewhereController] });
      server = t.app.getHttpServer();
    });

    it('redirects an anonymous browser to loginUrl with the path and query as next', async () => {
      const response = await request(server).get('/me?tab=a%20b&x=1').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/accounts/login?next=%2Fme%3Ftab%3Da%2520b%26x%3D1');
    });

    it('sends the absolute URL of the page as next to a login page on another host or scheme, a path to one on this site (Django’s redirect_to_login)', async () => {
      const remote = await request(server).get('/elsewhere/remote?x=1').set('Host', '127.0.0.1').set('Accept', browser).expect(302);
      expect(remote.headers.location).toBe(`https://sso.example.com/login?next=${encodeURIComponent('http://127.0.0.1/elsewhere/remote?x=1')}`);
      const relative = await request(server).get('/elsewhere/scheme-relative').set('Host', '127.0.0.1').set('Accept', browser).expect(302);
      expect(relative.headers.location).toBe(`//sso.example.com/login?next=${encodeURIComponent('http://127.0.0.1/elsewhere/scheme-relative')}`);
      const same = await request(server).get('/elsewhere/same-origin-absolute').set('Host', '127.0.0.1').set('Accept', browser).expect(302);
      expect(same.headers.location).toBe('http://127.0.0.1/accounts/login?next=%2Felsewhere%2Fsame-origin-absolute');
    });

    it('never puts a Host header it does not allow into next: a path instead', async () => {
      const response = await request(server).get('/elsewhere/remote').set('Host', 'evil.example').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('https://sso.example.com/login?next=%2Felsewhere%2Fremote');
    });

    it('sends to the bare login URL when there is no return field (Django’s redirect_field_name=None)', async () => {
      const response = await request(server).get('/elsewhere/no-field').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/accounts/login');
    });

    it.each([[''], [null]])('sends to the bare login URL with the module option redirectFieldName: %p', async (field) => {
      const other = await createTestApp({ controllers: [PagesController], auth: { redirectFieldName: field } });
      try {
        const response = await request(other.app.getHttpServer()).get('/me').set('Accept', browser).expect(302);
        expect(response.headers.location).toBe('/accounts/login');
      } finally {
        await other.close();
      }
    });

    it('keeps the login URL’s own query and fragment and replaces a next it already had (Django’s redirect_to_login)', async () => {
      const response = await request(server).get('/elsewhere/with-query').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/accounts/login?pretty=1&next=%2Felsewhere%2Fwith-query#form');
    });

    it('answers other anonymous clients with 401 JSON', async () => {
      const response = await request(server).get('/me').set('Accept', 'application/json').expect(401);
      expect(response.headers['content-type']).toMatch(/application\/json/);
      expect(response.body).toMatchObject({ statusCode: 401, message: expect.stringMatching(/log in/i) });
      await request(server).get('/me').expect(401);
    });

    it('applies to every route of a decorated controller, except @LoginNotRequired() ones', async () => {
      await request(server).get('/private').expect(401);
      await request(server).get('/private/open').expect(200, { anonymous: true });
    });

    it('uses the per-route loginUrl and field name, keeping the login URL\'s own query', async () => {
      const response = await request(server).get('/custom').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/sso/start?realm=staff&return_to=%2Fcustom');
    });

    it('lets a logged-in user through and injects them with @CurrentUser()', async () => {
      const carol = await t.users.createUser({ username: 'carol', password: 'pw' });
      const cookie = await forceLogin(t.app, carol);
      await request(server).get('/private').set('Cookie', cookie).set('Accept', browser).expect(200, { username: 'carol' });
    });

    it('leaves undecorated routes open and injects the AnonymousUser', async () => {
      await request(server).get('/public').expect(200, { isAuthenticated: false });
    });
  });

  describe('with loginRequiredByDefault', () => {
    beforeEach(async () => {
      t = await createTestApp({
        auth: { backends: [ModelBackend], loginRequiredByDefault: true },
        controllers: [PrivateController, PublicController],
      });
      server = t.app.getHttpServer();
    });

    it('protects undecorated routes', async () => {
      await request(server).get('/public').expect(401);
      const response = await request(server).get('/public').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/accounts/login?next=%2Fpublic');
    });

    it('keeps @LoginNotRequired() routes (such as the login page) open', async () => {
      await request(server).get('/accounts/login').set('Accept', browser).expect(200, { form: true });
      await request(server).get('/private/open').expect(200, { anonymous: true });
    });

    it('lets a logged-in user reach every route', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      const cookie = await forceLogin(t.app, carol);
      await request(server).get('/public').set('Cookie', cookie).expect(200, { isAuthenticated: true });
    });
  });

  describe('outside HTTP (WebSocket, RPC, a GraphQL operation without an HTTP request)', () => {
    it('fails closed when a login rule applies, instead of silently letting the call through', async () => {
      const { AccessGuard } = await import('../src/request/access.guard.js');
      const { ModuleRef, Reflector } = await import('@nestjs/core');
      const { AUTH_CONFIG } = await import('../src/auth.config.js');
      t = await createTestApp({ controllers: [PagesController, PrivateController] });
      const { PermissionChecker } = await import('../src/permission.checker.js');
      const guard = new AccessGuard(new Reflector(), t.auth, t.app.get(AUTH_CONFIG), t.app.get(ModuleRef), t.app.get(PermissionChecker));
      const context = (handler: Function, type: string) =>
        ({
          getType: () => type,
          getHandler: () => handler,
          getClass: () => PrivateController,
          getArgByIndex: () => undefined,
          // A WebSocket client whose handshake was never seen (a gateway on a server of its own).
          switchToWs: () => ({ getClient: () => ({}), getData: () => ({}), getPattern: () => 'say' }),
        }) as any;
      // 'telegraf': a context type of a library's own (nestjs-telegraf), which the module does not know.
      for (const type of ['rpc', 'graphql', 'telegraf']) {
        expect(() => guard.canActivate(context(PrivateController.prototype.index, type))).toThrow(/apply to HTTP requests, GraphQL operations and WebSocket messages/);
        expect(guard.canActivate(context(PrivateController.prototype.open, type))).toBe(true);
      }
      await expect(guard.canActivate(context(PrivateController.prototype.index, 'ws'))).rejects.toMatchObject({
        error: { status: 'error', code: 'UNAUTHENTICATED', message: expect.stringMatching(/handshake was not seen/) },
      });
      expect(guard.canActivate(context(PrivateController.prototype.open, 'ws'))).toBe(true);
    });
  });
});
