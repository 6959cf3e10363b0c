import { ImproperlyConfigured } from '../errors.js';

/** The attributes of a user a validator may compare the password with. */
export type PasswordUser = Record<string, unknown>;

/**
 * One password rule (Django's password validator). `validate` throws a `ValidationError` when
 * the password breaks the rule; `helpText` tells a user what the rule asks for, for forms.
 */
export interface PasswordValidator {
  validate(password: string, user?: PasswordUser | null): void | Promise<void>;
  helpText(): string;
}

/** One broken rule: a stable `code` for programs and a `message` for people. */
export interface PasswordValidationIssue {
  code: string;
  message: string;
}

/** Thrown by a single validator. */
export class ValidationError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ValidationError';
  }
}

/** Every rule a password broke, reported together, so a form can show them all at once. */
export class PasswordValidationError extends Error {
  readonly errors: PasswordValidationIssue[];

  constructor(errors: PasswordValidationIssue[]) {
    super(errors.map((error) => error.message).join(' '));
    this.name = 'PasswordValidationError';
    this.errors = errors;
  }
}

/** Length in characters (code points), as Python's `len` counts them. */
function lengthOf(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** At least `minLength` characters, 8 by default. */
export class MinimumLengthValidator implements PasswordValidator {
  readonly minLength: number;

  constructor(options: { minLength?: number } = {}) {
    this.minLength = options.minLength ?? 8;
    if (!Number.isInteger(this.minLength) || this.minLength < 0) {
      throw new ImproperlyConfigured(`MinimumLengthValidator minLength must be a non-negative integer, got ${options.minLength}.`);
    }
  }

  validate(password: string): void {
    if (lengthOf(password) < this.minLength) {
      throw new ValidationError(
        `This password is too short. It must contain at least ${this.minLength} ${plural(this.minLength, 'character')}.`,
        'password_too_short',
      );
    }
  }

  helpText(): string {
    return `Your password must contain at least ${this.minLength} ${plural(this.minLength, 'character')}.`;
  }
}

function plural(count: number, word: string): string {
  return count === 1 ? word : `${word}s`;
}

/** The user attributes compared by default, in both naming styles a user entity may use. */
export const DEFAULT_USER_ATTRIBUTES = ['username', 'first_name', 'firstName', 'last_name', 'lastName', 'email'];

const VERBOSE_NAMES: Record<string, string> = {
  first_name: 'first name',
  firstName: 'first name',
  last_name: 'last name',
  lastName: 'last name',
  email: 'email address',
};

/** Python's `\W`: anything that is not a letter, a number or the underscore. */
const NON_WORD = /[^\p{L}\p{N}_]+/u;

/**
 * The password must not be too close to the user's username, names or email, nor to any word
 * of them. Closeness is the ratio of shared characters, counted as multisets (the quick
 * ratio of a sequence matcher): cheap, and an upper bound of the finer measures.
 */
export class UserAttributeSimilarityValidator implements PasswordValidator {
  readonly userAttributes: readonly string[];
  readonly maxSimilarity: number;

  constructor(options: { userAttributes?: readonly string[]; maxSimilarity?: number } = {}) {
    this.userAttributes = options.userAttributes ?? DEFAULT_USER_ATTRIBUTES;
    this.maxSimilarity = options.maxSimilarity ?? 0.7;
    // Below 0.1 almost every password would be "too similar" to something.
    if (!(this.maxSimilarity >= 0.1)) {
      throw new ImproperlyConfigured('UserAttributeSimilarityValidator maxSimilarity must be at least 0.1.');
    }
  }

  validate(password: string, user?: PasswordUser | null): void {
    if (!user) return;
    const lowered = password.toLowerCase();
    for (const attribute of this.userAttributes) {
      const value = user[attribute];
      if (typeof value !== 'string' || value === '') continue;
      const valueLowered = value.toLowerCase();
      for (const part of [...valueLowered.split(NON_WORD), valueLowered]) {
        if (exceedsMaximumLengthRatio(lowered, this.maxSimilarity, part)) continue;
        if (quickRatio(lowered, part) >= this.maxSimilarity) {
          throw new ValidationError(`The password is too similar to the ${verboseName(attribute)}.`, 'password_too_similar');
        }
      }
    }
  }

  helpText(): string {
    return 'Your password can’t be too similar to your other personal information.';
  }
}

function verboseName(attribute: string): string {
  return VERBOSE_NAMES[attribute] ?? attribute.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

/**
 * A password ten times longer than the value cannot reach a ratio above 2/10, so the comparison
 * is skipped: it keeps a huge password from costing much (CVE-2021-45115).
 */
function exceedsMaximumLengthRatio(password: string, maxSimilarity: number, value: string): boolean {
  const passwordLength = lengthOf(password);
  const valueLength = lengthOf(value);
  return passwordLength >= 10 * valueLength && valueLength < (maxSimilarity / 2) * passwordLength;
}

/** 2·M / (|a| + |b|), M the size of the multiset intersection of the characters of a and b. */
export function quickRatio(a: string, b: string): number {
  const available = new Map<string, number>();
  let lengthB = 0;
  for (const char of b) {
    available.set(char, (available.get(char) ?? 0) + 1);
    lengthB++;
  }
  let lengthA = 0;
  let matches = 0;
  for (const char of a) {
    lengthA++;
    const left = available.get(char) ?? 0;
    if (left > 0) matches++;
    available.set(char, left - 1);
  }
  const total = lengthA + lengthB;
  return total === 0 ? 1 : (2 * matches) / total;
}

let commonPasswords: Promise<Set<string>> | undefined;

/** The bundled list of common passwords, read once, on first use. */
function loadCommonPasswords(): Promise<Set<string>> {
  commonPasswords ??= import('@zxcvbn-ts/language-common').then(
    ({ dictionary }) => normalizeList(dictionary['passwords-common'] as string[]),
    (error: unknown) => {
      commonPasswords = undefined;
      throw error;
    },
  );
  return commonPasswords;
}

function normalizeList(passwords: Iterable<string>): Set<string> {
  const set = new Set<string>();
  for (const password of passwords) set.add(password.trim().toLowerCase());
  return set;
}

/**
 * The password must not be on a list of common passwords: by default the ~49,000 most
 * common ones from `@zxcvbn-ts/language-common`, compared lowercased and trimmed.
 */
export class CommonPasswordValidator implements PasswordValidator {
  private readonly passwords: Promise<Set<string>> | undefined;

  /** `passwords` replaces the bundled list (Django's `password_list_path`). */
  constructor(options: { passwords?: Iterable<string> } = {}) {
    this.passwords = options.passwords ? Promise.resolve(normalizeList(options.passwords)) : undefined;
  }

  async validate(password: string): Promise<void> {
    const passwords = await (this.passwords ?? loadCommonPasswords());
    if (passwords.has(password.trim().toLowerCase())) {
      throw new ValidationError('This password is too common.', 'password_too_common');
    }
  }

  helpText(): string {
    return 'Your password can’t be a commonly used password.';
  }
}

/** The password must not be made of digits only. */
export class NumericPasswordValidator implements PasswordValidator {
  validate(password: string): void {
    if (/^\p{Nd}+$/u.test(password)) {
      throw new ValidationError('This password is entirely numeric.', 'password_entirely_numeric');
    }
  }

  helpText(): string {
    return 'Your password can’t be entirely numeric.';
  }
}

const BUILT_IN_VALIDATORS = {
  MinimumLengthValidator,
  UserAttributeSimilarityValidator,
  CommonPasswordValidator,
  NumericPasswordValidator,
} satisfies Record<string, new () => PasswordValidator>;

export type PasswordValidatorName = keyof typeof BUILT_IN_VALIDATORS;

/** Django's four, on unless the `passwordValidators` option says otherwise. */
export const DEFAULT_PASSWORD_VALIDATORS: PasswordValidatorName[] = [
  'UserAttributeSimilarityValidator',
  'MinimumLengthValidator',
  'CommonPasswordValidator',
  'NumericPasswordValidator',
];

/** Turn the `passwordValidators` option into validator instances; an unknown name fails start-up. */
export function resolvePasswordValidators(
  list: readonly (PasswordValidator | PasswordValidatorName)[] = DEFAULT_PASSWORD_VALIDATORS,
): PasswordValidator[] {
  if (!Array.isArray(list)) {
    throw new ImproperlyConfigured('passwordValidators must be an array of validators or validator names ([] turns validation off).');
  }
  return list.map((entry) => {
    if (typeof entry === 'string') {
      if (!Object.hasOwn(BUILT_IN_VALIDATORS, entry)) {
        throw new ImproperlyConfigured(
          `Unknown password validator '${entry}'. Built-in validators are ${Object.keys(BUILT_IN_VALIDATORS).join(', ')}; ` +
            'pass an instance for your own.',
        );
      }
      return new BUILT_IN_VALIDATORS[entry as PasswordValidatorName]();
    }
    if (!entry || typeof entry.validate !== 'function' || typeof entry.helpText !== 'function') {
      throw new ImproperlyConfigured('A password validator must have validate(password, user?) and helpText() methods.');
    }
    return entry;
  });
}

/**
 * Run every validator and throw one `PasswordValidationError` listing every broken rule.
 * Anything that is not a string is refused outright rather than coerced.
 */
export async function validatePassword(
  password: unknown,
  user: PasswordUser | null | undefined,
  validators: readonly PasswordValidator[],
): Promise<void> {
  if (typeof password !== 'string') {
    throw new PasswordValidationError([{ code: 'password_invalid', message: 'The password must be text.' }]);
  }
  const errors: PasswordValidationIssue[] = [];
  for (const validator of validators) {
    try {
      await validator.validate(password, user);
    } catch (error) {
      if (error instanceof ValidationError) errors.push({ code: error.code, message: error.message });
      else if (error instanceof PasswordValidationError) errors.push(...error.errors);
      else throw error;
    }
  }
  if (errors.length > 0) throw new PasswordValidationError(errors);
}

/** What each validator asks for, for the help text of a password form. */
export function passwordValidatorsHelpTexts(validators: readonly PasswordValidator[]): string[] {
  return validators.map((validator) => validator.helpText());
}
