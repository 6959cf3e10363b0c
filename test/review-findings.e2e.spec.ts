import { jest } from '@jest/globals';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import { CurrentUser, ExternalIdentity, ExternalUsers, type ExternalUserQuery } from 'nestjs-session-auth';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { createTestApp, logIn, type TestApp } from './support/test-app.js';

/*
 * An outside review of the fixes for cross-site WebSocket hijacking and for outside identity
 * sources taking over local accounts, written from the attacker's side. Each test fails on the
 * code it was written against.
 */

@WebSocketGateway()
class WhoAmIGateway {
  @SubscribeMessage('whoami')
  whoami(@CurrentUser() user: any) {
    return { event: 'whoami', data: user.isAuthenticated ? user.username : 'anonymous' };
  }
}

describe('review: a socket.io JSONP polling handshake from a page of another origin', () => {
  let t: TestApp;
  afterEach(() => t?.close());

  /*
   * engine.io still serves JSONP polling (`&j=N`): its answers are scripts calling `___eio[N](...)`,
   * which any page can load with a <script> tag and read. Such a subresource GET carries the
   * site's cookie (a same-site page: another port, a sibling subdomain; any site with
   * SameSite=None) but no Origin, and no Sec-Fetch-Site where the browser sends no Fetch Metadata
   * (plain-HTTP hosts other than localhost, Safari before 16.4); the attacker suppresses Referer
   * with referrerpolicy="no-referrer". The module takes a handshake with neither header for a
   * client that is no browser, and gives it the session. The requests below are exactly what
   * Chromium sent from http://evil.corp.test to http://app.corp.test (see
   * test/browser/review-findings.browser.spec.ts).
   */
  it('gives a <script>-loaded JSONP handshake no session: the attacker reads nothing the gateway tells the visitor', async () => {
    t = await createTestApp({ providers: [WhoAmIGateway], auth: { throttle: { addressBurst: 100 } } });
    await t.app.listen(0, '127.0.0.1');
    const { port } = t.app.getHttpServer().address() as AddressInfo;
    await t.users.createUser({ username: 'carol', password: 'correct horse' });
    const cookie = await logIn(t.app, 'carol', 'correct horse');
    const base = `http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`;
    const evil = 'http://evil.corp.test';

    // <script src="…&j=0" referrerpolicy="no-referrer">: the cookie, nothing saying where it came from.
    const script = async (query: string): Promise<string> => {
      const text = await (await fetch(`${base}${query}&j=0`, { headers: { cookie, accept: '*/*' } })).text();
      const call = /^___eio\[0\]\((.*)\);$/s.exec(text);
      return call ? (JSON.parse(call[1]) as string) : '';
    };
    // fetch(…, { mode: 'no-cors', method: 'POST' }): a simple request, needs no preflight.
    const post = (sid: string, packet: string) =>
      fetch(`${base}&sid=${sid}&j=0`, {
        method: 'POST',
        headers: { cookie, origin: evil, 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' },
        body: new URLSearchParams({ d: packet }).toString(),
      });

    const handshake = await script('');
    // Refusing the JSONP handshake outright is a fix too; serving it, it must be anonymous.
    if (!handshake.startsWith('0{')) return;
    const { sid } = JSON.parse(handshake.slice(1)) as { sid: string };
    await post(sid, '40');
    expect(await script(`&sid=${sid}`)).toMatch(/^40/);
    await post(sid, '42["whoami",{}]');
    expect(await script(`&sid=${sid}`)).toBe('42["whoami","anonymous"]');
  });
});

describe('review: linkExistingUsers and accounts another outside source made', () => {
  let t: TestApp;
  let external: ExternalUsers;
  beforeEach(async () => {
    t = await createTestApp();
    external = t.app.get(ExternalUsers);
  });
  afterEach(() => t.close());

  const identities = () => t.users.dataSource.getRepository(ExternalIdentity).find({ order: { id: 'ASC' } });

  /*
   * The attacker picks a name at a source where people choose their own (an OpenID provider with
   * usernameClaim: 'preferred_username', a partner's SSO proxy) before the victim's first login
   * through the app's directory, which links existing accounts: with `true`, or with the
   * README's upgrade function `(user) => !isPasswordUsable(user.password) && !user.isSuperuser`
   * ("accounts with no usable password were made by an outside source"). The account the
   * attacker's source made has no usable password and is linked to that source only, so the
   * directory links its person into it: both now log into one account, and whatever the
   * directory grants the victim (mirrored groups, the email its password resets go to) the
   * attacker has too.
   */
  it.each([
    ['true', true],
    ['the README’s upgrade function', (user: any) => !isPasswordUsable(user.password) && !user.isSuperuser],
  ] as const)('a directory login with linkExistingUsers %s never lands in an account the attacker’s source made', async (_name, policy) => {
    const attackers = await external.find({ source: 'PartnerOidc', subject: 'attacker-sub', username: 'jdoe', createUsers: true, whenNameTaken: 'rename' });
    const attacker = await external.save(attackers!);

    const query: ExternalUserQuery = { source: 'CorpLdap', subject: 'jdoe-entry-uuid', username: 'jdoe', createUsers: true, linkExistingUsers: policy, whenNameTaken: 'refuse' };
    const found = await external.find(query);
    const victim = found ? await external.save(found) : null;

    expect(victim?.id).not.toBe(attacker.id);
    // The attacker's account stays linked to the attacker's source alone.
    expect((await identities()).filter((row) => row.userId === String(attacker.id)).map((row) => row.source)).toEqual(['PartnerOidc']);
  });
});

describe('review: two first logins of one directory person at once', () => {
  let t: TestApp;
  afterEach(() => t.close());

  /*
   * save() writes the new user, then its link: a second first login of the same person (a
   * double-clicked login button, two tabs) whose find() falls between the two sees an account
   * of that name with no link, which a source that refuses namesakes (LDAP, remote users)
   * refuses: the person is told "wrong password" (LdapBackend's PermissionDenied, counted as a
   * failure by the throttle). The window is held open here the way a slow database holds it.
   */
  it('never refuses the person whose own first login is still being saved', async () => {
    t = await createTestApp();
    const external = t.app.get(ExternalUsers);
    const links = t.users.dataSource.getRepository(ExternalIdentity);
    const query: ExternalUserQuery = { source: 'CorpLdap', subject: 'dana-entry-uuid', username: 'dana', createUsers: true, whenNameTaken: 'refuse' };
    const insert = links.insert.bind(links);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    jest.spyOn(links, 'insert').mockImplementation(async (...args: Parameters<typeof links.insert>) => {
      // The first login's link is written late; every other insert goes straight through.
      if (calls++ === 0) await held;
      return insert(...args);
    });
    let userSaved!: () => void;
    const saved = new Promise<void>((resolve) => (userSaved = resolve));
    const save = t.users.repository.save.bind(t.users.repository);
    jest.spyOn(t.users.repository, 'save').mockImplementation(async (...args: any[]) => {
      const result = await (save as any)(...args);
      userSaved();
      return result;
    });

    const first = (async () => external.save((await external.find(query))!))();
    // (A save that no longer goes through these two calls has no such window: go on regardless.)
    await Promise.race([saved, new Promise((resolve) => setTimeout(resolve, 500))]);
    const second = external.find(query);
    setTimeout(release, 100);
    const [user, found] = await Promise.all([first, second]);
    expect(found?.user.id).toBe(user.id);
  });
});
