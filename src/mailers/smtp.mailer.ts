import { Injectable, Logger, type Type } from '@nestjs/common';
import nodemailer from 'nodemailer';
import { ImproperlyConfigured } from '../errors.js';
import { AuthMailer, type AuthMail } from '../views/auth-mailer.js';

/** How `SmtpMailer` reaches the mail server, and whom the mails come from. */
export interface SmtpMailerOptions {
  /**
   * nodemailer's transport: a URL (`smtps://user:password@smtp.example.com`,
   * `smtp://localhost:1025`) or its options object (`{ host, port, secure, auth }`).
   */
  transport: string | Record<string, unknown>;
  /** The sender (Django's `DEFAULT_FROM_EMAIL`), e.g. `'Example <no-reply@example.com>'`. */
  from: string;
}

const OPTIONS = Symbol('nestjs-session-auth:smtp-mailer-options');

/**
 * Sends the built-in views' emails over SMTP with nodemailer (`npm install nodemailer`), like
 * Django's SMTP email backend. `mailer: SmtpMailer` reads `SMTP_URL` and `MAIL_FROM` from the
 * environment at start-up and refuses to start without them; `SmtpMailer.configure({ transport,
 * from })` takes them as options. The text goes as the plain part, the HTML part (with
 * `htmlEmail`) as its alternative. A server that refuses the mail rejects `send`, which the
 * views log; the visitor sees the same answer either way. One connection per mail (no pool), so
 * nothing stays open when the app stops.
 */
@Injectable()
export class SmtpMailer extends AuthMailer {
  private readonly transporter: ReturnType<typeof nodemailer.createTransport>;
  private readonly from: string;
  private readonly logger = new Logger('SmtpMailer');

  constructor() {
    super();
    const options = (this.constructor as unknown as Record<symbol, SmtpMailerOptions | undefined>)[OPTIONS] ?? fromEnvironment();
    if (typeof options.from !== 'string' || !options.from.includes('@')) {
      throw new ImproperlyConfigured(`SmtpMailer needs a sender address (from, or MAIL_FROM); got ${JSON.stringify(options.from)}.`);
    }
    this.from = options.from;
    this.transporter = nodemailer.createTransport(options.transport as Parameters<typeof nodemailer.createTransport>[0]);
  }

  /** A mailer class with these options, for `AuthModule.forRoot({ mailer })`. */
  static configure(options: SmtpMailerOptions): Type<SmtpMailer> {
    @Injectable()
    class ConfiguredSmtpMailer extends SmtpMailer {}
    Object.defineProperty(ConfiguredSmtpMailer, OPTIONS, { value: options });
    return ConfiguredSmtpMailer;
  }

  async send(mail: AuthMail): Promise<void> {
    const info = await this.transporter.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    this.logger.log(`Sent a ${mail.kind} email (${String((info as { messageId?: unknown }).messageId ?? 'no message id')}).`);
  }
}

function fromEnvironment(): SmtpMailerOptions {
  const transport = process.env.SMTP_URL;
  if (!transport) {
    throw new ImproperlyConfigured(
      'SmtpMailer needs SMTP_URL (e.g. smtps://user:password@smtp.example.com) and MAIL_FROM in the environment, ' +
        'or its options: mailer: SmtpMailer.configure({ transport, from }).',
    );
  }
  return { transport, from: process.env.MAIL_FROM ?? '' };
}
