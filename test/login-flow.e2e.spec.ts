import request from 'supertest';
import { createTestApp, sessionCookie, type TestApp } from './support/test-app.js';

describe('login flow over HTTP', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await createTestApp();
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    await t.users.createUser({ username: 'alice' });
    t.sql.reset();
  });
  afterEach(() => t.close());

  it('logs in with ModelBackend and remembers the user on the next request', async () => {
    const login = await request(t.app.getHttpServer())
      .post('/login')
      .send({ username: 'carol', password: 'correct horse' })
      .expect(200, { username: 'carol' });
    const cookie = sessionCookie(login.headers['set-cookie']);
    expect(cookie).toBeDefined();
    await request(t.app.getHttpServer()).get('/me').set('Cookie', cookie!).expect(200, { username: 'carol', backend: 'ModelBackend' });
  });

  it('falls through to the next backend when the first returns null', async () => {
    const login = await request(t.app.getHttpServer())
      .post('/login')
      .send({ username: 'alice', password: 'wonderland' })
      .expect(200);
    const cookie = sessionCookie(login.headers['set-cookie'])!;
    await request(t.app.getHttpServer())
      .get('/me')
      .set('Cookie', cookie)
      .expect(200, { username: 'alice', backend: 'DictionaryBackend' });
  });
});
