import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DataSourceOptions } from 'typeorm';
import type { AuthModuleOptions } from '../auth.options.js';
import { authEntities } from '../storage/index.js';
import { CommandError } from './cli.errors.js';

/**
 * What a config file exports (default export, `module.exports`, or a function returning it):
 * the DataSource options the app uses, and the auth options that matter outside a request.
 */
export interface CliConfigFile {
  dataSource: DataSourceOptions;
  /** `userEntity`, `passwordHashers`, `passwordValidators`; backends and sessions are ignored. */
  auth?: Partial<AuthModuleOptions>;
}

export interface CliConfig {
  dataSource: DataSourceOptions;
  auth: Partial<AuthModuleOptions>;
  /** Where the connection came from, for error messages (never shows a password). */
  source: string;
  /**
   * Create the auth tables the database lacks: `--create-schema`, or a config whose DataSource
   * says `synchronize: true` (as the app would at its start) outside production.
   */
  createSchema?: 'flag' | 'synchronize';
}

/** Environment variable naming the config file when `--config` is not given. */
export const CONFIG_ENV = 'NESTJS_SESSION_AUTH_CONFIG';

const HOW_TO_CONFIGURE =
  'Pass --config path/to/auth.config.js (exporting { dataSource, auth }), set ' +
  `${CONFIG_ENV} to that path, or set DATABASE_URL (postgres://… or the path of a SQLite file).`;

/**
 * The connection the CLI uses: `--config`, else `NESTJS_SESSION_AUTH_CONFIG`, else
 * `DATABASE_URL`. The auth entities (and a custom user entity) are always added, and the CLI
 * never changes the schema: synchronize, migrationsRun and dropSchema are forced off.
 */
export async function loadCliConfig(
  configPath: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
  { createSchema = false }: { createSchema?: boolean } = {},
): Promise<CliConfig> {
  const path = configPath ?? (env[CONFIG_ENV] || undefined);
  let loaded: CliConfig;
  if (path) loaded = await readConfigFile(resolve(cwd, path));
  else if (env.DATABASE_URL) loaded = fromDatabaseUrl(env.DATABASE_URL, cwd, createSchema);
  else throw new CommandError(`No database configured. ${HOW_TO_CONFIGURE}`);
  // Never on a production database without being asked, whatever the config says.
  const synchronize = loaded.dataSource.synchronize === true && env.NODE_ENV !== 'production';
  return {
    ...loaded,
    dataSource: withAuthEntities(loaded.dataSource, loaded.auth),
    createSchema: createSchema ? 'flag' : synchronize ? 'synchronize' : undefined,
  };
}

async function readConfigFile(path: string): Promise<CliConfig> {
  const source = `config file ${path}`;
  if (!existsSync(path)) throw new CommandError(`Config file not found: ${path}. ${HOW_TO_CONFIGURE}`);
  let exported: unknown;
  const extension = extname(path);
  if (extension === '.json') {
    try {
      exported = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new CommandError(`Config file ${path} is not valid JSON: ${(error as Error).message}`);
    }
  } else if (['.js', '.mjs', '.cjs'].includes(extension)) {
    try {
      const module = await import(pathToFileURL(path).href);
      exported = module.default ?? module;
      if (typeof exported === 'function') exported = await (exported as () => unknown)();
    } catch (error) {
      throw new CommandError(`Could not load config file ${path}: ${(error as Error).message}`);
    }
  } else {
    throw new CommandError(
      `Config file ${path} must be .js, .mjs, .cjs or .json (compile a TypeScript config first).`,
    );
  }
  const config = exported as Partial<CliConfigFile> | null;
  if (!config || typeof config !== 'object' || !config.dataSource || typeof config.dataSource.type !== 'string') {
    throw new CommandError(
      `Config file ${path} must export { dataSource: { type: 'better-sqlite3' | 'postgres' | …, … }, auth?: { … } }.`,
    );
  }
  if (config.auth != null && typeof config.auth !== 'object') {
    throw new CommandError(`Config file ${path}: auth must be an object of AuthModule options.`);
  }
  return { dataSource: config.dataSource, auth: config.auth ?? {}, source };
}

/** `postgres://…` (or `postgresql://…`) is PostgreSQL; anything without a scheme is a SQLite file. */
function fromDatabaseUrl(url: string, cwd: string, createSchema: boolean): CliConfig {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return { dataSource: { type: 'postgres', url }, auth: {}, source: `DATABASE_URL ${redactUrl(url)}` };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new CommandError(
      `DATABASE_URL ${redactUrl(url)} is not supported: use postgres://…, the path of a SQLite file, ` +
        'or --config with the DataSource options of your database.',
    );
  }
  const file = isAbsolute(url) ? url : resolve(cwd, url);
  // better-sqlite3 would create an empty file and the error would only say "no such table".
  if (!existsSync(file) && !createSchema) {
    throw new CommandError(
      `SQLite database file not found: ${file}. Set DATABASE_URL to the file your app uses, or pass --create-schema ` +
        'to create it with the auth tables now (what synchronize: true does at the first start).',
    );
  }
  const dataSource = { type: sqliteDriver(), database: file } as DataSourceOptions;
  return { dataSource, auth: {}, source: `DATABASE_URL ${file}` };
}

/**
 * The SQLite driver the app has installed: `better-sqlite3` (TypeORM 1 knows no other), else
 * `sqlite3`, which TypeORM 0.3 calls `sqlite`. Resolved from this package, which finds the app's
 * node_modules as TypeORM does; with neither installed, TypeORM names the package to install.
 */
function sqliteDriver(): 'better-sqlite3' | 'sqlite' {
  const require = createRequire(import.meta.url);
  for (const [driver, type] of [['better-sqlite3', 'better-sqlite3'], ['sqlite3', 'sqlite']] as const) {
    try {
      require.resolve(driver);
      return type;
    } catch {
      // not installed; try the next one
    }
  }
  return 'better-sqlite3';
}

function withAuthEntities(options: DataSourceOptions, auth: Partial<AuthModuleOptions>): DataSourceOptions {
  const own = options.entities == null ? [] : Array.isArray(options.entities) ? options.entities : Object.values(options.entities);
  const entities = [...new Set([...authEntities, ...(auth.userEntity ? [auth.userEntity] : []), ...own])];
  return {
    ...options,
    entities,
    synchronize: false,
    migrationsRun: false,
    dropSchema: false,
    logging: false,
  } as DataSourceOptions;
}

/** The URL with its password replaced, so errors can show which database was meant. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}
