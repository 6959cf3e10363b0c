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
  add(@Req() req: Request, @Param('level') level: MessageLevel, @Body() body: { text: string; debug?: boolean }) {
    if (body.debug) messages.setLevel(req, 'debug');
    messages.add(req, level, body.text);
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
    await browser.get('/notes').expect(200, [{ level: 'success', text: 'Profile saved.' }]);
    await browser.get('/notes').expect(200, []);
  });

  it('keeps messages in the order they were added, each with its level', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/helpers/all').expect(200);
    await browser.get('/notes').expect(200, [
      { level: 'info', text: 'info' },
      { level: 'success', text: 'success' },
      { level: 'warning', text: 'warning' },
      { level: 'error', text: 'error' },
    ]);
  });

  it('drops debug messages unless the request lowers its level', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/debug').send({ text: 'dropped' }).expect(200);
    await browser.post('/notes/debug').send({ text: 'kept', debug: true }).expect(200);
    await browser.get('/notes').expect(200, [{ level: 'debug', text: 'kept' }]);
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
    expect(body.first).toEqual([{ level: 'warning', text: 'Careful.' }]);
    expect(body.second).toEqual(body.first);
    await browser.get('/notes').expect(200, []);
  });

  it('keeps a message added after the list was taken for the next request', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/info').send({ text: 'first' }).expect(200);
    await browser.get('/notes/list-then-add').expect(200, [{ level: 'info', text: 'first' }]);
    await browser.get('/notes').expect(200, [{ level: 'info', text: 'added after the list was shown' }]);
  });

  it('leaves messages alone on a request that does not list them', async () => {
    const browser = request.agent(server);
    await browser.post('/notes/info').send({ text: 'still here' }).expect(200);
    await browser.get('/whoami').expect(200);
    await browser.get('/notes').expect(200, [{ level: 'info', text: 'still here' }]);
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
    await browser.get('/notes').expect(200, [{ level: 'info', text: 'Please log in to continue.' }]);
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
    await dave.get('/notes').expect(200, [{ level: 'info', text: 'for dave' }]);
    await carol.get('/notes').expect(200, [{ level: 'info', text: 'for carol' }]);
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
      expect(messages.list(req)).toEqual([{ level: 'info', text: 'ok' }]);
      expect(messages.list(fakeRequest({ session: { _messages: 'garbage' } }))).toEqual([]);
    });
  });
});
