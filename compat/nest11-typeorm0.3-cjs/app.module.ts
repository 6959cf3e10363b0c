// The README's quick start as a CommonJS TypeScript app compiles it (`module: commonjs`, Node 10
// resolution, as the Nest CLI sets up): the package's types must resolve without `exports`.
import { Controller, Get, Module, Post, Req, UnauthorizedException, Body, HttpCode } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Request } from 'express';
import { AuthModule, AuthService, CurrentUser, LoginRequired, ModelBackend, authEntities, type User } from 'nestjs-session-auth';
import { BCryptSHA256Hasher } from 'nestjs-session-auth/passwords';
import { forceLogin } from 'nestjs-session-auth/testing';

@Controller()
export class PagesController {
  constructor(private readonly auth: AuthService) {}

  @Post('login')
  @HttpCode(200)
  async login(@Req() req: Request, @Body() body: unknown) {
    const user = await this.auth.authenticate<User>(req, body);
    if (!user) throw new UnauthorizedException('Invalid username or password.');
    await this.auth.login(req, user);
    return { username: user.username };
  }

  @LoginRequired()
  @Get('me')
  me(@CurrentUser() user: User) {
    return { username: user.username };
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'sqlite', database: 'app.sqlite', entities: [...authEntities], synchronize: true }),
    AuthModule.forRoot({
      backends: [ModelBackend],
      session: { secret: 'a-long-enough-secret-for-this-check' },
      passwordHashers: [new BCryptSHA256Hasher({ rounds: 12 })],
    }),
  ],
  controllers: [PagesController],
})
export class AppModule {}

export const testingHelper: typeof forceLogin = forceLogin;
