import type { DataSource } from 'typeorm';

/**
 * The databases whose `INSERT … ON CONFLICT … DO UPDATE … WHERE` the module writes out where
 * TypeORM's upsert cannot express the statement (a WHERE, an increment). Others get TypeORM's
 * plain upsert.
 */
export type UpsertDialect = 'postgres' | 'sqlite';

export function upsertDialect(dataSource: DataSource): UpsertDialect | undefined {
  const type = dataSource.options.type as string;
  if (type === 'postgres' || type === 'cockroachdb') return 'postgres';
  if (type === 'sqlite' || type === 'better-sqlite3' || type === 'sqljs') return 'sqlite';
  return undefined;
}

/** Placeholder number `n` (1-based) in the dialect's syntax. */
export function placeholder(dialect: UpsertDialect, n: number): string {
  return dialect === 'postgres' ? `$${n}` : '?';
}

/** `schema.table` escaped for raw SQL. */
export function escapedTablePath(dataSource: DataSource, tablePath: string): string {
  return tablePath.split('.').map((part) => dataSource.driver.escape(part)).join('.');
}
