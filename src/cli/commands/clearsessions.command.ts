import type { Command } from 'commander';
import { TypeOrmSessionStore } from '../../storage/typeorm-session.store.js';
import type { CommandContext } from './command.context.js';

/** `clearsessions`: delete expired session rows (Django's command), e.g. from a daily cron job. */
export function registerClearSessions(program: Command, context: CommandContext): void {
  program
    .command('clearsessions')
    .description('Delete expired sessions from the TypeOrmSessionStore table.')
    .action(async (_options: unknown, command: Command) => {
      await context.withAuth(command, async ({ dataSource }) => {
        const deleted = await new TypeOrmSessionStore(dataSource, { pruneInterval: false }).prune();
        context.prompter.say(`Deleted ${deleted} expired ${deleted === 1 ? 'session' : 'sessions'}.`);
      });
    });
}
