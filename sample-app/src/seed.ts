import type { UserManager } from 'nestjs-session-auth';

/**
 * Demo users, created only when missing (so restarts keep what you changed).
 * - alice and bob have no usable password here: `DictionaryBackend` holds theirs
 *   (alice/wonderland, bob/builder) and maps them to these local users.
 * - carol has a password of her own, checked by `ModelBackend`.
 */
export const DEMO_USERS = [
  { username: 'alice', email: 'alice@example.com' },
  { username: 'bob', email: 'bob@example.com' },
  { username: 'carol', email: 'carol@example.com', password: 'correct horse battery staple' },
];

export async function seedDemoUsers(users: UserManager): Promise<void> {
  for (const demo of DEMO_USERS) {
    if (!(await users.findByUsername(demo.username))) await users.createUser(demo);
  }
}
