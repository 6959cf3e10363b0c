import type { ServerResponse } from 'node:http';
import { serialize, type SerializeOptions } from 'cookie';
import vary from 'vary';
import { existingStateOf, stateOf } from './request-state.js';

/**
 * What the module reads of a request and writes to its response, on Nest's Express adapter and
 * on its Fastify adapter. Express's request and response are Node's own objects with methods
 * added; Fastify wraps them (`request.raw`, `reply.raw`) and its request does not know its
 * reply, so the module notes the reply on the request as it arrives (`noteReply`).
 */

/** An Express response or a Fastify reply: what a Nest handler or filter is given. */
export type HttpResponse = ServerResponse & Record<string, any>;

/** The slice of a Fastify reply the module uses. */
interface FastifyReply {
  raw: ServerResponse;
  sent: boolean;
  statusCode: number;
  header(name: string, value: unknown): FastifyReply;
  getHeader(name: string): unknown;
  code(status: number): FastifyReply;
  type(contentType: string): FastifyReply;
  send(body?: unknown): FastifyReply;
  redirect(url: string, code?: number): FastifyReply;
}

/** Remember a Fastify request's reply (at `onRequest`), so the module can answer through it. */
export function noteReply(request: object, reply: object): void {
  stateOf(request).reply = reply;
}

/** The response of a request: Express's `request.res`, or the Fastify reply noted for it. */
export function responseOf(request: unknown): HttpResponse | undefined {
  const express = (request as { res?: HttpResponse } | undefined)?.res;
  if (express || !request) return express;
  return existingStateOf(request as object)?.reply as HttpResponse | undefined;
}

function isFastifyReply(response: unknown): response is FastifyReply {
  const reply = response as Partial<FastifyReply> | undefined;
  return typeof reply?.code === 'function' && typeof reply.header === 'function' && typeof reply.raw === 'object';
}

/** Node's response under either framework's. */
export function rawResponse(response: unknown): ServerResponse | undefined {
  if (!response) return undefined;
  return isFastifyReply(response) ? response.raw : (response as ServerResponse);
}

/** Whether headers can no longer be set (sent, or the reply already answered). */
export function headersSent(response: unknown): boolean {
  if (isFastifyReply(response)) return response.sent || response.raw.headersSent;
  return (response as ServerResponse).headersSent;
}

export function setHeader(response: unknown, name: string, value: string | number | string[]): void {
  if (isFastifyReply(response)) response.header(name, value);
  else (response as ServerResponse).setHeader(name, value);
}

export function getHeader(response: unknown, name: string): unknown {
  return (response as { getHeader(name: string): unknown }).getHeader(name);
}

/** Add `field` to the response's `Vary` header (once). */
export function varyOn(response: unknown, field: string): void {
  const current = getHeader(response, 'Vary');
  if (current === undefined) return setHeader(response, 'Vary', field);
  if (current === field) return;
  const merged = vary.append(String(current), field);
  if (merged !== current) setHeader(response, 'Vary', merged);
}

/** Add `Vary: Cookie` to the request's response: the answer depends on who is asking. */
export function varyOnCookie(request: unknown): void {
  const response = responseOf(request);
  if (response && !headersSent(response)) varyOn(response, 'Cookie');
}

/** Options of a cookie set by the module; `maxAge` in milliseconds, as Express takes it. */
export interface CookieAttributes {
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: 'lax' | 'strict' | 'none' | boolean;
  path?: string;
  domain?: string;
  maxAge?: number;
}

/** Add a Set-Cookie line to the response, next to the ones already there. */
export function appendSetCookie(response: unknown, line: string): void {
  // A Fastify reply keeps its Set-Cookie lines apart and adds each one given.
  if (isFastifyReply(response)) return void response.header('set-cookie', line);
  const raw = response as ServerResponse;
  const current = raw.getHeader('Set-Cookie');
  raw.setHeader('Set-Cookie', current === undefined ? [line] : [current].flat().map(String).concat(line));
}

/** Set a cookie (as Express's `res.cookie`: `Expires` and `Max-Age` from `maxAge`, path `/`). */
export function setCookie(response: unknown, name: string, value: string, attributes: CookieAttributes): void {
  const { maxAge, ...rest } = attributes;
  const options: SerializeOptions = { path: '/', ...rest };
  if (maxAge !== undefined) {
    options.expires = new Date(Date.now() + maxAge);
    options.maxAge = Math.floor(maxAge / 1000);
  }
  appendSetCookie(response, serialize(name, value, options));
}

/** Clear a cookie: an empty value that expired long ago, with the attributes it was set with. */
export function clearCookie(response: unknown, name: string, attributes: Omit<CookieAttributes, 'maxAge'>): void {
  appendSetCookie(response, serialize(name, '', { path: '/', ...attributes, expires: new Date(1) }));
}

/** Answer with a status and a JSON body. */
export function sendJson(response: unknown, status: number, body: unknown): void {
  if (isFastifyReply(response)) return void response.code(status).send(body);
  (response as any).status(status).json(body);
}

/** Answer with a status and an HTML page. */
export function sendHtml(response: unknown, status: number, body: string): void {
  if (isFastifyReply(response)) return void response.code(status).type('text/html; charset=utf-8').send(body);
  (response as any).status(status).type('html').send(body);
}

/** Redirect to `location`. */
export function sendRedirect(response: unknown, status: number, location: string): void {
  if (isFastifyReply(response)) return void response.redirect(location, status);
  (response as any).redirect(status, location);
}

/** The path and query the request was sent to, before any rewriting. */
export function requestUrl(request: unknown): string {
  const anyRequest = request as { originalUrl?: string; url?: string };
  return anyRequest.originalUrl ?? anyRequest.url ?? '/';
}

/**
 * Whether the request came over HTTPS, as the framework judges it: Express's `request.secure`
 * (its `trust proxy` setting decides about `X-Forwarded-Proto`), Fastify's `request.protocol`
 * (its `trustProxy` option decides).
 */
export function isSecureRequest(request: unknown): boolean {
  const anyRequest = request as { secure?: boolean; protocol?: string; raw?: unknown; socket?: { encrypted?: boolean } };
  if (typeof anyRequest?.secure === 'boolean') return anyRequest.secure;
  if (anyRequest?.raw && typeof anyRequest.protocol === 'string') return anyRequest.protocol === 'https';
  return anyRequest?.socket?.encrypted === true;
}

/**
 * The prototype the app's requests are made from, with the framework's getters for `protocol`,
 * `host` and `ip` built for its proxy setting: Express's `app.request` (`trust proxy`), Fastify's
 * request class (`trustProxy`, which Fastify leaves out of `initialConfig`; the class is kept
 * under Fastify's own `fastify.Request` symbol). A request the module makes from a WebSocket
 * handshake is made from it, so it judges where it came from as the app's HTTP requests do.
 */
export function requestPrototypeOf(adapter: { getType?(): string; getInstance?(): any } | undefined): object | undefined {
  const instance = adapter?.getInstance?.();
  if (!instance) return undefined;
  if (adapter!.getType?.() === 'fastify') {
    const symbol = Object.getOwnPropertySymbols(instance).find((key) => key.description === 'fastify.Request');
    const prototype = symbol ? instance[symbol]?.prototype : undefined;
    return typeof prototype === 'object' && prototype !== null ? prototype : undefined;
  }
  return typeof instance.request === 'object' && instance.request !== null ? instance.request : undefined;
}
