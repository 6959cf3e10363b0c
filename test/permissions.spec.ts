import { Injectable } from '@nestjs/common';
import {
  AnonymousUser,
  BaseBackend,
  ModelBackend,
  PermissionDenied,
  PermissionManager,
  User,
  type AuthBackend,
} from 'nestjs-session-auth';
import { createTestApp, type TestApp } from './support/test-app.js';

/** Grants 'blog.change_post' on a post object to its author only: object-level permissions. */
@Injectable()
class AuthorBackend extends BaseBackend {
  authenticate() {
    return null;
  }
  getUser() {
    return null;
  }
  override async hasPerm(user: any, perm: string, obj?: any) {
    return perm === 'blog.change_post' && obj?.authorId !== undefined && obj.authorId === user.id;
  }
}

/** Implements only getAllPermissions, as a directory-backed backend might. */
@Injectable()
class DirectoryPermissionsBackend implements AuthBackend {
  authenticate() {
    return null;
  }
  getUser() {
    return null;
  }
  getAllPermissions(user: any) {
    return new Set(user.username === 'carol' ? ['wiki.edit_page'] : []);
  }
}

/** Vetoes every permission of users named 'mallory', whatever later backends say. */
@Injectable()
class VetoBackend implements AuthBackend {
  authenticate() {
    return null;
  }
  getUser() {
    return null;
  }
  hasPerm(user: any) {
    if (user.username === 'mallory') throw new PermissionDenied();
    return false;
  }
  getAllPermissions(user: any): Set<string> {
    if (user.username === 'mallory') throw new PermissionDenied();
    return new Set();
  }
}

/** Grants everybody, anonymous visitors included, 'blog.view_post'. */
@Injectable()
class PublicReadBackend implements AuthBackend {
  authenticate() {
    return null;
  }
  getUser() {
    return null;
  }
  hasPerm(_user: any, perm: string) {
    return perm === 'blog.view_post';
  }
}

describe('permissions', () => {
  let t: TestApp;
  let perms: PermissionManager;

  afterEach(() => t.close());

  async function start(backends: any[] = [ModelBackend]) {
    t = await createTestApp({ auth: { backends } });
    perms = t.app.get(PermissionManager);
    await perms.createPermission('blog.add_post', 'Can add post');
    await perms.createPermission('blog.change_post', 'Can change post');
    await perms.createPermission('blog.delete_post', 'Can delete post');
    await perms.createPermission('shop.refund', 'Can refund');
  }

  /** A fresh instance, as a new request would load it: nothing cached on it. */
  async function reload(user: User): Promise<User> {
    return (await t.users.findById(String(user.id)))!;
  }

  describe('ModelBackend', () => {
    beforeEach(() => start());

    it('grants what the user was given directly', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.add_post');
      const fresh = await reload(carol);
      expect(await t.auth.hasPerm(fresh, 'blog.add_post')).toBe(true);
      expect(await t.auth.hasPerm(fresh, 'blog.delete_post')).toBe(false);
    });

    it("grants what the user's groups hold", async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.createGroup('editors', ['blog.change_post']);
      await perms.addUserToGroup(carol, 'editors');
      const fresh = await reload(carol);
      expect(await t.auth.hasPerm(fresh, 'blog.change_post')).toBe(true);
      expect(await t.auth.hasPerm(fresh, 'blog.add_post')).toBe(false);
    });

    it('lists the union of user and group permissions', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.add_post');
      await perms.createGroup('editors', ['blog.change_post', 'blog.add_post']);
      await perms.createGroup('support', ['shop.refund']);
      await perms.addUserToGroup(carol, 'editors');
      await perms.addUserToGroup(carol, 'support');
      const fresh = await reload(carol);
      expect([...(await t.auth.getAllPermissions(fresh))].sort()).toEqual(['blog.add_post', 'blog.change_post', 'shop.refund']);
      expect(await t.auth.hasPerms(fresh, ['blog.add_post', 'shop.refund'])).toBe(true);
    });

    it('lists the user’s own and their groups’ permissions apart (Django’s get_user_permissions, get_group_permissions)', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.add_post');
      await perms.createGroup('support', ['shop.refund']);
      await perms.addUserToGroup(carol, 'support');
      expect([...(await t.auth.getUserPermissions(await reload(carol)))]).toEqual(['blog.add_post']);
      expect([...(await t.auth.getGroupPermissions(await reload(carol)))]).toEqual(['shop.refund']);
    });

    it('gives an active superuser every permission, even one not in the table', async () => {
      const root = await t.users.createSuperuser({ username: 'root' });
      const fresh = await reload(root);
      expect(await t.auth.hasPerm(fresh, 'blog.delete_post')).toBe(true);
      expect(await t.auth.hasPerm(fresh, 'anything.at_all')).toBe(true);
      expect((await t.auth.getAllPermissions(fresh)).size).toBe(4);
    });

    it('gives an inactive superuser nothing', async () => {
      const root = await t.users.createSuperuser({ username: 'root', isActive: false });
      const fresh = await reload(root);
      expect(await t.auth.hasPerm(fresh, 'blog.add_post')).toBe(false);
      expect(await t.auth.getAllPermissions(fresh)).toEqual(new Set());
    });

    it('gives an inactive user none of their grants', async () => {
      const idle = await t.users.createUser({ username: 'idle', isActive: false });
      await perms.grantPermission(idle, 'blog.add_post');
      await perms.createGroup('editors', ['blog.change_post']);
      await perms.addUserToGroup(idle, 'editors');
      const fresh = await reload(idle);
      expect(await t.auth.hasPerm(fresh, 'blog.add_post')).toBe(false);
      expect(await t.auth.hasPerm(fresh, 'blog.change_post')).toBe(false);
    });

    it('answers no to every object-level check', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.change_post');
      const fresh = await reload(carol);
      expect(await t.auth.hasPerm(fresh, 'blog.change_post', { authorId: carol.id })).toBe(false);
      expect(await t.auth.hasPerm(fresh, 'blog.change_post')).toBe(true);
    });

    it('gives the anonymous user nothing', async () => {
      expect(await t.auth.hasPerm(new AnonymousUser(), 'blog.add_post')).toBe(false);
      expect(await t.auth.getAllPermissions(new AnonymousUser())).toEqual(new Set());
    });

    it("does not lend a local user's grants to another backend's user that has the same id", async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.add_post');
      const stranger = { id: carol.id, username: 'stranger', isActive: true, isAuthenticated: true, backend: 'Directory' };
      expect(await t.auth.hasPerm(stranger, 'blog.add_post')).toBe(false);
    });

    it('caches permissions on the user instance: a second check runs no query', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.add_post');
      const fresh = await reload(carol);
      expect(await t.sql.during(() => t.auth.hasPerm(fresh, 'blog.add_post'))).not.toHaveLength(0);
      expect(await t.sql.during(() => t.auth.hasPerm(fresh, 'blog.add_post'))).toHaveLength(0);
      expect(await t.sql.during(() => t.auth.hasPerms(fresh, ['blog.add_post', 'shop.refund']))).toHaveLength(0);
      expect(await t.sql.during(() => t.auth.getAllPermissions(fresh))).toHaveLength(0);
    });

    it('lets concurrent checks on one instance share the queries', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      const [fresh, other] = [await reload(carol), await reload(carol)];
      const once = await t.sql.during(() => t.auth.getAllPermissions(other));
      const together = await t.sql.during(() =>
        Promise.all([t.auth.hasPerm(fresh, 'blog.add_post'), t.auth.hasPerm(fresh, 'shop.refund')]),
      );
      expect(together.length).toBe(once.length);
    });

    it('goes stale on that instance, but a reloaded user (a new request) sees a new grant', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      const seen = await reload(carol);
      expect(await t.auth.hasPerm(seen, 'blog.add_post')).toBe(false);
      await perms.grantPermission(carol, 'blog.add_post');
      expect(await t.auth.hasPerm(seen, 'blog.add_post')).toBe(false);
      expect(await t.auth.hasPerm(await reload(carol), 'blog.add_post')).toBe(true);
    });

    it('clears the cache of the instance it changes', async () => {
      const carol = await reload(await t.users.createUser({ username: 'carol' }));
      expect(await t.auth.hasPerm(carol, 'blog.add_post')).toBe(false);
      await perms.grantPermission(carol, 'blog.add_post');
      expect(await t.auth.hasPerm(carol, 'blog.add_post')).toBe(true);
      await perms.revokePermission(carol, 'blog.add_post');
      expect(await t.auth.hasPerm(carol, 'blog.add_post')).toBe(false);
    });

    it('answers hasModulePerms for an app the user holds any permission of', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'shop.refund');
      const fresh = await reload(carol);
      expect(await t.auth.hasModulePerms(fresh, 'shop')).toBe(true);
      expect(await t.auth.hasModulePerms(fresh, 'blog')).toBe(false);
      expect(await t.auth.hasModulePerms(fresh, 'sho')).toBe(false);
    });
  });

  describe('hasPerms', () => {
    beforeEach(() => start());

    it('needs every permission in the list; an empty list needs nothing', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.grantPermission(carol, 'blog.add_post');
      const fresh = await reload(carol);
      expect(await t.auth.hasPerms(fresh, ['blog.add_post'])).toBe(true);
      expect(await t.auth.hasPerms(fresh, ['blog.add_post', 'blog.delete_post'])).toBe(false);
      expect(await t.auth.hasPerms(fresh, new Set(['blog.add_post']))).toBe(true);
      expect(await t.auth.hasPerms(fresh, [])).toBe(true);
    });

    it('refuses a single string, which would be read letter by letter', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await expect(t.auth.hasPerms(carol, 'blog.add_post' as any)).rejects.toThrow('permList must be an iterable of permissions');
      await expect(t.auth.hasPerms(carol, 42 as any)).rejects.toThrow(TypeError);
    });
  });

  describe('other backends', () => {
    it('asks backends with the object, so one that knows it can grant', async () => {
      await start([ModelBackend, AuthorBackend]);
      const carol = await reload(await t.users.createUser({ username: 'carol' }));
      expect(await t.auth.hasPerm(carol, 'blog.change_post', { authorId: carol.id })).toBe(true);
      expect(await t.auth.hasPerm(carol, 'blog.change_post', { authorId: carol.id + 1 })).toBe(false);
      expect(await t.auth.hasPerm(carol, 'blog.change_post')).toBe(false);
    });

    it('asks a backend that implements only getAllPermissions through it', async () => {
      await start([ModelBackend, DirectoryPermissionsBackend]);
      const carol = await reload(await t.users.createUser({ username: 'carol' }));
      const dave = await reload(await t.users.createUser({ username: 'dave' }));
      expect(await t.auth.hasPerm(carol, 'wiki.edit_page')).toBe(true);
      expect(await t.auth.hasPerm(dave, 'wiki.edit_page')).toBe(false);
      expect(await t.auth.getAllPermissions(carol)).toEqual(new Set(['wiki.edit_page']));
    });

    it('denies when a backend throws PermissionDenied, even if a later backend would grant', async () => {
      await start([VetoBackend, ModelBackend]);
      const mallory = await t.users.createUser({ username: 'mallory' });
      await perms.grantPermission(mallory, 'blog.add_post');
      const fresh = await reload(mallory);
      expect(await t.auth.hasPerm(fresh, 'blog.add_post')).toBe(false);
      expect(await t.auth.hasModulePerms(fresh, 'blog')).toBe(false);
      expect(await t.auth.getAllPermissions(fresh)).toEqual(new Set());
    });

    it('stops at the first backend that grants, before a later veto', async () => {
      await start([ModelBackend, VetoBackend]);
      const mallory = await t.users.createUser({ username: 'mallory' });
      await perms.grantPermission(mallory, 'blog.add_post');
      const fresh = await reload(mallory);
      expect(await t.auth.hasPerm(fresh, 'blog.add_post')).toBe(true);
      expect(await t.auth.hasPerm(fresh, 'blog.delete_post')).toBe(false);
    });

    it('lets a backend grant the anonymous user permissions', async () => {
      await start([ModelBackend, PublicReadBackend]);
      expect(await t.auth.hasPerm(new AnonymousUser(), 'blog.view_post')).toBe(true);
      expect(await t.auth.hasPerm(new AnonymousUser(), 'blog.add_post')).toBe(false);
    });
  });

  describe('PermissionManager', () => {
    beforeEach(() => start());

    it("accepts only 'app.action' names with exactly one dot", async () => {
      for (const bad of ['blogadd_post', 'blog.add.post', '.add_post', 'blog.', 'blog add.post', '']) {
        await expect(perms.createPermission(bad)).rejects.toThrow(
          'Permission name should be in the form app_label.permission_codename',
        );
      }
      await expect(perms.createPermission(42 as any)).rejects.toThrow(TypeError);
      expect(await perms.getPermission('blog.add_post')).toMatchObject({ codename: 'blog.add_post', name: 'Can add post' });
    });

    it('creates a permission once; creating again returns it and updates its name', async () => {
      const again = await perms.createPermission('blog.add_post', 'Can write posts');
      const first = await perms.getPermission('blog.add_post');
      expect(again.id).toBe(first!.id);
      expect(first!.name).toBe('Can write posts');
      expect((await perms.createPermission('wiki.edit')).name).toBe('wiki.edit');
    });

    it('refuses to grant a permission or join a group that does not exist, changing nothing', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      await expect(perms.grantPermission(carol, 'blog.publish')).rejects.toThrow(
        "Permission 'blog.publish' does not exist; create it with createPermission() first.",
      );
      await expect(perms.createGroup('editors', ['blog.add_post', 'blog.publish'])).rejects.toThrow('does not exist');
      expect(await perms.getGroup('editors')).toBeNull();
      await expect(perms.addUserToGroup(carol, 'nobody')).rejects.toThrow("Group 'nobody' does not exist");
      expect(await t.auth.getAllPermissions(await reload(carol))).toEqual(new Set());
    });

    it('refuses targets that are not saved users or groups', async () => {
      await expect(perms.grantPermission({ id: 1 }, 'blog.add_post')).rejects.toThrow(/Expected a saved User .* or a Group/);
      await expect(perms.grantPermission(new AnonymousUser(), 'blog.add_post')).rejects.toThrow(TypeError);
      await expect(perms.grantPermission(new User(), 'blog.add_post')).rejects.toThrow(TypeError);
    });

    it('grants and revokes idempotently, for users and groups', async () => {
      const carol = await t.users.createUser({ username: 'carol' });
      const editors = await perms.createGroup('editors');
      await perms.grantPermission(editors, 'blog.change_post');
      await perms.grantPermission(editors, 'blog.change_post');
      await perms.addUserToGroup(carol, editors);
      await perms.addUserToGroup(carol, 'editors');
      await perms.grantPermission(carol, 'blog.add_post');
      await perms.grantPermission(carol, 'blog.add_post');
      expect(await t.auth.getAllPermissions(await reload(carol))).toEqual(new Set(['blog.add_post', 'blog.change_post']));

      await perms.revokePermission(carol, 'blog.change_post');
      expect(await t.auth.hasPerm(await reload(carol), 'blog.change_post')).toBe(true);
      await perms.revokePermission(editors, 'blog.change_post');
      expect(await t.auth.hasPerm(await reload(carol), 'blog.change_post')).toBe(false);
      await perms.grantPermission(editors, 'blog.change_post');
      await perms.removeUserFromGroup(carol, 'editors');
      expect(await t.auth.getAllPermissions(await reload(carol))).toEqual(new Set(['blog.add_post']));
    });

    it('createGroup returns the existing group and adds the listed permissions to it', async () => {
      const first = await perms.createGroup('editors', ['blog.add_post']);
      const second = await perms.createGroup('editors', ['blog.change_post']);
      expect(second.id).toBe(first.id);
      const carol = await t.users.createUser({ username: 'carol' });
      await perms.addUserToGroup(carol, second);
      expect(await t.auth.getAllPermissions(await reload(carol))).toEqual(new Set(['blog.add_post', 'blog.change_post']));
    });

    describe('usersWithPerm', () => {
      let names: (users: any[]) => string[];
      beforeEach(async () => {
        names = (users) => users.map((user) => user.username);
        const direct = await t.users.createUser({ username: 'direct' });
        const member = await t.users.createUser({ username: 'member' });
        const idle = await t.users.createUser({ username: 'idle', isActive: false });
        await t.users.createUser({ username: 'nobody' });
        await t.users.createSuperuser({ username: 'root' });
        await t.users.createSuperuser({ username: 'oldroot', isActive: false });
        await perms.grantPermission(direct, 'blog.add_post');
        await perms.grantPermission(idle, 'blog.add_post');
        await perms.createGroup('editors', ['blog.add_post']);
        await perms.addUserToGroup(member, 'editors');
        await perms.grantPermission(member, 'blog.add_post');
      });

      it('lists active holders by grant, group or superuser status, each once', async () => {
        expect(names(await perms.usersWithPerm('blog.add_post'))).toEqual(['direct', 'member', 'root']);
      });

      it('filters on activity: false for inactive only, null for either', async () => {
        expect(names(await perms.usersWithPerm('blog.add_post', { isActive: false }))).toEqual(['idle', 'oldroot']);
        expect(names(await perms.usersWithPerm('blog.add_post', { isActive: null }))).toEqual([
          'direct',
          'member',
          'idle',
          'root',
          'oldroot',
        ]);
      });

      it('leaves superusers out on request, and takes a Permission object', async () => {
        const permission = (await perms.getPermission('blog.add_post'))!;
        expect(names(await perms.usersWithPerm(permission, { includeSuperusers: false }))).toEqual(['direct', 'member']);
      });

      it('answers an object-level question with nobody', async () => {
        expect(await perms.usersWithPerm('blog.add_post', { obj: { id: 1 } })).toEqual([]);
      });

      it('rejects a malformed name or another type with the errors Django gives', async () => {
        await expect(perms.usersWithPerm('blog')).rejects.toThrow(
          'Permission name should be in the form app_label.permission_codename',
        );
        await expect(perms.usersWithPerm('a.b.c')).rejects.toThrow('Permission name should be in the form');
        await expect(perms.usersWithPerm(7 as any)).rejects.toThrow(TypeError);
      });
    });
  });
});
