import {
  Controller,
  Get,
  Injectable,
  SetMetadata,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import request from 'supertest';
import { AnonymousUser, LoginRequired, UserManager } from 'nestjs-session-auth';
import { beforeGuards, createTestApp, HealthController, logIn, PagesController, type TestApp } from './support/test-app.js';

/**
 * `request.user` as the Nest docs use it: set before the app's guards run, the real user or the
 * `AnonymousUser`, never undefined; and not loaded at all where nothing can read it.
 */

const Roles = (...roles: string[]) => SetMetadata('roles', roles);

/** The guard of the Nest docs' authorization chapter, reading `request.user`. */
@Injectable()
class RolesGuard implements CanActivate {
  static seen: unknown[] = [];
  constructor(private readonly reflector: Reflector) {}
  canActivate(context: ExecutionContext): boolean {
    const user = context.switchToHttp().getRequest().user;
    RolesGuard.seen.push(user);
    const roles = this.reflector.get<string[]>('roles', context.getHandler());
    if (!roles) return true;
    return roles.includes('staff') ? user?.isStaff === true : true;
  }
}

@Controller('guarded')
class GuardedController {
  @Get('private')
  @LoginRequired()
  @UseGuards(RolesGuard)
  private() {
    return { ok: true };
  }

  @Get('open')
  @UseGuards(RolesGuard)
  open() {
    return { ok: true };
  }

  @Get('staff')
  @Roles('staff')
  @UseGuards(RolesGuard)
  staff() {
    return { ok: true };
  }
}


describe('request.user before the app’s guards', () => {
  let t: TestApp;
  let server: any;
  let cookie: string;

  beforeEach(async () => {
    RolesGuard.seen = [];
    t = await createTestApp({ controllers: [PagesController, GuardedController, HealthController] });
    server = t.app.getHttpServer();
    await t.users.createUser({ username: 'carol', password: 'correct horse', isStaff: true });
    cookie = await logIn(t.app, 'carol', 'correct horse');
  });
  afterEach(() => t.close());

  it('shows a guard on a @LoginRequired() route the logged-in user', async () => {
    await request(server).get('/guarded/private').set('Cookie', cookie).expect(200);
    expect(RolesGuard.seen).toHaveLength(1);
    expect(RolesGuard.seen[0]).toMatchObject({ username: 'carol', isAuthenticated: true });
  });

  it('shows a guard on an open route the logged-in user, or the AnonymousUser, never undefined', async () => {
    await request(server).get('/guarded/open').set('Cookie', cookie).expect(200);
    await request(server).get('/guarded/open').expect(200);
    expect(RolesGuard.seen[0]).toMatchObject({ username: 'carol' });
    expect(RolesGuard.seen[1]).toBeInstanceOf(AnonymousUser);
  });

  it('lets a roles guard decide from the real user', async () => {
    await request(server).get('/guarded/staff').set('Cookie', cookie).expect(200);
    await request(server).get('/guarded/staff').expect(403);
  });

  it('does not load the user on a route where nothing reads it', async () => {
    t.sql.reset();
    await request(server).get('/health').set('Cookie', cookie).expect(200, { up: true });
    expect(t.sql.statements.filter((sql) => /"auth_user"/.test(sql))).toEqual([]);
  });
});

describe('request.user read where it was not loaded', () => {
  it('is the AnonymousUser without a session, and a clear error (a 500, never anonymous) for a logged-in request', async () => {
    const readings: unknown[] = [];

    const reading = beforeGuards((req: any) => {
      try {
        readings.push(req.user);
      } catch (error) {
        readings.push((error as Error).name);
      }
    });

    const t = await createTestApp({ controllers: [PagesController, HealthController], ...reading });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const cookie = await logIn(t.app, 'carol', 'correct horse');
      readings.length = 0;
      await request(t.app.getHttpServer()).get('/health').expect(200);
      await request(t.app.getHttpServer()).get('/health').set('Cookie', cookie).expect(200);
      expect(readings[0]).toBeInstanceOf(AnonymousUser);
      expect(readings[1]).toBe('UserNotLoaded');
    } finally {
      await t.close();
    }
  });

  it('loads the user on every route when the app has a global guard of its own', async () => {
    const t = await createTestApp({
      controllers: [PagesController, HealthController],
      providers: [{ provide: APP_GUARD, useClass: RolesGuard }],
    });
    try {
      RolesGuard.seen = [];
      await t.app.get(UserManager).createUser({ username: 'carol', password: 'correct horse' });
      const cookie = await logIn(t.app, 'carol', 'correct horse');
      RolesGuard.seen = [];
      await request(t.app.getHttpServer()).get('/health').set('Cookie', cookie).expect(200);
      expect(RolesGuard.seen).toEqual([expect.objectContaining({ username: 'carol' })]);
    } finally {
      await t.close();
    }
  });
});
