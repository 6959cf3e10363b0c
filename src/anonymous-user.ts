/**
 * The user of a request that is not logged in (Django's `AnonymousUser`). Every instance
 * is equal to every other; it has no id, no flags and no permissions of its own.
 */
export class AnonymousUser {
  readonly id = null;
  readonly pk = null;
  readonly username = '';
  readonly isAuthenticated = false;
  readonly isAnonymous = true;
  readonly isActive = false;
  readonly isStaff = false;
  readonly isSuperuser = false;
  readonly backend = undefined;

  getUsername(): string {
    return '';
  }

  equals(other: unknown): boolean {
    return other instanceof AnonymousUser;
  }

  toString(): string {
    return 'AnonymousUser';
  }

  toJSON(): Record<string, unknown> {
    return { id: null, username: '', isAuthenticated: false };
  }
}

/** What `@CurrentUser()` and `request.user` hold: a logged-in user or the anonymous one. */
export type RequestUser<U = AuthenticatedUser> = U | AnonymousUser;

/**
 * The shape every user handed out by the module has: the backend that vouched for it and
 * `isAuthenticated === true`.
 */
export interface AuthenticatedUser {
  id: unknown;
  isAuthenticated: true;
  backend: string;
  [key: string]: unknown;
}

export function isAuthenticated(user: unknown): boolean {
  return !!user && (user as { isAuthenticated?: unknown }).isAuthenticated === true;
}
