import type { Request } from 'express';
import type { HttpResponse } from '../request/platform.js';
import { refuseWithoutRequest, rethrow, type Transport } from './transport.js';

/**
 * An HTTP route, on Express or Fastify alike: its own request, judged as it is; its response
 * is the module's to write (a redirect to log in, `Retry-After`), and a refusal keeps its status.
 */
export const httpTransport: Transport = {
  loadsUserOnBlindRoutes: false,
  answersOverHttp: true,
  requestOf: (context) => context.switchToHttp().getRequest<Request>(),
  screen: () => undefined,
  // Never reached: an HTTP route always has its request.
  refuseUnjudged: refuseWithoutRequest,
  refusal: (error) => error,
  raise: rethrow,
  responseOf: (host) => host.switchToHttp().getResponse<HttpResponse>(),
};
