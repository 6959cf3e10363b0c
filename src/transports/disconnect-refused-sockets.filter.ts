import { Catch, type ArgumentsHost } from '@nestjs/common';
import { BaseWsExceptionFilter, WsException } from '@nestjs/websockets';
import { REFUSAL_CODES } from './transport.js';

/** The codes of the module's refusals of a WebSocket message (see `websocketTransport`). */
const REFUSALS = new Set(Object.values(REFUSAL_CODES));

/**
 * A gateway filter that sends a refused message its `exception` event, as Nest does, and then
 * closes the connection when nobody is logged in on it any more (`UNAUTHENTICATED`: the session
 * was logged out elsewhere, expired, or the password changed) — or on any refusal with
 * `{ on: 'any-refusal' }`. Other errors are handled as Nest's own filter handles them.
 *
 *   @UseFilters(new DisconnectRefusedSockets())
 *   @WebSocketGateway()
 *   class ChatGateway { … }
 */
@Catch()
export class DisconnectRefusedSockets extends BaseWsExceptionFilter {
  constructor(private readonly settings: { on?: 'unauthenticated' | 'any-refusal' } = {}) {
    super();
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    super.catch(exception, host);
    const code = exception instanceof WsException ? (exception.getError() as { code?: unknown } | string) : undefined;
    const refusal = typeof code === 'object' && code !== null && typeof code.code === 'string' ? code.code : undefined;
    if (!refusal || !REFUSALS.has(refusal)) return;
    if (refusal !== 'UNAUTHENTICATED' && this.settings.on !== 'any-refusal') return;
    const client = host.switchToWs().getClient<{ disconnect?: (close?: boolean) => void; close?: (code?: number, reason?: string) => void }>();
    // socket.io after the exception event has gone out; ws with 4401/4403, like HTTP's status.
    if (typeof client.disconnect === 'function') setImmediate(() => client.disconnect!(true));
    else client.close?.(refusal === 'UNAUTHENTICATED' ? 4401 : 4403, refusal);
  }
}
