import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { Request } from 'express';
import type { Store } from 'express-session';
import { DataSource } from 'typeorm';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { DEFAULT_SESSION_AGE_MS } from '../auth.constants.js';
import { ImproperlyConfigured } from '../errors.js';
import { TypeOrmSessionStore } from '../storage/typeorm-session.store.js';
import { SessionLayer } from './session-layer.js';
import { attachSession, claimRequest, installSessions } from './session-tracker.js';

/**
 * The module's session layer (`SessionLayer`), configured once with safe defaults: nothing
 * stored and no cookie for a visitor who stored nothing, no write for a request that changed
 * nothing, HttpOnly + SameSite=Lax cookies, Secure in production. The session is loaded on first
 * use; a store that fails to load it answers 503, never a half-loaded session.
 */
@Injectable()
export class SessionHandler implements OnApplicationShutdown {
  /** The store sessions live in; `undefined` with `session: false`. */
  readonly store?: Store;
  readonly cookieName?: string;
  readonly secrets: string[] = [];
  readonly layer?: SessionLayer;
  /** The HTTP platform the app runs on, as the module found it at start-up. */
  platform: 'express' | 'fastify' = 'express';

  constructor(
    @Inject(AUTH_CONFIG) config: AuthConfig,
    @Optional() dataSource?: DataSource,
  ) {
    if (config.session === false) return;
    const options = config.session;
    if (!options.store && !dataSource) {
      throw new ImproperlyConfigured(
        'AuthModule stores sessions in TypeORM by default, but no DataSource is registered: import ' +
          'TypeOrmModule.forRoot({ ..., entities: [...authEntities] }) or pass session.store.',
      );
    }
    this.store = options.store ?? new TypeOrmSessionStore(dataSource!, options.storeOptions);
    if ((this.store as { revokeAware?: unknown }).revokeAware !== true) {
      new Logger('Sessions').warn(
        `The session store ${this.store.constructor.name} does not keep logouts: a request still running when a user ` +
          'logs out can save the session back to life. Use TypeOrmSessionStore on PostgreSQL, SQLite, MySQL or MariaDB, or RedisSessionStore.',
      );
    }
    this.cookieName = options.name;
    this.secrets = [options.secret].flat();
    this.layer = new SessionLayer({
      store: this.store,
      name: options.name,
      secrets: this.secrets,
      rolling: options.rolling ?? false,
      proxy: options.proxy,
      cookie: options.cookie,
      expireAtBrowserClose: options.expireAtBrowserClose,
    });
  }

  /** The store the request's sessions live in: the module's, or with `session: false` the app's express-session's. */
  storeOf(request: Request | undefined): Store | undefined {
    return this.store ?? request?.sessionStore;
  }

  /** How long a session lives without `setExpiry`, in milliseconds. */
  get sessionAge(): number {
    return this.layer?.sessionAge ?? DEFAULT_SESSION_AGE_MS;
  }

  /**
   * Make sure the request's app gives its requests sessions (once per app; nothing per request).
   * A request whose prototype is no app's (one made up in code) gets them itself.
   */
  install(request: Request): void {
    const prototype = Object.getPrototypeOf(request);
    this.installOn(prototype && prototype !== Object.prototype ? prototype : request);
  }

  /** Make this app's layer answer for one request (Fastify: apps may share a request prototype). */
  claim(request: object): void {
    if (this.layer) claimRequest(this.layer, request);
  }

  /** Give every request made from `prototype` (an Express app's `request`) its session. */
  installOn(prototype: object): void {
    if (this.layer) installSessions(this.layer, prototype);
  }

  /** Give this one request its (not yet loaded) session, whatever its prototype (a request made up in code). */
  attach(request: Request, response: unknown): void {
    if (this.layer) attachSession(this.layer, request, response);
  }

  /**
   * Have the store read the session's user in the same statement as the session, from `entity`'s
   * table in `dataSource` (the module's `TypeOrmSessionStore`, when both share a database).
   * Whether it will.
   */
  readUsersAlong(dataSource: DataSource, entity: Function): boolean {
    return this.store instanceof TypeOrmSessionStore && this.store.readUsersAlong(dataSource, entity);
  }

  onApplicationShutdown(): void {
    if (this.store instanceof TypeOrmSessionStore) this.store.close();
  }
}
