import {
  BadRequestException,
  Catch,
  ForbiddenException,
  NotFoundException,
  ServiceUnavailableException,
  type ArgumentsHost,
  type ExceptionFilter,
  type HttpException,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { AuthService } from 'nestjs-session-auth';
import { CsrfFailure } from 'nestjs-session-auth/csrf';
import { layoutContext } from './views/layout.js';
import { errorPage, type ErrorDescription } from './views/pages.js';

/**
 * Turns the errors a visitor can meet into pages of the site rather than Nest's JSON: 403 (a
 * logged-in user without the permission, or a form without its CSRF token), 404, 400 and 503 (the
 * session store cannot be reached; the module itself answers a directory that is down, with
 * `Retry-After`).
 * Clients that ask for JSON still get Nest's JSON body. Redirects to the login page are the
 * library's business and are not caught here.
 */
@Catch(ForbiddenException, NotFoundException, BadRequestException, ServiceUnavailableException)
export class ErrorPageFilter implements ExceptionFilter {
  constructor(private readonly auth: AuthService) {}

  async catch(exception: HttpException, host: ArgumentsHost): Promise<void> {
    const request = host.switchToHttp().getRequest<Request>();
    const response = host.switchToHttp().getResponse<Response>();
    const status = exception.getStatus();
    if (request.accepts(['html', 'json']) === 'json') {
      response.status(status).json(exception.getResponse());
      return;
    }
    if (status === 503) response.setHeader('Retry-After', '30');
    const user = await this.auth.getUser(request).catch(() => null);
    if (!user) {
      response.status(status).json(exception.getResponse());
      return;
    }
    response.status(status).send(errorPage(layoutContext(request, user), describe(exception, status)));
  }
}

function describe(exception: HttpException, status: number): ErrorDescription {
  if (exception instanceof CsrfFailure) {
    return { status, title: 'This form has expired', message: 'Go back, reload the page and submit the form again.' };
  }
  if (status === 403) {
    return {
      status,
      title: 'You can’t see this page',
      message: 'Your account does not have the permission this page needs. Ask an administrator, or log in as someone who has it.',
    };
  }
  if (status === 503) {
    return { status, title: 'Try again in a moment', message: 'A service this site needs to log you in is not answering. Nothing was changed.' };
  }
  if (status === 404) return { status, title: 'Page not found', message: 'There is nothing at this address.' };
  return { status, title: 'Something in that request was wrong', message: exception.message };
}
