/**
 * `nestjs-session-auth/websockets`: for gateways (`@nestjs/websockets`, which this subpath needs).
 * Nothing here is needed for the access rules and `@CurrentUser()` to work on gateway handlers.
 */
export { DisconnectRefusedSockets } from '../request/disconnect-refused-sockets.filter.js';
export { handshakeOriginCheck } from '../request/handshake-requests.js';
