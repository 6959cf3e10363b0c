import { Inject, Injectable, type OnModuleInit, type Type } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { ImproperlyConfigured } from '../errors.js';
import { backendName, type AuthBackend } from './auth-backend.interface.js';

export interface ConfiguredBackend {
  name: string;
  backend: AuthBackend;
}

/**
 * The configured backends, in order, as instances. A backend class that some module of the
 * app provides is used as that module's instance (so it can inject that module's services);
 * any other is created here with the auth module's providers and the global ones.
 */
@Injectable()
export class BackendRegistry implements OnModuleInit {
  private entries: ConfiguredBackend[] = [];
  private byName = new Map<string, ConfiguredBackend>();

  constructor(
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    private readonly moduleRef: ModuleRef,
  ) {}

  async onModuleInit(): Promise<void> {
    const entries: ConfiguredBackend[] = [];
    for (const type of this.config.backends) {
      const backend = (this.findProvided(type) ?? (await this.create(type))) as AuthBackend;
      for (const method of ['authenticate', 'getUser'] as const) {
        if (typeof backend[method] !== 'function') {
          throw new ImproperlyConfigured(`Authentication backend ${type.name} must implement ${method}().`);
        }
      }
      const name = backendName(backend);
      if (entries.some((entry) => entry.name === name)) {
        throw new ImproperlyConfigured(
          `Two authentication backends are named '${name}'. Give one a distinct readonly name property.`,
        );
      }
      entries.push({ name, backend });
    }
    this.entries = entries;
    this.byName = new Map(entries.map((entry) => [entry.name, entry]));
  }

  get all(): readonly ConfiguredBackend[] {
    return this.entries;
  }

  get(name: string): ConfiguredBackend | undefined {
    return this.byName.get(name);
  }

  private findProvided(type: Type): unknown {
    try {
      return this.moduleRef.get(type, { strict: false });
    } catch {
      return undefined;
    }
  }

  private async create(type: Type): Promise<unknown> {
    try {
      return await this.moduleRef.create(type);
    } catch (error) {
      throw new ImproperlyConfigured(
        `Cannot create authentication backend ${type.name}: ${(error as Error).message}\n` +
          `Either list ${type.name} in the providers of the module that provides its dependencies, ` +
          'or depend only on what the auth module offers (UserManager, AuthService, PasswordHasher, DataSource) and global providers.',
      );
    }
  }
}
