import { Catch, HttpException, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
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
