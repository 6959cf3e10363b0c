import { Controller, Get, HttpCode, Injectable, Module, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import {
  AuthModule,
  AuthService,
  CurrentUser,
  LoginRequired,
  ModelBackend,
  UserManager,
  authEntities,
  sessionOf,
  type AuthBackend,
} from 'nestjs-session-auth';
import { forceLogin } from 'nestjs-session-auth/testing';
import { fastHashers, TEST_SECRET } from './support/test-app.js';

/** A service that lives in the app's own module, not in the auth module. */
@Injectable()
class Directory {
  readonly people = new Map([['ldap-user', 'secret']]);
}

@Injectable()
class DirectoryBackend implements AuthBackend {
  constructor(
    private readonly directory: Directory,
    private readonly users: UserManager,
  ) {}
  async authenticate(_req: unknown, { username, password }: Record<string, unknown>) {
    if (typeof username !== 'string' || this.directory.people.get(username) !== password) return null;
    return (await this.users.findByUsername(username)) ?? this.users.createUser({ username });
  }
  getUser(id: string) {
    return this.users.findById(id);
  }
}

/** Needs Directory, which the auth module cannot provide. */
@Injectable()
class OrphanBackend implements AuthBackend {
  constructor(readonly directory: Directory) {}
  authenticate() {
    return null;
  }
  getUser() {
    return null;
  }
}

@Controller()
class MeController {
  @LoginRequired()
  @Get('me')
  me(@CurrentUser() user: any) {
    return { username: user.username, backend: user.backend };
  }
}

const database = () =>
  TypeOrmModule.forRoot({ type: 'better-sqlite3', database: ':memory:', entities: [...authEntities], synchronize: true });

async function boot(imports: any[], providers: any[] = []) {
  @Module({ imports: [database(), ...imports], providers, controllers: [MeController] })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('AuthModule configuration', () => {
  it('uses a backend that an app module provides, with that module\'s services injected', async () => {
    const app = await boot(
      [AuthModule.forRoot({ backends: [ModelBackend, DirectoryBackend], session: { secret: TEST_SECRET }, passwordHashers: fastHashers })],
      [Directory, DirectoryBackend],
    );
    try {
      const user = await app.get(AuthService).authenticate(undefined, { username: 'ldap-user', password: 'secret' });
      expect(user).toMatchObject({ username: 'ldap-user', backend: 'DirectoryBackend' });
      // The very instance the app module owns, not a copy.
      app.get(Directory).people.set('added-later', 'pw');
      expect(await app.get(AuthService).authenticate(undefined, { username: 'added-later', password: 'pw' })).not.toBeNull();
    } finally {
      await app.close();
    }
  });

  it('creates a backend no module provides, with the auth module\'s providers', async () => {
    const app = await boot([
      AuthModule.forRoot({ backends: [ModelBackend], session: { secret: TEST_SECRET }, passwordHashers: fastHashers }),
    ]);
    try {
      await app.get(UserManager).createUser({ username: 'carol', password: 'pw' });
      expect(await app.get(AuthService).authenticate(undefined, { username: 'carol', password: 'pw' })).toMatchObject({
        backend: 'ModelBackend',
      });
    } finally {
      await app.close();
    }
  });

  it('fails at start-up naming the backend and the dependency it cannot get', async () => {
    await expect(
      boot([AuthModule.forRoot({ backends: [OrphanBackend], session: { secret: TEST_SECRET } })]),
    ).rejects.toThrow(/OrphanBackend[\s\S]*Directory/);
  });

  it('refuses an empty backend list with a message saying what to do', async () => {
    await expect(boot([AuthModule.forRoot({ backends: [], session: { secret: TEST_SECRET } })])).rejects.toThrow(
      /No authentication backends have been defined/,
    );
  });

  it('refuses to start without a session secret', async () => {
    await expect(boot([AuthModule.forRoot({ backends: [ModelBackend], session: { secret: '' } })])).rejects.toThrow(
      /session secret/,
    );
    await expect(boot([AuthModule.forRoot({ backends: [ModelBackend], session: false })])).rejects.toThrow(/secret/);
  });

  it('says, for a secret read from the environment before the variable was set, when it was read and what to do', async () => {
    // forRoot's options were evaluated as this file was imported: the variable is set only now.
    const options = { backends: [ModelBackend], session: { secret: process.env.NSA_TEST_LATE_SECRET as string } };
    process.env.NSA_TEST_LATE_SECRET = TEST_SECRET;
    try {
      const failure = boot([AuthModule.forRoot(options)]);
      await expect(failure).rejects.toThrow(/session\.secret is undefined/);
      await expect(failure).rejects.toThrow(/read when the module file was imported[\s\S]*forRootAsync/);
      // The way out the message names works.
      const app = await boot([
        AuthModule.forRootAsync({ useFactory: () => ({ backends: [ModelBackend], session: { secret: process.env.NSA_TEST_LATE_SECRET! } }) }),
      ]);
      await app.close();
    } finally {
      delete process.env.NSA_TEST_LATE_SECRET;
    }
  });

  it("answers a missing secret at once, not after the retries of a database that cannot be reached", async () => {
    const { NestFactory } = await import('@nestjs/core');
    @Module({
      imports: [
        // Nothing listens on port 1: TypeORM would retry (and log) until it gives up.
        TypeOrmModule.forRoot({ type: 'postgres', host: '127.0.0.1', port: 1, retryAttempts: 1, retryDelay: 100, entities: [...authEntities] }),
        AuthModule.forRoot({ backends: [ModelBackend], session: { secret: process.env.NSA_TEST_NEVER_SET as string } }),
      ],
    })
    class UnreachableDatabaseModule {}
    await expect(NestFactory.create(UnreachableDatabaseModule, { logger: false, abortOnError: false })).rejects.toThrow(
      /session\.secret is undefined/,
    );
  });

  it('refuses to start on an HTTP adapter it does not support, naming it, instead of failing every login later', async () => {
    const { ExpressAdapter } = await import('@nestjs/platform-express');
    /** Some other platform's adapter (Nest knows Express and Fastify; others are third-party). */
    class HyperAdapter extends ExpressAdapter {
      override getType(): string {
        return 'hyper-express';
      }
    }
    @Module({ imports: [database(), AuthModule.forRoot({ backends: [ModelBackend], session: { secret: TEST_SECRET } })] })
    class OtherPlatformModule {}
    const moduleRef = await Test.createTestingModule({ imports: [OtherPlatformModule] }).compile();
    const app = moduleRef.createNestApplication(new HyperAdapter(), { logger: false });
    try {
      await expect(app.init()).rejects.toThrow(/'hyper-express' adapter \(HyperAdapter\), which it does not support/);
    } finally {
      await app.close().catch(() => undefined);
    }
  });

  it('refuses session: false on Fastify at start-up: there the module keeps the sessions itself', async () => {
    const { FastifyAdapter } = await import('@nestjs/platform-fastify');
    @Module({ imports: [database(), AuthModule.forRoot({ backends: [ModelBackend], session: false, secret: TEST_SECRET })] })
    class FastifyAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [FastifyAppModule] }).compile();
    const app = moduleRef.createNestApplication(new FastifyAdapter(), { logger: false });
    try {
      await expect(app.init()).rejects.toThrow(/session: false is for Express apps/);
    } finally {
      await app.close().catch(() => undefined);
    }
  });

  it('refuses two backends with the same name', async () => {
    @Injectable()
    class Twin extends ModelBackend {
      readonly name = 'ModelBackend';
    }
    await expect(
      boot([AuthModule.forRoot({ backends: [ModelBackend, Twin], session: { secret: TEST_SECRET } })]),
    ).rejects.toThrow(/Two authentication backends are named 'ModelBackend'/);
  });

  it('forRootAsync takes its options from an injected factory', async () => {
    @Injectable()
    class Settings {
      readonly secret = TEST_SECRET;
    }
    @Module({ providers: [Settings], exports: [Settings] })
    class SettingsModule {}

    const app = await boot([
      AuthModule.forRootAsync({
        imports: [SettingsModule],
        inject: [Settings],
        useFactory: (settings: Settings) => ({
          backends: [ModelBackend],
          session: { secret: settings.secret },
          passwordHashers: fastHashers,
        }),
      }),
    ]);
    try {
      const carol = await app.get(UserManager).createUser({ username: 'carol' });
      const cookie = await forceLogin(app, carol);
      await request(app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
    } finally {
      await app.close();
    }
  });

  it('names a backend by its name property when it has one', async () => {
    @Injectable()
    class RenamedBackend extends ModelBackend {
      readonly name = 'accounts.ModelBackend';
    }
    const app = await boot([
      AuthModule.forRoot({ backends: [RenamedBackend], session: { secret: TEST_SECRET }, passwordHashers: fastHashers }),
    ]);
    try {
      const carol = await app.get(UserManager).createUser({ username: 'carol' });
      const cookie = await forceLogin(app, carol);
      await request(app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'accounts.ModelBackend' });
    } finally {
      await app.close();
    }
  });
});

describe('session: false (the app installs express-session itself)', () => {
  it('logs in, resolves and logs out through the app\'s own session middleware', async () => {
    const { default: session } = await import('express-session');
    const { PagesController } = await import('./support/test-app.js');
    @Module({
      imports: [
        database(),
        AuthModule.forRoot({ backends: [ModelBackend], session: false, secret: 'auth-secret', passwordHashers: fastHashers }),
      ],
      controllers: [PagesController],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.use(session({ name: 'app.sid', secret: 'cookie-secret', resave: false, saveUninitialized: false }));
    await app.init();
    try {
      await app.get(UserManager).createUser({ username: 'carol', password: 'pw' });
      const server = app.getHttpServer();
      const login = await request(server).post('/login').send({ username: 'carol', password: 'pw' }).expect(200);
      const cookie = [login.headers['set-cookie']].flat().find((c: string) => c.startsWith('app.sid='))!.split(';')[0];
      await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
      const logout = await request(server).post('/logout').set('Cookie', cookie).expect(200);
      expect([logout.headers['set-cookie']].flat().some((c: string) => c?.startsWith('app.sid=;'))).toBe(true);
      await request(server).get('/me').set('Cookie', cookie).expect(401);
    } finally {
      await app.close();
    }
  });
});

/** App code written against the module's `Session` interface, the same whichever sessions the app has. */
@Controller('cart')
class CartController {
  @Post('add/:sku')
  @HttpCode(200)
  async add(@Req() request: Request, @Param('sku') sku: string) {
    const session = await sessionOf(request);
    session.set('cart', [...((session.get('cart') as string[] | undefined) ?? []), sku]);
    return { cart: session.get('cart') };
  }

  /** A privilege change, as a login is: the session gets a new id, its data kept. */
  @Post('checkout')
  @HttpCode(200)
  async checkout(@Req() request: Request) {
    await (await sessionOf(request)).cycleKey();
    return {};
  }

  @Get()
  async show(@Req() request: Request) {
    return { cart: (await sessionOf(request)).get('cart') ?? [] };
  }
}

describe.each([
  ['the module\'s own sessions', 'sessionid', false],
  ['an app-installed express-session (session: false)', 'app.sid', true],
])('sessionOf(request) with %s', (_label, cookieName, appSessions) => {
  it('keeps the data across a cycleKey under a new id, and the id from before (a planted cookie) carries nothing any more', async () => {
    const { default: session } = await import('express-session');
    @Module({
      imports: [
        database(),
        AuthModule.forRoot(
          appSessions
            ? { backends: [ModelBackend], session: false, secret: 'auth-secret', passwordHashers: fastHashers }
            : { backends: [ModelBackend], session: { secret: TEST_SECRET }, passwordHashers: fastHashers },
        ),
      ],
      controllers: [CartController],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    if (appSessions) app.use(session({ name: 'app.sid', secret: 'cookie-secret', resave: false, saveUninitialized: false }));
    await app.init();
    const cookieOf = (response: request.Response) =>
      [response.headers['set-cookie'] ?? []].flat().find((line: string) => line.startsWith(`${cookieName}=`))?.split(';')[0];
    try {
      const server = app.getHttpServer();
      const planted = cookieOf(await request(server).post('/cart/add/book').expect(200, { cart: ['book'] }))!;
      await request(server).post('/cart/add/pen').set('Cookie', planted).expect(200, { cart: ['book', 'pen'] });
      const rotated = cookieOf(await request(server).post('/cart/checkout').set('Cookie', planted).expect(200))!;
      expect(rotated).toBeDefined();
      expect(rotated).not.toBe(planted);
      await request(server).get('/cart').set('Cookie', rotated).expect(200, { cart: ['book', 'pen'] });
      await request(server).get('/cart').set('Cookie', planted).expect(200, { cart: [] });
    } finally {
      await app.close();
    }
  });
});

describe('secrets', () => {
  it('keeps older cookie secrets (session.secret: [new, old]) valid for session auth hashes too', async () => {
    const { resolveAuthConfig } = await import('../src/auth.config.js');
    expect(resolveAuthConfig({ backends: [ModelBackend], session: { secret: ['new', 'old'] } }).secrets).toEqual(['new', 'old']);
    expect(resolveAuthConfig({ backends: [ModelBackend], session: { secret: ['new', 'old'] }, secret: 'own' }).secrets).toEqual(['own']);
    expect(
      resolveAuthConfig({ backends: [ModelBackend], session: { secret: 'x' }, secretFallbacks: ['older'] }).secrets,
    ).toEqual(['x', 'older']);
  });
});
