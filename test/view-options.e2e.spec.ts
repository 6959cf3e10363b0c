import 'reflect-metadata';
import { Injectable, Logger } from '@nestjs/common';
import { jest } from '@jest/globals';
import request from 'supertest';
import { ImproperlyConfigured, ModelBackend, type AuthModuleOptions, type User } from 'nestjs-session-auth';
import { PasswordResetTokens } from 'nestjs-session-auth/passwords';
import { AuthMailer, html, layout, type AuthMail, type AuthViewsOptions } from 'nestjs-session-auth/views';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * The built-in views' options, ported from Django's `auth_tests/test_views.py`
 * (`LoginRedirectAuthenticatedUser`, `LoginSuccessURLAllowedHostsTest`, `LogoutTest`,
 * `PasswordResetTest`'s `post_reset_login` cases, `logout_then_login`) and its template override.
 */

@Injectable()
class CapturingMailer extends AuthMailer {
  sent: AuthMail[] = [];

  send(mail: AuthMail): void {
    this.sent.push(mail);
  }
}

type Agent = ReturnType<typeof request.agent>;
const HTML = 'text/html,application/xhtml+xml';

function csrfFrom(page: string): string {
  const match = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page);
  if (!match) throw new Error(`No CSRF token in:\n${page}`);
  return match[1];
}

describe('options of the built-in views', () => {
  let t: TestApp;
  let server: any;
  let mailer: CapturingMailer;
  let carol: User;

  async function boot(views: AuthViewsOptions | true, auth: Partial<AuthModuleOptions> = {}): Promise<void> {
    t = await createTestApp({
      auth: { views, mailer: CapturingMailer, loginRedirectUrl: '/home', ...auth },
      providers: [CapturingMailer],
    });
    server = t.app.getHttpServer();
    mailer = t.app.get(CapturingMailer);
    carol = await t.users.createUser({ username: 'carol', password: 'correct horse', email: 'carol@example.com' });
  }

  afterEach(() => t?.close());

  async function formToken(agent: Agent, path: string): Promise<string> {
    const page = await agent.get(path).set('Accept', HTML).expect(200);
    return csrfFrom(page.text);
  }

  async function logIn(agent: Agent, extra: Record<string, string> = {}, path = '/accounts/login'): Promise<request.Response> {
    const token = await formToken(agent, '/accounts/password_reset');
    return agent
      .post(path)
      .set('Accept', HTML)
      .type('form')
      .send({ username: 'carol', password: 'correct horse', csrfmiddlewaretoken: token, ...extra })
      .expect(302);
  }

  async function isLoggedIn(agent: Agent): Promise<boolean> {
    const { body } = await agent.get('/whoami').expect(200);
    return body.isAuthenticated;
  }

  /** POST a form of the views with the session's CSRF token. */
  async function post(agent: Agent, path: string, fields: Record<string, string>, status: number): Promise<request.Response> {
    const token = await formToken(agent, '/accounts/password_reset');
    return agent.post(path).set('Accept', HTML).type('form').send({ csrfmiddlewaretoken: token, ...fields }).expect(status);
  }

  describe('login: redirectAuthenticatedUser (Django’s redirect_authenticated_user)', () => {
    it('shows the form to a logged-in user by default, as Django does', async () => {
      await boot(true);
      const agent = request.agent(server);
      await logIn(agent);
      const page = await agent.get('/accounts/login').set('Accept', HTML).expect(200);
      expect(page.text).toContain('name="password"');
    });

    it('sends a logged-in visitor of the login page on to loginRedirectUrl, and shows guests the form', async () => {
      await boot({ login: { redirectAuthenticatedUser: true } });
      await request(server).get('/accounts/login').set('Accept', HTML).expect(200);
      const agent = request.agent(server);
      await logIn(agent);
      const response = await agent.get('/accounts/login').set('Accept', HTML).expect(302);
      expect(response.headers.location).toBe('/home');
    });

    it('follows a safe next, but never back to the login page itself, nor off the site', async () => {
      await boot({ login: { redirectAuthenticatedUser: true } });
      const agent = request.agent(server);
      await logIn(agent);
      const to = async (next: string) => (await agent.get('/accounts/login').query({ next }).set('Accept', HTML).expect(302)).headers.location;
      expect(await to('/reports?year=2026')).toBe('/reports?year=2026');
      // Django raises ValueError here (a 500); a visitor choosing `next` must not cause a 5xx.
      expect(await to('/accounts/login?x=1')).toBe('/home');
      expect(await to('https://evil.example.com/')).toBe('/home');
    });

    it('refuses to start when logged-in users would be sent back to the login page (Django’s redirect loop error)', async () => {
      await expect(boot({ login: { redirectAuthenticatedUser: true } }, { loginRedirectUrl: '/accounts/login' })).rejects.toThrow(
        ImproperlyConfigured,
      );
      await expect(boot({ login: { redirectAuthenticatedUser: true, nextPage: '/accounts/login?again=1' } })).rejects.toThrow(
        /back to it/,
      );
    });
  });

  describe('login: nextPage and successUrlAllowedHosts', () => {
    it('goes to nextPage without a next, and a safe next still wins', async () => {
      await boot({ login: { nextPage: '/dashboard' } });
      expect((await logIn(request.agent(server))).headers.location).toBe('/dashboard');
      expect((await logIn(request.agent(server), { next: '/inbox' })).headers.location).toBe('/inbox');
      expect((await logIn(request.agent(server), { next: '//evil.example.com/' })).headers.location).toBe('/dashboard');
    });

    it('lets next name the hosts it lists, and no others (Django’s success_url_allowed_hosts)', async () => {
      await boot({ login: { successUrlAllowedHosts: ['accounts.example.com'] } });
      expect((await logIn(request.agent(server), { next: 'http://accounts.example.com/welcome' })).headers.location).toBe(
        'http://accounts.example.com/welcome',
      );
      expect((await logIn(request.agent(server), { next: 'http://evil.example.com/welcome' })).headers.location).toBe('/home');
      // A look-alike with the allowed host as a subdomain or in credentials is no match.
      expect((await logIn(request.agent(server), { next: 'http://accounts.example.com.evil.com/' })).headers.location).toBe('/home');
      expect((await logIn(request.agent(server), { next: 'http://accounts.example.com@evil.com/' })).headers.location).toBe('/home');
    });

    it('refuses host lists that are not host names', async () => {
      await expect(boot({ login: { successUrlAllowedHosts: ['https://accounts.example.com/'] } })).rejects.toThrow(/host names/);
    });
  });

  describe('logout: logoutRedirectUrl, nextPage and logout_then_login', () => {
    it('shows the logged-out page by default', async () => {
      await boot(true);
      const agent = request.agent(server);
      await logIn(agent);
      const page = await post(agent, '/accounts/logout', {}, 200);
      expect(page.text).toContain('You have been logged out.');
      expect(await isLoggedIn(agent)).toBe(false);
    });

    it('redirects to logoutRedirectUrl (Django’s LOGOUT_REDIRECT_URL), nextPage over it, and a safe next over both', async () => {
      await boot(true, { logoutRedirectUrl: '/goodbye' });
      let agent = request.agent(server);
      await logIn(agent);
      expect((await post(agent, '/accounts/logout', {}, 302)).headers.location).toBe('/goodbye');
      expect(await isLoggedIn(agent)).toBe(false);
      await t.close();

      await boot({ logout: { nextPage: '/see-you' } }, { logoutRedirectUrl: '/goodbye' });
      agent = request.agent(server);
      await logIn(agent);
      expect((await post(agent, '/accounts/logout', {}, 302)).headers.location).toBe('/see-you');
      await logIn(agent);
      expect((await post(agent, '/accounts/logout', { next: '/later' }, 302)).headers.location).toBe('/later');
      await logIn(agent);
      expect((await post(agent, '/accounts/logout', { next: 'https://evil.example.com/' }, 302)).headers.location).toBe('/see-you');
    });

    it('logout_then_login logs out and goes to the login page, by POST with the CSRF token only', async () => {
      await boot(true);
      const agent = request.agent(server);
      await logIn(agent);
      await agent.get('/accounts/logout_then_login').set('Accept', HTML).expect(405);
      await agent.post('/accounts/logout_then_login').set('Accept', HTML).type('form').send({}).expect(403);
      expect(await isLoggedIn(agent)).toBe(true);
      const response = await post(agent, '/accounts/logout_then_login', {}, 302);
      expect(response.headers.location).toBe('/accounts/login');
      expect(await isLoggedIn(agent)).toBe(false);
      await logIn(agent);
      expect((await post(agent, '/accounts/logout_then_login', { next: '/back' }, 302)).headers.location).toBe('/back');
    });
  });

  describe('password reset: postResetLogin and the email', () => {
    async function resetPassword(agent: Agent): Promise<request.Response> {
      const uid = Buffer.from(String(carol.id)).toString('base64url');
      const token = t.app.get(PasswordResetTokens).make((await t.users.findById(String(carol.id)))!);
      const moved = await agent.get(`/accounts/reset/${uid}/${token}`).set('Accept', HTML).expect(302);
      const form = await agent.get(moved.headers.location).set('Accept', HTML).expect(200);
      return agent
        .post(moved.headers.location)
        .set('Accept', HTML)
        .type('form')
        .send({ csrfmiddlewaretoken: csrfFrom(form.text), new_password1: 'a brand new secret', new_password2: 'a brand new secret' })
        .expect(302);
    }

    it('leaves the user logged out after the reset by default', async () => {
      await boot(true, { backends: [ModelBackend] });
      const agent = request.agent(server);
      await resetPassword(agent);
      expect(await isLoggedIn(agent)).toBe(false);
    });

    it('logs the user in once the password is set, with the backend named (Django’s post_reset_login)', async () => {
      await boot({ passwordResetConfirm: { postResetLogin: true, postResetLoginBackend: 'ModelBackend' } });
      const agent = request.agent(server);
      const response = await resetPassword(agent);
      expect(response.headers.location).toBe('/accounts/reset/done');
      const { body } = await agent.get('/me').expect(200);
      expect(body).toEqual({ username: 'carol', backend: 'ModelBackend' });
    });

    it('refuses to start without a backend to log in with when several are configured, or with an unknown one', async () => {
      await expect(boot({ passwordResetConfirm: { postResetLogin: true } })).rejects.toThrow(/postResetLoginBackend/);
      await expect(boot({ passwordResetConfirm: { postResetLogin: true, postResetLoginBackend: 'LdapBackend' } })).rejects.toThrow(
        /not a configured backend/,
      );
    });

    async function requestReset(): Promise<AuthMail> {
      const agent = request.agent(server);
      await post(agent, '/accounts/password_reset', { email: 'carol@example.com' }, 302);
      await new Promise((resolve) => setImmediate(resolve));
      expect(mailer.sent).toHaveLength(1);
      return mailer.sent[0];
    }

    it('adds extraEmailContext to the email’s context, never over the link or the user', async () => {
      await boot({
        passwordReset: { extraEmailContext: { brand: 'Acme', resetUrl: 'https://evil.example.com/', support: 'help@acme.test' } },
        templates: { passwordResetEmail: (context) => ({ subject: `${context.brand} reset`, text: `${context.resetUrl}\n${context.support}` }) },
      });
      const mail = await requestReset();
      expect(mail.context.brand).toBe('Acme');
      expect(mail.context.resetUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/accounts\/reset\/[A-Za-z0-9_-]+\/[0-9a-z]+-[0-9a-f]+$/);
      expect(mail.subject).toBe('Acme reset');
      expect(mail.text).toBe(`${mail.context.resetUrl}\nhelp@acme.test`);
      expect(mail.html).toBeUndefined();
    });

    it('sends an HTML part with htmlEmail, every value escaped', async () => {
      await boot({ passwordReset: { htmlEmail: true } });
      await t.users.repository.update(carol.id, { username: 'carol<b>&' } as any);
      const mail = await requestReset();
      expect(mail.html).toContain(`<a href="${mail.context.resetUrl}">`);
      expect(mail.html).toContain('carol&lt;b&gt;&amp;');
      expect(mail.html).not.toContain('carol<b>');
      expect(mail.text).toContain('carol<b>&');
    });
  });

  describe('templates of the app’s own (Django’s template override)', () => {
    it('renders the app’s page, escaping what the visitor typed, and keeps the built-in ones for the rest', async () => {
      await boot({
        templates: {
          login: (page) =>
            layout(
              'Sign in to Acme',
              html`<form method="post" action="${page.action}"><input type="hidden" name="${page.csrfFieldName}" value="${page.csrfToken}">
<input name="username" value="${page.username}">${page.errors.form?.map((message) => html`<p class="oops">${message}</p>`)}</form>`,
            ),
        },
      });
      const agent = request.agent(server);
      const page = await agent.get('/accounts/login').set('Accept', HTML).expect(200);
      expect(page.text).toContain('<title>Sign in to Acme</title>');
      // The app's page: its own styles and images are its business, framing is still refused.
      expect(page.headers['content-security-policy']).toBe("frame-ancestors 'none'");
      expect(page.headers['x-frame-options']).toBe('DENY');
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      expect(page.headers['cache-control']).toContain('no-store');
      const failed = await agent
        .post('/accounts/login')
        .set('Accept', HTML)
        .type('form')
        .send({ username: '"><script>alert(1)</script>', password: 'wrong', csrfmiddlewaretoken: csrfFrom(page.text) })
        .expect(200);
      expect(failed.text).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
      expect(failed.text).not.toContain('<script>');
      expect(failed.text).toContain('<p class="oops">Please enter a correct username and password.');
      const reset = await agent.get('/accounts/password_reset').set('Accept', HTML).expect(200);
      expect(reset.text).toContain('<title>Password reset</title>');
      expect(reset.headers['content-security-policy']).toContain("default-src 'none'");
    });

    it('refuses a template that returns a plain string: only the html tag’s result is a page', async () => {
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        await boot({ templates: { login: (() => '<p>raw</p>') as never } });
        const response = await request(server).get('/accounts/login').set('Accept', HTML).expect(500);
        expect(response.text).not.toContain('<p>raw</p>');
      } finally {
        errors.mockRestore();
      }
    });

    it('refuses templates that are not functions', async () => {
      await expect(boot({ templates: { login: '<p>hi</p>' as never } })).rejects.toThrow(/must be a function/);
    });
  });
});
