import type { DataSourceOptions } from 'typeorm';
import { databaseFromEnv } from './config.js';

/**
 * Where the library's command line (`nestjs-session-auth`, here `../dist/cli/main.js`) connects:
 * the app's own database. `npm run createsuperuser` uses it; other commands work the same way,
 * e.g. `node ../dist/cli/main.js --config dist/cli.config.js changepassword carol`. The CLI never
 * creates tables, so start the app once first.
 */
export default function cliConfig(env: NodeJS.ProcessEnv = process.env): { dataSource: DataSourceOptions } {
  return { dataSource: databaseFromEnv(env) };
}
