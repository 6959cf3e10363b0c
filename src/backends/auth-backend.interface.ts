import type { Request } from 'express';
import type { DataSource } from 'typeorm';
import type { PrefetchedUser } from '../storage/prefetched-user.js';
import type { RequiredEntities } from '../storage/required-entities.js';

export type Credentials = Record<string, unknown>;

/**
 * A source of users: two methods, as in Django. `authenticate` answers a user for good
 * credentials, `null` to let the next backend try, or throws `PermissionDenied` to stop the
 * chain. `getUser` reloads the user a session points at.
 */
export interface AuthBackend<U = any> {
  /** Stable id stored in sessions; defaults to the class name. */
  readonly name?: string;
  authenticate(request: Request | undefined, credentials: Credentials): Promise<U | null | undefined> | U | null | undefined;
  getUser(id: string): Promise<U | null | undefined> | U | null | undefined;
  getUserPermissions?(user: U, obj?: unknown): Promise<Set<string>> | Set<string>;
  getGroupPermissions?(user: U, obj?: unknown): Promise<Set<string>> | Set<string>;
  getAllPermissions?(user: U, obj?: unknown): Promise<Set<string>> | Set<string>;
  hasPerm?(user: U, perm: string, obj?: unknown): Promise<boolean> | boolean;
  /** Whether the user has any permission of the app `appLabel` (Django's `has_module_perms`). */
  hasModulePerms?(user: U, appLabel: string): Promise<boolean> | boolean;
  /** Whether this user may be logged in at all, checked again on every request (default: `isActive !== false`). */
  userCanAuthenticate?(user: U): boolean;
  /** Credential fields naming an account, counted by the login throttle besides `username` and `email`. */
  readonly identifierFields?: readonly string[];
  /**
   * The user table whose rows `userFromSessionRow` turns into this backend's users: a
   * `TypeOrmSessionStore` on the same DataSource then reads the session's user row in the same
   * statement as the session (one read per logged-in request instead of two). Asked once at
   * start-up; `undefined`: none.
   */
  sessionUserTable?(): { dataSource: DataSource; entity: Function } | undefined;
  /**
   * `getUser(id)` from the row read along with the session, by the same rules (`null`: no such
   * user, or one that may not log in). `undefined` when the row is of no use here (another table,
   * another id): `getUser(id)` is asked instead.
   */
  userFromSessionRow?(prefetched: PrefetchedUser, id: string): U | null | undefined;
  /**
   * A "Log in with …" button on the built-in login page, for a login that starts elsewhere: a
   * form posting the CSRF token, `provider` and `next` to `action`.
   */
  readonly loginButton?: { label: string; provider: string; action: string };
  /**
   * The TypeORM entities this backend reads and writes, and their DataSource. Checked when the
   * app starts: an entity missing from `entities`, or a table missing from the database, stops
   * the start with a message instead of failing the first login.
   */
  requiredEntities?(): RequiredEntities | undefined;
}

/** Name a backend is recorded under in sessions. */
export function backendName(backend: AuthBackend): string {
  return backend.name && typeof backend.name === 'string' && backend.name !== 'Object'
    ? backend.name
    : backend.constructor.name;
}
