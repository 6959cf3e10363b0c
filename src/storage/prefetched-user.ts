/**
 * A session's user row read in the same statement as the session (`TypeOrmSessionStore` with
 * `readUsersAlong`), carried from the store to the user resolver on the data the store returns.
 * The key is a symbol, so the row never becomes session data: it is not copied onto
 * `request.session`, serialised, or saved.
 */
export interface PrefetchedUser {
  /** The user entity the row is of. */
  entity: Function;
  /** The session's user id as the store row names it. */
  userId: string;
  /** The user's row (column names as in the database), or `null`: the session names no such user. */
  row: Record<string, unknown> | null;
}

const PREFETCHED_USER = Symbol('nestjs-session-auth:prefetched-user');

export function attachPrefetchedUser(data: object, prefetched: PrefetchedUser): void {
  Object.defineProperty(data, PREFETCHED_USER, { value: prefetched, enumerable: false, configurable: true });
}

export function prefetchedUserOf(data: object | null | undefined): PrefetchedUser | undefined {
  return (data as { [PREFETCHED_USER]?: PrefetchedUser } | null | undefined)?.[PREFETCHED_USER];
}
