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

describe('@LoginRequired() and friends', () => {
  let t: TestApp;
  let server: any;

  afterEach(() => t.close());

  describe('with login optional by default', () => {
    beforeEach(async () => {
      t = await createTestApp({ controllers: [PagesController, PrivateController, CustomLoginController, PublicController] });
      server = t.app.getHttpServer();
    });

    it('redirects an anonymous browser to loginUrl with the path and query as next', async () => {
      const response = await request(server).get('/me?tab=a%20b&x=1').set('Accept', browser).expect(302);
      expect(response.headers.location).toBe('/accounts/login?next=%2Fme%3Ftab%3Da%2520b%26x%3D1');
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
      const { PermissionChecker } = await import('nestjs-session-auth');
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
      for (const type of ['rpc', 'graphql']) {
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
