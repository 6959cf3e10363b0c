import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type Repository } from 'typeorm';
import { AUTH_CONFIG, type AuthConfig } from './auth.config.js';
import { isPasswordUsable, PasswordHasher } from './passwords/password-hasher.js';
import {
  passwordValidatorsHelpTexts,
  validatePassword,
  type PasswordUser,
  type PasswordValidator,
} from './passwords/password-validation.js';
import { hydrate, PreparedQuery, selectableColumns, sqlNames } from './storage/prepared-query.js';
import { INTEGER_KEY, primaryKeyKind, UUID_KEY } from './storage/primary-key.js';
import { User } from './storage/user.entity.js';

export interface CreateUserInput {
  username: string;
  password?: string | null;
  email?: string;
  isActive?: boolean;
  isStaff?: boolean;
  isSuperuser?: boolean;
  [field: string]: unknown;
}

const MAX_LOOKUP_LENGTH = 255;

/**
 * Creates, finds and checks users of the configured user entity (Django's `UserManager` plus the
 * password methods of `AbstractBaseUser`). Lookups take untrusted input: anything that is not a
 * well-formed value for the column resolves `null` without touching the database.
 */
@Injectable()
export class UserManager<U extends Record<string, any> = User> {
  readonly entity: new () => U;
  private readonly passwordValidators: PasswordValidator[];

  constructor(
    /** The database the users live in (the app's default DataSource). */
    readonly dataSource: DataSource,
    private readonly hasher: PasswordHasher,
    @Inject(AUTH_CONFIG) config: AuthConfig,
  ) {
    this.entity = config.userEntity as new () => U;
    this.passwordValidators = config.passwordValidators;
  }

  get repository(): Repository<U> {
    return this.dataSource.getRepository(this.entity);
  }

  /** Save a new user; a missing password gives an unusable one. */
  async createUser(input: CreateUserInput): Promise<U> {
    const { username, password = null, email = '', ...fields } = input;
    if (typeof username !== 'string' || username.length === 0) {
      throw new Error('The given username must be set.');
    }
    const user = this.repository.create({
      isActive: true,
      isStaff: false,
      isSuperuser: false,
      dateJoined: new Date(),
      ...fields,
      username: username.normalize('NFKC'),
      email: normalizeEmail(email),
    } as any) as unknown as U;
    await this.setPassword(user, password);
    // No wrapping transaction: on SQLite it would collide with a concurrent request's one.
    return this.repository.save(user as any, { transaction: false }) as Promise<U>;
  }

  /** A user with `isStaff` and `isSuperuser` forced on. */
  async createSuperuser(input: CreateUserInput): Promise<U> {
    if (input.isStaff === false) throw new Error('Superuser must have isStaff=true.');
    if (input.isSuperuser === false) throw new Error('Superuser must have isSuperuser=true.');
    return this.createUser({ ...input, isStaff: true, isSuperuser: true });
  }

  /** Hash and set the password on the object without saving it; `null` makes it unusable. */
  async setPassword(user: U, raw: string | null): Promise<void> {
    (user as Record<string, unknown>).password = await this.hasher.make(raw);
  }

  /**
   * Run every configured password validator; throws one `PasswordValidationError` whose
   * `errors` lists every broken rule. `user` (saved or not) feeds the similarity check.
   */
  validatePassword(raw: unknown, user?: Partial<U> | PasswordUser | null): Promise<void> {
    return validatePassword(raw, user as PasswordUser | null | undefined, this.passwordValidators);
  }

  /** What the configured validators ask of a password, for the help text of a form. */
  passwordHelpTexts(): string[] {
    return passwordValidatorsHelpTexts(this.passwordValidators);
  }

  /**
   * Write the password `setPassword` put on `user`, and only that column. Saving the whole
   * object would write back every other field as it was loaded, undoing what an admin changed
   * meanwhile (a deactivation, a removed superuser flag).
   */
  async savePassword(user: U): Promise<void> {
    await this.repository.update(this.primaryKeyOf(user) as any, { password: user.password } as any);
  }

  /**
   * Check a raw password against the stored hash. When it is right but stored with a hasher or
   * cost no longer preferred, re-hash it and save only the password column.
   */
  async checkPassword(user: U, raw: unknown): Promise<boolean> {
    const { valid, upgraded } = await this.hasher.check(raw, user.password);
    if (valid && upgraded) {
      (user as Record<string, unknown>).password = upgraded;
      await this.savePassword(user);
    }
    return valid;
  }

  async findByUsername(username: unknown): Promise<U | null> {
    if (!isLookupString(username)) return null;
    return this.repository.findOne({ where: { username } as any });
  }

  /** Whether the user entity has a column for this property (what outside sources may fill in). */
  hasField(name: string): boolean {
    return !!this.repository.metadata.findColumnWithPropertyName(name);
  }

  /**
   * Whether `value`, from an outside source (a directory attribute, a provider's claim), can go
   * into this property's column as it is: a column for it exists, and text holds no NUL byte
   * (PostgreSQL refuses them) and fits the column's length, so a source's odd value is skipped
   * rather than failing the login with a database error.
   */
  canStore(name: string, value: unknown): boolean {
    const column = this.repository.metadata.findColumnWithPropertyName(name);
    if (!column) return false;
    if (typeof value !== 'string') return value !== undefined;
    const max = Number(column.length);
    return !value.includes('\0') && (!max || value.length <= max);
  }

  /**
   * Who may receive a password reset link for `email` (Django's `PasswordResetForm.get_users`):
   * active users with a usable password whose stored email equals it, compared case-insensitively
   * in the database and then after NFKC and case folding, which keeps Unicode look-alikes from
   * receiving someone else's link (CVE-2019-19844). A user entity without `email` has nobody.
   */
  async usersForPasswordReset(email: string): Promise<U[]> {
    if (!isLookupString(email) || !this.repository.metadata.findColumnWithPropertyName('email')) return [];
    const candidates = await this.repository.createQueryBuilder('account').where('LOWER(account.email) = LOWER(:email)', { email }).getMany();
    const wanted = foldCase(email);
    return candidates.filter(
      (user: Record<string, unknown>) =>
        user.isActive !== false &&
        isPasswordUsable(user.password as string) &&
        typeof user.email === 'string' &&
        foldCase(user.email) === wanted,
    );
  }

  /**
   * Load a user by primary key, as stored in a session (a string). A missing or malformed
   * id never reaches TypeORM, whose `findOneBy({ id: undefined })` would load the first row.
   */
  async findById(id: unknown): Promise<U | null> {
    const key = this.parsePrimaryKey(id);
    if (key === null) return null;
    // Every logged-in request comes here: one prepared SELECT, no query builder.
    const row = await this.byIdQuery.one([key]);
    return row ? this.fromRow(row) : null;
  }

  /**
   * A user built from a row of the user table (keys are column names), as `findById` builds
   * one; `null` when the row's primary key is not `id` (a session's user id, as stored).
   */
  fromRow(row: Record<string, unknown>, id?: string): U | null {
    const user = hydrate<U>(this.dataSource, this.repository.metadata, row);
    if (id !== undefined && String(user[this.primaryColumn.propertyName]) !== id) return null;
    return user;
  }

  private byIdStatement?: PreparedQuery<Record<string, unknown>>;

  private get byIdQuery(): PreparedQuery<Record<string, unknown>> {
    if (!this.byIdStatement) {
      const metadata = this.repository.metadata;
      const { table } = sqlNames(this.dataSource, metadata);
      const escape = (name: string) => this.dataSource.driver.escape(name);
      const columns = selectableColumns(metadata).map((column) => escape(column.databaseName)).join(', ');
      this.byIdStatement = new PreparedQuery(
        this.dataSource,
        `SELECT ${columns} FROM ${table} WHERE ${escape(this.primaryColumn.databaseName)} = ?`,
      );
    }
    return this.byIdStatement;
  }

  /** Record a successful login (Django's `update_last_login`); one UPDATE of one column. */
  async touchLastLogin(user: U): Promise<void> {
    const now = new Date();
    await this.repository.update(this.primaryKeyOf(user) as any, { lastLogin: now } as any);
    (user as Record<string, unknown>).lastLogin = now;
  }

  /** True when `user` is an instance of this manager's entity (not some backend's own type). */
  manages(user: unknown): user is U {
    return user instanceof this.entity;
  }

  private get primaryColumn() {
    const columns = this.repository.metadata.primaryColumns;
    if (columns.length !== 1) {
      throw new Error(`The user entity ${this.entity.name} must have exactly one primary column.`);
    }
    return columns[0];
  }

  private primaryKeyOf(user: U): Record<string, unknown> {
    const name = this.primaryColumn.propertyName;
    const key = this.parsePrimaryKey(user[name]);
    if (key === null) throw new Error(`The ${this.entity.name} has no saved primary key.`);
    return { [name]: key };
  }

  private parsePrimaryKey(id: unknown): string | number | null {
    const kind = primaryKeyKind(this.primaryColumn);
    if (kind === 'integer') {
      if (typeof id === 'number') return Number.isSafeInteger(id) ? id : null;
      if (typeof id !== 'string' || !INTEGER_KEY.test(id)) return null;
      return Number(id);
    }
    if (kind === 'uuid') return typeof id === 'string' && UUID_KEY.test(id) ? id.toLowerCase() : null;
    return isLookupString(id) ? id : null;
  }
}

function isLookupString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_LOOKUP_LENGTH && !value.includes('\0');
}

/** Lowercase the domain part only. */
export function normalizeEmail(email: unknown): string {
  if (typeof email !== 'string' || email === '') return '';
  const at = email.lastIndexOf('@');
  if (at < 0) return email;
  return email.slice(0, at) + '@' + email.slice(at + 1).toLowerCase();
}

/** Unicode case folding as Django's `_unicode_ci_compare` does it: NFKC, then upper, then lower. */
function foldCase(text: string): string {
  return text.normalize('NFKC').toUpperCase().toLowerCase();
}
