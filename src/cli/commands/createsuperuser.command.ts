import type { Command } from 'commander';
import type { UserManager } from '../../user.manager.js';
import { CommandError } from '../cli.errors.js';
import type { Prompter } from '../prompter.js';
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

/** Django's DJANGO_SUPERUSER_* variables, for `--noinput`. */
export const SUPERUSER_ENV = {
  username: 'NESTJS_SESSION_AUTH_SUPERUSER_USERNAME',
  email: 'NESTJS_SESSION_AUTH_SUPERUSER_EMAIL',
  password: 'NESTJS_SESSION_AUTH_SUPERUSER_PASSWORD',
} as const;

interface CreateSuperuserOptions {
  username?: string;
  email?: string;
  /** `false` with `--no-input`. */
  input: boolean;
  noinput?: boolean;
}

/**
 * `createsuperuser`: Django's command. Interactive, it asks for what is missing and offers to
 * bypass the password validators after listing what they refused. With `--noinput` everything
 * comes from options and the environment; a missing password gives an unusable one.
 */
export function registerCreateSuperuser(program: Command, context: CommandContext): void {
  program
    .command('createsuperuser')
    .description('Create a superuser (isStaff and isSuperuser), prompting for what is missing.')
    .option('--username <username>', `the username (with --noinput, default $${SUPERUSER_ENV.username})`)
    .option('--email <email>', `the email address (with --noinput, default $${SUPERUSER_ENV.email})`)
    .option('--noinput', `ask nothing; the password comes from $${SUPERUSER_ENV.password} (unusable when unset)`)
    .option('--no-input', 'same as --noinput')
    .action(async (options: CreateSuperuserOptions, command: Command) => {
      const noInput = options.noinput === true || options.input === false;
      if (!noInput) {
        requireTerminal(
          context.prompter,
          `To create a superuser from a script, pass --noinput and set ${Object.values(SUPERUSER_ENV).join(', ')}.`,
        );
      }
      await context.withAuth(command, async ({ users }) => {
        const { username, email, password } = noInput
          ? await fromEnvironment(context, options, users)
          : await interactively(context, options, users);
        await saveNewUser(username, () => users.createSuperuser({ username, email, password }));
        context.prompter.say('Superuser created successfully.');
      });
    });
}

async function fromEnvironment(context: CommandContext, options: CreateSuperuserOptions, users: UserManager<any>) {
  const { env } = context.io;
  const username = options.username ?? env[SUPERUSER_ENV.username];
  if (!username) {
    throw new CommandError(`You must use --username with --noinput, or set ${SUPERUSER_ENV.username}.`);
  }
  await mustBeValid(username, (value) => usernameProblem(users, value));
  const email = (options.email ?? env[SUPERUSER_ENV.email] ?? '').trim();
  await mustBeValid(email, async (value) => emailProblem(value));
  const raw = env[SUPERUSER_ENV.password];
  // Unlike Django, the validators apply here too: scripted set-ups are where weak passwords hide.
  const password = raw === undefined ? null : await checkPassword(users, raw, { username, email });
  return { username, email, password };
}

async function interactively(context: CommandContext, options: CreateSuperuserOptions, users: UserManager<any>) {
  const { prompter } = context;
  const checkUsername = (value: string) => usernameProblem(users, value);
  const checkEmail = async (value: string) => emailProblem(value.trim());
  const username = options.username !== undefined
    ? await mustBeValid(options.username, checkUsername)
    : await askUntilValid(prompter, 'Username: ', checkUsername);
  const email = (options.email !== undefined
    ? await mustBeValid(options.email, checkEmail)
    : await askUntilValid(prompter, 'Email address: ', checkEmail)
  ).trim();
  const password = await promptNewPassword(prompter, users, {
    user: { username, email },
    offerBypass: true,
    giveUpMessage: `Aborting: no acceptable password after ${MAX_ATTEMPTS} attempts; the superuser was not created.`,
  });
  return { username, email, password };
}

/** A value given as an option is checked once: there is nobody to ask again. */
async function mustBeValid(value: string, problemOf: (value: string) => Promise<string | null>): Promise<string> {
  const problem = await problemOf(value);
  if (problem) throw new CommandError(problem);
  return value;
}

/** Django re-asks after an invalid answer; here up to three times. */
async function askUntilValid(
  prompter: Prompter,
  question: string,
  problemOf: (value: string) => Promise<string | null>,
): Promise<string> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const answer = await prompter.ask(question);
    const problem = await problemOf(answer);
    if (!problem) return answer;
    prompter.warn(`Error: ${problem}`);
  }
  throw new CommandError(`Aborting after ${MAX_ATTEMPTS} invalid answers; the superuser was not created.`);
}
