import type { Request } from 'express';
import { PasswordValidationError } from '../passwords/password-validation.js';
import type { UserManager } from '../user.manager.js';
import type { FormErrors } from './templates.js';

/**
 * The forms of the built-in views, as Django's `django.contrib.auth.forms`: each reads its fields
 * from the request body, checks them, and carries its errors. A field sent in a shape no form
 * produces (not text, too long, a NUL character) makes the whole form `malformed` (400).
 */

const MAX_USERNAME_LENGTH = 254;
/** Django dropped its cap; a bound still keeps a hasher from chewing on megabytes. */
const MAX_PASSWORD_LENGTH = 4096;
const MAX_EMAIL_LENGTH = 254;

export const FORM_MESSAGES = {
  invalidLogin: 'Please enter a correct username and password. Note that both fields may be case-sensitive.',
  inactive: 'This account is inactive.',
  required: 'This field is required.',
  malformed:
    'The form was sent with values that cannot be right (not text, too long, or with a NUL character). Please fill it in again.',
  passwordIncorrect: 'Your old password was entered incorrectly. Please enter it again.',
  tooManyAttempts: 'Too many incorrect passwords. Your old password was not checked; please try again later.',
  passwordMismatch: 'The two password fields didn’t match.',
  invalidEmail: 'Enter a valid email address.',
  passwordElsewhere: 'The password of this account is managed elsewhere and cannot be changed here.',
} as const;

/** The parsed body of a request, or an empty one (Express 5 leaves a bodyless POST's body undefined). */
export function formBody(request: Request): Record<string, unknown> {
  const body = request.body as unknown;
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

abstract class Form {
  readonly errors: FormErrors = {};
  /** A field came in a shape no form produces. */
  malformed = false;

  constructor(protected readonly body: Record<string, unknown>) {}

  /** Valid: well-formed and without errors. */
  get valid(): boolean {
    return !this.malformed && Object.keys(this.errors).length === 0;
  }

  addError(field: string, message: string): void {
    (this.errors[field] ??= []).push(message);
  }

  /** A text field as a form sends it; `undefined` when absent. */
  protected text(name: string, maxLength: number): string | undefined {
    if (!Object.hasOwn(this.body, name)) return undefined;
    const value = this.body[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value.length > maxLength || value.includes('\0')) {
      this.malformed = true;
      return undefined;
    }
    return value;
  }

  protected require(name: string, value: string | undefined): void {
    if (!value) this.addError(name, FORM_MESSAGES.required);
  }
}

/** Django's `AuthenticationForm`: username (stripped, NFKC as Django's `UsernameField`) and password as typed. */
export class AuthenticationForm extends Form {
  readonly username: string;
  readonly password: string;
  /** The "Remember me" box, when the form offers it. */
  readonly rememberMe: boolean;

  constructor(body: Record<string, unknown>) {
    super(body);
    this.username = this.text('username', MAX_USERNAME_LENGTH)?.trim().normalize('NFKC') ?? '';
    this.password = this.text('password', MAX_PASSWORD_LENGTH) ?? '';
    const remember = this.text('remember_me', 10);
    this.rememberMe = remember !== undefined && remember !== '' && remember !== 'off' && remember !== 'false';
    this.require('username', this.username);
    this.require('password', this.password);
  }
}

/** Django's `SetPasswordForm`: the new password twice, matching, through the password validators. */
export class SetPasswordForm extends Form {
  readonly newPassword1: string | undefined;
  readonly newPassword2: string | undefined;

  constructor(body: Record<string, unknown>) {
    super(body);
    this.newPassword1 = this.text('new_password1', MAX_PASSWORD_LENGTH);
    this.newPassword2 = this.text('new_password2', MAX_PASSWORD_LENGTH);
    this.require('new_password1', this.newPassword1);
    this.require('new_password2', this.newPassword2);
  }

  /** Mismatch and validator errors go on `new_password2`, as Django shows them. */
  async validateNewPassword(users: UserManager<any>, user: unknown): Promise<void> {
    const { newPassword1: first, newPassword2: second } = this;
    if (this.malformed || !first || !second) return;
    if (first !== second) return this.addError('new_password2', FORM_MESSAGES.passwordMismatch);
    try {
      await users.validatePassword(first, user as any);
    } catch (error) {
      if (!(error instanceof PasswordValidationError)) throw error;
      for (const issue of error.errors) this.addError('new_password2', issue.message);
    }
  }
}

/** Django's `PasswordChangeForm`: the old password first, then the new one twice. */
export class PasswordChangeForm extends SetPasswordForm {
  readonly oldPassword: string | undefined;

  constructor(body: Record<string, unknown>) {
    super(body);
    this.oldPassword = this.text('old_password', MAX_PASSWORD_LENGTH);
    this.require('old_password', this.oldPassword);
  }
}

/** Django's `PasswordResetForm`: one email address. */
export class PasswordResetForm extends Form {
  readonly email: string;
  /** As typed, to fill the form in again. */
  readonly typed: string;

  constructor(body: Record<string, unknown>) {
    super(body);
    const raw = this.text('email', MAX_EMAIL_LENGTH);
    this.typed = raw ?? '';
    this.email = raw?.trim() ?? '';
    if (!this.email) this.addError('email', FORM_MESSAGES.required);
    else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(this.email)) this.addError('email', FORM_MESSAGES.invalidEmail);
  }
}
