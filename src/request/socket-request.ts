import type { ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';

/**
 * WebSocket messages (`@nestjs/websockets`, socket.io or ws) are judged by the session of the
 * connection's handshake: its Cookie header, if a page of this site opened the connection (see
 * `HandshakeRequests`). Each message gets a request of its own, built from that handshake, so the
 * session (and the user's password hash) is read from the store again for every message a rule
 * applies to: a socket whose session was logged out elsewhere, or whose user changed their
 * password, is refused on its next message. Sessions are read, never written, here.
 */

/** The handshake request of a `ws` socket, noted as the HTTP server upgrades the connection. */
const UPGRADE_REQUEST = Symbol('nestjs-session-auth:upgrade-request');

/**
 * Requests built for messages, by client and then by the message's payload (the same value for
 * the guard and the parameter decorators of one message; Nest gives them different argument
 * lists). The newest few per client are kept.
 */
const messageRequests = new WeakMap<object, Map<unknown, Request>>();
const KEPT_PER_CLIENT = 32;

/** Note every upgrade's request on its socket, so a `ws` client's handshake can be found later. */
export function noteUpgradeRequests(server: { on(event: 'upgrade', listener: (request: IncomingMessage) => void): unknown }): void {
  server.on('upgrade', (request: IncomingMessage) => {
    if (request.socket) (request.socket as unknown as Record<symbol, unknown>)[UPGRADE_REQUEST] = request;
  });
}

/** The handshake request of a gateway client: socket.io keeps it as `client.request`; ws's is noted at the upgrade. */
export function handshakeOf(client: unknown): IncomingMessage | undefined {
  const socketIo = (client as { request?: IncomingMessage } | null)?.request;
  if (socketIo && typeof socketIo.headers === 'object') return socketIo;
  const raw = (client as { _socket?: Record<symbol, unknown> } | null)?._socket;
  const upgrade = raw?.[UPGRADE_REQUEST] as IncomingMessage | undefined;
  return upgrade && typeof upgrade.headers === 'object' ? upgrade : undefined;
}

/**
 * The request this message is judged by, made on first use (by the guard, with `make`, which
 * gives it its session) and the same for every guard and parameter decorator of the message.
 */
export function messageRequestOf(context: ExecutionContext, make?: (handshake: IncomingMessage) => Request): Request | undefined {
  const client = context.switchToWs().getClient<object>();
  const data = context.switchToWs().getData<unknown>();
  if (typeof client !== 'object' || client === null) return undefined;
  let byData = messageRequests.get(client);
  if (!make) return byData?.get(data);
  const handshake = handshakeOf(client);
  if (!handshake) return undefined;
  const request = make(handshake);
  if (!byData) messageRequests.set(client, (byData = new Map()));
  byData.delete(data);
  if (byData.size >= KEPT_PER_CLIENT) byData.delete(byData.keys().next().value);
  byData.set(data, request);
  return request;
}

/**
 * A request of the module's own for a message over a WebSocket: the handshake's headers, nothing
 * else. Made from the app's request prototype when there is one (`requestPrototypeOf`), so its
 * scheme, host and client address follow the app's proxy setting as its HTTP requests' do.
 */
export function requestFromHandshake(handshake: IncomingMessage, prototype?: object): Request {
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
