import { QueryFailedError, type DataSource, type EntityMetadata } from 'typeorm';

type ColumnMetadata = EntityMetadata['columns'][number];
import { escapedTablePath } from './sql-dialect.js';

/**
 * A SELECT on the per-request path, run as directly as the driver allows: a statement prepared
 * once by better-sqlite3, a named prepared statement on PostgreSQL (pg), else TypeORM's raw
 * `query()`. TypeORM's query builder and entity hydration cost several times the query itself on
 * every logged-in request; this keeps the SQL the same and leaves the rest out. Statements still
 * go to the DataSource's logger, so query logging and counting keep seeing them.
 *
 * `sql` uses `?` placeholders; they become `$1, $2, …` on PostgreSQL, so no literal in it may
 * hold a `?` of its own.
 */
export class PreparedQuery<Row extends Record<string, unknown>> {
  private readonly sql: string;
  private readonly name: string;
  private statement?: { get(...params: unknown[]): unknown };

  constructor(
    private readonly dataSource: DataSource,
    sql: string,
  ) {
    const postgres = isPostgres(dataSource);
    let n = 0;
    this.sql = postgres ? sql.replace(/\?/g, () => `$${++n}`) : sql;
    this.name = `nsa_${hash(this.sql)}`;
  }

  /** The first row, or `undefined`. Driver errors come as TypeORM's `QueryFailedError`, as from `query()`. */
  async one(params: unknown[]): Promise<Row | undefined> {
    this.dataSource.logger?.logQuery?.(this.sql, params);
    const type = this.dataSource.options.type as string;
    const driver = this.dataSource.driver as unknown as { databaseConnection?: any; master?: any };
    try {
      if (type === 'better-sqlite3' && this.dataSource.isInitialized && driver.databaseConnection?.prepare) {
        this.statement ??= driver.databaseConnection.prepare(this.sql);
        return this.statement!.get(...params) as Row | undefined;
      }
      if (isPostgres(this.dataSource) && this.dataSource.isInitialized && typeof driver.master?.query === 'function') {
        const result = await driver.master.query({ name: this.name, text: this.sql, values: params });
        return result.rows[0] as Row | undefined;
      }
    } catch (error) {
      throw new QueryFailedError(this.sql, params, error as Error);
    }
    const rows = (await this.dataSource.query(this.sql, params)) as Row[];
    return rows[0];
  }
}

/** Build an entity instance from a raw row, converting each column as TypeORM's own hydration does. */
export function hydrate<T>(dataSource: DataSource, metadata: EntityMetadata, row: Record<string, unknown>): T {
  const entity = metadata.create() as Record<string, unknown>;
  for (const column of selectableColumns(metadata)) {
    if (!Object.hasOwn(row, column.databaseName)) continue;
    column.setEntityValue(entity, dataSource.driver.prepareHydratedValue(row[column.databaseName], column));
  }
  return entity as T;
}

/**
 * The columns a `find()` selects: stored, not hidden with `select: false`, not a relation's.
 * Worked out once per entity (metadata is fixed once the DataSource is built).
 */
export function selectableColumns(metadata: EntityMetadata): ColumnMetadata[] {
  let columns = selectable.get(metadata);
  if (!columns) {
    columns = metadata.columns.filter((column) => column.isSelect && !column.isVirtual && !column.relationMetadata);
    selectable.set(metadata, columns);
  }
  return columns;
}

const selectable = new WeakMap<EntityMetadata, ColumnMetadata[]>();

/** The entity's table (`schema.table`) escaped for raw SQL, and its columns by property name. */
export function sqlNames(dataSource: DataSource, metadata: EntityMetadata) {
  return {
    table: escapedTablePath(dataSource, metadata.tablePath),
    column: (property: string) => dataSource.driver.escape(metadata.findColumnWithPropertyName(property)!.databaseName),
  };
}

function isPostgres(dataSource: DataSource): boolean {
  const type = dataSource.options.type as string;
  return type === 'postgres' || type === 'cockroachdb';
}

function hash(text: string): string {
  let h = 5381;
  for (let i = 0; i < text.length; i++) h = ((h * 33) ^ text.charCodeAt(i)) >>> 0;
  return h.toString(36);
}
