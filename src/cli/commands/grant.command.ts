import type { Command } from 'commander';
import { checkPermissionName, PermissionManager } from '../../permission.manager.js';
import { CommandError } from '../cli.errors.js';
import type { CommandContext } from './command.context.js';

/** The `name` column of the built-in `Group`. */
const MAX_GROUP_NAME_LENGTH = 150;

interface GrantOptions {
  group?: string[];
  create?: boolean;
}

/**
 * `grant <username> [app.action…] [--group name…]`: give a user permissions directly and add
 * them to groups, through `PermissionManager`. Every name is checked before anything is written,
 * so a typo changes nothing; unknown permissions and groups are created only with `--create`.
 */
export function registerGrant(program: Command, context: CommandContext): void {
  program
    .command('grant')
    .description("Grant permissions ('app.action') to a user, or add the user to groups.")
    .argument('<username>', 'who gets them')
    .argument('[permissions...]', "permission names such as 'blog.publish'")
    .option('-g, --group <name>', 'add the user to this group (repeatable)', (name: string, all: string[] = []) => [...all, name])
    .option('--create', 'create permissions and groups that do not exist yet')
    .action(async (username: string, permissions: string[], options: GrantOptions, command: Command) => {
      const groups = options.group ?? [];
      if (permissions.length === 0 && groups.length === 0) {
        throw new CommandError("Name at least one permission ('app.action') or --group <name> to grant.");
      }
      for (const name of groups) {
        if (name.trim() === '' || name.length > MAX_GROUP_NAME_LENGTH) {
          throw new CommandError(`A group name must be 1 to ${MAX_GROUP_NAME_LENGTH} characters long.`);
        }
      }
      for (const perm of permissions) {
        try {
          checkPermissionName(perm);
        } catch (error) {
          throw new CommandError((error as Error).message);
        }
      }
      await context.withAuth(command, async ({ app, users }) => {
        const manager = app.get(PermissionManager);
        const user = await users.findByUsername(username.normalize('NFKC'));
        if (!user) throw new CommandError(`User '${username}' does not exist. Check the spelling, or create it with createuser.`);

        const missingPermissions: string[] = [];
        for (const perm of permissions) if (!(await manager.getPermission(perm))) missingPermissions.push(perm);
        const missingGroups: string[] = [];
        for (const name of groups) if (!(await manager.getGroup(name))) missingGroups.push(name);
        const missing = [
          ...missingPermissions.map((perm) => `permission '${perm}'`),
          ...missingGroups.map((name) => `group '${name}'`),
        ];
        if (missing.length > 0 && !options.create) {
          throw new CommandError(
            `No ${missing.join(', ')}. Check the spelling, or pass --create to create ${missing.length === 1 ? 'it' : 'them'}. Nothing was granted.`,
          );
        }

        for (const perm of permissions) {
          if (missingPermissions.includes(perm)) {
            await manager.createPermission(perm);
            context.prompter.say(`Created permission '${perm}'.`);
          }
          await manager.grantPermission(user, perm);
          context.prompter.say(`Granted '${perm}' to '${user.username}'.`);
        }
        for (const name of groups) {
          if (missingGroups.includes(name)) {
            await manager.createGroup(name);
            context.prompter.say(`Created group '${name}'.`);
          }
          await manager.addUserToGroup(user, name);
          context.prompter.say(`Added '${user.username}' to group '${name}'.`);
        }
        if (user.isActive === false) {
          context.prompter.warn(`Note: '${user.username}' is inactive; inactive users have no permissions.`);
        }
      });
    });
}
