import { Injectable } from '@nestjs/common';
import { DataSource, In, type ObjectLiteral } from 'typeorm';
import { clearPermissionCache } from './backends/model.backend.js';
import { Group } from './storage/group.entity.js';
import { Permission } from './storage/permission.entity.js';
import { isUniqueViolation } from './storage/unique-violation.js';
import { UserManager } from './user.manager.js';

/** A permission given by its `'app.action'` name or as a saved `Permission`. */
export type PermissionRef = string | Permission;
/** A group given by its name or as a saved `Group`. */
export type GroupRef = string | Group;

export interface UsersWithPermOptions {
  /** `true` (default) active users only, `false` inactive only, `null` either. */
  isActive?: boolean | null;
  /** Count superusers as holding every permission (default `true`). */
  includeSuperusers?: boolean;
  /** Object-level question: the built-in tables hold no object permissions, so none. */
  obj?: unknown;
}

const MAX_CODENAME_LENGTH = 255;
const MAX_GROUP_NAME_LENGTH = 150;
const PERMISSION_NAME = /^[^.\s]+\.[^.\s]+$/;

/**
 * Check that `perm` is a permission name of the form `'app.action'` (exactly one dot) and
 * return it. Anything else is a programming error, reported with what to write instead.
 */
export function checkPermissionName(perm: unknown): string {
  if (typeof perm !== 'string') {
    throw new TypeError("The permission must be a string such as 'blog.add_post' or a Permission.");
  }
  if (!PERMISSION_NAME.test(perm) || perm.length > MAX_CODENAME_LENGTH) {
    throw new Error(
      `Permission name should be in the form app_label.permission_codename, such as 'blog.add_post'; got '${perm}'.`,
    );
  }
  return perm;
}

/**
 * Creates permissions and groups and grants them (what Django does with `Permission.objects`,
 * `Group.objects` and `user.user_permissions.add()`), over the built-in tables `ModelBackend`
 * reads. Creating is idempotent, so seeding code can run at every start.
 *
 * `ModelBackend` caches permissions on the user instance. Granting to or revoking from a
 * user, or changing their groups, clears that instance's cache; other instances of the same
 * user, and members of a group whose permissions changed, see the change once reloaded (every
 * request loads its user afresh).
 */
@Injectable()
export class PermissionManager {
  constructor(
    private readonly dataSource: DataSource,
    private readonly users: UserManager<any>,
  ) {}

  /** The permission named `codename`, created when missing; a given `name` is kept up to date. */
  async createPermission(codename: string, name?: string): Promise<Permission> {
    checkPermissionName(codename);
    if (name !== undefined && (typeof name !== 'string' || name.length > 255)) {
      throw new TypeError('A permission name must be a string of at most 255 characters.');
    }
    const repository = this.dataSource.getRepository(Permission);
    const existing = await repository.findOneBy({ codename });
    if (existing) {
      if (name !== undefined && existing.name !== name) {
        await repository.update({ id: existing.id }, { name });
        existing.name = name;
      }
      return existing;
    }
    return repository.save(repository.create({ codename, name: name ?? codename }), { transaction: false });
  }

  /** The permission named `codename`, or `null`. */
  getPermission(codename: string): Promise<Permission | null> {
    checkPermissionName(codename);
    return this.dataSource.getRepository(Permission).findOneBy({ codename });
  }

  /** The group named `name`, created when missing, holding at least `perms` (which must exist). */
  async createGroup(name: string, perms: PermissionRef[] = []): Promise<Group> {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_GROUP_NAME_LENGTH) {
      throw new TypeError(`A group name must be a non-empty string of at most ${MAX_GROUP_NAME_LENGTH} characters.`);
    }
    const permissions = await Promise.all(perms.map((perm) => this.permission(perm)));
    const repository = this.dataSource.getRepository(Group);
    const group =
      (await repository.findOneBy({ name })) ??
      (await repository.save(repository.create({ name }), { transaction: false }).catch(async (error: unknown) => {
        // Made meanwhile by a concurrent request (two first logins mirroring the same groups).
        const made = isUniqueViolation(error) ? await repository.findOneBy({ name }) : null;
        if (!made) throw error;
        return made;
      }));
    for (const permission of permissions) await this.link(Group, 'permissions', group, permission, true);
    return group;
  }

  /** The group named `name`, or `null`. */
  getGroup(name: string): Promise<Group | null> {
    if (typeof name !== 'string' || name.length === 0) return Promise.resolve(null);
    return this.dataSource.getRepository(Group).findOneBy({ name });
  }

  async addUserToGroup(user: object, group: GroupRef): Promise<void> {
    await this.link(this.userEntity(user), 'groups', user, await this.group(group), true);
    clearPermissionCache(user);
  }

  async removeUserFromGroup(user: object, group: GroupRef): Promise<void> {
    await this.link(this.userEntity(user), 'groups', user, await this.group(group), false);
    clearPermissionCache(user);
  }

  /** The groups a user belongs to (Django's `user.groups.all()`). */
  userGroups(user: object): Promise<Group[]> {
    return this.dataSource.createQueryBuilder().relation(this.userEntity(user), 'groups').of(user as ObjectLiteral).loadMany<Group>();
  }

  /**
   * Make the user's groups follow an outside source (a directory, a provider's claim): the
   * groups named in `names` are joined (created when missing), the others left; with `only`, only
   * groups of those names are touched and the user's other groups stay.
   */
  async setUserGroups(user: object, names: Iterable<string>, only?: Iterable<string>): Promise<void> {
    const managed = only ? new Set(only) : null;
    const touched = (name: string) => !managed || managed.has(name);
    const wanted = new Set([...names].filter((name) => isGroupName(name) && touched(name)));
    const current = await this.userGroups(user);
    for (const group of current) {
      if (touched(group.name) && !wanted.has(group.name)) await this.removeUserFromGroup(user, group);
    }
    const have = new Set(current.map((group) => group.name));
    for (const name of wanted) {
      if (!have.has(name)) await this.addUserToGroup(user, await this.createGroup(name));
    }
  }

  /** The permissions of the groups with these names (the ones that exist), as `app.codename` strings. */
  async permissionsOfGroups(names: string[]): Promise<Set<string>> {
    const wanted = names.filter(isGroupName);
    if (wanted.length === 0) return new Set();
    const groups = await this.dataSource.getRepository(Group).find({ where: { name: In(wanted) }, relations: { permissions: true } });
    return new Set(groups.flatMap((group) => group.permissions.map((permission) => permission.codename)));
  }

  /** Grant `perm` (which must exist) to a user directly or to a group. Granting twice is harmless. */
  async grantPermission(target: object, perm: PermissionRef): Promise<void> {
    await this.changeGrant(target, perm, true);
  }

  /** Take a direct grant back from a user or a group; what a user gets through groups stays. */
  async revokePermission(target: object, perm: PermissionRef): Promise<void> {
    await this.changeGrant(target, perm, false);
  }

  /**
   * The users holding `perm` through a direct grant, a group or (by default) by being a
   * superuser; active ones only unless `isActive` says otherwise (Django's `with_perm`).
   */
  async usersWithPerm(perm: PermissionRef, options: UsersWithPermOptions = {}): Promise<any[]> {
    const codename = perm instanceof Permission ? perm.codename : checkPermissionName(perm);
    const { isActive = true, includeSuperusers = true, obj } = options;
    if (obj != null) return [];
    const repository = this.users.repository;
    const metadata = repository.metadata;
    const key = metadata.primaryColumns[0].propertyName;
    const query = repository.createQueryBuilder('member');
    const holders: string[] = [];
    for (const [relation, joins] of [
      ['userPermissions', (q: any) => q.innerJoin('holder.userPermissions', 'permission')],
      ['groups', (q: any) => q.innerJoin('holder.groups', 'grp').innerJoin('grp.permissions', 'permission')],
    ] as const) {
      if (!metadata.findRelationWithPropertyPath(relation)) continue;
      const sub = joins(query.subQuery().select(`holder.${key}`).from(this.users.entity, 'holder'));
      holders.push(`member.${key} IN ${sub.where('permission.codename = :codename').getQuery()}`);
    }
    if (includeSuperusers && metadata.findColumnWithPropertyName('isSuperuser')) holders.push('member.isSuperuser = :superuser');
    if (holders.length === 0) return [];
    query.where(`(${holders.join(' OR ')})`, { codename, superuser: true });
    if (isActive !== null && metadata.findColumnWithPropertyName('isActive')) {
      query.andWhere('member.isActive = :active', { active: isActive });
    }
    return query.orderBy(`member.${key}`).getMany();
  }

  private async changeGrant(target: object, perm: PermissionRef, add: boolean): Promise<void> {
    const permission = await this.permission(perm);
    if (target instanceof Group) {
      await this.link(Group, 'permissions', target, permission, add);
      return;
    }
    await this.link(this.userEntity(target), 'userPermissions', target, permission, add);
    clearPermissionCache(target);
  }

  /** The user entity, after checking `user` is a saved one that has the relations needed. */
  private userEntity(user: unknown): Function {
    const key = this.users.repository.metadata.primaryColumns[0].propertyName;
    if (!this.users.manages(user) || (user as Record<string, unknown>)[key] == null) {
      throw new TypeError(
        `Expected a saved ${this.users.entity.name} (load it with UserManager) or a Group; got ${describe(user)}.`,
      );
    }
    return this.users.entity;
  }

  private async permission(perm: PermissionRef): Promise<Permission> {
    if (perm instanceof Permission) {
      if (perm.id === undefined) throw new TypeError(`Permission '${perm.codename}' is not saved; use createPermission().`);
      return perm;
    }
    const found = await this.getPermission(perm);
    if (!found) throw new Error(`Permission '${perm}' does not exist; create it with createPermission() first.`);
    return found;
  }

  private async group(group: GroupRef): Promise<Group> {
    if (group instanceof Group) {
      if (group.id === undefined) throw new TypeError(`Group '${group.name}' is not saved; use createGroup().`);
      return group;
    }
    const found = await this.getGroup(group);
    if (!found) throw new Error(`Group '${String(group)}' does not exist; create it with createGroup() first.`);
    return found;
  }

  /** Add or remove one row of a many-to-many relation, doing nothing when it is already so. */
  private async link(entity: Function, relation: string, owner: object, item: { id: number }, add: boolean): Promise<void> {
    if (!this.dataSource.getMetadata(entity).findRelationWithPropertyPath(relation)) {
      throw new TypeError(`${entity.name} has no '${relation}' relation; add it to the entity to grant permissions.`);
    }
    const related = () => this.dataSource.createQueryBuilder().relation(entity, relation).of(owner as ObjectLiteral);
    const current = await related().loadMany<{ id: number }>();
    const present = current.some((row) => row.id === item.id);
    try {
      if (add && !present) await related().add(item);
    } catch (error) {
      // Added meanwhile by a concurrent request: what was asked for is there.
      if (!isUniqueViolation(error)) throw error;
    }
    if (!add && present) await related().remove(item);
  }
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return `a ${value.constructor?.name ?? 'plain object'}`;
}

/** A name a group can have: text that fits the column, without a NUL byte (PostgreSQL refuses them). */
function isGroupName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_GROUP_NAME_LENGTH && !name.includes('\0');
}
