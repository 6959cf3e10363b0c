import { Injectable, Logger } from '@nestjs/common';
import type { Request } from 'express';

export interface AuthEventMap {
  /** After `login()` stored the session (Django's `user_logged_in`). */
  userLoggedIn: { request: Request; user: any };
  /** Before `logout()` destroys the session; `user` is `null` for an anonymous request. */
  userLoggedOut: { request: Request; user: any | null };
  /** Once per failed `authenticate()`, with secrets in the credentials masked. */
  userLoginFailed: { request: Request | undefined; credentials: Record<string, unknown>; lockedOut?: boolean };
}

export type AuthEventName = keyof AuthEventMap;
export type AuthEventListener<E extends AuthEventName> = (
  payload: AuthEventMap[E],
) => void | Promise<void>;

/**
 * Django's auth signals as a tiny typed emitter. Listeners run in the order they subscribed and
 * are awaited, so a listener that writes an audit row has finished when `login()` resolves.
 */
@Injectable()
export class AuthEvents {
  private readonly logger = new Logger('AuthEvents');
  private readonly listeners = new Map<AuthEventName, Set<AuthEventListener<any>>>();

  /** Subscribe; returns the function that unsubscribes. */
  on<E extends AuthEventName>(event: E, listener: AuthEventListener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  async emit<E extends AuthEventName>(event: E, payload: AuthEventMap[E]): Promise<void> {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        await listener(payload);
      } catch (error) {
        // A broken audit hook must not turn a login into a 500 or keep a logout from happening.
        this.logger.error(`A ${event} listener failed: ${(error as Error).message}`, (error as Error).stack);
      }
    }
  }
}

const SENSITIVE_CREDENTIALS = /api|token|key|secret|password|signature/i;
const CLEANSED_SUBSTITUTE = '********************';

/** Mask every credential whose name looks secret (Django's `_clean_credentials`). */
export function cleanseCredentials(credentials: Record<string, unknown>): Record<string, unknown> {
  const cleansed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(credentials)) {
    cleansed[key] = SENSITIVE_CREDENTIALS.test(key) ? CLEANSED_SUBSTITUTE : value;
  }
  return cleansed;
}
