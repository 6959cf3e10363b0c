import { jest } from '@jest/globals';
import { Injectable, Logger } from '@nestjs/common';
import request from 'supertest';
import { AuthMailer, type AuthMail } from 'nestjs-session-auth/views';
import { createTestApp, type TestApp } from './support/test-app.js';
import { withNodeEnv } from './support/environment.js';

/**
 * The default mailer writes mails to the log, which is what a developer wants (the reset link is
 * copied from the terminal) and what an attacker with access to production logs wants too: a
 * live reset link is an account takeover. In production it logs only that nothing was sent.
 */

const HTML = 'text/html,application/xhtml+xml';
const LEVELS = ['log', 'error', 'warn', 'debug', 'verbose', 'fatal'] as const;

/** Every line any Nest logger writes while `work` runs, by level. */
async function captureLogs(work: () => Promise<void>): Promise<{ level: string; text: string }[]> {
  const lines: { level: string; text: string }[] = [];
  const spies = LEVELS.map((level) =>
    jest.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => {
      lines.push({ level, text: String(message) });
    }),
  );
  try {
    await work();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return lines;
}

describe('the default mailer (LoggingAuthMailer)', () => {
  let t: TestApp | undefined;
  let carol: any;

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function boot(auth: Record<string, unknown> = {}): Promise<TestApp> {
    t = await createTestApp({ auth: { views: true, ...auth } });
    carol = await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
    return t;
  }

  /** Ask for a reset link for carol, and let the mail (sent after the answer) go out. */
  async function requestReset(app: TestApp): Promise<void> {
    const browser = request.agent(app.app.getHttpServer());
    const page = await browser.get('/accounts/password_reset').set('Accept', HTML).expect(200);
    const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
    await browser.post('/accounts/password_reset').type('form').send({ email: 'carol@example.com', csrfmiddlewaretoken: token }).expect(302);
    await new Promise((resolve) => setImmediate(resolve));
  }

  it('logs the reset link in development, for the developer to copy', async () => {
    const app = await boot();
    const lines = await captureLogs(() => requestReset(app));
    expect(lines).toContainEqual({ level: 'log', text: expect.stringMatching(/^To: carol@example\.com\n.*http:\/\/127\.0\.0\.1:\d+\/accounts\/reset\/[\w-]+\/[\w-]+/s) });
  });

  it('never logs the link or its token in production, only that no email was sent and to which user id', async () => {
    const app = await boot();
    const lines = await captureLogs(() => withNodeEnv('production', () => requestReset(app)));

    const all = lines.map((line) => line.text).join('\n');
    expect(all).not.toMatch(/\/accounts\/reset\//);
    expect(all).not.toContain('carol@example.com');
    expect(lines).toContainEqual({
      level: 'error',
      text: `No password_reset email was sent to user "${carol.id}": no mailer is configured. Pass your AuthMailer as the mailer option of AuthModule.forRoot.`,
    });
  });

  it('warns once at start-up when the views run in production without a mailer', async () => {
    const lines = await captureLogs(() => withNodeEnv('production', async () => void (await boot({ siteUrl: 'https://example.com' }))));
    const warnings = lines.filter((line) => line.level === 'warn');
    expect(warnings).toEqual([{ level: 'warn', text: expect.stringContaining('The built-in views are on without a mailer') }]);
  });

  it('gives no such warning with a mailer, nor in development', async () => {
    @Injectable()
    class OwnMailer extends AuthMailer {
      send(_mail: AuthMail): void {}
    }
    const withMailer = await captureLogs(() => withNodeEnv('production', async () => void (await boot({ mailer: OwnMailer, siteUrl: 'https://example.com' }))));
    await t!.close();
    const development = await captureLogs(async () => void (await boot()));
    expect([...withMailer, ...development].filter((line) => line.level === 'warn')).toEqual([]);
  });
});
