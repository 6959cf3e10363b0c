import 'reflect-metadata';
import { Injectable, Logger } from '@nestjs/common';
import { jest } from '@jest/globals';
import request from 'supertest';
import { Client, InsufficientAccessError } from 'ldapts';
import {
  ExternalIdentity,
  ExternalUsers,
  ImproperlyConfigured,
  ModelBackend,
  PermissionManager,
  UserManager,
  type AuthModuleOptions,
} from 'nestjs-session-auth';
import { DirectoryUnavailable, LdapBackend, type LdapBackendOptions, type LdapPopulateContext } from 'nestjs-session-auth/ldap';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { AuthMailer, type AuthMail } from 'nestjs-session-auth/views';
import { describeIf, slapdAvailable } from './support/services.js';
import { BASE_DN, DIRECTORY_ADMIN, GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from './support/slapd.js';
import { createTestApp, PagesController, type TestApp } from './support/test-app.js';

/**
 * LdapBackend against a real OpenLDAP (Debian's slapd on a loopback port, its own config and
 * database, the fixtures in `support/slapd.ts`), after django-auth-ldap's tests: direct bind and
 * search + bind, wrong and empty passwords, unknown users, filter injection, group types, nested
 * groups, flags and mirroring across logins, required and denied groups, a directory that is
 * down or hangs, and a chain where ModelBackend follows; and local accounts the directory did
 * not create, which its entries of the same name never take over.
 */

const DANA = `uid=dana,${PEOPLE}`;
const STAFF = `cn=staff,${GROUPS}`;
const EVERYONE = `cn=everyone,${GROUPS}`;
const BANNED = `cn=banned,${GROUPS}`;
const EDITORS = `cn=editors,${GROUPS}`;
const DEVELOPERS = `cn=developers,${GROUPS}`;
const HTML = 'text/html,application/xhtml+xml';

/** The password reset mails the app sends, for the tests to read. */
const outbox: AuthMail[] = [];
@Injectable()
class RecordingMailer extends AuthMailer {
  send(mail: AuthMail): void {
    outbox.push(mail);
  }
}

/** Every warning a Nest logger writes while `work` runs. */
async function warningsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const warnings: string[] = [];
  const spy = jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return warnings;
}

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
    const modes = [
      ['search and bind', () => search()],
      ['direct bind', () => ({ ...direct(), bindDn: SERVICE_DN, bindPassword: SERVICE_PASSWORD })],
      ['direct bind without a service account', () => direct()],
    ] as const;
    it.each(modes)('lets a local-only user in through ModelBackend, but never a directory user with a password kept here (%s)', async (_mode, options) => {
      await boot(options());
      await t!.users.createUser({ username: 'zoe', password: 'local secret' });
      const dana = await login('dana', 'daylight');
      // A password set here for the directory's user (by an administrator, a script): never a way in.
      await t!.users.setPassword(dana, 'local secret');
      await t!.users.savePassword(dana);
      expect(await login('zoe', 'local secret')).toMatchObject({ username: 'zoe', backend: 'ModelBackend' });
      expect(await login('dana', 'local secret')).toBeNull();
      expect(await login('dana', 'daylight')).toMatchObject({ id: dana.id, backend: 'LdapBackend' });
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
      // ModelBackend would take this password for the local frank: it is never asked.
      await t!.users.createUser({ username: 'frank', password: 'forgery' });
      expect(await login('dana', 'daylight')).toMatchObject({ username: 'dana' });
      expect(await login('erin', 'evergreen')).toMatchObject({ username: 'erin' });
      expect(await login('gail', 'gardening')).toBeNull();
      expect(await login('frank', 'forgery')).toBeNull();
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
      const checker = t!.auth;
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
        await expect(t!.auth.hasPerm(fresh, 'reports.view')).rejects.toThrow(DirectoryUnavailable);
      } finally {
        errors.mockRestore();
      }
    });

    it('grants the permissions of local groups named like the directory’s (findGroupPerms)', async () => {
      await boot({ ...search(), groupSearch: { ...groupsOfNames, nested: true }, findGroupPerms: true });
      const permissions = t!.app.get(PermissionManager);
      await permissions.createPermission('reports.view');
      await permissions.createGroup('staff', ['reports.view']);
      const checker = t!.auth;
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

    it('admits only users it may link with createUsers: false, creating nobody', async () => {
      await boot({ ...search(), createUsers: false, linkExistingUsers: true });
      expect(await login('dana', 'daylight')).toBeNull();
      expect(await t!.users.repository.count()).toBe(0);
      const dana = await t!.users.createUser({ username: 'dana', password: null });
      expect(await login('dana', 'daylight')).toMatchObject({ id: dana.id, backend: 'LdapBackend' });
      await t!.close();

      // Without linkExistingUsers, an account made here is not the directory's to log into.
      await boot({ ...search(), createUsers: false });
      await t!.users.createUser({ username: 'dana', password: null });
      expect(await login('dana', 'daylight')).toBeNull();
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

  describe('local accounts the directory did not create', () => {
    const LOCAL_ADMIN = { username: 'admin', password: 'local admin password', email: 'admin@example.com' };
    const identities = () => t!.users.dataSource.getRepository(ExternalIdentity).find({ order: { id: 'ASC' } });
    const ldif = (text: string) => slapd.ldap('ldapmodify', text);
    const rename = (from: string, to: string) => ldif(`dn: uid=${from},${PEOPLE}\nchangetype: modrdn\nnewrdn: uid=${to}\ndeleteoldrdn: 1\n`);

    /** Ask for a reset link for `email` through the built-in view, and let the mail (sent after the answer) go out. */
    async function requestReset(email: string): Promise<void> {
      const browser = request.agent(t!.app.getHttpServer());
      const page = await browser.get('/accounts/password_reset').set('Accept', HTML).expect(200);
      const token = /name="csrfmiddlewaretoken" value="([0-9a-f]+)"/.exec(page.text)![1];
      await browser.post('/accounts/password_reset').type('form').send({ email, csrfmiddlewaretoken: token }).expect(302);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    it('never logs an entry into the local superuser of the same name: 401, the account untouched, its password resets still its own', async () => {
      await boot({ ...direct(), userAttrMap: { email: 'mail', firstName: 'givenName' } }, { views: true, mailer: RecordingMailer });
      const admin = await t!.users.createSuperuser(LOCAL_ADMIN);
      const server = t!.app.getHttpServer();
      const warnings = await warningsDuring(async () => {
        const response = await request(server).post('/login').send({ username: DIRECTORY_ADMIN.uid, password: DIRECTORY_ADMIN.password }).expect(401);
        expect(response.headers['set-cookie'] ?? []).not.toContainEqual(expect.stringMatching(/^sessionid=[^;]/));
      });
      // Logged, so an administrator can see why and link the account if it really is that person's.
      expect(warnings).toContainEqual(expect.stringMatching(/'admin' is a local account that LdapBackend did not create/));
      const after = (await t!.users.findByUsername('admin'))!;
      expect(after).toMatchObject({ id: admin.id, email: LOCAL_ADMIN.email, firstName: '', password: admin.password, isSuperuser: true, isStaff: true, isActive: true });
      expect(await identities()).toEqual([]);

      outbox.length = 0;
      await requestReset(LOCAL_ADMIN.email);
      await requestReset(DIRECTORY_ADMIN.mail);
      expect(outbox.map((mail) => mail.to)).toEqual([LOCAL_ADMIN.email]);
      // The local administrator still logs in with the local password, through the next backend.
      await request(server).post('/login').send({ username: 'admin', password: LOCAL_ADMIN.password }).expect(200, { username: 'admin' });
    });

    it('keeps the same local user when the entry is renamed, and gives the freed name’s next owner a user of their own', async () => {
      await boot({ ...search(), userAttrMap: { email: 'mail' } });
      const dana = await login('dana', 'daylight');
      const newcomer = `dn: uid=dana,${PEOPLE}\nobjectClass: inetOrgPerson\nuid: dana\ncn: Dana Newcomer\nsn: Newcomer\nmail: newcomer@example.com\nuserPassword: newcomer\n`;
      await rename('dana', 'dana.scully');
      try {
        const renamed = await login('dana.scully', 'daylight');
        expect(renamed).toMatchObject({ id: dana.id, username: 'dana.scully', email: 'dana@example.com' });
        await slapd.ldap('ldapadd', newcomer);
        const other = await login('dana', 'newcomer');
        expect(other).toMatchObject({ username: 'dana', email: 'newcomer@example.com' });
        expect(other.id).not.toBe(dana.id);
        expect(await login('dana.scully', 'daylight')).toMatchObject({ id: dana.id });
      } finally {
        await ldif(`dn: uid=dana,${PEOPLE}\nchangetype: delete\n`).catch(() => undefined);
        await rename('dana.scully', 'dana');
      }
    });

    it('keeps the name of a renamed entry’s user when another local account holds the new name', async () => {
      await boot(search());
      const erin = await login('erin', 'evergreen');
      const local = await t!.users.createUser({ username: 'erin.b', password: 'local secret' });
      await rename('erin', 'erin.b');
      try {
        expect(await login('erin.b', 'evergreen')).toMatchObject({ id: erin.id, username: 'erin' });
        expect(await login('erin.b', 'local secret')).toMatchObject({ id: local.id, backend: 'ModelBackend' });
      } finally {
        await rename('erin.b', 'erin');
      }
    });

    it('never answers permission checks with the groups of the entry that took a renamed user’s old name', async () => {
      await boot({ ...search(), groupSearch: groupsOfNames, findGroupPerms: true, groupCacheTimeout: 0 });
      const permissions = t!.app.get(PermissionManager);
      await permissions.createPermission('reports.view');
      await permissions.createGroup('staff', ['reports.view']);
      const gail = await login('gail', 'gardening');
      // gail's entry is renamed; the staff group's new member is given her old name.
      await rename('gail', 'gail.peck');
      await slapd.ldap('ldapadd', `dn: uid=gail,${PEOPLE}\nobjectClass: inetOrgPerson\nuid: gail\ncn: Gail Other\nsn: Other\nuserPassword: other\n`);
      await slapd.member(STAFF, 'member', `uid=gail,${PEOPLE}`);
      try {
        expect(await t!.auth.hasPerm(gail, 'reports.view')).toBe(false);
      } finally {
        await slapd.member(STAFF, 'member', `uid=gail,${PEOPLE}`, true).catch(() => undefined);
        await ldif(`dn: uid=gail,${PEOPLE}\nchangetype: delete\n`).catch(() => undefined);
        await rename('gail.peck', 'gail');
      }
    });

    it('links a plain account of the same name with linkExistingUsers: true, never a staff or superuser one', async () => {
      await boot({ ...search(), userAttrMap: { email: 'mail' }, linkExistingUsers: true });
      const erin = await t!.users.createUser({ username: 'erin', password: 'local secret', email: 'erin@old.example' });
      const dana = await t!.users.createUser({ username: 'dana', password: 'local secret', isStaff: true });
      const admin = await t!.users.createSuperuser(LOCAL_ADMIN);
      expect(await login('erin', 'evergreen')).toMatchObject({ id: erin.id, email: 'erin@example.com', backend: 'LdapBackend' });
      expect(await login('dana', 'daylight')).toBeNull();
      expect(await login(DIRECTORY_ADMIN.uid, DIRECTORY_ADMIN.password)).toBeNull();
      expect(await t!.users.findById(String(dana.id))).toMatchObject({ password: dana.password, isStaff: true });
      expect(await t!.users.findById(String(admin.id))).toMatchObject({ email: LOCAL_ADMIN.email, password: admin.password });
      expect((await identities()).map((row) => row.userId)).toEqual([String(erin.id)]);
    });

    it('links a staff account when a function says so', async () => {
      const asked: string[] = [];
      await boot({ ...search(), linkExistingUsers: (user) => (asked.push(user.username), user.username === 'dana') });
      const dana = await t!.users.createUser({ username: 'dana', password: null, isStaff: true });
      await t!.users.createUser({ username: 'erin', password: null });
      expect(await login('dana', 'daylight')).toMatchObject({ id: dana.id, backend: 'LdapBackend' });
      expect(await login('erin', 'evergreen')).toBeNull();
      expect(asked).toEqual(['dana', 'erin']);
    });
  });

  describe('the identity of an entry', () => {
    const subjects = async () => (await t!.users.dataSource.getRepository(ExternalIdentity).find()).map((row) => row.subject);

    it('links by entryUUID, read by name as an operational attribute', async () => {
      await boot(direct());
      const dana = await login('dana', 'daylight');
      const [subject] = await subjects();
      expect(subject).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(await t!.app.get(ExternalUsers).linkedUser('LdapBackend', subject)).toMatchObject({ id: dana.id });
    });

    it('reads a binary identity attribute as bytes, in hex (Active Directory’s objectGUID is one)', async () => {
      const guid = Buffer.from('e004253f894fd3119a0c0305e82c3301', 'hex');
      await slapd.ldap('ldapmodify', `dn: uid=gail,${PEOPLE}\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:: ${guid.toString('base64')}\n`);
      try {
        await boot({ ...search(), identityAttr: 'jpegPhoto' });
        await login('gail', 'gardening');
        expect(await subjects()).toEqual([guid.toString('hex')]);
      } finally {
        await slapd.ldap('ldapmodify', `dn: uid=gail,${PEOPLE}\nchangetype: modify\ndelete: jpegPhoto\n`);
      }
    });

    it('links by the normalized DN with identityAttr: dn', async () => {
      await boot({ ...direct(), identityAttr: 'dn' });
      await login('DANA', 'daylight');
      expect(await subjects()).toEqual([DANA]);
    });

    it('logs nobody in whose entry lacks the identity attribute: unavailable, and logged with the fix', async () => {
      await boot({ ...search(), identityAttr: 'employeeNumber' });
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        await expect(login('dana', 'daylight')).rejects.toThrow(DirectoryUnavailable);
        expect(errors).toHaveBeenCalledWith(expect.stringMatching(/has no usable employeeNumber .* Set identityAttr/));
      } finally {
        errors.mockRestore();
      }
      expect(await t!.users.repository.count()).toBe(0);
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
        { ...direct(), identityAttr: 'entryUUID)(x=*' },
        { ...direct(), linkExistingUsers: 'yes' as unknown as boolean },
      ];
      for (const options of refused) expect(() => LdapBackend.configure(options)).toThrow(ImproperlyConfigured);
    });
  });
});

describeIf(slapdAvailable())('LdapBackend against a directory that hides its entries from anonymous clients', () => {
  let slapd: Slapd;
  let t: TestApp | undefined;

  beforeAll(async () => {
    // Anonymous clients may bind; reading an entry is "insufficient access" (not "no such object").
    slapd = await startSlapd({ anonymous: 'auth' });
  });
  afterAll(() => slapd?.close());
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await slapd.resume();
  });

  async function boot(): Promise<TestApp> {
    t = await createTestApp({ auth: { backends: [LdapBackend.configure({ url: slapd.url, userDnTemplate: `uid=%(user)s,${PEOPLE}` }), ModelBackend] } });
    return t;
  }

  it('really answers anonymous readers "insufficient access"', async () => {
    const client = new Client({ url: slapd.url });
    try {
      await expect(client.search(DANA, { scope: 'base' })).rejects.toThrow(InsufficientAccessError);
    } finally {
      await client.unbind();
    }
  });

  it('answers a wrong password without a service account as a wrong password: 401 and the next backend asked, never 503', async () => {
    await boot();
    const server = t!.app.getHttpServer();
    // A local account named like the entry, made here: the next backend's to check.
    await t!.users.createUser({ username: 'dana', password: 'local secret' });
    const wrong = await request(server).post('/login').send({ username: 'dana', password: 'nightfall' });
    expect(wrong.status).toBe(401);
    await request(server).post('/login').send({ username: 'dana', password: 'local secret' }).expect(200, { username: 'dana' });
    await request(server).post('/login').send({ username: 'nobody', password: 'nightfall' }).expect(401);
  });

  it('logs a directory user in, reading the entry as that user', async () => {
    await boot();
    expect(await t!.auth.authenticate(undefined, { username: 'erin', password: 'evergreen' })).toMatchObject({ username: 'erin', backend: 'LdapBackend' });
  });

  it('still answers 503 when it is down', async () => {
    await boot();
    await slapd.stop();
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      const response = await request(t!.app.getHttpServer()).post('/login').send({ username: 'dana', password: 'nightfall' }).expect(503);
      expect(response.headers['retry-after']).toBe('30');
    } finally {
      errors.mockRestore();
    }
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
