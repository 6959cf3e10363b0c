import { Injectable, Logger, type Type } from '@nestjs/common';
import type { Request } from 'express';
import { PermissionDenied } from '../../errors.js';
import { ExternalUsers } from '../../external-users.js';
import { PermissionManager } from '../../permission.manager.js';
import { ExternalIdentity } from '../../storage/external-identity.entity.js';
import { Group } from '../../storage/group.entity.js';
import { Permission } from '../../storage/permission.entity.js';
import type { RequiredEntities } from '../../storage/required-entities.js';
import { UserManager } from '../../user.manager.js';
import type { Credentials } from '../auth-backend.interface.js';
import { BaseBackend, configuredBackend, configuredOptions } from '../base.backend.js';
import { LdapDirectory, normalizeDn, type LdapGroup, type LdapUser } from './ldap-directory.js';
import { resolveLdapOptions, type LdapBackendOptions, type LdapGroupRule, type ResolvedLdapOptions } from './ldap.options.js';

const MAX_USERNAME_LENGTH = 150;
const MAX_CACHED_USERS = 1000;

/** What `populateUser` is given: the local user (before it is saved) and what the directory says. */
export interface LdapPopulateContext {
  user: any;
  ldapUser: LdapUser;
  groups: LdapGroup[];
  created: boolean;
  request: Request | undefined;
}

/**
 * Users from an LDAP directory (django-auth-ldap's `LDAPBackend`): the directory checks the
 * password, and the local user is created at the first login (with an unusable password, so no
 * other backend accepts one for it) and brought in line at each login: profile fields from
 * `userAttrMap`, flags from `userFlagsByGroup`, local groups from `mirrorGroups`. Requests load
 * the user from the local database, never from the directory.
 *
 * ```ts
 * backends: [LdapBackend.configure({ url: 'ldap://ldap.example.com', userDnTemplate: 'uid=%(user)s,ou=people,dc=example,dc=com' }), ModelBackend]
 * ```
 *
 * The local user is linked to the entry by its `entryUUID` (`ExternalUsers`), not by name: a
 * renamed entry keeps its user, and an entry named like a local account this backend did not
 * create (`uid=admin`) does not log into it, unless `linkExistingUsers` says so.
 *
 * A directory that is down or too slow is `DirectoryUnavailable` (503), never a wrong password
 * and never a pass to the next backend. A directory user refused here (another password for a
 * local user linked to the directory, `requireGroup`/`denyGroup`, a namesake it may not link, a
 * deactivated user) stops the chain (`PermissionDenied`), so a later backend cannot let them in
 * with another password.
 */
@Injectable()
export class LdapBackend extends BaseBackend {
  readonly name: string;
  protected readonly settings: ResolvedLdapOptions;
  protected readonly directory: LdapDirectory;
  private readonly logger = new Logger('LdapBackend');
  /** Directory group names by user id, for `findGroupPerms`: `[expires, names]`, oldest first. */
  private readonly groupCache = new Map<string, [number, string[]]>();

  constructor(
    protected readonly users: UserManager<any>,
    protected readonly permissions: PermissionManager,
    protected readonly externalUsers: ExternalUsers,
  ) {
    super();
    this.settings = resolveLdapOptions(this.ldapOptions());
    this.name = this.settings.name;
    this.directory = new LdapDirectory(this.settings);
  }

  /** A backend class with these options, for `AuthModule.forRoot({ backends: [...] })`. */
  static configure(options: LdapBackendOptions): Type<LdapBackend> {
    resolveLdapOptions(options);
    return configuredBackend(LdapBackend, options, options.name ?? 'LdapBackend');
  }

  /** The options of this backend (by default those given to `configure`; a subclass of your own may override this). */
  protected ldapOptions(): LdapBackendOptions {
    const options = configuredOptions<LdapBackendOptions>(this);
    if (!options) throw new TypeError('Use LdapBackend.configure({ url, ... }) in backends, or override ldapOptions() in a subclass.');
    return options;
  }

  /**
   * Customise the local user before it is saved (django-auth-ldap's `populate_user` signal):
   * runs at every login that updates the user. Override it in a subclass.
   */
  protected populateUser(_context: LdapPopulateContext): void | Promise<void> {}

  /** Its users and their links to entries; groups to mirror, and their permissions for `findGroupPerms`. */
  requiredEntities(): RequiredEntities {
    const { mirrorGroups, findGroupPerms } = this.settings;
    const entities: Function[] = [this.users.entity, ExternalIdentity];
    if (mirrorGroups || findGroupPerms) entities.push(Group);
    if (findGroupPerms) entities.push(Permission);
    return { dataSource: this.users.dataSource, entities };
  }

  async authenticate(request: Request | undefined, credentials: Credentials): Promise<any | null> {
    const { username, password } = credentials;
    if (typeof username !== 'string' || typeof password !== 'string') return null;
    if (!isPlausibleUsername(username)) return null;
    // An empty password would be an unauthenticated bind, which LDAP servers accept: no login.
    if (password === '' || password.includes('\0')) return null;

    const ldapUser = await this.directory.bindUser(username, password);
    if (!ldapUser) return this.refused(username);
    const groups = this.settings.groupSearch ? await this.directory.groupsOf(ldapUser) : [];
    const memberOf = memberTest(groups);
    if (this.settings.requireGroup !== undefined && !memberOf(this.settings.requireGroup)) {
      this.logger.log(`${username} is not in requireGroup: not logged in.`);
      throw new PermissionDenied();
    }
    if (this.settings.denyGroup !== undefined && memberOf(this.settings.denyGroup)) {
      this.logger.log(`${username} is in denyGroup: not logged in.`);
      throw new PermissionDenied();
    }

    const found = await this.externalUsers.find({
      source: this.name,
      subject: ldapUser.identity,
      username: ldapUser.username,
      createUsers: this.settings.createUsers,
      linkExistingUsers: this.settings.linkExistingUsers,
      whenNameTaken: 'refuse',
    });
    if (!found) {
      // A local account of that name the directory may not take over (logged), or none with createUsers: false.
      if (!this.settings.createUsers) this.logger.log(`${ldapUser.dn} has no local user here, and createUsers is false: not logged in.`);
      throw new PermissionDenied();
    }
    let user = found.user;
    const update = found.created || this.settings.alwaysUpdateUser;
    if (update) {
      if (!found.created) await this.followRename(user, ldapUser);
      this.populateFromDirectory(user, ldapUser, memberOf);
      await this.populateUser({ user, ldapUser, groups, created: found.created, request });
    }
    if (update || found.link) user = await this.externalUsers.save(found);
    // Deactivated here (or by userFlagsByGroup.isActive): no login, and no other backend asked.
    if (user.isActive === false) throw new PermissionDenied();
    if (this.settings.mirrorGroups) {
      const only = Array.isArray(this.settings.mirrorGroups) ? this.settings.mirrorGroups : undefined;
      await this.permissions.setUserGroups(user, groups.map((group) => group.name), only);
    }
    this.rememberGroups(user, groups);
    return user;
  }

  /**
   * The directory did not accept the password (or knows nobody by that name: not told apart).
   * For a local user linked to this directory that ends the login, so a password kept here
   * cannot open a directory user's account; any other name goes on to the next backend.
   */
  private async refused(username: string): Promise<null> {
    const local = await this.users.findByUsername(username);
    if (local && (await this.externalUsers.isLinked(local, this.name))) throw new PermissionDenied();
    return null;
  }

  /** A linked user whose entry was renamed takes the new name, unless a local account has it. */
  private async followRename(user: any, ldapUser: LdapUser): Promise<void> {
    const username = ldapUser.username.normalize('NFKC');
    if (user.username === username) return;
    if (await this.users.findByUsername(username)) {
      this.logger.warn(`${ldapUser.dn} is now '${username}', a name another local account has: its local user stays '${user.username}'.`);
      return;
    }
    user.username = username;
  }

  getUser(id: string): Promise<any | null> {
    return this.users.findById(id);
  }

  /** With `findGroupPerms`: the permissions of the local groups named like the user's directory groups. */
  override async getGroupPermissions(user: any): Promise<Set<string>> {
    if (!this.settings.findGroupPerms || !user || user.backend !== this.name || user.isActive === false) return new Set();
    return this.permissions.permissionsOfGroups(await this.directoryGroupNames(user));
  }

  /** The directory's group names for a logged-in user: remembered from the login, else asked again. */
  private async directoryGroupNames(user: any): Promise<string[]> {
    const key = String(user.id);
    const cached = this.groupCache.get(key);
    if (cached && cached[0] > Date.now()) return cached[1];
    const entry = await this.directory.lookUpUser(String(user.username));
    // The entry now holding the name may be someone else's (a rename, a deleted entry's successor).
    const linked = entry && String((await this.externalUsers.linkedUser(this.name, entry.identity))?.id) === key;
    const groups = linked ? await this.directory.groupsOf(entry) : [];
    this.rememberGroups(user, groups);
    return groups.map((group) => group.name);
  }

  private rememberGroups(user: any, groups: LdapGroup[]): void {
    if (!this.settings.findGroupPerms || this.settings.groupCacheTimeout <= 0) return;
    const key = String(user.id);
    this.groupCache.delete(key);
    if (this.groupCache.size >= MAX_CACHED_USERS) this.groupCache.delete(this.groupCache.keys().next().value!);
    this.groupCache.set(key, [Date.now() + this.settings.groupCacheTimeout, groups.map((group) => group.name)]);
  }

  private populateFromDirectory(user: any, ldapUser: LdapUser, memberOf: (rule: LdapGroupRule) => boolean): void {
    for (const [field, attribute] of Object.entries(this.settings.userAttrMap)) {
      const value = ldapUser.attrs[attribute.toLowerCase()];
      if (value === undefined) {
        this.logger.warn(`${ldapUser.dn} has no ${attribute} attribute for ${field}.`);
        continue;
      }
      if (this.users.canStore(field, value)) user[field] = value;
      else if (this.users.hasField(field)) this.logger.warn(`${ldapUser.dn}: its ${attribute} cannot be stored as ${field} (too long, or a NUL byte): left as it was.`);
    }
    for (const [flag, rule] of Object.entries(this.settings.userFlagsByGroup ?? {})) {
      if (rule !== undefined) user[flag] = memberOf(rule);
    }
  }
}

/** Whether `user` is in a group of `rule` (DNs compared in one spelling). */
function memberTest(groups: LdapGroup[]): (rule: LdapGroupRule) => boolean {
  const dns = new Set(groups.map((group) => normalizeDn(group.dn)));
  return (rule) => [rule].flat().some((dn) => dns.has(normalizeDn(dn)));
}

/** A username worth asking the directory about: not empty, not too long, no control characters, no surrounding spaces. */
function isPlausibleUsername(username: string): boolean {
  return (
    username.length > 0 &&
    username.length <= MAX_USERNAME_LENGTH &&
    username.trim() === username &&
    !/[\u0000-\u001f\u007f]/.test(username)
  );
}
