import { refuseWithoutRequest, rethrow, withRefusalCode, type Transport } from './transport.js';

/**
 * A microservice's message (RPC), and any transport the module does not know: no request, no
 * session, so a handler with rules fails closed (see `refuseWithoutRequest`); an open one runs.
 */
export const rpcTransport: Transport = {
  loadsUserOnBlindRoutes: false,
  answersOverHttp: false,
  requestOf: () => undefined,
  screen: () => undefined,
  refuseUnjudged: refuseWithoutRequest,
  refusal: withRefusalCode,
  raise: rethrow,
  responseOf: () => undefined,
};
