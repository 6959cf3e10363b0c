import { Injectable, Logger } from '@nestjs/common';
import { isProduction } from '../environment.js';
import type { PasswordResetEmailContext } from './templates.js';

/** An email the built-in views send (today: the password reset link). */
export interface AuthMail {
  kind: 'password_reset';
  /** The address stored on the user, never the one typed into the form. */
  to: string;
  /** One line: newlines are removed before the mailer sees it. */
  subject: string;
  text: string;
  /** The HTML part, when `views.passwordReset.htmlEmail` is on (send it as an alternative to `text`). */
  html?: string;
  /**
   * What the text was made from, for a mailer that renders its own template: the view's
   * `extraEmailContext` and the values below (which the extra context cannot replace).
   */
  context: PasswordResetEmailContext;
}

/**
 * Sends the emails of the built-in views. Give your own class as the `mailer` option (an
 * instance your app provides is used as such); it may return a promise. A failure is logged,
 * never shown to the visitor.
 */
export abstract class AuthMailer {
  abstract send(mail: AuthMail): void | Promise<void>;
}

/**
 * The default mailer writes each mail to the log, like Django's console email backend: good for
 * development, where the reset link can be copied from the terminal. In production
 * (`NODE_ENV=production`) it only logs that nothing was sent: whoever reads a log holding reset
 * links could take over those accounts. Give the `mailer` option to send real emails.
 */
@Injectable()
export class LoggingAuthMailer extends AuthMailer {
  private readonly logger = new Logger('AuthMailer');

  send(mail: AuthMail): void {
    if (isProduction()) {
      // The user id, decoded from the link's uid, says whom to help; the link itself stays out.
      const userId = Buffer.from(mail.context.uid, 'base64url').toString('utf8');
      this.logger.error(
        `No ${mail.kind} email was sent to user ${JSON.stringify(userId)}: no mailer is configured. ` +
          'Pass your AuthMailer as the mailer option of AuthModule.forRoot.',
      );
      return;
    }
    this.logger.log(`To: ${mail.to}\nSubject: ${mail.subject}\n\n${mail.text}`);
  }
}

export { isProduction } from '../environment.js';
