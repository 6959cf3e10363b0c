import { Body, Controller, Get, HttpCode, Post, Req, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { AnonymousUser, AuthService, CurrentUser, LoginRequired, type User } from 'nestjs-session-auth';

/** JSON endpoints: the whole login workflow in four routes. */
@Controller()
export class AccountsController {
  constructor(private readonly auth: AuthService) {}

  @Get()
  home(@CurrentUser() user: User | AnonymousUser) {
    if (user.isAuthenticated) return { message: `Hello, ${user.username}!` };
    return { message: 'Hello, anonymous visitor. POST /login with {"username", "password"} to sign in.' };
  }

  @Post('login')
  @HttpCode(200)
  async login(@Req() request: Request, @Body() credentials: unknown) {
    const user = await this.auth.authenticate<User>(request, credentials);
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(request, user);
    return { username: user.username, backend: user.backend };
  }

  @Post('logout')
  @HttpCode(200)
  async logout(@Req() request: Request) {
    await this.auth.logout(request);
    return {};
  }

  @LoginRequired()
  @Get('me')
  me(@CurrentUser() user: User) {
    return { id: user.id, username: user.username, email: user.email, backend: user.backend, lastLogin: user.lastLogin };
  }
}
