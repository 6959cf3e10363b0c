import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Store } from 'express-session';
import type { Request } from 'express';
import { SESSION_KEY } from './auth.constants.js';
import { ImproperlyConfigured } from './errors.js';
import { SessionHandler } from './sessions/session-handler.js';
import { peekSession } from './sessions/session-of.js';
import { canListUserSessions, type StoredSession } from './storage/session-data.js';

/** Session key of what a login noted about the device (`UserSession`'s `loggedInAt`, `userAgent`, `address`). */
export const SESSION_INFO_KEY = '_auth_session_info';

/** Longest user agent kept in a session. */
const MAX_USER_AGENT_LENGTH = 256;

/** One session a user is logged in with, as `AuthService.getUserSessions` lists it. */
export interface UserSession {
  /** Names the session for `endUserSession` (a digest of its id: the id itself is never shown). */
  key: string;
  /** When the user logged in with it; `null` for a session logged in before this was noted. */
  loggedInAt: Date | null;
  /**
   * When it was last used, as well as the store knows: the store notes a visit only when it
   * pushes the expiry forward (by default once half the session's age has passed since).
   */
  lastActiveAt: Date | null;
  expiresAt: Date;
  /** The browser's `User-Agent` at login (at most 256 characters). */
  userAgent: string;
  /** The client address at login (`request.ip`, as Express's `trust proxy` gives it). */
  address: string;
  /** The session of the request that asked. */
  current: boolean;
}

/**
 * A user's sessions, listed and ended one by one or all but the current one (beyond Django,
 * which has no such list). The store must be able to list a user's sessions: the module's
 * `TypeOrmSessionStore` and `RedisSessionStore` can.
 */
@Injectable()
export class UserSessions {
  constructor(private readonly sessions: SessionHandler) {}

  /** What a login notes in the session about the device it came from. */
  static describe(request: Request | undefined): { loggedInAt: number; userAgent: string; address: string } {
    const agent = request?.headers?.['user-agent'];
    return {
      loggedInAt: Date.now(),
      userAgent: typeof agent === 'string' ? agent.slice(0, MAX_USER_AGENT_LENGTH) : '',
      address: String(request?.ip ?? request?.socket?.remoteAddress ?? ''),
    };
  }

  async list(userId: string, request?: Request): Promise<UserSession[]> {
    const stored = await this.storeFor(request).userSessions(userId);
    const current = currentSessionId(request);
    const age = this.sessions.sessionAge;
    return stored
      .filter((session) => (session.data as unknown as Record<string, unknown>)[SESSION_KEY] === userId)
      .map((session) => describeStored(session, current, age))
      .sort((a, b) => (b.lastActiveAt?.getTime() ?? 0) - (a.lastActiveAt?.getTime() ?? 0));
  }

  /**
   * End the session `key` names, if it is one of the user's: `'ended'`, `'current'` (the
   * request's own, left for the caller to log out properly), or `'none'`.
   */
  async end(userId: string, key: string, request?: Request): Promise<'ended' | 'current' | 'none'> {
    const store = this.storeFor(request);
    const found = (await store.userSessions(userId)).find((session) => sessionKey(session.id) === key);
    if (!found) return 'none';
    if (found.id === currentSessionId(request)) return 'current';
    await destroy(store, found.id);
    return 'ended';
  }

  /** End every session of the user but the request's own; resolves how many ended. */
  async endOthers(userId: string, request: Request): Promise<number> {
    const store = this.storeFor(request);
    const current = currentSessionId(request);
    const others = (await store.userSessions(userId)).filter((session) => session.id !== current);
    await Promise.all(others.map((session) => destroy(store, session.id)));
    return others.length;
  }

  private storeFor(request: Request | undefined): Store & { userSessions(userId: string): Promise<StoredSession[]> } {
    const store = this.sessions.storeOf(request);
    if (!canListUserSessions(store)) {
      throw new ImproperlyConfigured(
        `The session store ${store?.constructor?.name ?? '(none)'} cannot list a user's sessions: use TypeOrmSessionStore or RedisSessionStore.`,
      );
    }
    return store as Store & { userSessions(userId: string): Promise<StoredSession[]> };
  }
}

function sessionKey(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 32);
}

/** The id of the request's session, once loaded. */
function currentSessionId(request: Request | undefined): string | undefined {
  return request ? (peekSession(request)?.id ?? undefined) : undefined;
}

function describeStored(stored: StoredSession, current: string | undefined, age: number): UserSession {
  const data = stored.data as unknown as Record<string, unknown> & { cookie?: { originalMaxAge?: number | null } };
  const info = (data[SESSION_INFO_KEY] ?? {}) as Partial<ReturnType<typeof UserSessions.describe>>;
  const loggedInAt = typeof info.loggedInAt === 'number' ? info.loggedInAt : null;
  const lifetime = data.cookie?.originalMaxAge ?? age;
  const now = Date.now();
  // The expiry was last pushed to "then + lifetime": then is the last visit the store noted.
  const noted = Math.min(now, stored.expiresAt - lifetime);
  const lastActive = loggedInAt === null ? noted : Math.max(loggedInAt, noted);
  return {
    key: sessionKey(stored.id),
    loggedInAt: loggedInAt === null ? null : new Date(loggedInAt),
    lastActiveAt: Number.isFinite(lastActive) ? new Date(lastActive) : null,
    expiresAt: new Date(stored.expiresAt),
    userAgent: typeof info.userAgent === 'string' ? info.userAgent : '',
    address: typeof info.address === 'string' ? info.address : '',
    current: stored.id === current,
  };
}

function destroy(store: Store, id: string): Promise<void> {
  return new Promise((resolve, reject) => store.destroy(id, (error?: unknown) => (error ? reject(error) : resolve())));
}
