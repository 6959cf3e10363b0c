import { ForbiddenException, type ArgumentsHost, type HttpException, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import type { HttpResponse } from '../request/platform.js';

/** Makes the request a socket's message or subscription is judged by, from its connection's handshake. */
export type RequestFromHandshake = (handshake: IncomingMessage) => Request;

/**
 * What the access guard asks of the transport a handler is reached by (HTTP on Express or
 * Fastify, GraphQL, a WebSocket gateway, RPC): which request to judge, and how a refusal reaches
 * the client. The guard itself knows no transport; one adapter per transport answers.
 */
export interface Transport {
  /** Whether the user is loaded even where no code of the route reads it (a GraphQL resolver's fields are its own business). */
  readonly loadsUserOnBlindRoutes: boolean;
  /**
   * Whether the handler answers on an HTTP response of its own that the module may write: a
   * redirect to log in, a refusal with its headers. Elsewhere a refusal goes back to the
   * transport, which reports it its own way (a GraphQL error, a WebSocket `exception` event).
   */
  readonly answersOverHttp: boolean;
  /**
   * The request `context` is judged by; `undefined` when there is none (RPC). Given `make` (the
   * guard), a socket's is made from its handshake; without it (decorators, after the guard), the
   * one the guard made is found.
   */
  requestOf(context: ExecutionContext, make?: RequestFromHandshake): Request | undefined;
  /** Throws for a request that must be refused before anybody is asked who it is (GraphQL's CSRF check). */
  screen(request: Request): void;
  /** Refuses a handler with rules that was reached without a request to judge them by. */
  refuseUnjudged(context: ExecutionContext): never | Promise<never>;
  /** A rule's 401 or 403 as this transport's clients read it (a GraphQL error's `extensions.code`). */
  refusal(error: HttpException): HttpException;
  /** Throws an error met while judging in the form this transport's clients get (a WebSocket's `WsException`). */
  raise(error: unknown, context: ExecutionContext): never | Promise<never>;
  /** The HTTP response the handler's answer goes out in, if any, for its headers. */
  responseOf(host: ArgumentsHost): HttpResponse | undefined;
}

/** The codes a refusal carries outside HTTP (GraphQL's `extensions.code`, a WebSocket `exception` event's `code`). */
export const REFUSAL_CODES: Record<number, string | undefined> = { 401: 'UNAUTHENTICATED', 403: 'FORBIDDEN' };

/** A 401 or 403 with its code, which the client reads where no HTTP status reaches it. */
export function withRefusalCode(error: HttpException): HttpException {
  return Object.assign(error, { extensions: { code: REFUSAL_CODES[error.getStatus()] } });
}

/**
 * Sessions come with HTTP requests and WebSocket handshakes: a rule on a handler reached without
 * either (RPC) cannot be checked, so it fails closed instead of being silently ignored.
 */
export function refuseWithoutRequest(context: ExecutionContext): never {
  throw new ForbiddenException(
    `Login and permission rules of nestjs-session-auth apply to HTTP requests, GraphQL operations and WebSocket messages; this ${context.getType<string>()} handler has none of them. Mark it @LoginNotRequired() and check access another way.`,
  );
}

/** Throws `error` as it is: the transport reports it unchanged. */
export function rethrow(error: unknown): never {
  throw error;
}
