/**
 * App A of the benchmark: nestjs-session-auth as its README sets it up (TypeORM on a SQLite file,
 * ModelBackend, sessions in the same database), imported from the built package (`dist/`).
 */
import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Module, Post, Req, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
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
  type User,
} from 'nestjs-session-auth';
import { BCryptSHA256Hasher, BcryptWorkerPool } from 'nestjs-session-auth/passwords';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { BCRYPT_COST, BENCH_USER, SESSION_MAX_AGE_MS, SESSION_SECRET, WAL, serve, totalChanges } from './app-process.js';

@Controller()
class BenchController {
  constructor(private readonly auth: AuthService) {}

  @Get('public')
  public() {
    return { hello: 'world' };
  }

  /** A route that reads neither the session nor the user. */
  @Get('health')
  health() {
    return { up: true };
  }

  @Post('login')
  @HttpCode(200)
  async login(@Req() request: Request, @Body() credentials: unknown) {
    const user = await this.auth.authenticate<User>(request, credentials);
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(request, user);
    return { username: user.username };
  }

  @LoginRequired()
  @Get('me')
  me(@CurrentUser() user: User) {
    return { id: user.id, username: user.username };
  }
}

await serve(async (dataDir) => {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'better-sqlite3',
        database: join(dataDir, 'ours.sqlite'),
        entities: [...authEntities],
        synchronize: true,
        enableWAL: WAL,
      }),
      AuthModule.forRoot({
        backends: [ModelBackend],
        session: { secret: SESSION_SECRET, cookie: { maxAge: SESSION_MAX_AGE_MS } },
        // All the load comes from one address, which by default gets half the hashing threads
        // (the rest are kept for other clients); here it may use them all, as many clients would.
        passwordHashers: [new BCryptSHA256Hasher({ rounds: BCRYPT_COST, pool: new BcryptWorkerPool({ maxRunningPerLane: 64 }) })],
        // The load generator logs in from one address far faster than people do: the login
        // scenario measures a login's cost, not the per-address rate limit.
        throttle: { addressRate: 1_000_000, addressBurst: 1_000_000 },
      }),
    ],
    controllers: [BenchController],
  })
  class OursModule {}

  const app = await NestFactory.create(OursModule, { logger: ['error', 'warn'] });
  await app.get(UserManager).createUser(BENCH_USER);
  const connection = app.get(DataSource).driver as unknown as { databaseConnection: Parameters<typeof totalChanges>[0] };
  return { app, rowsWritten: () => totalChanges(connection.databaseConnection) };
});
