import type { Command } from 'commander';
import { CommandError } from '../cli.errors.js';
import { checkPassword, MAX_ATTEMPTS, promptNewPassword, requireTerminal } from '../user-input.js';
import type { CommandContext } from './command.context.js';

/**
 * `changepassword <username>`: Django's command. The new hash changes the session auth hash, so
 * every session of the user that is open elsewhere is logged out on its next request.
 */
export function registerChangePassword(program: Command, context: CommandContext): void {
  program
    .command('changepassword')
    .description("Change a user's password; prompted twice and checked by the password validators.")
    .argument('<username>', 'whose password to change')
    .option('--password-stdin', 'read the new password from stdin instead of prompting (one line)')
    .action(async (username: string, options: { passwordStdin?: boolean }, command: Command) => {
      if (!options.passwordStdin) requireTerminal(context.prompter, 'Pipe the new password with --password-stdin.');
      await context.withAuth(command, async ({ users }) => {
        const user = await users.findByUsername(username.normalize('NFKC'));
        if (!user) throw new CommandError(`User '${username}' does not exist. Check the spelling, or create it with createuser.`);
        let password: string;
        if (options.passwordStdin) {
          password = await checkPassword(users, await context.prompter.readPasswordFromStdin(), user);
        } else {
          context.prompter.say(`Changing password for user '${user.username}'`);
          password = await promptNewPassword(context.prompter, users, {
            user,
            giveUpMessage: `Aborting password change for user '${user.username}' after ${MAX_ATTEMPTS} attempts.`,
          });
        }
        await users.setPassword(user, password);
        // Only the password column: the user was loaded before the prompt, and other fields may
        // have been changed since.
        await users.savePassword(user);
        context.prompter.say(`Password changed successfully for user '${user.username}'.`);
      });
    });
}
