import type { Request } from 'express';
import type { AuthBackend, Credentials } from './auth-backend.interface.js';

/** A backend that grants no permissions unless a subclass says otherwise. */
export abstract class BaseBackend<U = any> implements AuthBackend<U> {
  abstract authenticate(request: Request | undefined, credentials: Credentials): Promise<U | null | undefined> | U | null | undefined;
  abstract getUser(id: string): Promise<U | null | undefined> | U | null | undefined;

  async getUserPermissions(_user: U, _obj?: unknown): Promise<Set<string>> {
    return new Set();
  }

  async getGroupPermissions(_user: U, _obj?: unknown): Promise<Set<string>> {
    return new Set();
  }

  async getAllPermissions(user: U, obj?: unknown): Promise<Set<string>> {
    const [own, groups] = await Promise.all([this.getUserPermissions(user, obj), this.getGroupPermissions(user, obj)]);
    return new Set([...own, ...groups]);
  }

  async hasPerm(user: U, perm: string, obj?: unknown): Promise<boolean> {
    return (await this.getAllPermissions(user, obj)).has(perm);
  }

  /** True when the user has any permission of the app `appLabel` (Django's `has_module_perms`). */
  async hasModulePerms(user: U, appLabel: string): Promise<boolean> {
    for (const perm of await this.getAllPermissions(user)) {
      if (perm.slice(0, perm.indexOf('.')) === appLabel) return true;
    }
    return false;
  }
}
