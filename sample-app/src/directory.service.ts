import { Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';

/** What the directory knows about a person; the local user is kept in line with it. */
export interface DirectoryEntry {
  /** The id the directory gives this person for good; a rename keeps it, a new person never gets it. */
  id: string;
  username: string;
  email: string;
  /** Members of the directory's `staff` group may see the staff page. */
  staff: boolean;
}

interface StoredEntry extends DirectoryEntry {
  password: string;
}

/** The people's ids, the `entryUUID`s of the same people in the sample's OpenLDAP (`ldap/directory.ts`). */
export const DIRECTORY_IDS = { dana: '7c9e6679-7425-40de-944b-e07fc1f90ae7', erin: '16fd2706-8baf-433b-82eb-8c7fada847da' } as const;

/**
 * Stands in for a company directory (LDAP, Active Directory, an identity provider's API): the
 * place where some people's accounts and passwords really live. The sample keeps it in memory
 * so it runs anywhere; a real one would be a network call that can fail, and a failure should
 * surface as an error, not as "wrong password".
 *
 * It is an injectable service, so the backend gets it by injection and a test can change an
 * entry (a new email, leaving the staff group) the way the directory's own admins would.
 */
@Injectable()
export class DirectoryService {
  private readonly entries = new Map<string, StoredEntry>(
    [
      { id: DIRECTORY_IDS.dana, username: 'dana', password: 'daylight', email: 'dana@directory.example', staff: true },
      { id: DIRECTORY_IDS.erin, username: 'erin', password: 'evergreen', email: 'erin@directory.example', staff: false },
    ].map((entry) => [entry.username, entry]),
  );

  /**
   * What a directory "bind" does: the person's entry when the password is theirs, else `null`.
   * The comparison takes the same time wherever the passwords differ.
   */
  async bind(username: string, password: string): Promise<DirectoryEntry | null> {
    const stored = this.entries.get(username);
    if (!stored || !samePassword(stored.password, password)) return null;
    const { password: _password, ...entry } = stored;
    return entry;
  }

  /** Change a person's entry, as the directory's admins would (the next login picks it up). */
  update(username: string, changes: Partial<Omit<StoredEntry, 'id' | 'username'>>): void {
    const stored = this.entries.get(username);
    if (!stored) throw new Error(`No one called ${username} in the directory.`);
    Object.assign(stored, changes);
  }
}

function samePassword(expected: string, given: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(expected), digest(given));
}
