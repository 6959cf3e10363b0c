import { Inject, Injectable, Logger, Optional, type INestApplicationContext } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { foreignPageOrigin } from '../request/origins.js';
import { requestPrototypeOf } from '../request/platform.js';
import { SessionHandler } from '../sessions/session-handler.js';

/**
 * The requests WebSocket messages and GraphQL subscriptions are judged by, made from their
 * connection's handshake. A browser sends the site's cookies with a WebSocket handshake whatever
 * page opens it, and no CORS check stands in the way, so a page on another port of the same host,
 * a sibling subdomain, or any site when the cookie is `SameSite=None`, could open a socket as the
 * visitor and read what the gateway sends (cross-site WebSocket hijacking). A handshake sent from
 * a page of another origin is therefore judged without its Cookie: anonymous. The origins
 * accepted are the handshake's own, `trustedOrigins`, and a host `allowedHosts` names on the
 * handshake's own scheme and port (Django Channels' `AllowedHostsOriginValidator`).
 */
const WARNING_INTERVAL_MS = 60_000;
const MAX_WARNED_ORIGINS = 1000;

@Injectable()
export class HandshakeRequests {
  private readonly logger = new Logger('WebSockets');
  /** The foreign origin of each handshake (`null`: this site's), judged once per connection. */
  private readonly origins = new WeakMap<IncomingMessage, string | null>();
  private prototype?: object | null;
  /** When each foreign origin was last logged. */
  private readonly warned = new Map<string, number>();

  constructor(
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    private readonly sessions: SessionHandler,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  /** The request a message or subscription of this connection is judged by, with its session (read, never written). */
  requestFrom(handshake: IncomingMessage): Request {
    const request = this.bareRequest(handshake);
    if (this.foreignOrigin(handshake, request) !== null) delete request.headers.cookie;
    this.sessions.attach(request, undefined);
    return request;
  }

  /**
   * The origin of the page of another site that opened this connection (logged the first time),
   * `null` when it is this site's, a trusted origin's, or no browser's (no `Origin`, no
   * `Sec-Fetch-Site`). `request` is one already made from the handshake.
   */
  foreignOrigin(handshake: IncomingMessage, request?: Request): string | null {
    let origin = this.origins.get(handshake);
    if (origin !== undefined) return origin;
    origin = isJsonpPolling(handshake)
      ? 'a page that loads JSONP polling with a script tag'
      : foreignPageOrigin(request ?? this.bareRequest(handshake), this.config.trustedOrigins, this.config.allowedHosts);
    this.origins.set(handshake, origin);
    if (origin !== null && this.firstWarningInAWhile(origin)) {
      this.logger.warn(
        `A WebSocket connection was opened from ${origin}, not a page of this site: it gets no session. ` +
          "If that origin's pages are the app's own, add it to the trustedOrigins option.",
      );
    }
    return origin;
  }

  /** Whether to log `origin` now: once a minute per origin at most, so a page cannot flood the log. */
  private firstWarningInAWhile(origin: string): boolean {
    const now = Date.now();
    const last = this.warned.get(origin);
    if (last !== undefined && now - last < WARNING_INTERVAL_MS) return false;
    this.warned.delete(origin);
    if (this.warned.size >= MAX_WARNED_ORIGINS) this.warned.delete(this.warned.keys().next().value!);
    this.warned.set(origin, now);
    return true;
  }

  private bareRequest(handshake: IncomingMessage): Request {
    if (this.prototype === undefined) this.prototype = requestPrototypeOf(this.adapterHost?.httpAdapter) ?? null;
    return requestFromHandshake(handshake, this.prototype ?? undefined);
  }
}

/**
 * A request of the module's own for a message over a WebSocket: the handshake's headers, nothing
 * else. Made from the app's request prototype when there is one (`requestPrototypeOf`), so its
 * scheme, host and client address follow the app's proxy setting as its HTTP requests' do.
 */
function requestFromHandshake(handshake: IncomingMessage, prototype?: object): Request {
  const own = (value: unknown): PropertyDescriptor => ({ value, writable: true, enumerable: true, configurable: true });
  const socket = handshake.socket as (IncomingMessage['socket'] & { encrypted?: boolean }) | undefined;
  // Without a socket the framework's getters have nothing to read.
  const base = socket ? prototype : undefined;
  const fields: PropertyDescriptorMap = {
    headers: own({ ...handshake.headers }),
    method: own(handshake.method),
    url: own(handshake.url),
    originalUrl: own(handshake.url),
    socket: own(socket),
    // Fastify's getters read the request they wrap.
    raw: own(handshake),
  };
  if (!base) {
    fields.ip = own(socket?.remoteAddress);
    fields.protocol = own(socket?.encrypted ? 'https' : 'http');
  }
  return Object.create(base ?? Object.prototype, fields) as Request;
}

/**
 * For an app that would rather refuse a connection opened from a page of another site than serve
 * it anonymously: a check for the WebSocket server's own handshake hook (socket.io's
 * `allowRequest`, ws's `verifyClient`), true for this site's pages, trusted origins and clients
 * that are no browser. The same judgement as the module's own, made once per handshake.
 */
export function handshakeOriginCheck(app: INestApplicationContext): (handshake: IncomingMessage) => boolean {
  const handshakes = app.get(HandshakeRequests, { strict: false });
  return (handshake) => handshakes.foreignOrigin(handshake) === null;
}

/**
 * engine.io's JSONP polling (`?j=N`): its answers are scripts any page can load with a `<script>`
 * tag and read, a request that carries the cookie and, on a plain-HTTP host, neither `Origin` nor
 * `Sec-Fetch-Site` (browsers send Fetch Metadata only to trustworthy origins), so it looks like no
 * browser's. socket.io-client has not used JSONP since version 3: such a handshake gets no session.
 */
function isJsonpPolling(handshake: IncomingMessage): boolean {
  const url = handshake.url ?? '';
  const query = url.indexOf('?');
  if (query < 0) return false;
  const params = new URLSearchParams(url.slice(query + 1));
  return params.has('j') && params.get('transport') === 'polling';
}
