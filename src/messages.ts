import type { Request } from 'express';
import { ImproperlyConfigured } from './errors.js';
import { requireSession } from './request/session-lifecycle.js';
import { sessionState } from './request/session.js';

export type MessageLevel = 'debug' | 'info' | 'success' | 'warning' | 'error';

/** One flash message, as `messages.list()` hands it out (Django's `Message`). */
export interface FlashMessage {
  /** The level's tag: `info`, `error`..., a custom level's name, or `''` for a number without one (Django's `level_tag`). */
  level: string;
  /** The numeric level (Django's `level`): debug 10, info 20, success 25, warning 30, error 40, or a custom one. */
  levelValue: number;
  text: string;
  /** Tags given when the message was added (Django's `extra_tags`), space-separated. */
  extraTags: string;
  /** The extra tags, then the level's tag: ready for a `class` attribute (Django's `tags`). */
  tags: string;
}

/** How a message is kept in the session until it is shown. */
interface StoredMessage {
  level: string;
  value?: number;
  text: string;
  extraTags?: string;
}

/** Django's numeric levels: a message below the request's minimum level is dropped. */
const BUILT_IN_LEVELS: Record<MessageLevel, number> = { debug: 10, info: 20, success: 25, warning: 30, error: 40 };
/** Level names to values; `defineLevel` adds to it. */
const LEVELS = new Map<string, number>(Object.entries(BUILT_IN_LEVELS));
/** Level values to the tag messages of that level carry (Django's `MESSAGE_TAGS`). */
const TAGS = new Map<number, string>(Object.entries(BUILT_IN_LEVELS).map(([name, value]) => [value, name]));
const DEFAULT_MINIMUM = BUILT_IN_LEVELS.info;
const MAX_EXTRA_TAGS_LENGTH = 200;

/** Session key of the pending messages (Django's SessionStorage key). */
export const MESSAGES_SESSION_KEY = '_messages';
const SHOWN = Symbol('nestjs-session-auth:messages-shown');
const MINIMUM = Symbol('nestjs-session-auth:messages-level');

type MessageRequest = Request & { [SHOWN]?: FlashMessage[]; [MINIMUM]?: number };

/** A level given by name or number, as its number; a clear error for anything else. */
function levelValue(level: unknown): number {
  if (typeof level === 'number' && Number.isInteger(level)) return level;
  if (typeof level === 'string' && LEVELS.has(level)) return LEVELS.get(level)!;
  throw new TypeError(`Unknown message level '${String(level)}'; use a number or one of ${[...LEVELS.keys()].join(', ')}.`);
}

function add(request: Request, level: MessageLevel | string | number, text: string, options: { extraTags?: string } = {}): void {
  if (!request || typeof request !== 'object' || !('headers' in request)) {
    throw new TypeError('messages.add() needs the request as its first argument.');
  }
  const value = levelValue(level);
  if (typeof text !== 'string') throw new TypeError('A flash message must be a string.');
  const extraTags = options?.extraTags ?? '';
  if (typeof extraTags !== 'string' || extraTags.length > MAX_EXTRA_TAGS_LENGTH) {
    throw new TypeError(`extraTags must be a string of at most ${MAX_EXTRA_TAGS_LENGTH} characters.`);
  }
  if (text === '') return;
  if (value < ((request as MessageRequest)[MINIMUM] ?? DEFAULT_MINIMUM)) return;
  const session = sessionOf(request);
  const pending = Array.isArray(session[MESSAGES_SESSION_KEY]) ? (session[MESSAGES_SESSION_KEY] as StoredMessage[]) : [];
  const stored: StoredMessage = { level: TAGS.get(value) ?? '', value, text };
  if (extraTags) stored.extraTags = extraTags;
  session[MESSAGES_SESSION_KEY] = [...pending, stored];
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
    if (Array.isArray(pending)) for (const stored of pending) {
      const message = toFlashMessage(stored);
      if (message) shown.push(message);
    }
    delete session[MESSAGES_SESSION_KEY];
  }
  return shown.map((message) => ({ ...message }));
}

/** A stored message as shown, its tag as the level's tag is now; `null` for anything that is not one. */
function toFlashMessage(value: unknown): FlashMessage | null {
  const stored = value as StoredMessage;
  if (!stored || typeof stored.text !== 'string') return null;
  // Messages stored before levels had numbers carry only a built-in level's name.
  const number = typeof stored.value === 'number' && Number.isInteger(stored.value) ? stored.value : BUILT_IN_LEVELS[stored.level as MessageLevel];
  if (number === undefined || (stored.extraTags !== undefined && typeof stored.extraTags !== 'string')) return null;
  const level = TAGS.get(number) ?? '';
  const extraTags = stored.extraTags ?? '';
  return { level, levelValue: number, text: stored.text, extraTags, tags: [extraTags, level].filter(Boolean).join(' ') };
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
  debug: (request: Request, text: string, options?: { extraTags?: string }) => add(request, 'debug', text, options),
  info: (request: Request, text: string, options?: { extraTags?: string }) => add(request, 'info', text, options),
  success: (request: Request, text: string, options?: { extraTags?: string }) => add(request, 'success', text, options),
  warning: (request: Request, text: string, options?: { extraTags?: string }) => add(request, 'warning', text, options),
  error: (request: Request, text: string, options?: { extraTags?: string }) => add(request, 'error', text, options),
  /** Lowest level kept for this request (a name or a number); `info` by default, so debug messages are dropped. */
  setLevel(request: Request, level: MessageLevel | string | number): void {
    (request as MessageRequest)[MINIMUM] = levelValue(level);
  },
  /**
   * A level of your own, or another tag for a built-in one (Django's custom levels and
   * `MESSAGE_TAGS`): `defineLevel('critical', 50)`, or `defineLevel('danger', 40)` so error
   * messages carry Bootstrap's class. For the whole process, like Django's settings: call it once
   * at start-up.
   */
  defineLevel(name: string, value: number): void {
    if (typeof name !== 'string' || !/^[A-Za-z][\w-]{0,31}$/.test(name)) {
      throw new TypeError('A message level is named by a word (letters, digits, - and _), such as critical.');
    }
    if (!Number.isInteger(value)) throw new TypeError('A message level is an integer, such as 50.');
    LEVELS.set(name, value);
    TAGS.set(value, name);
  },
};
