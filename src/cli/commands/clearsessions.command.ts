import type { Command } from 'commander';
import { TypeOrmLockoutStore } from '../../storage/lockout.store.js';
import { TypeOrmSessionStore } from '../../storage/typeorm-session.store.js';
import type { CommandContext } from './command.context.js';

/**
 * Login failure counters older than this are deleted too: longer than any of the throttle's
 * default windows (an hour at most), so no counter still in force is lost.
 */
const LOCKOUT_COUNTER_AGE_MS = 24 * 60 * 60 * 1000;

/**
 * `clearsessions`: delete expired session rows (Django's command) and stale login failure
 * counters, e.g. from a daily cron job.
 */
export function registerClearSessions(program: Command, context: CommandContext): void {
  program
    .command('clearsessions')
    .description('Delete expired sessions and login failure counters older than a day.')
    .action(async (_options: unknown, command: Command) => {
      await context.withAuth(command, async ({ dataSource }) => {
        const deleted = await new TypeOrmSessionStore(dataSource, { pruneInterval: false }).prune();
        const counters = await new TypeOrmLockoutStore(dataSource).prune(Date.now() - LOCKOUT_COUNTER_AGE_MS);
        context.prompter.say(`Deleted ${deleted} expired ${deleted === 1 ? 'session' : 'sessions'}.`);
        context.prompter.say(`Deleted ${counters} stale login failure ${counters === 1 ? 'counter' : 'counters'}.`);
      });
    });
}
