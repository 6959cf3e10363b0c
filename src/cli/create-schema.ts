import { DataSource, type DataSourceOptions } from 'typeorm';
import { authEntities, User } from '../storage/index.js';
import { CommandError } from './cli.errors.js';

/** `"name"`, `` `name` `` or `"schema"."name"`: the name, unquoted, without its schema. */
const NAME = String.raw`((?:[\x60"][^\x60"]+[\x60"]\.)?[\x60"][^\x60"]+[\x60"])`;
const CREATES = new RegExp(String.raw`^\s*CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+(?:IF NOT EXISTS\s+)?${NAME}`, 'i');
const CHANGES = new RegExp(String.raw`^\s*(?:ALTER TABLE|DROP TABLE|INSERT INTO|DROP INDEX)\s+(?:IF EXISTS\s+)?${NAME}`, 'i');

/**
 * Create the auth tables a database lacks (`--create-schema`), as `synchronize: true` would at
 * the app's first start, and resolve their names. Only creation: TypeORM's schema builder plans
 * the statements for the auth entities (and the app's user entity) alone, and the plan runs only
 * if every statement creates something or changes what this plan created (SQLite rebuilds a new
 * table to add its foreign keys). A plan that would alter, copy or drop an existing table is
 * refused: that is a migration, the app's to write.
 */
export async function createMissingTables(options: DataSourceOptions, userEntity: Function | undefined): Promise<string[]> {
  const entities = schemaEntities(userEntity);
  let dataSource: DataSource;
  try {
    dataSource = await new DataSource({ ...options, entities, synchronize: false, migrationsRun: false } as DataSourceOptions).initialize();
  } catch (error) {
    throw new CommandError(
      `Cannot create the auth tables on their own: ${(error as Error).message}. Create the schema with your app's migrations, ` +
        'or start the app once with synchronize: true.',
    );
  }
  try {
    const plan = (await dataSource.driver.createSchemaBuilder().log()).upQueries;
    const created = new Set<string>();
    const refused: string[] = [];
    for (const { query: statement } of plan) {
      const made = CREATES.exec(statement);
      if (made) {
        created.add(unquote(made[1]));
        continue;
      }
      const changed = CHANGES.exec(statement);
      if (!changed || !created.has(unquote(changed[1]))) refused.push(statement.trim().split('\n')[0].slice(0, 120));
    }
    if (refused.length > 0) {
      throw new CommandError(
        'The auth tables that exist differ from the entities, and --create-schema only creates missing tables; it would have run:\n  ' +
          refused.join('\n  ') +
          "\nRun your app's migrations (or start it once with synchronize: true in development) instead.",
      );
    }
    const tables = new Set(dataSource.entityMetadatas.map((metadata) => metadata.tableName));
    if (plan.length > 0) {
      const runner = dataSource.createQueryRunner();
      try {
        await runner.startTransaction();
        for (const { query, parameters } of plan) await runner.query(query, parameters);
        await runner.commitTransaction();
      } catch (error) {
        if (runner.isTransactionActive) await runner.rollbackTransaction();
        throw error;
      } finally {
        await runner.release();
      }
    }
    return [...created].filter((name) => tables.has(name));
  } finally {
    await dataSource.destroy();
  }
}

/** Every entity the app's module uses: `authEntities`, the app's user entity in place of `User`. */
export function schemaEntities(userEntity: Function | undefined): Function[] {
  return userEntity && userEntity !== User ? [...authEntities.filter((entity) => entity !== User), userEntity] : [...authEntities];
}

function unquote(name: string): string {
  return name.replace(/^.*\./, '').replace(/[`"]/g, '');
}
