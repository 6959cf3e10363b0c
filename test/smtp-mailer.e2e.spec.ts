import { createServer, type Server } from 'node:net';
import request from 'supertest';
import { ImproperlyConfigured } from 'nestjs-session-auth';
import { SmtpMailer } from 'nestjs-session-auth/mailers';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * `SmtpMailer` (nestjs-session-auth/mailers) sends the password reset mail to a real SMTP server:
 * a small one in this process, which speaks just enough SMTP for nodemailer and keeps what it is
 * given.
 */

interface Received {
  from: string;
  to: string[];
  data: string;
}

class SmtpSink {
  readonly messages: Received[] = [];
  private readonly server: Server;
  private waiting: (() => void)[] = [];

  constructor(private readonly refuseRecipients = false) {
    this.server = createServer((socket) => {
      let buffer = '';
      let inData = false;
      let message: Received = { from: '', to: [], data: '' };
      const reply = (line: string) => socket.write(`${line}\r\n`);
      reply('220 localhost ESMTP sink');
      socket.on('data', (chunk) => {
        buffer += chunk.toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (inData) {
            if (line === '.') {
              inData = false;
              this.messages.push(message);
              message = { from: '', to: [], data: '' };
              reply('250 2.0.0 queued as 1');
              for (const wake of this.waiting.splice(0)) wake();
            } else {
              message.data += `${line.startsWith('..') ? line.slice(1) : line}\n`;
            }
            continue;
          }
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === 'EHLO' || verb === 'HELO') reply('250 localhost');
          else if (verb === 'MAIL') (message.from = line.slice(10)), reply('250 2.1.0 ok');
          else if (verb === 'RCPT') {
            if (this.refuseRecipients) reply('550 5.1.1 no such user');
            else (message.to.push(line.slice(8)), reply('250 2.1.5 ok'));
          } else if (verb === 'DATA') (inData = true), reply('354 go ahead');
          else if (verb === 'RSET') reply('250 ok');
          else if (verb === 'QUIT') (reply('221 bye'), socket.end());
          else reply('502 not implemented');
        }
      });
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)));
  }

  /** Resolves once `count` messages have arrived. */
  async received(count = 1): Promise<Received[]> {
    while (this.messages.length < count) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return this.messages;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const HTML = 'text/html,application/xhtml+xml';

/** Ask for carol's reset link the way a browser does; resolves the answer's redirect. */
async function requestReset(app: TestApp, email = 'carol@example.com'): Promise<string> {
  const browser = request.agent(app.app.getHttpServer());
  const page = await browser.get('/accounts/password_reset').set('Accept', HTML).expect(200);
  const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
  const answer = await browser.post('/accounts/password_reset').type('form').send({ email, csrfmiddlewaretoken: token }).expect(302);
  return answer.headers.location;
}

describe('SmtpMailer', () => {
  let sink: SmtpSink;
  let port: number;
  let t: TestApp | undefined;

  beforeEach(async () => {
    sink = new SmtpSink();
    port = await sink.listen();
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await sink.close();
    delete process.env.SMTP_URL;
    delete process.env.MAIL_FROM;
  });

  async function boot(mailer: unknown): Promise<TestApp> {
    t = await createTestApp({ auth: { views: true, siteUrl: 'https://example.com', mailer: mailer as any } });
    await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
    return t;
  }

  it('sends the reset link over SMTP to the stored address, from the configured sender', async () => {
    const app = await boot(SmtpMailer.configure({ transport: `smtp://127.0.0.1:${port}`, from: 'Example <no-reply@example.com>' }));

    expect(await requestReset(app)).toBe('/accounts/password_reset/done');
    const [mail] = await sink.received();

    expect(mail.from).toBe('<no-reply@example.com>');
    expect(mail.to).toEqual(['<carol@example.com>']);
    expect(mail.data).toMatch(/^From: Example <no-reply@example\.com>$/m);
    expect(mail.data).toMatch(/^To: carol@example\.com$/m);
    expect(mail.data).toMatch(/^Subject: .*[Pp]assword reset/m);
    expect(mail.data.replace(/=\n/g, '')).toMatch(/https:\/\/example\.com\/accounts\/reset\/[\w-]+\/[\w-]+/);
  });

  it('reads SMTP_URL and MAIL_FROM from the environment when given as it is (mailer: SmtpMailer)', async () => {
    process.env.SMTP_URL = `smtp://127.0.0.1:${port}`;
    process.env.MAIL_FROM = 'no-reply@example.com';
    const app = await boot(SmtpMailer);

    await requestReset(app);

    expect((await sink.received())[0].to).toEqual(['<carol@example.com>']);
  });

  it('refuses to start without SMTP_URL, saying what to set', async () => {
    await expect(boot(SmtpMailer)).rejects.toThrow(ImproperlyConfigured);
    await expect(boot(SmtpMailer)).rejects.toThrow(/SmtpMailer needs SMTP_URL .* and MAIL_FROM/);
  });

  it('refuses a sender that is no address', async () => {
    await expect(boot(SmtpMailer.configure({ transport: `smtp://127.0.0.1:${port}`, from: 'nobody' }))).rejects.toThrow(/needs a sender address/);
  });

  it('gives the visitor the same answer when the server refuses the mail, and sends nothing for an unknown address', async () => {
    const refusing = new SmtpSink(true);
    const refusingPort = await refusing.listen();
    try {
      const app = await boot(SmtpMailer.configure({ transport: `smtp://127.0.0.1:${refusingPort}`, from: 'no-reply@example.com' }));
      expect(await requestReset(app)).toBe('/accounts/password_reset/done');
      expect(await requestReset(app, 'nobody@example.com')).toBe('/accounts/password_reset/done');
      expect(refusing.messages).toEqual([]);
    } finally {
      await refusing.close();
    }
  });
});
