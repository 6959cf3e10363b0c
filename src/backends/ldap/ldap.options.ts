import type { ConnectionOptions } from 'node:tls';
import { ImproperlyConfigured } from '../../errors.js';
import type { LinkExistingUsers } from '../../external-users.js';

/** How the user's groups are found (django-auth-ldap's group types). */
export type LdapGroupType = 'groupOfNames' | 'groupOfUniqueNames' | 'posixGroup' | 'memberOf';

export interface LdapGroupSearch {
  /** Where the groups live, e.g. `ou=groups,dc=example,dc=com` (not needed for `memberOf`). */
  base?: string;
  scope?: 'one' | 'sub';
  type: LdapGroupType;
  /** Narrows the search; default the type's object class, e.g. `(objectClass=groupOfNames)`. */
  filter?: string;
  /** Attribute holding a group's name; default `cn`. */
  nameAttr?: string;
  /**
   * Groups that are members of the user's groups count too (`groupOfNames` and
   * `groupOfUniqueNames`; django-auth-ldap's `NestedGroupOfNamesType`), searched at most
   * `maxDepth` levels deep (default 8).
   */
  nested?: boolean;
  maxDepth?: number;
}

/** A group DN, or several (any of them). */
export type LdapGroupRule = string | string[];

export interface LdapBackendOptions {
  /** The name sessions record (default `LdapBackend`); set it when two directories are configured. */
  name?: string;
  /** `ldap://host:389` or `ldaps://host:636`; several are tried in order when one is unreachable. */
  url: string | string[];
  /** Upgrade `ldap://` connections with StartTLS before anything is sent. */
  startTls?: boolean;
  /** TLS settings for `ldaps://` and StartTLS (`ca`, `rejectUnauthorized`, `servername`...). */
  tlsOptions?: ConnectionOptions;
  /** Milliseconds to wait for a connection; default 5000. */
  connectTimeout?: number;
  /** Milliseconds to wait for each operation; default 5000. */
  timeout?: number;
  /** The service account searches run as (django-auth-ldap's `BIND_DN` / `BIND_PASSWORD`); anonymous without. */
  bindDn?: string;
  bindPassword?: string;
  /** A DN with `%(user)s` for the username, bound directly (`uid=%(user)s,ou=people,dc=example,dc=com`). */
  userDnTemplate?: string;
  /** Or: a search for the user, `%(user)s` in the filter standing for the username (escaped per RFC 4515). */
  userSearch?: { base: string; scope?: 'one' | 'sub'; filter: string };
  /**
   * The attribute the local username comes from (default `uid`; `sAMAccountName` on Active
   * Directory): the directory's spelling, whatever case the person typed.
   */
  usernameAttr?: string;
  /**
   * The attribute that names the person's entry for good, linking it to its local user: default
   * `entryUUID` (RFC 4530; OpenLDAP, 389 Directory Server), `objectGUID` on Active Directory,
   * `ipaUniqueID` on FreeIPA. An entry without it cannot log in (`DirectoryUnavailable`, logged).
   * `'dn'` links by the entry's DN instead, for directories with no such attribute: a deleted
   * entry's DN can be given to someone else, who then logs into the first person's local user.
   */
  identityAttr?: string;
  /**
   * Whether a directory user may log into a local account of the same name that this backend
   * did not create (default `false`: refused, and logged). See `LinkExistingUsers`: `true` links
   * accounts that are neither staff nor superusers; a function decides for every account.
   */
  linkExistingUsers?: LinkExistingUsers;
  /** Local user fields from directory attributes, e.g. `{ email: 'mail', firstName: 'givenName' }`. */
  userAttrMap?: Record<string, string>;
  /** Copy `userAttrMap` and the group flags at every login (default), or only when the user is created. */
  alwaysUpdateUser?: boolean;
  /**
   * Create the local user at the first login (default); `false` admits only directory users
   * whose local user is linked already, or may be linked (`linkExistingUsers`).
   */
  createUsers?: boolean;
  groupSearch?: LdapGroupSearch;
  /** Only members of this group (any of these) may log in. */
  requireGroup?: LdapGroupRule;
  /** Members of this group (any of these) may not log in. */
  denyGroup?: LdapGroupRule;
  /** Local flags from membership, e.g. `{ isStaff: 'cn=staff,ou=groups,dc=example,dc=com' }`. */
  userFlagsByGroup?: Partial<Record<'isActive' | 'isStaff' | 'isSuperuser', LdapGroupRule>>;
  /** Local groups follow the directory's at every login: `true` for all, or only the names listed. */
  mirrorGroups?: boolean | string[];
  /** Permissions of the local groups named like the user's directory groups (django-auth-ldap's `FIND_GROUP_PERMS`). */
  findGroupPerms?: boolean;
  /** How long a user's directory groups are remembered for permission checks, in milliseconds (default 300000); 0: not at all. */
  groupCacheTimeout?: number;
}

export interface ResolvedLdapOptions extends Omit<LdapBackendOptions, 'url' | 'name'> {
  name: string;
  urls: string[];
  connectTimeout: number;
  timeout: number;
  alwaysUpdateUser: boolean;
  createUsers: boolean;
  userAttrMap: Record<string, string>;
  groupCacheTimeout: number;
  usernameAttr: string;
  identityAttr: string;
  linkExistingUsers: LinkExistingUsers;
}

const USER_PLACEHOLDER = '%(user)s';

export function resolveLdapOptions(options: LdapBackendOptions): ResolvedLdapOptions {
  if (!options || typeof options !== 'object') throw new ImproperlyConfigured('LdapBackend.configure() needs its options.');
  const urls = [options.url].flat();
  if (urls.length === 0 || urls.some((url) => typeof url !== 'string' || !/^ldaps?:\/\/[^/\s]+\/?$/i.test(url))) {
    throw new ImproperlyConfigured(`LdapBackend url must be ldap://host[:port] or ldaps://host[:port]; got ${JSON.stringify(options.url)}.`);
  }
  if (options.startTls && urls.some((url) => /^ldaps:/i.test(url))) {
    throw new ImproperlyConfigured('LdapBackend: startTls upgrades ldap:// connections; ldaps:// is TLS already.');
  }
  const direct = options.userDnTemplate;
  const search = options.userSearch;
  if ((direct === undefined) === (search === undefined)) {
    throw new ImproperlyConfigured('LdapBackend needs exactly one of userDnTemplate (direct bind) and userSearch (search, then bind).');
  }
  if (direct !== undefined && (typeof direct !== 'string' || !direct.includes(USER_PLACEHOLDER))) {
    throw new ImproperlyConfigured(`LdapBackend userDnTemplate must contain ${USER_PLACEHOLDER}, e.g. uid=${USER_PLACEHOLDER},ou=people,dc=example,dc=com.`);
  }
  if (search !== undefined && (typeof search.base !== 'string' || typeof search.filter !== 'string' || !search.filter.includes(USER_PLACEHOLDER))) {
    throw new ImproperlyConfigured(`LdapBackend userSearch needs a base and a filter containing ${USER_PLACEHOLDER}, e.g. (uid=${USER_PLACEHOLDER}).`);
  }
  if ((options.bindDn === undefined) !== (options.bindPassword === undefined)) {
    throw new ImproperlyConfigured('LdapBackend: give bindDn and bindPassword together (or neither, for anonymous searches).');
  }
  const groups = options.groupSearch;
  const needsGroups =
    options.requireGroup !== undefined || options.denyGroup !== undefined || options.userFlagsByGroup !== undefined || !!options.mirrorGroups || !!options.findGroupPerms;
  if (needsGroups && !groups) {
    throw new ImproperlyConfigured('LdapBackend: requireGroup, denyGroup, userFlagsByGroup, mirrorGroups and findGroupPerms need groupSearch.');
  }
  if (groups) {
    if (!['groupOfNames', 'groupOfUniqueNames', 'posixGroup', 'memberOf'].includes(groups.type)) {
      throw new ImproperlyConfigured(`LdapBackend groupSearch.type must be groupOfNames, groupOfUniqueNames, posixGroup or memberOf; got ${JSON.stringify(groups.type)}.`);
    }
    if (groups.type !== 'memberOf' && typeof groups.base !== 'string') {
      throw new ImproperlyConfigured(`LdapBackend groupSearch.base is needed to search ${groups.type} groups.`);
    }
  }
  const identityAttr = options.identityAttr ?? 'entryUUID';
  if (typeof identityAttr !== 'string' || !/^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/.test(identityAttr)) {
    throw new ImproperlyConfigured(`LdapBackend identityAttr must be an attribute name (entryUUID, objectGUID...) or 'dn'; got ${JSON.stringify(options.identityAttr)}.`);
  }
  const link = options.linkExistingUsers ?? false;
  if (typeof link !== 'boolean' && typeof link !== 'function') {
    throw new ImproperlyConfigured('LdapBackend linkExistingUsers must be true, false or a function (user, source) => boolean.');
  }
  const attrMap = options.userAttrMap ?? {};
  for (const [field, attribute] of Object.entries(attrMap)) {
    if (['id', 'password', 'username', 'isActive', 'isStaff', 'isSuperuser'].includes(field) || typeof attribute !== 'string') {
      throw new ImproperlyConfigured(`LdapBackend userAttrMap cannot set ${field}: map profile fields (email, firstName...) to attribute names.`);
    }
  }
  return {
    ...options,
    name: options.name ?? 'LdapBackend',
    urls,
    connectTimeout: options.connectTimeout ?? 5000,
    timeout: options.timeout ?? 5000,
    alwaysUpdateUser: options.alwaysUpdateUser ?? true,
    createUsers: options.createUsers ?? true,
    userAttrMap: attrMap,
    groupCacheTimeout: options.groupCacheTimeout ?? 300_000,
    usernameAttr: options.usernameAttr ?? 'uid',
    identityAttr,
    linkExistingUsers: link,
  };
}

export { USER_PLACEHOLDER };
