import { ServiceUnavailableException } from '@nestjs/common';
import type { Request } from 'express';
import type { Session, SessionData } from 'express-session';

type RequestSession = Session & Partial<SessionData> & Record<string, unknown>;

/** The request's session, or a 503 when express-session could not provide one. */
export function requireSession(request: Request): RequestSession {
  const session = (request as any).session as RequestSession | undefined;
  if (!session || !(request as any).sessionStore) {
    // express-session runs requests without a session while its store is disconnected.
    throw new ServiceUnavailableException('Sessions are unavailable right now; please try again shortly.');
  }
  return session;
}

/**
 * The name of the cookie that carried this request's session id, when the session was loaded
 * from the store. express-session signs the id as `s:<id>.<signature>` and only adopts an id
 * whose signature checks and whose row exists, so a cookie carrying exactly the current id
 * means the session is stored.
 */
export function storedSessionCookieName(request: Request): string | undefined {
  const header = request.headers?.cookie;
  const id = (request as any).sessionID;
  if (!header || typeof id !== 'string') return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    let value = pair.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      continue;
    }
    if (value.startsWith(`s:${id}.`)) return pair.slice(0, eq).trim();
  }
  return undefined;
}

/**
 * Move the request to a new session id (session fixation defence) holding `data`, and write it
 * now. The new session is stored before the old one is ended, so a store failure loses nothing:
 * the request keeps its old session and the error propagates. If ending the old one fails, the
 * new one is ended too, so no id is left both alive and logged in. A session that was never
 * stored is not ended (no pointless write).
 */
export async function rotateSessionId(request: Request, data: Record<string, unknown>): Promise<RequestSession> {
  const old = requireSession(request);
  const store = (request as any).sessionStore;
  const oldWasStored = !!storedSessionCookieName(request);
  store.generate(request);
  const fresh = (request as any).session as RequestSession;
  Object.assign(fresh, data);
  try {
    await persistSession(request);
  } catch (error) {
    (request as any).session = old;
    (request as any).sessionID = old.id;
    throw error;
  }
  if (oldWasStored) {
    try {
      await callbackToPromise((done) => store.destroy(old.id, done));
    } catch (error) {
      await callbackToPromise((done) => store.destroy(fresh.id, done)).catch(() => undefined);
      throw error;
    }
  }
  return fresh;
}

/** Copy of the session's own data, without the cookie. */
export function sessionData(session: RequestSession): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(session)) {
    if (key !== 'cookie') data[key] = value;
  }
  return data;
}

/**
 * Write the session now, so a redirect sent right after `login()` already finds it. express-
 * session would save a regenerated session again when the response ends; the session is told
 * to skip that second write unless something changed in between.
 */
export async function persistSession(request: Request): Promise<void> {
  const session = requireSession(request);
  const prototypeSave = Object.getPrototypeOf(session).save as Session['save'];
  await callbackToPromise((done) => prototypeSave.call(session, done));
  const persisted = fingerprint(session);
  Object.defineProperty(session, 'save', {
    configurable: true,
    enumerable: false,
    writable: true,
    value(this: RequestSession, callback?: (error?: unknown) => void) {
      if (fingerprint(this) === persisted) {
        if (callback) process.nextTick(callback);
        return this;
      }
      return prototypeSave.call(this, callback);
    },
  });
}

/** Delete the session from the store and from the request. */
export async function destroySession(request: Request): Promise<void> {
  const session = (request as any).session as RequestSession | undefined;
  if (!session) return;
  await callbackToPromise((done) => session.destroy(done));
}

function fingerprint(session: RequestSession): string {
  return JSON.stringify(session, (key, value) => (key === 'cookie' ? undefined : value));
}

function callbackToPromise(run: (done: (error?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}
