import type { Request } from 'express';
import { ImproperlyConfigured } from './errors.js';
import { requireSession } from './request/session-lifecycle.js';
import { sessionState } from './request/session.js';

export type MessageLevel = 'debug' | 'info' | 'success' | 'warning' | 'error';

/** One flash message, as `messages.list()` hands it out. */
export interface FlashMessage {
  level: MessageLevel;
  text: string;
}

/** Django's numeric levels: a message below the request's minimum level is dropped. */
const LEVELS: Record<MessageLevel, number> = { debug: 10, info: 20, success: 25, warning: 30, error: 40 };
const DEFAULT_MINIMUM: MessageLevel = 'info';

/** Session key of the pending messages (Django's SessionStorage key). */
export const MESSAGES_SESSION_KEY = '_messages';
const SHOWN = Symbol('nestjs-session-auth:messages-shown');
const MINIMUM = Symbol('nestjs-session-auth:messages-level');

type MessageRequest = Request & { [SHOWN]?: FlashMessage[]; [MINIMUM]?: MessageLevel };

function add(request: Request, level: MessageLevel, text: string): void {
  if (!request || typeof request !== 'object' || !('headers' in request)) {
    throw new TypeError('messages.add() needs the request as its first argument.');
  }
  if (!Object.hasOwn(LEVELS, level)) {
    throw new TypeError(`Unknown message level '${String(level)}'; use one of ${Object.keys(LEVELS).join(', ')}.`);
  }
  if (typeof text !== 'string') throw new TypeError('A flash message must be a string.');
  if (text === '') return;
  const minimum = (request as MessageRequest)[MINIMUM] ?? DEFAULT_MINIMUM;
  if (LEVELS[level] < LEVELS[minimum]) return;
  const session = sessionOf(request);
  const pending = Array.isArray(session[MESSAGES_SESSION_KEY]) ? (session[MESSAGES_SESSION_KEY] as FlashMessage[]) : [];
  session[MESSAGES_SESSION_KEY] = [...pending, { level, text }];
}

/**
 * The messages waiting for this visitor, marked as shown: a later request no longer sees them.
 * Asking again in the same request gives the same list (plus any added since); a message
 * added after the list was taken waits for the next request.
 */
function list(request: Request): FlashMessage[] {
  const req = request as MessageRequest;
  const session = (req as any).session as Record<string, unknown> | undefined;
  const shown = req[SHOWN] ?? [];
  req[SHOWN] = shown;
  const pending = session?.[MESSAGES_SESSION_KEY];
  if (session && pending !== undefined) {
    if (Array.isArray(pending)) shown.push(...pending.filter(isFlashMessage));
    delete session[MESSAGES_SESSION_KEY];
  }
  return shown.map((message) => ({ ...message }));
}

function isFlashMessage(value: unknown): value is FlashMessage {
  const message = value as FlashMessage;
  return !!message && typeof message.text === 'string' && Object.hasOwn(LEVELS, message.level);
}

function sessionOf(request: Request): Record<string, unknown> {
  const req = request as any;
  if (!sessionState(request)) {
    if (!req.session && !req.sessionStore) {
      throw new ImproperlyConfigured(
        'Flash messages are kept in the session, and this request has none: let AuthModule install ' +
          'its sessions, or install express-session yourself before your routes when session is false.',
      );
    }
    // An app's express-session after logout() destroyed the session: start a new one for the
    // message ("You are logged out."), stored only because something is written to it.
    if (!req.session && typeof req.sessionStore.generate === 'function') req.sessionStore.generate(request);
  }
  return requireSession(request);
}

/**
 * Flash messages (Django's `contrib.messages` over session storage): queue a message for the
 * visitor's next page, show it once.
 *
 * ```ts
 * messages.success(req, 'Your profile was saved.');
 * // later, usually on the next request:
 * for (const { level, text } of messages.list(req)) …
 * ```
 */
export const messages = {
  add,
  list,
  debug: (request: Request, text: string) => add(request, 'debug', text),
  info: (request: Request, text: string) => add(request, 'info', text),
  success: (request: Request, text: string) => add(request, 'success', text),
  warning: (request: Request, text: string) => add(request, 'warning', text),
  error: (request: Request, text: string) => add(request, 'error', text),
  /** Lowest level kept for this request; `info` by default, so debug messages are dropped. */
  setLevel(request: Request, level: MessageLevel): void {
    if (!Object.hasOwn(LEVELS, level)) throw new TypeError(`Unknown message level '${String(level)}'.`);
    (request as MessageRequest)[MINIMUM] = level;
  },
};
