import type { Command } from 'commander';
import { CommandError } from '../cli.errors.js';
import {
  checkPassword,
  emailProblem,
  MAX_ATTEMPTS,
  promptNewPassword,
  requireTerminal,
  saveNewUser,
  usernameProblem,
} from '../user-input.js';
import type { CommandContext } from './command.context.js';

interface CreateUserOptions {
  email?: string;
  staff?: boolean;
  passwordStdin?: boolean;
  /** `false` with `--no-password`. */
  password: boolean;
}

/** `createuser <username>`: a regular user, password prompted twice, piped, or unusable. */
export function registerCreateUser(program: Command, context: CommandContext): void {
  program
    .command('createuser')
    .description('Create a user; the password is prompted twice and checked by the password validators.')
    .argument('<username>', 'the new username')
    .option('--email <email>', 'email address')
    .option('--staff', 'mark the user as staff (isStaff)')
    .option('--password-stdin', 'read the password from stdin instead of prompting (one line)')
    .option('--no-password', 'give the user an unusable password (they log in through another backend)')
    .action(async (username: string, options: CreateUserOptions, command: Command) => {
      if (options.passwordStdin && !options.password) {
        throw new CommandError('Pass either --password-stdin or --no-password, not both.');
      }
      const email = (options.email ?? '').trim();
      const emailError = emailProblem(email);
      if (emailError) throw new CommandError(emailError);
      if (options.password && !options.passwordStdin) {
        requireTerminal(context.prompter, 'Pipe it with --password-stdin, or pass --no-password for an unusable password.');
      }
      await context.withAuth(command, async ({ users }) => {
        const usernameError = await usernameProblem(users, username);
        if (usernameError) throw new CommandError(usernameError);
        const candidate = { username, email };
        let password: string | null = null;
        if (options.passwordStdin) {
          password = await checkPassword(users, await context.prompter.readPasswordFromStdin(), candidate);
        } else if (options.password) {
          password = await promptNewPassword(context.prompter, users, {
            user: candidate,
            giveUpMessage: `Aborting: no acceptable password for '${username}' after ${MAX_ATTEMPTS} attempts; the user was not created.`,
          });
        }
        const user = await saveNewUser(username, () => users.createUser({ username, email, password, isStaff: options.staff === true }));
        context.prompter.say(`User '${user.username}' created${password === null ? ' with an unusable password' : ''}.`);
      });
    });
}
