import { Logger, type INestApplicationContext } from '@nestjs/common';
import { PermissionManager, UserManager } from 'nestjs-session-auth';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import type { AppOptions } from './app.options.js';
import { STAFF_GROUP, VIEW_STAFF_PAGE } from './permissions.js';

/**
 * The accounts the home page lists. Which backend accepts each one is the point of the demo:
 * - alice and bob have no usable password here: `DictionaryBackend` holds theirs and maps them
 *   to these local users. alice is staff (and in the staff group), bob is not.
 * - carol has a password of her own, checked by `ModelBackend`; she can change it.
 * - dana and erin are not created here: `DirectoryBackend` creates them at their first login.
 *
 * Their passwords are published right here, so they exist only in the demo (`AppOptions.demo`).
 */
export const DEMO_ACCOUNTS = [
  { username: 'alice', password: 'wonderland', backend: 'DictionaryBackend', staff: true },
  { username: 'bob', password: 'builder', backend: 'DictionaryBackend', staff: false },
  { username: 'carol', password: 'correct horse battery staple', backend: 'ModelBackend', staff: false },
  { username: 'dana', password: 'daylight', backend: 'DirectoryBackend', staff: true },
  { username: 'erin', password: 'evergreen', backend: 'DirectoryBackend', staff: false },
] as const;

/**
 * Create what the site needs, leaving alone whatever exists: running it at every start keeps
 * the changes you made (a new password, a grant) across restarts. The staff page's permission
 * and group always; the demo users only in the demo.
 */
export async function seed(app: INestApplicationContext, { demo }: Pick<AppOptions, 'demo'>): Promise<void> {
  const permissions = app.get(PermissionManager);
  await permissions.createPermission(VIEW_STAFF_PAGE, 'Can view the staff page');
  await permissions.createGroup(STAFF_GROUP, [VIEW_STAFF_PAGE]);

  if (demo) await createDemoUsers(app);
  else await lockPublishedPasswords(app);
}

async function createDemoUsers(app: INestApplicationContext): Promise<void> {
  const users = app.get(UserManager);
  const permissions = app.get(PermissionManager);
  const local = [
    { username: 'alice', email: 'alice@example.com', isStaff: true, groups: [STAFF_GROUP] },
    { username: 'bob', email: 'bob@example.com', groups: [] },
    { username: 'carol', email: 'carol@example.com', password: 'correct horse battery staple', groups: [] },
  ];
  for (const { groups, ...fields } of local) {
    if (await users.findByUsername(fields.username)) continue;
    const user = await users.createUser(fields);
    for (const group of groups) await permissions.addUserToGroup(user, group);
  }
}

/**
 * A database the demo used first still holds carol with her published password. Outside the
 * demo, a demo user whose password is still the published one gets an unusable password instead.
 */
async function lockPublishedPasswords(app: INestApplicationContext): Promise<void> {
  const users = app.get(UserManager);
  for (const { username, password } of DEMO_ACCOUNTS) {
    const user = await users.findByUsername(username);
    if (!user || !isPasswordUsable(user.password) || !(await users.checkPassword(user, password))) continue;
    await users.setPassword(user, null);
    await users.savePassword(user);
    new Logger('Seed').warn(
      `${username} still had the demo's published password, which no longer works. Give them a new one with ` +
        `\`node ../dist/cli/main.js --config dist/cli.config.js changepassword ${username}\`.`,
    );
  }
}
