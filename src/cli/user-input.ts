import { PasswordValidationError } from '../passwords/password-validation.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { User } from '../storage/user.entity.js';
import type { UserManager } from '../user.manager.js';
import { CommandError } from './cli.errors.js';
import type { Prompter } from './prompter.js';

/** Django's changepassword gives up after three attempts; createsuperuser does the same here. */
export const MAX_ATTEMPTS = 3;

const USERNAME_MAX_LENGTH = 150;
const EMAIL_MAX_LENGTH = 254;

/**
 * Why `username` cannot be used for a new user, or `null`. The built-in `User` follows Django's
 * field rules (at most 150 Unicode letters, digits and `@.+-_`); a custom user entity has its
 * own, so only emptiness is checked for it.
 */
export async function usernameProblem(users: UserManager<any>, raw: string): Promise<string | null> {
  const username = raw.normalize('NFKC');
  if (username.trim() === '') return 'The username cannot be blank.';
  if (users.entity === User) {
    if ([...username].length > USERNAME_MAX_LENGTH) {
      return `The username can have at most ${USERNAME_MAX_LENGTH} characters.`;
    }
    if (!/^[\p{L}\p{N}@.+\-_]+$/u.test(username)) {
      return 'Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.';
    }
  }
  if (await users.findByUsername(username)) return `The username '${username}' is already taken.`;
  return null;
}

/**
 * Save a new user, turning the unique-constraint failure of a username taken meanwhile (by the
 * app, or another run) into the same message as the check before it.
 */
export async function saveNewUser<U>(username: string, create: () => Promise<U>): Promise<U> {
  try {
    return await create();
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new CommandError(`The username '${username.normalize('NFKC')}' is already taken.`);
    }
    throw error;
  }
}

/** Why `email` is not an address, or `null`; an empty email is allowed (Django stores it as ""). */
export function emailProblem(email: string): string | null {
  if (email === '') return null;
  if (email.length > EMAIL_MAX_LENGTH || !/^[^\s@]+@[^\s@]+$/.test(email)) return 'Enter a valid email address.';
  return null;
}

/** The validators' messages, one per line, all of them together. */
export function describeValidationError(error: PasswordValidationError): string {
  return error.errors.map((issue) => issue.message).join('\n');
}

/**
 * Check a password that did not come from a prompt (stdin, environment): blank or refused by a
 * validator ends the command, listing every broken rule.
 */
export async function checkPassword(users: UserManager<any>, raw: string, user: Record<string, unknown>): Promise<string> {
  if (raw.trim() === '') throw new CommandError("Blank passwords aren't allowed.");
  try {
    await users.validatePassword(raw, user);
  } catch (error) {
    if (error instanceof PasswordValidationError) {
      throw new CommandError(`The password was refused:\n${describeValidationError(error)}`);
    }
    throw error;
  }
  return raw;
}

export interface PasswordPromptOptions {
  /** Who the password is for: the similarity validator compares against these attributes. */
  user: Record<string, unknown>;
  /** Offer Django's "Bypass password validation and create user anyway?" question. */
  offerBypass?: boolean;
  /** What to say when every attempt failed. */
  giveUpMessage: string;
}

/**
 * Ask for a new password twice (never echoed) until both entries match, are not blank and pass
 * the validators; every broken rule is listed together. Three attempts, then the command
 * fails with `giveUpMessage`.
 */
export async function promptNewPassword(
  prompter: Prompter,
  users: UserManager<any>,
  options: PasswordPromptOptions,
): Promise<string> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const first = await prompter.askSecret('Password:');
    const second = await prompter.askSecret('Password (again):');
    if (first !== second) {
      prompter.warn("Error: Your passwords didn't match.");
      continue;
    }
    if (first.trim() === '') {
      prompter.warn("Error: Blank passwords aren't allowed.");
      continue;
    }
    try {
      await users.validatePassword(first, options.user);
      return first;
    } catch (error) {
      if (!(error instanceof PasswordValidationError)) throw error;
      prompter.warn(describeValidationError(error));
      if (options.offerBypass && (await prompter.confirm('Bypass password validation and create user anyway?'))) {
        return first;
      }
    }
  }
  throw new CommandError(options.giveUpMessage);
}

/** A password can only be prompted for on a terminal; say how to pass it otherwise. */
export function requireTerminal(prompter: Prompter, alternative: string): void {
  if (!prompter.interactive) {
    throw new CommandError(`Cannot prompt for a password: stdin is not a terminal. ${alternative}`);
  }
}
