import { Controller, Get, Inject, Req } from '@nestjs/common';
import type { Request } from 'express';
import {
  AuthService,
  CurrentUser,
  LoginRequired,
  PermissionManager,
  PermissionRequired,
  type RequestUser,
  type User,
} from 'nestjs-session-auth';
import { VIEW_STAFF_PAGE } from './permissions.js';
import { DEMO_MODE, DIRECTORY_IN_USE, IDENTITY_PROVIDER, type IdentityProviderOptions } from './app.options.js';
import { layoutContext } from './views/layout.js';
import { dashboardPage, homePage, staffPage } from './views/pages.js';

/** The site's pages: one open to everybody, one for logged-in users, one for staff. */
@Controller()
export class PagesController {
  constructor(
    private readonly auth: AuthService,
    private readonly permissions: PermissionManager,
    @Inject(DEMO_MODE) private readonly demo: boolean,
    @Inject(DIRECTORY_IN_USE) private readonly directory: string | null,
    @Inject(IDENTITY_PROVIDER) private readonly identityProvider: IdentityProviderOptions | null,
  ) {}

  /** `@CurrentUser()` is the logged-in user, or the `AnonymousUser` for a visitor. */
  @Get()
  home(@Req() request: Request, @CurrentUser() user: RequestUser<User>): string {
    return homePage(layoutContext(request, user), { demo: this.demo, directory: this.directory, identityProvider: this.identityProvider });
  }

  /** A visitor who is not logged in is sent to `/login?next=/dashboard`, and comes back here. */
  @Get('dashboard')
  @LoginRequired()
  async dashboard(@Req() request: Request, @CurrentUser() user: User): Promise<string> {
    const permissions = [...(await this.auth.getAllPermissions(user))].sort();
    return dashboardPage(layoutContext(request, user), user, { permissions });
  }

  /**
   * A logged-in user without the permission gets 403 (shown by `ErrorPageFilter`); a visitor
   * who is not logged in is sent to log in first.
   */
  @Get('staff')
  @PermissionRequired(VIEW_STAFF_PAGE)
  async staff(@Req() request: Request, @CurrentUser() user: User): Promise<string> {
    const holders: User[] = await this.permissions.usersWithPerm(VIEW_STAFF_PAGE);
    return staffPage(layoutContext(request, user), holders);
  }
}
