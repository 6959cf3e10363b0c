import type { HttpAdapterHost } from '@nestjs/core';
import { ImproperlyConfigured } from '../errors.js';
import { expressPlatform } from './express.platform.js';
import { fastifyPlatform } from './fastify.platform.js';
import type { HttpPlatform } from './http-platform.js';

const PLATFORMS = new Map<string, HttpPlatform>([
  ['express', expressPlatform],
  ['fastify', fastifyPlatform],
]);

/**
 * The platform of Nest's HTTP adapter (Express's path without one). Sessions, cookies and the
 * per-request user are built on Express's and Fastify's request and response: on another adapter
 * every login would fail later, and misleadingly, so start-up stops here.
 */
export function httpPlatformOf(adapter: HttpAdapterHost['httpAdapter'] | undefined): HttpPlatform {
  const type = adapter?.getType?.() || 'express';
  const platform = PLATFORMS.get(type);
  if (platform) return platform;
  throw new ImproperlyConfigured(
    `AuthModule runs on Nest's Express and Fastify adapters (@nestjs/platform-express, @nestjs/platform-fastify); ` +
      `this app uses the '${type}' adapter (${adapter!.constructor.name}), which it does not support.`,
  );
}
