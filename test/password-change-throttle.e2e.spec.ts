import request from 'supertest';
import type { User } from 'nestjs-session-auth';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * The password change form asks for the old password. Someone holding a stolen session
 * could use it to guess the real password without the login lockout ever noticing; so wrong old
 * passwords count towards the same lockout as wrong logins (5 per username and address).
 */

const HTML = 'text/html,application/xhtml+xml';
const PASSWORD_INCORRECT = 'Your old password was entered incorrectly. Please enter it again.';
const TOO_MANY = 'Too many incorrect passwords. Your old password was not checked; please try again later.';
const INVALID_LOGIN = 'Please enter a correct username and password. Note that both fields may be case-sensitive.';

type Agent = ReturnType<typeof request.agent>;

function csrfFrom(html: string): string {
  const match = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(html);
  if (!match) throw new Error(`No CSRF token in:\n${html}`);
  return match[1];
}

describe('password change under the login throttle', () => {
  let t: TestApp;
  let server: any;
  let carol: User;

  beforeEach(async () => {
    // These tests type faster than people: the per-address rate is not what they are about.
    t = await createTestApp({ auth: { views: true, throttle: { addressBurst: 100 } } });
    server = t.app.getHttpServer();
    carol = await t.users.createUser({ username: 'carol', password: 'correct horse' });
  });

  afterEach(() => t.close());

  const passwordIs = async (raw: string) => t.users.checkPassword((await t.users.findById(String(carol.id)))!, raw);

  async function loginForm(agent: Agent, password: string) {
    const page = await agent.get('/accounts/login').set('Accept', HTML).expect(200);
    return agent.post('/accounts/login').set('Accept', HTML).type('form').send({ username: 'carol', password, csrfmiddlewaretoken: csrfFrom(page.text) });
  }

  /** A browser logged in as carol: the session the attacker has taken over. */
  async function hijackedSession(): Promise<Agent> {
    const browser = request.agent(server);
    expect((await loginForm(browser, 'correct horse')).status).toBe(302);
    return browser;
  }

  async function changePassword(browser: Agent, oldPassword: string, newPassword = 'battery staple 42') {
    const page = await browser.get('/accounts/password_change').set('Accept', HTML).expect(200);
    return browser
      .post('/accounts/password_change')
      .set('Accept', HTML)
      .type('form')
      .send({ old_password: oldPassword, new_password1: newPassword, new_password2: newPassword, csrfmiddlewaretoken: csrfFrom(page.text) });
  }

  it('refuses the right old password after 5 wrong ones, and changes nothing', async () => {
    const browser = await hijackedSession();
    for (let guess = 0; guess < 5; guess++) {
      const response = await changePassword(browser, `guess-${guess}`);
      expect(response.status).toBe(200);
      expect(response.text).toContain(PASSWORD_INCORRECT);
    }

    const refused = await changePassword(browser, 'correct horse');

    expect(refused.status).toBe(200);
    expect(refused.text).toContain(TOO_MANY);
    expect(await passwordIs('correct horse')).toBe(true);
    expect(await passwordIs('battery staple 42')).toBe(false);
  });

  it('answers a JSON client 429 while locked', async () => {
    const browser = await hijackedSession();
    const token = csrfFrom((await browser.get('/accounts/password_change').set('Accept', HTML).expect(200)).text);
    const send = (oldPassword: string) =>
      browser
        .post('/accounts/password_change')
        .set('X-CSRF-Token', token)
        .send({ old_password: oldPassword, new_password1: 'battery staple 42', new_password2: 'battery staple 42' });
    for (let guess = 0; guess < 5; guess++) await send(`guess-${guess}`).expect(400);

    const refused = await send('correct horse').expect(429);

    expect(refused.body).toMatchObject({ statusCode: 429, message: TOO_MANY });
    expect(await passwordIs('correct horse')).toBe(true);
  });

  it('locks the login form too: the guesses count against the same username and address', async () => {
    const browser = await hijackedSession();
    for (let guess = 0; guess < 5; guess++) await changePassword(browser, `guess-${guess}`);

    const login = await loginForm(request.agent(server), 'correct horse');

    expect(login.status).toBe(200);
    expect(login.text).toContain(INVALID_LOGIN);
  });

  it('is locked by wrong logins at the form as well', async () => {
    const browser = await hijackedSession();
    for (let guess = 0; guess < 5; guess++) await loginForm(request.agent(server), `guess-${guess}`);

    const refused = await changePassword(browser, 'correct horse');

    expect(refused.text).toContain(TOO_MANY);
    expect(await passwordIs('correct horse')).toBe(true);
  });

  it('clears the counter when the old password is right, so the owner is not locked out by old typos', async () => {
    const browser = await hijackedSession();
    for (let guess = 0; guess < 4; guess++) await changePassword(browser, `typo-${guess}`);
    // Right old password, new ones refused by the validators: nothing changes, but the count restarts.
    const weak = await changePassword(browser, 'correct horse', '1234567');
    expect(weak.text).not.toContain(PASSWORD_INCORRECT);
    for (let guess = 0; guess < 4; guess++) await changePassword(browser, `typo-again-${guess}`);

    expect((await changePassword(browser, 'correct horse')).status).toBe(302);
    expect(await passwordIs('battery staple 42')).toBe(true);
  });

  it('counts nothing with throttle: false', async () => {
    await t.close();
    t = await createTestApp({ auth: { views: true, throttle: false } });
    server = t.app.getHttpServer();
    carol = await t.users.createUser({ username: 'carol', password: 'correct horse' });
    const browser = await hijackedSession();
    for (let guess = 0; guess < 6; guess++) await changePassword(browser, `guess-${guess}`);
    expect((await changePassword(browser, 'correct horse')).status).toBe(302);
  });
});
