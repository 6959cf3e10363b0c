import type { Request } from 'express';
import { isAuthenticated, type RequestUser, type User } from 'nestjs-session-auth';
import { CSRF_FIELD_NAME, csrfToken } from 'nestjs-session-auth/csrf';
import { messages, type FlashMessage } from 'nestjs-session-auth/messages';
import { html, SafeHtml } from 'nestjs-session-auth/views';
import { STYLE } from './style.js';

/** What every page shows around its own content. */
export interface LayoutContext {
  user: RequestUser<User>;
  /** Flash messages waiting for this visitor; taking them marks them shown. */
  messages: FlashMessage[];
  /** For the logout button, which is a form: logging out changes state, so it is a POST. */
  csrfToken: string | null;
  path: string;
}

export function layoutContext(request: Request, user: RequestUser<User>): LayoutContext {
  return {
    user,
    messages: messages.list(request),
    csrfToken: isAuthenticated(user) ? csrfToken(request) : null,
    path: request.path,
  };
}

const NAVIGATION = [
  { href: '/', label: 'Home' },
  { href: '/dashboard', label: 'Dashboard' },
  { href: '/staff', label: 'Staff' },
  { href: '/password', label: 'Password' },
  { href: '/sessions', label: 'Sessions' },
];

/** The page around `main`: top bar (navigation, who is logged in), flash messages. */
export function layout(context: LayoutContext, title: string, main: SafeHtml): string {
  const { user, path } = context;
  return html`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · Sample site</title>
  <style>${new SafeHtml(STYLE)}</style>
</head>
<body>
  <header class="topbar">
    <div class="inner">
      <a class="brand" href="/"><span class="logo" aria-hidden="true">ns</span> Sample site</a>
      <nav aria-label="Main">
        ${NAVIGATION.map(
          (link) => html`<a href="${link.href}" ${link.href === path ? html`aria-current="page"` : ''}>${link.label}</a>`,
        )}
      </nav>
      <div class="account">
        ${isAuthenticated(user)
          ? html`<span class="who">Signed in as <strong title="${user.username}">${user.username}</strong></span>${logoutButton(context.csrfToken)}`
          : html`<a class="button" href="/login">Log in</a>`}
      </div>
    </div>
  </header>
  <main>
    ${context.messages.length > 0 &&
    html`<ul class="flashes" aria-label="Messages">
      ${context.messages.map((message) => html`<li class="flash ${message.tags}" role="status">${message.text}</li>`)}
    </ul>`}
    ${main}
  </main>
</body>
</html>
`.value;
}

/** Logging out is a POST with the CSRF token: a link or an image on another site cannot do it. */
export function logoutButton(token: string | null, label = 'Log out'): SafeHtml {
  return html`<form class="inline" method="post" action="/logout">
    <input type="hidden" name="${CSRF_FIELD_NAME}" value="${token}">
    <button class="secondary" type="submit">${label}</button>
  </form>`;
}
