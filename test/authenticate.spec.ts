import { Injectable } from '@nestjs/common';
import { AuthEvents, PermissionDenied, type AuthBackend } from 'nestjs-session-auth';
import { createTestApp, type TestApp } from './support/test-app.js';

const asked: string[] = [];

@Injectable()
class NobodyBackend implements AuthBackend {
  authenticate() {
    asked.push('NobodyBackend');
    return null;
  }
  getUser() {
    return null;
  }
}

@Injectable()
class StaticBackend implements AuthBackend {
  authenticate(_request: unknown, credentials: Record<string, unknown>) {
    asked.push('StaticBackend');
    return credentials.username === 'static' ? { id: 7, username: 'static' } : null;
  }
  getUser(id: string) {
    return id === '7' ? { id: 7, username: 'static' } : null;
  }
}

@Injectable()
class SecondStaticBackend extends StaticBackend {
  override authenticate(request: unknown, credentials: Record<string, unknown>) {
    asked.push('SecondStaticBackend');
    return { id: 8, username: String(credentials.username) };
  }
}

@Injectable()
class DenyingBackend implements AuthBackend {
  authenticate(_request: unknown, credentials: Record<string, unknown>) {
    asked.push('DenyingBackend');
    if (credentials.username === 'blocked') throw new PermissionDenied();
    return null;
  }
  getUser() {
    return null;
  }
}

@Injectable()
class DirectoryDownBackend implements AuthBackend {
  authenticate() {
    asked.push('DirectoryDownBackend');
    throw new Error('directory unreachable');
  }
  getUser() {
    return null;
  }
}

async function appWith(...backends: any[]): Promise<TestApp> {
  return createTestApp({ auth: { backends } });
}

describe('AuthService.authenticate', () => {
  let t: TestApp;
  beforeEach(() => (asked.length = 0));
  afterEach(() => t?.close());

  it('asks the backends in the configured order and the first user wins', async () => {
    t = await appWith(NobodyBackend, StaticBackend, SecondStaticBackend);
    const user = await t.auth.authenticate(undefined, { username: 'static', password: 'x' });
    expect(user).toMatchObject({ id: 7, username: 'static', backend: 'StaticBackend', isAuthenticated: true });
    expect(asked).toEqual(['NobodyBackend', 'StaticBackend']);
  });

  it('skips a backend that returns null and asks the next one', async () => {
    t = await appWith(StaticBackend, SecondStaticBackend);
    const user = await t.auth.authenticate(undefined, { username: 'someone' });
    expect(user).toMatchObject({ id: 8, backend: 'SecondStaticBackend' });
    expect(asked).toEqual(['StaticBackend', 'SecondStaticBackend']);
  });

  it('stops at PermissionDenied: resolves null and asks no later backend', async () => {
    t = await appWith(DenyingBackend, SecondStaticBackend);
    expect(await t.auth.authenticate(undefined, { username: 'blocked' })).toBeNull();
    expect(asked).toEqual(['DenyingBackend']);
  });

  it('lets other errors propagate: a directory that is down is not a wrong password', async () => {
    t = await appWith(NobodyBackend, DirectoryDownBackend, SecondStaticBackend);
    await expect(t.auth.authenticate(undefined, { username: 'x' })).rejects.toThrow('directory unreachable');
    expect(asked).toEqual(['NobodyBackend', 'DirectoryDownBackend']);
  });

  it('emits userLoginFailed once with secrets masked, including after PermissionDenied', async () => {
    t = await appWith(DenyingBackend, NobodyBackend);
    const failures: any[] = [];
    t.app.get(AuthEvents).on('userLoginFailed', (event) => void failures.push(event));
    const request = { headers: {} } as any;
    await t.auth.authenticate(request, { username: 'blocked', password: 'hunter2', api_token: 't0k' });
    await t.auth.authenticate(undefined, { username: 'nobody', password: 'pw' });
    expect(failures).toHaveLength(2);
    expect(failures[0].request).toBe(request);
    expect(failures[0].credentials).toEqual({
      username: 'blocked',
      password: '********************',
      api_token: '********************',
    });
    expect(JSON.stringify(failures)).not.toContain('hunter2');
  });

  it('does not emit userLoginFailed on success, and unsubscribing stops delivery', async () => {
    t = await appWith(StaticBackend);
    const failures: any[] = [];
    const unsubscribe = t.app.get(AuthEvents).on('userLoginFailed', (event) => void failures.push(event));
    await t.auth.authenticate(undefined, { username: 'static' });
    expect(failures).toHaveLength(0);
    await t.auth.authenticate(undefined, { username: 'other' });
    expect(failures).toHaveLength(1);
    unsubscribe();
    await t.auth.authenticate(undefined, { username: 'other' });
    expect(failures).toHaveLength(1);
  });

  it.each([undefined, null, 'alice', ['alice'], 42])('treats credentials %p as empty instead of crashing', async (credentials) => {
    t = await appWith(NobodyBackend, StaticBackend);
    expect(await t.auth.authenticate(undefined, credentials)).toBeNull();
  });

  it('never modifies the caller\'s credentials object', async () => {
    @Injectable()
    class MutatingBackend implements AuthBackend {
      authenticate(_request: unknown, credentials: Record<string, unknown>) {
        credentials.username = 'static';
        return null;
      }
      getUser() {
        return null;
      }
    }
    t = await appWith(MutatingBackend, StaticBackend);
    const original = { username: 'mallory' };
    await t.auth.authenticate(undefined, original);
    expect(original.username).toBe('mallory');
  });
});
