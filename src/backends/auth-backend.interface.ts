import type { Request } from 'express';

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
}

/** Name a backend is recorded under in sessions. */
export function backendName(backend: AuthBackend): string {
  return backend.name && typeof backend.name === 'string' && backend.name !== 'Object'
    ? backend.name
    : backend.constructor.name;
}
