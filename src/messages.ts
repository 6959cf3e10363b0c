import type { Request } from 'express';
import { stateOf } from './request/request-state.js';
import { currentSession, sessionToRead } from './sessions/session-of.js';

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

declare module './request/request-state.js' {
  interface RequestState {
    /** The messages `list()` handed out during this request. */
    messagesShown?: FlashMessage[];
    /** The lowest level kept for this request (`setLevel`). */
    messagesLevel?: number;
  }
}

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
  if (value < (stateOf(request).messagesLevel ?? DEFAULT_MINIMUM)) return;
  // A visitor without a session gets one, stored because of the message ("You are logged out.").
  const session = currentSession(request);
  const queued = session.get(MESSAGES_SESSION_KEY);
  const pending = Array.isArray(queued) ? (queued as StoredMessage[]) : [];
  const stored: StoredMessage = { level: TAGS.get(value) ?? '', value, text };
  if (extraTags) stored.extraTags = extraTags;
  session.set(MESSAGES_SESSION_KEY, [...pending, stored]);
}

/**
 * The messages waiting for this visitor, marked as shown: a later request no longer sees them.
 * Asking again in the same request gives the same list (plus any added since); a message
 * added after the list was taken waits for the next request.
 */
function list(request: Request): FlashMessage[] {
  const state = stateOf(request);
  const session = sessionToRead(request);
  const shown = (state.messagesShown ??= []);
  const pending = session?.get(MESSAGES_SESSION_KEY);
  if (session && pending !== undefined) {
    if (Array.isArray(pending)) for (const stored of pending) {
      const message = toFlashMessage(stored);
      if (message) shown.push(message);
    }
    session.delete(MESSAGES_SESSION_KEY);
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
    stateOf(request).messagesLevel = levelValue(level);
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
