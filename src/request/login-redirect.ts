import { Catch, HttpException, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request } from 'express';
import { requestHost } from './hosts.js';
import { sendRedirect, setHeader } from './platform.js';

/** Thrown by the access guard to send an anonymous browser to the login page. */
export class LoginRedirect extends HttpException {
  constructor(readonly location: string) {
    super({ statusCode: HttpStatus.FOUND, message: 'Login required.', location }, HttpStatus.FOUND);
  }
}

/** Turns `LoginRedirect` into a 302 with `Location` (Nest's default filter cannot set headers). */
@Catch(LoginRedirect)
export class LoginRedirectFilter implements ExceptionFilter {
  catch(exception: LoginRedirect, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse();
    setHeader(response, 'Cache-Control', 'no-store');
    sendRedirect(response, HttpStatus.FOUND, exception.location);
  }
}

/**
 * `loginUrl` with `field=next` in its query (Django's `redirect_to_login`): a `field` it already
 * had is replaced, its other parameters and fragment are kept; no `field` (`''`): the bare login URL.
 */
export function withReturnUrl(loginUrl: string, field: string, next: string): string {
  if (!field) return loginUrl;
  const hashAt = loginUrl.indexOf('#');
  const fragment = hashAt === -1 ? '' : loginUrl.slice(hashAt);
  const base = hashAt === -1 ? loginUrl : loginUrl.slice(0, hashAt);
  const queryAt = base.indexOf('?');
  const path = queryAt === -1 ? base : base.slice(0, queryAt);
  const kept = queryAt === -1 ? [] : base.slice(queryAt + 1).split('&').filter((pair) => pair !== '' && parameterName(pair) !== field);
  kept.push(`${encodeURIComponent(field)}=${encodeURIComponent(next)}`);
  return `${path}?${kept.join('&')}${fragment}`;
}

function parameterName(pair: string): string {
  const raw = pair.split('=', 1)[0].replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Whether an absolute `loginUrl` names another scheme or host than the request was sent to. */
export function loginOnOtherSite(loginUrl: string, request: Request): boolean {
  if (!/^([a-z][a-z0-9+.-]*:)?\/\//i.test(loginUrl)) return false;
  let url: URL;
  try {
    url = new URL(loginUrl, `${request.protocol}://placeholder.invalid`);
  } catch {
    return false;
  }
  return url.protocol !== `${request.protocol}:` || url.host.toLowerCase() !== requestHost(request);
}
