import type { CookieOptions } from 'express-session';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { ImproperlyConfigured, type AuthModuleOptions } from 'nestjs-session-auth';
import { createTestApp, TEST_SECRET } from './support/test-app.js';
import { withNodeEnv } from './support/environment.js';

/** 43 random-looking characters, as `randomBytes(32).toString('base64url')` gives. */
const STRONG_SECRET = 'Jb0m4w7Qy2xvK9eLr1TzPq8sNf3hUc6dGa5iWo0kXyE';
const ANOTHER_STRONG_SECRET = 'p7RkVn2Lq9XwA4tYc1HsZe8mJd5uBg3fNo6iTr0aQxW';
const SAMPLE_APP_SECRET = 'development-only-secret-do-not-use-in-production';

/** Start an app with these auth options; resolves once it is up (and closes it again). */
async function start(auth: Partial<AuthModuleOptions>): Promise<void> {
  const t = await createTestApp({ auth });
  await t.close();
}

describe('signing secrets in production (NODE_ENV=production)', () => {
  it('refuses a session secret shorter than 32 characters, which an attacker could guess', async () => {
    await withNodeEnv('production', async () => {
      const short = 'x'.repeat(31);
      await expect(start({ session: { secret: short } })).rejects.toThrow(ImproperlyConfigured);
      await expect(start({ session: { secret: short } })).rejects.toThrow(
        /session\.secret is shorter than 32 characters[\s\S]*randomBytes/,
      );
    });
  });

  it.each([SAMPLE_APP_SECRET, 'change-me', 'keyboard cat', 'secret'])(
    'refuses the published secret %j, whatever its length',
    async (published) => {
      await withNodeEnv('production', async () => {
        await expect(start({ session: { secret: published } })).rejects.toThrow(/session\.secret is a published example secret/);
      });
    },
  );

  it('checks every key a cookie or hash can be signed with: old session secrets, secret and secretFallbacks', async () => {
    await withNodeEnv('production', async () => {
      await expect(start({ session: { secret: [STRONG_SECRET, 'keyboard cat'] } })).rejects.toThrow(
        /session\.secret\[1\] is a published example secret/,
      );
      await expect(start({ session: { secret: STRONG_SECRET }, secret: 'change-me' })).rejects.toThrow(
        /: secret is a published example secret/,
      );
      await expect(
        start({ session: { secret: STRONG_SECRET }, secret: ANOTHER_STRONG_SECRET, secretFallbacks: ['short'] }),
      ).rejects.toThrow(/secretFallbacks\[0\] is shorter than 32 characters/);
      await expect(start({ session: false, secret: SAMPLE_APP_SECRET })).rejects.toThrow(
        /: secret is a published example secret/,
      );
    });
  });

  it('never repeats the weak secret in the error, which ends up in logs', async () => {
    await withNodeEnv('production', async () => {
      const weak = 'hunter2-but-longer';
      const error = await start({ session: { secret: [STRONG_SECRET, weak] } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImproperlyConfigured);
      expect((error as Error).message).not.toContain(weak);
    });
  });

  it('starts with long random secrets', async () => {
    await withNodeEnv('production', async () => {
      await expect(
        start({ session: { secret: [STRONG_SECRET, ANOTHER_STRONG_SECRET] }, secretFallbacks: [ANOTHER_STRONG_SECRET] }),
      ).resolves.toBeUndefined();
    });
  });

  it('still accepts short secrets outside production, for tests and local development', async () => {
    await withNodeEnv('development', async () => {
      await expect(start({ session: { secret: 'keyboard cat' } })).resolves.toBeUndefined();
    });
  });
});

describe('session cookie name prefixes (RFC 6265bis)', () => {
  /** Log carol in over HTTPS (as seen through a proxy) and resolve the Set-Cookie line of `name`. */
  async function loginCookie(name: string, cookie?: CookieOptions) {
    const t = await createTestApp({ auth: { session: { secret: TEST_SECRET, name, proxy: true, cookie } } });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const response = await request(t.app.getHttpServer())
        .post('/login')
        .set('X-Forwarded-Proto', 'https')
        .send({ username: 'carol', password: 'correct horse' })
        .expect(200);
      return [response.headers['set-cookie'] ?? []].flat().find((line: string) => line.startsWith(`${name}=`));
    } finally {
      await t.close();
    }
  }

  it('sends a __Host- session cookie with Secure and Path=/ and no Domain, even outside production', async () => {
    await withNodeEnv('development', async () => {
      const line = await loginCookie('__Host-sessionid');
      expect(line).toBeDefined();
      const attributes = line!.split(';').slice(1).map((attribute) => attribute.trim().toLowerCase());
      expect(attributes).toContain('secure');
      expect(attributes).toContain('path=/');
      expect(attributes.some((attribute) => attribute.startsWith('domain='))).toBe(false);
    });
  });

  it('clears a __Host- session cookie at logout with Secure, or the browser would ignore the clearing and keep it', async () => {
    const t = await createTestApp({ auth: { session: { secret: TEST_SECRET, name: '__Host-sessionid', proxy: true } } });
    try {
      await t.users.createUser({ username: 'carol', password: 'correct horse' });
      const login = await request(t.app.getHttpServer())
        .post('/login')
        .set('X-Forwarded-Proto', 'https')
        .send({ username: 'carol', password: 'correct horse' })
        .expect(200);
      const cookie = [login.headers['set-cookie']].flat().find((line: string) => line.startsWith('__Host-sessionid='))!.split(';')[0];
      const logout = await request(t.app.getHttpServer()).post('/logout').set('X-Forwarded-Proto', 'https').set('Cookie', cookie).expect(200);
      const cleared = [logout.headers['set-cookie']].flat().find((line: string) => line.startsWith('__Host-sessionid='));
      const attributes = cleared!.split(';').slice(1).map((attribute) => attribute.trim().toLowerCase());
      expect(attributes).toContain('secure');
      expect(attributes).toContain('path=/');
      expect(attributes.some((attribute) => attribute.startsWith('expires=thu, 01 jan 1970'))).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('sends a __Secure- session cookie with Secure, even outside production', async () => {
    await withNodeEnv('development', async () => {
      const line = await loginCookie('__Secure-sessionid');
      expect(line?.split(';').map((attribute) => attribute.trim())).toContain('Secure');
    });
  });

  it.each([
    ['a Domain, which would share it with every subdomain', { domain: 'example.com' }, /session\.cookie\.domain is 'example\.com'/],
    ['a path other than /', { path: '/app' }, /session\.cookie\.path is '\/app'/],
    ['secure: false', { secure: false }, /session\.cookie\.secure is false/],
    ["secure: 'auto', which drops Secure over plain HTTP", { secure: 'auto' }, /session\.cookie\.secure is "auto"/],
  ])('refuses to start a __Host- session cookie with %s', async (_what, cookie, message) => {
    const session = { secret: TEST_SECRET, name: '__Host-sessionid', cookie } as AuthModuleOptions['session'];
    await expect(start({ session })).rejects.toThrow(ImproperlyConfigured);
    await expect(start({ session })).rejects.toThrow(message);
  });

  it('matches the prefixes case-insensitively, as browsers do', async () => {
    const upper = { secret: TEST_SECRET, name: '__HOST-sessionid', cookie: { domain: 'example.com' } };
    await expect(start({ session: upper })).rejects.toThrow(ImproperlyConfigured);
    const lower = { secret: TEST_SECRET, name: '__secure-sessionid', cookie: { secure: false } };
    await expect(start({ session: lower })).rejects.toThrow(ImproperlyConfigured);
  });

  it('lets a __Secure- cookie keep its Domain and path', async () => {
    await expect(
      start({ session: { secret: TEST_SECRET, name: '__Secure-sessionid', cookie: { domain: 'example.com', path: '/app' } } }),
    ).resolves.toBeUndefined();
  });
});

describe('the express-session peer dependency', () => {
  it('admits no release on a vulnerable cookie (< 0.7.0, CVE-2024-47764) or on-headers (< 1.1.0, CVE-2025-7339)', () => {
    // 1.18.2 is the first express-session on cookie 0.7 and on-headers 1.1.
    const firstSafe = [1, 18, 2];
    const { peerDependencies } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    for (const range of String(peerDependencies['express-session']).split('||')) {
      const lowest = /^\s*\^(\d+)\.(\d+)\.(\d+)\s*$/.exec(range)?.slice(1).map(Number);
      expect(lowest).toBeDefined();
      const difference = lowest!.map((part, i) => part - firstSafe[i]).find((d) => d !== 0) ?? 0;
      expect({ range: range.trim(), safe: difference >= 0 }).toEqual({ range: range.trim(), safe: true });
    }
  });
});
