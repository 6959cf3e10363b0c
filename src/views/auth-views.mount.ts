import type { DynamicModule } from '@nestjs/common';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { DEFAULT_LOGIN_URL } from '../auth.constants.js';
import { ImproperlyConfigured } from '../errors.js';
import { authViewsController } from './auth-views.controller.js';
import { PasswordResetMail } from './password-reset-mail.js';
import { AUTH_VIEW_OPTIONS, resolveViewOptions, type AuthViewsOptions } from './view-options.js';
import { loginPath } from './view-paths.js';

/** What decides, when the module is defined, whether and where the built-in views are mounted. */
export interface AuthViewsMount {
  /** Mount the built-in views (`true`, or their options). */
  views?: boolean | AuthViewsOptions;
  /** Path of the login view; `/accounts/login` by default. */
  loginUrl?: string;
}

const AUTH_VIEWS_MOUNT_CHECK = Symbol('AUTH_VIEWS_MOUNT_CHECK');

/**
 * Add the views' controller to the module definition when `views` is true. Nest fixes a
 * module's controllers and their paths before any factory runs, so `forRootAsync` takes
 * `views` (and a non-default `loginUrl`) next to `useFactory`; a start-up check refuses a
 * factory whose options disagree, rather than serving the wrong routes.
 */
export function mountAuthViews(definition: DynamicModule, mount: AuthViewsMount): DynamicModule {
  const mounted = isMounted(mount.views);
  return {
    ...definition,
    controllers: [...(definition.controllers ?? []), ...(mounted ? [authViewsController(mount.loginUrl ?? DEFAULT_LOGIN_URL)] : [])],
    providers: [
      ...(definition.providers ?? []),
      { provide: AUTH_VIEWS_MOUNT_CHECK, inject: [AUTH_CONFIG], useFactory: (config: AuthConfig) => checkMount(config, mount) },
      ...(mounted
        ? [
            {
              provide: AUTH_VIEW_OPTIONS,
              inject: [AUTH_CONFIG],
              // Options given next to useFactory win over the factory's own.
              useFactory: (config: AuthConfig) => resolveViewOptions(typeof mount.views === 'object' ? mount.views : config.viewOptions),
            },
            PasswordResetMail,
          ]
        : []),
    ],
  };
}

function isMounted(views: AuthViewsMount['views']): boolean {
  return views === true || (typeof views === 'object' && views !== null);
}

function checkMount(config: AuthConfig, mount: AuthViewsMount): true {
  const mounted = isMounted(mount.views);
  const wanted = config.views;
  if (wanted !== undefined && wanted !== mounted) {
    throw new ImproperlyConfigured(
      `AuthModule options say views: ${String(wanted)}, but the built-in views were ${mounted ? '' : 'not '}mounted. ` +
        'With forRootAsync, pass views (and loginUrl, if not the default) next to useFactory: ' +
        'AuthModule.forRootAsync({ views: true, useFactory: ... }).',
    );
  }
  if (mounted && config.production && !config.siteUrl) {
    throw new ImproperlyConfigured(
      'The built-in views send password reset links, which must point at your site: set the siteUrl option ' +
        "(e.g. siteUrl: 'https://example.com') when NODE_ENV=production. Without it a link could only come from " +
        'the Host header of the request, which an attacker chooses.',
    );
  }
  if (mounted) {
    const mountedPath = loginPath(mount.loginUrl ?? DEFAULT_LOGIN_URL);
    if (loginPath(config.loginUrl) !== mountedPath) {
      throw new ImproperlyConfigured(
        `The built-in login view is mounted at ${mountedPath}, but loginUrl is ${config.loginUrl}. ` +
          'With forRootAsync, pass loginUrl next to useFactory as well: AuthModule.forRootAsync({ views: true, loginUrl, useFactory: ... }).',
      );
    }
  }
  return true;
}
