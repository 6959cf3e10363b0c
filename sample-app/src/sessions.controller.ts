import { Controller, Get, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AuthService, CurrentUser, LoginRequired, isAuthenticated, type User } from 'nestjs-session-auth';
import { CsrfGuard, csrfToken } from 'nestjs-session-auth/csrf';
import { messages } from 'nestjs-session-auth/messages';
import { layoutContext } from './views/layout.js';
import { sessionsPage } from './views/pages.js';

/**
 * The user's sessions, one per browser they logged in with (`AuthService.getUserSessions`):
 * any of them can be logged out, or every one but this (`endUserSession`, `logoutOtherSessions`).
 */
@Controller('sessions')
@LoginRequired()
export class SessionsController {
  constructor(private readonly auth: AuthService) {}

  @Get()
  async list(@Req() request: Request, @CurrentUser() user: User): Promise<string> {
    const sessions = await this.auth.getUserSessions(user, request);
    return sessionsPage(layoutContext(request, user), sessions, csrfToken(request));
  }

  @Post('logout-others')
  @UseGuards(CsrfGuard)
  async logoutOthers(@Req() request: Request, @Res() response: Response): Promise<void> {
    const count = await this.auth.logoutOtherSessions(request);
    messages.success(request, count === 1 ? 'One other session was logged out.' : `${count} other sessions were logged out.`);
    response.redirect('/sessions');
  }

  /** `key` names one of this user's sessions; another user's key, or none, ends nothing. */
  @Post(':key/end')
  @UseGuards(CsrfGuard)
  async end(@Req() request: Request, @Res() response: Response, @CurrentUser() user: User, @Param('key') key: string): Promise<void> {
    const ended = await this.auth.endUserSession(user, key, request);
    // This browser's own session: it is logged out too.
    if (!isAuthenticated(await this.auth.getUser(request))) return response.redirect('/login');
    if (ended) messages.success(request, 'The session was logged out.');
    else messages.warning(request, 'That session had already ended.');
    response.redirect('/sessions');
  }
}
