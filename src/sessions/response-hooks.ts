import { Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';

/**
 * The session layer's two moments in a response's life: as the headers go out (the cookie, `Vary`,
 * `Cache-Control`) and as it ends (the session written before the client sees the answer).
 * Node's `writeHead` and `end` are wrapped, once per Express app on its response prototype, or on
 * the one response otherwise (Node's, under a Fastify reply).
 */

/** A request whose session the layer holds, as its response's hooks see it (`SessionTracker`). */
export interface HookedResponse {
  headersSeen?: boolean;
  ending?: boolean;
  /** Add the layer's headers; the status code is final. */
  beforeHeaders(): void;
  /** The layer's work as the response ends (a changed session written), if any. */
  atEnd(): Promise<void> | undefined;
}

/** The hooked request a response answers, if any. */
export type HookedResponseFinder = (response: ServerResponse) => HookedResponse | undefined;

const HOOKED_PROTOTYPE = Symbol('nestjs-session-auth:hooked-prototype');
const logger = new Logger('Sessions');

/**
 * Run `hooked`'s work on `response`: through the Express app's response prototype when there is
 * one (`find` then finds `hooked` from the response, so a request pays for no wrapper of its
 * own), else on the response itself.
 */
export function hookResponse(response: ServerResponse, hooked: HookedResponse, find: HookedResponseFinder): void {
  if (hookPrototype(response, find)) return;
  wrapWriteHeadAndEnd(response, () => hooked);
}

/**
 * Express makes each app's responses from its own prototype (`app.response`, which holds the
 * app): its `writeHead` and `end` are wrapped once there. `false` for a response of no Express app.
 */
function hookPrototype(response: ServerResponse, find: HookedResponseFinder): boolean {
  const prototype = Object.getPrototypeOf(response);
  if (!prototype || !Object.hasOwn(prototype, 'app')) return false;
  if (!Object.hasOwn(prototype, HOOKED_PROTOTYPE)) {
    Object.defineProperty(prototype, HOOKED_PROTOTYPE, { value: true });
    wrapWriteHeadAndEnd(prototype, find);
  }
  return true;
}

/**
 * Wrap `target`'s `writeHead` and `end` (an Express app's response prototype, or one response):
 * before the headers go out the layer adds its own, and the response ends once the session is
 * saved, each once per response that `find` finds hooked.
 */
function wrapWriteHeadAndEnd(target: ServerResponse, find: HookedResponseFinder): void {
  const originalWriteHead = target.writeHead as (...args: unknown[]) => ServerResponse;
  const originalEnd = target.end as (...args: unknown[]) => ServerResponse;
  Object.defineProperties(target, {
    writeHead: {
      configurable: true,
      writable: true,
      value: function writeHead(this: ServerResponse): ServerResponse {
        const hooked = find(this);
        if (!hooked || hooked.headersSeen) return originalWriteHead.apply(this, arguments as unknown as unknown[]);
        hooked.headersSeen = true;
        // Headers given to writeHead itself are set first, so the layer sees (and adds to) them.
        const args = headersTakenFrom(this, arguments);
        hooked.beforeHeaders();
        return originalWriteHead.apply(this, args as unknown as unknown[]);
      },
    },
    end: {
      configurable: true,
      writable: true,
      value: function end(this: ServerResponse): ServerResponse {
        const hooked = find(this);
        if (!hooked || hooked.ending) return originalEnd.apply(this, arguments as unknown as unknown[]);
        hooked.ending = true;
        return endResponse(hooked, this, originalEnd, arguments);
      },
    },
  });
}

/**
 * End the response once the session is saved (a changed session is written before the client
 * sees the answer, so its next request finds it). `end` is the response's own `end`.
 */
function endResponse(hooked: HookedResponse, response: ServerResponse, end: Function, args: IArguments): ServerResponse {
  const work = hooked.atEnd();
  if (!work) return end.apply(response, args) as ServerResponse;
  work.then(
    () => end.apply(response, args),
    (error: Error) => {
      logger.error(`Saving the session failed: ${error.message}`);
      end.apply(response, args);
    },
  );
  return response;
}

/**
 * `writeHead(status, [message], [headers])`: set the status and the given headers on the
 * response, and return the arguments without the headers (the response now holds them).
 */
function headersTakenFrom(response: ServerResponse, args: IArguments): IArguments | unknown[] {
  if (typeof args[0] === 'number') response.statusCode = args[0];
  const at = typeof args[1] === 'string' ? 2 : 1;
  const headers = args[at] as Record<string, unknown> | unknown[] | undefined;
  if (!headers || typeof headers !== 'object') return args;
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) for (const [name, value] of headers as [string, unknown][]) response.appendHeader(name, value as string);
    else for (let i = 0; i + 1 < headers.length; i += 2) response.appendHeader(String(headers[i]), headers[i + 1] as string);
  } else {
    for (const name of Object.keys(headers)) if (headers[name] !== undefined) response.setHeader(name, headers[name] as string);
  }
  return Array.prototype.slice.call(args, 0, at);
}
