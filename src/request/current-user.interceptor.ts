import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { from, switchMap, type Observable } from 'rxjs';
import { AuthService } from '../auth.service.js';

/** Sets `request.user` before every HTTP handler runs, from the memoised resolver. */
@Injectable()
export class CurrentUserInterceptor implements NestInterceptor {
  constructor(private readonly auth: AuthService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest();
    const known = this.auth.peekUser(request);
    if (known) {
      // Most anonymous requests, and any whose guard already resolved the user: nothing to wait for.
      request.user = known;
      return next.handle();
    }
    return from(this.auth.getUser(request)).pipe(
      switchMap((user) => {
        request.user = user;
        return next.handle();
      }),
    );
  }
}
