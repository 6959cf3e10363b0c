import { Injectable } from '@nestjs/common';
import { UserManager, type AuthBackend, type Credentials, type User } from 'nestjs-session-auth';

/** The passwords this backend vouches for: username → password. */
const PASSWORDS: Record<string, string> = {
  alice: 'wonderland',
  bob: 'builder',
};

/**
 * Second in line: a dictionary of usernames and passwords (think of a legacy system whose
 * passwords you cannot migrate). It only vouches for the credentials; the user it returns is
 * the **local** user with that name, so sessions, permissions and `lastLogin` work as for
 * anyone else. It answers `null` (and the next backend gets its turn) when it does not know
 * the name, the password is wrong, or there is no such local user.
 *
 * Credentials come from the request body, so anything can be in them: both values must be
 * strings, and the name must be a key of the dictionary itself — not something every object
 * has, like `constructor` or `__proto__`.
 *
 * Being a provider of `AppModule`, it is created by Nest and can inject anything the app has;
 * here the library's `UserManager`.
 */
@Injectable()
export class DictionaryBackend implements AuthBackend<User> {
  constructor(private readonly users: UserManager) {}

  async authenticate(_request: unknown, { username, password }: Credentials): Promise<User | null> {
    if (typeof username !== 'string' || typeof password !== 'string') return null;
    if (!Object.hasOwn(PASSWORDS, username) || PASSWORDS[username] !== password) return null;
    const user = await this.users.findByUsername(username);
    // An administrator can still lock the account locally.
    return user?.isActive ? user : null;
  }

  /** Reloads the user a session points at, on every request that carries the session. */
  getUser(id: string): Promise<User | null> {
    return this.users.findById(id);
  }
}
