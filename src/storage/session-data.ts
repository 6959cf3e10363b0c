import type { SessionData } from 'express-session';

/**
 * A stored session's JSON as express-session data, or `null` when it is not one (not JSON, or no
 * cookie object: express-session throws on those). Django calls this "Session data corrupted"
 * and starts an empty session; so do the module's stores.
 */
export function parseSessionData(text: string): SessionData | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) return null;
  const cookie = (data as { cookie?: unknown }).cookie;
  return cookie && typeof cookie === 'object' && !Array.isArray(cookie) ? (data as SessionData) : null;
}

/** One live session of a user, as a store that can list them returns it (`userSessions`). */
export interface StoredSession {
  id: string;
  data: SessionData;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** A store that can list a user's sessions (the module's TypeORM and Redis stores). */
export interface UserSessionIndex {
  userSessions(userId: string): Promise<StoredSession[]>;
}

export function canListUserSessions(store: unknown): store is UserSessionIndex {
  return typeof (store as Partial<UserSessionIndex> | undefined)?.userSessions === 'function';
}
