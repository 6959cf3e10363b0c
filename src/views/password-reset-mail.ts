import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Request } from 'express';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { ImproperlyConfigured } from '../errors.js';
import { LoginThrottle } from '../login-throttle.js';
import { PasswordResetTokens } from '../password-reset-tokens.js';
import { trustedHost } from '../request/hosts.js';
import { UserManager } from '../user.manager.js';
import { AuthMailer, LoggingAuthMailer, type AuthMail } from './auth-mailer.js';
import { ViewTemplates } from './view-http.js';
import { AUTH_VIEW_OPTIONS, type ResolvedViewOptions } from './view-options.js';
import { passwordResetConfirmPath } from './view-paths.js';

/** A user's id in a reset link: the unpadded base64url of its primary key (Django's `urlsafe_base64_encode`). */
export function encodeUid(user: { id?: unknown; pk?: unknown }): string {
  return Buffer.from(String(user.id ?? user.pk), 'utf8').toString('base64url');
}

/** The primary key a link's `uidb64` names; `null` for anything but the canonical spelling (one account, one link text). */
export function decodeUid(uidb64: unknown): string | null {
  if (typeof uidb64 !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(uidb64)) return null;
  const id = Buffer.from(uidb64, 'base64url').toString('utf8');
  return Buffer.from(id, 'utf8').toString('base64url') === uidb64 ? id : null;
}

/**
 * The password reset email (Django's `PasswordResetForm.save`/`send_mail`): who gets it, the link,
 * the templates, and the mailer (the `mailer` option, resolved once at start-up).
 */
@Injectable()
export class PasswordResetMail implements OnModuleInit {
  private readonly logger = new Logger('AuthViews');
  private mailer: AuthMailer = new LoggingAuthMailer();
  private readonly templates: ViewTemplates;

  constructor(
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    @Inject(AUTH_VIEW_OPTIONS) private readonly options: ResolvedViewOptions,
    private readonly users: UserManager<any>,
    private readonly tokens: PasswordResetTokens,
    private readonly throttle: LoginThrottle,
    private readonly moduleRef: ModuleRef,
  ) {
    this.templates = new ViewTemplates(options);
  }

  async onModuleInit(): Promise<void> {
    const type = this.config.mailer;
    if (!type) {
      if (this.config.production) {
        this.logger.warn(
          'The built-in views are on without a mailer: password reset emails will not be sent, and the ' +
            'default mailer will not log their links in production. Pass your AuthMailer as the mailer option.',
        );
      }
      return;
    }
    let mailer: AuthMailer | undefined;
    try {
      mailer = this.moduleRef.get(type, { strict: false });
    } catch {
      mailer = await this.moduleRef.create(type);
    }
    if (typeof mailer?.send !== 'function') {
      throw new ImproperlyConfigured(`The mailer ${type.name} must have a send(mail) method.`);
    }
    this.mailer = mailer;
  }

  /**
   * Mail a link to everyone `usersForPasswordReset` finds. Never throws and takes no branch the
   * visitor can see: whatever the host and the address, the view answers with the same redirect
   * (CVE-2024-45231), and failures are only logged.
   */
  async send(request: Request, email: string): Promise<void> {
    try {
      if (!(await this.throttle.allowResetEmail(request, email))) {
        this.logger.warn('A password reset email was not sent: too many requests for this address or from this client.');
        return;
      }
      const users = await this.users.usersForPasswordReset(email);
      if (users.length === 0) return;
      const origin = this.linkOrigin(request);
      if (!origin) {
        this.logger.error(
          'No password reset email was sent: set the siteUrl option (e.g. https://example.com), or list the ' +
            `host in allowedHosts. Links in emails are never built from a Host header that is not allowed (got ${JSON.stringify(request.headers.host ?? '')}).`,
        );
        return;
      }
      for (const user of users) this.deliver(this.mailFor(user, origin));
    } catch (error) {
      this.logger.error(`Preparing the password reset email failed: ${(error as Error)?.message ?? error}`);
    }
  }

  private mailFor(user: any, origin: string): AuthMail {
    const uid = encodeUid(user);
    const token = this.tokens.make(user);
    const resetUrl = `${origin}${passwordResetConfirmPath(uid, token)}`;
    // The extra context comes first: it can add values, never replace the link or the user.
    const context = {
      ...this.options.passwordReset.extraEmailContext,
      user,
      username: String(user.username ?? ''),
      uid,
      token,
      resetUrl,
      siteName: new URL(origin).host,
    };
    const { subject, text } = this.templates.email(context);
    const mail: AuthMail = { kind: 'password_reset', to: user.email, subject, text, context };
    if (this.options.passwordReset.htmlEmail) {
      mail.html = this.templates.render('passwordResetHtmlEmail', context);
    }
    return mail;
  }

  /**
   * Where links in emails point: the `siteUrl` option, or else the host the request was sent to
   * when `allowedHosts` allows it (by default only localhost and the loopback addresses, outside
   * production). An attacker chooses the Host header of their own requests.
   */
  private linkOrigin(request: Request): string | null {
    if (this.config.siteUrl) return this.config.siteUrl;
    const host = trustedHost(request, this.config.allowedHosts);
    return host ? `${request.protocol}://${host}` : null;
  }

  /**
   * The mail goes out without holding up the answer, so the response time does not tell
   * whether an address is registered; a failure is logged, never shown.
   */
  private deliver(mail: AuthMail): void {
    Promise.resolve()
      .then(() => this.mailer.send(mail))
      .catch((error: unknown) => this.logger.error(`Sending the password reset email failed: ${(error as Error)?.message ?? error}`));
  }
}
