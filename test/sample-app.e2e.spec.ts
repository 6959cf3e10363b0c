import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { UserManager } from 'nestjs-session-auth';
import { AppModule } from '../sample-app/src/app.module.js';
import { DEVELOPMENT_SECRET, configFromEnv } from '../sample-app/src/config.js';
import { seedDemoUsers } from '../sample-app/src/seed.js';

/** The sample app as `npm start` runs it, on an in-memory SQLite database. */
describe('sample-app', () => {
  let app: INestApplication;

  beforeEach(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        AppModule.forRoot({
          database: { type: 'better-sqlite3', database: ':memory:' },
          sessionSecret: 'sample-app-test-secret',
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    await seedDemoUsers(app.get(UserManager));
  });
  afterEach(() => app.close());

  it('logs alice in through the dictionary backend, mapped to her local user', async () => {
    const browser = request.agent(app.getHttpServer());
    expect((await browser.get('/').expect(200)).body.message).toContain('anonymous');
    await browser.post('/login').send({ username: 'alice', password: 'wonderland' }).expect(200);
    const { body } = await browser.get('/me').expect(200);
    expect(body).toMatchObject({ username: 'alice', backend: 'DictionaryBackend' });
    await browser.get('/').expect(200, { message: 'Hello, alice!' });
  });

  it('logs carol in through ModelBackend with her own password', async () => {
    const browser = request.agent(app.getHttpServer());
    await browser.post('/login').send({ username: 'carol', password: 'correct horse battery staple' }).expect(200);
    const { body } = await browser.get('/me').expect(200);
    expect(body).toMatchObject({ username: 'carol', backend: 'ModelBackend' });
  });

  it('answers 401 to a wrong or missing password, for either backend', async () => {
    const server = app.getHttpServer();
    await request(server).post('/login').send({ username: 'alice', password: 'looking-glass' }).expect(401);
    await request(server).post('/login').send({ username: 'carol', password: 'wonderland' }).expect(401);
    // No password at all must not slip through the dictionary lookup.
    await request(server).post('/login').send({ username: 'carol' }).expect(401);
  });

  it('logs out: /me is 401 afterwards', async () => {
    const browser = request.agent(app.getHttpServer());
    await browser.post('/login').send({ username: 'bob', password: 'builder' }).expect(200);
    await browser.get('/me').expect(200);
    await browser.post('/logout').expect(200);
    await browser.get('/me').expect(401);
  });

  it('seeds only the users that are missing', async () => {
    await seedDemoUsers(app.get(UserManager));
    expect(await app.get(UserManager).repository.count()).toBe(3);
  });
});

describe('sample-app configuration', () => {
  const database = { DATABASE_URL: 'postgres://localhost/sample' };

  it('uses PostgreSQL when DATABASE_URL is set', () => {
    const config = configFromEnv({ ...database, SESSION_SECRET: 'x'.repeat(32), PORT: '8080' });
    expect(config).toEqual({ port: 8080, sessionSecret: 'x'.repeat(32), database: { type: 'postgres', url: database.DATABASE_URL } });
  });

  it('warns loudly about the development secret, and refuses it in production', () => {
    const warnings: string[] = [];
    expect(configFromEnv({ ...database }, (message) => warnings.push(message)).sessionSecret).toBe(DEVELOPMENT_SECRET);
    expect(warnings.join('\n')).toContain('SESSION_SECRET is not set');
    expect(() => configFromEnv({ ...database, NODE_ENV: 'production' })).toThrow(/SESSION_SECRET/);
    expect(() => configFromEnv({ ...database, NODE_ENV: 'production', SESSION_SECRET: DEVELOPMENT_SECRET })).toThrow(/SESSION_SECRET/);
  });
});
