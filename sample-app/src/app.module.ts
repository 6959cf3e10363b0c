import { Inject, Module, RequestMethod, type DynamicModule, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule, ModelBackend, authEntities } from 'nestjs-session-auth';
import { AccountsController } from './accounts.controller.js';
import {
  DEMO_MODE,
  DIRECTORY_IN_USE,
  IDENTITY_PROVIDER,
  IDENTITY_PROVIDER_NAME,
  type AppOptions,
  type IdentityProviderOptions,
} from './app.options.js';
import { DictionaryBackend } from './dictionary.backend.js';
import { DirectoryBackend } from './directory.backend.js';
import { DirectoryService } from './directory.service.js';
import { ErrorPageFilter } from './error-page.filter.js';
import { PagesController } from './pages.controller.js';
import { securityHeaders } from './security-headers.middleware.js';
import { SessionsController } from './sessions.controller.js';
import { OidcBackend, OidcModule } from 'nestjs-session-auth/oidc';
import { sampleLdapBackend } from './ldap/directory.js';

@Module({})
export class AppModule implements NestModule {
  static forRoot({ database, sessionSecret, demo, ldapUrl, identityProvider }: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot({ ...database, entities: authEntities, synchronize: true }),
        AuthModule.forRoot({
          // Asked in this order for every login; the first backend that returns a user wins.
          backends: [
            // 1. Users whose password hash is stored here (carol, and anyone `npm run
            //    createsuperuser` creates). Built in: unknown names take as long as wrong
            //    passwords, inactive users are refused, permissions come from the user table.
            ModelBackend,
            // The other two accept the demo's published passwords, so they are asked in the demo only.
            ...(demo
              ? [
                  // 2. The seed's dictionary of names and passwords, mapped to local users (alice, bob).
                  DictionaryBackend,
                  // 3. An external directory; local users are created and kept in sync (dana, erin):
                  //    a real OpenLDAP with LDAP_URL, else an in-memory stand-in.
                  ldapUrl ? sampleLdapBackend(ldapUrl) : DirectoryBackend,
                ]
              : []),
            // 4. An OpenID Connect provider ("Log in with …"): the password is checked there.
            ...(identityProvider ? [identityProviderBackend(identityProvider)] : []),
          ],
          session: { secret: sessionSecret },
          // Where `@LoginRequired()` sends visitors who are not logged in (with `?next=`).
          loginUrl: '/login',
        }),
        ...(identityProvider ? [OidcModule] : []),
      ],
      controllers: [PagesController, AccountsController, SessionsController],
      providers: [
        // Backends provided here are used as these instances, with this module's injections.
        DictionaryBackend,
        DirectoryBackend,
        DirectoryService,
        // The pages list the demo accounts only in the demo.
        { provide: DEMO_MODE, useValue: demo },
        // Which directory answers for dana and erin, for the home page.
        { provide: DIRECTORY_IN_USE, useValue: ldapUrl ? `the OpenLDAP server at ${ldapUrl}` : null },
        // The "Log in with …" button, when a provider is configured (in the demo).
        { provide: IDENTITY_PROVIDER, useValue: identityProvider ? { ...identityProvider, demoAccount: demo ? identityProvider.demoAccount : undefined } : null },
        { provide: APP_FILTER, useClass: ErrorPageFilter },
      ],
    };
  }

  constructor(@Inject(IDENTITY_PROVIDER) private readonly identityProvider: IdentityProviderOptions | null) {}

  configure(consumer: MiddlewareConsumer): void {
    // The login button's form is sent on to the provider, whose pages are at its issuer's origin.
    const formTargets = this.identityProvider ? [new URL(this.identityProvider.issuer).origin] : [];
    consumer.apply(securityHeaders({ formTargets })).forRoutes({ path: '*', method: RequestMethod.ALL });
  }
}

/**
 * The provider's backend: users are created at their first login there and linked by subject
 * (never to an existing account of the same name), named after their email when the provider
 * verified it. The callback is `/oidc/callback/demo-idp` on this site.
 */
function identityProviderBackend(options: IdentityProviderOptions) {
  return OidcBackend.configure({
    name: IDENTITY_PROVIDER_NAME,
    label: options.label,
    issuer: options.issuer,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    allowInsecureRequests: options.allowInsecureRequests,
  });
}
