import { ImproperlyConfigured } from 'nestjs-session-auth';
import {
  CommonPasswordValidator,
  MinimumLengthValidator,
  NumericPasswordValidator,
  PasswordValidationError,
  UserAttributeSimilarityValidator,
  ValidationError,
  type PasswordValidator,
} from 'nestjs-session-auth/passwords';
import { createTestApp, type TestApp } from './support/test-app.js';

/** The codes and messages of the error `promise` rejects with; fails when it resolves. */
async function errorsOf(promise: Promise<unknown> | unknown): Promise<{ code: string; message: string }[]> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PasswordValidationError) return error.errors;
    if (error instanceof ValidationError) return [{ code: error.code, message: error.message }];
    throw error;
  }
  throw new Error('expected the password to be refused');
}

const carol = { username: 'testclient', email: 'testclient@example.com', firstName: 'Test', lastName: 'Client' };

describe('password validation', () => {
  describe('UserManager.validatePassword with the default validators', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp();
    });
    afterAll(() => t.close());

    it('accepts a long, uncommon password unrelated to the user', async () => {
      await expect(t.users.validatePassword('tangerine-otter-27', carol)).resolves.toBeUndefined();
    });

    it('reports every broken rule at once, in the order of the validators', async () => {
      const errors = await errorsOf(t.users.validatePassword('1234567', carol));
      expect(errors).toEqual([
        { code: 'password_too_short', message: 'This password is too short. It must contain at least 8 characters.' },
        { code: 'password_too_common', message: 'This password is too common.' },
        { code: 'password_entirely_numeric', message: 'This password is entirely numeric.' },
      ]);
    });

    it('throws a PasswordValidationError whose message joins the messages, for logs and CLIs', async () => {
      const error = await t.users.validatePassword('short', undefined).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PasswordValidationError);
      expect((error as Error).message).toBe(
        'This password is too short. It must contain at least 8 characters. This password is too common.',
      );
    });

    it('compares with the user passed in, saved or not', async () => {
      expect(await errorsOf(t.users.validatePassword('testclient', carol))).toEqual([
        { code: 'password_too_similar', message: 'The password is too similar to the username.' },
      ]);
      const saved = await t.users.createUser({ username: 'marmaduke', email: 'marmaduke@example.com' });
      expect((await errorsOf(t.users.validatePassword('Marmaduke1', saved))).map((e) => e.code)).toEqual(['password_too_similar']);
    });

    it('skips the similarity check without a user', async () => {
      await expect(t.users.validatePassword('testclient')).resolves.toBeUndefined();
    });

    it('refuses a password that is not a string with a validation error, not a crash', async () => {
      for (const raw of [undefined, null, 12345678, ['long-enough-pass'], { $ne: '' }]) {
        expect(await errorsOf(t.users.validatePassword(raw, carol))).toEqual([
          { code: 'password_invalid', message: 'The password must be text.' },
        ]);
      }
    });

    it('describes the rules for a form', () => {
      expect(t.users.passwordHelpTexts()).toEqual([
        'Your password can’t be too similar to your other personal information.',
        'Your password must contain at least 8 characters.',
        'Your password can’t be a commonly used password.',
        'Your password can’t be entirely numeric.',
      ]);
    });
  });

  describe('the passwordValidators option', () => {
    it('[] turns validation off', async () => {
      const t = await createTestApp({ auth: { passwordValidators: [] } });
      try {
        await expect(t.users.validatePassword('1', carol)).resolves.toBeUndefined();
        expect(t.users.passwordHelpTexts()).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it('takes names and configured instances, and only runs those', async () => {
      const t = await createTestApp({
        auth: { passwordValidators: ['NumericPasswordValidator', new MinimumLengthValidator({ minLength: 12 })] },
      });
      try {
        expect((await errorsOf(t.users.validatePassword('password', carol))).map((e) => e.message)).toEqual([
          'This password is too short. It must contain at least 12 characters.',
        ]);
        await expect(t.users.validatePassword('testclient-testclient', carol)).resolves.toBeUndefined();
      } finally {
        await t.close();
      }
    });

    it('runs an app-defined validator, async ones included, next to the built-in ones', async () => {
      const noCompanyName: PasswordValidator = {
        async validate(password) {
          if (password.toLowerCase().includes('acme')) throw new ValidationError('Do not use the company name.', 'password_has_company_name');
        },
        helpText: () => 'Your password can’t contain the company name.',
      };
      const t = await createTestApp({ auth: { passwordValidators: ['MinimumLengthValidator', noCompanyName] } });
      try {
        expect(await errorsOf(t.users.validatePassword('acme', carol))).toEqual([
          { code: 'password_too_short', message: 'This password is too short. It must contain at least 8 characters.' },
          { code: 'password_has_company_name', message: 'Do not use the company name.' },
        ]);
      } finally {
        await t.close();
      }
    });

    it('lets a validator that fails for another reason (a bug, an outage) propagate', async () => {
      const broken: PasswordValidator = {
        validate() {
          throw new TypeError('lookup service down');
        },
        helpText: () => '',
      };
      const t = await createTestApp({ auth: { passwordValidators: [broken] } });
      try {
        await expect(t.users.validatePassword('anything-at-all', carol)).rejects.toThrow(TypeError);
      } finally {
        await t.close();
      }
    });

    it('fails start-up on an unknown validator name, naming the built-in ones', async () => {
      const start = createTestApp({ auth: { passwordValidators: ['MinimumLenghtValidator' as any] } });
      await expect(start).rejects.toThrow(ImproperlyConfigured);
      await expect(start).rejects.toThrow(/Unknown password validator 'MinimumLenghtValidator'.*MinimumLengthValidator/);
    });

    it('fails start-up on something that is not a validator', async () => {
      await expect(createTestApp({ auth: { passwordValidators: [{} as any] } })).rejects.toThrow(
        /must have validate\(password, user\?\) and helpText\(\)/,
      );
    });
  });

  describe('MinimumLengthValidator', () => {
    it('needs 8 characters by default', () => {
      expect(() => new MinimumLengthValidator().validate('1234567')).toThrow(
        'This password is too short. It must contain at least 8 characters.',
      );
      expect(() => new MinimumLengthValidator().validate('12345678')).not.toThrow();
    });

    it('counts characters, not UTF-16 code units', () => {
      expect(() => new MinimumLengthValidator().validate('🔑'.repeat(8))).not.toThrow();
      expect(() => new MinimumLengthValidator().validate('🔑'.repeat(4))).toThrow(ValidationError);
    });

    it('says "character" for a minimum of one', () => {
      const validator = new MinimumLengthValidator({ minLength: 1 });
      expect(() => validator.validate('')).toThrow('This password is too short. It must contain at least 1 character.');
      expect(validator.helpText()).toBe('Your password must contain at least 1 character.');
    });
  });

  describe('UserAttributeSimilarityValidator', () => {
    const validator = new UserAttributeSimilarityValidator();

    it('refuses a password too close to the username, names or email', () => {
      expect(() => validator.validate('testclient', carol)).toThrow('The password is too similar to the username.');
      expect(() => validator.validate('TESTclient', carol)).toThrow('The password is too similar to the username.');
    });

    it('compares with each word of an attribute, so part of the email is enough', () => {
      expect(() => validator.validate('example.com', { email: 'someone@example.com' })).toThrow(
        'The password is too similar to the email address.',
      );
      expect(() => validator.validate('Example!', { email: 'someone@example.com' })).toThrow(
        'The password is too similar to the email address.',
      );
    });

    it('reads firstName/lastName and first_name/last_name alike', () => {
      expect(() => validator.validate('Montgomery', { firstName: 'Montgomery' })).toThrow('The password is too similar to the first name.');
      expect(() => validator.validate('Montgomery', { last_name: 'Montgomery' })).toThrow('The password is too similar to the last name.');
    });

    it('reads attributes defined as getters', () => {
      class Profile {
        get username() {
          return 'foobar';
        }
      }
      expect(() => validator.validate('foobar', new Profile() as any)).toThrow('The password is too similar to the username.');
    });

    it('lets a password with little in common pass, and ignores missing or non-text attributes', () => {
      expect(() => validator.validate('tangerine-otter-27', carol)).not.toThrow();
      expect(() => validator.validate('testclient', { username: null, email: 42 } as any)).not.toThrow();
    });

    it('uses the configured attributes and threshold', () => {
      const strict = new UserAttributeSimilarityValidator({ userAttributes: ['firstName'], maxSimilarity: 0.3 });
      expect(() => strict.validate('testclient', carol)).toThrow('The password is too similar to the first name.');
      const lenient = new UserAttributeSimilarityValidator({ userAttributes: ['firstName'] });
      expect(() => lenient.validate('testclient', carol)).not.toThrow();
      const exact = new UserAttributeSimilarityValidator({ userAttributes: ['firstName'], maxSimilarity: 1 });
      expect(() => exact.validate('Test', carol)).toThrow('The password is too similar to the first name.');
    });

    it('refuses a maxSimilarity below 0.1, which would refuse almost every password', () => {
      expect(() => new UserAttributeSimilarityValidator({ maxSimilarity: 0.09 })).toThrow(
        'UserAttributeSimilarityValidator maxSimilarity must be at least 0.1.',
      );
      expect(() => new UserAttributeSimilarityValidator({ maxSimilarity: 0.1 })).not.toThrow();
    });
  });

  describe('CommonPasswordValidator', () => {
    const validator = new CommonPasswordValidator();

    it('refuses a password from the bundled list of about 49,000', async () => {
      await expect(validator.validate('godzilla')).rejects.toThrow('This password is too common.');
      await expect(validator.validate('iloveyou')).rejects.toMatchObject({ code: 'password_too_common' });
    });

    it('compares lowercased and trimmed', async () => {
      await expect(validator.validate('  SunShine ')).rejects.toThrow(ValidationError);
    });

    it('accepts a password not on the list', async () => {
      await expect(validator.validate('tangerine-otter-27')).resolves.toBeUndefined();
    });

    it('uses a list of the app’s own instead of the bundled one', async () => {
      const custom = new CommonPasswordValidator({ passwords: ['Hunter2 ', 'letmein'] });
      await expect(custom.validate('hunter2')).rejects.toThrow('This password is too common.');
      await expect(custom.validate('godzilla')).resolves.toBeUndefined();
    });
  });

  describe('NumericPasswordValidator', () => {
    const validator = new NumericPasswordValidator();

    it('refuses a password made of digits only, in any script', () => {
      expect(() => validator.validate('42424242')).toThrow('This password is entirely numeric.');
      expect(() => validator.validate('٤٢٤٢٤٢٤٢')).toThrow(ValidationError);
    });

    it('accepts digits mixed with anything else, and the empty string', () => {
      expect(() => validator.validate('4242424a')).not.toThrow();
      expect(() => validator.validate('4242 4242')).not.toThrow();
      expect(() => validator.validate('')).not.toThrow();
    });
  });
});
