// The README's quick start, verbatim (test/quick-start.e2e.spec.ts runs it).
import { Body, Controller, Get, Injectable, Module, Post, Req, UnauthorizedException, UseGuards } from '@nestjs/common';
import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Request } from 'express';
import { AuthModule, AuthService, CurrentUser, LoginRequired, ModelBackend, SameOriginGuard, authEntities } from 'nestjs-session-auth';
import type { User } from 'nestjs-session-auth';

/** A guard of your own: the module's guard has already set `request.user` (a User or the AnonymousUser). */
@Injectable()
class StaffOnly implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest<Request & { user: User }>().user.isStaff === true;
  }
}

@Controller()
class AccountsController {
  constructor(private readonly auth: AuthService) {}

  // SameOriginGuard: a page of another site cannot post here and log the visitor's browser into
  // the attacker's account (login CSRF); scripts and API clients without an Origin are let in.
  @Post('login')
  @UseGuards(SameOriginGuard)
  async login(@Req() req: Request, @Body() body: unknown) {
    const user = await this.auth.authenticate<User>(req, body);
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(req, user);
    return { username: user.username };
  }

  @Post('logout')
  async logout(@Req() req: Request) {
    await this.auth.logout(req);
    return {};
  }

  @LoginRequired()
  @Get('me')
  me(@CurrentUser() user: User) {
    return { username: user.username };
  }

  @LoginRequired()
  @UseGuards(StaffOnly)
  @Get('staff')
  staff() {
    return { welcome: 'staff' };
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'better-sqlite3', database: process.env.DATABASE_PATH ?? 'db.sqlite', entities: [...authEntities], synchronize: true }),
    AuthModule.forRoot({
      backends: [ModelBackend],
      session: { secret: process.env.SESSION_SECRET! },
      // The built-in pages, /accounts/login among them: where @LoginRequired() sends a browser.
      views: true,
    }),
  ],
  controllers: [AccountsController],
})
export class AppModule {}
