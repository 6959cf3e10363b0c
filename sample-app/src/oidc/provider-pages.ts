import { html, safeHtml, type SafeHtml } from 'nestjs-session-auth/views';
import { STYLE } from '../views/style.js';

/**
 * The demo provider's own pages, dressed like the sample: its stylesheet inlined and allowed by
 * its hash (`pageHeaders`), no script. The bar says whose page it is: the provider's, at another
 * address than the site, which is the point of "Log in with …".
 */
function page(title: string, main: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · Demo identity provider</title>
  <style>${safeHtml(STYLE)}</style>
</head>
<body>
  <header class="topbar">
    <div class="inner"><span class="brand"><span class="logo provider" aria-hidden="true">id</span> Demo identity provider</span></div>
  </header>
  <main><section class="card narrow">${main}</section></main>
</body>
</html>
`.value;
}

export interface SignInForm {
  /** Where the form posts: this interaction's address. */
  action: string;
  /** The client (relying party) that sent the visitor here. */
  client: string;
  /** What the visitor typed last time, kept after a wrong password. */
  login?: string;
  error?: string;
}

/** Login and consent in one: the demo grants the scopes the client asked for once the password is right. */
export function signInPage({ action, client, login = '', error }: SignInForm): string {
  return page(
    'Sign in',
    html`<h1>Sign in</h1>
      <p class="lead">to continue to <strong>${client}</strong>. Your password stays here: the site gets a signed ID token saying who you are.</p>
      ${error && html`<p class="alert" role="alert">${error}</p>`}
      <form class="stack" method="post" action="${action}">
        <div>
          <label for="login">Email</label>
          <input type="text" id="login" name="login" value="${login}" inputmode="email" autocomplete="username"
            autocapitalize="none" spellcheck="false" required autofocus>
        </div>
        <div>
          <label for="password">Password</label>
          <input type="password" id="password" name="password" autocomplete="current-password" required>
        </div>
        <div><button type="submit">Sign in</button></div>
      </form>`,
  );
}

/**
 * RP-initiated logout's question (OpenID Connect RP-Initiated Logout 1.0). `form` is
 * oidc-provider's own form with its CSRF field; the buttons submit it, yes or no.
 */
export function signOutPage(form: string): string {
  return page(
    'Sign out',
    html`<h1>Sign out of the demo provider?</h1>
      <p class="lead">Until you do, the next “Log in with …” on any site signs you in here without asking for your password.</p>
      ${safeHtml(form)}
      <div class="actions">
        <button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
        <button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>
      </div>`,
  );
}

/** After a logout no client asked to come back from. */
export function signedOutPage(): string {
  return page('Signed out', html`<h1>Signed out</h1><p>You are signed out of the demo provider.</p>`);
}

/** A request the provider refused (a wrong redirect_uri, an expired interaction…): OAuth's error code and its description. */
export function providerErrorPage(status: number, { error, error_description: description }: { error: string; error_description?: string }): string {
  return page(
    'Error',
    html`<p class="big-status">${status}</p>
      <h1>The sign-in cannot go on</h1>
      <p>${description ?? 'The provider refused this request.'}</p>
      <p class="muted">Error <code>${error}</code>. Go back to the site and start again.</p>`,
  );
}
