import type { MiddlewareConsumer } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type { AuthService } from '../auth.service.js';
import type { SessionHandler } from '../sessions/session-handler.js';

/** What an HTTP platform's start-up is given by `AuthModule.configure`. */
export interface PlatformSetup {
  consumer: MiddlewareConsumer;
  sessions: SessionHandler;
  auth: AuthService;
  moduleRef: ModuleRef;
}

/**
 * The start-up of one HTTP platform under Nest (Express, Fastify): every request gets its
 * session and lazy `request.user` before any guard, at the least cost the platform allows.
 */
export interface HttpPlatform {
  /** `instance`: the framework's app (`adapter.getInstance()`), `undefined` without an HTTP adapter. */
  install(instance: any, setup: PlatformSetup): void;
}
