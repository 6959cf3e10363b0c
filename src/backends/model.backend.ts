import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { Permission } from '../storage/permission.entity.js';
import { UserManager } from '../user.manager.js';
import type { Credentials } from './auth-backend.interface.js';
import { BaseBackend } from './base.backend.js';

const PERMISSION_CACHE = Symbol('nestjs-session-auth:permission-cache');

interface PermissionCache {
  user?: Set<string>;
  group?: Set<string>;
}

/**
 * Users and passwords from the built-in user table (Django's `ModelBackend`): inactive users are
 * refused, an unknown username costs as much time as a wrong password, and permissions come
 * from the user's own grants and their groups'.
 */
@Injectable()
export class ModelBackend extends BaseBackend {
  constructor(
    protected readonly users: UserManager<any>,
    protected readonly dataSource: DataSource,
  ) {
    super();
  }

  async authenticate(_request: Request | undefined, credentials: Credentials): Promise<any | null> {
    const { username, password } = credentials;
    if (typeof username !== 'string' || typeof password !== 'string') return null;
    const user = await this.users.findByUsername(username);
    if (!user) {
      // Hash anyway so response time does not reveal which usernames exist.
      await this.users.checkPassword({ password: null } as any, password);
      return null;
    }
    if (!(await this.users.checkPassword(user, password))) return null;
    return this.userCanAuthenticate(user) ? user : null;
  }

  async getUser(id: string): Promise<any | null> {
    const user = await this.users.findById(id);
    return user && this.userCanAuthenticate(user) ? user : null;
  }

  /** Refuse inactive users; `AllowAllUsersModelBackend` overrides this. */
  userCanAuthenticate(user: { isActive?: boolean }): boolean {
    return user.isActive !== false;
  }

  override async getUserPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.cachedPermissions(user, obj, 'user', () =>
      this.dataSource.createQueryBuilder().relation(this.users.entity, 'userPermissions').of(user).loadMany<Permission>(),
    );
  }

  override async getGroupPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.cachedPermissions(user, obj, 'group', async () => {
      const groups = await this.dataSource
        .createQueryBuilder()
        .relation(this.users.entity, 'groups')
        .of(user)
        .loadMany<{ id: number }>();
      if (groups.length === 0) return [];
      return this.dataSource
        .getRepository(Permission)
        .createQueryBuilder('permission')
        .innerJoin('auth_group_permissions', 'grant', 'grant.permission_id = permission.id')
        .where('grant.group_id IN (:...ids)', { ids: groups.map((group) => group.id) })
        .getMany();
    });
  }

  /** Object-level checks get nothing here (B79); a backend that knows the object answers them. */
  private async cachedPermissions(
    user: any,
    obj: unknown,
    kind: keyof PermissionCache,
    load: () => Promise<Permission[]>,
  ): Promise<Set<string>> {
    if (!user?.isAuthenticated || user.isActive === false || obj != null) return new Set();
    const cache: PermissionCache = (user[PERMISSION_CACHE] ??= {});
    if (!cache[kind]) {
      const permissions = user.isSuperuser
        ? await this.dataSource.getRepository(Permission).find()
        : await load();
      cache[kind] = new Set(permissions.map((permission) => permission.codename));
    }
    return cache[kind]!;
  }
}

/** Like `ModelBackend`, but inactive users can log in too (Django's `AllowAllUsersModelBackend`). */
@Injectable()
export class AllowAllUsersModelBackend extends ModelBackend {
  override userCanAuthenticate(): boolean {
    return true;
  }
}
