import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AuthModule } from '../auth.module.js';
import type { AuthModuleOptions } from '../auth.options.js';
import { ModelBackend } from '../backends/model.backend.js';
import { Group } from '../storage/group.entity.js';
import { Permission } from '../storage/permission.entity.js';
import { SessionRecord } from '../storage/session.entity.js';
import { User } from '../storage/user.entity.js';
import { UserManager } from '../user.manager.js';
import type { CliConfig } from './cli.config.js';
import { CommandError } from './cli.errors.js';
import { createMissingTables, schemaEntities } from './create-schema.js';

/** The library's own services over the app's database, for one command. */
export interface AuthContext {
  app: INestApplicationContext;
  dataSource: DataSource;
  users: UserManager<any>;
  close(): Promise<void>;
}

/** The CLI signs nothing (no sessions, no tokens); AuthModule still wants a key to start. */
const UNUSED_SECRET = 'nestjs-session-auth-cli-signs-nothing';

/**
 * Connect, check that the auth tables exist, then start a Nest application context with
 * `AuthModule`, so `UserManager`, the hashers and the validators are exactly the ones the app
 * runs with the same options. The DataSource is opened here rather than by `TypeOrmModule`,
 * whose retry loop would make an unreachable database take half a minute to report.
 */
export async function openAuthContext(config: CliConfig, say: (line: string) => void): Promise<AuthContext> {
  const dataSource = new DataSource(config.dataSource);
  try {
    await dataSource.initialize();
  } catch (error) {
    throw new CommandError(
      `Cannot connect to the database (${config.source}): ${(error as Error).message}. ` +
        'Check that it is running and that the connection settings are the ones your app uses.',
    );
  }
  let app: INestApplicationContext | undefined;
  try {
    await checkTables(dataSource, config, say);
    app = await NestFactory.createApplicationContext(cliModule(dataSource, config.auth), {
      logger: false,
      // Nest would otherwise call process.exit() on a bad option instead of letting us report it.
      abortOnError: false,
    });
  } catch (error) {
    if (dataSource.isInitialized) await dataSource.destroy();
    throw error;
  }
  const context = app;
  return {
    app: context,
    dataSource,
    users: context.get(UserManager),
    // Closing the context destroys the DataSource (TypeOrmModule's shutdown hook).
    close: () => context.close(),
  };
}

function cliModule(dataSource: DataSource, auth: Partial<AuthModuleOptions>) {
  @Module({
    imports: [
      TypeOrmModule.forRootAsync({
        useFactory: () => dataSource.options,
        dataSourceFactory: async () => dataSource,
      }),
      AuthModule.forRoot({
        ...auth,
        // The app's own backends may need the app's providers; the CLI only needs the model.
        backends: [ModelBackend],
        session: false,
        secret: auth.secret ?? UNUSED_SECRET,
        throttle: false,
      }),
    ],
  })
  class AuthCliModule {}
  return AuthCliModule;
}

/**
 * Fail before any prompt when the schema is not there, unless asked to create it
 * (`--create-schema`, or a config with `synchronize: true` outside production).
 */
async function checkTables(dataSource: DataSource, config: CliConfig, say: (line: string) => void): Promise<void> {
  // Creating, it makes every table the app will need; checking, only those the commands use.
  const entities = config.createSchema
    ? schemaEntities(config.auth.userEntity)
    : [config.auth.userEntity ?? User, Group, Permission, SessionRecord];
  const tables = new Set<string>();
  for (const entity of entities) {
    const metadata = dataSource.getMetadata(entity);
    tables.add(metadata.tablePath);
    for (const relation of metadata.manyToManyRelations) {
      if (relation.junctionEntityMetadata) tables.add(relation.junctionEntityMetadata.tablePath);
    }
  }
  const runner = dataSource.createQueryRunner();
  try {
    const missing: string[] = [];
    for (const table of tables) if (!(await runner.hasTable(table))) missing.push(table);
    if (missing.length === 0) return;
    if (!config.createSchema) {
      throw new CommandError(
        `The database (${config.source}) has no ${missing.join(', ')} ${missing.length === 1 ? 'table' : 'tables'}. ` +
          "Run your app's migrations first (or start it once with synchronize: true), or pass --create-schema to " +
          'create the missing auth tables now; without it the CLI never changes the schema.',
      );
    }
  } finally {
    await runner.release();
  }
  const created = await createMissingTables(config.dataSource, config.auth.userEntity);
  const why = config.createSchema === 'flag' ? '--create-schema' : 'the DataSource says synchronize: true';
  say(`Created the ${created.length === 1 ? 'table' : 'tables'} ${created.join(', ')} (${why}).`);
}
