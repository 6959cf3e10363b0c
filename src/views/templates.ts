import { createHash } from 'node:crypto';
import { html, SafeHtml } from './html.js';

/**
 * The built-in views' pages and emails: small, self-contained HTML with no script and inline
 * styles only, written with the `html` tag (every value escaped). An app replaces any of them
 * with the `views.templates` option; a template is a function of the context below.
 */

/** Errors of one form: `form` for the whole form, the others keyed by field name. */
export type FormErrors = Partial<Record<string, string[]>> & { form?: string[] };

/** Every form page: where it posts, the CSRF token to send back, and its errors. */
export interface FormPage {
  action: string;
  csrfToken: string;
  /** The name of the hidden field the token goes in. */
  csrfFieldName: string;
  errors: FormErrors;
}

export interface LoginPage extends FormPage {
  /** The hidden field carrying `next` (`''`: none). */
  redirectFieldName: string;
  next: string;
  username: string;
  passwordResetUrl: string;
  /** Whether the form offers "Remember me" (`views.login.rememberMe`), and whether it is ticked. */
  rememberMe: boolean;
  remembered: boolean;
  /**
   * "Log in with …" buttons, one per backend with a `loginButton` (each OpenID Connect provider): each a form
   * that POSTs `provider` (and `next`) to `action` with the CSRF token, since a login must not
   * start from a mere link another site could follow.
   */
  providers: { label: string; provider: string; action: string }[];
}

export interface PasswordChangePage extends FormPage {
  /** Where the "log out my other devices" form posts. */
  otherSessionsAction: string;
}

export interface PasswordResetPage extends FormPage {
  email: string;
}

/** What the reset email is made from, plus the view's `extraEmailContext`. */
export interface PasswordResetEmailContext extends Record<string, unknown> {
  user: unknown;
  username: string;
  uid: string;
  token: string;
  resetUrl: string;
  siteName: string;
}

/** The templates of the built-in views; `views.templates` replaces any of them. */
export interface AuthTemplates {
  login(page: LoginPage): SafeHtml;
  loggedOut(page: { loginUrl: string }): SafeHtml;
  passwordChange(page: PasswordChangePage): SafeHtml;
  passwordChangeDone(page: Record<string, never>): SafeHtml;
  /** After "Log out my other devices": how many sessions ended. */
  otherSessionsLoggedOut(page: { count: number; passwordChangeUrl: string }): SafeHtml;
  passwordReset(page: PasswordResetPage): SafeHtml;
  passwordResetDone(page: Record<string, never>): SafeHtml;
  passwordResetConfirm(page: FormPage): SafeHtml;
  passwordResetInvalid(page: { passwordResetUrl: string }): SafeHtml;
  passwordResetComplete(page: { loginUrl: string }): SafeHtml;
  csrfFailure(page: Record<string, never>): SafeHtml;
  methodNotAllowed(page: { allow: string }): SafeHtml;
  /** The reset email's subject (one line) and plain text; nothing in it is HTML-escaped. */
  passwordResetEmail(context: PasswordResetEmailContext): { subject: string; text: string };
  /** The reset email's HTML part, sent when `views.passwordReset.htmlEmail` is on. */
  passwordResetHtmlEmail(context: PasswordResetEmailContext): SafeHtml;
}

interface InputField {
  name: string;
  label: string;
  type: 'text' | 'password' | 'email';
  autocomplete: string;
  value?: string;
  maxLength?: number;
  autofocus?: boolean;
}

const STYLE = `
body { font: 16px/1.5 system-ui, sans-serif; color: #1a1a1a; background: #f6f7f9; margin: 0; }
main { max-width: 26rem; margin: 4rem auto; padding: 2rem; background: #fff; border-radius: 8px;
       box-shadow: 0 1px 4px rgba(0, 0, 0, .1); }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input[type=text], input[type=password], input[type=email] { width: 100%; box-sizing: border-box;
       padding: .5rem; font: inherit; border: 1px solid #b8bcc4; border-radius: 4px; }
label.check { font-weight: normal; }
p { margin: 0 0 1rem; }
button { font: inherit; padding: .5rem 1.25rem; border: 0; border-radius: 4px; background: #2457c5; color: #fff;
         cursor: pointer; }
.errorlist { color: #a4161a; margin: .25rem 0 1rem; padding-left: 1.25rem; }
.help { color: #555; font-size: .9rem; }
`;

/** Lets the pages' Content-Security-Policy allow exactly this stylesheet and no other inline code. */
export const STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/** The built-in pages' layout, for a template of your own that keeps their look. */
export function layout(title: string, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title}</title>
<style>${new SafeHtml(STYLE)}</style>
</head>
<body>
<main>
<h1>${title}</h1>
${body}
</main>
</body>
</html>
`;
}

function errorList(messages: string[] | undefined, id?: string): SafeHtml | null {
  if (!messages || messages.length === 0) return null;
  return html`<ul class="errorlist"${id ? html` id="${id}"` : null} role="alert">${messages.map((message) => html`<li>${message}</li>`)}</ul>`;
}

function input(field: InputField, errors: FormErrors): SafeHtml {
  const id = `id_${field.name}`;
  const fieldErrors = errors[field.name];
  const invalid = fieldErrors && fieldErrors.length > 0;
  const attributes = [
    html`type="${field.type}"`,
    html`name="${field.name}"`,
    html`id="${id}"`,
    html`autocomplete="${field.autocomplete}"`,
    html`required`,
    field.maxLength ? html`maxlength="${field.maxLength}"` : null,
    field.autofocus ? html`autofocus` : null,
    field.value !== undefined && field.type !== 'password' ? html`value="${field.value}"` : null,
    invalid ? html`aria-invalid="true" aria-describedby="${id}_error"` : null,
  ].filter((attribute): attribute is SafeHtml => attribute !== null);
  return html`<p><label for="${id}">${field.label}</label><input ${joined(attributes, ' ')}>${errorList(fieldErrors, `${id}_error`)}</p>`;
}

function form(page: FormPage, fields: (SafeHtml | null)[], button: string, hidden: SafeHtml | null = null): SafeHtml {
  return html`<form method="post" action="${page.action}">
<input type="hidden" name="${page.csrfFieldName}" value="${page.csrfToken}">${hidden}
${joined(fields, '\n')}
<p><button type="submit">${button}</button></p>
</form>`;
}

function joined(parts: (SafeHtml | null)[], separator: string): SafeHtml {
  return new SafeHtml(parts.filter((part): part is SafeHtml => part !== null).join(separator));
}

function link(href: string, text: string): SafeHtml {
  return html`<a href="${href}">${text}</a>`;
}

const newPasswordFields = (errors: FormErrors) => [
  input({ name: 'new_password1', label: 'New password', type: 'password', autocomplete: 'new-password' }, errors),
  input({ name: 'new_password2', label: 'New password confirmation', type: 'password', autocomplete: 'new-password' }, errors),
];

/** Django's templates, as small pages of the module's own look. */
export const builtInTemplates: AuthTemplates = {
  login(page) {
    const hidden = page.redirectFieldName ? html`\n<input type="hidden" name="${page.redirectFieldName}" value="${page.next}">` : null;
    const fields = [
      errorList(page.errors.form),
      input({ name: 'username', label: 'Username', type: 'text', autocomplete: 'username', value: page.username, maxLength: 254, autofocus: true }, page.errors),
      input({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' }, page.errors),
      page.rememberMe
        ? html`<p><label class="check"><input type="checkbox" name="remember_me" value="on"${page.remembered ? html` checked` : null}> Remember me</label></p>`
        : null,
    ];
    const providers = page.providers.map(
      (provider) => html`\n<form class="provider" method="post" action="${provider.action}">
<input type="hidden" name="${page.csrfFieldName}" value="${page.csrfToken}">
<input type="hidden" name="provider" value="${provider.provider}">${hidden}
<p><button type="submit">Log in with ${provider.label}</button></p>
</form>`,
    );
    return layout('Log in', html`${form(page, fields, 'Log in', hidden)}${providers}
<p class="help">${link(page.passwordResetUrl, 'Forgotten your password?')}</p>`);
  },

  loggedOut(page) {
    return layout('Logged out', html`<p>You have been logged out.</p>
<p>${link(page.loginUrl, 'Log in again')}</p>`);
  },

  passwordChange(page) {
    const fields = [
      errorList(page.errors.form),
      input({ name: 'old_password', label: 'Old password', type: 'password', autocomplete: 'current-password', autofocus: true }, page.errors),
      ...newPasswordFields(page.errors),
    ];
    return layout(
      'Password change',
      html`<p>Please enter your old password, for security’s sake, and then enter your new password twice so we can verify you typed it in correctly.</p>
${form(page, fields, 'Change my password')}
<form method="post" action="${page.otherSessionsAction}">
<input type="hidden" name="${page.csrfFieldName}" value="${page.csrfToken}">
<p class="help">Signed in somewhere you no longer use? <button type="submit">Log out my other devices</button></p>
</form>`,
    );
  },

  passwordChangeDone() {
    return layout('Password change successful', html`<p>Your password was changed.</p>`);
  },

  otherSessionsLoggedOut(page) {
    const sessions = page.count === 1 ? 'One other session was' : `${page.count} other sessions were`;
    return layout('Other devices logged out', html`<p>${sessions} logged out. This one stays logged in.</p>
<p>${link(page.passwordChangeUrl, 'Back to password change')}</p>`);
  },

  passwordReset(page) {
    const fields = [
      errorList(page.errors.form),
      input({ name: 'email', label: 'Email address', type: 'email', autocomplete: 'email', value: page.email, maxLength: 254, autofocus: true }, page.errors),
    ];
    return layout(
      'Password reset',
      html`<p>Forgotten your password? Enter your email address below, and we’ll email instructions for setting a new one.</p>
${form(page, fields, 'Reset my password')}`,
    );
  },

  passwordResetDone() {
    return layout(
      'Password reset sent',
      html`<p>We’ve emailed you instructions for setting your password, if an account exists with the email you entered. You should receive them shortly.</p>
<p>If you don’t receive an email, please make sure you’ve entered the address you registered with, and check your spam folder.</p>`,
    );
  },

  passwordResetConfirm(page) {
    return layout(
      'Enter new password',
      html`<p>Please enter your new password twice so we can verify you typed it in correctly.</p>
${form(page, [errorList(page.errors.form), ...newPasswordFields(page.errors)], 'Change my password')}`,
    );
  },

  passwordResetInvalid(page) {
    return layout(
      'Password reset unsuccessful',
      html`<p>The password reset link was invalid, possibly because it has already been used. Please request a new password reset.</p>
<p>${link(page.passwordResetUrl, 'Request a new link')}</p>`,
    );
  },

  passwordResetComplete(page) {
    return layout('Password reset complete', html`<p>Your password has been set. You may go ahead and log in now.</p>
<p>${link(page.loginUrl, 'Log in')}</p>`);
  },

  csrfFailure() {
    return layout(
      'Forbidden',
      html`<p>CSRF verification failed. Request aborted.</p>
<p>The form was sent without the security token of your session, or with one that is no longer valid (for example after logging in or out in another tab). Go back, reload the page and submit the form again.</p>`,
    );
  },

  methodNotAllowed() {
    return layout('Method not allowed', html`<p>Log out with the form’s button: this address accepts POST requests only.</p>`);
  },

  passwordResetEmail(context) {
    return {
      subject: `Password reset on ${context.siteName}`,
      text: `You're receiving this email because you requested a password reset for your user account at ${context.siteName}.

Please go to the following page and choose a new password:

${context.resetUrl}

Your username, in case you've forgotten: ${context.username}

If you did not ask for this, ignore this email: your password stays as it is.
`,
    };
  },

  passwordResetHtmlEmail(context) {
    return html`<!doctype html>
<html lang="en">
<body>
<p>You’re receiving this email because you requested a password reset for your user account at ${context.siteName}.</p>
<p>Please go to the following page and choose a new password:</p>
<p><a href="${context.resetUrl}">${context.resetUrl}</a></p>
<p>Your username, in case you’ve forgotten: ${context.username}</p>
<p>If you did not ask for this, ignore this email: your password stays as it is.</p>
</body>
</html>
`;
  },
};
