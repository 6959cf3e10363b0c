import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import type { Credentials } from './auth-backend.interface.js';
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
 */
@Injectable()
export class RemoteUserBackend<U = any> extends ModelBackend {
  /** Create a local user the first time a name is seen; `false` accepts existing users only. */
  createUnknownUser = true;

  override async authenticate(request: Request | undefined, credentials: Credentials): Promise<U | null> {
    const remoteUser = (credentials as Record<symbol, unknown>)[REMOTE_USER];
    if (typeof remoteUser !== 'string' || remoteUser === '') return null;
    const username = await this.localUsername(remoteUser);
    if (!this.isStorableUsername(username)) return null;

    let user: U | null;
    let created = false;
    if (this.createUnknownUser) [user, created] = await this.getOrCreate(username);
    else user = await this.users.findByUsername(username);
    if (!user) return null;
    user = (await this.configureUser(request, user, created)) ?? user;
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

  /** Find or create; a concurrent first request that created the row first wins. */
  private async getOrCreate(username: string): Promise<[U | null, boolean]> {
    const existing = await this.users.findByUsername(username);
    if (existing) return [existing, false];
    try {
      return [(await this.users.createUser({ username })) as U, true];
    } catch (error) {
      const raced = await this.users.findByUsername(username);
      if (raced) return [raced, false];
      throw error;
    }
  }
}

/** Like `RemoteUserBackend`, but inactive users are accepted too. */
@Injectable()
export class AllowAllUsersRemoteUserBackend<U = any> extends RemoteUserBackend<U> {
  override userCanAuthenticate(): boolean {
    return true;
  }
}
