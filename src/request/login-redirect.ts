import { Catch, HttpException, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';

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
    const response = host.switchToHttp().getResponse<Response>();
    response.setHeader('Cache-Control', 'no-store');
    response.redirect(HttpStatus.FOUND, exception.location);
  }
}
