import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  AuthModule,
  ExternalIdentity,
  Group,
  ImproperlyConfigured,
  LoginLockout,
  ModelBackend,
  Permission,
  RemoteUserBackend,
  SessionRecord,
  User,
  UserManager,
  authEntities,
  type AuthModuleOptions,
} from 'nestjs-session-auth';
import { LdapBackend } from 'nestjs-session-auth/ldap';
import { OidcBackend } from 'nestjs-session-auth/oidc';
import { fastHashers, PagesController, TEST_SECRET } from './support/test-app.js';

/** A user model of the app's own that forgot `lastLogin`, which every login writes. */
@Entity({ name: 'forgetful_member' })
class ForgetfulMember {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 150, unique: true })
  username!: string;

  @Column({ type: 'varchar', length: 255 })
  password!: string;

  @Column({ type: 'boolean', default: true })
  isActive!: boolean;
}

interface Setup {
  entities: Function[];
  auth?: Partial<AuthModuleOptions>;
  database?: string;
  synchronize?: boolean;
}

/** An app wired the way a newcomer might, with one of the mistakes below. */
function appWith({ entities, auth, database = ':memory:', synchronize = true }: Setup): Promise<INestApplication> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'better-sqlite3', database, entities, synchronize }),
      AuthModule.forRoot({ backends: [ModelBackend], session: { secret: TEST_SECRET }, passwordHashers: fastHashers, ...auth }),
    ],
    controllers: [PagesController],
  })
  class AppModule {}
  return NestFactory.create(AppModule, { logger: false, abortOnError: false });
}

/** Start the app; resolve the error that stopped it, or `undefined` once it is up (and closed again). */
async function startupError(setup: Setup): Promise<Error | undefined> {
  let app: INestApplication | undefined;
  try {
    app = await appWith(setup);
    await app.init();
    return undefined;
  } catch (error) {
    return error as Error;
  } finally {
    await app?.close().catch(() => undefined);
  }
}

describe('mistakes caught when the app starts, not at the first login', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'startup-checks-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('refuses to start without the auth entities in the DataSource, and names authEntities as the fix', async () => {
    const error = await startupError({ entities: [] });
    expect(error).toBeInstanceOf(ImproperlyConfigured);
    expect(error!.message).toContain('LoginLockout (for the login throttle)');
    expect(error!.message).toContain('SessionRecord (for the session store)');
    expect(error!.message).toContain('User (for ModelBackend)');
    expect(error!.message).toContain('entities: [...authEntities, ...yourEntities]');
  });

  it('names the one entity left out of a hand-written list (the throttle\'s LoginLockout)', async () => {
    const error = await startupError({ entities: [User, Group, Permission, SessionRecord, ExternalIdentity] });
    expect(error).toBeInstanceOf(ImproperlyConfigured);
    expect(error!.message).toMatch(/AuthModule needs LoginLockout \(for the login throttle\), which the DataSource does not have/);
  });

  it('asks only for what is used: no LoginLockout with the throttle off, no ExternalIdentity with ModelBackend alone', async () => {
    expect(await startupError({ entities: [User, Group, Permission, SessionRecord], auth: { throttle: false } })).toBeUndefined();
  });

  it('refuses a backend that links users (RemoteUserBackend) without ExternalIdentity', async () => {
    const error = await startupError({
      entities: [User, Group, Permission, SessionRecord, LoginLockout],
      auth: { backends: [RemoteUserBackend] },
    });
    expect(error).toBeInstanceOf(ImproperlyConfigured);
    expect(error!.message).toContain('ExternalIdentity (for RemoteUserBackend)');
  });

  it('refuses the directory and identity provider backends without ExternalIdentity', async () => {
    const withoutLinks = [User, Group, Permission, SessionRecord, LoginLockout];
    // Neither backend reaches its server before the first login, so none is needed here.
    const Directory = LdapBackend.configure({ url: 'ldap://127.0.0.1:1', userDnTemplate: 'uid=%(user)s,ou=people,dc=example,dc=com' });
    const Provider = OidcBackend.configure({ name: 'idp', issuer: 'https://idp.example', clientId: 'app', clientSecret: 'secret' });
    for (const backend of [Directory, Provider]) {
      const error = await startupError({ entities: withoutLinks, auth: { backends: [backend] } });
      expect(error).toBeInstanceOf(ImproperlyConfigured);
      expect(error!.message).toMatch(/AuthModule needs ExternalIdentity \(for (LdapBackend|idp)\)/);
    }
    expect(await startupError({ entities: [...authEntities], auth: { backends: [Directory, Provider] } })).toBeUndefined();
  });

  it('refuses a custom user entity without a column every login writes, and names it', async () => {
    const error = await startupError({ entities: [...authEntities, ForgetfulMember], auth: { userEntity: ForgetfulMember } });
    expect(error).toBeInstanceOf(ImproperlyConfigured);
    expect(error!.message).toMatch(/The user entity ForgetfulMember has no lastLogin column/);
  });

  it('names a custom user entity left out of entities next to authEntities', async () => {
    const error = await startupError({ entities: [...authEntities], auth: { userEntity: ForgetfulMember } });
    expect(error).toBeInstanceOf(ImproperlyConfigured);
    expect(error!.message).toContain('entities: [...authEntities, ForgetfulMember, ...yourEntities]');
  });

  it('refuses to start on a database without the tables (synchronize off, no migrations run), naming the table', async () => {
    const database = join(folder, 'empty.sqlite');
    const error = await startupError({ entities: [...authEntities], database, synchronize: false });
    expect(error).toBeInstanceOf(ImproperlyConfigured);
    expect(error!.message).toMatch(/cannot read the table auth_user \(User, for ModelBackend\): .*no such table/);
    expect(error!.message).toContain('run your migrations');
  });

  it('refuses a table that lacks a column its entity maps (a migration not run)', async () => {
    const database = join(folder, 'old-schema.sqlite');
    expect(await startupError({ entities: [...authEntities], database })).toBeUndefined();
    const db = await new DataSource({ type: 'better-sqlite3', database }).initialize();
    await db.query('ALTER TABLE auth_login_lockout DROP COLUMN failures');
    await db.destroy();
    const error = await startupError({ entities: [...authEntities], database, synchronize: false });
    expect(error).toBeInstanceOf(ImproperlyConfigured);
    expect(error!.message).toMatch(/cannot read the table auth_login_lockout \(LoginLockout, for the login throttle\): .*failures/);
  });

  it('starts on a database whose schema matches, with synchronize off, and logs in', async () => {
    const database = join(folder, 'ready.sqlite');
    expect(await startupError({ entities: [...authEntities], database })).toBeUndefined();
    const app = await appWith({ entities: [...authEntities], database, synchronize: false });
    try {
      await app.init();
      await app.get(UserManager).createUser({ username: 'carol', password: 'correct horse' });
      await request(app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    } finally {
      await app.close();
    }
  });
});
