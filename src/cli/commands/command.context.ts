import type { Command } from 'commander';
import { loadCliConfig } from '../cli.config.js';
import { openAuthContext, type AuthContext } from '../cli.context.js';
import type { CliIo, Prompter } from '../prompter.js';

/** What every command gets: the streams, the prompter, and the library over the app's database. */
export interface CommandContext {
  io: CliIo;
  prompter: Prompter;
  /** Connect with the global `--config` (or the environment), run `work`, always disconnect. */
  withAuth<T>(command: Command, work: (auth: AuthContext) => Promise<T>): Promise<T>;
}

export function createCommandContext(io: CliIo, prompter: Prompter): CommandContext {
  return {
    io,
    prompter,
    async withAuth(command, work) {
      const { config, createSchema } = command.optsWithGlobals<{ config?: string; createSchema?: boolean }>();
      const settings = await loadCliConfig(config, io.env, io.cwd, { createSchema });
      const auth = await openAuthContext(settings, (line) => prompter.say(line));
      try {
        return await work(auth);
      } finally {
        await auth.close();
      }
    },
  };
}
