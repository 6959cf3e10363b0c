import { Inject, Injectable, Logger, Optional, type INestApplicationContext } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { foreignPageOrigin } from './origins.js';
import { requestPrototypeOf } from './platform.js';
import { SessionHandler } from './session-handler.js';
import { requestFromHandshake } from './socket-request.js';

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
@Injectable()
export class HandshakeRequests {
  private readonly logger = new Logger('WebSockets');
  /** The foreign origin of each handshake (`null`: this site's), judged once per connection. */
  private readonly origins = new WeakMap<IncomingMessage, string | null>();
  private prototype?: object | null;

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
    origin = foreignPageOrigin(request ?? this.bareRequest(handshake), this.config.trustedOrigins, this.config.allowedHosts);
    this.origins.set(handshake, origin);
    if (origin !== null) {
      this.logger.warn(
        `A WebSocket connection was opened from ${origin}, not a page of this site: it gets no session. ` +
          "If that origin's pages are the app's own, add it to the trustedOrigins option.",
      );
    }
    return origin;
  }

  private bareRequest(handshake: IncomingMessage): Request {
    if (this.prototype === undefined) this.prototype = requestPrototypeOf(this.adapterHost?.httpAdapter) ?? null;
    return requestFromHandshake(handshake, this.prototype ?? undefined);
  }
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
