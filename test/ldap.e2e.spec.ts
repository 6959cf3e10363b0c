import 'reflect-metadata';
import { Injectable, Logger } from '@nestjs/common';
import { jest } from '@jest/globals';
import request from 'supertest';
import {
  ImproperlyConfigured,
  ModelBackend,
  PermissionChecker,
  PermissionManager,
  UserManager,
  type AuthModuleOptions,
} from 'nestjs-session-auth';
import { DirectoryUnavailable, LdapBackend, type LdapBackendOptions, type LdapPopulateContext } from 'nestjs-session-auth/ldap';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { describeIf, slapdAvailable } from './support/services.js';
import { BASE_DN, GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from './support/slapd.js';
import { createTestApp, PagesController, type TestApp } from './support/test-app.js';

/**
 * LdapBackend against a real OpenLDAP (Debian's slapd on a loopback port, its own config and
 * database, the fixtures in `support/slapd.ts`), after django-auth-ldap's tests: direct bind and
 * search + bind, wrong and empty passwords, unknown users, filter injection, group types, nested
 * groups, flags and mirroring across logins, required and denied groups, a directory that is
 * down or hangs, and a chain where ModelBackend follows.
 */

const DANA = `uid=dana,${PEOPLE}`;
const STAFF = `cn=staff,${GROUPS}`;
const EVERYONE = `cn=everyone,${GROUPS}`;
const BANNED = `cn=banned,${GROUPS}`;
const EDITORS = `cn=editors,${GROUPS}`;
const DEVELOPERS = `cn=developers,${GROUPS}`;

describeIf(slapdAvailable())('LdapBackend against a real slapd', () => {
  let slapd: Slapd;
  let t: TestApp | undefined;

  beforeAll(async () => {
    slapd = await startSlapd();
  });
  afterAll(() => slapd?.close());
  afterEach(async () => {
    await t?.close();
    t = undefined;
    slapd.unpause();
    await slapd.resume();
  });

  const direct = (): LdapBackendOptions => ({ url: slapd.url, userDnTemplate: `uid=%(user)s,${PEOPLE}` });
  const search = (): LdapBackendOptions => ({
    url: slapd.url,
    bindDn: SERVICE_DN,
    bindPassword: SERVICE_PASSWORD,
    userSearch: { base: PEOPLE, filter: '(uid=%(user)s)' },
  });
  const groupsOfNames = { base: GROUPS, type: 'groupOfNames' as const };

  async function boot(ldap: LdapBackendOptions | ReturnType<typeof LdapBackend.configure>, auth: Partial<AuthModuleOptions> = {}): Promise<TestApp> {
    const backend = typeof ldap === 'function' ? ldap : LdapBackend.configure(ldap);
    t = await createTestApp({ auth: { backends: [backend, ModelBackend], throttle: { addressBurst: 100 }, ...auth } });
    return t;
  }

  const login = (username: string, password: string) => t!.auth.authenticate<any>(undefined, { username, password });

  describe('finding and checking the user', () => {
    it('binds directly with a DN template, creates the local user with an unusable password and the mapped fields', async () => {
      await boot({ ...direct(), userAttrMap: { email: 'mail', firstName: 'givenName', lastName: 'sn' } });
      const user = await login('dana', 'daylight');
      expect(user).toMatchObject({ username: 'dana', email: 'dana@example.com', firstName: 'Dana', lastName: 'Scully', backend: 'LdapBackend' });
      const stored = (await t!.users.findByUsername('dana'))!;
      expect(isPasswordUsable(stored.password)).toBe(false);
      expect(stored.email).toBe('dana@example.com');
    });

    it('searches for the user as the service account, then binds as them, a name that needs escaping included', async () => {
      await boot(search());
      expect(await login('dana', 'daylight')).toMatchObject({ username: 'dana' });
      expect(await login('o(brien)*', 'transporter')).toMatchObject({ username: 'o(brien)*' });
    });

    it('names the local user as the directory spells the name, whatever case was typed', async () => {
      await boot(search());
      const first = await login('DANA', 'daylight');
      expect(first).toMatchObject({ username: 'dana' });
      expect(await login('Dana', 'daylight')).toMatchObject({ id: first.id, username: 'dana' });
      await t!.close();
      await boot(direct());
      expect(await login('DaNa', 'daylight')).toMatchObject({ username: 'dana' });
      expect(await t!.users.repository.count()).toBe(1);
    });

    it('logs in through HTTP: the session names the backend and later requests load the user locally', async () => {
      await boot(direct());
      const agent = request.agent(t!.app.getHttpServer());
      await agent.post('/login').send({ username: 'dana', password: 'daylight' }).expect(200);
      await slapd.stop();
      // The directory is down, the logged-in user is not: requests never ask it.
      expect((await agent.get('/me').expect(200)).body).toEqual({ username: 'dana', backend: 'LdapBackend' });
    });

    for (const [mode, options] of [['direct bind', direct], ['search and bind', search]] as const) {
      it(`refuses a wrong password, an unknown user and an empty password (${mode})`, async () => {
        await boot(options());
        expect(await login('dana', 'nightfall')).toBeNull();
        expect(await login('nobody', 'daylight')).toBeNull();
        // An empty password is an unauthenticated bind, which slapd accepts: never a login.
        expect(await login('dana', '')).toBeNull();
        expect(await t!.users.findByUsername('dana')).toBeNull();
      });

      it(`cannot be tricked by filter or DN syntax in the username (${mode})`, async () => {
        await boot(options());
        for (const username of ['*', 'dana*', ')(uid=*', '*)(uid=*))(|(uid=*', 'dana)(|(uid=*', 'dana\0', 'uid=dana', 'dana,ou=people', ' dana', 'd\\61na']) {
          expect(await login(username, 'daylight')).toBeNull();
        }
        // `o(brien)*` is a real name: its password opens it and nothing else.
        expect(await login('o(brien)*', 'daylight')).toBeNull();
        expect(await login('o*', 'transporter')).toBeNull();
        expect(await t!.users.repository.count()).toBe(0);
      });
    }

    it('answers malformed credentials with no user and no directory work', async () => {
      await boot(direct());
      await slapd.stop();
      for (const credentials of [{}, { username: 'dana' }, { username: ['dana'], password: 'daylight' }, { username: 'dana', password: { $ne: '' } }, { username: 'x'.repeat(151), password: 'daylight' }]) {
        expect(await t!.auth.authenticate(undefined, credentials)).toBeNull();
      }
    });
  });

  describe('the chain with ModelBackend after it', () => {
    const withServiceAccount = [
      ['search and bind', () => search()],
      ['direct bind', () => ({ ...direct(), bindDn: SERVICE_DN, bindPassword: SERVICE_PASSWORD })],
    ] as const;
    it.each(withServiceAccount)('lets a local-only user in through ModelBackend, but never a directory user’s name with another password (%s)', async (_mode, options) => {
      await boot(options());
      await t!.users.createUser({ username: 'zoe', password: 'local secret' });
      // A local row for a directory user, with a password of its own (made before LDAP was wired).
      await t!.users.createUser({ username: 'dana', password: 'local secret' });
      expect(await login('zoe', 'local secret')).toMatchObject({ username: 'zoe', backend: 'ModelBackend' });
      expect(await login('dana', 'local secret')).toBeNull();
      expect(await login('dana', 'daylight')).toMatchObject({ username: 'dana', backend: 'LdapBackend' });
    });

    it('answers 503 (with Retry-After) when the directory is down, for every name, instead of asking the next backend', async () => {
      await boot(direct(), { views: true });
      await t!.users.createUser({ username: 'zoe', password: 'local secret' });
      await slapd.stop();
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        await expect(login('zoe', 'local secret')).rejects.toThrow(DirectoryUnavailable);
        const server = t!.app.getHttpServer();
        const response = await request(server).post('/login').send({ username: 'dana', password: 'daylight' }).expect(503);
        expect(response.headers['retry-after']).toBe('30');
        expect(response.body.message).toMatch(/directory is unavailable/);
        // The built-in login view: a browser gets the 503 too, never "wrong password".
        const agent = request.agent(server);
        const page = await agent.get('/accounts/login').set('Accept', 'text/html').expect(200);
        const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
        const answer = await agent.post('/accounts/login').set('Accept', 'text/html').type('form').send({ username: 'dana', password: 'daylight', csrfmiddlewaretoken: token });
        expect(answer.status).toBe(503);
        expect(answer.text).not.toContain('Please enter a correct username and password');
        expect(errors).toHaveBeenCalledWith(expect.stringMatching(/directory could not be asked/));
      } finally {
        errors.mockRestore();
      }
    });

    it('gives up on a directory that hangs after the operation timeout', async () => {
      await boot({ ...direct(), timeout: 400, connectTimeout: 400 });
      slapd.pause();
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        const started = Date.now();
        await expect(login('dana', 'daylight')).rejects.toThrow(DirectoryUnavailable);
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        errors.mockRestore();
      }
    });

    it('tries the next server when one cannot be reached', async () => {
      await boot({ ...direct(), url: ['ldap://127.0.0.1:1', slapd.url] });
      expect(await login('dana', 'daylight')).toMatchObject({ username: 'dana' });
    });

    it('treats a service account the directory refuses as the directory being unavailable', async () => {
      await boot({ ...search(), bindPassword: 'wrong' });
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        await expect(login('dana', 'daylight')).rejects.toThrow(DirectoryUnavailable);
        expect(errors).toHaveBeenCalledWith(expect.stringMatching(/refused the service account/));
      } finally {
        errors.mockRestore();
      }
    });
  });

  describe('groups', () => {
    it('sets flags from membership, nested groups included when asked', async () => {
      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, userFlagsByGroup: { isStaff: STAFF, isSuperuser: [EVERYONE] } });
      expect(await login('dana', 'daylight')).toMatchObject({ isStaff: true, isSuperuser: true });
      expect(await login('erin', 'evergreen')).toMatchObject({ isStaff: false, isSuperuser: true });
      expect(await login('gail', 'gardening')).toMatchObject({ isStaff: false, isSuperuser: false });
    });

    it('does not follow nested groups unless asked', async () => {
      await boot({ ...search(), groupSearch: groupsOfNames, userFlagsByGroup: { isSuperuser: EVERYONE } });
      expect(await login('dana', 'daylight')).toMatchObject({ isSuperuser: false });
      expect(await login('erin', 'evergreen')).toMatchObject({ isSuperuser: true });
    });

    it('reads groupOfUniqueNames, posixGroup (memberUid and gidNumber) and the memberOf attribute', async () => {
      await boot({ ...search(), groupSearch: { base: GROUPS, type: 'groupOfUniqueNames' }, userFlagsByGroup: { isStaff: EDITORS } });
      expect(await login('erin', 'evergreen')).toMatchObject({ isStaff: true });
      expect(await login('dana', 'daylight')).toMatchObject({ isStaff: false });
      await t!.close();

      await boot({ ...search(), groupSearch: { base: GROUPS, type: 'posixGroup' }, userFlagsByGroup: { isStaff: DEVELOPERS } });
      expect(await login('dana', 'daylight')).toMatchObject({ isStaff: true });
      expect(await login('gail', 'gardening')).toMatchObject({ isStaff: true });
      expect(await login('erin', 'evergreen')).toMatchObject({ isStaff: false });
      await t!.close();

      await boot({ ...direct(), bindDn: SERVICE_DN, bindPassword: SERVICE_PASSWORD, groupSearch: { type: 'memberOf' }, userFlagsByGroup: { isStaff: STAFF } });
      expect(await login('dana', 'daylight')).toMatchObject({ isStaff: true });
      expect(await login('erin', 'evergreen')).toMatchObject({ isStaff: false });
    });

    it('keeps out members of denyGroup and everyone outside requireGroup, without asking the next backend', async () => {
      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, requireGroup: EVERYONE, denyGroup: BANNED });
      await t!.users.createUser({ username: 'frank', password: 'local secret' });
      expect(await login('dana', 'daylight')).toMatchObject({ username: 'dana' });
      expect(await login('erin', 'evergreen')).toMatchObject({ username: 'erin' });
      expect(await login('gail', 'gardening')).toBeNull();
      expect(await login('frank', 'forgery')).toBeNull();
      expect(await login('frank', 'local secret')).toBeNull();
      expect(await t!.users.findByUsername('gail')).toBeNull();
    });

    it('mirrors the directory’s groups into local groups across logins, as members join and leave', async () => {
      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, mirrorGroups: true });
      const permissions = t!.app.get(PermissionManager);
      const localGroups = async (username: string) =>
        (await permissions.userGroups((await t!.users.findByUsername(username))!)).map((group) => group.name).sort();
      await login('dana', 'daylight');
      expect(await localGroups('dana')).toEqual(['everyone', 'staff']);
      const gail = `uid=gail,${PEOPLE}`;
      try {
        // A groupOfNames needs a member: gail joins staff before dana leaves it.
        await slapd.member(STAFF, 'member', gail);
        await slapd.member(STAFF, 'member', DANA, true);
        await login('dana', 'daylight');
        expect(await localGroups('dana')).toEqual([]);
        await slapd.member(BANNED, 'member', DANA);
        await login('dana', 'daylight');
        expect(await localGroups('dana')).toEqual(['banned']);
        await login('gail', 'gardening');
        expect(await localGroups('gail')).toEqual(['everyone', 'staff']);
      } finally {
        await slapd.member(BANNED, 'member', DANA, true).catch(() => undefined);
        await slapd.member(STAFF, 'member', DANA).catch(() => undefined);
        await slapd.member(STAFF, 'member', gail, true).catch(() => undefined);
      }
      await login('dana', 'daylight');
      expect(await localGroups('dana')).toEqual(['everyone', 'staff']);
    });

    it('mirrors only the groups listed, leaving the user’s other local groups alone', async () => {
      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, mirrorGroups: ['staff'] });
      const permissions = t!.app.get(PermissionManager);
      const dana = (await login('dana', 'daylight'))!;
      await permissions.addUserToGroup(dana, await permissions.createGroup('local-only'));
      await login('dana', 'daylight');
      const names = (await permissions.userGroups(dana)).map((group) => group.name).sort();
      expect(names).toEqual(['local-only', 'staff']);
      expect(await permissions.getGroup('everyone')).toBeNull();
    });

    it('sets isActive from membership: a user outside that group cannot log in, nor through the next backend', async () => {
      await boot({ ...search(), groupSearch: groupsOfNames, userFlagsByGroup: { isActive: STAFF } });
      expect(await login('dana', 'daylight')).toMatchObject({ isActive: true });
      expect(await login('erin', 'evergreen')).toBeNull();
      expect((await t!.users.findByUsername('erin'))!.isActive).toBe(false);
    });

    it('answers permission checks from the groups remembered at login, and asks the directory again once they expire', async () => {
      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, findGroupPerms: true, groupCacheTimeout: 60_000 });
      const permissions = t!.app.get(PermissionManager);
      await permissions.createPermission('reports.view');
      await permissions.createGroup('staff', ['reports.view']);
      const checker = t!.app.get(PermissionChecker);
      const dana = (await login('dana', 'daylight'))!;
      await slapd.stop();
      // Remembered: no directory round trip for a permission check.
      expect(await checker.hasPerm(dana, 'reports.view')).toBe(true);
      await t!.close();

      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, findGroupPerms: true, groupCacheTimeout: 0 });
      const again = t!.app.get(PermissionManager);
      await again.createPermission('reports.view');
      await again.createGroup('staff', ['reports.view']);
      await slapd.resume();
      const fresh = (await login('dana', 'daylight'))!;
      await slapd.stop();
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        // Not remembered, and the directory is down: the check fails closed, never a silent "no groups".
        await expect(t!.app.get(PermissionChecker).hasPerm(fresh, 'reports.view')).rejects.toThrow(DirectoryUnavailable);
      } finally {
        errors.mockRestore();
      }
    });

    it('grants the permissions of local groups named like the directory’s (findGroupPerms)', async () => {
      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, findGroupPerms: true });
      const permissions = t!.app.get(PermissionManager);
      await permissions.createPermission('reports.view');
      await permissions.createGroup('staff', ['reports.view']);
      const checker = t!.app.get(PermissionChecker);
      const dana = (await login('dana', 'daylight'))!;
      const erin = (await login('erin', 'evergreen'))!;
      expect(await checker.hasPerm(dana, 'reports.view')).toBe(true);
      expect(await checker.hasPerm(erin, 'reports.view')).toBe(false);
      // A local user of the same name is not a directory user: nothing from the directory for them.
      const local = await t!.users.createUser({ username: 'staffer', password: 'local secret' });
      expect(await checker.hasPerm(await login('staffer', 'local secret'), 'reports.view')).toBe(false);
      expect(local).toBeDefined();
    });
  });

  describe('keeping the local user', () => {
    it('updates the local copy at each login, or only at creation without alwaysUpdateUser', async () => {
      const options = { ...search(), userAttrMap: { email: 'mail' } };
      await boot(options);
      await login('erin', 'evergreen');
      const changeMail = (mail: string) => slapd.ldap('ldapmodify', `dn: uid=erin,${PEOPLE}\nchangetype: modify\nreplace: mail\nmail: ${mail}\n`);
      try {
        await changeMail('erin@new.example.com');
        expect(await login('erin', 'evergreen')).toMatchObject({ email: 'erin@new.example.com' });
        await t!.close();
        await boot({ ...options, alwaysUpdateUser: false });
        await login('erin', 'evergreen');
        await changeMail('erin@newer.example.com');
        expect(await login('erin', 'evergreen')).toMatchObject({ email: 'erin@new.example.com' });
      } finally {
        await changeMail('erin@example.com');
      }
    });

    it('admits only users who exist here with createUsers: false', async () => {
      await boot({ ...search(), createUsers: false });
      expect(await login('dana', 'daylight')).toBeNull();
      await t!.users.createUser({ username: 'dana', password: null });
      expect(await login('dana', 'daylight')).toMatchObject({ username: 'dana', backend: 'LdapBackend' });
    });

    it('refuses a local user an administrator deactivated, and lets populateUser change the user', async () => {
      const seen: LdapPopulateContext[] = [];
      @Injectable()
      class CompanyLdapBackend extends LdapBackend {
        protected override ldapOptions(): LdapBackendOptions {
          return search();
        }
        protected override populateUser(context: LdapPopulateContext): void {
          seen.push(context);
          context.user.lastName = String(context.ldapUser.attrs.sn).toUpperCase();
        }
      }
      await boot(CompanyLdapBackend);
      expect(await login('dana', 'daylight')).toMatchObject({ lastName: 'SCULLY' });
      expect(seen[0]).toMatchObject({ created: true, ldapUser: { dn: DANA, username: 'dana' } });
      await t!.users.repository.update({ username: 'dana' }, { isActive: false });
      expect(await login('dana', 'daylight')).toBeNull();
    });
  });

  describe('configuration', () => {
    it('refuses options that cannot work, at start-up', async () => {
      const refused: LdapBackendOptions[] = [
        { url: 'http://ldap.example.com', userDnTemplate: `uid=%(user)s,${PEOPLE}` },
        { url: slapd.url } as LdapBackendOptions,
        { url: slapd.url, userDnTemplate: `uid=x,${PEOPLE}` },
        { ...direct(), userSearch: { base: BASE_DN, filter: '(uid=%(user)s)' } },
        { ...direct(), requireGroup: STAFF },
        { ...direct(), bindDn: SERVICE_DN },
        { ...direct(), userAttrMap: { isSuperuser: 'description' } },
        { ...direct(), url: 'ldaps://127.0.0.1:636', startTls: true },
      ];
      for (const options of refused) expect(() => LdapBackend.configure(options)).toThrow(ImproperlyConfigured);
    });
  });
});

describeIf(slapdAvailable())('LdapBackend over TLS', () => {
  let slapd: Slapd;
  let t: TestApp | undefined;

  beforeAll(async () => {
    slapd = await startSlapd({ tls: true });
  });
  afterAll(() => slapd?.close());
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function loginWith(options: Partial<LdapBackendOptions>): Promise<unknown> {
    t = await createTestApp({
      auth: { backends: [LdapBackend.configure({ url: slapd.url, userDnTemplate: `uid=%(user)s,${PEOPLE}`, ...options })] },
      controllers: [PagesController],
    });
    return t.auth.authenticate(undefined, { username: 'dana', password: 'daylight' });
  }

  it('logs in over LDAPS and over StartTLS, trusting the CA given', async () => {
    expect(await loginWith({ url: slapd.ldapsUrl, tlsOptions: { ca: slapd.ca } })).toMatchObject({ username: 'dana' });
    await t!.close();
    t = undefined;
    expect(await loginWith({ startTls: true, tlsOptions: { ca: slapd.ca } })).toMatchObject({ username: 'dana' });
    expect(t!.app.get(UserManager)).toBeDefined();
  });

  it('stays on TLS for the whole conversation without a service account: a wrong password and group lookups included', async () => {
    // The server refuses every operation that is not protected by TLS (security tls=1).
    expect(await loginWith({ startTls: true, tlsOptions: { ca: slapd.ca }, groupSearch: { type: 'memberOf' }, userFlagsByGroup: { isStaff: `cn=staff,${GROUPS}` } })).toMatchObject({
      username: 'dana',
      isStaff: true,
    });
    expect(await t!.auth.authenticate(undefined, { username: 'dana', password: 'wrong' })).toBeNull();
    expect(await t!.auth.authenticate(undefined, { username: 'nobody', password: 'wrong' })).toBeNull();
  });

  it('refuses a server whose certificate no trusted CA signed: the directory is unavailable, the password unchecked', async () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      await expect(loginWith({ url: slapd.ldapsUrl })).rejects.toThrow(DirectoryUnavailable);
      await t!.close();
      t = undefined;
      await expect(loginWith({ startTls: true })).rejects.toThrow(DirectoryUnavailable);
    } finally {
      errors.mockRestore();
    }
  });
});
