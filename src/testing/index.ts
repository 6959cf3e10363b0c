import type { INestApplicationContext } from '@nestjs/common';
import signature from 'cookie-signature';
import { AuthService } from '../auth.service.js';
import { SessionHandler } from '../sessions/session-handler.js';

/**
 * Log `user` in without a password and resolve the `Cookie` header value for that session
 * (Django's `Client.force_login`). Without a backend name the first configured backend is
 * recorded. The session goes through the same `login()` as a real one, store and events included.
 */
export async function forceLogin(app: INestApplicationContext, user: any, backendName?: string): Promise<string> {
  const sessions = app.get(SessionHandler, { strict: false });
  const auth = app.get(AuthService, { strict: false });
  if (!sessions.store || !sessions.cookieName) {
    throw new Error('forceLogin() needs the session the auth module installs; it cannot sign cookies with session: false.');
  }
  if (!sessions.layer) {
    throw new Error('The session layer is not set up yet: call forceLogin() after app.init().');
  }
  // A request of its own, with no cookie: login() starts a session for it and stores it.
  const request: any = { headers: {} };
  sessions.attach(request, {});
  const backend = backendName ?? (auth as any).backends.all[0].name;
  await auth.login(request, user, backend);
  const value = 's:' + signature.sign(request.session.id, sessions.secrets[0]);
  return `${sessions.cookieName}=${encodeURIComponent(value)}`;
}
