/** better-sqlite3-session-store ships no types since 0.1.0; the peer app uses only this much. */
declare module 'better-sqlite3-session-store' {
  import type session from 'express-session';

  interface SqliteStoreOptions {
    client: unknown;
    expired?: { clear?: boolean; intervalMs?: number };
  }

  export default function createSqliteStore(
    expressSession: typeof session,
  ): new (options: SqliteStoreOptions) => session.Store;
}
