import { Injectable } from '@nestjs/common';
import { UserManager, type AuthBackend, type Credentials, type User } from 'nestjs-session-auth';

/** The "directory" this backend trusts: username → password. */
const PASSWORDS = new Map([
  ['alice', 'wonderland'],
  ['bob', 'builder'],
]);

/**
 * A second source of truth for passwords, asked after `ModelBackend`. It only vouches for the
 * credentials; the user it returns is the local one with that username (`null` when there is
 * none, so the next backend, if any, gets its turn).
 *
 * Being a provider of `AppModule`, it can inject anything the app has — here the library's
 * `UserManager`.
 */
@Injectable()
export class DictionaryBackend implements AuthBackend<User> {
  constructor(private readonly users: UserManager) {}

  async authenticate(_request: unknown, { username, password }: Credentials) {
    if (typeof username !== 'string' || typeof password !== 'string') return null;
    if (PASSWORDS.get(username) !== password) return null;
    return this.users.findByUsername(username);
  }

  getUser(id: string) {
    return this.users.findById(id);
  }
}
