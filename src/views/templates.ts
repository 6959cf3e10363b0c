import { createHash } from 'node:crypto';

/**
 * The built-in views' pages: small, self-contained HTML with no script and inline styles only.
 * Every interpolated value goes through `escapeHtml`.
 */

/** Errors of one form: `form` for the whole form, the others keyed by field name. */
export type FormErrors = Partial<Record<string, string[]>> & { form?: string[] };

interface InputField {
  name: string;
  label: string;
  type: 'text' | 'password' | 'email';
  autocomplete: string;
  value?: string;
  maxLength?: number;
  autofocus?: boolean;
}

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#x27;');
}

const STYLE = `
body { font: 16px/1.5 system-ui, sans-serif; color: #1a1a1a; background: #f6f7f9; margin: 0; }
main { max-width: 26rem; margin: 4rem auto; padding: 2rem; background: #fff; border-radius: 8px;
       box-shadow: 0 1px 4px rgba(0, 0, 0, .1); }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input[type=text], input[type=password], input[type=email] { width: 100%; box-sizing: border-box;
       padding: .5rem; font: inherit; border: 1px solid #b8bcc4; border-radius: 4px; }
p { margin: 0 0 1rem; }
button { font: inherit; padding: .5rem 1.25rem; border: 0; border-radius: 4px; background: #2457c5; color: #fff;
         cursor: pointer; }
.errorlist { color: #a4161a; margin: .25rem 0 1rem; padding-left: 1.25rem; }
.help { color: #555; font-size: .9rem; }
`;

/** Lets the pages' Content-Security-Policy allow exactly this stylesheet and no other inline code. */
export const STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

function errorList(messages: string[] | undefined, id?: string): string {
  if (!messages || messages.length === 0) return '';
  const items = messages.map((message) => `<li>${escapeHtml(message)}</li>`).join('');
  return `<ul class="errorlist"${id ? ` id="${escapeHtml(id)}"` : ''} role="alert">${items}</ul>`;
}

function input(field: InputField, errors: FormErrors): string {
  const id = `id_${field.name}`;
  const fieldErrors = errors[field.name];
  const invalid = fieldErrors && fieldErrors.length > 0;
  const attributes = [
    `type="${field.type}"`,
    `name="${escapeHtml(field.name)}"`,
    `id="${id}"`,
    `autocomplete="${escapeHtml(field.autocomplete)}"`,
    'required',
    field.maxLength ? `maxlength="${field.maxLength}"` : '',
    field.autofocus ? 'autofocus' : '',
    field.value !== undefined && field.type !== 'password' ? `value="${escapeHtml(field.value)}"` : '',
    invalid ? `aria-invalid="true" aria-describedby="${id}_error"` : '',
  ].filter(Boolean);
  return `<p><label for="${id}">${escapeHtml(field.label)}</label><input ${attributes.join(' ')}>${errorList(fieldErrors, `${id}_error`)}</p>`;
}

function form(action: string, csrfToken: string, fields: string, button: string, hidden = ''): string {
  return `<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="csrfmiddlewaretoken" value="${escapeHtml(csrfToken)}">${hidden}
${fields}
<p><button type="submit">${escapeHtml(button)}</button></p>
</form>`;
}

function link(href: string, text: string): string {
  return `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`;
}

export interface LoginPage {
  action: string;
  csrfToken: string;
  redirectFieldName: string;
  next: string;
  username?: string;
  errors?: FormErrors;
  passwordResetUrl: string;
}

export function loginPage(view: LoginPage): string {
  const errors = view.errors ?? {};
  const hidden = view.redirectFieldName ? `\n<input type="hidden" name="${escapeHtml(view.redirectFieldName)}" value="${escapeHtml(view.next)}">` : '';
  const fields = [
    errorList(errors.form),
    input({ name: 'username', label: 'Username', type: 'text', autocomplete: 'username', value: view.username, maxLength: 254, autofocus: true }, errors),
    input({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' }, errors),
  ]
    .filter(Boolean)
    .join('\n');
  return page('Log in', `${form(view.action, view.csrfToken, fields, 'Log in', hidden)}
<p class="help">${link(view.passwordResetUrl, 'Forgotten your password?')}</p>`);
}

export function loggedOutPage(loginUrl: string): string {
  return page('Logged out', `<p>You have been logged out.</p>
<p>${link(loginUrl, 'Log in again')}</p>`);
}

export interface PasswordFormPage {
  action: string;
  csrfToken: string;
  errors?: FormErrors;
}

const NEW_PASSWORD_FIELDS = (errors: FormErrors) => [
  input({ name: 'new_password1', label: 'New password', type: 'password', autocomplete: 'new-password' }, errors),
  input({ name: 'new_password2', label: 'New password confirmation', type: 'password', autocomplete: 'new-password' }, errors),
];

export function passwordChangePage(view: PasswordFormPage): string {
  const errors = view.errors ?? {};
  const fields = [
    errorList(errors.form),
    input({ name: 'old_password', label: 'Old password', type: 'password', autocomplete: 'current-password', autofocus: true }, errors),
    ...NEW_PASSWORD_FIELDS(errors),
  ]
    .filter(Boolean)
    .join('\n');
  return page(
    'Password change',
    `<p>Please enter your old password, for security’s sake, and then enter your new password twice so we can verify you typed it in correctly.</p>
${form(view.action, view.csrfToken, fields, 'Change my password')}`,
  );
}

export function passwordChangeDonePage(): string {
  return page('Password change successful', '<p>Your password was changed.</p>');
}

export interface PasswordResetPage {
  action: string;
  csrfToken: string;
  email?: string;
  errors?: FormErrors;
}

export function passwordResetPage(view: PasswordResetPage): string {
  const errors = view.errors ?? {};
  const fields = [
    errorList(errors.form),
    input({ name: 'email', label: 'Email address', type: 'email', autocomplete: 'email', value: view.email, maxLength: 254, autofocus: true }, errors),
  ]
    .filter(Boolean)
    .join('\n');
  return page(
    'Password reset',
    `<p>Forgotten your password? Enter your email address below, and we’ll email instructions for setting a new one.</p>
${form(view.action, view.csrfToken, fields, 'Reset my password')}`,
  );
}

export function passwordResetDonePage(): string {
  return page(
    'Password reset sent',
    `<p>We’ve emailed you instructions for setting your password, if an account exists with the email you entered. You should receive them shortly.</p>
<p>If you don’t receive an email, please make sure you’ve entered the address you registered with, and check your spam folder.</p>`,
  );
}

export function passwordResetConfirmPage(view: PasswordFormPage): string {
  const errors = view.errors ?? {};
  const fields = [errorList(errors.form), ...NEW_PASSWORD_FIELDS(errors)].filter(Boolean).join('\n');
  return page(
    'Enter new password',
    `<p>Please enter your new password twice so we can verify you typed it in correctly.</p>
${form(view.action, view.csrfToken, fields, 'Change my password')}`,
  );
}

export function passwordResetInvalidPage(passwordResetUrl: string): string {
  return page(
    'Password reset unsuccessful',
    `<p>The password reset link was invalid, possibly because it has already been used. Please request a new password reset.</p>
<p>${link(passwordResetUrl, 'Request a new link')}</p>`,
  );
}

export function passwordResetCompletePage(loginUrl: string): string {
  return page(
    'Password reset complete',
    `<p>Your password has been set. You may go ahead and log in now.</p>
<p>${link(loginUrl, 'Log in')}</p>`,
  );
}

/** The password reset email: plain text, so nothing in it is HTML-escaped. */
export function passwordResetEmail(view: { siteName: string; resetUrl: string; username: string }): { subject: string; text: string } {
  return {
    subject: `Password reset on ${view.siteName}`,
    text: `You're receiving this email because you requested a password reset for your user account at ${view.siteName}.

Please go to the following page and choose a new password:

${view.resetUrl}

Your username, in case you've forgotten: ${view.username}

If you did not ask for this, ignore this email: your password stays as it is.
`,
  };
}

export function csrfFailurePage(): string {
  return page(
    'Forbidden',
    `<p>CSRF verification failed. Request aborted.</p>
<p>The form was sent without the security token of your session, or with one that is no longer valid (for example after logging in or out in another tab). Go back, reload the page and submit the form again.</p>`,
  );
}

export function methodNotAllowedPage(): string {
  return page('Method not allowed', '<p>Log out with the form’s button: this address accepts POST requests only.</p>');
}
