import { Injectable, Logger, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { from, switchMap, type Observable } from 'rxjs';
import { AnonymousUser } from '../anonymous-user.js';
import { AuthService } from '../auth.service.js';

/**
 * Makes sure `request.user` is set before an HTTP handler runs, from the memoised resolver. The
 * module's guard sets it already (before app guards); this covers a request that reached the
 * handler without it, and is where per-response work lives.
 */
@Injectable()
export class CurrentUserInterceptor implements NestInterceptor {
  private readonly logger = new Logger('CurrentUserInterceptor');

  constructor(private readonly auth: AuthService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest();
    // Set by the guard: loaded, or deliberately lazy on a route that never reads it.
    if (Object.getOwnPropertyDescriptor(request, 'user')) return next.handle();
    const known = this.auth.peekUser(request);
    if (known) {
      // Most anonymous requests, and any whose guard already resolved the user: nothing to wait for.
      request.user = known;
      return next.handle();
    }
    const resolving = this.auth.getUser(request).catch((error: Error) => {
      // Fail closed: while the user cannot be loaded the request is anonymous. Guards that need
      // the user still answer 5xx; an open route such as logout keeps working.
      this.logger.error(`Loading the request's user failed: ${error.message}`);
      return new AnonymousUser();
    });
    return from(resolving).pipe(
      switchMap((user) => {
        request.user = user;
        return next.handle();
      }),
    );
  }
}
