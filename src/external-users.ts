import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Repository } from 'typeorm';
import { isPasswordUsable } from './passwords/password-hasher.js';
import { ExternalIdentity } from './storage/external-identity.entity.js';
import { isUniqueViolation } from './storage/unique-violation.js';
import { UserManager } from './user.manager.js';

/**
 * Whether a backend may log into a local account it did not create, because the names match:
 * `false` (the default) never; `true` for accounts that are neither staff nor superusers; a
 * function decides for every account, staff included. Whoever controls names at the source can
 * then take over the local account of the same name, password resets included: link only
 * accounts the source is known to own (e.g. `(user) => !isPasswordUsable(user.password)` for
 * accounts an earlier release created). An account already linked to another person of the same
 * source is never linked by name, whatever this says: that person was renamed, or their entry
 * deleted, and the name given to someone else.
 */
export type LinkExistingUsers = boolean | ((user: any, source: string) => boolean | Promise<boolean>);

/** Who a backend is asking about. */
export interface ExternalUserQuery {
  /** The backend's name, as sessions record it. */
  source: string;
  /** The id the source gives the person and never gives anyone else (OIDC `sub`, LDAP `entryUUID`). */
  subject: string;
  /** The username for a new local user, and the name of an existing account that may be linked. */
  username: string;
  /** Create a local user at the first login. */
  createUsers: boolean;
  linkExistingUsers?: LinkExistingUsers;
  /**
   * What to do when a local account the backend may not link holds `username`: `refuse` the login
   * (LDAP, remote users: the username is what the person types or the proxy says), or `rename` the
   * new user to a free name (OIDC, where nobody types usernames).
   */
  whenNameTaken: 'refuse' | 'rename';
}

/** The local user for a person of a source, found by `find()` and stored by `save()`. */
export interface ExternalUser<U = any> {
  user: U;
  /** Made for this login and not saved yet. */
  created: boolean;
  readonly query: ExternalUserQuery;
  /** The link to write or repoint at `save()`; `undefined` when the user is already linked. */
  readonly link?: { existing: ExternalIdentity | null };
}

/** How long a login that lost a race for a new user waits for the winner's link (two tabs, two instances). */
const RACE_WAIT_MS = 25;
const RACE_TRIES = 40;
const MAX_USERNAME_LENGTH = 150;
/** A user made this long ago or less may be a concurrent first login's, not yet linked. */
const JUST_MADE_MS = 10_000;

/**
 * Local users of outside sources (LDAP, OpenID Connect, a trusted proxy): each one linked to the
 * person at its source by a stable id (`ExternalIdentity`), never matched by name alone. A
 * backend that finds no link creates a new user, or refuses; it logs into an existing account of
 * the same name only when the app allows it (`linkExistingUsers`), so a directory entry or a
 * provider account named `admin` cannot take over the local `admin`.
 */
@Injectable()
export class ExternalUsers<U extends Record<string, any> = any> {
  private readonly logger = new Logger('ExternalUsers');

  constructor(private readonly users: UserManager<U>) {}

  private get identities(): Repository<ExternalIdentity> {
    return this.users.dataSource.getRepository(ExternalIdentity);
  }

  /** The local user linked to this person, or `null`. */
  async linkedUser(source: string, subject: string): Promise<U | null> {
    const link = await this.identities.findOneBy({ source, subject });
    return link ? this.users.findById(link.userId) : null;
  }

  /** Whether `user` is linked to some person of `source`. */
  async isLinked(user: U, source: string): Promise<boolean> {
    return this.identities.existsBy({ source, userId: String(user.id) });
  }

  /** Link `user` to a person of `source` explicitly (an admin's decision, an "add a login method" page). */
  async link(user: U, source: string, subject: string): Promise<void> {
    const userId = String(user.id);
    const existing = await this.identities.findOneBy({ source, subject });
    if (existing) await this.identities.update({ id: existing.id }, { userId });
    else await this.identities.insert({ source, subject, userId });
  }

  /**
   * The user a login of this person is for: the linked one; else an existing account of the same
   * name when it may be linked; else a new user (unsaved; `null` without `createUsers`). `null`
   * when the name belongs to an account that may not be linked and the query refuses then.
   */
  async find(query: ExternalUserQuery): Promise<ExternalUser<U> | null> {
    const existingLink = await this.identities.findOneBy({ source: query.source, subject: query.subject });
    if (existingLink) {
      const user = await this.users.findById(existingLink.userId);
      if (user) return { user, created: false, query };
      // The linked user was deleted here: a first login again, and the link follows the new user.
    }
    const link = { existing: existingLink };
    const username = query.username.normalize('NFKC');
    const namesake = await this.users.findByUsername(username);
    if (namesake) {
      const sources = await this.sourcesOf(namesake);
      // This person's own first login, between its user and its link being written (two tabs).
      if (sources.length === 0 && (await this.madeForThisLogin(namesake, query))) {
        const user = await this.awaitLinkedUser(query);
        if (user) return { user, created: false, query };
      }
      if (await this.mayLink(namesake, sources, query)) {
        this.logger.log(`${query.source} linked the existing account '${username}' (linkExistingUsers).`);
        return { user: namesake, created: false, query, link };
      }
      if (query.whenNameTaken === 'refuse') {
        this.logger.warn(
          `${query.source}: '${username}' is a local account that ${query.source} did not create, so it does not log in. ` +
            'If that person at the source owns this account, link it with linkExistingUsers or ExternalUsers.link().',
        );
        return null;
      }
    }
    if (!query.createUsers) return null;
    const user = this.users.repository.create({
      username: namesake ? await this.freeUsername(query) : username,
      isActive: true,
      isStaff: false,
      isSuperuser: false,
      dateJoined: new Date(),
    } as any) as unknown as U;
    await this.users.setPassword(user, null);
    return { user, created: true, query, link };
  }

  /**
   * Save the user and write its link. When another login of the same person got there first (two
   * tabs, two instances), its user is the one: the user made here is removed and the winner's
   * returned, so a person never has two local users and nobody sees a 500.
   */
  async save(found: ExternalUser<U>): Promise<U> {
    let user: U;
    try {
      user = (await this.users.repository.save(found.user as any, { transaction: false })) as U;
    } catch (error) {
      if (!found.created || !isUniqueViolation(error)) throw error;
      // The username was taken meanwhile, most likely by a concurrent first login of this person.
      const winner = await this.awaitLinkedUser(found.query);
      if (winner) return winner;
      if (found.query.whenNameTaken === 'refuse') throw error;
      (found.user as Record<string, unknown>).username = await this.freeUsername(found.query);
      user = (await this.users.repository.save(found.user as any, { transaction: false })) as U;
    }
    if (!found.link) return user;
    const userId = String(user.id);
    const { existing } = found.link;
    let linked: boolean;
    if (existing) {
      // Only if nobody repointed it meanwhile.
      const result = await this.identities.update({ id: existing.id, userId: existing.userId }, { userId });
      linked = result.affected === 1;
    } else {
      try {
        await this.identities.insert({ source: found.query.source, subject: found.query.subject, userId });
        linked = true;
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        linked = false;
      }
    }
    if (linked) return user;
    if (found.created) await this.users.repository.remove(user as any);
    const winner = await this.linkedUser(found.query.source, found.query.subject);
    if (!winner) throw new Error(`${found.query.source}: the link of this login changed while it was being made; try again.`);
    return winner;
  }

  /** The sources `user` is linked to (none for a local account). */
  private async sourcesOf(user: U): Promise<string[]> {
    const links = await this.identities.find({ where: { userId: String(user.id) }, select: { source: true } });
    return links.map((link) => link.source);
  }

  /**
   * Whether `user` looks like the one a concurrent first login of this source is saving: no
   * usable password and joined moments ago (what `find()` makes). Only then is its link awaited.
   */
  private async madeForThisLogin(user: U, query: ExternalUserQuery): Promise<boolean> {
    if (query.whenNameTaken !== 'refuse' && !query.linkExistingUsers) return false;
    const joined = user.dateJoined instanceof Date ? user.dateJoined.getTime() : Number.NaN;
    return !isPasswordUsable(user.password) && Date.now() - joined < JUST_MADE_MS;
  }

  /**
   * An account may be linked by name only when the policy allows it, and only if no outside
   * source owns it yet: an account another source made (or another person of this one) belongs
   * to that person, whoever the name suits now.
   */
  private async mayLink(user: U, sources: string[], query: ExternalUserQuery): Promise<boolean> {
    const policy = query.linkExistingUsers ?? false;
    if (policy === false || policy === undefined) return false;
    if (sources.length > 0) {
      this.logger.warn(
        `${query.source}: '${user.username}' belongs to a person of ${[...new Set(sources)].join(', ')}, so it is never linked by name. ` +
          'If it is the same person, link the account with ExternalUsers.link().',
      );
      return false;
    }
    if (typeof policy === 'function') return (await policy(user, query.source)) === true;
    if (policy !== true) return false;
    if (user.isStaff || user.isSuperuser) {
      this.logger.warn(
        `${query.source}: '${user.username}' is a staff or superuser account: linkExistingUsers: true never links those. ` +
          'Pass a function that decides for them, or link the account with ExternalUsers.link().',
      );
      return false;
    }
    return true;
  }

  private async awaitLinkedUser(query: ExternalUserQuery): Promise<U | null> {
    for (let attempt = 0; attempt < RACE_TRIES; attempt++) {
      const user = await this.linkedUser(query.source, query.subject);
      if (user) return user;
      await sleep(RACE_WAIT_MS);
    }
    return null;
  }

  /** A username nobody has, from the wanted one and a digest of the person (stable across logins). */
  private async freeUsername(query: ExternalUserQuery): Promise<string> {
    const digest = createHash('sha256').update(`${query.source}:${query.subject}`).digest('hex').slice(0, 12);
    const base = `${query.username.normalize('NFKC').slice(0, MAX_USERNAME_LENGTH - 17)}-${digest}`;
    for (let n = 0; n < 100; n++) {
      const candidate = n === 0 ? base : `${base}-${n}`;
      if (!(await this.users.findByUsername(candidate))) return candidate;
    }
    throw new Error(`${query.source}: no free username for a new user named like '${query.username}'.`);
  }
}
