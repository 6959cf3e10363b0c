import { Injectable } from '@nestjs/common';
import { ExternalUsers, PermissionManager, UserManager, type AuthBackend, type Credentials, type User } from 'nestjs-session-auth';
import { DirectoryService, type DirectoryEntry } from './directory.service.js';
import { STAFF_GROUP } from './permissions.js';

/**
 * Last in line: people whose accounts live in an external directory (see `DirectoryService`).
 * Nobody has to create their local users beforehand:
 *
 * 1. the directory checks the password (this app never sees or stores it: the local user gets
 *    an unusable password, so `ModelBackend` can never accept one for them);
 * 2. on the first successful login, the local user is created from the directory entry and
 *    linked to the entry's id (`ExternalUsers`), which is how it is found from then on;
 * 3. on every login, the local copy is brought back in line with the directory: email, the
 *    staff flag, and membership of the local `staff` group, which carries the staff page's
 *    permission. Leave the directory's staff group and you lose the page at your next login.
 *
 * Trust: the directory speaks for the users it created here, never for a local account that
 * merely has the same name (an entry called `admin` does not become the local `admin`).
 */
@Injectable()
export class DirectoryBackend implements AuthBackend<User> {
  /** The source its links are recorded under; sessions record it too. */
  readonly name = 'DirectoryBackend';

  constructor(
    private readonly directory: DirectoryService,
    private readonly users: UserManager,
    private readonly permissions: PermissionManager,
    private readonly externalUsers: ExternalUsers<User>,
  ) {}

  async authenticate(_request: unknown, { username, password }: Credentials): Promise<User | null> {
    if (typeof username !== 'string' || typeof password !== 'string') return null;
    const entry = await this.directory.bind(username, password);
    if (!entry) return null;
    const found = await this.externalUsers.find({ source: this.name, subject: entry.id, username: entry.username, createUsers: true, whenNameTaken: 'refuse' });
    // A local account of that name that the directory did not create (the reason is logged).
    if (!found) return null;
    if (found.created) Object.assign(found.user, { email: entry.email, isStaff: entry.staff });
    const user = found.created ? await this.externalUsers.save(found) : found.user;
    // A local administrator can still lock a directory account out of this app.
    if (!user.isActive) return null;
    await this.syncFromDirectory(user, entry);
    return user;
  }

  getUser(id: string): Promise<User | null> {
    return this.users.findById(id);
  }

  /** Write only what changed: most logins change nothing. */
  private async syncFromDirectory(user: User, entry: DirectoryEntry): Promise<void> {
    if (user.email !== entry.email || user.isStaff !== entry.staff) {
      await this.users.repository.update({ id: user.id }, { email: entry.email, isStaff: entry.staff });
      Object.assign(user, { email: entry.email, isStaff: entry.staff });
    }
    if (entry.staff) await this.permissions.addUserToGroup(user, STAFF_GROUP);
    else await this.permissions.removeUserFromGroup(user, STAFF_GROUP);
  }
}
