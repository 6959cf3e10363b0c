import { Command, CommanderError } from 'commander';
import { ImproperlyConfigured } from '../errors.js';
import { CONFIG_ENV } from './cli.config.js';
import { CommandError } from './cli.errors.js';
import { registerChangePassword } from './commands/changepassword.command.js';
import { registerClearSessions } from './commands/clearsessions.command.js';
import { createCommandContext } from './commands/command.context.js';
import { registerCreateSuperuser } from './commands/createsuperuser.command.js';
import { registerCreateUser } from './commands/createuser.command.js';
import { registerGrant } from './commands/grant.command.js';
import { registerInit } from './commands/init.command.js';
import { Prompter, type CliIo } from './prompter.js';

export type { CliIo } from './prompter.js';

/** The `nestjs-session-auth` command with its subcommands, writing to `io`. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('nestjs-session-auth')
    .description("Wire nestjs-session-auth into a Nest app (init) and manage its users (Django's auth commands).")
    .option('-c, --config <path>', `config file exporting { dataSource, auth } (default $${CONFIG_ENV}, else $DATABASE_URL)`)
    .option(
      '--create-schema',
      'create the auth tables the database lacks (a new SQLite file included) before the command; never alters an existing table',
    )
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    // Report through runCli's exit code instead of process.exit(), so tests can run commands.
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  const context = createCommandContext(io, new Prompter(io));
  registerCreateUser(program, context);
  registerCreateSuperuser(program, context);
  registerChangePassword(program, context);
  registerClearSessions(program, context);
  registerGrant(program, context);
  registerInit(program, context);
  return program;
}

/**
 * Run one command line (`argv` without the node binary and script) and resolve its exit code:
 * 0 done, 1 when the operator has something to fix (the message says what). Only an unexpected
 * failure prints a stack trace.
 */
export async function runCli(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const streams: CliIo = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    ...io,
  };
  try {
    await buildProgram(streams).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    // Commander has already printed usage errors and help.
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof CommandError) {
      streams.stderr.write(`Error: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof ImproperlyConfigured) {
      streams.stderr.write(`Error: the auth options are not usable: ${error.message}\n`);
      return 1;
    }
    streams.stderr.write(`Unexpected error (please report it): ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}
