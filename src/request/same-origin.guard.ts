import { ForbiddenException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { AUTH_CONFIG, type AuthConfig } from '../auth.config.js';
import { foreignPageOrigin } from './origins.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** A state-changing request that a page of another site made the browser send. */
export class CrossOriginRequest extends ForbiddenException {
  constructor(origin: string) {
    super(
      `Origin checking failed: ${origin} does not match any trusted origins. ` +
        'Post from a page of this site, or add that origin to the trustedOrigins option.',
    );
    this.name = 'CrossOriginRequest';
  }
}

/**
 * The page of another site that made the browser send this state-changing request (see
 * `foreignPageOrigin`), `null` for a safe method or a page of this site or a trusted origin.
 */
export function foreignOrigin(request: Request, trustedOrigins: readonly string[]): string | null {
  return SAFE_METHODS.has(request.method) ? null : foreignPageOrigin(request, trustedOrigins);
}

/**
 * Refuses (403) a POST, PUT, PATCH or DELETE sent by a page of another site, before the handler
 * runs. Put it on a login route that takes JSON or form posts without a CSRF token: without it,
 * a page elsewhere can post the attacker's credentials and log the visitor's browser into the
 * attacker's account (login CSRF). `CsrfGuard` runs the same check before its token check.
 */
@Injectable()
export class SameOriginGuard implements CanActivate {
  constructor(@Inject(AUTH_CONFIG) private readonly config: AuthConfig) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<Request>();
    const origin = foreignOrigin(request, this.config.trustedOrigins);
    if (origin !== null) throw new CrossOriginRequest(origin);
    return true;
  }
}
