import { Injectable } from '@nestjs/common';
import { isAuthenticated } from './anonymous-user.js';
import type { AuthBackend } from './backends/auth-backend.interface.js';
import { BackendRegistry } from './backends/backend.registry.js';
import { PermissionDenied } from './errors.js';

/**
 * What a user may do, asked of every configured backend (Django's `ModelBackend` permission
 * methods behind `User.has_perm` and friends). An active superuser has every permission; else
 * any backend granting is enough, and a backend throwing `PermissionDenied` denies at once.
 * Internal: apps ask `AuthService.hasPerm()` and its siblings, the access guard asks this.
 */
@Injectable()
export class PermissionChecker {
  constructor(private readonly backends: BackendRegistry) {}

  /** Django's `has_perm`. */
  async hasPerm(user: any, perm: string, obj?: unknown): Promise<boolean> {
    return this.anyBackendGrants(user, (backend) => backendHasPerm(backend, user, perm, obj));
  }

  /** True when the user has every permission in the list (Django's `has_perms`); an empty list is always true. */
  async hasPerms(user: any, perms: Iterable<string>, obj?: unknown): Promise<boolean> {
    if (typeof perms === 'string' || perms == null || typeof (perms as any)[Symbol.iterator] !== 'function') {
      throw new TypeError("permList must be an iterable of permissions, such as ['blog.add_post'].");
    }
    for (const perm of perms) {
      if (!(await this.hasPerm(user, perm, obj))) return false;
    }
    return true;
  }

  /**
   * True when the user has any permission of the app `appLabel` (Django's `has_module_perms`):
   * same rules as `hasPerm`, asking each backend's `hasModulePerms` or its permission list.
   */
  async hasModulePerms(user: any, appLabel: string): Promise<boolean> {
    return this.anyBackendGrants(user, (backend) => backendHasModulePerms(backend, user, appLabel));
  }

  /**
   * Every permission the backends list for the user (Django's `get_all_permissions`). Backends
   * that only answer `hasPerm` cannot list theirs; a backend throwing `PermissionDenied` makes
   * the answer empty, as it would make every `hasPerm` false.
   */
  getAllPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.collect((backend) => backend.getAllPermissions?.(user, obj));
  }

  /** The permissions granted to the user directly (Django's `get_user_permissions`). */
  getUserPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.collect((backend) => backend.getUserPermissions?.(user, obj));
  }

  /** The permissions the user has through groups (Django's `get_group_permissions`). */
  getGroupPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.collect((backend) => backend.getGroupPermissions?.(user, obj));
  }

  private async collect(list: (backend: AuthBackend) => Promise<Set<string>> | Set<string> | undefined): Promise<Set<string>> {
    const all = new Set<string>();
    for (const { backend } of this.backends.all) {
      try {
        for (const perm of (await list(backend)) ?? []) all.add(perm);
      } catch (error) {
        if (error instanceof PermissionDenied) return new Set();
        throw error;
      }
    }
    return all;
  }

  /** An active superuser has everything; else the first backend granting wins, PermissionDenied denies. */
  private async anyBackendGrants(user: any, grants: (backend: AuthBackend) => Promise<boolean>): Promise<boolean> {
    if (user?.isActive && user.isSuperuser && isAuthenticated(user)) return true;
    for (const { backend } of this.backends.all) {
      try {
        if (await grants(backend)) return true;
      } catch (error) {
        if (error instanceof PermissionDenied) return false;
        throw error;
      }
    }
    return false;
  }
}

async function backendHasModulePerms(backend: AuthBackend, user: any, appLabel: string): Promise<boolean> {
  if (typeof backend.hasModulePerms === 'function') return backend.hasModulePerms(user, appLabel);
  if (typeof backend.getAllPermissions !== 'function') return false;
  for (const perm of await backend.getAllPermissions(user)) {
    if (perm.slice(0, perm.indexOf('.')) === appLabel) return true;
  }
  return false;
}

async function backendHasPerm(backend: AuthBackend, user: any, perm: string, obj: unknown): Promise<boolean> {
  if (typeof backend.hasPerm === 'function') return backend.hasPerm(user, perm, obj);
  if (typeof backend.getAllPermissions === 'function') return (await backend.getAllPermissions(user, obj)).has(perm);
  return false;
}
