import type { ArgumentsHost, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { graphqlTransport } from './graphql.transport.js';
import { httpTransport } from './http.transport.js';
import { rpcTransport } from './rpc.transport.js';
import type { Transport } from './transport.js';
import { websocketTransport } from './websocket.transport.js';

/** The adapter of each of Nest's execution context types; any other fails closed as RPC does. */
const TRANSPORTS = new Map<string, Transport>([
  ['http', httpTransport],
  ['graphql', graphqlTransport],
  ['ws', websocketTransport],
  ['rpc', rpcTransport],
]);

/** The transport a handler (or the error a filter catches) was reached by. */
export function transportOf(host: ArgumentsHost): Transport {
  return TRANSPORTS.get(host.getType<string>()) ?? rpcTransport;
}

/**
 * The request behind a handler's execution context: an HTTP route's own, the one that carried a
 * GraphQL operation, or, for a WebSocket message or a GraphQL subscription, the request the
 * module's guard made from the connection's handshake. `undefined` where there is none (RPC), or
 * where the guard has not made one yet.
 */
export function requestOf(context: ExecutionContext): Request | undefined {
  return transportOf(context).requestOf(context);
}
