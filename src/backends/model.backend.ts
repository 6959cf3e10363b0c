import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { Permission } from '../storage/permission.entity.js';
import type { PrefetchedUser } from '../storage/prefetched-user.js';
import type { RequiredEntities } from '../storage/required-entities.js';
import { UserManager } from '../user.manager.js';
import type { Credentials } from './auth-backend.interface.js';
import { BaseBackend } from './base.backend.js';

const PERMISSION_CACHE = Symbol('nestjs-session-auth:permission-cache');

interface PermissionCache {
  user?: Promise<Set<string>>;
  group?: Promise<Set<string>>;
  all?: Promise<Set<string>>;
}

/**
 * Forget the permissions cached on `user`, so the next check reads the database again. Checks
 * are cached on the user instance; a fresh instance per request never sees stale grants,
 * but code that changes grants and checks the same instance again calls this.
 */
export function clearPermissionCache(user: unknown): void {
  if (user && typeof user === 'object') delete (user as any)[PERMISSION_CACHE];
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

  /** Its users, and `Permission` (a superuser holds every permission there is). */
  requiredEntities(): RequiredEntities | undefined {
    return { dataSource: this.users.dataSource, entities: [this.users.entity, Permission] };
  }

  /** The `UserManager`'s table, unless a subclass loads its users its own way (its own `getUser()`). */
  sessionUserTable(): { dataSource: DataSource; entity: Function } | undefined {
    return this.readsOwnUsers ? { dataSource: this.users.dataSource, entity: this.users.entity } : undefined;
  }

  /**
   * `getUser(id)` from the row the session store read along with the session, by the same
   * rules; `undefined` when this backend cannot use it (a subclass that loads users its own way,
   * another user entity, another id): the resolver then calls `getUser()`.
   */
  userFromSessionRow(prefetched: PrefetchedUser, id: string): any | null | undefined {
    if (!this.readsOwnUsers) return undefined;
    if (prefetched.entity !== this.users.entity || prefetched.userId !== id) return undefined;
    const user = prefetched.row && this.users.fromRow(prefetched.row, id);
    return user && this.userCanAuthenticate(user) ? user : null;
  }

  /** Whether `getUser()` is this class's own, so a row read along with the session can stand in for it. */
  private get readsOwnUsers(): boolean {
    return this.getUser === ModelBackend.prototype.getUser;
  }

  /** Refuse inactive users; `AllowAllUsersModelBackend` overrides this. */
  userCanAuthenticate(user: { isActive?: boolean }): boolean {
    return user.isActive !== false;
  }

  override getUserPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.cached(user, obj, 'user', () => this.loadCodenames(user, 'userPermissions'));
  }

  override getGroupPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.cached(user, obj, 'group', () => this.loadCodenames(user, 'groups'));
  }

  override getAllPermissions(user: any, obj?: unknown): Promise<Set<string>> {
    return this.cached(user, obj, 'all', async () => {
      if (user.isSuperuser) return this.everyPermission();
      const [own, groups] = await Promise.all([this.getUserPermissions(user), this.getGroupPermissions(user)]);
      return new Set([...own, ...groups]);
    });
  }

  /**
   * Only active, authenticated users of this backend's user entity hold permissions here;
   * anything else, and every object-level check, gets none. A user object some other
   * backend built is not a row of the user table, even when its id happens to match one.
   */
  protected holdsPermissions(user: any, obj: unknown): boolean {
    return obj == null && this.users.manages(user) && user.isAnonymous !== true && user.isActive !== false;
  }

  /** Results live on the user instance, as a promise so concurrent checks share one query. */
  private cached(user: any, obj: unknown, kind: keyof PermissionCache, load: () => Promise<Set<string>>): Promise<Set<string>> {
    if (!this.holdsPermissions(user, obj)) return Promise.resolve(new Set());
    if (!Object.hasOwn(user, PERMISSION_CACHE)) {
      Object.defineProperty(user, PERMISSION_CACHE, { value: {}, configurable: true, enumerable: false, writable: true });
    }
    const cache: PermissionCache = user[PERMISSION_CACHE];
    if (!cache[kind]) {
      const loading = load();
      cache[kind] = loading;
      // A failed query is not remembered: the next check asks the database again.
      loading.catch(() => {
        if (cache[kind] === loading) delete cache[kind];
      });
    }
    return cache[kind]!;
  }

  /** Codenames granted to the user directly (`userPermissions`) or through `groups`. */
  private async loadCodenames(user: any, via: 'userPermissions' | 'groups'): Promise<Set<string>> {
    if (user.isSuperuser) return this.everyPermission();
    const metadata = this.users.repository.metadata;
    // A custom user entity without the relation simply grants nothing through it.
    if (!metadata.findRelationWithPropertyPath(via)) return new Set();
    const key = metadata.primaryColumns[0].propertyName;
    const query = this.users.repository.createQueryBuilder('member').select('permission.codename', 'codename');
    if (via === 'userPermissions') query.innerJoin('member.userPermissions', 'permission');
    else query.innerJoin('member.groups', 'grp').innerJoin('grp.permissions', 'permission');
    const rows = await query.where(`member.${key} = :key`, { key: user[key] }).getRawMany<{ codename: string }>();
    return new Set(rows.map((row) => row.codename));
  }

  private async everyPermission(): Promise<Set<string>> {
    const rows = await this.dataSource.getRepository(Permission).find({ select: { codename: true } });
    return new Set(rows.map((row) => row.codename));
  }
}

/** Like `ModelBackend`, but inactive users can log in too (Django's `AllowAllUsersModelBackend`). */
@Injectable()
export class AllowAllUsersModelBackend extends ModelBackend {
  override userCanAuthenticate(): boolean {
    return true;
  }
}
