import { Logger } from '@nestjs/common';
import { ImproperlyConfigured } from '../errors.js';
import { AccessGuard } from '../request/access.guard.js';
import { noteReply } from '../request/platform.js';
import { appGuardsRunFirst } from '../request/route-readers.js';
import { prepareRequest } from '../request/session.middleware.js';
import type { HttpPlatform } from './http-platform.js';

/** The slice of a Fastify instance the module uses. */
interface FastifyInstance {
  addHook(name: 'onRequest', hook: (request: any, reply: object, done: () => void) => void): unknown;
}

/**
 * Fastify: a request does not know its reply, and Nest middleware sees Node's request rather
 * than Fastify's, so an `onRequest` hook notes the reply (the session cookie goes out through
 * it) and gives the request its session and lazy user, before any guard.
 */
export const fastifyPlatform: HttpPlatform = {
  install(instance: FastifyInstance, { sessions, auth, moduleRef }) {
    if (!sessions.layer) {
      throw new ImproperlyConfigured(
        'AuthModule keeps the sessions itself on Fastify: session: false is for Express apps that install ' +
          'express-session. Pass session: { secret, ... } instead.',
      );
    }
    sessions.platform = 'fastify';
    const loadUser = appGuardsRunFirst(moduleRef, AccessGuard);
    const logger = new Logger('AuthModule');
    instance.addHook('onRequest', (request, reply, done) => {
      noteReply(request, reply);
      // Fastify apps may share a request prototype: this app's layer answers for this request.
      sessions.claim(request);
      prepareRequest(request, auth, loadUser, logger, done);
    });
  },
};
