import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';

/** One rule decides a page or JSON, for the guard and the built-in views alike. */
describe('HTML or JSON', () => {
  let t: TestApp;
  let server: any;

  beforeAll(async () => {
    t = await createTestApp({ auth: { views: true } });
    server = t.app.getHttpServer();
  });
  afterAll(() => t.close());

  it.each([
    ['a browser navigation', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'html'],
    ['fetch() and curl (Accept: */*)', '*/*', 'json'],
    ['no Accept header', undefined, 'json'],
    ['a client asking for JSON first', 'application/json, text/html;q=0.5', 'json'],
  ])('answers %s the same way at the guard and at the views', async (_who, accept, kind) => {
    const guarded = request(server).get('/me');
    const page = request(server).get('/accounts/login');
    if (accept) {
      guarded.set('Accept', accept);
      page.set('Accept', accept);
    }
    const [denied, login] = await Promise.all([guarded, page]);
    if (kind === 'html') {
      expect(denied.status).toBe(302);
      expect(login.headers['content-type']).toMatch(/^text\/html/);
    } else {
      expect(denied.status).toBe(401);
      expect(denied.headers['content-type']).toMatch(/^application\/json/);
      expect(login.headers['content-type']).toMatch(/^application\/json/);
    }
  });
});
