import { isAuthenticated, type User, type UserSession } from 'nestjs-session-auth';
import { CSRF_FIELD_NAME } from 'nestjs-session-auth/csrf';
import { IDENTITY_PROVIDER_NAME, type IdentityProviderOptions } from '../app.options.js';
import { DEMO_ACCOUNTS } from '../seed.js';
import { VIEW_STAFF_PAGE } from '../permissions.js';
import { html, type SafeHtml } from 'nestjs-session-auth/views';
import { layout, type LayoutContext } from './layout.js';
import { describeUserAgent } from './user-agent.js';

/** What each backend did when it let someone in, for the dashboard. */
const BACKEND_STORIES: Record<string, string> = {
  ModelBackend: 'checked your password against the hash stored in this app’s user table.',
  DictionaryBackend: 'found your name and password in its dictionary, and mapped you to the local user of that name.',
  DirectoryBackend:
    'asked the external directory, which checked your password; your local user was created at your first login and updated from the directory at this one.',
  [IDENTITY_PROVIDER_NAME]:
    'sent you to the identity provider, which checked your password and sent you back with a signed ID token; your local user is linked to your identity there, so a new email there is still you.',
  LdapBackend:
    'bound to the OpenLDAP directory as you, which checked your password; your local user was created at your first login and updated from the directory (email, staff group) at this one.',
};

/** Whether the page may list the demo accounts: only in the demo, never in production. */
export interface DemoContext {
  demo: boolean;
}

/** Which ways in this site offers: the home page counts them and the demo explains them. */
export interface WaysIn extends DemoContext {
  /** The real directory server in use (`LDAP_URL`), or `null` for the in-memory stand-in. */
  directory: string | null;
  identityProvider: IdentityProviderOptions | null;
}

export function homePage(context: LayoutContext, ways: WaysIn): string {
  const { user } = context;
  const { demo, directory, identityProvider } = ways;
  const greeting = isAuthenticated(user)
    ? html`<h1>Hello, ${user.username}</h1>
        <p class="lead">You are logged in through <span class="badge">${user.backend}</span>.</p>
        <div class="actions"><a class="button" href="/dashboard">Open your dashboard</a></div>`
    : html`<h1>Hello, visitor</h1>
        <p class="lead">A small site on <code>nestjs-session-auth</code>: ${waysToLogIn(ways)}, one session.</p>
        <div class="actions"><a class="button" href="/login">Log in</a></div>`;
  return layout(
    context,
    'Home',
    html`<section class="card">${greeting}</section>
      ${demo &&
      html`<div class="grid spaced">
        <section class="card">
          <h2>Demo accounts</h2>
          ${demoAccounts(identityProvider)}
        </section>
        <section class="card">
          <h2>How a login is decided</h2>
          <p class="muted">A username and password typed on the login page go to these backends in this order; the first one that knows you wins.</p>
          <ol>
            <li><strong>ModelBackend</strong>: users with a password stored here (carol).</li>
            <li><strong>DictionaryBackend</strong>: a fixed dictionary of names and passwords (alice, bob).</li>
            ${directory
              ? html`<li><strong>LdapBackend</strong>: ${directory}; local users are created on first login (dana, erin).</li>`
              : html`<li><strong>DirectoryBackend</strong>: an in-memory stand-in for a company directory; local users are created on first login (dana, erin). Run <code>npm run ldap --workspace=sample-app</code> and start with its <code>LDAP_URL</code> for a real OpenLDAP.</li>`}
          </ol>
          ${identityProvider &&
          html`<p>The fourth way never sees a password: <strong>OidcBackend</strong> is the “Log in with ${identityProvider.label}” button,
            which sends you to an OpenID Connect provider. It checks your password there and sends you back with a signed ID token;
            your local user is created at your first login, linked to your identity at the provider${identityProvider.demoAccount && html` (${identityProvider.demoAccount.login})`}.</p>`}
        </section>
      </div>`}`,
  );
}

/** "four ways to log in (…)": what this configuration really offers, counted. */
function waysToLogIn({ demo, directory, identityProvider }: WaysIn): string {
  const ways = [
    'a password stored here',
    ...(demo ? ['a dictionary', directory ? 'an OpenLDAP directory' : 'a company directory'] : []),
    ...(identityProvider ? ['an OpenID Connect provider'] : []),
  ];
  const count = ['one way', 'two ways', 'three ways', 'four ways'][ways.length - 1];
  return ways.length === 1 ? `${count} to log in: ${ways[0]}` : `${count} to log in (${ways.slice(0, -1).join(', ')} or ${ways.at(-1)})`;
}

export interface LoginForm {
  csrfToken: string;
  username?: string;
  /** A safe place to return to after logging in, or empty. */
  next?: string;
  error?: string;
}

export function loginPage(
  context: LayoutContext,
  form: LoginForm,
  { demo, identityProvider }: DemoContext & { identityProvider?: IdentityProviderOptions | null },
): string {
  return layout(
    context,
    'Log in',
    html`<div class="split">
      <section class="card">
        <h1>Log in</h1>
        ${demo && html`<p class="muted">Use one of the demo accounts.</p>`}
        ${form.error && html`<p class="alert" role="alert">${form.error}</p>`}
        <form class="stack" method="post" action="/login">
          <input type="hidden" name="${CSRF_FIELD_NAME}" value="${form.csrfToken}">
          ${form.next && html`<input type="hidden" name="next" value="${form.next}">`}
          <div>
            <label for="username">Username</label>
            <input type="text" id="username" name="username" value="${form.username ?? ''}" autocomplete="username"
              autocapitalize="none" spellcheck="false" required autofocus>
          </div>
          <div>
            <label for="password">Password</label>
            <input type="password" id="password" name="password" autocomplete="current-password" required>
          </div>
          <div><button type="submit">Log in</button></div>
        </form>
        ${identityProvider &&
        // A form, not a link: starting a login is a POST with the CSRF token, so another site cannot start one.
        html`<form class="actions" method="post" action="/oidc/authenticate">
            <input type="hidden" name="${CSRF_FIELD_NAME}" value="${form.csrfToken}">
            <input type="hidden" name="provider" value="${IDENTITY_PROVIDER_NAME}">
            ${form.next && html`<input type="hidden" name="next" value="${form.next}">`}
            <button type="submit">Log in with ${identityProvider.label}</button>
          </form>
          ${identityProvider.demoAccount &&
          html`<p class="muted">At the provider: <code>${identityProvider.demoAccount.login}</code>, password <code>${identityProvider.demoAccount.password}</code>.</p>`}`}
      </section>
      ${demo &&
      html`<aside class="card">
        <h2>Demo accounts</h2>
        ${demoAccounts(identityProvider)}
      </aside>`}
    </div>`,
  );
}

export interface DashboardFacts {
  permissions: string[];
}

export function dashboardPage(context: LayoutContext, user: User, { permissions }: DashboardFacts): string {
  const backend = user.backend ?? '';
  return layout(
    context,
    'Dashboard',
    html`<h1>Dashboard</h1>
      <p class="lead">Only logged-in visitors reach this page: its handler is marked <code>@LoginRequired()</code>.</p>
      <div class="grid">
        <section class="card">
          <h2>You</h2>
          <dl class="facts">
            <dt>Username</dt><dd>${user.username}</dd>
            <dt>Email</dt><dd>${user.email || html`<span class="muted">none</span>`}</dd>
            <dt>Logged in by</dt><dd><span class="badge">${backend}</span></dd>
            <dt>Staff</dt><dd>${user.isStaff ? 'yes' : 'no'}</dd>
            <dt>Superuser</dt><dd>${user.isSuperuser ? 'yes' : 'no'}</dd>
            <dt>Permissions</dt><dd>${permissions.length > 0 ? permissions.map((perm, i) => html`${i > 0 && ', '}<code>${perm}</code>`) : html`<span class="muted">none</span>`}</dd>
          </dl>
        </section>
        <section class="card">
          <h2>How you got in</h2>
          <p><strong>${backend}</strong> ${BACKEND_STORIES[backend] ?? 'let you in.'}</p>
          <p class="muted">The session remembers the backend, and every request asks that same backend to reload you.</p>
          <div class="actions">
            <a href="/staff">Staff page</a>
            <a href="/password">Change your password</a>
          </div>
        </section>
      </div>`,
  );
}

export function staffPage(context: LayoutContext, holders: User[]): string {
  return layout(
    context,
    'Staff',
    html`<h1>Staff page</h1>
      <p class="lead">You see this page because you hold <code>${VIEW_STAFF_PAGE}</code>
        (<code>@PermissionRequired('${VIEW_STAFF_PAGE}')</code>).</p>
      <section class="card">
        <h2>Everyone who can see it</h2>
        <table>
          <thead><tr><th scope="col">Username</th><th scope="col">Email</th><th scope="col">Why</th></tr></thead>
          <tbody>
            ${holders.map(
              (holder) => html`<tr>
                <td data-label="Username">${holder.username}</td>
                <td data-label="Email">${holder.email}</td>
                <td data-label="Why">${holder.isSuperuser ? 'superuser' : 'member of the staff group'}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </section>`,
  );
}

export interface PasswordForm {
  csrfToken: string;
  /** Set when the password is kept by another system (the backend that checks it). */
  managedBy?: string;
  errors?: Record<string, string[]>;
  helpTexts: string[];
}

export function passwordPage(context: LayoutContext, form: PasswordForm): string {
  const errors = form.errors ?? {};
  const field = (name: string, label: string, autocomplete: string, help?: SafeHtml) => html`<div>
      <label for="${name}">${label}</label>
      <input type="password" id="${name}" name="${name}" autocomplete="${autocomplete}" required
        ${errors[name] && html`aria-invalid="true" aria-describedby="${name}-errors"`}>
      ${errors[name] && html`<ul class="field-error" id="${name}-errors">${errors[name].map((error) => html`<li>${error}</li>`)}</ul>`}
      ${help}
    </div>`;
  const body = form.managedBy
    ? html`<p>Your password is not kept by this site: <strong>${form.managedBy}</strong> checks it when you log in.
        Change it where that system lets you.</p>
        <p class="muted">carol’s password is kept here: log in as carol to try this page.</p>`
    : html`<form class="stack" method="post" action="/password">
        <input type="hidden" name="${CSRF_FIELD_NAME}" value="${form.csrfToken}">
        ${field('old_password', 'Current password', 'current-password')}
        ${field('new_password1', 'New password', 'new-password', html`<ul class="hint">${form.helpTexts.map((text) => html`<li>${text}</li>`)}</ul>`)}
        ${field('new_password2', 'New password (again)', 'new-password')}
        <div><button type="submit">Change password</button></div>
      </form>`;
  return layout(context, 'Change password', html`<section class="card narrow"><h1>Change password</h1>${body}</section>`);
}

/** The devices the user is logged in on: each can be logged out, or all but this one. */
export function sessionsPage(context: LayoutContext, sessions: UserSession[], csrfToken: string): string {
  const when = (date: Date | null) =>
    date ? html`<time datetime="${date.toISOString()}">${SHORT_DATE.format(date)} UTC</time>` : html`<span class="muted">unknown</span>`;
  const others = sessions.filter((session) => !session.current).length;
  return layout(
    context,
    'Sessions',
    html`<h1>Where you are logged in</h1>
      <p class="lead">Each browser you logged in with has its own session. End the ones you do not recognise.</p>
      <section class="card">
        <table class="sessions">
          <thead><tr><th scope="col">Browser</th><th scope="col">Address</th><th scope="col">Logged in</th><th scope="col">Last active</th><th scope="col"></th></tr></thead>
          <tbody>
            ${sessions.map(
              (session) => html`<tr>
                <td data-label="Browser">${browserCell(session.userAgent)}</td>
                <td data-label="Address">${displayedAddress(session.address) || html`<span class="muted">unknown</span>`}</td>
                <td data-label="Logged in">${when(session.loggedInAt)}</td>
                <td data-label="Last active">${when(session.lastActiveAt)}</td>
                <td>${session.current
                  ? html`<span class="badge">this browser</span>`
                  : html`<form class="inline" method="post" action="/sessions/${session.key}/end">
                      <input type="hidden" name="${CSRF_FIELD_NAME}" value="${csrfToken}">
                      <button type="submit">Log out</button>
                    </form>`}</td>
              </tr>`,
            )}
          </tbody>
        </table>
        ${others > 0 &&
        html`<form class="actions" method="post" action="/sessions/logout-others">
          <input type="hidden" name="${CSRF_FIELD_NAME}" value="${csrfToken}">
          <button type="submit">Log out my other devices</button>
        </form>`}
      </section>`,
  );
}

/** "8 Dec 2026, 14:05": the full instant is in the `<time>` element's `datetime`. */
const SHORT_DATE = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });

/** The browser's name, and the header it sent on demand: a User-Agent is one long word, and the visitor wrote it. */
function browserCell(userAgent: string): SafeHtml {
  if (!userAgent) return html`<span class="muted">unknown</span>`;
  return html`${describeUserAgent(userAgent) ?? 'Unknown browser'}
    <details class="raw"><summary>User-Agent</summary><code>${userAgent}</code></details>`;
}

/** An IPv4 client seen by a dual-stack server is `::ffff:203.0.113.7` (RFC 4291, 2.5.5.2): shown as the IPv4 address it is. */
function displayedAddress(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

export interface ErrorDescription {
  status: number;
  title: string;
  message: string;
}

export function errorPage(context: LayoutContext, { status, title, message }: ErrorDescription): string {
  return layout(
    context,
    title,
    html`<section class="card narrow">
      <p class="big-status">${status}</p>
      <h1>${title}</h1>
      <p>${message}</p>
      <div class="actions">
        <a class="button" href="/">Back to the home page</a>
        ${!isAuthenticated(context.user) && status === 403 && html`<a href="/login">Log in</a>`}
      </div>
    </section>`,
  );
}

function demoAccounts(identityProvider: IdentityProviderOptions | null | undefined): SafeHtml {
  const atProvider = identityProvider?.demoAccount;
  return html`<table>
    <thead><tr><th scope="col">Username</th><th scope="col">Password</th><th scope="col">Checked by</th></tr></thead>
    <tbody>
      ${DEMO_ACCOUNTS.map(
        (account) => html`<tr>
          <td data-label="Username">${account.username}${account.staff && html` <span class="badge">staff</span>`}</td>
          <td data-label="Password"><code>${account.password}</code></td>
          <td data-label="Checked by">${account.backend}</td>
        </tr>`,
      )}
    </tbody>
  </table>
  ${atProvider &&
  html`<p class="muted">At ${identityProvider.label} (“Log in with ${identityProvider.label}”, checked by <strong>OidcBackend</strong>):
    <code>${atProvider.login}</code>, password <code>${atProvider.password}</code>.</p>`}`;
}
