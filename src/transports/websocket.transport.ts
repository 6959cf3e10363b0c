import { HttpException, Logger, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import { REFUSAL_CODES, withRefusalCode, type RequestFromHandshake, type Transport } from './transport.js';

/**
 * A WebSocket gateway's message (`@nestjs/websockets`, socket.io or ws), judged by the session of
 * its connection's handshake: its Cookie header, if a page of this site opened the connection
 * (see `HandshakeRequests`). Each message gets a request of its own, built from that handshake, so
 * the session (and the user's password hash) is read from the store again for every message a
 * rule applies to: a socket whose session was logged out elsewhere, or whose user changed their
 * password, is refused on its next message. Sessions are read, never written, here. A refusal
 * is a `WsException` with a code, which the client gets as an `exception` event.
 */
export const websocketTransport: Transport = {
  loadsUserOnBlindRoutes: false,
  answersOverHttp: false,
  requestOf: messageRequestOf,
  screen: () => undefined,
  refuseUnjudged(context) {
    // A `ws` gateway on a server of its own: its handshakes are not seen, so nobody is logged in.
    const missing = new UnauthorizedException(
      "This connection's handshake was not seen, so it has no session: run the gateway on the app's own HTTP server.",
    );
    return refuseMessage(missing, context);
  },
  refusal: withRefusalCode,
  raise: refuseMessage,
  responseOf: () => undefined,
};

const logger = new Logger('AccessGuard');

/** `@nestjs/websockets`, loaded at the first refusal: an app without gateways need not install it. */
let websockets: Promise<typeof import('@nestjs/websockets')> | undefined;

/**
 * A refused message: the client gets an `exception` event with a code (`UNAUTHENTICATED`,
 * `FORBIDDEN`), as Nest's gateways send `WsException`s, and it is logged. Other errors go on as they are.
 */
async function refuseMessage(error: unknown, context: ExecutionContext): Promise<never> {
  const code = error instanceof HttpException ? REFUSAL_CODES[error.getStatus()] : undefined;
  if (!code) throw error;
  const message = (error as Error).message;
  logger.warn(`Refused a WebSocket message (${String(context.switchToWs().getPattern?.() ?? 'unknown')}): ${code}`);
  const { WsException } = await (websockets ??= import('@nestjs/websockets'));
  throw new WsException({ status: 'error', code, message });
}

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
function handshakeOf(client: unknown): IncomingMessage | undefined {
  const socketIo = (client as { request?: IncomingMessage } | null)?.request;
  if (socketIo && typeof socketIo.headers === 'object') return socketIo;
  const raw = (client as { _socket?: Record<symbol, unknown> } | null)?._socket;
  const upgrade = raw?.[UPGRADE_REQUEST] as IncomingMessage | undefined;
  return upgrade && typeof upgrade.headers === 'object' ? upgrade : undefined;
}

/**
 * The request this message is judged by, made by the guard with `make` (which gives it its
 * session) and the same for every guard and parameter decorator of the message after it.
 */
function messageRequestOf(context: ExecutionContext, make?: RequestFromHandshake): Request | undefined {
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
