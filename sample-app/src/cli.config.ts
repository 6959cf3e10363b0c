import type { DataSourceOptions } from 'typeorm';
import { databaseFromEnv } from './config.js';

/**
 * Where the library's command line connects (`npm run createsuperuser`, or any command as
 * `npx nestjs-session-auth --config dist/cli.config.js <command>`): the app's own database.
 * The CLI never creates tables, so start the app once first.
 */
export default function cliConfig(env: NodeJS.ProcessEnv = process.env): { dataSource: DataSourceOptions } {
  return { dataSource: databaseFromEnv(env) };
}
