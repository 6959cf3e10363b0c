import { BadRequestException, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { isAuthenticated } from '../anonymous-user.js';
import { AuthService } from '../auth.service.js';
import { BackendRegistry } from '../backends/backend.registry.js';
import { REMOTE_USER, RemoteUserBackend } from '../backends/remote-user.backend.js';
import { ImproperlyConfigured } from '../errors.js';
import { SessionHandler } from '../sessions/session-handler.js';
import { sessionOf } from '../sessions/session-of.js';

/**
 * Logs in the user a trusted proxy names in a request header (Django's `RemoteUserMiddleware`),
 * through the configured `RemoteUserBackend`, and keeps the session in step with
 * the header: a different name logs the previous remote user out first (CVE-2014-0482), and a
 * missing header logs out users who came in this way (not those who used a password).
 *
 * A middleware rather than a guard: it must run before `AccessGuard` resolves the request's user,
 * and Nest runs every middleware before any guard, whatever order modules register them in.
 *
 * The header is only as trustworthy as the proxy: it MUST remove the header from every client
 * request and set it itself, and the app must not be reachable around the proxy. Otherwise
 * anyone can log in as anyone by sending the header. Change the header by subclassing:
 * `class SsoUserMiddleware extends RemoteUserMiddleware { override header = 'x-forwarded-user'; }`.
 */
@Injectable()
export class RemoteUserMiddleware implements NestMiddleware {
  /** The request header carrying the user name (case-insensitive). */
  header = 'x-remote-user';
  /** Log out a user who logged in through a `RemoteUserBackend` when the header is missing. */
  forceLogoutIfNoHeader = true;

  constructor(
    protected readonly auth: AuthService,
    protected readonly backends: BackendRegistry,
    protected readonly sessions: SessionHandler,
  ) {}

  async use(request: Request, response: Response, next: NextFunction): Promise<void> {
    await this.ensureSession(request, response);
    const remoteUser = this.headerValue(request);
    if (remoteUser === undefined) {
      if (this.forceLogoutIfNoHeader) await this.logoutRemoteUser(request);
      return next();
    }

    const current = await this.auth.getUser(request);
    if (isAuthenticated(current)) {
      // Compared the way the session's own backend maps names.
      const backend = this.backends.get((current as any).backend)?.backend;
      const expected = backend instanceof RemoteUserBackend ? await backend.localUsername(remoteUser) : remoteUser;
      if (usernameOf(current) === expected) return next();
      // Someone else now: end the previous remote session before anything else.
      await this.logoutRemoteUser(request);
    }

    // A name the proxy vouches for is no password guess: the callback budget, not the password one
    // (every request arrives from the proxy's address).
    const user = await this.auth.authenticate(request, { [REMOTE_USER]: remoteUser }, { kind: 'callback' });
    if (user) await this.auth.login(request, user);
    next();
  }

  /** The header's value; `undefined` when absent. Sent twice, it is ambiguous and refused. */
  private headerValue(request: Request): string | undefined {
    const name = this.header.toLowerCase();
    let count = 0;
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      if (request.rawHeaders[i].toLowerCase() === name) count += 1;
    }
    if (count > 1) {
      throw new BadRequestException(`The ${name} header was sent more than once; send it once.`);
    }
    const value = request.headers[name];
    return typeof value === 'string' ? value : undefined;
  }

  /** Log the current user out, but only when they came in through a `RemoteUserBackend`. */
  private async logoutRemoteUser(request: Request): Promise<void> {
    const user = await this.auth.getUser(request);
    if (!isAuthenticated(user)) return;
    const backend = this.backends.get((user as any).backend)?.backend;
    if (backend instanceof RemoteUserBackend) await this.auth.logout(request);
  }

  /**
   * Nest mounts the auth module's session middleware first; should an app mount this one
   * earlier anyway, the session layer is attached here. Then the session is loaded (this runs
   * before any guard): an app without sessions is told to install them, a store that is away
   * answers 503.
   */
  private async ensureSession(request: Request, response: Response): Promise<void> {
    if (this.sessions.platform === 'fastify') {
      // Nest middleware on Fastify is given Node's request, not the one guards and handlers see:
      // a login here would never reach them.
      throw new ImproperlyConfigured('RemoteUserMiddleware runs on the Express adapter only; on Fastify, Nest middleware sees another request object than guards and handlers.');
    }
    this.sessions.install(request);
    await sessionOf(request);
  }
}

/**
 * For apps where the proxy sends the header only on the login page: the session, not the
 * header, keeps the user logged in, so a missing header never logs anybody out (Django's
 * `PersistentRemoteUserMiddleware`).
 */
@Injectable()
export class PersistentRemoteUserMiddleware extends RemoteUserMiddleware {
  override forceLogoutIfNoHeader = false;
}

function usernameOf(user: any): unknown {
  return typeof user.getUsername === 'function' ? user.getUsername() : user.username;
}
