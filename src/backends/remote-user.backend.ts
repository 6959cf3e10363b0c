import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { ExternalUsers, type LinkExistingUsers } from '../external-users.js';
import { ExternalIdentity } from '../storage/external-identity.entity.js';
import type { RequiredEntities } from '../storage/required-entities.js';
import { UserManager } from '../user.manager.js';
import { backendName, type Credentials } from './auth-backend.interface.js';
import { ModelBackend } from './model.backend.js';

/**
 * Credential key under which `RemoteUserMiddleware` passes the name a trusted proxy vouched
 * for: `auth.authenticate(req, { [REMOTE_USER]: 'alice' })`. A symbol, not a string key, so a
 * login handler that hands the request body to `authenticate()` can never be talked into a
 * passwordless login by a body carrying `{ "remoteUser": "admin" }`: JSON cannot make symbols.
 */
export const REMOTE_USER: unique symbol = Symbol.for('nestjs-session-auth:remote-user');

/**
 * Users vouched for by something in front of the app: a proxy or SSO gateway that
 * authenticated them and passes their name in a header (Django's `RemoteUserBackend`).
 * Names it has not seen become local users with an unusable password, unless
 * `createUnknownUser` is `false`. Subclass to adapt names (`cleanUsername`) or to fill in a new
 * user from an external source (`configureUser`). Inactive users are refused. Permissions come
 * from the local tables, as with `ModelBackend`.
 *
 * Unlike Django's, it logs in only users it created (linked to the name through
 * `ExternalUsers`): a header naming `admin` never opens a local `admin` account made with a
 * password, unless `linkExistingUsers` allows it.
 */
@Injectable()
export class RemoteUserBackend<U = any> extends ModelBackend {
  /** Create a local user the first time a name is seen; `false` accepts linked or linkable users only. */
  createUnknownUser = true;
  /**
   * Whether a name may log into a local account of that name this backend did not create
   * (default `false`): `true` for accounts that are neither staff nor superusers, or a function
   * that decides for every account. Whoever can set the header's name then owns that account.
   */
  linkExistingUsers: LinkExistingUsers = false;

  constructor(
    users: UserManager<any>,
    dataSource: DataSource,
    protected readonly externalUsers: ExternalUsers,
  ) {
    super(users, dataSource);
  }

  /** ModelBackend's, and the links to the names it created users for. */
  override requiredEntities(): RequiredEntities | undefined {
    const own = super.requiredEntities();
    return own && { ...own, entities: [...own.entities, ExternalIdentity] };
  }

  override async authenticate(request: Request | undefined, credentials: Credentials): Promise<U | null> {
    const remoteUser = (credentials as Record<symbol, unknown>)[REMOTE_USER];
    if (typeof remoteUser !== 'string' || remoteUser === '') return null;
    const username = await this.localUsername(remoteUser);
    if (!this.isStorableUsername(username)) return null;

    // The subject is the name itself: the proxy has no other id to give.
    const found = await this.externalUsers.find({
      source: backendName(this),
      subject: username,
      username,
      createUsers: this.createUnknownUser,
      linkExistingUsers: this.linkExistingUsers,
      whenNameTaken: 'refuse',
    });
    if (!found) return null;
    let user: U = found.created || found.link ? await this.externalUsers.save(found) : found.user;
    user = (await this.configureUser(request, user, found.created)) ?? user;
    return this.userCanAuthenticate(user as { isActive?: boolean }) ? user : null;
  }

  /**
   * Map the proxy's name to a local username, e.g. strip a realm (`'alice@CORP'` → `'alice'`)
   * or lowercase. Runs on every request that carries the header, so keep it cheap.
   */
  cleanUsername(username: string): string | Promise<string> {
    return username;
  }

  /**
   * Called with every user about to be logged in this way, `created` telling whether it was
   * just made: copy attributes from the directory or the request (and save them) here.
   * Return the user, or nothing to keep the one given.
   */
  configureUser(_request: Request | undefined, user: U, _created: boolean): U | void | Promise<U | void> {
    return user;
  }

  /**
   * The local username a header value stands for: `cleanUsername()`, then the NFKC form every
   * stored username has, so the middleware's comparison and the lookup agree.
   */
  async localUsername(remoteUser: string): Promise<string> {
    const cleaned = await this.cleanUsername(remoteUser);
    return typeof cleaned === 'string' ? cleaned.normalize('NFKC') : '';
  }

  /** Refuse what the username column could not hold rather than failing with a database error. */
  private isStorableUsername(username: string): boolean {
    const column = this.users.repository.metadata.findColumnWithPropertyName('username');
    const max = Number(column?.length) || 150;
    return username.length > 0 && username.length <= max && !/[\u0000-\u001f\u007f]/.test(username);
  }
}

/** Like `RemoteUserBackend`, but inactive users are accepted too. */
@Injectable()
export class AllowAllUsersRemoteUserBackend<U = any> extends RemoteUserBackend<U> {
  override userCanAuthenticate(): boolean {
    return true;
  }
}
