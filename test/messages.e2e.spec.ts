import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ImproperlyConfigured, SessionRecord } from 'nestjs-session-auth';
import { messages, type MessageLevel } from 'nestjs-session-auth/messages';
import { createTestApp, PagesController, sessionCookie, type TestApp } from './support/test-app.js';

@Controller('notes')
class NotesController {
  @Post(':level')
  @HttpCode(200)
  add(
    @Req() req: Request,
    @Param('level') level: string,
    @Body() body: { text: string; debug?: boolean; minimum?: number; extraTags?: string },
  ) {
    if (body.debug) messages.setLevel(req, 'debug');
    if (body.minimum !== undefined) messages.setLevel(req, body.minimum);
    messages.add(req, /^\d+$/.test(level) ? Number(level) : level, body.text, { extraTags: body.extraTags });
    return {};
  }

  @Get()
  list(@Req() req: Request) {
    return messages.list(req);
  }

  @Get('twice')
  twice(@Req() req: Request) {
    const first = messages.list(req);
    const second = messages.list(req);
    return { first, second };
  }

  @Get('list-then-add')
  listThenAdd(@Req() req: Request) {
    const shown = messages.list(req);
    messages.info(req, 'added after the list was shown');
    return shown;
  }

  @Post('helpers/all')
  @HttpCode(200)
  helpers(@Req() req: Request) {
    messages.debug(req, 'debug');
    messages.info(req, 'info');
    messages.success(req, 'success');
    messages.warning(req, 'warning');
    messages.error(req, 'error');
    return {};
  }
}

describe('flash messages (session storage)', () => {
  let t: TestApp;
  let server: any;

  beforeEach(async () => {
    t = await createTestApp({ controllers: [PagesController, NotesController] });
    server = t.app.getHttpServer();
  });
  afterEach(() => t.close());

  const sessionRows = () => t.app.get(DataSource).getRepository(SessionRecord).count({ where: { revoked: false } });

  it('shows a message on the next request, once', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/success').send({ text: 'Profile saved.' }).expect(200);
    await browser.get('/notes').expect(200, [{ level: 'success', levelValue: 25, text: 'Profile saved.', extraTags: '', tags: 'success' }]);
    await browser.get('/notes').expect(200, []);
  });

  it('keeps messages in the order they were added, each with its level', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/helpers/all').expect(200);
    await browser.get('/notes').expect(200, [
      { level: 'info', levelValue: 20, text: 'info', extraTags: '', tags: 'info' },
      { level: 'success', levelValue: 25, text: 'success', extraTags: '', tags: 'success' },
      { level: 'warning', levelValue: 30, text: 'warning', extraTags: '', tags: 'warning' },
      { level: 'error', levelValue: 40, text: 'error', extraTags: '', tags: 'error' },
    ]);
  });

  it('drops debug messages unless the request lowers its level', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/debug').send({ text: 'dropped' }).expect(200);
    await browser.post('/notes/debug').send({ text: 'kept', debug: true }).expect(200);
    await browser.get('/notes').expect(200, [{ level: 'debug', levelValue: 10, text: 'kept', extraTags: '', tags: 'debug' }]);
  });

  it('ignores an empty message and stores no session for it', async () => {
    const response = await request(server).post('/notes/info').send({ text: '' }).expect(200);
    expect(sessionCookie(response.headers['set-cookie'])).toBeUndefined();
    expect(await sessionRows()).toBe(0);
  });

  it('gives the same list when asked twice in one request', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/warning').send({ text: 'Careful.' }).expect(200);
    const { body } = await browser.get('/notes/twice').expect(200);
    expect(body.first).toEqual([{ level: 'warning', levelValue: 30, text: 'Careful.', extraTags: '', tags: 'warning' }]);
    expect(body.second).toEqual(body.first);
    await browser.get('/notes').expect(200, []);
  });

  it('keeps a message added after the list was taken for the next request', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/info').send({ text: 'first' }).expect(200);
    await browser.get('/notes/list-then-add').expect(200, [{ level: 'info', levelValue: 20, text: 'first', extraTags: '', tags: 'info' }]);
    await browser.get('/notes').expect(200, [{ level: 'info', levelValue: 20, text: 'added after the list was shown', extraTags: '', tags: 'info' }]);
  });

  it('leaves messages alone on a request that does not list them', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/info').send({ text: 'still here' }).expect(200);
    await browser.get('/whoami').expect(200);
    await browser.get('/notes').expect(200, [{ level: 'info', levelValue: 20, text: 'still here', extraTags: '', tags: 'info' }]);
  });

  it('costs nothing for a visitor without a session: an empty list, no cookie, no row', async () => {
    const response = await request(server).get('/notes').expect(200, []);
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(await sessionRows()).toBe(0);
  });

  it('keeps messages queued before login, as login keeps anonymous session data', async () => {
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    const browser = request.agent(server);
    await browser.post('/notes/info').send({ text: 'Please log in to continue.' }).expect(200);
    await browser.post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    await browser.get('/notes').expect(200, [{ level: 'info', levelValue: 20, text: 'Please log in to continue.', extraTags: '', tags: 'info' }]);
  });

  it('forgets them at logout, which deletes the session', async () => {
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    const browser = request.agent(server);
    await browser.post('/login').send({ username: 'carol', password: 'correct horse' }).expect(200);
    await browser.post('/notes/info').send({ text: 'private to carol' }).expect(200);
    await browser.post('/logout').expect(200);
    await browser.get('/notes').expect(200, []);
  });

  it('keeps one visitor’s messages away from another', async () => {
    const carol = request.agent(server);
    const dave = request.agent(server);
    await carol.post('/notes/info').send({ text: 'for carol' }).expect(200);
    await dave.post('/notes/info').send({ text: 'for dave' }).expect(200);
    await dave.get('/notes').expect(200, [{ level: 'info', levelValue: 20, text: 'for dave', extraTags: '', tags: 'info' }]);
    await carol.get('/notes').expect(200, [{ level: 'info', levelValue: 20, text: 'for carol', extraTags: '', tags: 'info' }]);
  });

  describe('custom levels and extra tags (Django’s numeric levels, MESSAGE_TAGS and extra_tags)', () => {
    afterEach(() => messages.defineLevel('error', 40));

    it('carries extra tags before the level’s tag, ready for a class attribute', async () => {
      const browser = request.agent(server);
      await browser.post('/notes/warning').send({ text: 'Disk almost full.', extraTags: 'sticky storage' }).expect(200);
      await browser
        .get('/notes')
        .expect(200, [{ level: 'warning', levelValue: 30, text: 'Disk almost full.', extraTags: 'sticky storage', tags: 'sticky storage warning' }]);
    });

    it('takes numeric levels: a built-in one by its number, a custom one with the tag defineLevel gave it', async () => {
      messages.defineLevel('critical', 50);
      const browser = request.agent(server);
      await browser.post('/notes/25').send({ text: 'Saved.' }).expect(200);
      await browser.post('/notes/50').send({ text: 'Meltdown.' }).expect(200);
      await browser.post('/notes/critical').send({ text: 'By name.' }).expect(200);
      await browser.post('/notes/35').send({ text: 'No tag.' }).expect(200);
      const { body } = await browser.get('/notes').expect(200);
      expect(body.map((message: any) => [message.levelValue, message.level, message.tags])).toEqual([
        [25, 'success', 'success'],
        [50, 'critical', 'critical'],
        [50, 'critical', 'critical'],
        [35, '', ''],
      ]);
    });

    it('gives a built-in level another tag (MESSAGE_TAGS = {ERROR: "danger"}), the name still accepted', async () => {
      messages.defineLevel('danger', 40);
      const browser = request.agent(server);
      await browser.post('/notes/error').send({ text: 'Failed.' }).expect(200);
      await browser.get('/notes').expect(200, [{ level: 'danger', levelValue: 40, text: 'Failed.', extraTags: '', tags: 'danger' }]);
    });

    it('drops messages under a numeric minimum level', async () => {
      const browser = request.agent(server);
      await browser.post('/notes/25').send({ text: 'dropped', minimum: 26 }).expect(200);
      await browser.post('/notes/30').send({ text: 'kept', minimum: 26 }).expect(200);
      const { body } = await browser.get('/notes').expect(200);
      expect(body.map((message: any) => message.text)).toEqual(['kept']);
    });

    it('refuses level names that are not words, levels that are not integers and extra tags that are not short text', () => {
      expect(() => messages.defineLevel('<b>', 50)).toThrow(TypeError);
      expect(() => messages.defineLevel('critical', 50.5)).toThrow(TypeError);
      const req = { headers: {}, session: {}, sessionStore: {} } as unknown as Request;
      expect(() => messages.add(req, 20.5, 'x')).toThrow(/Unknown message level/);
      expect(() => messages.add(req, 'info', 'x', { extraTags: 42 as never })).toThrow(TypeError);
      expect(() => messages.add(req, 'info', 'x', { extraTags: 'x'.repeat(201) })).toThrow(TypeError);
      expect((req as any).session._messages).toBeUndefined();
    });
  });

  describe('misuse is a clear error', () => {
    const fakeRequest = (extra: object = {}) => ({ headers: {}, ...extra }) as unknown as Request;

    it('an unknown level', () => {
      expect(() => messages.add(fakeRequest({ session: {}, sessionStore: {} }), 'fatal' as MessageLevel, 'x')).toThrow(
        /Unknown message level 'fatal'/,
      );
    });

    it('a text that is not a string', () => {
      expect(() => messages.info(fakeRequest({ session: {}, sessionStore: {} }), { html: '<b>' } as any)).toThrow(TypeError);
    });

    it('something that is not a request', () => {
      expect(() => messages.info('not a request' as any, 'x')).toThrow(/needs the request/);
    });

    it('a request without any session middleware', () => {
      expect(() => messages.info(fakeRequest(), 'x')).toThrow(ImproperlyConfigured);
    });

    it('listing without a session is simply empty', () => {
      expect(messages.list(fakeRequest())).toEqual([]);
    });

    it('session data that is not a message list is ignored', () => {
      const req = fakeRequest({ session: { _messages: [{ level: 'info', text: 'ok' }, { level: 'evil', text: 1 }, 'x'] } });
      expect(messages.list(req)).toEqual([{ level: 'info', levelValue: 20, text: 'ok', extraTags: '', tags: 'info' }]);
      expect(messages.list(fakeRequest({ session: { _messages: 'garbage' } }))).toEqual([]);
    });
  });
});
