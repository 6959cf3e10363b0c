import { jest } from '@jest/globals';
import { Logger, Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ModelBackend, RemoteUserBackend, RemoteUserMiddleware } from 'nestjs-session-auth';
import { createTestApp, logIn, sessionCookie, TEST_SECRET, type TestApp } from './support/test-app.js';

/**
 * What is Fastify's own: the core suites run on Fastify too (jest.config.js); these tests cover
 * what only a Fastify app has — an Express and a Fastify app sharing sessions, Fastify's
 * `trustProxy` deciding about HTTPS, and what the module refuses there.
 */

describe('an Express app and a Fastify app on one database', () => {
  let folder: string;
  let express: TestApp;
  let fastify: TestApp;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'nsa-fastify-'));
    const database = { database: join(folder, 'shared.sqlite') };
    express = await createTestApp({ platform: 'express', database });
    fastify = await createTestApp({ platform: 'fastify', database });
    await express.users.createUser({ username: 'carol', password: 'correct horse' });
  });
  afterAll(async () => {
    await express.close();
    await fastify.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it.each([
    ['Express', 'Fastify'],
    ['Fastify', 'Express'],
  ])('accept each other’s sessions: logged in on %s, known on %s, logged out there for both', async (from) => {
    const [origin, other] = from === 'Express' ? [express, fastify] : [fastify, express];
    const cookie = await logIn(origin.app, 'carol', 'correct horse');
    await request(other.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'carol', backend: 'ModelBackend' });
    await request(other.app.getHttpServer()).post('/logout').set('Cookie', cookie).expect(200);
    await request(origin.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(401);
  });

  it('sends the same cookie attributes on both', async () => {
    const attributes = async (t: TestApp) => {
      const response = await request(t.app.getHttpServer()).post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
      const line = [response.headers['set-cookie']].flat().find((cookie: string) => cookie.startsWith('sessionid='))!;
      return line
        .split(';')
        .slice(1)
        .map((attribute) => attribute.trim().replace(/^Expires=.*/, 'Expires=…'));
    };
    const onExpress = await attributes(express);
    expect(onExpress).toEqual(expect.arrayContaining(['Path=/', 'HttpOnly', 'SameSite=Lax', 'Expires=…']));
    expect(await attributes(fastify)).toEqual(onExpress);
  });
});

describe("Fastify's trustProxy decides whether a request came over HTTPS", () => {
  const login = async (t: TestApp) => {
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    const response = await request(t.app.getHttpServer())
      .post('/login')
      .set('X-Forwarded-Proto', 'https')
      .send({ username: 'carol', password: 'correct horse' })
      .expect(200);
    return [response.headers['set-cookie'] ?? []].flat().find((line: string) => line.startsWith('sessionid='));
  };
  const auto = { session: { secret: TEST_SECRET, cookie: { secure: 'auto' as const } } };

  it('believes X-Forwarded-Proto from a trusted proxy: the cookie is Secure', async () => {
    const t = await createTestApp({ platform: 'fastify', trustProxy: 'loopback', auth: auto });
    try {
      expect((await login(t))?.split('; ')).toContain('Secure');
    } finally {
      await t.close();
    }
  });

  it('ignores X-Forwarded-Proto without one: the request counts as plain HTTP, and its cookie is not marked Secure', async () => {
    const t = await createTestApp({ platform: 'fastify', auth: auto });
    try {
      const line = await login(t);
      expect(line).toBeDefined();
      expect(line!.split('; ')).not.toContain('Secure');
    } finally {
      await t.close();
    }
  });
});

describe('what the module refuses on Fastify', () => {
  it('RemoteUserMiddleware: a 500 that logs why, and nobody is logged in (Nest middleware sees another request there)', async () => {
    @Module({})
    class MountsRemoteUser implements NestModule {
      configure(consumer: MiddlewareConsumer) {
        consumer.apply(RemoteUserMiddleware).forRoutes({ path: '*', method: RequestMethod.ALL });
      }
    }
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const t = await createTestApp({ platform: 'fastify', auth: { backends: [ModelBackend, RemoteUserBackend] }, imports: [MountsRemoteUser] });
    try {
      const response = await request(t.app.getHttpServer()).get('/whoami').set('X-Remote-User', 'carol');
      expect(response.status).toBe(500);
      expect(sessionCookie(response.headers['set-cookie'])).toBeUndefined();
      expect(await t.users.findByUsername('carol')).toBeNull();
      expect(errors.mock.calls.flat().map(String).join('\n')).toMatch(/RemoteUserMiddleware runs on the Express adapter only/);
    } finally {
      errors.mockRestore();
      await t.close();
    }
  });
});
