import { ExternalIdentity, ExternalUsers, type ExternalUserQuery } from 'nestjs-session-auth';
import { isPasswordUsable } from 'nestjs-session-auth/passwords';
import { jest } from '@jest/globals';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * Local users of outside sources are linked to the person by the source's stable id, never by a
 * matching name: what LDAP, OpenID Connect and remote-user logins rely on.
 */
describe('ExternalUsers: a local user per person of a source, never an account of the same name', () => {
  let t: TestApp;
  let external: ExternalUsers;
  const query = (overrides: Partial<ExternalUserQuery> = {}): ExternalUserQuery => ({
    source: 'Directory',
    subject: 'b7c1-entry-uuid',
    username: 'admin',
    createUsers: true,
    whenNameTaken: 'refuse',
    ...overrides,
  });
  const identities = () => t.users.dataSource.getRepository(ExternalIdentity).find({ order: { id: 'ASC' } });

  beforeEach(async () => {
    t = await createTestApp();
    external = t.app.get(ExternalUsers);
  });
  afterEach(() => t.close());

  it('creates the user at the first login with an unusable password, links it, and finds it by the link afterwards', async () => {
    const found = await external.find(query({ username: 'dana' }));
    expect(found?.created).toBe(true);
    const user = await external.save(found!);
    expect(isPasswordUsable(user.password)).toBe(false);
    expect(await identities()).toEqual([expect.objectContaining({ source: 'Directory', subject: 'b7c1-entry-uuid', userId: String(user.id) })]);

    // Renamed at the source: the link, not the name, says who it is.
    const again = await external.find(query({ username: 'dana.smith' }));
    expect(again?.created).toBe(false);
    expect(again?.user.id).toBe(user.id);
  });

  it('refuses a login whose name belongs to a local account the source did not create, and leaves the account untouched', async () => {
    const admin = await t.users.createSuperuser({ username: 'admin', password: 'local admin password', email: 'admin@example.com' });
    expect(await external.find(query())).toBeNull();
    const after = await t.users.findByUsername('admin');
    expect(after).toEqual(expect.objectContaining({ id: admin.id, email: 'admin@example.com', password: admin.password, isSuperuser: true }));
    expect(await identities()).toEqual([]);
  });

  it('gives a new user a free name when the source renames (OIDC), the namesake untouched', async () => {
    const local = await t.users.createUser({ username: 'fiona@example.com', password: 'local password' });
    const found = await external.find(query({ username: 'fiona@example.com', whenNameTaken: 'rename' }));
    const user = await external.save(found!);
    expect(user.id).not.toBe(local.id);
    expect(user.username).toMatch(/^fiona@example\.com-[0-9a-f]{12}$/);
    expect((await t.users.findById(String(local.id)))?.password).toBe(local.password);
  });

  it('admits no new user without createUsers', async () => {
    expect(await external.find(query({ username: 'nobody', createUsers: false }))).toBeNull();
  });

  it('links an existing plain account with linkExistingUsers: true, never a staff or superuser account', async () => {
    const plain = await t.users.createUser({ username: 'erin', password: 'local password' });
    await t.users.createUser({ username: 'sam', password: 'local password', isStaff: true });
    await t.users.createSuperuser({ username: 'admin', password: 'local password' });

    const erin = await external.find(query({ username: 'erin', subject: 'erin-uuid', linkExistingUsers: true }));
    expect(erin?.user.id).toBe(plain.id);
    await external.save(erin!);
    expect(await external.find(query({ username: 'sam', subject: 'sam-uuid', linkExistingUsers: true }))).toBeNull();
    expect(await external.find(query({ username: 'admin', subject: 'admin-uuid', linkExistingUsers: true }))).toBeNull();
    expect((await identities()).map((row) => row.subject)).toEqual(['erin-uuid']);
  });

  it('links a staff account only when a function says so', async () => {
    const sam = await t.users.createUser({ username: 'sam', password: 'local password', isStaff: true });
    const asked: string[] = [];
    const decide = (user: any) => (asked.push(user.username), user.username === 'sam');
    const found = await external.find(query({ username: 'sam', subject: 'sam-uuid', linkExistingUsers: decide }));
    expect(asked).toEqual(['sam']);
    expect((await external.save(found!)).id).toBe(sam.id);
  });

  it('never links by name an account that belongs to another person of the same source, whatever linkExistingUsers says', async () => {
    // dana's entry was renamed (or deleted) at the source, and a newcomer there got the name.
    const dana = await external.save((await external.find(query({ username: 'dana', subject: 'dana-uuid' })))!);
    for (const linkExistingUsers of [true, () => true]) {
      expect(await external.find(query({ username: 'dana', subject: 'newcomer-uuid', linkExistingUsers }))).toBeNull();
    }
    expect(await external.isLinked(dana, 'Directory')).toBe(true);
    expect((await identities()).map((row) => row.subject)).toEqual(['dana-uuid']);
    // Nor may another source link it by name: it belongs to dana, whoever the name suits there.
    expect(await external.find(query({ source: 'Proxy', username: 'dana', subject: 'dana', linkExistingUsers: true }))).toBeNull();
    // The app can link her other login explicitly.
    await external.link(dana, 'Proxy', 'dana');
    expect((await external.linkedUser('Proxy', 'dana'))?.id).toBe(dana.id);
  });

  it('makes exactly one user when two first logins of the same person run at once', async () => {
    const [first, second] = await Promise.all([external.find(query({ username: 'gina' })), external.find(query({ username: 'gina' }))]);
    expect(first?.created && second?.created).toBe(true);
    const [a, b] = await Promise.all([external.save(first!), external.save(second!)]);
    expect(a.id).toBe(b.id);
    expect(await t.users.repository.count()).toBe(1);
    expect(await identities()).toHaveLength(1);
  });

  it('links a new user when the linked one was deleted', async () => {
    const first = await external.save((await external.find(query({ username: 'hana' })))!);
    await t.users.repository.remove(first);
    const found = await external.find(query({ username: 'hana' }));
    expect(found?.created).toBe(true);
    const second = await external.save(found!);
    expect(await identities()).toEqual([expect.objectContaining({ userId: String(second.id) })]);
  });
});

describe('ExternalUsers: linkExistingUsers and accounts another outside source made', () => {
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

describe('ExternalUsers: two first logins of one directory person at once', () => {
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
