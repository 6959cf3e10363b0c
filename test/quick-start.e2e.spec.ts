import type { INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { UserManager } from 'nestjs-session-auth';
import { sessionCookie, TEST_SECRET } from './support/test-app.js';

/** The README's quick start as a newcomer runs it: its module file, its environment, nothing added. */
describe("the README's quick start", () => {
  let folder: string;
  let app: INestApplication;
  let server: any;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'quick-start-'));
    // As `SESSION_SECRET=… node dist/main.js` would have it, before the module file is imported.
    process.env.SESSION_SECRET = TEST_SECRET;
    process.env.DATABASE_PATH = join(folder, 'db.sqlite');
    const { AppModule } = await import('./support/quick-start.app.js');
    const { NestFactory } = await import('@nestjs/core');
    app = await NestFactory.create(AppModule, { logger: false });
    await app.init();
    server = app.getHttpServer();
    const users = app.get(UserManager);
    await users.createUser({ username: 'carol', password: 'correct horse battery staple' });
    await users.createUser({ username: 'sam', password: 'correct horse battery staple', isStaff: true });
  });
  afterAll(async () => {
    await app.close();
    delete process.env.SESSION_SECRET;
    delete process.env.DATABASE_PATH;
    rmSync(folder, { recursive: true, force: true });
  });

  const login = async (username: string) => {
    const response = await request(server).post('/login').send({ username, password: 'correct horse battery staple' }).expect(201);
    return sessionCookie(response.headers['set-cookie'])!;
  };

  it('sends a browser from a protected page to a login page that exists, and an API client gets 401', async () => {
    const redirect = await request(server).get('/me').set('Accept', 'text/html').expect(302);
    expect(redirect.headers.location).toBe('/accounts/login?next=%2Fme');
    const page = await request(server).get('/accounts/login?next=%2Fme').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('name="password"');
    await request(server).get('/me').expect(401);
  });

  it('logs in with POST /login, knows the user on /me, and logs out', async () => {
    const cookie = await login('carol');
    await request(server).get('/me').set('Cookie', cookie).expect(200, { username: 'carol' });
    await request(server).post('/logout').set('Cookie', cookie).expect(201);
    await request(server).get('/me').set('Cookie', cookie).expect(401);
  });

  it("runs the app's own guard with request.user already set", async () => {
    await request(server).get('/staff').set('Cookie', await login('carol')).expect(403);
    await request(server).get('/staff').set('Cookie', await login('sam')).expect(200, { welcome: 'staff' });
  });
});
