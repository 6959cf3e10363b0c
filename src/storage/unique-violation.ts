/**
 * A unique-constraint failure: PostgreSQL's 23505, better-sqlite3's SQLITE_CONSTRAINT_UNIQUE,
 * MySQL's and MariaDB's ER_DUP_ENTRY, or sqlite3's (TypeORM 0.3) plain SQLITE_CONSTRAINT, which
 * only its message tells from a NOT NULL or CHECK failure.
 */
export function isUniqueViolation(error: unknown): boolean {
  const driverError = (error as { driverError?: { code?: unknown; message?: unknown } } | null)?.driverError;
  const code = driverError?.code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505' || code === 'ER_DUP_ENTRY') return true;
  return code === 'SQLITE_CONSTRAINT' && String(driverError?.message).includes('UNIQUE constraint failed');
}
