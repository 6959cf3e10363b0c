/** `nestjs-session-auth/mailers`: `SmtpMailer`, the built-in views' emails over SMTP (needs the `nodemailer` package). */
export { SmtpMailer, type SmtpMailerOptions } from '../mailers/smtp.mailer.js';
