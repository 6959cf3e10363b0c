import type { INestApplicationContext } from '@nestjs/common';
import signature from 'cookie-signature';
import { AuthService } from '../auth.service.js';
import { SessionHandler } from '../request/session.middleware.js';

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
  const store = sessions.store as any;
  if (typeof store.generate !== 'function') {
    throw new Error('The session store is not set up yet: call forceLogin() after app.init().');
  }
  const request: any = { headers: {}, sessionStore: store };
  store.generate(request);
  const backend = backendName ?? (auth as any).backends.all[0].name;
  await auth.login(request, user, backend);
  const value = 's:' + signature.sign(request.sessionID, sessions.secrets[0]);
  return `${sessions.cookieName}=${encodeURIComponent(value)}`;
}
