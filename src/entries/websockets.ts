/**
 * `nestjs-session-auth/websockets`: for gateways (`@nestjs/websockets`, which this subpath needs).
 * Nothing here is needed for the access rules and `@CurrentUser()` to work on gateway handlers.
 */
export { DisconnectRefusedSockets } from '../transports/disconnect-refused-sockets.filter.js';
export { handshakeOriginCheck } from '../transports/handshake-requests.js';
