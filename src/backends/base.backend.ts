import { Injectable, type Type } from '@nestjs/common';
import type { Request } from 'express';
import type { AuthBackend, Credentials } from './auth-backend.interface.js';

const CONFIGURED_OPTIONS = Symbol('nestjs-session-auth:backend-options');

/**
 * A subclass of `Base` that carries `options` and is named `name`: what the `configure()` of a
 * backend with options returns, for `AuthModule.forRoot({ backends: [...] })`. Nest builds it with
 * `Base`'s injections.
 */
export function configuredBackend<B extends Type<object>>(Base: B, options: object, name: string): B {
  @Injectable()
  class Configured extends (Base as Type<object>) {}
  Object.defineProperty(Configured, CONFIGURED_OPTIONS, { value: options });
  Object.defineProperty(Configured, 'name', { value: name });
  return Configured as B;
}

/** The options `configuredBackend` gave the class of `backend` (or a class it extends). */
export function configuredOptions<T>(backend: object): T | undefined {
  return (backend.constructor as unknown as Record<symbol, T | undefined>)[CONFIGURED_OPTIONS];
}

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
