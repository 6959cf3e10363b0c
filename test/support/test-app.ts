import {
  Body,
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Post,
  type MiddlewareConsumer,
  type NestModule,
  Req,
  UnauthorizedException,
  type INestApplication,
  type ModuleMetadata,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Request } from 'express';
import {
  AuthModule,
  AuthService,
  CurrentUser,
  LoginRequired,
  ModelBackend,
  UserManager,
  authEntities,
  type AuthBackend,
  type AuthModuleOptions,
} from 'nestjs-session-auth';
import { BCryptSHA256Hasher } from '../../src/passwords/password-hasher.js';
import { SqlCounter } from './sql-counter.js';

/** bcrypt at its lowest cost keeps the suite fast; the algorithm and encoding are the real ones. */
export const fastHashers = [new BCryptSHA256Hasher({ rounds: 4 }), 'scrypt' as const];

/** Long enough for the production check on secrets (32 characters or more). */
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-production';

/** The seed's dictionary backend: alice/wonderland and bob/builder, mapped to local users. */
@Injectable()
export class DictionaryBackend implements AuthBackend {
  constructor(private readonly users: UserManager) {}

  async authenticate(_request: unknown, { username, password }: Record<string, unknown>) {
    const valid: Record<string, string> = { alice: 'wonderland', bob: 'builder' };
    if (typeof username !== 'string' || !Object.hasOwn(valid, username) || valid[username] !== password) return null;
    return this.users.findByUsername(username);
  }

  getUser(id: string) {
    return this.users.findById(id);
  }
}

/** The controller of */
@Controller()
export class PagesController {
  constructor(private readonly auth: AuthService) {}

  @Post('login')
  @HttpCode(200)
  async login(@Req() request: Request, @Body() body: unknown) {
    const user = await this.auth.authenticate(request, body);
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(request, user);
    return { username: user.username };
  }

  @Post('logout')
  @HttpCode(200)
  async logout(@Req() request: Request) {
    await this.auth.logout(request);
    return {};
  }

  @LoginRequired()
  @Get('me')
  me(@CurrentUser() user: any) {
    return { username: user.username, backend: user.backend };
  }

  @Get('whoami')
  whoami(@CurrentUser() user: any) {
    return { username: user.username, isAuthenticated: user.isAuthenticated };
  }

  @Post('session/:key/:value')
  @HttpCode(200)
  remember(@Req() request: Request & { params: Record<string, string> }) {
    (request.session as any)[request.params.key] = request.params.value;
    return {};
  }

  @Get('session/:key')
  recall(@Req() request: Request & { params: Record<string, string> }) {
    return { value: (request.session as any)?.[request.params.key] ?? null };
  }
}

/** A route on which nothing reads the user or the session (`GET /health`). */
@Controller()
export class HealthController {
  @Get('health')
  health() {
    return { up: true };
  }
}

export interface TestAppOptions {
  auth?: Partial<AuthModuleOptions>;
  imports?: ModuleMetadata['imports'];
  providers?: ModuleMetadata['providers'];
  controllers?: Type[];
  /** Extra entities for the DataSource, besides the auth entities. */
  entities?: Function[];
  /** A TypeORM connection; defaults to an in-memory SQLite database. */
  database?: Record<string, unknown>;
  synchronize?: boolean;
  /** Set the app up before it starts (a WebSocket adapter, say). */
  beforeInit?: (app: INestApplication) => void;
  /** The HTTP platform: Nest's Express adapter or its Fastify adapter (default: the test project's). */
  platform?: 'express' | 'fastify';
  /** Which proxies to believe about the client (Express's `trust proxy`, Fastify's `trustProxy`). */
  trustProxy?: boolean | string;
}

/**
 * The platform apps of this test run use: Express, or Fastify in the jest project that runs the
 * core suites again on it (jest.config.js).
 */
export const PLATFORM: 'express' | 'fastify' = (globalThis as { TEST_PLATFORM?: string }).TEST_PLATFORM === 'fastify' ? 'fastify' : 'express';

export interface TestApp {
  app: INestApplication;
  sql: SqlCounter;
  users: UserManager;
  auth: AuthService;
  close(): Promise<void>;
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const sql = new SqlCounter();

  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'better-sqlite3',
        database: ':memory:',
        ...options.database,
        entities: [...authEntities, ...(options.entities ?? [])],
        synchronize: options.synchronize ?? true,
        logging: true,
        logger: sql,
      } as any),
      AuthModule.forRoot({
        backends: [ModelBackend, DictionaryBackend],
        session: { secret: TEST_SECRET },
        passwordHashers: fastHashers,
        ...options.auth,
      } as AuthModuleOptions),
      ...(options.imports ?? []),
    ],
    providers: options.providers ?? [],
    controllers: options.controllers ?? [PagesController],
  })
  class AppModule {}

  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const platform = options.platform ?? PLATFORM;
  const logger = process.env.TEST_LOG ? (['error'] as const) : false;
  const app =
    platform === 'fastify'
      ? moduleRef.createNestApplication(new (await import('@nestjs/platform-fastify')).FastifyAdapter({ trustProxy: options.trustProxy }), { logger: logger as any })
      : moduleRef.createNestApplication({ logger: logger as any });
  if (platform === 'express' && options.trustProxy !== undefined) app.getHttpAdapter().getInstance().set('trust proxy', options.trustProxy);
  options.beforeInit?.(app);
  await app.init();
  // Fastify answers once its plugins are loaded.
  if (platform === 'fastify') await app.getHttpAdapter().getInstance().ready();
  sql.reset();
  return {
    app,
    sql,
    users: app.get(UserManager),
    auth: app.get(AuthService),
    close: () => app.close(),
  };
}

/** The `name=value` pair of a Set-Cookie header for `name`, or undefined. */
export function sessionCookie(setCookie: string[] | string | undefined, name = 'sessionid'): string | undefined {
  const all = [setCookie ?? []].flat();
  const line = all.find((cookie) => cookie.startsWith(`${name}=`));
  return line?.split(';')[0];
}

/** POST /login as `username` and resolve the session cookie it set (the login must succeed). */
export async function logIn(app: INestApplication, username: string, password: string): Promise<string> {
  const { default: request } = await import('supertest');
  const response = await request(app.getHttpServer()).post('/login').send({ username, password }).expect(200);
  const cookie = sessionCookie(response.headers['set-cookie']);
  if (!cookie) throw new Error(`Logging in as ${username} set no session cookie.`);
  return cookie;
}

/**
 * Options that run `read(request)` on every request before the guards: a Nest middleware on
 * Express; on Fastify, whose Nest middleware is given Node's request rather than Fastify's, a
 * `preHandler` hook (as the README says to do there).
 */
export function beforeGuards(read: (request: any) => void | Promise<void>): Pick<TestAppOptions, 'imports' | 'beforeInit'> {
  if (PLATFORM === 'fastify') {
    return { beforeInit: (app) => app.getHttpAdapter().getInstance().addHook('preHandler', async (request: unknown) => read(request)) };
  }
  @Module({})
  class ReadingModule implements NestModule {
    configure(consumer: MiddlewareConsumer) {
      consumer
        .apply(async (request: unknown, _response: unknown, next: () => void) => {
          await read(request);
          next();
        })
        .forRoutes('*');
    }
  }
  return { imports: [ReadingModule] };
}
