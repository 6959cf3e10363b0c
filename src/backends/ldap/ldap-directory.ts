import { Logger } from '@nestjs/common';
import { Client, DN, Filter, InvalidCredentialsError, NoSuchObjectError, type Entry } from 'ldapts';
import { DirectoryUnavailable } from './directory-unavailable.js';
import { USER_PLACEHOLDER, type LdapGroupSearch, type ResolvedLdapOptions } from './ldap.options.js';

export { DirectoryUnavailable };


/** A user as the directory knows them: their DN, username, stable id and attributes (first values, and all values). */
export interface LdapUser {
  dn: string;
  username: string;
  /** The entry's `identityAttr` (`entryUUID` by default), as text: what links it to its local user. */
  identity: string;
  /** Each attribute's first value. */
  attrs: Record<string, string>;
  /** Every value of each attribute. */
  allAttrs: Record<string, string[]>;
}

/** A group the user belongs to: its DN and name (`cn` by default). */
export interface LdapGroup {
  dn: string;
  name: string;
}

const MAX_GROUPS = 500;
/** What `ExternalIdentity.subject` holds. */
const MAX_IDENTITY_LENGTH = 255;
/** Stable-id attributes of common directories, as servers spell them. */
const KNOWN_IDENTITY_ATTRS = ['entryUUID', 'objectGUID', 'ipaUniqueID', 'nsUniqueId', 'GUID'];

/**
 * The LDAP conversation of `LdapBackend`, on `ldapts`: find the user (a DN template or a search),
 * bind as them with the password, and find their groups, each attempt on its own connection
 * (unbound at the end). Connection failures and timeouts become `DirectoryUnavailable`.
 */
export class LdapDirectory {
  private readonly logger = new Logger('LdapBackend');

  constructor(private readonly options: ResolvedLdapOptions) {}

  /**
   * Check `password` for `username` (both already checked to be plausible): the user's entry, or
   * `null` when the directory does not accept them. Nobody by that name and another password
   * are not told apart: a directory that hides its entries from anonymous clients could not
   * answer, and the backend's decision does not depend on it.
   */
  async bindUser(username: string, password: string): Promise<LdapUser | null> {
    return this.withClient(async (client) => {
      if (this.options.userSearch) {
        await this.serviceBind(client);
        const found = await this.findUser(client, username);
        if (!found || !(await this.tryBind(client, found.dn, password))) return null;
        // Attributes and groups are read as the service account, as django-auth-ldap does.
        await this.serviceBind(client);
        return found;
      }
      const dn = this.options.userDnTemplate!.replace(USER_PLACEHOLDER, escapeDnValue(username));
      // OpenLDAP answers "invalid credentials" for an unknown DN too.
      if (!(await this.tryBind(client, dn, password))) return null;
      if (this.options.bindDn) await this.serviceBind(client);
      return this.readEntry(client, dn, username);
    });
  }

  /** The user's entry by username, as the service account (for group lookups after login). */
  async lookUpUser(username: string): Promise<LdapUser | null> {
    return this.withClient(async (client) => {
      await this.serviceBind(client);
      if (this.options.userSearch) return this.findUser(client, username);
      const dn = this.options.userDnTemplate!.replace(USER_PLACEHOLDER, escapeDnValue(username));
      return this.readEntry(client, dn, username);
    });
  }

  /** The user's groups by the configured group search, nested ones included when asked. */
  async groupsOf(user: LdapUser): Promise<LdapGroup[]> {
    const search = this.options.groupSearch;
    if (!search) return [];
    if (search.type === 'memberOf') {
      return (user.allAttrs.memberof ?? []).slice(0, MAX_GROUPS).map((dn) => ({ dn, name: firstRdnValue(dn) }));
    }
    return this.withClient(async (client) => {
      await this.serviceBind(client);
      const found = new Map<string, LdapGroup>();
      let members = [search.type === 'posixGroup' ? '' : user.dn];
      const depth = search.nested ? Math.max(1, search.maxDepth ?? 8) : 1;
      for (let level = 0; level < depth && members.length > 0 && found.size < MAX_GROUPS; level++) {
        const next: string[] = [];
        for (const member of members) {
          for (const group of await this.searchGroups(client, search, user, member)) {
            const key = normalizeDn(group.dn);
            if (found.has(key)) continue;
            found.set(key, group);
            next.push(group.dn);
          }
        }
        members = search.type === 'posixGroup' ? [] : next;
      }
      return [...found.values()].slice(0, MAX_GROUPS);
    });
  }

  private async searchGroups(client: Client, search: LdapGroupSearch, user: LdapUser, memberDn: string): Promise<LdapGroup[]> {
    const nameAttr = (search.nameAttr ?? 'cn').toLowerCase();
    let filter: string;
    if (search.type === 'posixGroup') {
      const uid = user.attrs.uid ?? user.username;
      const gid = user.attrs.gidnumber;
      const byGid = gid && /^\d+$/.test(gid) ? `(gidNumber=${gid})` : '';
      filter = `(&${search.filter ?? '(objectClass=posixGroup)'}(|(memberUid=${Filter.escape(uid)})${byGid}))`;
    } else {
      const attribute = search.type === 'groupOfNames' ? 'member' : 'uniqueMember';
      filter = `(&${search.filter ?? `(objectClass=${search.type})`}(${attribute}=${Filter.escape(memberDn)}))`;
    }
    const { searchEntries } = await client.search(search.base!, {
      scope: search.scope ?? 'sub',
      filter,
      attributes: [nameAttr],
      sizeLimit: MAX_GROUPS,
    });
    return searchEntries.map((entry) => ({ dn: entry.dn, name: firstValue(entry, nameAttr) ?? firstRdnValue(entry.dn) }));
  }

  private async findUser(client: Client, username: string): Promise<LdapUser | null> {
    const { base, scope, filter } = this.options.userSearch!;
    const { searchEntries } = await client.search(base, {
      scope: scope ?? 'sub',
      filter: filter.replace(USER_PLACEHOLDER, Filter.escape(username)),
      ...this.userAttributes(),
      sizeLimit: 2,
    });
    if (searchEntries.length !== 1) {
      if (searchEntries.length > 1) this.logger.warn('The user search found several entries for one username: nobody is logged in.');
      return null;
    }
    return this.toLdapUser(searchEntries[0], username);
  }

  private async readEntry(client: Client, dn: string, username: string): Promise<LdapUser | null> {
    try {
      const { searchEntries } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', ...this.userAttributes() });
      return searchEntries[0] ? this.toLdapUser(searchEntries[0], username) : null;
    } catch (error) {
      if (error instanceof NoSuchObjectError) return null;
      throw error;
    }
  }

  /**
   * What to read of a user's entry: its attributes, `memberOf` and the identity attribute
   * (operational attributes come only when named), the identity as bytes, since it may be binary.
   */
  private userAttributes(): { attributes: string[]; explicitBufferAttributes: string[] } {
    const identity = this.options.identityAttr;
    if (identity === 'dn') return { attributes: ['*', 'memberOf'], explicitBufferAttributes: [] };
    // ldapts matches these names exactly against the server's spelling.
    const spellings = [identity, identity.toLowerCase(), ...KNOWN_IDENTITY_ATTRS.filter((name) => name.toLowerCase() === identity.toLowerCase())];
    return { attributes: ['*', 'memberOf', identity], explicitBufferAttributes: [...new Set(spellings)] };
  }

  private toLdapUser(entry: Entry, typed: string): LdapUser {
    const attribute = this.options.identityAttr;
    const identity = attribute === 'dn' ? normalizeDn(entry.dn) : entryIdentity(entry, attribute);
    if (identity === undefined || identity.length > MAX_IDENTITY_LENGTH) {
      this.logger.error(
        `${entry.dn} has no usable ${attribute} (missing, hidden from the account that reads it, or over ${MAX_IDENTITY_LENGTH} characters), ` +
          'so it cannot be linked to a local user: nobody logs in with it. Set identityAttr to an attribute every user entry has.',
      );
      throw new DirectoryUnavailable();
    }
    const attrs: Record<string, string> = {};
    const allAttrs: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(entry)) {
      if (key === 'dn') continue;
      const values =
        key.toLowerCase() === attribute.toLowerCase() ? [identity] : [value].flat().map((item) => (Buffer.isBuffer(item) ? item.toString('utf8') : String(item)));
      allAttrs[key.toLowerCase()] = values;
      if (values.length > 0) attrs[key.toLowerCase()] = values[0];
    }
    // The directory's spelling of the name (`DANA` typed, `dana` stored): one local user per person.
    return { dn: entry.dn, username: attrs[this.options.usernameAttr.toLowerCase()] ?? typed, identity, attrs, allAttrs };
  }

  /** Bind as `dn`; `false` for invalid credentials, any other failure thrown. */
  private async tryBind(client: Client, dn: string, password: string): Promise<boolean> {
    try {
      await client.bind(dn, password);
      return true;
    } catch (error) {
      if (error instanceof InvalidCredentialsError) return false;
      throw error;
    }
  }

  /** Bind as the service account (or anonymously, without one). Refused credentials are a configuration error. */
  private async serviceBind(client: Client): Promise<void> {
    const { bindDn, bindPassword } = this.options;
    try {
      // Anonymous: a simple bind with no name, on the same connection (an unbind would close it,
      // and ldapts would reconnect without StartTLS).
      if (bindDn) await client.bind(bindDn, bindPassword!);
      else await client.bind('', '');
    } catch (error) {
      if (error instanceof InvalidCredentialsError) {
        this.logger.error('The directory refused the service account (bindDn / bindPassword): nobody can log in through it.');
        throw new DirectoryUnavailable();
      }
      throw error;
    }
  }

  /** Run `work` on a connection to the first server that answers; failures to reach one are `DirectoryUnavailable`. */
  private async withClient<T>(work: (client: Client) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (const url of this.options.urls) {
      const client = new Client({
        url,
        timeout: this.options.timeout,
        connectTimeout: this.options.connectTimeout,
        // ldapts speaks TLS from the first byte whenever it is given TLS options: only for ldaps://.
        tlsOptions: /^ldaps:/i.test(url) ? { ...this.options.tlsOptions } : undefined,
        strictDN: false,
      });
      try {
        // A copy each time: ldapts writes the connection's socket into the options it is given.
        if (this.options.startTls) await client.startTLS({ ...this.options.tlsOptions });
        return await work(client);
      } catch (error) {
        if (error instanceof DirectoryUnavailable) throw error;
        lastError = error;
        // Only a server that could not be reached is worth trying the next one for.
        if (!isConnectionError(error)) break;
      } finally {
        client.unbind().catch(() => undefined);
      }
    }
    this.logger.error(`The directory could not be asked: ${(lastError as Error)?.message ?? lastError}`);
    throw new DirectoryUnavailable();
  }
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  const message = String((error as Error)?.message ?? '');
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(String(code)) ||
    /timeout|timed out|connection|socket/i.test(message)
  );
}

/**
 * The entry's value of `attribute` as text (read as bytes): Active Directory's `objectGUID` in
 * the form its tools print, other binary values in hex, text as it is. `undefined` without one.
 */
export function entryIdentity(entry: Entry, attribute: string): string | undefined {
  const key = Object.keys(entry).find((name) => name.toLowerCase() === attribute.toLowerCase());
  const value = key === undefined ? undefined : [entry[key]].flat()[0];
  if (value === undefined || value.length === 0) return undefined;
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
  if (attribute.toLowerCase() === 'objectguid' && bytes.length === 16) return guidString(bytes);
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (!/[\u0000-\u001f\u007f]/.test(text)) return text;
  } catch {
    // Not UTF-8: binary.
  }
  return bytes.toString('hex');
}

/** A Windows GUID's bytes as text: the first three fields are little-endian ([MS-DTYP] 2.3.4). */
function guidString(bytes: Buffer): string {
  const hex = (from: number, to: number, littleEndian: boolean) => {
    const part = Buffer.from(bytes.subarray(from, to));
    return (littleEndian ? part.reverse() : part).toString('hex');
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)].join('-');
}

function firstValue(entry: Entry, attribute: string): string | undefined {
  const key = Object.keys(entry).find((name) => name.toLowerCase() === attribute);
  if (!key) return undefined;
  const value = [entry[key]].flat()[0];
  return value === undefined ? undefined : Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** The value of a DN's first RDN (`staff` of `cn=staff,ou=groups,...`), unescaped. */
function firstRdnValue(dn: string): string {
  const match = /^[^=]+=((?:\\.|[^,+\\])*)/.exec(dn);
  return (match?.[1] ?? dn).replace(/\\([0-9a-fA-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16))).replace(/\\(.)/g, '$1');
}

/** A DN in one spelling for comparisons: lower case, no spaces around separators. */
export function normalizeDn(dn: string): string {
  return dn.trim().toLowerCase().replace(/\s*([,=+])\s*/g, '$1');
}

/** An attribute value escaped for a DN (RFC 4514), by ldapts. */
function escapeDnValue(value: string): string {
  return new DN({ x: value }).toString().slice(2);
}
