/**
 * The peer of the benchmark: what a Nest team wires by hand without this package, following the
 * usual recipe: passport with passport-local through @nestjs/passport, users in TypeORM, bcryptjs
 * on the main thread, and express-session either on a SQLite store (better-sqlite3-session-store,
 * which touches the row on every request) or on its MemoryStore (`BENCH_PEER_STORE=memory`: one
 * process only, lost at restart; the fastest the recipe gets).
 */
import 'reflect-metadata';
import {
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Post,
  Req,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportSerializer, PassportStrategy } from '@nestjs/passport';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import bcrypt from 'bcryptjs';
import createSqliteStore from 'better-sqlite3-session-store';
import type { Request } from 'express';
import session from 'express-session';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import passport from 'passport';
import { Strategy } from 'passport-local';
import { Column, DataSource, Entity, PrimaryGeneratedColumn, type Repository } from 'typeorm';
import { BCRYPT_COST, BENCH_USER, SESSION_MAX_AGE_MS, SESSION_SECRET, WAL, serve, totalChanges } from './app-process.js';

type SqliteConnection = Parameters<typeof totalChanges>[0] & { pragma(statement: string): unknown };
// better-sqlite3 ships no types and only `new Database(file)` is needed here.
const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => SqliteConnection;

@Entity({ name: 'users' })
class Account {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 150, unique: true })
  username!: string;

  @Column({ type: 'varchar', length: 255 })
  password!: string;

  @Column({ type: 'varchar', length: 254, default: '' })
  email!: string;

  @Column({ name: 'is_active', type: 'boolean', default: true })
  isActive!: boolean;

  @Column({ name: 'last_login', type: Date, nullable: true })
  lastLogin!: Date | null;
}

@Injectable()
class LocalStrategy extends PassportStrategy(Strategy) {
  constructor(@InjectRepository(Account) private readonly accounts: Repository<Account>) {
    super();
  }

  async validate(username: string, password: string): Promise<Account> {
    const account = await this.accounts.findOneBy({ username });
    if (!account || !account.isActive || !(await bcrypt.compare(password, account.password))) {
      throw new UnauthorizedException('Invalid username or password.');
    }
    return account;
  }
}

@Injectable()
class SessionSerializer extends PassportSerializer {
  constructor(@InjectRepository(Account) private readonly accounts: Repository<Account>) {
    super();
  }

  serializeUser(account: Account, done: (error: unknown, id?: number) => void) {
    done(null, account.id);
  }

  deserializeUser(id: number, done: (error: unknown, account?: Account | false) => void) {
    this.accounts.findOneBy({ id }).then(
      (account) => done(null, account?.isActive ? account : false),
      (error) => done(error),
    );
  }
}

/** Authenticates with passport-local, then `req.logIn` (passport ≥0.6 regenerates the session). */
@Injectable()
class LocalAuthGuard extends AuthGuard('local') {
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const result = (await super.canActivate(context)) as boolean;
    await super.logIn(context.switchToHttp().getRequest());
    return result;
  }
}

@Injectable()
class AuthenticatedGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest<Request>().isAuthenticated();
  }
}

@Controller()
class BenchController {
  @Get('public')
  public() {
    return { hello: 'world' };
  }

  @Get('health')
  health() {
    return { up: true };
  }

  @UseGuards(LocalAuthGuard)
  @Post('login')
  @HttpCode(200)
  login(@Req() request: Request) {
    return { username: (request.user as Account).username };
  }

  @UseGuards(AuthenticatedGuard)
  @Get('me')
  me(@Req() request: Request) {
    const account = request.user as Account;
    return { id: account.id, username: account.username };
  }
}

await serve(async (dataDir) => {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'better-sqlite3',
        database: join(dataDir, 'peer.sqlite'),
        entities: [Account],
        synchronize: true,
        enableWAL: WAL,
      }),
      TypeOrmModule.forFeature([Account]),
      PassportModule.register({ session: true }),
    ],
    providers: [LocalStrategy, SessionSerializer],
    controllers: [BenchController],
  })
  class PeerModule {}

  const app = await NestFactory.create(PeerModule, { logger: ['error', 'warn'] });
  // Sessions in their own SQLite file, as the store's README sets it up, or in memory.
  const inMemory = process.env.BENCH_PEER_STORE === 'memory';
  const sessionsDb = inMemory ? undefined : new Database(join(dataDir, 'peer-sessions.sqlite'));
  if (WAL) sessionsDb?.pragma('journal_mode = WAL');
  const SqliteStore = createSqliteStore(session);
  app.use(
    session({
      store: sessionsDb ? new SqliteStore({ client: sessionsDb }) : new session.MemoryStore(),
      secret: SESSION_SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: SESSION_MAX_AGE_MS },
    }),
  );
  app.use(passport.initialize());
  app.use(passport.session());

  const accounts = app.get(DataSource).getRepository(Account);
  await accounts.save(
    accounts.create({
      username: BENCH_USER.username,
      email: BENCH_USER.email,
      password: await bcrypt.hash(BENCH_USER.password, BCRYPT_COST),
    }),
  );
  const usersDb = (app.get(DataSource).driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
  return { app, rowsWritten: () => totalChanges(usersDb) + (sessionsDb ? totalChanges(sessionsDb) : 0) };
});
