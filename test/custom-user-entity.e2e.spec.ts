import request from 'supertest';
import { ModelBackend, UserManager } from 'nestjs-session-auth';
import { SESSION_KEY, SessionHandler } from './support/internals.js';
import { Member } from './support/member.entity.js';
import { createTestApp, logIn, type TestApp } from './support/test-app.js';

describe('a custom user entity (option userEntity)', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp({ auth: { backends: [ModelBackend], userEntity: Member }, entities: [Member] });
  });
  afterEach(() => t.close());

  it('creates, logs in and resolves users of that entity, with UUID keys stored as strings', async () => {
    const users = t.app.get(UserManager) as unknown as UserManager<Member>;
    const member = await users.createUser({ username: 'mia', password: 'correct horse', plan: 'pro' });
    expect(member).toBeInstanceOf(Member);
    expect(member.id).toMatch(/^[0-9a-f-]{36}$/);
    const cookie = await logIn(t.app, 'mia', 'correct horse');
    await request(t.app.getHttpServer()).get('/me').set('Cookie', cookie).expect(200, { username: 'mia', backend: 'ModelBackend' });
    expect((await users.findById(member.id))!.lastLogin).not.toBeNull();
  });

  it('never loads a member for an id that is not a UUID', async () => {
    const users = t.app.get(UserManager) as unknown as UserManager<Member>;
    await users.createUser({ username: 'mia', password: 'pw' });
    for (const id of ['1', '', 'not-a-uuid', '00000000-0000-0000-0000-00000000000g']) {
      expect(await t.sql.during(async () => expect(await users.findById(id)).toBeNull())).toEqual([]);
    }
  });

  it('keeps the id in the session as the UUID string', async () => {
    const users = t.app.get(UserManager) as unknown as UserManager<Member>;
    const member = await users.createUser({ username: 'mia', password: 'pw' });
    const req: any = { headers: {} };
    t.app.get(SessionHandler).attach(req, {} as any);
    await t.auth.login(req, member);
    expect(req.session[SESSION_KEY]).toBe(member.id);
  });
});
